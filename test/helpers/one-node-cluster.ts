import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { loadClusterTarget, type ClusterTarget } from '../../src/node/operator.js';
import { startValidatorNode, type ValidatorNode } from '../../src/node/validator-node.js';
import { clusterInitArgs, runCli } from './cli.js';
import { waitForCondition } from './wait.js';

/** A one-validator cluster (TrustChain CA on, no ledger) whose node runs in this process. */
export interface OneNodeCluster {
  /** The temporary directory holding everything; the caller removes it. */
  readonly root: string;
  /** The `cluster init` directory inside `root`. */
  readonly dir: string;
  readonly node: ValidatorNode;
  readonly target: ClusterTarget;
}

/**
 * `cluster init --validators 1 --no-caesar` into a fresh temporary directory named after
 * `prefix`, node-1 started in this process, once it has committed block 1.
 */
export async function startOneNodeCluster(prefix: string): Promise<OneNodeCluster> {
  const root = await mkdtemp(path.join(tmpdir(), prefix));
  const dir = path.join(root, 'cluster');
  const init = await runCli([...clusterInitArgs(dir, 1), '--no-caesar']);
  assert.equal(init.code, 0, init.err);
  const config = await loadValidatorNodeConfig(path.join(dir, 'node-1', 'config.json'), {});
  const node = await startValidatorNode(
    config,
    createLogger({ node: 'node-1' }, () => undefined, 'error'),
  );
  await waitForCondition(
    node.driver,
    'commit',
    () => node.driver.status().committedHeight >= 1,
    'node-1 commits block 1',
    60_000,
  );
  return { root, dir, node, target: await loadClusterTarget(dir) };
}
