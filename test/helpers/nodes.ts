import path from 'node:path';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig, type ValidatorNodeConfig } from '../../src/node/node-config.js';
import type { ValidatorProcess } from '../../src/node/node-process.js';
import { startValidatorNode, type ValidatorNode } from '../../src/node/validator-node.js';
import { waitForCondition } from './wait.js';

/**
 * Starts the named validators of a `cluster init` directory in this process (logging errors
 * only), pushing each onto `nodes` as it starts — so the caller's `after` stops whatever did
 * start when a later one fails — and waits until every one has committed `height` (default 1).
 * `configure` may change a node's loaded configuration before it starts.
 */
export async function startClusterNodes(
  nodes: ValidatorNode[],
  dir: string,
  names: readonly string[],
  options: {
    readonly configure?: (
      name: string,
      config: ValidatorNodeConfig,
    ) => ValidatorNodeConfig | Promise<ValidatorNodeConfig>;
    readonly height?: number;
  } = {},
): Promise<void> {
  const started: ValidatorNode[] = [];
  for (const name of names) {
    const loaded = await loadValidatorNodeConfig(path.join(dir, name, 'config.json'), {});
    const config = options.configure === undefined ? loaded : await options.configure(name, loaded);
    const node = await startValidatorNode(
      config,
      createLogger({ node: name }, () => undefined, 'error'),
    );
    nodes.push(node);
    started.push(node);
  }
  const height = options.height ?? 1;
  await Promise.all(
    started.map((node) =>
      waitForCondition(
        node.driver,
        'commit',
        () => node.driver.status().committedHeight >= height,
        `${node.config.name} commits block ${height}`,
        60_000,
      ),
    ),
  );
}

/** Kills (SIGKILL) every validator process still running and waits until each has exited. */
export async function killValidators(processes: Iterable<ValidatorProcess>): Promise<void> {
  await Promise.all(
    [...processes].map(async (node) => {
      if (node.child.exitCode === null && node.child.signalCode === null) {
        node.child.kill('SIGKILL');
      }
      await node.exited;
    }),
  );
}
