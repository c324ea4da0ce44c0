import { type Command, CommanderError } from 'commander';
import { CliError, EXIT, UsageError } from './errors.js';
import { buildProgram } from './program.js';

/**
 * Runs `fleet` and exits: 0 done, 1 failed (the API, the network, or work stopped partway), 2 bad
 * arguments or input (nothing sent), 130 interrupted. Errors are `fleet: …` lines, never a stack.
 */
async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT.ok;
      // `fleet` or `fleet claims` alone: commander has printed the help on stderr.
      if (error.code === 'commander.help') return EXIT.usage;
      report(`${error.message.replace(/^error: /, '')} (see ${helpFor(program, argv)})`);
      return EXIT.usage;
    }
    if (error instanceof UsageError) {
      const [first, ...rest] = error.message.split('\n');
      const hint = error.pointToHelp ? ` (see ${helpFor(program, argv)})` : '';
      report([`${first}${hint}`, ...rest].join('\n'));
      return EXIT.usage;
    }
    if (error instanceof CliError) {
      report(error.message);
      return error.exitCode;
    }
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') {
      report('the output was closed before all of it was written');
      return EXIT.failed;
    }
    report(`unexpected error: ${(error as Error).message}`);
    return EXIT.failed;
  }
}

function report(message: string): void {
  process.stderr.write(`fleet: ${message}\n`);
}

/** `fleet claims create --help`: the help of the deepest command named on the command line. */
function helpFor(program: Command, argv: string[]): string {
  const names = [program.name()];
  let command = program;
  for (const arg of argv) {
    if (arg.startsWith('-')) continue;
    const sub = command.commands.find((candidate) => candidate.name() === arg);
    if (!sub) break;
    names.push(sub.name());
    command = sub;
  }
  return `${names.join(' ')} --help`;
}

// A closed stdout (`fleet … | head`) fails the write in progress, which is handled where it was made.
process.stdout.on('error', () => {});
process.exitCode = await main(process.argv.slice(2));
