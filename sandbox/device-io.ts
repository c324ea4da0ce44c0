/**
 * What the device simulator's flows share: the credentials exchange over mutual TLS, the device's
 * files, requests retried the way firmware should retry them, and one-line errors.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SandboxInfo } from './sandbox-config.js';

/** What the credentials exchange needs: where, as which thing, with which certificate and key. */
export interface CredentialsTarget {
  url: string;
  thingName: string;
  certificatePem: string;
  keyPem: string;
  rootCaPem: string;
}

/** The AWS IoT credentials provider: a GET over mutual TLS with the device's certificate and key. */
export function fetchCredentials(target: CredentialsTarget): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      target.url,
      {
        cert: target.certificatePem,
        key: target.keyPem,
        ca: target.rootCaPem,
        headers: { 'x-amzn-iot-thingname': target.thingName },
        // A fresh TLS session each time: the old and the new certificate are checked separately.
        agent: false,
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

export function readSandbox(dir: string): SandboxInfo | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'sandbox.json'), 'utf8')) as SandboxInfo;
  } catch {
    return undefined;
  }
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

/**
 * Writes a file so that a power cut leaves either the old content or the new, never half of it: a
 * temporary file, flushed to disk, renamed over the target, and the folder flushed so the rename lasts.
 */
export function saveAtomically(path: string, content: string, mode = 0o644): void {
  const temporary = `${path}.tmp`;
  // A leftover from a cut-off write would keep its own mode: start from no file at all.
  rmSync(temporary, { force: true });
  writeFileSync(temporary, content, { mode, flag: 'wx' });
  flush(temporary);
  renameSync(temporary, path);
  flush(dirname(path));
}

/** Moves a file over another in one step (rename is atomic within a file system), then flushes the folder. */
export function moveAtomically(from: string, to: string): void {
  renameSync(from, to);
  flush(dirname(to));
}

function flush(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** An answer: its status and JSON body (problem+json when refused). */
export interface Answer {
  status: number;
  body: Record<string, unknown>;
  text: string;
}

const RETRIED_STATUSES = new Set([429, 503]);
const MAX_TRIES = 4;
const MAX_WAIT_SECONDS = 30;

/**
 * Sends a request built afresh for every try (a new proof, never an old one resent) and retries what the
 * API says to retry: 429 and 503, and 409 ROTATION_IN_PROGRESS, after their Retry-After; a request that
 * got no answer too. Anything else is the answer.
 */
export async function sendWithRetries(what: string, build: () => Promise<Request>): Promise<Answer> {
  for (let attempt = 1; ; attempt++) {
    let answer: Answer;
    try {
      const response = await fetch(await build());
      const text = await response.text();
      answer = { status: response.status, body: parseJson(text) as Record<string, unknown>, text };
      const code = answer.body.code;
      const retried = RETRIED_STATUSES.has(response.status) || code === 'ROTATION_IN_PROGRESS';
      if (!retried || attempt === MAX_TRIES) return answer;
      const wait = backoff(Number(response.headers.get('retry-after')), attempt);
      console.log(
        `retry         ${what}: ${response.status} ${code ?? ''}, again in ${wait.toFixed(1)} s with a new proof`,
      );
      await sleep(wait * 1000);
    } catch (error) {
      if (attempt === MAX_TRIES) throw error;
      const wait = backoff(Number.NaN, attempt);
      console.log(
        `retry         ${what}: no answer (${(error as Error).message}), again in ${wait.toFixed(1)} s`,
      );
      await sleep(wait * 1000);
    }
  }
}

/**
 * Seconds to wait before a retry, as docs/registration.md asks of firmware: `Retry-After` plus up to half
 * of it at random (devices told the same thing do not come back together); without one (HTTP API's own
 * 429, a lost answer), "full jitter": anywhere from 0 to 1 s, doubling per try, up to 8 s.
 */
function backoff(retryAfterSeconds: number, attempt: number): number {
  if (Number.isFinite(retryAfterSeconds) && retryAfterSeconds > 0) {
    return Math.min(retryAfterSeconds * (1 + Math.random() / 2), MAX_WAIT_SECONDS);
  }
  return Math.random() * Math.min(2 ** (attempt - 1), 8);
}

/** `rotation refused: 409 DEVICE_NOT_ACTIVE <detail>`: one line, as the first-boot flow reports. */
export function refusal(what: string, answer: Answer): string {
  const { code, detail, message } = answer.body as { code?: string; detail?: string; message?: string };
  // problem+json from the API; API Gateway's own answers (a missing route, a throttle) carry `message`.
  const words = code ? [code, detail].filter(Boolean).join(' ') : (message ?? answer.text.slice(0, 200));
  return `${what} refused: ${answer.status}${words ? ` ${words}` : ''}`;
}

/** Refused, failed, or could not finish: exit 1. */
export function fail(message: string): never {
  console.error(`device: ${message}`);
  process.exit(1);
}

/** Bad arguments: exit 2, nothing sent. */
export function usage(message: string): never {
  console.error(`device: ${message} (see npm run device -- --help)`);
  process.exit(2);
}
