import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateCertificateFromCsrCommand,
  CreateKeysAndCertificateCommand,
  CreatePolicyCommand,
  CreateRoleAliasCommand,
  CreateThingCommand,
  DeleteCertificateCommand,
  DeleteThingCommand,
  DescribeCertificateCommand,
  DescribeEndpointCommand,
  DescribeRoleAliasCommand,
  DescribeThingCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  GetPolicyCommand,
  ListAttachedPoliciesCommand,
  ListCertificatesCommand,
  ListPrincipalThingsCommand,
  ListThingPrincipalsCommand,
  ListThingsCommand,
  paginateListThings,
  UpdateCertificateCommand,
} from '@aws-sdk/client-iot';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROPAGATION_MS } from '../../sandbox/iot/behaviour.js';
import { buildCsr } from '../../sandbox/pki/csr.js';
import { parseCsr } from '../../shared/csr/parse-csr.js';
import { codeRejectedBy } from '../support/error-code.js';
import { type EmulatorFixture, startEmulator } from '../support/iot-emulator.js';
import { explicitCurveCsr } from '../support/openssl-csr.js';
import { opensslVerify } from '../support/openssl-verify.js';

let fx: EmulatorFixture;
const policyDocument = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }],
});

beforeAll(async () => {
  fx = await startEmulator();
  await fx.client.send(new CreatePolicyCommand({ policyName: 'p1', policyDocument }));
});
afterAll(async () => {
  await fx.emulator.close();
});

async function newCertificate(active = true) {
  return fx.client.send(
    new CreateCertificateFromCsrCommand({ certificateSigningRequest: buildCsr().pem, setAsActive: active }),
  );
}

describe('IoT emulator, through @aws-sdk/client-iot', () => {
  it('issues a real X.509 certificate for the CSR key, chained to the sandbox CA, with id = SHA-256 of its DER', async () => {
    const csr = buildCsr({ key: 'ec-p384' });

    const out = await fx.client.send(
      new CreateCertificateFromCsrCommand({ certificateSigningRequest: csr.pem, setAsActive: true }),
    );

    const certificate = new X509Certificate(out.certificatePem as string);
    expect(certificate.checkIssued(new X509Certificate(fx.ca.certificate.der))).toBe(true);
    expect(certificate.checkPrivateKey(csr.privateKey)).toBe(true);
    expect(out.certificateId).toBe(certificate.fingerprint256.replace(/:/g, '').toLowerCase());
    expect(out.certificateArn).toBe(`arn:aws:iot:eu-west-1:123456789012:cert/${out.certificateId}`);
  });

  it('creates keys and a certificate whose private key matches it', async () => {
    const out = await fx.client.send(new CreateKeysAndCertificateCommand({ setAsActive: false }));

    expect(
      new X509Certificate(out.certificatePem as string).checkPrivateKey(
        (await import('node:crypto')).createPrivateKey(out.keyPair?.PrivateKey as string),
      ),
    ).toBe(true);
    const described = await fx.client.send(
      new DescribeCertificateCommand({ certificateId: out.certificateId }),
    );
    expect(described.certificateDescription?.status).toBe('INACTIVE');
  });

  it('describes a certificate and reports ResourceNotFoundException for an unknown one', async () => {
    const { certificateId } = await newCertificate();

    const described = await fx.client.send(new DescribeCertificateCommand({ certificateId }));

    expect(described.certificateDescription).toMatchObject({ certificateId, status: 'ACTIVE' });
    expect(described.certificateDescription?.creationDate).toBeInstanceOf(Date);
    expect(
      await codeRejectedBy(fx.client.send(new DescribeCertificateCommand({ certificateId: 'f'.repeat(64) }))),
    ).toBe('ResourceNotFoundException');
  });

  it('refuses to delete an ACTIVE certificate with CertificateStateException', async () => {
    const { certificateId } = await newCertificate();

    expect(await codeRejectedBy(fx.client.send(new DeleteCertificateCommand({ certificateId })))).toBe(
      'CertificateStateException',
    );
  });

  it('refuses to delete a certificate with a thing or policy attached with DeleteConflictException', async () => {
    const { certificateId, certificateArn } = await newCertificate();
    await fx.client.send(new CreateThingCommand({ thingName: 'conflict-thing' }));
    await fx.client.send(
      new AttachThingPrincipalCommand({ thingName: 'conflict-thing', principal: certificateArn }),
    );
    await fx.client.send(new AttachPolicyCommand({ policyName: 'p1', target: certificateArn }));
    await fx.client.send(new UpdateCertificateCommand({ certificateId, newStatus: 'INACTIVE' }));

    expect(await codeRejectedBy(fx.client.send(new DeleteCertificateCommand({ certificateId })))).toBe(
      'DeleteConflictException',
    );
    await fx.client.send(
      new DetachThingPrincipalCommand({ thingName: 'conflict-thing', principal: certificateArn }),
    );
    expect(await codeRejectedBy(fx.client.send(new DeleteCertificateCommand({ certificateId })))).toBe(
      'DeleteConflictException',
    );
    await fx.client.send(new DetachPolicyCommand({ policyName: 'p1', target: certificateArn }));
    await new Promise((resolve) => setTimeout(resolve, DEFAULT_PROPAGATION_MS));
    await fx.client.send(new DeleteCertificateCommand({ certificateId }));
    expect(await codeRejectedBy(fx.client.send(new DescribeCertificateCommand({ certificateId })))).toBe(
      'ResourceNotFoundException',
    );
  });

  it('keeps a detachment from the deletes until it has propagated, as AWS IoT does', async () => {
    const { certificateId, certificateArn } = await newCertificate();
    await fx.client.send(new CreateThingCommand({ thingName: 'propagating-thing' }));
    await fx.client.send(
      new AttachThingPrincipalCommand({ thingName: 'propagating-thing', principal: certificateArn }),
    );
    await fx.client.send(new UpdateCertificateCommand({ certificateId, newStatus: 'INACTIVE' }));
    fx.behaviour.set({ '*': { ratePerSecond: 0 }, DetachThingPrincipal: { propagationMs: 500 } });
    await fx.client.send(
      new DetachThingPrincipalCommand({ thingName: 'propagating-thing', principal: certificateArn }),
    );

    const thingAtOnce = await codeRejectedBy(
      fx.client.send(new DeleteThingCommand({ thingName: 'propagating-thing' })),
    );
    const certificateAtOnce = await codeRejectedBy(
      fx.client.send(new DeleteCertificateCommand({ certificateId })),
    );
    await new Promise((resolve) => setTimeout(resolve, 600));
    const thingLater = await codeRejectedBy(
      fx.client.send(new DeleteThingCommand({ thingName: 'propagating-thing' })),
    );

    expect(thingAtOnce).toBe('InvalidRequestException');
    expect(certificateAtOnce).toBe('DeleteConflictException');
    expect(thingLater).toBe('no error');
    fx.behaviour.set({ '*': { ratePerSecond: 0 } });
  });

  it('returns the existing thing for the same name and attributes, and refuses different ones', async () => {
    const first = await fx.client.send(
      new CreateThingCommand({ thingName: 'SN-same', attributePayload: { attributes: { a: '1' } } }),
    );

    const again = await fx.client.send(
      new CreateThingCommand({ thingName: 'SN-same', attributePayload: { attributes: { a: '1' } } }),
    );

    expect(again.thingArn).toBe(first.thingArn);
    expect(
      await codeRejectedBy(
        fx.client.send(
          new CreateThingCommand({ thingName: 'SN-same', attributePayload: { attributes: { a: '2' } } }),
        ),
      ),
    ).toBe('ResourceAlreadyExistsException');
  });

  it('describes, lists and deletes things; deleting a missing thing succeeds as in AWS', async () => {
    await fx.client.send(
      new CreateThingCommand({ thingName: 'SN-desc', attributePayload: { attributes: { batchId: 'B9' } } }),
    );

    expect(await fx.client.send(new DescribeThingCommand({ thingName: 'SN-desc' }))).toMatchObject({
      thingName: 'SN-desc',
      attributes: { batchId: 'B9' },
    });
    const listed = await fx.client.send(
      new ListThingsCommand({ attributeName: 'batchId', attributeValue: 'B9' }),
    );
    expect(listed.things?.map((t) => t.thingName)).toEqual(['SN-desc']);
    await fx.client.send(new DeleteThingCommand({ thingName: 'SN-desc' }));
    await fx.client.send(new DeleteThingCommand({ thingName: 'SN-desc' }));
    expect(await codeRejectedBy(fx.client.send(new DescribeThingCommand({ thingName: 'SN-desc' })))).toBe(
      'ResourceNotFoundException',
    );
  });

  it('refuses a thing name AWS would refuse', async () => {
    expect(await codeRejectedBy(fx.client.send(new CreateThingCommand({ thingName: 'bad.name' })))).toBe(
      'InvalidRequestException',
    );
  });

  it('lists thing principals and principal things', async () => {
    const { certificateArn } = await newCertificate();
    await fx.client.send(new CreateThingCommand({ thingName: 'SN-princ' }));
    await fx.client.send(
      new AttachThingPrincipalCommand({ thingName: 'SN-princ', principal: certificateArn }),
    );

    expect(
      (await fx.client.send(new ListThingPrincipalsCommand({ thingName: 'SN-princ' }))).principals,
    ).toEqual([certificateArn]);
    expect(
      (await fx.client.send(new ListPrincipalThingsCommand({ principal: certificateArn }))).things,
    ).toEqual(['SN-princ']);
  });

  it('lists attached policies and gets a policy', async () => {
    const { certificateArn } = await newCertificate();
    await fx.client.send(new AttachPolicyCommand({ policyName: 'p1', target: certificateArn }));

    expect(
      (await fx.client.send(new ListAttachedPoliciesCommand({ target: certificateArn }))).policies,
    ).toEqual([{ policyName: 'p1', policyArn: 'arn:aws:iot:eu-west-1:123456789012:policy/p1' }]);
    expect((await fx.client.send(new GetPolicyCommand({ policyName: 'p1' }))).policyDocument).toBe(
      policyDocument,
    );
  });

  it('refuses a malformed policy document', async () => {
    const request = fx.client.send(
      new CreatePolicyCommand({ policyName: 'bad', policyDocument: '{not json' }),
    );

    expect(await codeRejectedBy(request)).toBe('MalformedPolicyException');
  });

  it('creates and describes a role alias, bounding its credential duration', async () => {
    const roleArn = 'arn:aws:iam::123456789012:role/device';
    await fx.client.send(
      new CreateRoleAliasCommand({ roleAlias: 'ra1', roleArn, credentialDurationSeconds: 900 }),
    );

    expect(
      (await fx.client.send(new DescribeRoleAliasCommand({ roleAlias: 'ra1' }))).roleAliasDescription,
    ).toMatchObject({
      roleAlias: 'ra1',
      roleArn,
      credentialDurationSeconds: 900,
      roleAliasArn: 'arn:aws:iot:eu-west-1:123456789012:rolealias/ra1',
    });
    expect(
      await codeRejectedBy(
        fx.client.send(
          new CreateRoleAliasCommand({ roleAlias: 'ra2', roleArn, credentialDurationSeconds: 60 }),
        ),
      ),
    ).toBe('InvalidRequestException');
  });

  it('describes the credentials provider and data endpoints', async () => {
    const out = await fx.client.send(new DescribeEndpointCommand({ endpointType: 'iot:CredentialProvider' }));

    expect(out.endpointAddress).toBe('127.0.0.1:8443');
  });

  it('paginates things and certificates the way the SDK paginators expect', async () => {
    for (let i = 0; i < 7; i++)
      await fx.client.send(
        new CreateThingCommand({ thingName: `page-${i}`, attributePayload: { attributes: { page: 'yes' } } }),
      );

    const names: string[] = [];
    for await (const page of paginateListThings(
      { client: fx.client, pageSize: 3 },
      { attributeName: 'page', attributeValue: 'yes' },
    )) {
      names.push(...(page.things ?? []).map((t) => t.thingName as string));
    }
    const firstPage = await fx.client.send(new ListCertificatesCommand({ pageSize: 2 }));

    expect(names.sort()).toEqual(['page-0', 'page-1', 'page-2', 'page-3', 'page-4', 'page-5', 'page-6']);
    expect(firstPage.certificates).toHaveLength(2);
    expect(firstPage.nextMarker).toEqual(expect.any(String));
  });
});

/** Whether openssl can read a PKCS #10 request at all (`openssl req -verify`). */
function opensslReads(csrPem: string): boolean {
  const file = join(mkdtempSync(join(tmpdir(), 'csr-')), 'request.pem');
  writeFileSync(file, csrPem);
  try {
    execFileSync('openssl', ['req', '-in', file, '-noout', '-verify'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** The subject's first RDN encoded as a SEQUENCE where X.501 wants a SET: same length, signed as is. */
function rdnAsSequence(info: Buffer): Buffer {
  const rewritten = Buffer.from(info);
  const set = rewritten.indexOf(Buffer.from([0x31, 0x0f])); // SET { CN=device } in buildCsr's subject
  rewritten[set] = 0x30;
  return rewritten;
}

const createFromCsr = (certificateSigningRequest: string) =>
  fx.client.send(new CreateCertificateFromCsrCommand({ certificateSigningRequest, setAsActive: true }));

describe("IoT emulator, CreateCertificateFromCsr's own check of the request", () => {
  it('issues X.509 v3 certificates that pass openssl verify -x509_strict against the sandbox CA, for EC and RSA keys', async () => {
    const fromCsr = await createFromCsr(buildCsr({ key: 'ec-p521', hash: 'sha512' }).pem);
    const generated = await fx.client.send(new CreateKeysAndCertificateCommand({ setAsActive: true }));

    expect(opensslVerify(fx.ca.certificate.pem, fromCsr.certificatePem as string)).toBe(
      'certificate.pem: OK',
    );
    expect(opensslVerify(fx.ca.certificate.pem, generated.certificatePem as string)).toBe(
      'certificate.pem: OK',
    );
    const certificate = new X509Certificate(fromCsr.certificatePem as string);
    expect(certificate.subject).toBe('CN=AWS IoT Certificate');
    expect(certificate.validTo).toBe('Dec 31 23:59:59 2049 GMT');
  });

  it.each([
    ['P-256 with ECDSA-SHA256', () => buildCsr({ key: 'ec-p256' })],
    ['P-384 with ECDSA-SHA384', () => buildCsr({ key: 'ec-p384', hash: 'sha384' })],
    ['P-521 with ECDSA-SHA512', () => buildCsr({ key: 'ec-p521', hash: 'sha512' })],
    ['RSA-2048 with SHA256WITHRSA', () => buildCsr({ key: 'rsa-2048' })],
    ['RSA-2048 with SHA512WITHRSA', () => buildCsr({ key: 'rsa-2048', hash: 'sha512' })],
  ])('accepts what AWS IoT accepts: %s', async (_name, csr) => {
    const request = csr();

    const out = await createFromCsr(request.pem);

    expect(new X509Certificate(out.certificatePem as string).checkPrivateKey(request.privateKey)).toBe(true);
  });

  it.each([
    ['a CSR signed by another key (no proof of possession)', () => buildCsr({ signWithOtherKey: true }).pem],
    ['a CSR changed after it was signed', () => buildCsr({ tamper: true }).pem],
    ['an RSA-1024 key', () => buildCsr({ key: 'rsa-1024' }).pem],
    ['a secp192r1 key', () => buildCsr({ key: 'ec-p192' }).pem],
    ['an Ed25519 key', () => buildCsr({ key: 'ed25519' }).pem],
    ['a SHA-1 RSA signature', () => buildCsr({ key: 'rsa-2048', hash: 'sha1' }).pem],
    ['a SHA-1 ECDSA signature', () => buildCsr({ hash: 'sha1' }).pem],
    ['a P-256 key with explicit curve parameters', explicitCurveCsr],
    ['DER without PEM armour', () => buildCsr().der.toString('base64')],
    ['a certificate instead of a request', () => fx.ca.certificate.pem],
  ])('refuses what AWS IoT refuses with InvalidRequestException: %s', async (_name, csr) => {
    expect(await codeRejectedBy(createFromCsr(csr()))).toBe('InvalidRequestException');
  });

  it("refuses a CSR that the product's parser accepts but openssl cannot read (an RDN that is not a SET)", async () => {
    const malformed = buildCsr({ rewriteInfo: rdnAsSequence }).pem;

    const code = await codeRejectedBy(createFromCsr(malformed));

    expect(() => parseCsr(malformed)).not.toThrow();
    expect(opensslReads(malformed)).toBe(false);
    expect(code).toBe('InvalidRequestException');
  });

  it("accepts an RSASSA-PSS signed CSR, an algorithm AWS IoT lists and the product's parser refuses", async () => {
    const pss = buildCsr({ key: 'rsa-2048', pss: true });

    const out = await createFromCsr(pss.pem);

    expect(() => parseCsr(pss.pem)).toThrow(/signature algorithm/);
    expect(opensslReads(pss.pem)).toBe(true);
    expect(new X509Certificate(out.certificatePem as string).checkPrivateKey(pss.privateKey)).toBe(true);
  });

  it("reaches none of the product's CSR code from any file of sandbox/iot or sandbox/pki, directly or not", async () => {
    const sources = ['sandbox/iot', 'sandbox/pki'].flatMap((dir) =>
      readdirSync(dir)
        .filter((file) => file.endsWith('.ts'))
        .map((file) => `${dir}/${file}`),
    );
    // esbuild's import graph: every file those sources import, transitively (packages aside).
    const graph = await build({
      entryPoints: sources,
      bundle: true,
      write: false,
      metafile: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      outdir: 'unused',
      logLevel: 'silent',
    });
    const files = Object.keys(graph.metafile.inputs);

    expect(files).toEqual(expect.arrayContaining([...sources, 'sandbox/net.ts']));
    expect(files.filter((file) => file.startsWith('shared/csr/'))).toEqual([]);
  });
});

describe('IoT emulator behaviour', () => {
  it('throttles an operation beyond its quota with ThrottlingException', async () => {
    const throttled = await startEmulator({ CreateThing: { ratePerSecond: 2, burst: 2 } });

    const codes = await Promise.all(
      [1, 2, 3].map((i) =>
        codeRejectedBy(throttled.client.send(new CreateThingCommand({ thingName: `t-${i}` }))),
      ),
    );
    await throttled.emulator.close();

    expect(codes.sort()).toEqual(['ThrottlingException', 'no error', 'no error']);
  });

  it('fails the nth call of an operation with the chosen error, once', async () => {
    const faulty = await startEmulator({
      '*': { ratePerSecond: 0 },
      AttachPolicy: { fault: { error: 'InternalFailureException', nth: 2 } },
    });
    await faulty.client.send(new CreatePolicyCommand({ policyName: 'p', policyDocument }));
    const { certificateArn } = await faulty.client.send(
      new CreateCertificateFromCsrCommand({ certificateSigningRequest: buildCsr().pem, setAsActive: true }),
    );
    const attach = () =>
      codeRejectedBy(
        faulty.client.send(new AttachPolicyCommand({ policyName: 'p', target: certificateArn })),
      );

    const codes = [await attach(), await attach(), await attach()];
    await faulty.emulator.close();

    expect(codes).toEqual(['no error', 'InternalFailureException', 'no error']);
  });

  it('takes new behaviour at run time through /_sandbox/behaviour', async () => {
    await fetch(`${fx.emulator.url}/_sandbox/behaviour`, {
      method: 'PUT',
      body: JSON.stringify({
        '*': { ratePerSecond: 0 },
        DescribeEndpoint: { fault: { error: 'ServiceUnavailableException' } },
      }),
    });

    const code = await codeRejectedBy(
      fx.client.send(new DescribeEndpointCommand({ endpointType: 'iot:Data-ATS' })),
    );
    fx.behaviour.set({ '*': { ratePerSecond: 0 } });

    expect(code).toBe('ServiceUnavailableException');
  });

  it('counts the calls it answered, by operation and outcome, with their arrival times, through /_sandbox/calls', async () => {
    const counted = await startEmulator({ CreateThing: { ratePerSecond: 1, burst: 1 } });
    const since = Date.now();
    await counted.client.send(new CreateThingCommand({ thingName: 'counted-1' }));
    await codeRejectedBy(counted.client.send(new CreateThingCommand({ thingName: 'counted-2' })));
    await counted.client.send(new DeleteThingCommand({ thingName: 'counted-1' }));

    const answer = (await (await fetch(`${counted.emulator.url}/_sandbox/calls?since=${since}`)).json()) as {
      operations: Record<string, Record<string, number>>;
      registry: Record<string, number>;
      calls: { operation: string; startedAt: number; outcome: string }[];
    };
    await counted.emulator.close();

    expect(answer.operations).toEqual({
      CreateThing: { ok: 1, ThrottlingException: 1 },
      DeleteThing: { ok: 1 },
    });
    expect(answer.registry).toMatchObject({ thingsCreated: 1, thingsDeleted: 1 });
    expect(answer.calls.map((call) => call.outcome)).toEqual(['ok', 'ThrottlingException', 'ok']);
    expect(answer.calls.every((call) => call.startedAt >= since)).toBe(true);
  });
});
