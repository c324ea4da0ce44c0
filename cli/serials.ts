import { readFileSync } from 'node:fs';
import { CLAIM_LIMITS, serialParamSchema } from '../shared/admin/schemas.js';
import { UsageError } from './errors.js';

export interface SerialLine {
  serial: string;
  /** 1-based line number in the file. */
  line: number;
}

/** Problems listed before "… and N more": enough to act on, not a screenful per bad file. */
const MAX_LISTED = 20;
const SHOWN_LENGTH = 40;

/**
 * The serial numbers of a file, one a line (blank lines and surrounding spaces ignored), checked as a
 * whole before anything is sent: each by the API's own rule (shared/admin/schemas.ts), and no serial
 * twice. Every problem is reported with its line number.
 */
export function readSerials(file: string): SerialLine[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      false,
    );
  }
  const { serials, problems } = checkSerials(text);
  if (problems.length > 0) {
    const listed = problems.slice(0, MAX_LISTED).map((problem) => `\n  ${problem}`);
    const more = problems.length > MAX_LISTED ? `\n  … and ${problems.length - MAX_LISTED} more` : '';
    throw new UsageError(
      `${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}; nothing was sent:${listed.join('')}${more}`,
      false,
    );
  }
  if (serials.length === 0) throw new UsageError(`${file} holds no serial numbers; nothing was sent`, false);
  return serials;
}

export function checkSerials(text: string): { serials: SerialLine[]; problems: string[] } {
  const serials: SerialLine[] = [];
  const problems: string[] = [];
  const firstLine = new Map<string, number>();
  text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .forEach((raw, index) => {
      const serial = raw.trim();
      const line = index + 1;
      if (!serial) return;
      const problem = serialProblem(serial);
      const seen = firstLine.get(serial);
      if (problem) problems.push(`line ${line}: ${problem}`);
      else if (seen !== undefined) problems.push(`line ${line}: "${shown(serial)}" repeats line ${seen}`);
      else {
        firstLine.set(serial, line);
        serials.push({ serial, line });
      }
    });
  return { serials, problems };
}

function serialProblem(serial: string): string | undefined {
  if (serialParamSchema.safeParse(serial).success) return undefined;
  if (serial.length > CLAIM_LIMITS.serialNumberLength) {
    return `"${shown(serial)}" is ${serial.length} characters; a serial number has at most ${CLAIM_LIMITS.serialNumberLength}`;
  }
  const bad = [...new Set(serial.replace(/[A-Za-z0-9_:-]/g, ''))].map((c) => JSON.stringify(c)).join(' ');
  return `"${shown(serial)}" has ${bad}; a serial number holds only letters, digits, "_", ":" and "-"`;
}

function shown(serial: string): string {
  return serial.length > SHOWN_LENGTH ? `${serial.slice(0, SHOWN_LENGTH)}…` : serial;
}
