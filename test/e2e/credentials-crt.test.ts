import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { CreatePolicyCommand, CreateRoleAliasCommand } from '@aws-sdk/client-iot';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { auth, http, io } from 'aws-crt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CredentialsResponse,
  type RunningCredentialsProvider,
  startCredentialsProvider,
} from '../../sandbox/credentials/server.js';
import { listen } from '../../sandbox/net.js';
import { type EmulatorFixture, startEmulator } from '../support/iot-emulator.js';
import { type ProvisionedDevice, provisionDevice } from '../support/provisioned-device.js';

/**
 * The credentials provider, proven with AWS's own client: aws-crt's X.509 credentials provider (what
 * firmware on the AWS IoT Device SDK v2 uses) fetches credentials from the sandbox over mutual TLS
 * and signs a request with them. It always connects to port 443, so it reaches the sandbox through
 * its HTTP proxy option: a CONNECT proxy here tunnels whatever it is asked for to the sandbox's port.
 */
const REGION = 'eu-west-1';
const ROLE_ALIAS = 'device-alias';

let fx: EmulatorFixture;
let provider: RunningCredentialsProvider;
let proxy: { server: Server; port: number; close(): Promise<void> };
let device: ProvisionedDevice;
/** What the proxy was asked to CONNECT to, in order. */
const tunnelled: string[] = [];
/** The credentials provider's answers, in order: status and body. */
const answers: { status: number; body: string }[] = [];

beforeAll(async () => {
  fx = await startEmulator();
  provider = await startCredentialsProvider(fx.registry, fx.ca, '127.0.0.1', 0);
  recordAnswers(provider.server);
  proxy = await startConnectProxy(Number(provider.endpoint.split(':')[1]));
  await fx.client.send(
    new CreateRoleAliasCommand({ roleAlias: ROLE_ALIAS, roleArn: 'arn:aws:iam::123456789012:role/device' }),
  );
  await fx.client.send(
    new CreateRoleAliasCommand({ roleAlias: 'admin-alias', roleArn: 'arn:aws:iam::123456789012:role/admin' }),
  );
  await fx.client.send(
    new CreatePolicyCommand({
      policyName: 'assume',
      policyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: 'iot:AssumeRoleWithCertificate',
            Resource: `arn:aws:iot:${REGION}:123456789012:rolealias/${ROLE_ALIAS}`,
          },
        ],
      }),
    }),
  );
  device = await provisionDevice(fx.client, 'SN-CRT-1', 'assume');
  await provisionDevice(fx.client, 'SN-CRT-OTHER', 'assume');
});

afterAll(async () => {
  await proxy?.close();
  await provider?.close();
  await fx?.emulator.close();
});

/** A tiny HTTP CONNECT proxy on 127.0.0.1 that tunnels every CONNECT, whatever its port, to `port`. */
async function startConnectProxy(port: number) {
  const server = createServer((_request, response) => response.writeHead(405).end());
  const tunnels = new Set<Socket>();
  server.on('connect', (request, client: Socket, head) => {
    tunnelled.push(request.url ?? '');
    const upstream = connect(port, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    const drop = () => {
      upstream.destroy();
      client.destroy();
      tunnels.delete(client);
    };
    tunnels.add(client);
    upstream.on('error', drop).on('close', drop);
    client.on('error', drop).on('close', drop);
  });
  const bound = await listen(server, '127.0.0.1', 0);
  return {
    server,
    port: bound.port,
    // aws-crt keeps its connection (and so the tunnel) open for reuse: end the tunnels, then stop.
    close: () => {
      for (const client of tunnels) client.destroy();
      return bound.close();
    },
  };
}

/** Keeps what the credentials provider sends back, to compare with what aws-crt signs with. */
function recordAnswers(server: Server): void {
  server.prependListener('request', (_request, response) => {
    const end = response.end.bind(response);
    response.end = ((chunk?: unknown, ...rest: unknown[]) => {
      answers.push({ status: response.statusCode, body: typeof chunk === 'string' ? chunk : '' });
      return (end as (...args: unknown[]) => typeof response)(chunk, ...rest);
    }) as typeof response.end;
  });
}

/** aws-crt's X.509 credentials provider for the device, through the proxy, trusting the sandbox CA. */
function crtProvider(thingName: string, roleAlias: string): auth.AwsCredentialsProvider {
  const tls = io.TlsContextOptions.create_client_with_mtls(device.certificatePem, device.keyPem);
  tls.override_default_trust_store(fx.ca.certificate.pem);
  return auth.AwsCredentialsProvider.newX509({
    // The credentials provider's server certificate names localhost (and 127.0.0.1).
    endpoint: 'localhost',
    thingName,
    roleAlias,
    tlsContext: new io.ClientTlsContext(tls),
    httpProxyOptions: new http.HttpProxyOptions(
      '127.0.0.1',
      proxy.port,
      http.HttpProxyAuthenticationType.None,
      undefined,
      undefined,
      undefined,
      http.HttpProxyConnectionType.Tunneling,
    ),
  });
}

/** Signs a GET with aws-crt's SigV4 signer, fetching the credentials from `credentials`. */
async function signWith(credentials: auth.AwsCredentialsProvider) {
  const request = new http.HttpRequest(
    'GET',
    '/things/SN-CRT-1',
    new http.HttpHeaders([['host', 'example.execute-api.eu-west-1.amazonaws.com']]),
  );
  const date = new Date();
  const signed = await auth.aws_sign_request(request, {
    algorithm: auth.AwsSigningAlgorithm.SigV4,
    signature_type: auth.AwsSignatureType.HttpRequestViaHeaders,
    provider: credentials,
    region: REGION,
    service: 'execute-api',
    date,
  });
  const headers: Record<string, string> = {};
  for (const [name, value] of signed.headers) headers[name.toLowerCase()] = value;
  return { headers, date };
}

describe('the credentials provider, to aws-crt (AWS IoT Device SDK v2) through an HTTP proxy', () => {
  it('gives aws-crt credentials for the device, which it signs a request with', async () => {
    answers.length = 0;

    const { headers } = await signWith(crtProvider('SN-CRT-1', ROLE_ALIAS));

    expect(tunnelled.at(-1)).toBe('localhost:443');
    expect(answers.map((answer) => answer.status)).toEqual([200]);
    const issued = (JSON.parse(answers[0]?.body ?? '{}') as CredentialsResponse).credentials;
    expect(headers.authorization).toMatch(
      new RegExp(
        `^AWS4-HMAC-SHA256 Credential=${issued.accessKeyId}/\\d{8}/${REGION}/execute-api/aws4_request, SignedHeaders=[a-z;-]+, Signature=[0-9a-f]{64}$`,
      ),
    );
    expect(headers['x-amz-security-token']).toBe(issued.sessionToken);
  });

  it("signs with the sandbox's secret: the same signature, recomputed by @smithy/signature-v4", async () => {
    answers.length = 0;

    const { headers, date } = await signWith(crtProvider('SN-CRT-1', ROLE_ALIAS));

    const issued = (JSON.parse(answers[0]?.body ?? '{}') as CredentialsResponse).credentials;
    const { accessKeyId, secretAccessKey, sessionToken } = issued;
    const smithy = await new SignatureV4({
      credentials: { accessKeyId, secretAccessKey, sessionToken },
      region: REGION,
      service: 'execute-api',
      sha256: Hash.bind(null, 'sha256'),
      // aws-crt signs no x-amz-content-sha256 for this service; nor should the recomputation.
      applyChecksum: false,
    }).sign(
      {
        method: 'GET',
        protocol: 'https:',
        hostname: 'example.execute-api.eu-west-1.amazonaws.com',
        path: '/things/SN-CRT-1',
        headers: { host: 'example.execute-api.eu-west-1.amazonaws.com' },
      },
      { signingDate: date },
    );
    const signature = (value: string | undefined) => /Signature=([0-9a-f]+)/.exec(value ?? '')?.[1];
    expect(signature(headers.authorization)).toBeDefined();
    expect(signature(headers.authorization)).toBe(signature(smithy.headers.authorization));
  });

  it.each([
    ['a thing the certificate is not attached to', 'SN-CRT-OTHER', ROLE_ALIAS],
    ['a role alias no attached policy allows', 'SN-CRT-1', 'admin-alias'],
  ])(
    'gets nothing for %s: the sandbox answers 403 and aws-crt cannot sign',
    async (_name, thingName, roleAlias) => {
      answers.length = 0;

      const signing = signWith(crtProvider(thingName, roleAlias));

      await expect(signing).rejects.toThrow();
      expect(answers.length).toBeGreaterThan(0);
      expect(answers.every((answer) => answer.status === 403)).toBe(true);
    },
  );
});
