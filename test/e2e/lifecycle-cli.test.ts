import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeCertificateCommand } from '@aws-sdk/client-iot';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deviceProof } from '../../sandbox/device-proof.js';
import { checkInvariants, type Stores } from '../../sandbox/invariants.js';
import { buildCsr } from '../../sandbox/pki/csr.js';
import type { HistoryEvent } from '../../shared/admin/response-schemas.js';
import {
  credentialsStatus,
  type RunningSandbox,
  sandboxStores,
  startSandbox,
} from '../support/sandbox-process.js';

/**
 * Life after first boot as an operator and a device live it: `fleet` and `npm run device` as
 * subprocesses against one sandbox, each step building on the one before.
 */
let sandbox: RunningSandbox;
let stores: Stores;
const repository = process.cwd();
const SERIAL = 'SN-LIFE-1';

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

function run(command: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: repository, env: { ...process.env, ...sandbox.env }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}
const fleet = (...args: string[]) => run('npx', ['fleet', ...args]);
const device = (...args: string[]) => run('npm', ['run', '-s', 'device', '--', ...args]);
const folder = () => join(sandbox.env.SANDBOX_DIR as string, 'devices', SERIAL);
const next = { certificate: 'next.crt', key: 'next.key' };
const old = { certificate: 'old.crt', key: 'old.key' };

describe('a device rotating its certificate at an operator request', () => {
  it('registers with npm run device', async () => {
    const claims = await fleet('claims', 'create', '--batch', 'LIFE', '--count', '1', '--output', 'json');
    const [claim] = JSON.parse(claims.stdout) as { token: string }[];

    const result = await device('--serial', SERIAL, '--token', claim?.token as string);

    expect(result.code).toBe(0);
    expect(await credentialsStatus(sandbox, SERIAL)).toBe('200');
  }, 30_000);

  it('is asked to rotate with fleet devices rotate, which prints the device', async () => {
    const result = await fleet('devices', 'rotate', SERIAL, '--output', 'json');

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      serialNumber: SERIAL,
      status: 'ACTIVE',
      rotation: { due: true, overdue: false, requestedAt: expect.any(String) },
    });
  });

  it('sees the request, gets a new certificate, and both certificates get credentials until it confirms', async () => {
    const result = await device('--rotate', '--serial', SERIAL, '--no-confirm');

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^rotation +requested at \S+/m);
    expect(result.stdout).toMatch(/^rotated +SN-LIFE-1 \(HTTP 201\)/m);
    expect(result.stdout).toMatch(/^pending +both certificates work until/m);
    expect(await credentialsStatus(sandbox, SERIAL)).toBe('200');
    expect(await credentialsStatus(sandbox, SERIAL, next)).toBe('200');
  }, 30_000);

  it('confirms with the new key: the old certificate gets 403, the new one 200', async () => {
    copyFileSync(join(folder(), 'device.crt'), join(folder(), 'old.crt'));
    copyFileSync(join(folder(), 'device.key'), join(folder(), 'old.key'));

    const result = await device('--confirm', '--serial', SERIAL);

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^confirmed +certificate \S+ is current \(HTTP 200\)/m);
    expect(await credentialsStatus(sandbox, SERIAL, old)).toBe('403');
    expect(await credentialsStatus(sandbox, SERIAL)).toBe('200');
  }, 30_000);

  it('shows it all in fleet devices history, oldest first, with who did each', async () => {
    const result = await fleet('devices', 'history', SERIAL, '--output', 'json');
    const events = JSON.parse(result.stdout) as HistoryEvent[];
    const story = ['REGISTERED', 'ROTATION_REQUESTED', 'ROTATED', 'CONFIRMED'];

    expect(result.code).toBe(0);
    expect(events.map((entry) => entry.event).filter((name) => story.includes(name))).toEqual(story);
    expect(events.map((entry) => entry.at)).toEqual(events.map((entry) => entry.at).sort());
    const byName = (name: string) => events.find((entry) => entry.event === name);
    expect(byName('REGISTERED')?.actor).toBe('device');
    expect(byName('ROTATION_REQUESTED')?.actor).toMatch(/^arn:aws:iam::/);
    expect(byName('CONFIRMED')).toMatchObject({
      actor: 'device',
      certificateId: byName('ROTATED')?.certificateId,
      previousCertificateId: byName('REGISTERED')?.certificateId,
    });
  });
});

describe('the rotation routes under attack, through the front door', () => {
  const keyOf = (serial: string) => {
    const dir = join(sandbox.env.SANDBOX_DIR as string, 'devices', serial);
    return {
      privateKey: createPrivateKey(readFileSync(join(dir, 'device.key'))),
      certificatePem: readFileSync(join(dir, 'device.crt'), 'utf8'),
    };
  };
  const rotation = (proof: string) =>
    fetch(`${sandbox.info.apiUrl}/rotation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ proof }),
    }).then(async (response) => ({
      status: response.status,
      body: (await response.json()) as { code?: string },
    }));

  it("refuses a rotation signed with another device's key", async () => {
    const claims = await fleet('claims', 'create', '--batch', 'LIFE', '--count', '1', '--output', 'json');
    const [claim] = JSON.parse(claims.stdout) as { token: string }[];
    expect((await device('--serial', 'SN-LIFE-2', '--token', claim?.token as string)).code).toBe(0);

    const forged = await deviceProof({
      action: 'rotate',
      serialNumber: SERIAL,
      ...keyOf('SN-LIFE-2'),
      csr: buildCsr().pem,
    });

    expect(await rotation(forged)).toMatchObject({ status: 401, body: { code: 'DEVICE_PROOF_INVALID' } });
  }, 30_000);

  it('refuses a captured rotation request sent again', async () => {
    const captured = await deviceProof({
      action: 'rotate',
      serialNumber: SERIAL,
      ...keyOf(SERIAL),
      csr: buildCsr().pem,
    });

    const first = await rotation(captured);
    const replayed = await rotation(captured);

    expect(first.status).toBe(201);
    expect(replayed).toMatchObject({ status: 401, body: { code: 'DEVICE_PROOF_REPLAYED' } });
  });
});

describe('a device reset after a repair', () => {
  it('registers again, once, with a claim bound to its serial, and keeps its thing name', async () => {
    const before = JSON.parse((await fleet('devices', 'get', SERIAL, '--output', 'json')).stdout) as {
      certificateId: string;
    };
    const reset = await fleet('devices', 'reset', SERIAL, '--yes', '--output', 'json');
    expect(reset.code).toBe(0);
    // The old certificate is gone from AWS IoT (the rotation left waiting above, too).
    await expect(
      stores.iot.send(new DescribeCertificateCommand({ certificateId: before.certificateId })),
    ).rejects.toThrow(/ResourceNotFound|does not exist/);
    expect(JSON.parse(reset.stdout)).toMatchObject({ serialNumber: SERIAL, status: 'RESET' });
    expect(reset.stderr).toMatch(/npx fleet claims create --batch .* --serials-file/);
    expect(await credentialsStatus(sandbox, SERIAL)).toBe('403');
    const serials = join(mkdtempSync(join(tmpdir(), 'rma-')), 'serials.txt');
    writeFileSync(serials, `${SERIAL}\n`);
    const claims = await fleet(
      'claims',
      'create',
      '--batch',
      'RMA-1',
      '--serials-file',
      serials,
      '--output',
      'json',
    );
    const [claim] = JSON.parse(claims.stdout) as { token: string }[];

    const again = await device('--serial', SERIAL, '--token', claim?.token as string);

    expect(again.code).toBe(0);
    expect(await credentialsStatus(sandbox, SERIAL)).toBe('200');
    const shown = await fleet('devices', 'get', SERIAL, '--output', 'json');
    // Its batch stays the one it was made in; the RMA batch only lent the claim.
    expect(JSON.parse(shown.stdout)).toMatchObject({ status: 'ACTIVE', thingName: SERIAL, batchId: 'LIFE' });
    const history = JSON.parse(
      (await fleet('devices', 'history', SERIAL, '--output', 'json')).stdout,
    ) as HistoryEvent[];
    expect(history.map((entry) => entry.event).slice(-2)).toEqual(['RESET', 'REGISTERED']);
  }, 60_000);
});
