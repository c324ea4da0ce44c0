import { Session } from 'node:inspector/promises';

/** A V8 CPU profile, as Profiler.stop returns it. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string }; children?: number[] }[];
  samples?: number[];
  timeDeltas?: number[];
}

export interface Bucket {
  bucket: string;
  /** Self time in this bucket, milliseconds. */
  ms: number;
  /** Of the profile's busy (non-idle) time. */
  share: number;
}

/** Runs `work` under the V8 sampling profiler and sums self time by bucket (what kind of code ran). */
export async function profiled(work: () => Promise<void>): Promise<Bucket[]> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
    await work();
    const { profile } = (await session.post('Profiler.stop')) as { profile: CpuProfile };
    return selfTimeByBucket(profile);
  } finally {
    session.disconnect();
  }
}

/**
 * Self time by bucket. Native frames (no script URL: C++ bindings such as a signature check, regular
 * expressions) count for the JavaScript that called them, except JSON.parse and JSON.stringify and
 * the socket write syscalls. The sampler measures the main thread's time, running or not: a thread
 * preempted inside a function counts there, and other threads (GC, compiler) are not seen.
 */
export function selfTimeByBucket(profile: CpuProfile): Bucket[] {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  const bucketOf = (id: number): string => {
    for (let at: number | undefined = id; at !== undefined; at = parents.get(at)) {
      const frame = nodes.get(at)?.callFrame;
      if (!frame) break;
      const bucket = bucketFor(frame);
      if (bucket !== undefined) return bucket;
    }
    return 'other';
  };
  const totals = new Map<string, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const bucket = bucketOf(samples[i] as number);
    totals.set(bucket, (totals.get(bucket) ?? 0) + (deltas[i] ?? 0) / 1000);
  }
  totals.delete('idle');
  totals.delete('profiler');
  const busy = [...totals.values()].reduce((sum, ms) => sum + ms, 0);
  return [...totals]
    .map(([bucket, ms]) => ({ bucket, ms, share: busy > 0 ? ms / busy : 0 }))
    .sort((a, b) => b.ms - a.ms);
}

const SOCKET_WRITES = /^write(v|Buffer|Latin1String|Utf8String|AsciiString|Ucs2String)$/;

const RULES: [RegExp, string][] = [
  [/^node:inspector/, 'profiler'],
  [/signature-v4|hash-node/, 'AWS SDK: SigV4 signing'],
  [/util-dynamodb|lib-dynamodb/, 'AWS SDK: DynamoDB marshalling'],
  [/node-http-handler/, 'AWS SDK: HTTP handler'],
  [/@smithy|@aws-sdk|@aws-crypto/, 'AWS SDK: middleware, serde, retries'],
  [/\/shared\/csr\//, 'CSR parsing (DER reader)'],
  [/node:internal\/crypto|node:crypto/, 'crypto (CSR signature check, hashes, ids)'],
  [/@middy|\/shared\/http\//, 'middy and HTTP plumbing'],
  [/zod/, 'validation (zod)'],
  [/\/shared\/|\/functions\//, 'saga, inventory, IoT adapter, logging'],
  [
    /node:internal\/(http|net|stream|streams|dns|tls|url)|node:(http|net|stream|url)|_http|undici/,
    'node: HTTP and sockets',
  ],
  [/tsx|esbuild/, 'tsx loader'],
  [/^node:/, 'node: other internals'],
];

/** A frame's bucket, or undefined for a native frame that counts for its caller. */
function bucketFor({ functionName, url }: { functionName: string; url: string }): string | undefined {
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(program)') return 'V8 (compiler, runtime)';
  if (url === '') {
    if (functionName === 'parse' || functionName === 'stringify') return 'JSON';
    // The write syscalls to the local services: on a loaded machine the receiver often runs first and
    // this thread waits inside the call, so these samples are more wall time than CPU.
    if (SOCKET_WRITES.test(functionName)) return 'socket write syscalls (incl. time preempted there)';
    return undefined;
  }
  return RULES.find(([pattern]) => pattern.test(url))?.[1] ?? 'other';
}
