import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { initCluster, CLUSTER_FILES } from '../../src/node/cluster-init.js';
import type { NodeConfig } from '../../src/node/config.js';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { nodeService } from '../../src/node/node-service.js';
import {
  openOperatorParts,
  openOperatorSession,
  type ClusterTarget,
} from '../../src/node/operator.js';
import { buildStoqParts, type StoqParts } from '../../src/node/stoq-node.js';
import { StoqError, StoqErrorCode, type SocketAddress } from '../../src/stoq/index.js';

/**
 * The operator's node-API clients check who they reached (operator.ts, discovery-resolver.ts
 * `isServingNode`): the session at a node's address must authenticate as that node, in the
 * `validator` or `node` role. A `client` certificate (here the operator's own) or another node
 * listening there is refused before any call is made.
 */
describe('operator session: the dialled node must be the node named', () => {
  let dir: string;
  let target: ClusterTarget;
  const servers: StoqParts[] = [];
  const logger = createLogger({ node: 'test' }, () => undefined, 'error');

  /** A STOQ server with `config`'s identity on a fresh loopback port. */
  const serve = async (config: NodeConfig): Promise<SocketAddress> => {
    const parts = await buildStoqParts(config, logger);
    servers.push(parts);
    return parts.endpoint.listen({ host: '127.0.0.1', port: 0 });
  };

  /** The cluster's target with node-1 (whose certificate is validator/node-1) at `address`. */
  const targetWithNode1At = (address: SocketAddress): ClusterTarget => ({
    ...target,
    nodes: target.nodes.map((node) =>
      node.name === 'node-1' ? { ...node, stoq: { host: address.host, port: address.port } } : node,
    ),
  });

  const refusedAs = (error: unknown, name: string): boolean => {
    assert.ok(error instanceof StoqError, String(error));
    assert.equal(error.code, StoqErrorCode.UNAUTHENTICATED);
    assert.equal(error.detail.reason, 'peer-mismatch');
    assert.equal(error.detail.name, name);
    assert.match(error.message, new RegExp(`not as ${name}$`));
    return true;
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-operator-'));
    const layout = await initCluster({
      out: dir,
      validators: 2,
      basePort: 0,
      metricsBasePort: 0,
      dns: false,
      acme: false,
      // The development CA: no consensus runs here to prove TrustChain leaves (the operator's
      // proven leaf check and its key pins in a TrustChain cluster: operator-trust.test.ts).
      ca: false,
    });
    target = {
      source: dir,
      chainId: layout.chainId,
      genesisFile: layout.genesisFile,
      trustRootsFile: layout.trustRootsFile,
      operator: layout.operator,
      nodes: layout.nodes.map((node) => ({
        name: node.name,
        id: node.id,
        stoq: node.stoq,
        metrics: null,
      })),
    };
  });

  after(async () => {
    await Promise.all(servers.map((parts) => parts.close()));
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** The STOQ part of node `name`'s configuration, as the node builds it. */
  const nodeConfig = async (name: string): Promise<NodeConfig> => {
    const config = await loadValidatorNodeConfig(
      path.join(dir, name, CLUSTER_FILES.nodeConfig),
      {},
    );
    return {
      cluster: target.chainId,
      name: config.name,
      transport: config.stoq.transport,
      listen: { host: '127.0.0.1', port: 0 },
      auth: { mode: config.stoq.authMode, delegationTtlSeconds: 3600 },
      identity: {
        keyFile: config.identity.keyFile,
        certificateFile: config.identity.certificateFile,
      },
      trust: { rootsFile: config.trust.rootsFile },
      peers: {},
      metrics: null,
    };
  };

  it('a client-role server at the node address is refused, naming the node', async () => {
    // The operator's own identity: spiffe://<cluster>/client/operator, a valid cluster certificate.
    const operatorConfig: NodeConfig = {
      ...(await nodeConfig('node-1')),
      name: CLUSTER_FILES.operatorName,
      identity: {
        keyFile: target.operator.keyFile,
        certificateFile: target.operator.certificateFile,
      },
    };
    const address = await serve(operatorConfig);
    const session = await openOperatorSession(targetWithNode1At(address));
    try {
      await assert.rejects(session.client('node-1').status(), (error) =>
        refusedAs(error, 'node-1'),
      );
      await assert.rejects(session.client('node-1').txStatus(new Uint8Array(32)), (error) =>
        refusedAs(error, 'node-1'),
      );
    } finally {
      await session.close();
    }
  });

  it('another node at the address is refused; the node itself is reached', async () => {
    const impostor = await serve(await nodeConfig('node-2'));
    const refused = await openOperatorParts(targetWithNode1At(impostor));
    try {
      await assert.rejects(
        refused.parts.endpoint.client(nodeService, 'node-1').call('ping', { sentAt: 1 }),
        (error) => refusedAs(error, 'node-1'),
      );
    } finally {
      await refused.close();
    }

    const genuine = await serve(await nodeConfig('node-1'));
    const reached = await openOperatorParts(targetWithNode1At(genuine));
    try {
      const pong = await reached.parts.endpoint
        .client(nodeService, 'node-1')
        .call('ping', { sentAt: 1 });
      assert.equal(pong.node, 'node-1');
    } finally {
      await reached.close();
    }
  });
});
