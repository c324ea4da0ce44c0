import { ApiClient } from '../cli/api-client.js';
import { revokeClaimsResponseSchema } from '../shared/admin/response-schemas.js';
import type { BenchSandbox } from './bench-sandbox.js';
import { makeDevices, register } from './devices.js';

export interface RevokeResult {
  claims: number;
  /** POST /claims/revoke {batchId}, signed, through the front door, to a warm function. */
  seconds: number;
  /** The first revocation of the run (a small batch), which also started the function's container. */
  coldSeconds: number;
  /** What the API said it revoked. */
  revoked: number;
  /** Writing the batch's claims straight to DynamoDB Local beforehand (not part of the figure). */
  writeSeconds: number;
  /** What a registration with a token of the batch got afterwards (403 CLAIM_TOKEN_REVOKED expected). */
  registrationAfter: string;
}

/**
 * Revoking a whole batch: `claims` claims minted by POST /claims's own code straight into DynamoDB
 * Local, then one `POST /claims/revoke {batchId}` signed with the sandbox's admin credentials (as
 * `fleet` signs), timed once the function is warm (a one-claim batch is revoked first); then a token
 * of the batch must be refused.
 */
export async function measureRevoke(
  bench: BenchSandbox,
  claims: number,
  log: (line: string) => void,
): Promise<RevokeResult> {
  const batchId = 'BENCH-REVOKE';
  const writing = performance.now();
  const tokens = await bench.mintClaims(batchId, claims);
  const writeSeconds = (performance.now() - writing) / 1000;
  log(`revoke: ${claims} claims written in ${writeSeconds.toFixed(1)} s; revoking the batch`);
  const { info } = bench;
  const admin = new ApiClient({
    url: info.apiUrl,
    region: info.region,
    credentials: { accessKeyId: info.adminAccessKeyId, secretAccessKey: info.adminSecretAccessKey },
    source: 'the benchmark sandbox',
  });
  const revoke = async (id: string) => {
    const started = performance.now();
    const answer = await admin.call('POST', 'claims/revoke', revokeClaimsResponseSchema, {
      body: { batchId: id },
    });
    return { answer, seconds: (performance.now() - started) / 1000 };
  };
  await bench.mintClaims(`${batchId}-WARMUP`, 1);
  const cold = await revoke(`${batchId}-WARMUP`);
  const { answer, seconds } = await revoke(batchId);
  const [device] = makeDevices('BENCH-REVOKE', tokens.slice(-1));
  const after = device ? await register(info.apiUrl, device) : undefined;
  return {
    claims,
    seconds,
    coldSeconds: cold.seconds,
    revoked: answer.revoked,
    writeSeconds,
    registrationAfter: after ? `${after.status} ${after.code}` : 'no token',
  };
}
