import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CreatedClaim } from '../shared/admin/admin-service.js';
import { type ApiTarget, CliError, call } from './api-client.js';
import { type Format, printRows, progress } from './output.js';

const USAGE = `fleet: manufacturing-line tooling for fleet-provisioning

usage:
  fleet claims create --batch ID --count N [--ttl SECONDS] [--serials-file FILE] [--max-uses N]
                      [--allow-server-keygen] [--thing-name-prefix P]
  fleet claims list --batch ID
  fleet claims revoke (--batch ID | --claim-id ID)
  fleet devices get SERIAL
  fleet devices list [--batch ID] [--status PROVISIONING|ACTIVE|FAILED|DECOMMISSIONED]
  fleet devices decommission SERIAL

options:
  --output table|json|csv   how to print results (default: table)
  --api-url URL             a deployed stage's API (signed with SigV4 from the standard AWS
                            credential chain); default: the local sandbox (.sandbox/sandbox.json),
                            signed with the sandbox's admin credentials
  --region REGION           for signing (default: from the URL, or AWS_REGION)
  -h, --help
`;

const CHUNK = 1000; // the API's largest batch per request

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      batch: { type: 'string' },
      count: { type: 'string' },
      ttl: { type: 'string', default: '86400' },
      'serials-file': { type: 'string' },
      'max-uses': { type: 'string' },
      'allow-server-keygen': { type: 'boolean' },
      'thing-name-prefix': { type: 'string' },
      'claim-id': { type: 'string' },
      status: { type: 'string' },
      output: { type: 'string', default: 'table' },
      'api-url': { type: 'string' },
      region: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [resource, action, argument] = positionals;
  if (values.help || !resource) {
    process.stdout.write(USAGE);
    return;
  }
  const format = values.output as Format;
  if (!['table', 'json', 'csv'].includes(format)) throw usage(`--output must be table, json or csv`);
  const target = apiTarget(values['api-url'], values.region);

  switch (`${resource} ${action ?? ''}`) {
    case 'claims create': {
      const batchId = values.batch ?? throwUsage('--batch is required');
      const serials = values['serials-file'] ? readSerials(values['serials-file']) : undefined;
      const count =
        serials?.length ??
        positiveInt(values.count ?? throwUsage('--count or --serials-file is required'), '--count');
      const created: CreatedClaim[] = [];
      const bar = progress('creating claims', count);
      for (let offset = 0; offset < count; offset += CHUNK) {
        const size = Math.min(CHUNK, count - offset);
        const out = await call<{ claims: CreatedClaim[] }>(target, 'POST', 'claims', {
          batchId,
          ttlSeconds: positiveInt(values.ttl as string, '--ttl'),
          ...(serials ? { serialNumbers: serials.slice(offset, offset + size) } : { count: size }),
          ...(values['max-uses'] ? { maxUses: positiveInt(values['max-uses'], '--max-uses') } : {}),
          ...(values['allow-server-keygen'] ? { allowServerKeygen: true } : {}),
          ...(values['thing-name-prefix'] ? { thingNamePrefix: values['thing-name-prefix'] } : {}),
        });
        created.push(...out.claims);
        bar.tick(created.length);
      }
      bar.end();
      printRows(
        created.map((c) => ({ batchId, ...c })) as never,
        ['batchId', 'claimId', 'token', 'serialNumber', 'expiresAt'],
        format,
      );
      return;
    }
    case 'claims list': {
      const batchId = values.batch ?? throwUsage('--batch is required');
      const claims = await allPages('claims', `claims?batchId=${encodeURIComponent(batchId)}`, target);
      printRows(claims, ['claimId', 'status', 'usesLeft', 'maxUses', 'serialNumber', 'expiresAt'], format);
      return;
    }
    case 'claims revoke': {
      const body = values['claim-id']
        ? { claimId: values['claim-id'] }
        : values.batch
          ? { batchId: values.batch }
          : throwUsage('--batch or --claim-id is required');
      const out = await call<{ revoked: number }>(target, 'POST', 'claims/revoke', body);
      printRows([out], ['revoked'], format);
      return;
    }
    case 'devices get': {
      const serial = argument ?? throwUsage('give the serial number');
      printRows([await call(target, 'GET', `devices/${encodeURIComponent(serial)}`)], DEVICE_COLUMNS, format);
      return;
    }
    case 'devices list': {
      if (!values.batch && !values.status) throw usage('give --batch or --status');
      const query = new URLSearchParams({
        ...(values.batch ? { batchId: values.batch } : {}),
        ...(values.status ? { status: values.status } : {}),
      });
      printRows(await allPages('devices', `devices?${query}`, target), DEVICE_COLUMNS, format);
      return;
    }
    case 'devices decommission': {
      const serial = argument ?? throwUsage('give the serial number');
      printRows(
        [await call(target, 'POST', `devices/${encodeURIComponent(serial)}/decommission`)],
        DEVICE_COLUMNS,
        format,
      );
      return;
    }
    default:
      throw usage(`unknown command "${positionals.join(' ')}"`);
  }
}

const DEVICE_COLUMNS = ['serialNumber', 'status', 'thingName', 'batchId', 'certificateId', 'updatedAt'];

/** Follows the opaque cursors until the last page. */
async function allPages(key: string, path: string, target: ApiTarget): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  let cursor: string | undefined;
  do {
    const page = await call<Record<string, unknown> & { cursor?: string }>(
      target,
      'GET',
      `${path}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    rows.push(...((page[key] as Record<string, unknown>[]) ?? []));
    cursor = page.cursor;
  } while (cursor);
  return rows;
}

function apiTarget(apiUrl: string | undefined, region: string | undefined): ApiTarget {
  if (apiUrl) {
    const fromUrl = /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com/.exec(apiUrl)?.[1];
    const signingRegion = region ?? fromUrl ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
    if (!signingRegion) throw usage('give --region (it cannot be read from --api-url)');
    return { url: apiUrl, sign: true, region: signingRegion };
  }
  const dir = process.env.SANDBOX_DIR ?? '.sandbox';
  let info: { apiUrl: string; region: string; adminAccessKeyId?: string; adminSecretAccessKey?: string };
  try {
    info = JSON.parse(readFileSync(join(dir, 'sandbox.json'), 'utf8')) as typeof info;
  } catch {
    return { url: 'http://127.0.0.1:3000', sign: false, region: 'eu-west-1' };
  }
  // The sandbox's front door checks SigV4 on the admin routes as AWS does, against its own credentials.
  return info.adminAccessKeyId && info.adminSecretAccessKey
    ? {
        url: info.apiUrl,
        sign: true,
        region: info.region,
        credentials: { accessKeyId: info.adminAccessKeyId, secretAccessKey: info.adminSecretAccessKey },
      }
    : { url: info.apiUrl, sign: false, region: info.region };
}

function readSerials(file: string): string[] {
  try {
    return readFileSync(file, 'utf8')
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter(Boolean);
  } catch (error) {
    throw usage(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

function positiveInt(value: string, name: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number <= 0)
    throw usage(`${name} must be a positive whole number, got "${value}"`);
  return number;
}

function usage(message: string): CliError {
  return new CliError(`${message} (fleet --help for usage)`, 2);
}

function throwUsage(message: string): never {
  throw usage(message);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof CliError) {
    process.stderr.write(`fleet: ${error.message}\n`);
    process.exit(error.exitCode);
  }
  // parseArgs rejects unknown options with a TypeError that carries a code.
  if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`fleet: ${(error as Error).message} (fleet --help for usage)\n`);
    process.exit(2);
  }
  process.stderr.write(`fleet: unexpected error: ${(error as Error).message}\n`);
  process.exit(1);
});
