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
import { parseWithPositionals } from './block.js';
import { integerOption } from './cluster.js';

function stoqFailure(node: string) {
  return (error: unknown): never => {
    if (error instanceof StoqError) {
      throw new CliError(`${node}: ${error.code}: ${error.message}`, 1);
    }
    throw error;
  };
}

const kvSetCommand: Command = {
  name: 'tx kv-set',
  summary: 'set a key in the kv module: a signed, stamped transaction from the operator key',
  help: `
usage: hypermesh tx kv-set KEY VALUE [--cluster FILE|DIR] [--node NAME|ADDR] [--no-wait]
                                     [--timeout-ms MS]

Builds a "kv" set transaction signed with the operator's Ed25519 key (operator/operator.key),
with its next sequence number (asked from the node) and a hashcash stamp of the chain's
difficulty, submits it to a node's mempool and waits until it is committed (prints the height
and the module's result code; 0 = applied). A key belongs to the sender that first set it.

options:
  --cluster FILE|DIR  cluster.json or "cluster init" directory (default ${DEFAULT_CLUSTER_FILE})
  --node NAME|ADDR    node to submit to (default: the first)
  --no-wait           return once the node admitted the transaction
  --timeout-ms MS     how long to wait for the commit (default 30000)
`,
  async run(args, io) {
    const { values, positionals } = parseWithPositionals(
      args,
      {
        cluster: { type: 'string' },
        node: { type: 'string' },
        'no-wait': { type: 'boolean' },
        'timeout-ms': { type: 'string' },
      },
      ['key', 'value'],
    );
    const [key, value] = positionals as [string, string];
    const timeoutMs = integerOption(
      values['timeout-ms'],
      'timeout-ms',
      { min: 100, max: 3_600_000 },
      30_000,
    );
    const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
    const node =
      values.node === undefined
        ? (target.nodes[0] as (typeof target.nodes)[number])
        : findNode(target, values.node);
    const genesis = await readGenesisFile(target.genesisFile);
    const { operatorKey, submitKvSet } = await import('../kv-tools.js');
    const { notCommittedReason } = await import('../tx-submit.js');
    const privateKey = await operatorKey(target.operator.keyFile);
    const session = await openOperatorSession(target);
    try {
      const outcome = await submitKvSet({
        client: session.client(node.name),
        genesis,
        privateKey,
        key,
        value,
        wait: !values['no-wait'],
        timeoutMs,
      }).catch(stoqFailure(node.name));
      io.out(`tx ${outcome.txHash} (sequence ${outcome.sequence}) submitted to ${node.name}\n`);
      if (outcome.status.status === 'committed') {
        const applied = outcome.status.code === 0 ? 'applied' : `refused: ${outcome.status.log}`;
        io.out(
          `committed at height ${outcome.status.height}, code ${outcome.status.code} (${applied})\n`,
        );
        return outcome.status.code === 0 ? 0 : 1;
      }
      if (values['no-wait']) return 0;
      io.out(`${notCommittedReason(outcome.status, timeoutMs, node.name)}\n`);
      return 1;
    } finally {
      await session.close();
    }
  },
};

const kvQueryCommand: Command = {
  name: 'query kv',
  summary: 'read a key of the kv module, with its Merkle proof checked against the state root',
  help: `
usage: hypermesh query kv KEY [--cluster FILE|DIR] [--node NAME|ADDR] [--height H] [--json]

Asks a node for KEY (query "kv/get") and checks the state proof in the answer against the state
root it names: a present key's value and owner, or proof that the key is absent. Exits 0 when
the proof verifies (present or absent), 1 otherwise.

options:
  --cluster FILE|DIR  cluster.json or "cluster init" directory (default ${DEFAULT_CLUSTER_FILE})
  --node NAME|ADDR    node to ask (default: the first)
  --height H          read the state as of height H (default: latest committed)
  --json              machine-readable output
`,
  async run(args, io) {
    const { values, positionals } = parseWithPositionals(
      args,
      {
        cluster: { type: 'string' },
        node: { type: 'string' },
        height: { type: 'string' },
        json: { type: 'boolean' },
      },
      ['key'],
    );
    const key = positionals[0] as string;
    const height =
      values.height === undefined
        ? undefined
        : integerOption(values.height, 'height', { min: 1, max: Number.MAX_SAFE_INTEGER }, 1);
    const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
    const node =
      values.node === undefined
        ? (target.nodes[0] as (typeof target.nodes)[number])
        : findNode(target, values.node);
    const { readKv, displayValue } = await import('../kv-tools.js');
    const session = await openOperatorSession(target);
    try {
      const read = await readKv(session.client(node.name), key, height).catch(
        stoqFailure(node.name),
      );
      if (values.json) {
        io.out(
          `${JSON.stringify(
            {
              node: node.name,
              key,
              height: read.height,
              stateRoot: read.stateRoot,
              present: read.value !== null,
              owner: read.owner,
              value: read.value === null ? null : Buffer.from(read.value).toString('hex'),
            },
            null,
            2,
          )}\n`,
        );
      } else if (read.value === null) {
        io.out(
          `${JSON.stringify(key)} is absent at height ${read.height ?? '-'} (proof verified against state root ${read.stateRoot})\n`,
        );
      } else {
        io.out(`${JSON.stringify(key)} = ${displayValue(read.value)}\n`);
        io.out(
          `  owner ${read.owner}, height ${read.height ?? '-'}, proof verified against state root ${read.stateRoot}\n`,
        );
      }
      return 0;
    } finally {
      await session.close();
    }
  },
};

export const kvCommands: readonly Command[] = [kvSetCommand, kvQueryCommand];
