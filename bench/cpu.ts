import { resolve } from 'node:path';
import type { APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { JsonEvent } from '../shared/http/http-route.js';
import { lambdaContext, registerRequestEvent } from '../test/support/events.js';
import type { BenchSandbox } from './bench-sandbox.js';
import { type Device, makeDevices } from './devices.js';
import { type Bucket, profiled } from './profile.js';

export interface CpuResult {
  registrations: number;
  /** CPU (user + system) of the handler per registration, warm. */
  msPerRegistration: number;
  userMsPerRegistration: number;
  /** The kernel's share: mostly socket writes and reads to the local services. */
  systemMsPerRegistration: number;
  /** Wall time per registration with no latency and no quotas. */
  wallMsPerRegistration: number;
  /** Where that CPU goes (a second, profiled, set of registrations), by bucket of self time. */
  profile: Bucket[];
}

type Handler = (event: JsonEvent, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

const WARMUPS = 5;

/**
 * The register handler's CPU per registration: functions/register.ts loaded in this process as Lambda
 * loads it (configuration from the environment), driven with real HTTP API events, against the
 * sandbox's DynamoDB Local and IoT emulator with no latency and no quotas, one registration at a
 * time. process.cpuUsage() over the run, then a profiled run for where the time goes. Logs are
 * formatted as in Lambda (LOG_LEVEL info) and dropped instead of written.
 */
export async function measureCpu(
  bench: BenchSandbox,
  registrations: number,
  log: (line: string) => void,
): Promise<CpuResult> {
  const { info } = bench;
  const tokens = await bench.mintClaims('BENCH-CPU', WARMUPS + 2 * registrations);
  const devices = makeDevices('BENCH-CPU', tokens);
  await bench.setBehaviour({ '*': { ratePerSecond: 0 } });
  Object.assign(process.env, {
    AWS_REGION: info.region,
    AWS_ACCESS_KEY_ID: 'sandbox',
    AWS_SECRET_ACCESS_KEY: 'sandbox',
    AWS_ENDPOINT_URL_DYNAMODB: info.dynamodbEndpoint,
    AWS_ENDPOINT_URL_IOT: info.iotEndpoint,
    DEVICES_TABLE: info.tables.devices,
    CLAIMS_TABLE: info.tables.claims,
    HISTORY_TABLE: info.tables.history,
    IOT_POLICY_NAME: info.policyName,
    IOT_ROLE_ALIAS: info.roleAlias,
    ROOT_CA_FILE: resolve(info.rootCaFile),
    LOG_LEVEL: 'info',
  });
  const { handler } = (await import('../functions/register.js')) as unknown as { handler: Handler };
  const run = async (batch: Device[]) => {
    for (const device of batch) {
      const body = { claimToken: device.token, serialNumber: device.serialNumber, csr: device.csr };
      const result = await handler(registerRequestEvent(body), lambdaContext);
      if (result.statusCode !== 201) throw new Error(`in-process registration answered ${result.statusCode}`);
    }
  };
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    await run(devices.slice(0, WARMUPS));
    const measured = devices.slice(WARMUPS, WARMUPS + registrations);
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    await run(measured);
    const wallMs = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    log(`cpu: ${registrations} registrations in ${(wallMs / 1000).toFixed(1)} s; profiling as many again`);
    const profile = await profiled(() => run(devices.slice(WARMUPS + registrations)));
    return {
      registrations,
      msPerRegistration: (cpu.user + cpu.system) / 1000 / registrations,
      userMsPerRegistration: cpu.user / 1000 / registrations,
      systemMsPerRegistration: cpu.system / 1000 / registrations,
      wallMsPerRegistration: wallMs / registrations,
      profile: profile.map((bucket) => ({ ...bucket, ms: bucket.ms / registrations })),
    };
  } finally {
    process.stdout.write = write;
    await bench.setBehaviour({});
  }
}
