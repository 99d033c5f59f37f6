import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseGenesisJson, type GenesisDocument } from '../consensus/genesis.js';
import { validatorAddress } from '../consensus/validator-set.js';
import { CliError } from './cli-error.js';
import { CA_FILES } from './ca-genesis.js';
import { ADDED_NODES_FILE, readAddedNodes } from './cluster-added-nodes.js';
import { CLUSTER_FILES, type ClusterLayout, type ClusterNodeLayout } from './cluster-init.js';
import { DEV_CA_FILES } from './dev-ca.js';
import { loadValidatorNodeConfig, type ValidatorNodeConfig } from './node-config.js';

/** Reads and checks a genesis file, naming the file in any error. */
export async function readGenesisFile(file: string): Promise<GenesisDocument> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read genesis ${file}: ${(error as Error).message}`);
  }
  try {
    return parseGenesisJson(text);
  } catch (error) {
    throw new CliError(`invalid genesis ${file}: ${(error as Error).message}`);
  }
}

/**
 * A node `cluster add-node` wrote (listed in `added-nodes.json`, cluster-added-nodes.ts): laid
 * out like a genesis node, but outside the genesis (it validates only once staking selects it)
 * and possibly without metrics (`--no-metrics`).
 */
export interface AddedNodeLayout extends Omit<ClusterNodeLayout, 'metrics'> {
  readonly metrics: { readonly host: string; readonly port: number } | null;
}

/** A cluster directory: the genesis validators in `nodes`, the nodes added since in `addedNodes`. */
export interface ClusterDirectoryLayout extends ClusterLayout {
  readonly addedNodes: readonly AddedNodeLayout[];
}

/** `DIR/<name>/config.json`, checked like `node start` checks it, and that it names `name`. */
async function readNodeConfig(root: string, name: string): Promise<ValidatorNodeConfig> {
  const configFile = path.join(root, name, CLUSTER_FILES.nodeConfig);
  const config = await loadValidatorNodeConfig(configFile, {});
  if (config.name !== name) {
    throw new CliError(`${configFile} names node "${config.name}", expected "${name}"`);
  }
  return config;
}

function nodeFields(root: string, name: string, config: ValidatorNodeConfig) {
  const configFile = path.join(root, name, CLUSTER_FILES.nodeConfig);
  return {
    name,
    dir: path.dirname(configFile),
    configFile,
    stoq: { host: config.stoq.host, port: config.stoq.port },
    dns: config.dns?.udp[0] ?? null,
    doq: config.dns?.doq[0] ?? null,
  };
}

/**
 * Reads a directory written by `cluster init` back into its layout: the genesis, then each
 * validator's `<name>/config.json` (checked like `node start` checks it, environment overrides
 * excluded), then the nodes `cluster add-node` recorded in `added-nodes.json` (none when the
 * file is absent). Throws a CliError naming what is missing or inconsistent.
 */
export async function readClusterLayout(dir: string): Promise<ClusterDirectoryLayout> {
  const root = path.resolve(dir);
  const genesisFile = path.join(root, CLUSTER_FILES.genesis);
  const genesis = await readGenesisFile(genesisFile);
  const nodes: ClusterNodeLayout[] = [];
  for (const validator of genesis.validators) {
    const config = await readNodeConfig(root, validator.name);
    if (config.metrics === null) {
      throw new CliError(
        `${path.join(root, validator.name, CLUSTER_FILES.nodeConfig)} has no metrics endpoint; the cluster tools need one`,
      );
    }
    nodes.push({
      ...nodeFields(root, validator.name, config),
      id: validatorAddress(validator.publicKey),
      publicKey: Buffer.from(validator.publicKey).toString('hex'),
      metrics: { host: config.metrics.host, port: config.metrics.port },
    });
  }
  const addedNodes: AddedNodeLayout[] = [];
  for (const added of await readAddedNodes(root)) {
    if (nodes.some((node) => node.name === added.name)) {
      throw new CliError(
        `${path.join(root, ADDED_NODES_FILE)} lists "${added.name}", a genesis validator`,
      );
    }
    const config = await readNodeConfig(root, added.name);
    addedNodes.push({
      ...nodeFields(root, added.name, config),
      id: validatorAddress(Buffer.from(added.publicKey, 'hex')),
      publicKey: added.publicKey,
      metrics:
        config.metrics === null ? null : { host: config.metrics.host, port: config.metrics.port },
    });
  }
  const operatorDir = path.join(root, CLUSTER_FILES.operatorDir);
  const layout: ClusterDirectoryLayout = {
    dir: root,
    chainId: genesis.chainId,
    genesisFile,
    // A TrustChain CA cluster trusts its root; a --no-ca cluster, its development CA's.
    trustRootsFile: path.join(
      root,
      CLUSTER_FILES.caDir,
      genesis.app?.ca === undefined ? DEV_CA_FILES.certificate : CA_FILES.root,
    ),
    operator: {
      keyFile: path.join(operatorDir, `${CLUSTER_FILES.operatorName}.key`),
      certificateFile: path.join(operatorDir, `${CLUSTER_FILES.operatorName}.pem`),
    },
    nodes,
    addedNodes,
  };
  for (const file of [
    layout.trustRootsFile,
    layout.operator.keyFile,
    layout.operator.certificateFile,
  ]) {
    try {
      await access(file);
    } catch {
      throw new CliError(`${file} is missing from the cluster directory ${root}`);
    }
  }
  return layout;
}
