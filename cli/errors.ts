/** An error the CLI reports as `fleet: <message>` and exits with `exitCode`, never with a stack. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad arguments or input, found before any request was sent: exit code 2, with a pointer to --help. */
export class UsageError extends CliError {
  constructor(
    message: string,
    /** Whether the command's --help would help (not for a bad input file or a missing API). */
    readonly pointToHelp = true,
  ) {
    super(message, 2);
  }
}

/** Exit codes, as the README lists them. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;
