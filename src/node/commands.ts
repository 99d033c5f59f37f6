import type { CliIo } from './io.js';
import { blockCommands } from './commands/block.js';
import { clusterCommands } from './commands/cluster.js';
import { demoCommand } from './commands/demo.js';
import { devCommand } from './commands/dev.js';
import { dnsCommands } from './commands/dns.js';
import { kvCommands } from './commands/kv.js';
import { nodeCommands } from './commands/node.js';
import { statusCommand } from './commands/status.js';
import { devCaCommands } from './commands/dev-ca.js';
import { stakeCommands } from './commands/stake.js';
import { govCommands } from './commands/gov.js';
import { stoqCommands } from './commands/stoq.js';
import { serviceCommands } from './commands/service.js';
import { walletCommands } from './commands/wallet.js';
import { certCommands } from './commands/cert.js';
import { caCommands } from './commands/ca.js';

/** A `hypermesh` subcommand. `name` may have several words ("dev-ca init"). */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly help: string;
  run(args: readonly string[], io: CliIo): Promise<number>;
}

export const commands: readonly Command[] = [
  devCommand,
  ...clusterCommands,
  ...nodeCommands,
  statusCommand,
  ...blockCommands,
  ...kvCommands,
  ...walletCommands,
  ...stakeCommands,
  ...govCommands,
  ...dnsCommands,
  demoCommand,
  ...devCaCommands,
  ...stoqCommands,
  ...certCommands,
  ...caCommands,
  ...serviceCommands,
];
