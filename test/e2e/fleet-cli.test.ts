import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkInvariants, type Stores } from '../../sandbox/invariants.js';
import type { Claim } from '../../shared/inventory/model.js';
import { type RunningDouble, startFakeApi, startProxy } from '../support/http-doubles.js';
import {
  credentialsStatus,
  type RunningSandbox,
  sandboxStores,
  startSandbox,
} from '../support/sandbox-process.js';

let sandbox: RunningSandbox;
let stores: Stores;
const work = mkdtempSync(join(tmpdir(), 'fleet-'));
const repository = process.cwd();
const fleetBin = join(repository, 'cli', 'fleet.mjs');

beforeAll(async () => {
  sandbox = await startSandbox();
  stores = sandboxStores(sandbox);
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

interface RunOptions {
  cwd?: string;
  /** Added to (or, when undefined, removed from) the environment the sandbox's commands get. */
  env?: Record<string, string | undefined>;
}

/** Runs a command the way a user does, by default in the repository against this test's sandbox. */
function run(command: string, args: string[], options: RunOptions = {}): Promise<Run> {
  const env: Record<string, string | undefined> = { ...process.env, ...sandbox.env, ...options.env };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name];
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd ?? repository, env, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}
const fleet = (...args: string[]) => run('npx', ['fleet', ...args]);
/** The CLI from anywhere on the machine, with the given environment changes. */
const fleetAt = (cwd: string, env: Record<string, string | undefined>, ...args: string[]) =>
  run('node', [fleetBin, ...args], { cwd, env });
const device = (serial: string, token: string) =>
  run('npm', ['run', '-s', 'device', '--', '--serial', serial, '--token', token]);

/** Signs with the sandbox's admin credentials through the standard AWS chain (for --api-url). */
const adminEnv = () => ({
  AWS_ACCESS_KEY_ID: sandbox.info.adminAccessKeyId,
  AWS_SECRET_ACCESS_KEY: sandbox.info.adminSecretAccessKey,
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
});

function csvRows(text: string): Record<string, string>[] {
  const [header, ...lines] = text.trim().split('\n');
  const columns = (header as string).split(',');
  return lines.map((line) => Object.fromEntries(line.split(',').map((value, i) => [columns[i], value])));
}

/** A batch's claims as the inventory holds them, read past the CLI and the API. */
async function storedClaims(batchId: string): Promise<Claim[]> {
  const documents = DynamoDBDocumentClient.from(stores.dynamo);
  const claims: Claim[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new QueryCommand({
        TableName: sandbox.info.tables.claims,
        IndexName: 'byBatch',
        KeyConditionExpression: 'batchId = :batch',
        ExpressionAttributeValues: { ':batch': batchId },
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    claims.push(...((page.Items ?? []) as Claim[]));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return claims;
}

function serialsFile(name: string, lines: string[]): string {
  const file = join(work, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

const fleetLines = (stderr: string) =>
  stderr
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('fleet:'));

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

  it('shows one device as a table with readable headers', async () => {
    const result = await fleet('devices', 'get', 'SN-B1-1');

    expect(result.stdout.split('\n')[0]).toMatch(/^SERIAL NUMBER\s+STATUS\s+THING NAME/);
    expect(result.stdout).toMatch(/SN-B1-1\s+ACTIVE/);
  });

  it('shows one device as a JSON object, not an array', async () => {
    const result = await fleet('devices', 'get', 'SN-B1-1', '--output', 'json');

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ serialNumber: 'SN-B1-1', status: 'ACTIVE' });
  });

  it('refuses to decommission without confirmation when not on a terminal, and leaves the device alone', async () => {
    const result = await fleet('devices', 'decommission', 'SN-B1-2');

    expect(result.code).toBe(2);
    expect(fleetLines(result.stderr)).toEqual([expect.stringMatching(/not a terminal.*--yes/)]);
    expect(JSON.parse((await fleet('devices', 'get', 'SN-B1-2', '--output', 'json')).stdout)).toMatchObject({
      status: 'ACTIVE',
    });
  });

  it('decommissions a device with --yes, after which its credentials exchange is refused', async () => {
    const exchange = () => credentialsStatus(sandbox, 'SN-B1-1');
    expect(await exchange()).toBe('200');

    const result = await fleet('devices', 'decommission', 'SN-B1-1', '--yes', '--output', 'json');
    const again = await fleet('devices', 'decommission', 'SN-B1-1', '--yes', '--output', 'json');

    expect(JSON.parse(result.stdout)).toMatchObject({ serialNumber: 'SN-B1-1', status: 'DECOMMISSIONED' });
    expect(again.code).toBe(0);
    expect(await exchange()).toBe('403');
  }, 30_000);

  it('revokes the batch, reporting the count, after which its unused tokens are refused', async () => {
    const result = await fleet('claims', 'revoke', '--batch', 'B1', '--output', 'json');
    const refused = await device('SN-B1-3', tokens[2]?.token as string);

    expect(result.code).toBe(0);
    // 1,000 tokens, 2 of them used: the 998 unused ones can no longer register anything.
    expect(JSON.parse(result.stdout)).toEqual({ batchId: 'B1', revoked: 998 });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/403 CLAIM_TOKEN_REVOKED/);
  }, 60_000);

  it('answers a device it does not know with a one-line error and exit code 1', async () => {
    const result = await fleet('devices', 'get', 'SN-NOBODY');

    expect(result.code).toBe(1);
    expect(fleetLines(result.stderr)).toEqual([
      'fleet: GET /devices/SN-NOBODY failed with 404 DEVICE_NOT_FOUND: no device SN-NOBODY',
    ]);
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

describe('fleet claims create never loses a token', () => {
  it('checks the whole serials file before sending anything, naming each bad or repeated line', async () => {
    const serials = Array.from({ length: 1000 }, (_, i) => `SN-V-${i + 1}`);
    const file = serialsFile('invalid.txt', [...serials, 'SN V 1001', 'S'.repeat(129), 'SN-V-5']);

    const result = await fleet(
      'claims',
      'create',
      '--batch',
      'V1',
      '--serials-file',
      file,
      '--output',
      'csv',
    );

    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/line 1001: "SN V 1001"/);
    expect(result.stderr).toMatch(/line 1002: .*129 characters.*128/);
    expect(result.stderr).toMatch(/line 1003: "SN-V-5" .*line 5/);
    expect(result.stderr).toMatch(/nothing was sent/);
    expect(await storedClaims('V1')).toEqual([]);
  }, 30_000);

  it('keeps every token created before the API refused a later chunk, exits 1, and says how to revoke them', async () => {
    const serials = Array.from({ length: 1000 }, (_, i) => `SN-P-${i + 1}`);
    // 40 + 100 characters: a thing name AWS IoT refuses, which only the API knows (it adds the prefix).
    const file = serialsFile('partial.txt', [...serials, 'S'.repeat(100)]);

    const result = await fleet(
      'claims',
      'create',
      '--batch',
      'P1',
      '--serials-file',
      file,
      '--thing-name-prefix',
      'P'.repeat(40),
      '--output',
      'csv',
    );
    const rows = csvRows(result.stdout);
    const stored = await storedClaims('P1');

    expect(result.code).toBe(1);
    expect(rows).toHaveLength(1000);
    expect(rows.map((row) => row.serialNumber)).toEqual(serials);
    expect(rows.map((row) => row.claimId).sort()).toEqual(stored.map((claim) => claim.claimId).sort());
    expect(result.stderr).toMatch(/THING_NAME_TOO_LONG/);
    expect(result.stderr).toMatch(/line 1001: the thing name would be 140 characters/);
    expect(result.stderr).toMatch(/1000 of 1001 claims were created; their tokens are in the output/);
    expect(result.stderr).toMatch(/fleet claims revoke --claims-file /);
  }, 60_000);

  it('writes a JSON array that stays valid when the run stops midway, and its claims revoke from that file', async () => {
    const serials = Array.from({ length: 1000 }, (_, i) => `SN-J-${i + 1}`);
    const file = serialsFile('partial-json.txt', [...serials, 'S'.repeat(100)]);

    const result = await fleet(
      'claims',
      'create',
      '--batch',
      'P2',
      '--serials-file',
      file,
      '--thing-name-prefix',
      'P'.repeat(40),
      '--output',
      'json',
    );
    const created = JSON.parse(result.stdout) as { claimId: string; token: string }[];
    writeFileSync(join(work, 'partial.json'), result.stdout);
    const revoke = await fleet(
      'claims',
      'revoke',
      '--claims-file',
      join(work, 'partial.json'),
      '--output',
      'json',
    );

    expect(result.code).toBe(1);
    expect(created).toHaveLength(1000);
    expect(revoke.code).toBe(0);
    expect(JSON.parse(revoke.stdout)).toMatchObject({
      revoked: 1000,
      alreadyRevoked: 0,
      notFound: 0,
      failed: 0,
    });
    expect((await storedClaims('P2')).every((claim) => claim.status === 'REVOKED')).toBe(true);
  }, 120_000);

  it('retries a chunk whose answer was lost with the same idempotency key, revokes what that attempt minted, and delivers every token', async () => {
    let posts = 0;
    const proxy = await startProxy(sandbox.info.apiUrl, (seen) =>
      seen.method === 'POST' && seen.url === '/claims' && posts++ === 1 ? 'lose-answer' : 'forward',
    );
    try {
      const result = await run(
        'npx',
        ['fleet', 'claims', 'create', '--batch', 'L1', '--count', '1010', '--output', 'csv'],
        { env: { ...adminEnv(), FLEET_API_URL: proxy.url, AWS_REGION: sandbox.info.region } },
      );
      const rows = csvRows(result.stdout);
      const stored = await storedClaims('L1');
      const creations = proxy.requests.filter((seen) => seen.method === 'POST' && seen.url === '/claims');
      const keys = creations.map((seen) => seen.headers['idempotency-key']);

      expect(result.code).toBe(0);
      expect(rows).toHaveLength(1010);
      expect(
        stored
          .filter((claim) => claim.status === 'ACTIVE')
          .map((claim) => claim.claimId)
          .sort(),
      ).toEqual(rows.map((row) => row.claimId).sort());
      expect(stored.filter((claim) => claim.status === 'REVOKED')).toHaveLength(10);
      // The lost attempt and its retry share a key; the re-creation after revoking gets a new one.
      expect(creations).toHaveLength(4);
      expect(keys[1]).toBe(keys[2]);
      expect(new Set(keys).size).toBe(3);
      expect(result.stderr).toMatch(/answer .*lost.*10 claims .*revoked/);
    } finally {
      await proxy.close();
    }
  }, 90_000);

  it('stamps the attributes given with --attributes on the devices registered with the token', async () => {
    const created = await fleet(
      'claims',
      'create',
      '--batch',
      'A1',
      '--count',
      '1',
      '--attributes',
      'line=L7',
      '--attributes',
      'shift=night',
      '--output',
      'json',
    );
    const [claim] = JSON.parse(created.stdout) as { token: string }[];
    await device('SN-A1-1', claim?.token as string);

    const shown = await fleet('devices', 'get', 'SN-A1-1', '--output', 'json');

    expect(created.code).toBe(0);
    expect(JSON.parse(shown.stdout).attributes).toMatchObject({ line: 'L7', shift: 'night' });
  }, 30_000);
});

describe('fleet batches: a production day at a glance', () => {
  const behaviour = (config: object) =>
    fetch(`${sandbox.info.iotEndpoint}/_sandbox/behaviour`, { method: 'PUT', body: JSON.stringify(config) });

  it('gets a batch whose counts match the inventory after registrations, a failure, a revocation and a decommission', async () => {
    const created = await fleet('claims', 'create', '--batch', 'MIX', '--count', '5', '--output', 'json');
    const tokens = (JSON.parse(created.stdout) as { token: string; claimId: string }[]).map((c) => c);
    await device('SN-MIX-1', tokens[0]?.token as string);
    await device('SN-MIX-2', tokens[1]?.token as string);
    await behaviour({ CreateThing: { fault: { error: 'ServiceUnavailableException' } } });
    const failed = await device('SN-MIX-3', tokens[2]?.token as string);
    await behaviour({});
    await fleet('devices', 'decommission', 'SN-MIX-2', '--yes');
    await fleet('claims', 'revoke', '--claim-id', tokens[3]?.claimId as string);

    const batch = await fleet('batches', 'get', 'MIX', '--output', 'json');
    const list = await fleet('batches', 'list', '--output', 'json');

    expect(failed.code).toBe(1);
    expect(JSON.parse(batch.stdout)).toMatchObject({
      batchId: 'MIX',
      status: 'ACTIVE',
      claims: { issued: 5, used: 3, revoked: 1, expired: 0 },
      devices: { ACTIVE: 1, FAILED: 1, DECOMMISSIONED: 1 },
      firstRegistrationAt: expect.any(String),
      lastRegistrationAt: expect.any(String),
    });
    const stored = await storedClaims('MIX');
    expect(stored.filter((claim) => claim.usesLeft < claim.maxUses)).toHaveLength(3);
    expect(stored.filter((claim) => claim.status === 'REVOKED')).toHaveLength(1);
    expect(JSON.parse(list.stdout)).toEqual(
      expect.arrayContaining([expect.objectContaining({ batchId: 'MIX' })]),
    );
  }, 120_000);

  it('lists the failed devices of a batch with the step and error each failed on', async () => {
    const result = await fleet('devices', 'list', '--batch', 'MIX', '--status', 'FAILED', '--output', 'csv');

    expect(csvRows(result.stdout)).toEqual([
      expect.objectContaining({
        serialNumber: 'SN-MIX-3',
        failedStep: 'create',
        error: 'SERVICE_UNAVAILABLE',
        rollback: 'COMPLETED',
      }),
    ]);
  });
});

describe('fleet claims revoke reports exactly what it revoked', () => {
  it('fails when a batch has no claims at all, instead of reporting 0 revoked', async () => {
    const result = await fleet('claims', 'revoke', '--batch', 'NO-SUCH-BATCH');

    expect(result.code).toBe(1);
    expect(fleetLines(result.stderr)).toEqual([expect.stringMatching(/404 BATCH_NOT_FOUND/)]);
  });

  it('revokes each claim id given, reports each outcome, and exits 1 when any was not revoked', async () => {
    const created = JSON.parse(
      (await fleet('claims', 'create', '--batch', 'R1', '--count', '2', '--output', 'json')).stdout,
    ) as { claimId: string }[];
    const [first, second] = created.map((claim) => claim.claimId) as [string, string];
    await fleet('claims', 'revoke', '--claim-id', second);
    const unknown = '00000000-0000-4000-8000-000000000000';

    const result = await fleet(
      'claims',
      'revoke',
      '--claim-id',
      first,
      '--claim-id',
      second,
      '--claim-id',
      unknown,
      '--output',
      'json',
    );

    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({
      revoked: 1,
      alreadyRevoked: 1,
      notFound: 1,
      failed: 0,
      claims: [
        { claimId: first, result: 'revoked' },
        { claimId: second, result: 'already revoked' },
        { claimId: unknown, result: 'not found' },
      ],
    });
    expect(result.stderr).toMatch(/revoked 1 of 3 claims .*1 not found/);
  }, 30_000);
});

describe('fleet checks every answer against what the route returns', () => {
  let fake: RunningDouble;
  let page: RunningDouble;
  beforeAll(async () => {
    // serverless-offline's answer when a handler dies, with a 200; a captive proxy's login page.
    fake = await startFakeApi(() => ({
      status: 200,
      body: JSON.stringify({ errorMessage: 'Process exited before completing request' }),
    }));
    page = await startFakeApi(() => ({
      status: 200,
      contentType: 'text/html',
      body: '<html><body>Sign in to continue</body></html>',
    }));
  });
  afterAll(async () => {
    await fake?.close();
    await page?.close();
  });

  it.each([
    [['devices', 'list', '--batch', 'B9']],
    [['devices', 'get', 'SN-1']],
    [['claims', 'list', '--batch', 'B9']],
    [['claims', 'revoke', '--batch', 'B9']],
    [['claims', 'create', '--batch', 'B9', '--count', '2']],
  ])(
    'exits 1 on a 200 whose body is not what %j returns',
    async (args) => {
      const result = await fleet(...args, '--api-url', fake.url, '--region', 'eu-west-1');

      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/answered 200 with a body that is not .*errorMessage/);
      expect(result.stderr).not.toMatch(/is not iterable|\n\s+at /);
    },
    30_000,
  );

  it('exits 1 on a web page where the API should be', async () => {
    const result = await fleet('devices', 'get', 'SN-1', '--api-url', page.url, '--region', 'eu-west-1');

    expect(result.code).toBe(1);
    expect(fleetLines(result.stderr)).toEqual([expect.stringMatching(/answered 200 with .*text\/html/)]);
    expect(result.stdout).toBe('');
  });
});

describe('fleet finds its API, never by a silent default', () => {
  it('finds the nearest .sandbox/sandbox.json from a subdirectory', async () => {
    const project = mkdtempSync(join(tmpdir(), 'line-'));
    mkdirSync(join(project, '.sandbox'));
    copyFileSync(
      join(sandbox.env.SANDBOX_DIR as string, 'sandbox.json'),
      join(project, '.sandbox', 'sandbox.json'),
    );
    const deep = join(project, 'station', 'printer');
    mkdirSync(deep, { recursive: true });

    const result = await fleetAt(
      deep,
      { SANDBOX_DIR: undefined },
      'devices',
      'get',
      'SN-B1-2',
      '--output',
      'json',
    );

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ serialNumber: 'SN-B1-2' });
  });

  it('outside any sandbox and with nothing configured, says how to point it somewhere, in one line', async () => {
    const nowhere = mkdtempSync(join(tmpdir(), 'nowhere-'));

    const result = await fleetAt(
      nowhere,
      { SANDBOX_DIR: undefined, FLEET_API_URL: undefined },
      'devices',
      'list',
      '--batch',
      'B1',
    );

    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(fleetLines(result.stderr)).toEqual([
      expect.stringMatching(/no API.*--api-url.*FLEET_API_URL.*\.sandbox\/sandbox\.json/),
    ]);
  });

  it('takes FLEET_API_URL over the sandbox, and --api-url over FLEET_API_URL', async () => {
    const answer = () => ({ status: 200, body: JSON.stringify({ devices: [] }) });
    const [fromEnvironment, fromOption] = await Promise.all([startFakeApi(answer), startFakeApi(answer)]);
    try {
      const env = { ...adminEnv(), AWS_REGION: 'eu-west-1', FLEET_API_URL: fromEnvironment.url };
      const first = await fleetAt(repository, env, 'devices', 'list', '--batch', 'B1');
      const second = await fleetAt(
        repository,
        env,
        'devices',
        'list',
        '--batch',
        'B1',
        '--api-url',
        fromOption.url,
      );

      expect([first.code, second.code]).toEqual([0, 0]);
      expect(fromEnvironment.requests).toHaveLength(1);
      expect(fromOption.requests).toHaveLength(1);
    } finally {
      await Promise.all([fromEnvironment.close(), fromOption.close()]);
    }
  });
});

describe('fleet errors and help', () => {
  let fake: RunningDouble;
  beforeAll(async () => {
    fake = await startFakeApi(() => ({
      status: 400,
      contentType: 'application/problem+json',
      body: JSON.stringify({
        type: 'urn:fleet-provisioning:problem:invalid-request',
        title: 'The body does not match the request schema',
        status: 400,
        code: 'INVALID_REQUEST',
        detail: 'the request does not match the schema',
        errors: [{ pointer: '/ttlSeconds', detail: 'Too small: expected number to be >=60' }],
      }),
    }));
  });
  afterAll(async () => {
    await fake?.close();
  });

  it.each([
    [['devices', 'list', '--status', 'BOGUS'], /PROVISIONING, ACTIVE, FAILED, DECOMMISSIONED/],
    [['claims', 'create', '--batch', 'B2', '--count', '0'], /--count .*1 to /],
    [['claims', 'create', '--batch', 'B2', '--count', 'abc'], /--count .*whole number/],
    [['claims', 'create', '--batch', 'B2', '--count', '-5'], /--count .*1 to /],
    [['claims', 'create', '--batch', 'B2', '--count', '5', '--ttl', '1'], /--ttl .*60 to 31622400/],
    [['claims', 'create', '--batch', 'B2', '--count', '5', '--max-uses', '-1'], /--max-uses/],
    [
      ['claims', 'create', '--batch', 'B2', '--count', '5', '--attributes', 'line'],
      /--attributes .*name=value/,
    ],
    [['claims', 'create', '--count', '5'], /--batch/],
    [['claims', 'create', '--batch', 'bad batch!', '--count', '5'], /--batch/],
    [['devices', 'list', '--bogus'], /unknown option '--bogus'/],
    [['widgets', 'eat'], /unknown command 'widgets'/],
  ])('refuses %j with exit code 2 before any request, naming what is allowed', async (args, allowed) => {
    const before = fake.requests.length;

    const result = await fleetAt(repository, { FLEET_API_URL: fake.url, ...adminEnv() }, ...args);

    expect(result.code).toBe(2);
    expect(fleetLines(result.stderr)).toEqual([expect.stringMatching(/^fleet: .*--help/)]);
    expect(result.stderr).toMatch(allowed);
    expect(result.stderr).not.toMatch(/\n\s+at |TypeError|ERR_PARSE_ARGS/);
    expect(fake.requests.length).toBe(before);
  });

  it("shows the API's errors[] with their pointers, not just that the request did not match", async () => {
    const result = await fleetAt(
      repository,
      { FLEET_API_URL: fake.url, AWS_REGION: 'eu-west-1', ...adminEnv() },
      'claims',
      'create',
      '--batch',
      'B2',
      '--count',
      '5',
    );

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/400 INVALID_REQUEST/);
    expect(result.stderr).toMatch(/ttlSeconds.*Too small: expected number to be >=60/);
  });

  it('prints its version', async () => {
    const { version } = JSON.parse(readFileSync(join(repository, 'package.json'), 'utf8')) as {
      version: string;
    };

    const result = await fleet('--version');

    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(version);
  });

  it('gives each command a help with its defaults, limits and required options', async () => {
    const result = await fleet('claims', 'create', '--help');

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/--batch <id>.*\(required\)/);
    expect(result.stdout).toMatch(/--ttl <seconds>.*60 to 31622400.*\(default: 86400\)/s);
    expect(result.stdout).toMatch(/--output <format>.*\(choices: "table", "csv",\s+"json"/s);
    expect(result.stdout).toMatch(/--attributes <name=value>/);
  });
});

describe('the device simulator', () => {
  it('explains itself with --help', async () => {
    const result = await run('npm', ['run', '-s', 'device', '--', '--help']);

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/--serial/);
    expect(result.stdout).toMatch(/--token/);
  });

  it('says how to make another token once the demo token is spent', async () => {
    const first = await run('npm', ['run', '-s', 'device', '--', '--serial', 'SN-DEMO-1']);
    const second = await run('npm', ['run', '-s', 'device', '--', '--serial', 'SN-DEMO-2']);

    expect(first.code).toBe(0);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/demo claim token .*already used/);
    expect(second.stderr).toMatch(/npx fleet claims create --batch \S+ --count 1/);
  }, 30_000);
});
