import { commands, type Command } from './commands.js';
import { CliError } from './cli-error.js';
import { packageVersion } from './version.js';
import { exitOnBrokenPipe, processIo, visible, type CliIo } from './io.js';

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'hypermesh — federated trust and transport (TrustChain, STOQ, Proof-of-State consensus)',
    '',
    'usage: hypermesh <command> [options]',
    '',
    'commands:',
    ...lines,
    '',
    'options:',
    '  -h, --help     show help (also: hypermesh <command> --help)',
    '  -v, --version  print the version',
    '',
    'docs: README.md and docs/ in the repository.',
  ].join('\n');
}

/** Longest-prefix match of the argument list against the command names ("dev-ca init"). */
function findCommand(args: readonly string[]): { command: Command; rest: string[] } | undefined {
  let best: { command: Command; rest: string[] } | undefined;
  for (const command of commands) {
    const words = command.name.split(' ');
    if (words.every((word, i) => args[i] === word)) {
      if (!best || words.length > best.command.name.split(' ').length) {
        best = { command, rest: args.slice(words.length) };
      }
    }
  }
  return best;
}

export async function main(args: readonly string[], io: CliIo = processIo): Promise<number> {
  // A reader that goes away (`hypermesh … | head -1`) ends the process quietly.
  if (io === processIo) exitOnBrokenPipe();
  const first = args[0];
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    io.out(`${usage()}\n`);
    return first === undefined ? 2 : 0;
  }
  if (first === '-v' || first === '--version') {
    io.out(`hypermesh ${packageVersion()}\n`);
    return 0;
  }
  const found = findCommand(args);
  if (!found) {
    const group = commands.filter((c) => c.name.startsWith(`${first} `));
    if (group.length > 0) {
      const names = group.map((c) => `  hypermesh ${c.name}  ${c.summary}`).join('\n');
      const wanted = args[1] ?? '';
      const problem =
        wanted === '' || wanted.startsWith('-') ? 'needs a subcommand' : `has no "${wanted}"`;
      io.err(`hypermesh: "${first}" ${problem}:\n${names}\n`);
      return 2;
    }
    io.err(`hypermesh: unknown command "${first}"\n\n${usage()}\n`);
    return 2;
  }
  const { command, rest } = found;
  if (rest.includes('-h') || rest.includes('--help')) {
    io.out(`${command.help.trim()}\n`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof CliError) {
      io.err(`hypermesh ${command.name}: ${printable(error.message)}\n`);
      return error.exitCode;
    }
    const message = error instanceof Error ? error.message : String(error);
    const code =
      typeof error === 'object' && error !== null && 'code' in error
        ? ` [${String((error as { code: unknown }).code)}]`
        : '';
    io.err(`hypermesh ${command.name}: ${printable(message + code)}\n`);
    return 1;
  }
}

/**
 * An error message as printed: its lines kept, every control or bidirectional formatting
 * character in them escaped (`visible`). Messages carry what nodes answered (a refusal's
 * text, a served document) and what files held, and printed raw such text could rewrite the
 * terminal's lines or reorder what the reader sees.
 */
function printable(message: string): string {
  return message.split('\n').map(visible).join('\n');
}
