import { AppError } from '../../shared/errors.js';

/** The stable code of what `run` throws (an AWS error's name if it is not ours); undefined if nothing. */
export function codeThrownBy(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    return codeOf(error);
  }
}

/** The same for a promise: its rejection's code, or 'no error'. */
export async function codeRejectedBy(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'no error';
  } catch (error) {
    return codeOf(error);
  }
}

function codeOf(error: unknown): string {
  if (error instanceof AppError) return error.code;
  return error instanceof Error ? error.name : String(error);
}
