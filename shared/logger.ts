import { CLAIM_TOKEN_PREFIX } from './claims/token.js';
import { AppError } from './errors.js';

/**
 * Structured JSON logs, one line per event. Callers pass fields explicitly; there is no
 * "log the whole request" helper, so claim tokens, private keys and CSR bodies cannot slip in.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Keys whose values are replaced whatever the caller passes. */
const REDACTED_KEYS = new Set(['claimToken', 'token', 'privateKey', 'csr', 'authorization']);

export function createLogger(
  base: Record<string, unknown> = {},
  level: LogLevel = parseLevel(process.env.LOG_LEVEL),
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Logger {
  const emit = (at: LogLevel, message: string, fields: Record<string, unknown> = {}) => {
    if (ORDER[at] < ORDER[level]) return;
    write(
      JSON.stringify({
        level: at,
        time: new Date().toISOString(),
        message,
        ...redact(base),
        ...redact(fields),
      }),
    );
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...base, ...fields }, level, write),
  };
}

function parseLevel(value: string | undefined): LogLevel {
  return value === 'debug' || value === 'warn' || value === 'error' ? value : 'info';
}

function redact(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = REDACTED_KEYS.has(key) ? '[redacted]' : value instanceof Error ? describeError(value) : value;
  }
  return out;
}

export interface ErrorDescription {
  name: string;
  code?: string;
  /** Unexpected errors only, sanitised: what makes a 500 diagnosable. */
  message?: string;
  stack?: string;
}

const MAX_MESSAGE_CHARS = 500;
const MAX_STACK_CHARS = 2_000;

/**
 * Our own errors by name and code (their message is the client's `detail`). Anything else also with
 * its message and stack frames, sanitised: AWS messages can echo request input, so claim tokens and
 * PEM blocks are redacted and the rest is cut short.
 */
export function describeError(error: Error): ErrorDescription {
  const code = (error as { code?: unknown }).code;
  const described: ErrorDescription =
    typeof code === 'string' ? { name: error.name, code } : { name: error.name };
  if (error instanceof AppError) return described;
  described.message = sanitise(String(error.message), MAX_MESSAGE_CHARS);
  // The frames only: the stack's first line repeats the message.
  const frames = (error.stack ?? '').split('\n').filter((line) => line.trimStart().startsWith('at '));
  if (frames.length > 0) described.stack = sanitise(frames.join('\n'), MAX_STACK_CHARS);
  return described;
}

const SECRETS: [RegExp, string][] = [
  // A whole PEM block (private key, CSR, certificate), then one whose end was cut off.
  [/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g, '[redacted $1]'],
  [/-----BEGIN ([A-Z0-9 ]+)-----[A-Za-z0-9+/=\s\\]*/g, '[redacted $1]'],
  // A claim token, whole or in part.
  [new RegExp(`${CLAIM_TOKEN_PREFIX}[A-Za-z0-9_-]*`, 'g'), '[redacted claim token]'],
];

function sanitise(text: string, maxChars: number): string {
  const redacted = SECRETS.reduce((out, [pattern, replacement]) => out.replace(pattern, replacement), text);
  return redacted.length > maxChars ? `${redacted.slice(0, maxChars)}…[truncated]` : redacted;
}
