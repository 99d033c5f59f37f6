import type { CliIo } from './io.js';
import { demoCommand } from './commands/demo.js';
import { devCaCommands } from './commands/dev-ca.js';
import { stoqCommands } from './commands/stoq.js';

/** A `hypermesh` subcommand. `name` may have several words ("dev-ca init"). */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly help: string;
  run(args: readonly string[], io: CliIo): Promise<number>;
}

export const commands: readonly Command[] = [demoCommand, ...devCaCommands, ...stoqCommands];
