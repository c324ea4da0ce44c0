import { readFileSync } from 'node:fs';
import * as z from 'zod/mini';
import { revokeClaimsResponseSchema } from '../shared/admin/response-schemas.js';
import { type ApiClient, ApiRefusedError, ApiUnreachableError } from './api-client.js';
import { CliError, UsageError } from './errors.js';
import { type Format, printList, printObject, progress } from './output.js';

export type RevokeResult = 'revoked' | 'already revoked' | 'not found' | 'failed';

export interface RevokeOutcome {
  claimId: string;
  result: RevokeResult;
  reason?: string;
}

/** Revocations in flight at once: quick for a thousand claims, gentle on the API's throttling. */
const PARALLEL = 8;
const MAX_RETRIES = 4;

/** Revokes each claim by id and says what became of each; never throws for one claim's failure. */
export async function revokeEach(
  client: ApiClient,
  claimIds: string[],
  onDone: (done: number) => void = () => {},
): Promise<RevokeOutcome[]> {
  const outcomes: RevokeOutcome[] = new Array(claimIds.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (let i = next++; i < claimIds.length; i = next++) {
      outcomes[i] = await revokeOne(client, claimIds[i] as string);
      onDone(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, claimIds.length) }, worker));
  return outcomes;
}

/** Revoking is idempotent, so throttling (429), a 5xx or a lost answer is simply retried. */
async function revokeOne(client: ApiClient, claimId: string): Promise<RevokeOutcome> {
  for (let retry = 1; ; retry++) {
    try {
      const out = await client.call('POST', 'claims/revoke', revokeClaimsResponseSchema, {
        body: { claimId },
      });
      return { claimId, result: out.revoked > 0 ? 'revoked' : 'already revoked' };
    } catch (error) {
      if (error instanceof ApiRefusedError && error.code === 'CLAIM_NOT_FOUND')
        return { claimId, result: 'not found' };
      if (!(error instanceof CliError)) throw error;
      const transient =
        error instanceof ApiUnreachableError ||
        (error instanceof ApiRefusedError && (error.status === 429 || error.status >= 500));
      if (!transient || retry > MAX_RETRIES) return { claimId, result: 'failed', reason: error.message };
      const seconds = (error as ApiRefusedError).retryAfterSeconds ?? 0.25 * 2 ** retry;
      await new Promise((resolve) => setTimeout(resolve, Math.min(10, seconds) * 1000));
    }
  }
}

export function tally(outcomes: RevokeOutcome[]) {
  const count = (result: RevokeResult) => outcomes.filter((outcome) => outcome.result === result).length;
  return {
    revoked: count('revoked'),
    alreadyRevoked: count('already revoked'),
    notFound: count('not found'),
    failed: count('failed'),
  };
}

/**
 * `fleet claims revoke --claim-id … | --claims-file …`: each claim revoked by id, each outcome shown.
 * Exit 0 only when every claim is revoked (now or before); a claim not found or not revoked is exit 1.
 */
export async function revokeClaimIds(client: ApiClient, claimIds: string[], format: Format): Promise<void> {
  const bar = progress('revoking claims', claimIds.length);
  const outcomes = await revokeEach(client, claimIds, (done) => {
    if (claimIds.length > 1 && (done % 100 === 0 || done === claimIds.length)) bar.tick(done);
  });
  bar.end();
  const counts = tally(outcomes);
  if (format === 'json') await printObject({ ...counts, claims: outcomes }, [], 'json');
  else await printList(outcomes as never, ['claimId', 'result', 'reason'], format);
  const summary =
    `revoked ${counts.revoked} of ${claimIds.length} claims (${counts.alreadyRevoked} already revoked, ` +
    `${counts.notFound} not found, ${counts.failed} failed)`;
  if (counts.notFound + counts.failed > 0) {
    const failures = outcomes
      .filter((outcome) => outcome.result === 'failed')
      .slice(0, 5)
      .map((outcome) => `\n  ${outcome.claimId}: ${outcome.reason}`);
    throw new CliError(`${summary}${failures.join('')}`);
  }
  process.stderr.write(`${summary}\n`);
}

/**
 * `fleet claims revoke --batch B`: one write on the API's side, so it happened or it did not (an
 * unknown batch is 404 BATCH_NOT_FOUND). Reports the unused tokens it revoked.
 */
export async function revokeBatch(client: ApiClient, batchId: string, format: Format): Promise<void> {
  const { revoked } = await client.call('POST', 'claims/revoke', revokeClaimsResponseSchema, {
    body: { batchId },
  });
  await printObject({ batchId, revoked }, ['batchId', 'revoked'], format);
  if (revoked === 0) process.stderr.write(`batch ${batchId} is revoked; it had no unused tokens left\n`);
}

const claimIdSchema = z.string().check(z.minLength(1), z.maxLength(64), z.regex(/^\S+$/));

/**
 * Claim ids from a file: what `fleet claims create` wrote (CSV with a claimId column, or its JSON
 * array, even one left open by a run that was killed), or one claim id a line.
 */
export function readClaimIds(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  } catch (error) {
    throw new UsageError(
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  const lines = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean);
  const header = lines[0]?.split(',') ?? [];
  let ids: string[];
  if (lines[0]?.startsWith('[') || lines[0]?.startsWith('{')) ids = jsonClaimIds(text, lines);
  else if (header.includes('claimId')) {
    const column = header.indexOf('claimId');
    ids = lines.slice(1).map((line) => line.split(',')[column] ?? '');
  } else ids = lines;
  const bad = ids.findIndex((id) => !claimIdSchema.safeParse(id).success);
  if (bad >= 0) throw new UsageError(`${file}: "${ids[bad]}" is not a claim id`);
  if (ids.length === 0) throw new UsageError(`${file} holds no claim ids`);
  return [...new Set(ids)];
}

function jsonClaimIds(text: string, lines: string[]): string[] {
  const idOf = (item: unknown) => String((item as { claimId?: unknown })?.claimId ?? '');
  try {
    const parsed: unknown = JSON.parse(text);
    return (Array.isArray(parsed) ? parsed : [parsed]).map(idOf);
  } catch {
    // An array a killed run left open: one element per line.
    return lines
      .filter((line) => line.startsWith('{'))
      .map((line) => idOf(JSON.parse(line.replace(/,$/, ''))));
  }
}
