import { stat } from 'node:fs/promises';
import path from 'node:path';
import { createNodeRpcClient, type NodeRpcClient } from '../consensus/net/index.js';
import type { StoqEndpoint } from '../stoq/index.js';
import { CliError } from './cli-error.js';
import { readClusterFile } from './cluster-file.js';
import { CLUSTER_FILES } from './cluster-init.js';
import { readClusterLayout, readGenesisFile } from './cluster-layout.js';
import { DEFAULT_DEV_DIR, DEFAULT_LISTEN_HOST, type NodeConfig } from './config.js';
import { createLogger } from './log.js';
import { DiscoveryResolver, RemoteCatalog, isServingNode } from './discovery-resolver.js';
import {
  hasTrustChainCa,
  operatorNodePins,
  pinnedNodeKeyCheck,
  provenLeafRevocation,
} from './operator-trust.js';
import { buildStoqParts, type ExtraTrust, type StoqParts } from './stoq-node.js';
import { withCommittedRoots, type VerifiedRootCache } from './verified-root.js';
import type { GenesisDocument } from '../consensus/genesis.js';

/**
 * What the operator tools (`status`, `block verify`, `tx`, `query`) need to reach a cluster:
 * its nodes' STOQ addresses, the operator's client identity and the trust roots.
 */
export interface ClusterTarget {
  readonly source: string;
  readonly chainId: string;
  readonly genesisFile: string;
  readonly trustRootsFile: string;
  readonly operator: { readonly keyFile: string; readonly certificateFile: string };
  readonly nodes: readonly {
    readonly name: string;
    readonly id: string;
    readonly stoq: { readonly host: string; readonly port: number };
    readonly metrics: string | null;
  }[];
}

export const DEFAULT_CLUSTER_FILE = path.join(DEFAULT_DEV_DIR, CLUSTER_FILES.clusterJson);

/**
 * Reads `--cluster`: a cluster.json written by `hypermesh dev`, or a directory written by
 * `cluster init` (its cluster.json if there is one, else its genesis and node configurations,
 * with the nodes `cluster add-node` recorded in its added-nodes.json).
 */
export async function loadClusterTarget(
  location: string = DEFAULT_CLUSTER_FILE,
): Promise<ClusterTarget> {
  const absolute = path.resolve(location);
  const info = await stat(absolute).catch(() => null);
  if (info?.isDirectory()) {
    const file = path.join(absolute, CLUSTER_FILES.clusterJson);
    if (await stat(file).catch(() => null)) return loadClusterTarget(file);
    const layout = await readClusterLayout(absolute);
    return {
      source: absolute,
      chainId: layout.chainId,
      genesisFile: layout.genesisFile,
      trustRootsFile: layout.trustRootsFile,
      operator: layout.operator,
      // The genesis validators, then the nodes `cluster add-node` recorded.
      nodes: [...layout.nodes, ...layout.addedNodes].map((node) => ({
        name: node.name,
        id: node.id,
        stoq: node.stoq,
        metrics:
          node.metrics === null
            ? null
            : `http://${node.metrics.host.includes(':') ? `[${node.metrics.host}]` : node.metrics.host}:${node.metrics.port}/metrics`,
      })),
    };
  }
  const cluster = await readClusterFile(absolute);
  return {
    source: absolute,
    chainId: cluster.chainId,
    genesisFile: cluster.genesisFile,
    trustRootsFile: cluster.trustRootsFile,
    operator: cluster.operator,
    nodes: cluster.nodes.map((node) => ({
      name: node.name,
      id: node.id,
      stoq: node.stoq,
      metrics: node.metrics,
    })),
  };
}

/** Picks a node of the target by name, validator address or `host:port`. */
export function findNode(target: ClusterTarget, wanted: string): ClusterTarget['nodes'][number] {
  const found = target.nodes.find(
    (node) =>
      node.name === wanted ||
      node.id === wanted ||
      `${node.stoq.host}:${node.stoq.port}` === wanted ||
      `[${node.stoq.host}]:${node.stoq.port}` === wanted,
  );
  if (found === undefined) {
    throw new CliError(
      `no node "${wanted}" in ${target.source}; nodes: ${target.nodes.map((node) => `${node.name} (${node.stoq.host}:${node.stoq.port})`).join(', ')}`,
    );
  }
  return found;
}

export interface OperatorSession {
  client(node: string): NodeRpcClient;
  close(): Promise<void>;
}

/** The operator's STOQ endpoint and the resolver it dials the cluster's nodes through. */
export interface OperatorParts {
  readonly parts: StoqParts;
  readonly resolver: DiscoveryResolver;
  /** The target's genesis: what answers' state roots are checked against (verified-root.ts). */
  readonly genesis: GenesisDocument;
  close(): Promise<void>;
}

/**
 * A STOQ client endpoint with the operator's identity. Its `client(service, name)` sessions
 * must authenticate as node `name` in the `validator` or `node` role (`isServingNode`;
 * otherwise the call fails with `UNAUTHENTICATED`, `detail.reason` `peer-mismatch`, naming the
 * expected node), with the key the operator holds that name to (operator-trust.ts: the genesis
 * key of a genesis validator, the key address the cluster directory records for a node added
 * later; otherwise `UNAUTHENTICATED`, `wrong_key_usage`, saying which key was expected). In a
 * TrustChain cluster the peer's leaf must also be the one committed state records and not be
 * revoked there, proven by another node (`provenLeafRevocation`; otherwise `revoked`). The
 * target's node addresses are the bootstrap: a node name resolves to where the catalog's
 * `hypermesh-node` registration says it is (asked of the bootstrap nodes, proven, followed
 * with `watch`), and to the target's address while discovery has no answer
 * (discovery-resolver.ts).
 */
export async function openOperatorParts(target: ClusterTarget): Promise<OperatorParts> {
  const config: NodeConfig = {
    cluster: target.chainId,
    name: CLUSTER_FILES.operatorName,
    transport: 'quic',
    listen: { host: DEFAULT_LISTEN_HOST, port: 0 },
    auth: { mode: 'delegated', delegationTtlSeconds: 3600 },
    identity: {
      keyFile: target.operator.keyFile,
      certificateFile: target.operator.certificateFile,
    },
    trust: { rootsFile: target.trustRootsFile },
    peers: Object.fromEntries(target.nodes.map((node) => [node.name, [node.stoq]])),
    metrics: null,
  };
  // The endpoint the catalog is asked through (its answers are proven, whoever gives them).
  let endpoint: StoqEndpoint | null = null;
  const genesis = await readGenesisFile(target.genesisFile);
  const resolver = new DiscoveryResolver({
    bootstrap: config.peers,
    catalog: new RemoteCatalog({
      genesis,
      bootstrap: target.nodes.map((node) => node.stoq),
      connect: (address, signal) => {
        if (endpoint === null) {
          return Promise.reject(new CliError('the operator endpoint is not set up', 1));
        }
        return endpoint.connect(address, { signal });
      },
    }),
  });
  const logger = createLogger({ node: CLUSTER_FILES.operatorName }, undefined, 'error');
  const identityCheck = pinnedNodeKeyCheck(operatorNodePins(genesis, target));
  const loadFailure = (error: unknown): never => {
    throw error instanceof CliError
      ? error
      : new CliError(`cannot load the operator identity: ${(error as Error).message}`, 1);
  };
  // The proven reads of the peers' leaves, and the catalog's, go through an endpoint of their
  // own (key-pinned, without that check): on the main one, the handshake they serve would wait
  // on them.
  const reader = hasTrustChainCa(genesis)
    ? await buildStoqParts(
        config,
        logger,
        resolver,
        { roots: [], revocation: () => 'good', identityCheck },
        isServingNode,
      ).catch(loadFailure)
    : null;
  const extra: ExtraTrust = {
    roots: [],
    revocation:
      reader === null
        ? () => 'good'
        : provenLeafRevocation({
            genesis,
            client: (name) => createNodeRpcClient({ endpoint: reader.endpoint, peer: name }),
            readers: target.nodes.map((node) => node.name),
          }),
    identityCheck,
  };
  // Every node-API session must be the node dialled: its certificate names that node, in a
  // serving role, for the key pinned for it. Another cluster identity at the resolved address
  // (a `client` certificate, another node, or a leaf another CA holder signed for this name) is
  // refused, so it cannot answer `submitTx`, `txStatus` or `status` as `name`.
  const parts = await buildStoqParts(config, logger, resolver, extra, isServingNode).catch(
    async (error: unknown) => {
      await reader?.close();
      return loadFailure(error);
    },
  );
  endpoint = reader?.endpoint ?? parts.endpoint;
  return {
    parts,
    resolver,
    genesis,
    close: async () => {
      await resolver.close();
      await parts.close();
      await reader?.close();
    },
  };
}

/**
 * A STOQ client endpoint with the operator's identity, able to call every node's API. Its
 * clients carry the check of state roots against committed headers (verified-root.ts) that the
 * proven readers require, sharing one cache of verified roots.
 */
export async function openOperatorSession(target: ClusterTarget): Promise<OperatorSession> {
  const opened = await openOperatorParts(target);
  const cache: VerifiedRootCache = new Map();
  return {
    client: (node) =>
      withCommittedRoots(
        createNodeRpcClient({ endpoint: opened.parts.endpoint, peer: node }),
        opened.genesis,
        { cache },
      ),
    close: () => opened.close(),
  };
}
