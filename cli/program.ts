import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { DEVICE_STATUSES } from '../shared/admin/response-schemas.js';
import { BATCH_ID, CLAIM_LIMITS, THING_NAME_PREFIX } from '../shared/admin/schemas.js';
import { ApiClient } from './api-client.js';
import { getBatch, listBatches, rotateBatch } from './batches.js';
import { createClaimsRun } from './claims-create.js';
import { listClaims } from './claims-list.js';
import { readClaimIds, revokeBatch, revokeClaimIds } from './claims-revoke.js';
import { deviceHistory } from './device-history.js';
import { decommissionDevice, getDevice, listDevices, resetDevice, rotateDevice } from './devices.js';
import { findApi } from './discovery.js';
import { UsageError } from './errors.js';
import { attribute, collect, matching, wholeNumber } from './options.js';
import { FORMATS, type Format } from './output.js';

/** The most claims one `claims create` makes: a thousand requests of a thousand. */
const MAX_COUNT = 1_000_000;

interface ApiOptions {
  output: Format;
  apiUrl?: string;
  region?: string;
}

const batchOption = (description: string) =>
  new Option('--batch <id>', description).argParser(
    matching('--batch', BATCH_ID, '1 to 64 letters, digits, "_", ".", ":" or "-"'),
  );

const AFTER_ALL = `
Which API: --api-url, else FLEET_API_URL, else the sandbox's sandbox.json (in SANDBOX_DIR when set, else
the nearest .sandbox/sandbox.json in this folder or one above it). A URL is signed with SigV4 from the
standard AWS credential chain; a sandbox with its own admin credentials.

Exit codes: 0 done; 1 the API refused, could not be reached, answered something else, or the work
stopped partway (what was done is in the output); 2 bad arguments or input, nothing sent; 130 Ctrl-C.`;

/** The `fleet` command line: commands, their options with limits and defaults, and their help. */
export function buildProgram(): Command {
  const program = new Command('fleet')
    .description('Manufacturing-line tooling for fleet-provisioning: claim tokens, batches and devices.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command')
    .exitOverride()
    // Errors are printed by main.ts, as one `fleet:` line with a pointer to the right --help.
    .configureOutput({ outputError: () => {} })
    .addHelpText('after', AFTER_ALL);

  const claims = program.command('claims').description('claim tokens: create, list, revoke');

  withApiOptions(
    claims
      .command('create')
      .description(
        'Create claim tokens for a batch, 1,000 per request, written out as each request is answered.\n' +
          'Give --count, or --serials-file for one token bound to each serial number.',
      )
      .addOption(batchOption('the batch the claims belong to (required)').makeOptionMandatory())
      .addOption(
        new Option('--count <n>', `how many claims, 1 to ${MAX_COUNT}`)
          .argParser(wholeNumber('--count', 1, MAX_COUNT))
          .conflicts('serialsFile'),
      )
      .option(
        '--serials-file <file>',
        'a file of serial numbers, one a line: one claim bound to each (the whole file is checked first)',
      )
      .addOption(
        new Option(
          '--ttl <seconds>',
          `how long the tokens stay valid, ${CLAIM_LIMITS.ttlSeconds.min} to ${CLAIM_LIMITS.ttlSeconds.max} seconds`,
        )
          .argParser(wholeNumber('--ttl', CLAIM_LIMITS.ttlSeconds.min, CLAIM_LIMITS.ttlSeconds.max))
          .default(86_400),
      )
      .addOption(
        new Option(
          '--max-uses <n>',
          `registrations each token allows, ${CLAIM_LIMITS.maxUses.min} to ${CLAIM_LIMITS.maxUses.max}`,
        )
          .argParser(wholeNumber('--max-uses', CLAIM_LIMITS.maxUses.min, CLAIM_LIMITS.maxUses.max))
          .default(1),
      )
      .option('--allow-server-keygen', 'let a device without a CSR have its key made by the API (single use)')
      .addOption(
        new Option(
          '--thing-name-prefix <prefix>',
          'put before the serial number in thing names: up to 64 letters, digits, "_", ":" or "-"',
        ).argParser(
          matching('--thing-name-prefix', THING_NAME_PREFIX, 'up to 64 letters, digits, "_", ":" or "-"'),
        ),
      )
      .addOption(
        new Option(
          '--attributes <name=value>',
          'an attribute stamped on every device registered with these tokens; repeat for more',
        ).argParser(attribute),
      ),
  ).action(async (options: ApiOptions & CreateFlags) => {
    if (options.count === undefined && options.serialsFile === undefined) {
      throw new UsageError('give --count N or --serials-file FILE');
    }
    await createClaimsRun(client(options), {
      batchId: options.batch,
      ...(options.count !== undefined ? { count: options.count } : {}),
      ...(options.serialsFile !== undefined ? { serialsFile: options.serialsFile } : {}),
      ttlSeconds: options.ttl,
      maxUses: options.maxUses,
      ...(options.allowServerKeygen ? { allowServerKeygen: true } : {}),
      ...(options.thingNamePrefix ? { thingNamePrefix: options.thingNamePrefix } : {}),
      ...(options.attributes ? { attributes: options.attributes } : {}),
      format: options.output,
    });
  });

  withApiOptions(
    claims
      .command('list')
      .description("List a batch's claims (never their tokens).")
      .addOption(batchOption('the batch (required)').makeOptionMandatory()),
  ).action(async (options: ApiOptions & { batch: string }) => {
    await listClaims(client(options), options.batch, options.output);
  });

  withApiOptions(
    claims
      .command('revoke')
      .description(
        'Revoke claims so their unused tokens are refused: a whole batch, or claims by id.\n' +
          'Reports what it revoked; exit 1 if any claim could not be revoked.',
      )
      .addOption(batchOption('every claim of this batch'))
      .option('--claim-id <id>', 'a claim to revoke; repeat for more', collect)
      .option(
        '--claims-file <file>',
        'the claims in a file: the CSV or JSON that claims create wrote, or one claim id a line',
      ),
  ).action(async (options: ApiOptions & { batch?: string; claimId?: string[]; claimsFile?: string }) => {
    const given = [options.batch, options.claimId, options.claimsFile].filter((value) => value !== undefined);
    if (given.length !== 1) throw new UsageError('give one of --batch, --claim-id or --claims-file');
    if (options.batch) return revokeBatch(client(options), options.batch, options.output);
    const ids = options.claimsFile ? readClaimIds(options.claimsFile) : [...new Set(options.claimId)];
    return revokeClaimIds(client(options), ids, options.output);
  });

  const batches = program.command('batches').description('batches: their status and counts at a glance');

  withApiOptions(
    batches.command('list').description('Every batch, with its claims and devices counted.'),
  ).action(async (options: ApiOptions) => {
    await listBatches(client(options), options.output);
  });

  withApiOptions(
    batches
      .command('get')
      .description(
        'One batch: claims issued / used / revoked / expired, devices ACTIVE / FAILED / DECOMMISSIONED,\n' +
          'first and last registration, and when its devices were last asked to rotate.',
      )
      .argument('<batch>', 'its id'),
  ).action(async (batchId: string, options: ApiOptions) => {
    await getBatch(client(options), batchId, options.output);
  });

  const devices = program
    .command('devices')
    .description('devices: get, list, rotate, reset, history, decommission');

  withApiOptions(
    devices.command('get').description('Show one device.').argument('<serial>', 'its serial number'),
  ).action(async (serial: string, options: ApiOptions) => {
    await getDevice(client(options), serial, options.output);
  });

  withApiOptions(
    devices
      .command('list')
      .summary('List devices by batch, by status, or both (give at least one).')
      .description(
        'List devices by batch, by status, or both (give at least one).\n' +
          'With --rotation overdue: only those asked to rotate that have not done it in\n' +
          'time, with the columns rotation due, rotation overdue, rotation requested at.',
      )
      .addOption(batchOption('the batch'))
      .addOption(new Option('--status <status>', 'the status').choices(DEVICE_STATUSES))
      .addOption(
        new Option('--rotation <state>', 'only devices whose requested rotation is overdue').choices(
          ROTATION_FILTERS,
        ),
      ),
  ).action(async (options: ApiOptions & ListFlags) => {
    if (!options.batch && !options.status) throw new UsageError('give --batch, --status or both');
    await listDevices(
      client(options),
      {
        ...(options.batch ? { batchId: options.batch } : {}),
        ...(options.status ? { status: options.status } : {}),
        ...(options.rotation ? { rotation: options.rotation } : {}),
      },
      options.output,
    );
  });

  withApiOptions(
    devices
      .command('rotate')
      .summary('Ask a device, or every device of a batch, to rotate its certificate.')
      .description(
        'Ask a device, or every device of a batch, to rotate its certificate.\n' +
          'Give a serial number or --batch, not both. Prints the device, or the batch.\n' +
          'The device learns it when it next checks (GET /rotation), then makes a new key\n' +
          'and asks for its new certificate itself: nothing changes on it before then.',
      )
      .argument('[serial]', 'the serial number of one device')
      .addOption(batchOption('every device of this batch (one request)')),
  ).action(async (serial: string | undefined, options: ApiOptions & { batch?: string }) => {
    if ((serial === undefined) === (options.batch === undefined)) {
      throw new UsageError('give a serial number or --batch, not both');
    }
    if (options.batch) return rotateBatch(client(options), options.batch, options.output);
    return rotateDevice(client(options), serial as string, options.output);
  });

  withApiOptions(
    devices
      .command('reset')
      .summary('After a repair: retire its certificates so that it may register again.')
      .description(
        "After a repair: retire the device's certificates and mark it RESET, keeping its\n" +
          'thing and thing name. It may then register again, once, with a claim bound to\n' +
          'its serial number (fleet claims create --batch B --serials-file F), and gets\n' +
          'the same thing name. Asks first on a terminal; elsewhere give --yes.',
      )
      .argument('<serial>', 'its serial number')
      .option('-y, --yes', 'do not ask for confirmation (required when not on a terminal)'),
  ).action(async (serial: string, options: ApiOptions & { yes?: boolean }) => {
    await resetDevice(client(options), serial, {
      format: options.output,
      ...(options.yes ? { yes: true } : {}),
    });
  });

  withApiOptions(
    devices
      .command('history')
      .summary("A device's history, oldest first.")
      .description(
        "A device's whole history, oldest first: registrations and failures, rotations\n" +
          'asked for, made and confirmed, certificates retired, resets, decommissioning,\n' +
          "and who did each (device, reconciler, or an operator's IAM principal).\n" +
          '--output json prints the events as the API gives them.',
      )
      .argument('<serial>', 'its serial number'),
  ).action(async (serial: string, options: ApiOptions) => {
    await deviceHistory(client(options), serial, options.output);
  });

  withApiOptions(
    devices
      .command('decommission')
      .description(
        'Take a device out of the fleet: certificate deactivated and detached, thing removed, record kept.\n' +
          'Asks first on a terminal; elsewhere give --yes.',
      )
      .argument('<serial>', 'its serial number')
      .option('-y, --yes', 'do not ask for confirmation (required when not on a terminal)'),
  ).action(async (serial: string, options: ApiOptions & { yes?: boolean }) => {
    await decommissionDevice(client(options), serial, {
      format: options.output,
      ...(options.yes ? { yes: true } : {}),
    });
  });

  return program;
}

const ROTATION_FILTERS = ['overdue'] as const;

interface ListFlags {
  batch?: string;
  status?: (typeof DEVICE_STATUSES)[number];
  rotation?: (typeof ROTATION_FILTERS)[number];
}

interface CreateFlags {
  batch: string;
  count?: number;
  serialsFile?: string;
  ttl: number;
  maxUses: number;
  allowServerKeygen?: boolean;
  thingNamePrefix?: string;
  attributes?: Record<string, string>;
}

function withApiOptions(command: Command): Command {
  return command
    .addOption(new Option('-o, --output <format>', 'how to print results').choices(FORMATS).default('table'))
    .option(
      '--api-url <url>',
      'the admin API (default: FLEET_API_URL, then the nearest .sandbox/sandbox.json)',
    )
    .option('--region <region>', 'the region to sign for (default: from the URL, or AWS_REGION)');
}

function client(options: ApiOptions): ApiClient {
  return new ApiClient(
    findApi({
      ...(options.apiUrl ? { apiUrl: options.apiUrl } : {}),
      ...(options.region ? { region: options.region } : {}),
      env: process.env,
      cwd: process.cwd(),
    }),
  );
}

function packageVersion(): string {
  const file = new URL('../package.json', import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}
