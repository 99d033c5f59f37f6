import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseGenesisJson, type GenesisDocument } from '../consensus/genesis.js';
import { validatorAddress } from '../consensus/validator-set.js';
import { CliError } from './cli-error.js';
import { CLUSTER_FILES, type ClusterLayout, type ClusterNodeLayout } from './cluster-init.js';
import { DEV_CA_FILES } from './dev-ca.js';
import { loadValidatorNodeConfig } from './node-config.js';

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
 * Reads a directory written by `cluster init` back into its layout: the genesis, then each
 * validator's `<name>/config.json` (checked like `node start` checks it, environment overrides
 * excluded). Throws a CliError naming what is missing or inconsistent.
 */
export async function readClusterLayout(dir: string): Promise<ClusterLayout> {
  const root = path.resolve(dir);
  const genesisFile = path.join(root, CLUSTER_FILES.genesis);
  const genesis = await readGenesisFile(genesisFile);
  const nodes: ClusterNodeLayout[] = [];
  for (const validator of genesis.validators) {
    const configFile = path.join(root, validator.name, CLUSTER_FILES.nodeConfig);
    const config = await loadValidatorNodeConfig(configFile, {});
    if (config.name !== validator.name) {
      throw new CliError(`${configFile} names node "${config.name}", expected "${validator.name}"`);
    }
    if (config.metrics === null) {
      throw new CliError(`${configFile} has no metrics endpoint; the cluster tools need one`);
    }
    nodes.push({
      name: validator.name,
      id: validatorAddress(validator.publicKey),
      publicKey: Buffer.from(validator.publicKey).toString('hex'),
      dir: path.dirname(configFile),
      configFile,
      stoq: { host: config.stoq.host, port: config.stoq.port },
      metrics: { host: config.metrics.host, port: config.metrics.port },
      dns: config.dns?.udp[0] ?? null,
      doq: config.dns?.doq[0] ?? null,
    });
  }
  const operatorDir = path.join(root, CLUSTER_FILES.operatorDir);
  const layout: ClusterLayout = {
    dir: root,
    chainId: genesis.chainId,
    genesisFile,
    trustRootsFile: path.join(root, CLUSTER_FILES.caDir, DEV_CA_FILES.certificate),
    operator: {
      keyFile: path.join(operatorDir, `${CLUSTER_FILES.operatorName}.key`),
      certificateFile: path.join(operatorDir, `${CLUSTER_FILES.operatorName}.pem`),
    },
    nodes,
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
