import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readClaimIds } from '../../cli/claims-revoke.js';
import { confirm } from '../../cli/confirm.js';
import { findApi, NO_API_MESSAGE } from '../../cli/discovery.js';
import { UsageError } from '../../cli/errors.js';
import { attribute, wholeNumber } from '../../cli/options.js';
import { columnLabel } from '../../cli/output.js';
import { checkSerials } from '../../cli/serials.js';

const folder = () => mkdtempSync(join(tmpdir(), 'fleet-unit-'));

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
