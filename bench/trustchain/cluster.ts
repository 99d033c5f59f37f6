import { readFile, writeFile } from 'node:fs/promises';
import { DEV_PROOF_PARAMS } from '../../src/consensus/genesis.js';
import { caService, type CaRpcService } from '../../src/faces/ca-rpc.js';
import { initCluster } from '../../src/node/cluster-init.js';
import { readGenesisFile } from '../../src/node/cluster-layout.js';
import { createNodeRpcClient } from '../../src/consensus/net/index.js';
import { openOperatorParts, type OperatorParts } from '../../src/node/operator.js';
import type { RpcClient } from '../../src/stoq/index.js';
import { perConnection, spawnBenchCluster, type BenchCluster } from '../consensus/cluster.js';

/**
 * A local cluster for the trustchain benchmark: `cluster init` with the TrustChain CA and an
 * ACME server on every node (no DNS servers, no service catalog), one `hypermesh node start`
 * child process per validator (the built bin), and `connections` operator client endpoints.
 * Like bench/consensus/cluster.ts, but with the CA on; the one change to what `cluster init`
 * wrote is `acme.http01Port` in each node's configuration (a documented option), so http-01
 * validations reach the benchmark's challenge server on an unprivileged port.
 */
export interface TrustchainCluster extends BenchCluster {
  /** `hypermesh.trustchain.ca.v1` of `node` over connection `connection`. */
  ca(connection: number, node: string): RpcClient<CaRpcService>;
  /** Each node's ACME directory URL, in node order. */
  readonly acmeDirectories: readonly string[];
  /** The development root that signed the nodes' HTTPS certificates (PEM). */
  readonly httpsRootPem: string;
  /** The SPIFFE trust domain of the CA (`spiffe://<cluster>/...`). */
  readonly caCluster: string;
}

interface NodeConfigJson {
  acme?: { https: { host: string; port: number }; http01Port?: number } | null;
}

export async function startTrustchainCluster(options: {
  readonly dir: string;
  readonly validators: number;
  readonly stampDifficulty: number;
  readonly connections: number;
  readonly http01Port: number;
  readonly progress: (message: string) => void;
}): Promise<TrustchainCluster> {
  const layout = await initCluster({
    out: options.dir,
    validators: options.validators,
    chainId: 'bench-trustchain',
    basePort: 0,
    metricsBasePort: 0,
    proofParams: { ...DEV_PROOF_PARAMS, work: { stampDifficulty: options.stampDifficulty } },
    dns: false,
    discovery: false,
    ca: true,
    acme: true,
  });
  const genesis = await readGenesisFile(layout.genesisFile);
  const acmeDirectories: string[] = [];
  for (const node of layout.nodes) {
    const config = JSON.parse(await readFile(node.configFile, 'utf8')) as NodeConfigJson;
    if (config.acme === undefined || config.acme === null) {
      throw new Error(`${node.name}: cluster init wrote no acme section`);
    }
    config.acme.http01Port = options.http01Port;
    await writeFile(node.configFile, `${JSON.stringify(config, null, 2)}\n`);
    acmeDirectories.push(`https://${config.acme.https.host}:${config.acme.https.port}/directory`);
  }
  // The ACME HTTPS certificates come from each node's TrustChain intermediate.
  const httpsRootPem = await readFile(layout.trustRootsFile, 'utf8');

  const started = await spawnBenchCluster(layout, { ...options, open: openOperatorParts });
  const { sessions } = started;
  return {
    ...started,
    client: perConnection(sessions.length, (connection, node) =>
      createNodeRpcClient({
        endpoint: (sessions[connection] as OperatorParts).parts.endpoint,
        peer: node,
      }),
    ),
    ca: perConnection(sessions.length, (connection, node) =>
      (sessions[connection] as OperatorParts).parts.endpoint.client(caService, node),
    ),
    acmeDirectories,
    httpsRootPem,
    caCluster: genesis.chainId,
  };
}
