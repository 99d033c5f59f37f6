import { parseCommandLine, type Options } from '../args.js';
import type { Command } from '../commands.js';
import { CliError } from '../cli-error.js';
import { readGenesisFile } from '../cluster-layout.js';
import {
  DEFAULT_CLUSTER_FILE,
  findNode,
  loadClusterTarget,
  openOperatorSession,
} from '../operator.js';
import { StoqError } from '../../stoq/index.js';

/** Parses options plus exactly `count` positional arguments, with errors a person can act on. */
export function parseWithPositionals<O extends Options>(
  args: readonly string[],
  options: O,
  names: readonly string[],
) {
  const parsed = parseCommandLine(args, options);
  if (parsed.positionals.length !== names.length) {
    throw new CliError(
      `expected ${names.map((name) => name.toUpperCase()).join(' ')}, got ${parsed.positionals.length} argument(s) (see --help)`,
    );
  }
  return { values: parsed.values, positionals: parsed.positionals };
}

const verify: Command = {
  name: 'block verify',
  summary: 'fetch a committed block from a node and verify its four-part consensus proof',
  help: `
usage: hypermesh block verify HEIGHT [--cluster FILE|DIR] [--node NAME|HOST:PORT]
                              [--no-reexecute] [--json]

Fetches block HEIGHT with its commit, and its parent, from a node over STOQ (node API
"getBlock", operator identity) and checks: the block rules (chain, height, parent, validator
set, proposer, BFT time, last commit, transactions and evidence roots) and the four proof parts —
PoSpace (challenge answers and Merkle paths to the proposer's registered storage root), PoStake
(the commit: > 2/3 of the voting power, Ed25519 signatures, FALCON-1024 ones on every
precommit when the genesis sets requirePq), PoWork (the transactions root, every transaction's
hashcash stamp, and the state root) and PoTime (BFT median time and the sequential hash chain).

For the state root the block is re-executed here, with the chain's modules (from the genesis),
on the state the node's "blockWitness" answer shows: the tree nodes and values the block reads
and changes, each checked against the parent header's state root, so the node is trusted for
nothing. A node that cannot give a witness (or --no-reexecute) leaves PoWork "stamps-only".
Exits 0 only if the block is valid and everything asked for was checked; 1 if it is proven
invalid; 3 if it is "incomplete": nothing checked fails, but the validator set of the height
cannot be trusted (a change vouched for by no more than 1/3 of the previous set's power,
updates from the node that do not apply: nothing of the block is checked), or the node gave no
state witness, so the state root is unchecked (retry, ask another node, or pass --no-reexecute
to accept that).

options:
  --cluster FILE|DIR    cluster.json or "cluster init" directory (default ${DEFAULT_CLUSTER_FILE})
  --node NAME|ADDR      node to ask: name, validator address or host:port (default: the first)
  --no-reexecute        skip the re-execution (PoWork: stamps and transactions root only);
                        the block is then valid without it (exit 0)
  --json                machine-readable output
`,
  async run(args, io) {
    const { values, positionals } = parseWithPositionals(
      args,
      {
        cluster: { type: 'string' },
        node: { type: 'string' },
        'no-reexecute': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      ['height'],
    );
    const text = positionals[0] as string;
    if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
      throw new CliError(`HEIGHT must be a positive integer, got "${text}"`);
    }
    const height = Number(text);
    const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
    const node =
      values.node === undefined
        ? (target.nodes[0] as (typeof target.nodes)[number])
        : findNode(target, values.node);
    const genesis = await readGenesisFile(target.genesisFile);
    const { verifyBlockFromNode, formatBlockVerify, blockVerifyJson, BLOCK_VERIFY_EXIT_CODES } =
      await import('../block-verify.js');
    const session = await openOperatorSession(target);
    try {
      const report = await verifyBlockFromNode(session.client(node.name), genesis, height, {
        reexecute: values['no-reexecute'] !== true,
      }).catch((error: unknown) => {
        if (error instanceof StoqError) {
          const reason =
            error.detail.reason === 'no-block' ? ' (the node has no such block yet)' : '';
          throw new CliError(`${node.name}: ${error.code}: ${error.message}${reason}`, 1);
        }
        throw error;
      });
      if (values.json) io.out(`${JSON.stringify(blockVerifyJson(report, node.name), null, 2)}\n`);
      else io.out(`${formatBlockVerify(report, node.name).join('\n')}\n`);
      return BLOCK_VERIFY_EXIT_CODES[report.status];
    } finally {
      await session.close();
    }
  },
};

export const blockCommands: readonly Command[] = [verify];
