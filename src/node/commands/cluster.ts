import type { Command } from '../commands.js';
import { parseCommandArgs, requireOption } from '../args.js';
import { CliError } from '../cli-error.js';
import { initCluster, MAX_VALIDATORS } from '../cluster-init.js';
import {
  DEFAULT_CHAIN_ID,
  DEFAULT_LISTEN_HOST,
  DEFAULT_METRICS_PORT,
  DEFAULT_STOQ_PORT,
} from '../config.js';

/** Parses a whole number in [min, max] given as a command-line option. */
export function integerOption(
  value: string | undefined,
  name: string,
  range: { min: number; max: number },
  fallback: number,
): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < range.min || Number(value) > range.max) {
    throw new CliError(
      `--${name} must be an integer from ${range.min} to ${range.max}, got "${value}"`,
    );
  }
  return Number(value);
}

const init: Command = {
  name: 'cluster init',
  summary: 'genesis ceremony: keys, certificates, storage plots, genesis.json, node configs',
  help: `
usage: hypermesh cluster init --validators N --out DIR [--chain-id ID] [--host ADDR]
                              [--base-port P] [--metrics-base-port P] [--force]

Creates a cluster of N validators in DIR: a cluster CA (ca/), per node an Ed25519 key (its
STOQ identity and validator key) with a FALCON-1024 key pair, a certificate
spiffe://<chain-id>/validator/node-K carrying the FALCON key, a PoSpace storage plot and
node-K/config.json; an operator client identity (operator/); and genesis.json with every
validator's power, keys and storage root. Everything is written to a temporary directory and
renamed into place, so a failure leaves nothing behind. See docs/node.md.

options:
  --validators N         number of validators, 1-${MAX_VALIDATORS}
  --out DIR              cluster directory; must be absent or empty (see --force)
  --chain-id ID          chain id and certificate cluster name (default ${DEFAULT_CHAIN_ID})
  --host ADDR            address the nodes listen on (default ${DEFAULT_LISTEN_HOST})
  --base-port P          STOQ port of node-1, node-K gets P+K-1 (default ${DEFAULT_STOQ_PORT};
                         0 picks free ports now)
  --metrics-base-port P  metrics port of node-1, likewise (default ${DEFAULT_METRICS_PORT}; 0 = free)
  --force                replace DIR if it holds a previous cluster (a genesis.json)
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      validators: { type: 'string' },
      out: { type: 'string' },
      'chain-id': { type: 'string' },
      host: { type: 'string' },
      'base-port': { type: 'string' },
      'metrics-base-port': { type: 'string' },
      force: { type: 'boolean' },
    });
    const validators = integerOption(
      requireOption(values.validators, 'validators'),
      'validators',
      { min: 1, max: MAX_VALIDATORS },
      0,
    );
    const layout = await initCluster({
      out: requireOption(values.out, 'out'),
      validators,
      chainId: values['chain-id'] ?? DEFAULT_CHAIN_ID,
      host: values.host ?? DEFAULT_LISTEN_HOST,
      basePort: integerOption(
        values['base-port'],
        'base-port',
        { min: 0, max: 65_535 },
        DEFAULT_STOQ_PORT,
      ),
      metricsBasePort: integerOption(
        values['metrics-base-port'],
        'metrics-base-port',
        { min: 0, max: 65_535 },
        DEFAULT_METRICS_PORT,
      ),
      force: values.force ?? false,
      progress: (line) => io.out(`${line}\n`),
    });
    io.out(`created ${layout.dir}\n`);
    io.out(`start a node with: hypermesh node start --config ${layout.nodes[0]?.configFile}\n`);
    return 0;
  },
};

export const clusterCommands: readonly Command[] = [init];
