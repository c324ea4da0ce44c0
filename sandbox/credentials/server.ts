import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { IotRegistry } from '../iot/registry.js';
import { listen } from '../net.js';
import type { CertificateAuthority } from '../pki/ca.js';
import { isAllowed } from './policy.js';

const ROUTE = /^\/role-aliases\/([^/]+)\/credentials$/;

export interface CredentialsResponse {
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: string };
}

export type Decision =
  | { allowed: true; body: CredentialsResponse }
  | { allowed: false; status: number; reason: string };

/**
 * What the AWS IoT credentials provider decides for a request: the client certificate must be one
 * the registry issued and ACTIVE; a policy attached to it must allow iot:AssumeRoleWithCertificate
 * on the role alias's ARN; and the thing named in x-amzn-iot-thingname, if any, must be attached to
 * the certificate.
 */
export function decide(
  registry: IotRegistry,
  certificateDer: Buffer | undefined,
  roleAliasName: string,
  thingName: string | undefined,
  now: Date = new Date(),
): Decision {
  const deny = (reason: string): Decision => ({ allowed: false, status: 403, reason });
  if (!certificateDer || certificateDer.length === 0) return deny('no client certificate');
  const certificate = registry.certificates.get(createHash('sha256').update(certificateDer).digest('hex'));
  if (!certificate) return deny('unknown certificate');
  if (certificate.status !== 'ACTIVE') return deny(`certificate is ${certificate.status}`);
  const roleAlias = registry.roleAliases.get(roleAliasName);
  if (!roleAlias) return deny('unknown role alias');
  if (thingName !== undefined && !registry.thingsOf(certificate.certificateArn).includes(thingName)) {
    return deny('the thing is not attached to the certificate');
  }
  const documents = registry.policiesOf(certificate.certificateArn).map((policy) => policy.policyDocument);
  const variables: Record<string, string> = {
    'iot:Certificate.Subject.CommonName': 'AWS IoT Certificate',
    ...(thingName !== undefined
      ? { 'iot:Connection.Thing.ThingName': thingName, 'credentials-iot:ThingName': thingName }
      : {}),
  };
  if (!isAllowed(documents, 'iot:AssumeRoleWithCertificate', roleAlias.roleAliasArn, variables)) {
    return deny('no attached policy allows iot:AssumeRoleWithCertificate on this role alias');
  }
  const expiration = new Date(now.getTime() + roleAlias.credentialDurationSeconds * 1000);
  return {
    allowed: true,
    body: {
      credentials: {
        accessKeyId: `ASIA${randomBytes(10).toString('hex').toUpperCase().slice(0, 16)}`,
        secretAccessKey: randomBytes(30).toString('base64'),
        sessionToken: randomBytes(96).toString('base64'),
        expiration: expiration.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      },
    },
  };
}

export interface RunningCredentialsProvider {
  server: Server;
  endpoint: string;
  close(): Promise<void>;
}

/**
 * HTTPS with client-certificate authentication, serving
 * GET /role-aliases/{alias}/credentials with the x-amzn-iot-thingname header.
 * Its server certificate is issued by the sandbox CA (the rootCaFile a device trusts).
 */
export async function startCredentialsProvider(
  registry: IotRegistry,
  ca: CertificateAuthority,
  host: string,
  port: number,
): Promise<RunningCredentialsProvider> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const serverCertificate = await ca.issue(publicKey.export({ type: 'spki', format: 'der' }), {
    commonName: host,
    usage: 'server',
    ipAddresses: /^\d+\.\d+\.\d+\.\d+$/.test(host) ? [host] : [],
    dnsNames: ['localhost'],
  });
  const server = createServer(
    {
      key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      cert: serverCertificate.pem,
      ca: [ca.certificate.pem],
      requestCert: true,
      // Unknown or foreign certificates get a 403 from the handler rather than a TLS alert, so
      // that clients see why.
      rejectUnauthorized: false,
    },
    (request, response) => {
      const url = new URL(request.url ?? '/', 'https://localhost');
      const match = ROUTE.exec(url.pathname);
      const send = (status: number, body: unknown) =>
        response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (request.method !== 'GET' || !match) return send(404, { message: 'Not Found' });
      const socket = request.socket as TLSSocket;
      const peer = socket.getPeerCertificate();
      const issuedHere = socket.authorized;
      const thingHeader = request.headers['x-amzn-iot-thingname'];
      const decision = issuedHere
        ? decide(
            registry,
            peer?.raw,
            decodeURIComponent(match[1] as string),
            typeof thingHeader === 'string' ? thingHeader : undefined,
          )
        : ({ allowed: false, status: 403, reason: 'certificate not issued by this account' } as const);
      if (decision.allowed) return send(200, decision.body);
      process.stderr.write(`credentials provider: 403 ${decision.reason}\n`);
      return send(decision.status, { message: 'Access Denied' });
    },
  );
  const bound = await listen(server, host, port);
  return { server, endpoint: `${host}:${bound.port}`, close: bound.close };
}
