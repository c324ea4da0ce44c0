import type { BurstResult } from './burst.js';
import type { CpuResult } from './cpu.js';
import type { DepthResult } from './depth.js';
import type { RevokeResult } from './revoke.js';

export interface Results {
  depth: DepthResult | null;
  burst: BurstResult | null;
  revoke: RevokeResult | null;
  cpu: CpuResult | null;
}

const round = (value: number, digits = 1) => Number(value.toFixed(digits));

/** The one JSON object of `--json`: the figures DESIGN.md names first in each section, then the details. */
export function jsonReport({ depth, burst, revoke, cpu }: Results): unknown {
  return {
    depth: depth && {
      latencyMs: depth.latencyMs,
      medianMs: round(depth.medianMs),
      ratio: round(depth.ratio, 2),
      roundTrips: depth.roundTrips,
      samples: depth.samples,
      waves: depth.waves,
      overheadMs: round(depth.overheadMs),
      callsPerRegistration: depth.callsPerRegistration,
      naive: { ...depth.naive, medianMs: round(depth.naive.medianMs), ratio: round(depth.naive.ratio, 2) },
      sagaOverNaive: round(depth.sagaOverNaive, 2),
    },
    burst: burst && {
      devices: burst.devices,
      seconds: burst.seconds === null ? null : round(burst.seconds),
      quotaBoundSeconds: round(burst.quotaBoundSeconds),
      ratio: burst.ratio === null ? null : round(burst.ratio, 2),
      wastedCreations: burst.wastedCreations,
      violations: burst.violations,
      client5xx: burst.client5xx,
      registered: burst.registered,
      requests: burst.requests,
      answers: burst.answers,
      gaveUp: burst.gaveUp,
      bound: burst.bound.map((b) => ({ ...b, seconds: round(b.seconds) })),
      boundFrom: burst.boundFrom,
      iotCalls: burst.iotCalls,
      violationList: burst.violationList,
    },
    revoke: revoke && {
      claims: revoke.claims,
      seconds: round(revoke.seconds, 3),
      coldSeconds: round(revoke.coldSeconds, 3),
      revoked: revoke.revoked,
      writeSeconds: round(revoke.writeSeconds),
      registrationAfter: revoke.registrationAfter,
    },
    cpu: cpu && {
      msPerRegistration: round(cpu.msPerRegistration),
      userMsPerRegistration: round(cpu.userMsPerRegistration),
      systemMsPerRegistration: round(cpu.systemMsPerRegistration),
      registrations: cpu.registrations,
      wallMsPerRegistration: round(cpu.wallMsPerRegistration),
      profile: cpu.profile.map((b) => ({
        bucket: b.bucket,
        msPerRegistration: round(b.ms, 2),
        share: round(b.share, 3),
      })),
    },
  };
}

/** The readable report: one table per measurement. */
export function textReport({ depth, burst, revoke, cpu }: Results): string {
  const sections: string[] = [];
  if (depth) {
    const L = depth.latencyMs;
    sections.push(
      `Depth: one registration at a time through the front door, every AWS call answered ${L} ms after it arrives (IoT emulator, DynamoDB proxy), warm container`,
      table(
        ['figure', 'value'],
        [
          [
            'registration, median',
            `${ms(depth.medianMs)} = ${depth.ratio.toFixed(2)} × ${L} ms (of ${depth.samples})`,
          ],
          ['sequential AWS waves (roundTrips)', `${depth.roundTrips}: ${depth.waves}`],
          [
            'waves start at, then answered (ms after sending)',
            depth.timelineMs.map((at) => at.toFixed(0)).join(', '),
          ],
          ['same path, no AWS call (POST /register {})', ms(depth.overheadMs)],
          ['AWS calls per registration', calls(depth.callsPerRegistration)],
          [
            'naive replay: the same calls one after another',
            `${ms(depth.naive.medianMs)} = ${depth.naive.ratio.toFixed(2)} × ${L} ms, ${depth.naive.roundTrips} waves`,
          ],
          ['saga / naive', depth.sagaOverNaive.toFixed(2)],
        ],
      ),
    );
  }
  if (burst) {
    const slowest = burst.bound[0];
    sections.push(
      `Burst: ${burst.devices} devices at once through the front door (register route throttling, reserved concurrency), AWS IoT default quotas`,
      table(
        ['figure', 'value'],
        [
          [
            'registered',
            `${burst.registered} of ${burst.devices}${burst.seconds === null ? ' by the deadline' : ` in ${burst.seconds.toFixed(1)} s`}`,
          ],
          [
            'quota bound',
            slowest
              ? `${burst.quotaBoundSeconds.toFixed(1)} s (${slowest.operation}: ${fmt(slowest.callsPerRegistration)} a registration at ${slowest.ratePerSecond}/s; counted in ${burst.boundFrom})`
              : '-',
          ],
          ['ratio (seconds / quota bound)', burst.ratio === null ? '-' : burst.ratio.toFixed(2)],
          [
            'wasted creations',
            `${burst.wastedCreations} (certificates deleted ${burst.certificatesDeleted}, things deleted ${burst.thingsDeleted})`,
          ],
          ['invariant violations', String(burst.violations)],
          ['answers ≥ 500 seen by devices', String(burst.client5xx)],
          ['requests sent', String(burst.requests)],
          ['answers', counts(burst.answers)],
          ...(Object.keys(burst.gaveUp).length > 0 ? [['devices that gave up', counts(burst.gaveUp)]] : []),
          ...burst.violationList.map((violation) => ['violation', violation]),
        ],
      ),
      iotTable(burst),
    );
  }
  if (revoke) {
    sections.push(
      `Revoke: a batch of ${revoke.claims} claims`,
      table(
        ['figure', 'value'],
        [
          [
            'POST /claims/revoke {batchId} (signed, front door, warm)',
            `${(revoke.seconds * 1000).toFixed(0)} ms`,
          ],
          [
            'the first revocation (a 1-claim batch, cold function)',
            `${(revoke.coldSeconds * 1000).toFixed(0)} ms`,
          ],
          ['the API said it revoked', String(revoke.revoked)],
          ['a token of the batch afterwards', revoke.registrationAfter],
          ['writing the claims beforehand (not the figure)', `${revoke.writeSeconds.toFixed(1)} s`],
        ],
      ),
    );
  }
  if (cpu) {
    sections.push(
      `CPU: the register handler in-process, ${cpu.registrations} registrations one at a time, no latency, no quotas`,
      table(
        ['figure', 'value'],
        [
          [
            'handler CPU per registration',
            `${ms(cpu.msPerRegistration)} (user ${ms(cpu.userMsPerRegistration)}, system ${ms(cpu.systemMsPerRegistration)})`,
          ],
          ['wall time per registration', ms(cpu.wallMsPerRegistration)],
        ],
      ),
      table(
        ['where the CPU goes (self time, profiled run)', 'ms per registration', 'share'],
        cpu.profile.slice(0, 10).map((b) => [b.bucket, b.ms.toFixed(2), `${(b.share * 100).toFixed(0)} %`]),
      ),
    );
  }
  return `${sections.join('\n\n')}\n`;
}

/**
 * Every IoT operation of the burst: what it was answered, what it cost per registered device, and
 * for the operations of an undisturbed registration, what their quota allows.
 */
function iotTable(burst: BurstResult): string {
  const bounds = new Map(burst.bound.map((b) => [b.operation, b]));
  const operations = [
    ...burst.bound.map((b) => b.operation),
    ...Object.keys(burst.iotCalls)
      .filter((operation) => !bounds.has(operation))
      .sort(),
  ];
  return table(
    [
      'IoT operation',
      'ok',
      'throttled',
      'other errors',
      'ok per device',
      'per registration',
      'quota',
      'bound',
    ],
    operations.map((operation) => {
      const outcomes = burst.iotCalls[operation] ?? {};
      const bound = bounds.get(operation);
      const other = Object.entries(outcomes)
        .filter(([outcome]) => outcome !== 'ok' && outcome !== 'ThrottlingException')
        .reduce((sum, [, n]) => sum + n, 0);
      return [
        operation,
        String(outcomes.ok ?? 0),
        String(outcomes.ThrottlingException ?? 0),
        String(other),
        burst.registered > 0 ? fmt((outcomes.ok ?? 0) / burst.registered) : '-',
        bound ? fmt(bound.callsPerRegistration) : '-',
        bound ? `${bound.ratePerSecond}/s` : '-',
        bound ? `${bound.seconds.toFixed(1)} s` : '-',
      ];
    }),
  );
}

/** A Markdown table with aligned columns (readable as text, pasteable into the README). */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(headers), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

function ms(value: number): string {
  return `${value.toFixed(value < 10 ? 1 : 0)} ms`;
}

function fmt(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

function calls(perOperation: Record<string, number>): string {
  return Object.entries(perOperation)
    .map(([operation, n]) => `${operation} ${fmt(n)}`)
    .join(', ');
}

function counts(record: Record<string, number>): string {
  return Object.entries(record)
    .sort((a, b) => b[1] - a[1])
    .map(([key, n]) => `${key} × ${n}`)
    .join(', ');
}
