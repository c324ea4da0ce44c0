import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { CommanderError } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiClient } from '../../cli/api-client.js';
import { readClaimIds } from '../../cli/claims-revoke.js';
import { confirm } from '../../cli/confirm.js';
import { details, deviceHistory } from '../../cli/device-history.js';
import { listDevices } from '../../cli/devices.js';
import { findApi, NO_API_MESSAGE } from '../../cli/discovery.js';
import { UsageError } from '../../cli/errors.js';
import { attribute, wholeNumber } from '../../cli/options.js';
import { columnLabel } from '../../cli/output.js';
import { buildProgram } from '../../cli/program.js';
import { checkSerials } from '../../cli/serials.js';

const folder = () => mkdtempSync(join(tmpdir(), 'fleet-unit-'));
/** An API nobody listens on: the tests that talk to it stub `fetch`. */
const target = {
  url: 'http://127.0.0.1:9',
  region: 'eu-west-1',
  credentials: { accessKeyId: 'A', secretAccessKey: 'S' },
  source: '--api-url',
};

describe('checking a serials file', () => {
  it('names each malformed, too long or repeated line and keeps the rest with their line numbers', () => {
    const text = ['SN-1', '', '  SN-2  ', 'SN 3', 'S'.repeat(129), 'SN-1'].join('\r\n');

    const { serials, problems } = checkSerials(text);

    expect(serials).toEqual([
      { serial: 'SN-1', line: 1 },
      { serial: 'SN-2', line: 3 },
    ]);
    expect(problems).toEqual([
      expect.stringMatching(/^line 4: "SN 3" has " "/),
      expect.stringMatching(/^line 5: .*129 characters; a serial number has at most 128$/),
      'line 6: "SN-1" repeats line 1',
    ]);
  });
});

describe('options', () => {
  it.each(['0', '-5', 'abc', '1.5', '1e3', ''])('refuses %j as a count, naming the range', (value) => {
    expect(() => wholeNumber('--count', 1, 1000)(value)).toThrow(
      new UsageError(`--count must be a whole number from 1 to 1000; got "${value}"`),
    );
  });

  it('collects repeated --attributes into one object, refusing a name given twice', () => {
    const attributes = attribute('shift=night', attribute('line=L7'));

    expect(attributes).toEqual({ line: 'L7', shift: 'night' });
    expect(() => attribute('line=L8', attributes)).toThrow(/gives "line" twice/);
  });

  it('keeps an "=" inside an attribute value', () => {
    expect(attribute('formula=a=b')).toEqual({ formula: 'a=b' });
  });
});

describe('table headers', () => {
  it.each([
    ['serialNumber', 'SERIAL NUMBER'],
    ['certificateId', 'CERTIFICATE ID'],
    ['usesLeft', 'USES LEFT'],
    ['status', 'STATUS'],
  ])('shows %s as %s', (column, label) => {
    expect(columnLabel(column)).toBe(label);
  });
});

describe('finding the API', () => {
  it('prefers --api-url, then FLEET_API_URL, and reads the region from an execute-api URL', () => {
    const env = { FLEET_API_URL: 'https://abc.execute-api.eu-central-1.amazonaws.com' };

    expect(findApi({ apiUrl: 'https://x.execute-api.us-east-1.amazonaws.com', env, cwd: '/' })).toMatchObject(
      {
        region: 'us-east-1',
        source: '--api-url',
      },
    );
    expect(findApi({ env, cwd: '/' })).toMatchObject({ region: 'eu-central-1', source: 'FLEET_API_URL' });
  });

  it('walks up to the nearest .sandbox/sandbox.json and signs with its admin credentials', () => {
    const root = folder();
    mkdirSync(join(root, '.sandbox'));
    const info = {
      apiUrl: 'http://127.0.0.1:3100',
      region: 'eu-west-1',
      adminAccessKeyId: 'A',
      adminSecretAccessKey: 'S',
    };
    writeFileSync(join(root, '.sandbox', 'sandbox.json'), JSON.stringify(info));
    const deep = join(root, 'a', 'b');
    mkdirSync(deep, { recursive: true });

    expect(findApi({ env: {}, cwd: deep })).toEqual({
      url: 'http://127.0.0.1:3100',
      region: 'eu-west-1',
      credentials: { accessKeyId: 'A', secretAccessKey: 'S' },
      source: join(root, '.sandbox', 'sandbox.json'),
    });
  });

  it('refuses to guess when nothing names an API', () => {
    expect(() => findApi({ env: {}, cwd: folder() })).toThrow(NO_API_MESSAGE);
  });

  it('refuses a URL it cannot sign for without a region', () => {
    expect(() => findApi({ apiUrl: 'http://127.0.0.1:3000', env: {}, cwd: '/' })).toThrow(/--region/);
  });
});

describe('reading claim ids to revoke', () => {
  it('reads the claimId column of the CSV that claims create wrote', () => {
    const file = join(folder(), 'out.csv');
    writeFileSync(file, 'batchId,claimId,token,serialNumber,expiresAt\nB,c-1,fpc_x,,t\nB,c-2,fpc_y,,t\n');

    expect(readClaimIds(file)).toEqual(['c-1', 'c-2']);
  });

  it('reads a JSON array that a killed run left open, one element a line', () => {
    const file = join(folder(), 'out.json');
    writeFileSync(file, '[\n{"claimId":"c-1","token":"fpc_x"},\n{"claimId":"c-2","token":"fpc_y"}');

    expect(readClaimIds(file)).toEqual(['c-1', 'c-2']);
  });

  it('reads one claim id a line', () => {
    const file = join(folder(), 'ids.txt');
    writeFileSync(file, 'c-1\nc-2\n\nc-1\n');

    expect(readClaimIds(file)).toEqual(['c-1', 'c-2']);
  });
});

describe('confirmation', () => {
  const terminal = (answer: string) => {
    const input = Object.assign(new PassThrough(), { isTTY: true });
    const output = Object.assign(new PassThrough(), { isTTY: true });
    setImmediate(() => input.write(`${answer}\n`));
    return { input, output };
  };

  it('goes ahead only on "y" or "yes" from a terminal', async () => {
    expect(await confirm('Sure?', 'do it', terminal('yes'))).toBe(true);
    expect(await confirm('Sure?', 'do it', terminal('n'))).toBe(false);
    expect(await confirm('Sure?', 'do it', terminal(''))).toBe(false);
  });

  it('asks for --yes when there is no terminal to ask on', async () => {
    const input = new PassThrough();
    const output = new PassThrough();

    await expect(confirm('Sure?', 'do it', { input, output })).rejects.toThrow(
      'refusing to do it without confirmation: not a terminal; pass --yes',
    );
  });
});

describe('argument errors of rotate, reset, history and list --rotation', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllGlobals();
  });

  /** Runs `fleet <args>` in-process against an API that must never be asked; returns what it threw. */
  async function refusal(...args: string[]): Promise<unknown> {
    const fetch = vi.fn(async () => new Response('{}', { status: 500 }));
    vi.stubGlobal('fetch', fetch);
    const api = ['--api-url', 'http://127.0.0.1:9', '--region', 'eu-west-1'];
    const error = await buildProgram()
      .parseAsync([...args, ...api], { from: 'user' })
      .then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
    expect(fetch).not.toHaveBeenCalled();
    return error;
  }

  it.each([
    [['devices', 'rotate'], 'neither a serial nor --batch'],
    [['devices', 'rotate', 'SN-1', '--batch', 'B1'], 'both a serial and --batch'],
  ])('refuses %j (%s) with one usage line, before any request', async (args) => {
    const error = await refusal(...args);

    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toBe('give a serial number or --batch, not both');
    expect((error as UsageError).exitCode).toBe(2);
  });

  it('refuses a malformed --batch to rotate, naming the rule', async () => {
    const error = await refusal('devices', 'rotate', '--batch', 'no spaces');

    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toMatch(/^--batch must be 1 to 64 letters/);
  });

  it('refuses to reset without --yes when there is no terminal to ask on', async () => {
    // As under CI, even when the tests run from a terminal.
    const tty = Object.getOwnPropertyDescriptor(process.stdin, 'isTTY');
    Object.defineProperty(process.stdin, 'isTTY', { value: false, configurable: true });

    const error = await refusal('devices', 'reset', 'SN-1').finally(() => {
      if (tty) Object.defineProperty(process.stdin, 'isTTY', tty);
      else delete (process.stdin as { isTTY?: boolean }).isTTY;
    });

    expect(error).toEqual(
      new UsageError('refusing to reset SN-1 without confirmation: not a terminal; pass --yes'),
    );
  });

  it('refuses --rotation other than overdue, and --rotation without --batch or --status', async () => {
    const wrong = await refusal('devices', 'list', '--status', 'ACTIVE', '--rotation', 'due');
    const alone = await refusal('devices', 'list', '--rotation', 'overdue');

    // main.ts reports a CommanderError as a usage error too: exit 2.
    expect(wrong).toBeInstanceOf(CommanderError);
    expect((wrong as CommanderError).code).toBe('commander.invalidArgument');
    expect(alone).toEqual(new UsageError('give --batch, --status or both'));
  });

  it.each([
    [['devices', 'history'], 'commander.missingArgument'],
    [['devices', 'history', 'SN-1', '--output', 'xml'], 'commander.invalidArgument'],
    [['devices', 'reset'], 'commander.missingArgument'],
  ])('refuses %j before any request', async (args, code) => {
    const error = await refusal(...args);

    expect(error).toBeInstanceOf(CommanderError);
    expect((error as CommanderError).code).toBe(code);
  });
});

describe('device history', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllGlobals();
  });

  const registered = { at: '2026-12-01T10:00:00.000Z', event: 'REGISTERED', actor: 'device', claimId: 'c-1' };
  const requested = {
    at: '2026-12-02T10:00:00.000Z',
    event: 'ROTATION_REQUESTED',
    actor: 'arn:aws:iam::000000000000:user/ops',
  };

  it('follows every cursor and prints one JSON array of the events, oldest first, as the API gave them', async () => {
    const pages = [
      { serialNumber: 'SN-1', events: [registered], cursor: 'next-page' },
      { serialNumber: 'SN-1', events: [requested] },
    ];
    const asked: string[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: URL) => {
        asked.push(`${url.pathname}${url.search}`);
        return Response.json(pages[asked.length - 1]);
      }),
    );
    let printed = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk, done?: unknown) => {
      printed += String(chunk);
      if (typeof done === 'function') done();
      return true;
    });

    await deviceHistory(new ApiClient(target), 'SN-1', 'json');

    expect(asked).toEqual([
      '/devices/SN-1/history?limit=1000',
      '/devices/SN-1/history?limit=1000&cursor=next-page',
    ]);
    expect(JSON.parse(printed)).toEqual([registered, requested]);
  });

  it("puts a failure's step, error and rollback in one details cell", () => {
    const failed = {
      at: '2026-12-01T10:00:00.000Z',
      event: 'FAILED' as const,
      actor: 'device',
      step: 'attach',
      error: 'THROTTLED',
      rollback: 'COMPLETED' as const,
    };

    expect(details(failed)).toBe('step=attach; error=THROTTLED; rollback=COMPLETED');
    expect(details({ ...failed, step: undefined, rollback: undefined })).toBe('error=THROTTLED');
  });
});

describe('listing devices whose rotation is overdue', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllGlobals();
  });

  it('asks for rotation=overdue and adds the rotation columns', async () => {
    const device = {
      serialNumber: 'SN-1',
      thingName: 'SN-1',
      status: 'ACTIVE',
      batchId: 'B1',
      claimId: 'c-1',
      attributes: {},
      createdAt: '2026-11-01T10:00:00.000Z',
      updatedAt: '2026-11-01T10:00:00.000Z',
      rotation: { requestedAt: '2026-11-20T10:00:00.000Z', due: true, overdue: true },
    };
    const asked: string[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: URL) => {
        asked.push(`${url.pathname}${url.search}`);
        return Response.json({ devices: [device] });
      }),
    );
    let printed = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk, done?: unknown) => {
      printed += String(chunk);
      if (typeof done === 'function') done();
      return true;
    });
    await listDevices(new ApiClient(target), { batchId: 'B1', rotation: 'overdue' }, 'csv');

    expect(asked).toEqual(['/devices?batchId=B1&rotation=overdue&limit=1000']);
    const [header, row] = printed.trim().split('\n');
    expect(header).toBe(
      'serialNumber,status,thingName,batchId,certificateId,updatedAt,rotationDue,rotationOverdue,rotationRequestedAt',
    );
    expect(row).toMatch(/,true,true,2026-11-20T10:00:00.000Z$/);
  });
});
