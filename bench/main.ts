/**
 * `npm run bench`: starts a sandbox of its own on free ports and measures registration depth, a
 * burst of devices against AWS IoT's quotas, batch revocation and the handler's CPU. Progress goes
 * to stderr; stdout gets the table, or with `--json` one JSON object. `npm run bench -- --help`.
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { type BenchSandbox, startBenchSandbox } from './bench-sandbox.js';
import { measureBurst, WARM_UP } from './burst.js';
import { measureCpu } from './cpu.js';
import { measureDepth } from './depth.js';
import { jsonReport, type Results, textReport } from './report.js';
import { measureRevoke } from './revoke.js';

const PHASES = ['depth', 'burst', 'revoke', 'cpu'] as const;

const OPTIONS = {
  json: { type: 'boolean', default: false, help: 'print one JSON object instead of the tables' },
  devices: { type: 'string', default: '1000', help: 'burst: devices registering at once' },
  pool: { type: 'string', default: '200', help: 'burst: requests in flight at most' },
  'warm-up': {
    type: 'string',
    default: String(WARM_UP),
    help: 'burst: registrations at once before it starts, not counted (0: none)',
  },
  deadline: { type: 'string', default: '480', help: 'burst: seconds after which devices stop retrying' },
  latency: {
    type: 'string',
    default: '100',
    help: 'depth: ms every AWS call takes (answered that long after it arrives)',
  },
  samples: { type: 'string', default: '15', help: 'depth: registrations measured (after the warm-ups)' },
  warmups: { type: 'string', default: '3', help: 'depth: registrations before measuring' },
  'revoke-claims': { type: 'string', default: '100000', help: 'revoke: claims in the revoked batch' },
  'cpu-registrations': {
    type: 'string',
    default: '100',
    help: 'cpu: registrations measured (and as many profiled)',
  },
  only: { type: 'string', default: PHASES.join(','), help: `measurements to run, of ${PHASES.join(',')}` },
  help: { type: 'boolean', default: false, help: 'show this help' },
} as const;

function usage(): string {
  const lines = Object.entries(OPTIONS).map(([name, option]) => {
    const value = option.type === 'string' ? ` <n>` : '';
    const fallback = option.type === 'string' ? ` (default ${option.default})` : '';
    return `  --${name}${value}`.padEnd(28) + option.help + fallback;
  });
  return `Usage: npm run bench [-- options]   (npm run -s bench -- --json for the JSON alone)\n${lines.join('\n')}\n`;
}

function settings(argv: string[]) {
  const { values } = parseArgs({ args: argv, options: OPTIONS, strict: true });
  const whole = (name: keyof typeof OPTIONS) => {
    const value = Number(values[name]);
    if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} takes a whole number ≥ 0`);
    return value;
  };
  const count = (name: keyof typeof OPTIONS) => {
    const value = Number(values[name]);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} takes a whole number ≥ 1`);
    return value;
  };
  const only = new Set((values.only ?? '').split(',').filter(Boolean));
  for (const phase of only) {
    if (!(PHASES as readonly string[]).includes(phase)) throw new Error(`--only takes ${PHASES.join(',')}`);
  }
  return {
    json: values.json ?? false,
    help: values.help ?? false,
    only,
    devices: count('devices'),
    pool: count('pool'),
    warmUp: whole('warm-up'),
    deadlineSeconds: count('deadline'),
    latencyMs: count('latency'),
    samples: count('samples'),
    warmups: count('warmups'),
    revokeClaims: count('revoke-claims'),
    cpuRegistrations: count('cpu-registrations'),
  };
}

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

async function measure(bench: BenchSandbox, options: ReturnType<typeof settings>): Promise<Results> {
  const { only } = options;
  const depth = only.has('depth')
    ? await measureDepth(
        bench,
        { latencyMs: options.latencyMs, samples: options.samples, warmups: options.warmups },
        log,
      )
    : null;
  const burst = only.has('burst')
    ? await measureBurst(
        bench,
        {
          devices: options.devices,
          pool: options.pool,
          warmUp: options.warmUp,
          deadlineSeconds: options.deadlineSeconds,
          ...(depth ? { iotCallsPerRegistration: depth.iotCallsPerRegistration } : {}),
        },
        log,
      )
    : null;
  const revoke = only.has('revoke') ? await measureRevoke(bench, options.revokeClaims, log) : null;
  const cpu = only.has('cpu') ? await measureCpu(bench, options.cpuRegistrations, log) : null;
  return { depth, burst, revoke, cpu };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const options = settings(argv);
  if (options.help) {
    process.stdout.write(usage());
    return;
  }
  const started = Date.now();
  // Ctrl-C reaches this process only (the sandbox runs in a process group of its own): stop the
  // sandbox first, once it is up if it is still starting.
  let bench: BenchSandbox | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= bench?.stop();
    return stopping ?? Promise.resolve();
  };
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping the sandbox`);
      interrupted = true;
      if (bench) void stop().finally(() => process.exit(130));
    });
  }
  bench = await startBenchSandbox(log);
  if (interrupted) {
    await stop();
    process.exit(130);
  }
  let results: Results;
  try {
    results = await measure(bench, options);
  } finally {
    await stop();
  }
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(jsonReport(results))}\n`);
    return;
  }
  const command = `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`;
  const machine = `${cpus().length} cores, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} at the end, Node ${process.version}`;
  process.stdout.write(`${command}   (${minutes} min; ${machine})\n\n${textReport(results)}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
