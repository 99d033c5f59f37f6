import type { Command } from '../commands.js';
import { parseCommandArgs } from '../args.js';
import { readGenesisFile } from '../cluster-layout.js';
import { clusterStatusJson, collectClusterStatus, formatClusterStatus } from '../cluster-status.js';
import { DEFAULT_CLUSTER_FILE, loadClusterTarget, openOperatorSession } from '../operator.js';
import { integerOption } from './cluster.js';

export const statusCommand: Command = {
  name: 'status',
  summary: "show a cluster's height, last commit, validators online and each node's view",
  help: `
usage: hypermesh status [--cluster FILE|DIR] [--json] [--timeout-ms MS]

Asks every node of the cluster for its status over STOQ (node API "status", with the operator
client identity from "cluster init") and prints the chain height, the last commit time, the
validators online (nodes that answered and the peers they are connected to, with their voting
power) and each node's view: its height, round, step, mempool and the heights it knows of its
peers. Unreachable nodes are listed with the reason. Exits 0 if at least one node answered,
1 if none did.

options:
  --cluster FILE|DIR  cluster.json written by "hypermesh dev", or a "cluster init" directory
                      (default ${DEFAULT_CLUSTER_FILE})
  --json              machine-readable output (one JSON document)
  --timeout-ms MS     how long to wait for each node (default 5000)
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      cluster: { type: 'string' },
      json: { type: 'boolean' },
      'timeout-ms': { type: 'string' },
    });
    const timeoutMs = integerOption(
      values['timeout-ms'],
      'timeout-ms',
      { min: 100, max: 600_000 },
      5000,
    );
    const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
    const genesis = await readGenesisFile(target.genesisFile);
    const session = await openOperatorSession(target);
    try {
      const status = await collectClusterStatus(target, genesis, session, timeoutMs);
      if (values.json) {
        io.out(`${JSON.stringify(clusterStatusJson(status), null, 2)}\n`);
      } else {
        io.out(`${formatClusterStatus(status).join('\n')}\n`);
      }
      return status.reachable > 0 ? 0 : 1;
    } finally {
      await session.close();
    }
  },
};
