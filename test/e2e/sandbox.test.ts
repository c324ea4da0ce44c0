import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateKeysAndCertificateCommand,
  CreatePolicyCommand,
  CreateThingCommand,
  IoTClient,
  UpdateCertificateCommand,
} from '@aws-sdk/client-iot';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkInvariants, type Stores } from '../../sandbox/invariants.js';
import { mintClaim } from '../../shared/claims/mint-claim.js';
import { processesMatching, type RunningSandbox, startSandbox } from '../support/sandbox-process.js';

const run = promisify(execFile);
const credentials = { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' };
let sandbox: RunningSandbox;
/** Epoch ms once the sandbox was ready: its own start-up calls came before. */
let readyAt: number;
let iot: IoTClient;
let documents: DynamoDBDocumentClient;
let stores: Stores;
/** Violations a test causes on purpose (tampering behind the product's back); any other fails. */
const deliberate = new Set<string>();

beforeAll(async () => {
  sandbox = await startSandbox();
  readyAt = Date.now();
  iot = new IoTClient({ endpoint: sandbox.info.iotEndpoint, region: sandbox.info.region, credentials });
  const dynamo = new DynamoDBClient({
    endpoint: sandbox.info.dynamodbEndpoint,
    region: sandbox.info.region,
    credentials,
  });
  documents = DynamoDBDocumentClient.from(dynamo);
  stores = { dynamo, tables: sandbox.info.tables, iot, policyName: sandbox.info.policyName };
}, 90_000);

afterEach(async (context) => {
  if (context.task.name.startsWith('stops every process')) return;
  const violations = await checkInvariants(stores);
  expect(violations.filter((violation) => !deliberate.has(violation))).toEqual([]);
  expect(violations.filter((violation) => deliberate.has(violation))).toHaveLength(deliberate.size);
});

afterAll(async () => {
  await sandbox?.stop();
});

async function newToken(): Promise<string> {
  const { token, claim } = mintClaim({ batchId: 'E2E', ttlSeconds: 3600 });
  await documents.send(new PutCommand({ TableName: sandbox.info.tables.claims, Item: claim }));
  return token;
}

function sh(command: string, cwd: string) {
  return run('bash', ['-c', command], { cwd, env: { ...process.env, ...sandbox.env } });
}

/** curl, in the exact form the AWS documentation uses; prints the HTTP status last. */
async function curlCredentials(
  cwd: string,
  cert: string,
  key: string,
  thingName: string,
): Promise<{ status: number; body: string }> {
  const url = sandbox.info.credentialsUrlTemplate.replace('{alias}', sandbox.info.roleAlias);
  const { stdout } = await sh(
    `curl -s -w '\\n%{http_code}' --cert ${cert} --key ${key} --cacert ${join(process.cwd(), sandbox.info.rootCaFile)} -H "x-amzn-iot-thingname: ${thingName}" ${url}`,
    cwd,
  );
  const lines = stdout.trimEnd().split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n') };
}

describe('the sandbox, started with npm start', () => {
  it('is ready within 60 s and writes sandbox.json with the contract fields', () => {
    expect(sandbox.secondsToReady).toBeLessThan(60);
    expect(sandbox.info).toMatchObject({
      apiUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      iotEndpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      dynamodbEndpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      credentialsEndpoint: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      credentialsUrlTemplate: expect.stringMatching(
        /^https:\/\/127\.0\.0\.1:\d+\/role-aliases\/\{alias\}\/credentials$/,
      ),
      roleAlias: 'fleet-provisioning-local-device',
      rootCaFile: expect.stringMatching(/\.pem$/),
      demoClaimToken: expect.stringMatching(/^fpc_/),
    });
  });

  it('runs its printed openssl and curl commands verbatim, ending with temporary credentials', async () => {
    const printed = sandbox.output().split('Or by hand')[1]?.split('Ctrl-C')[0] ?? '';
    const commands = printed
      .split('\n')
      .filter((line) => /^ {2}(openssl|node|curl) /.test(line))
      .map((line) => line.trim());
    const cwd = mkdtempSync(join(tmpdir(), 'by-hand-'));

    expect(commands).toHaveLength(6);
    let last = '';
    for (const command of commands) last = (await sh(command, cwd)).stdout;

    expect(JSON.parse(readFileSync(join(cwd, 'registration.json'), 'utf8'))).toMatchObject({
      thingName: 'SN-0001',
    });
    expect(JSON.parse(last)).toMatchObject({
      credentials: { accessKeyId: expect.stringMatching(/^ASIA/), expiration: expect.any(String) },
    });
  });

  it('lets the device simulator register and fetch credentials', async () => {
    const { stdout } = await sh(
      `npm run -s device -- --serial SN-SIM-1 --token ${await newToken()}`,
      process.cwd(),
    );

    expect(stdout).toMatch(/registered {4}SN-SIM-1 \(HTTP 201\)/);
    expect(stdout).toMatch(/credentials {3}200 from https:/);
  });

  it('gives register the AWS IoT endpoints as deploy-time params: it never calls DescribeEndpoint, and the credentials provider it names answers', async () => {
    const credentialsUrl = sandbox.info.credentialsUrlTemplate.replace('{alias}', sandbox.info.roleAlias);

    const { stdout } = await sh(
      `npm run -s device -- --serial SN-SIM-ENDPOINTS --token ${await newToken()}`,
      process.cwd(),
    );
    const { calls } = (await (
      await fetch(`${sandbox.info.iotEndpoint}/_sandbox/calls?since=${readyAt}`)
    ).json()) as {
      calls: { operation: string }[];
    };

    expect(stdout).toContain(`credentials   200 from ${credentialsUrl}`);
    expect(calls.map((call) => call.operation)).toContain('CreateCertificateFromCsr');
    expect(calls.filter((call) => call.operation === 'DescribeEndpoint')).toEqual([]);
  });

  it('records the registered device as ACTIVE in the inventory', async () => {
    await sh(`npm run -s device -- --serial SN-SIM-2 --token ${await newToken()}`, process.cwd());

    const { Item } = await documents.send(
      new GetCommand({ TableName: sandbox.info.tables.devices, Key: { serialNumber: 'SN-SIM-2' } }),
    );
    expect(Item).toMatchObject({ status: 'ACTIVE', batchId: 'E2E', attributes: { model: 'simulator' } });
  });

  it('keeps registering devices after npm run package in the same checkout (which deletes .esbuild)', async () => {
    await sh('npm run -s package', process.cwd());

    const { stdout } = await sh(
      `npm run -s device -- --serial SN-AFTER-PACKAGE --token ${await newToken()}`,
      process.cwd(),
    );

    expect(stdout).toMatch(/registered {4}SN-AFTER-PACKAGE \(HTTP 201\)/);
    expect(stdout).toMatch(/credentials {3}200 from https:/);
  }, 60_000);

  describe('answers as the deployed HTTP API does', () => {
    it('passes its request id to the function: the problem the handler answers carries the apigw-requestid', async () => {
      const response = await fetch(`${sandbox.info.apiUrl}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });

      expect(response.status).toBe(400);
      const requestId = response.headers.get('apigw-requestid');
      expect(requestId).toMatch(/^[A-Za-z0-9_-]{15}=$/);
      expect(await response.json()).toMatchObject({ code: 'INVALID_REQUEST', requestId });
    });

    it('refuses an unsigned admin request with 403 {"message":"Forbidden"}', async () => {
      const response = await fetch(`${sandbox.info.apiUrl}/devices/SN-SIM-1`);

      expect([response.status, await response.text()]).toEqual([403, '{"message":"Forbidden"}']);
    });

    it('writes admin credentials for SigV4 to sandbox.json', () => {
      expect(sandbox.info).toMatchObject({
        adminAccessKeyId: expect.stringMatching(/^AKIA[0-9A-F]{16}$/),
        adminSecretAccessKey: expect.any(String),
      });
    });
  });

  describe('refuses credentials (403)', () => {
    it('once the certificate is deactivated', async () => {
      await sh(`npm run -s device -- --serial SN-DEACT --token ${await newToken()}`, process.cwd());
      const folder = join(sandbox.env.SANDBOX_DIR as string, 'devices', 'SN-DEACT');
      const pem = readFileSync(join(folder, 'device.crt'), 'utf8');
      const certificateId = createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
      await iot.send(new UpdateCertificateCommand({ certificateId, newStatus: 'INACTIVE' }));
      deliberate.add(`ACTIVE device SN-DEACT has certificate ${certificateId} in state INACTIVE`);

      const result = await curlCredentials(folder, 'device.crt', 'device.key', 'SN-DEACT');

      expect(result.status).toBe(403);
    });

    it('for a thing name the certificate is not attached to', async () => {
      await sh(`npm run -s device -- --serial SN-WRONG --token ${await newToken()}`, process.cwd());
      const folder = join(sandbox.env.SANDBOX_DIR as string, 'devices', 'SN-WRONG');

      expect((await curlCredentials(folder, 'device.crt', 'device.key', 'SN-SIM-1')).status).toBe(403);
      expect((await curlCredentials(folder, 'device.crt', 'device.key', 'SN-WRONG')).status).toBe(200);
    });

    it('for a certificate whose policy does not allow AssumeRoleWithCertificate', async () => {
      const cwd = mkdtempSync(join(tmpdir(), 'no-permission-'));
      const policyDocument = JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }],
      });
      await iot.send(new CreatePolicyCommand({ policyName: 'connect-only', policyDocument }));
      const issued = await iot.send(new CreateKeysAndCertificateCommand({ setAsActive: true }));
      await iot.send(new CreateThingCommand({ thingName: 'SN-NOPERM' }));
      deliberate.add('thing SN-NOPERM has no device record');
      deliberate.add(`ACTIVE certificate ${issued.certificateId} belongs to 0 ACTIVE devices`);
      await iot.send(new AttachPolicyCommand({ policyName: 'connect-only', target: issued.certificateArn }));
      await iot.send(
        new AttachThingPrincipalCommand({ thingName: 'SN-NOPERM', principal: issued.certificateArn }),
      );
      writeFileSync(join(cwd, 'device.crt'), issued.certificatePem as string);
      writeFileSync(join(cwd, 'device.key'), issued.keyPair?.PrivateKey as string);

      expect((await curlCredentials(cwd, 'device.crt', 'device.key', 'SN-NOPERM')).status).toBe(403);
    });
  });

  it('stops every process it started on SIGTERM', async () => {
    const started = () => [
      ...processesMatching(`-port ${sandbox.env.SANDBOX_DYNAMODB_PORT}`),
      ...processesMatching(`--lambdaPort ${sandbox.env.SANDBOX_LAMBDA_PORT}`),
    ];
    expect(started().length).toBeGreaterThanOrEqual(2);

    await sandbox.stop();
    await new Promise((resolve) => setTimeout(resolve, 1000));

    expect(started()).toEqual([]);
  });
});
