import { createInterface } from 'node:readline/promises';
import type { Readable, Writable } from 'node:stream';
import { UsageError } from './errors.js';

export interface Terminal {
  input: Readable & { isTTY?: boolean };
  output: Writable & { isTTY?: boolean };
}

/**
 * Asks before something that cannot be undone. On a terminal the answer must be "y" or "yes"; off a
 * terminal (a script, CI) there is nobody to ask, so `--yes` is required instead.
 */
export async function confirm(
  question: string,
  action: string,
  terminal: Terminal = { input: process.stdin, output: process.stderr },
): Promise<boolean> {
  if (!terminal.input.isTTY || !terminal.output.isTTY) {
    throw new UsageError(`refusing to ${action} without confirmation: not a terminal; pass --yes`);
  }
  const prompt = createInterface({ input: terminal.input, output: terminal.output });
  try {
    const answer = await prompt.question(`${question} [y/N] `);
    return /^(y|yes)$/i.test(answer.trim());
  } finally {
    prompt.close();
  }
}
