import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IoTClient } from '@aws-sdk/client-iot';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkInvariants, type Stores } from '../../sandbox/invariants.js';
import { type RunningSandbox, startSandbox } from '../support/sandbox-process.js';

let sandbox: RunningSandbox;
let stores: Stores;
const work = mkdtempSync(join(tmpdir(), 'fleet-'));

beforeAll(async () => {
  sandbox = await startSandbox();
  const credentials = { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' };
  stores = {
    dynamo: new DynamoDBClient({
      endpoint: sandbox.info.dynamodbEndpoint,
      region: sandbox.info.region,
      credentials,
    }),
    tables: sandbox.info.tables,
    iot: new IoTClient({ endpoint: sandbox.info.iotEndpoint, region: sandbox.info.region, credentials }),
    policyName: sandbox.info.policyName,
  };
}, 90_000);
afterAll(async () => {
  await sandbox?.stop();
});
afterEach(async () => {
  expect(await checkInvariants(stores)).toEqual([]);
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command the way a user does, in the repository, against this test's sandbox. */
function run(command: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: process.cwd(), env: { ...process.env, ...sandbox.env } },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}
const fleet = (...args: string[]) => run('npx', ['fleet', ...args]);
const device = (serial: string, token: string) =>
  run('npm', ['run', '-s', 'device', '--', '--serial', serial, '--token', token]);

function csvRows(text: string): Record<string, string>[] {
  const [header, ...lines] = text.trim().split('\n');
  const columns = (header as string).split(',');
  return lines.map((line) => Object.fromEntries(line.split(',').map((value, i) => [columns[i], value])));
}

describe('fleet CLI against the sandbox, run as a subprocess', () => {
  let tokens: Record<string, string>[];

  it('creates 1000 claims as CSV with a token column, reporting progress on stderr', async () => {
    const result = await fleet('claims', 'create', '--batch', 'B1', '--count', '1000', '--output', 'csv');
    writeFileSync(join(work, 'tokens.csv'), result.stdout);
    tokens = csvRows(result.stdout);

    expect(result.code).toBe(0);
    expect(tokens).toHaveLength(1000);
    expect(tokens.every((row) => /^fpc_[A-Za-z0-9_-]{43}$/.test(row.token as string))).toBe(true);
    expect(new Set(tokens.map((row) => row.token)).size).toBe(1000);
    expect(result.stderr).toMatch(/creating claims: 1000\/1000/);
  }, 60_000);

  it('lists the devices registered with some of those tokens, as JSON with serialNumber and status', async () => {
    await device('SN-B1-1', tokens[0]?.token as string);
    await device('SN-B1-2', tokens[1]?.token as string);

    const result = await fleet('devices', 'list', '--batch', 'B1', '--output', 'json');

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([
      expect.objectContaining({ serialNumber: 'SN-B1-1', status: 'ACTIVE' }),
      expect.objectContaining({ serialNumber: 'SN-B1-2', status: 'ACTIVE' }),
    ]);
  }, 60_000);

  it('shows one device as a table', async () => {
    const result = await fleet('devices', 'get', 'SN-B1-1');

    expect(result.stdout.split('\n')[0]).toMatch(/^SERIALNUMBER\s+STATUS/);
    expect(result.stdout).toMatch(/SN-B1-1\s+ACTIVE/);
  });

  it('decommissions a device, after which its credentials exchange is refused', async () => {
    const folder = join(sandbox.env.SANDBOX_DIR as string, 'devices', 'SN-B1-1');
    const url = sandbox.info.credentialsUrlTemplate.replace('{alias}', sandbox.info.roleAlias);
    const exchange = () =>
      run('curl', [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--cert',
        join(folder, 'device.crt'),
        '--key',
        join(folder, 'device.key'),
        '--cacert',
        join(process.cwd(), sandbox.info.rootCaFile),
        '-H',
        'x-amzn-iot-thingname: SN-B1-1',
        url,
      ]);
    expect((await exchange()).stdout).toBe('200');

    const result = await fleet('devices', 'decommission', 'SN-B1-1', '--output', 'json');
    const again = await fleet('devices', 'decommission', 'SN-B1-1', '--output', 'json');

    expect(JSON.parse(result.stdout)[0]).toMatchObject({ serialNumber: 'SN-B1-1', status: 'DECOMMISSIONED' });
    expect(again.code).toBe(0);
    expect((await exchange()).stdout).toBe('403');
  }, 30_000);

  it('revokes the batch, after which its unused tokens are refused', async () => {
    const result = await fleet('claims', 'revoke', '--batch', 'B1', '--output', 'json');
    const refused = await device('SN-B1-3', tokens[2]?.token as string);

    // 1,000 tokens, 2 of them used: the 998 unused ones can no longer register anything.
    expect(JSON.parse(result.stdout)).toEqual([{ revoked: 998 }]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/403 CLAIM_TOKEN_REVOKED/);
  }, 60_000);

  it('answers a device it does not know with a one-line error and exit code 1', async () => {
    const result = await fleet('devices', 'get', 'SN-NOBODY');

    expect(result.code).toBe(1);
    expect(
      result.stderr
        .trim()
        .split('\n')
        .filter((line) => line.startsWith('fleet:')),
    ).toEqual(['fleet: GET /devices/SN-NOBODY failed with 404 DEVICE_NOT_FOUND: no device SN-NOBODY']);
  });

  it('rejects bad arguments with exit code 2 and no stack trace', async () => {
    const results = await Promise.all([
      fleet('claims', 'create', '--batch', 'B2'),
      fleet('claims', 'create', '--batch', 'B2', '--count', 'many'),
      fleet('devices', 'list', '--bogus'),
      fleet('widgets', 'eat'),
    ]);

    for (const result of results) {
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^fleet: .*\(fleet --help for usage\)$/m);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('says which API it cannot reach, with exit code 1', async () => {
    const result = await fleet(
      'devices',
      'get',
      'SN-1',
      '--api-url',
      'http://127.0.0.1:9/',
      '--region',
      'eu-west-1',
    );

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^fleet: (cannot reach http:\/\/127\.0\.0\.1:9\/|no AWS credentials)/m);
  });

  it('keeps the claims CSV it wrote readable', () => {
    expect(readFileSync(join(work, 'tokens.csv'), 'utf8').split('\n')[0]).toBe(
      'batchId,claimId,token,serialNumber,expiresAt',
    );
  });
});
