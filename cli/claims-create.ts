import { randomUUID } from 'node:crypto';
import { basename } from 'node:path';
import { type CreatedClaim, createClaimsResponseSchema } from '../shared/admin/response-schemas.js';
import {
  type CreateClaimsRequest,
  createClaimsSchema,
  MAX_CLAIMS_PER_REQUEST,
} from '../shared/admin/schemas.js';
import {
  type ApiClient,
  ApiRefusedError,
  ApiUnreachableError,
  type PointerText,
  UnexpectedAnswerError,
} from './api-client.js';
import { revokeEach, tally } from './claims-revoke.js';
import { CliError, EXIT, UsageError } from './errors.js';
import { type Format, progress, StreamingRows } from './output.js';
import { readSerials, type SerialLine } from './serials.js';

export interface CreateOptions {
  batchId: string;
  count?: number;
  serialsFile?: string;
  ttlSeconds: number;
  maxUses?: number;
  allowServerKeygen?: boolean;
  thingNamePrefix?: string;
  attributes?: Record<string, string>;
  format: Format;
}

export const CLAIM_COLUMNS = ['batchId', 'claimId', 'token', 'serialNumber', 'expiresAt'];
/** Retries of one chunk after an answer that never came or made no sense (0.5, 1, 2, 4 s apart). */
const MAX_RETRIES = 4;
/** Waits for a first attempt still running (2 s each): past the API's 60 s limit for a live one. */
const MAX_IN_PROGRESS_WAITS = 45;

/**
 * `fleet claims create`: the input checked whole before anything is sent, then one request per 1,000
 * claims, each chunk's tokens written out before the next request. A chunk is retried under one
 * Idempotency-Key, so it is never minted twice; when its first answer was lost, the API names the
 * claims that attempt minted, which are revoked (their tokens reached nobody) before it is minted
 * again. A run that stops leaves every delivered token in the output and says how to revoke them.
 */
export async function createClaimsRun(client: ApiClient, options: CreateOptions): Promise<void> {
  const serials = options.serialsFile ? readSerials(options.serialsFile) : undefined;
  const total = serials?.length ?? (options.count as number);
  const base = {
    batchId: options.batchId,
    ttlSeconds: options.ttlSeconds,
    ...(options.maxUses !== undefined ? { maxUses: options.maxUses } : {}),
    ...(options.allowServerKeygen ? { allowServerKeygen: true } : {}),
    ...(options.thingNamePrefix ? { thingNamePrefix: options.thingNamePrefix } : {}),
    ...(options.attributes ? { attributes: options.attributes } : {}),
  };
  checkAgainstApiSchema({ ...base, count: 1 });
  const longestSerial = Math.max(0, ...(serials ?? []).map(({ serial }) => serial.length));
  const out = new StreamingRows(options.format, CLAIM_COLUMNS, [
    options.batchId.length,
    36,
    47,
    longestSerial,
    24,
  ]);
  const bar = progress('creating claims', total);
  const interrupt = onInterrupt();
  let created = 0;
  try {
    for (let offset = 0; offset < total; offset += MAX_CLAIMS_PER_REQUEST) {
      if (interrupt.requested) throw new CliError('interrupted', EXIT.interrupted);
      const part = serials?.slice(offset, offset + MAX_CLAIMS_PER_REQUEST);
      const size = part?.length ?? Math.min(MAX_CLAIMS_PER_REQUEST, total - offset);
      const body = {
        ...base,
        ...(part ? { serialNumbers: part.map(({ serial }) => serial) } : { count: size }),
      };
      const chunk = { from: offset + 1, to: offset + size, part };
      const claims = await createChunk(client, body, chunk);
      await deliver(client, out, options.batchId, claims);
      created += claims.length;
      bar.tick(created);
      checkChunk(claims, size, part);
    }
  } catch (error) {
    bar.end();
    interrupt.dispose();
    await out.close().catch(() => {});
    throw stopped(error, created, total, options, serials);
  }
  bar.end();
  interrupt.dispose();
  await out.close();
}

interface Chunk {
  /** 1-based positions of the chunk's claims in the run. */
  from: number;
  to: number;
  part: SerialLine[] | undefined;
}

async function createChunk(
  client: ApiClient,
  body: CreateClaimsRequest,
  chunk: Chunk,
): Promise<CreatedClaim[]> {
  let key = randomUUID();
  let retries = 0;
  let waits = 0;
  for (;;) {
    try {
      const answer = await client.call('POST', 'claims', createClaimsResponseSchema, {
        body,
        headers: { 'idempotency-key': key },
        pointerText: pointerText(chunk.part),
      });
      return answer.claims;
    } catch (error) {
      if (
        error instanceof ApiRefusedError &&
        error.code === 'IDEMPOTENCY_KEY_IN_PROGRESS' &&
        waits++ < MAX_IN_PROGRESS_WAITS
      ) {
        await sleep((error.retryAfterSeconds ?? 2) * 1000);
        continue;
      }
      if (
        error instanceof ApiRefusedError &&
        error.code === 'IDEMPOTENCY_KEY_USED' &&
        retries++ < MAX_RETRIES
      ) {
        await revokeLost(client, error.problem?.claimIds ?? [], chunk);
        key = randomUUID();
        continue;
      }
      if (retryable(error) && retries++ < MAX_RETRIES) {
        const seconds = Math.min(10, (error as ApiRefusedError).retryAfterSeconds ?? 0.25 * 2 ** retries);
        process.stderr.write(
          `fleet: retrying claims ${chunk.from}-${chunk.to} in ${seconds} s: ${firstLine(error)}\n`,
        );
        await sleep(seconds * 1000);
        continue;
      }
      throw error;
    }
  }
}

/** An attempt whose answer was lost minted claims nobody holds a token for: they are revoked. */
async function revokeLost(client: ApiClient, claimIds: string[], chunk: Chunk): Promise<void> {
  const outcomes = await revokeEach(client, claimIds);
  const counts = tally(outcomes);
  const left = outcomes.filter((outcome) => outcome.result === 'failed').map((outcome) => outcome.claimId);
  if (left.length > 0) {
    throw new CliError(
      `the answer to claims ${chunk.from}-${chunk.to} was lost, and ${left.length} of the ${claimIds.length} claims ` +
        `that request created (their tokens reached nobody) could not be revoked; revoke them with\n` +
        `  fleet claims revoke ${left.map((id) => `--claim-id ${id}`).join(' ')}`,
    );
  }
  process.stderr.write(
    `fleet: the answer to claims ${chunk.from}-${chunk.to} was lost; the ${claimIds.length} claims that request ` +
      `created were revoked (${counts.revoked} now, ${counts.alreadyRevoked + counts.notFound} never active), ` +
      'as their tokens reached nobody; creating them again\n',
  );
}

/** Writes a chunk's tokens; tokens that cannot be written are revoked, since nobody will ever have them. */
async function deliver(
  client: ApiClient,
  out: StreamingRows,
  batchId: string,
  claims: CreatedClaim[],
): Promise<void> {
  try {
    await out.add(claims.map((claim) => ({ batchId, ...claim })));
  } catch (error) {
    const outcomes = await revokeEach(
      client,
      claims.map((claim) => claim.claimId),
    );
    const { failed } = tally(outcomes);
    throw new CliError(
      `cannot write the output (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); ` +
        `the ${claims.length} claims whose tokens could not be written were revoked` +
        (failed ? `, except ${failed} (see fleet claims list --batch ${batchId})` : ''),
    );
  }
}

/** An answer with the wrong claims is a broken API: what it returned is written, then the run stops. */
function checkChunk(claims: CreatedClaim[], size: number, part: SerialLine[] | undefined): void {
  const wrongSerials = part?.some((line, i) => claims[i]?.serialNumber !== line.serial);
  if (claims.length !== size || wrongSerials) {
    throw new CliError(
      `POST /claims returned ${claims.length} claims for ${size} asked, or for other serial numbers`,
    );
  }
}

function retryable(error: unknown): boolean {
  if (error instanceof ApiUnreachableError || error instanceof UnexpectedAnswerError) return true;
  return error instanceof ApiRefusedError && (error.status === 429 || error.status >= 500);
}

/** What the user knows an API pointer as: the option, or the line of the serials file. */
function pointerText(part: SerialLine[] | undefined): PointerText {
  const options: Record<string, string> = {
    batchId: '--batch',
    count: '--count',
    ttlSeconds: '--ttl',
    maxUses: '--max-uses',
    allowServerKeygen: '--allow-server-keygen',
    thingNamePrefix: '--thing-name-prefix',
    attributes: '--attributes',
  };
  return (pointer) => {
    const [, member = '', ...rest] = pointer.split('/');
    if (member === 'serialNumbers' && part) {
      const line = part[Number(rest[0])]?.line;
      if (line !== undefined) return `line ${line}`;
    }
    const option = options[member];
    if (!option) return pointer.replace(/^\//, '') || 'the request';
    return `${option}${rest.length ? ` ${rest.join('/')}` : ''} (${pointer.slice(1)})`;
  };
}

/** What the CLI would send must pass the API's own request schema (one copy, shared/admin). */
function checkAgainstApiSchema(request: unknown): void {
  const parsed = createClaimsSchema.safeParse(request);
  if (parsed.success) return;
  const problems = parsed.error.issues.map(
    (issue) => `\n  ${pointerText(undefined)(`/${issue.path.join('/')}`)}: ${issue.message}`,
  );
  throw new UsageError(`the claims request would be refused:${problems.join('')}`);
}

function stopped(
  error: unknown,
  created: number,
  total: number,
  options: CreateOptions,
  serials: SerialLine[] | undefined,
): CliError {
  if (!(error instanceof CliError)) throw error;
  const lines = [error.message];
  const uncertain =
    error instanceof ApiUnreachableError ||
    error instanceof UnexpectedAnswerError ||
    (error instanceof ApiRefusedError && error.status >= 500);
  const rest = serials?.[created];
  const file = options.serialsFile ? basename(options.serialsFile) : '';
  lines.push(
    created === 0
      ? 'fleet: stopped: no tokens were delivered.'
      : `fleet: stopped: ${created} of ${total} claims were created; their tokens are in the output.` +
          (rest ? ` Serial numbers from line ${rest.line} of ${file} on have no claim.` : ''),
  );
  if (uncertain) {
    lines.push(
      `fleet: the last request's answer was lost or unreadable, so it may have created claims whose tokens nobody has: ` +
        `compare fleet claims list --batch ${options.batchId} with the output and revoke the others.`,
    );
  }
  if (created > 0) {
    lines.push(
      `fleet: to revoke the ones created: fleet claims revoke --claims-file <the output file> ` +
        `(or every claim of the batch: fleet claims revoke --batch ${options.batchId})`,
    );
  }
  return new CliError(lines.join('\n'), error.exitCode === EXIT.interrupted ? EXIT.interrupted : EXIT.failed);
}

/** Ctrl-C once: finish writing the chunk in flight, then stop; twice: stop at once. */
function onInterrupt(): { requested: boolean; dispose(): void } {
  const state = {
    requested: false,
    dispose: () => {
      process.off('SIGINT', handler);
    },
  };
  const handler = () => {
    if (state.requested) process.exit(EXIT.interrupted);
    state.requested = true;
    process.stderr.write(
      '\nfleet: stopping once the claims being created are written (Ctrl-C again to quit now)\n',
    );
  };
  process.on('SIGINT', handler);
  return state;
}

function firstLine(error: unknown): string {
  return ((error as Error).message.split('\n')[0] ?? '').trim();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
