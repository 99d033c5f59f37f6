import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createDiscoveryRpcClient } from '../../src/faces/discovery-rpc.js';
import { readClusterLayout } from '../../src/node/cluster-layout.js';
import { SELF_SERVICES } from '../../src/node/discovery-self.js';
import { nodeService } from '../../src/node/node-service.js';
import type { ValidatorNode } from '../../src/node/validator-node.js';
import { StoqErrorCode } from '../../src/stoq/errors.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { startClusterNodes } from '../helpers/nodes.js';
import { isStoqError } from '../helpers/stoq-error.js';
import { waitForCondition } from '../helpers/wait.js';

/**
 * A validator's own connection pool (`endpoint.client(service, name)`: ACME corroboration and
 * the other node-to-node calls) finds peers where the committed catalog says they are, and takes
 * a session only from the named node (src/node/validator-node.ts, discovery-resolver.ts; docs/
 * discovery.md "Resolving peers"). Four in-process validators from `cluster init` (so the
 * other three commit while node-1 cannot reach node-2); node-1's configuration puts node-2 at
 * node-3's address, and lists a `node-5` (registered by nobody) at node-3's address too. Once
 * node-2's own registration is committed, node-1's pool reaches the real node-2; a pool over the
 * configured addresses alone would dial node-3 for it. `node-5` stays refused: node-3 answers
 * there, and it is not node-5.
 */
let root: string;
const nodes: ValidatorNode[] = [];

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-node-pool-resolver-'));
});
after(async () => {
  await Promise.all(nodes.map((node) => node.stop()));
  await rm(root, { recursive: true, force: true });
});

describe("a validator's own connection pool", () => {
  it('dials a peer where the catalog says it is, and refuses a node answering for another name', async () => {
    const dir = path.join(root, 'cluster');
    const init = await runCli(clusterInitArgs(dir, 4));
    assert.equal(init.code, 0, init.err);
    const layout = await readClusterLayout(dir);
    const node3 = layout.nodes.find((node) => node.name === 'node-3')!.stoq;
    const realNode2 = layout.nodes.find((node) => node.name === 'node-2')!.stoq;
    assert.notDeepEqual(node3, realNode2);

    await startClusterNodes(nodes, dir, ['node-1', 'node-2', 'node-3', 'node-4'], {
      configure: (name, config) =>
        name !== 'node-1'
          ? config
          : {
              ...config,
              peers: [
                ...config.peers.map((peer) =>
                  peer.name === 'node-2' ? { ...peer, address: { ...node3 } } : peer,
                ),
                { name: 'node-5', address: { ...node3 } },
              ],
            },
    });
    const [node1, node2] = nodes as [ValidatorNode, ValidatorNode, ValidatorNode, ValidatorNode];
    assert.deepEqual(
      node1.config.peers.find((peer) => peer.name === 'node-2')?.address,
      node3,
      'node-1 is configured with node-3’s address for node-2',
    );

    // node-1 has committed node-2's own registration (asked of node-1 by node-2, whose
    // configuration is right): from now on node-1's catalog knows where node-2 is.
    const catalogOfNode1 = createDiscoveryRpcClient({ endpoint: node2.endpoint, peer: 'node-1' });
    let registered: readonly string[] = [];
    await waitForCondition(
      node1.driver,
      'commit',
      async () => {
        const answer = await catalogOfNode1.resolve(SELF_SERVICES.node);
        registered = answer.instances.map((found) => found.instance);
        const record = answer.instances.find((found) => found.instance === 'node-2');
        return (
          record !== undefined &&
          record.addresses.includes(realNode2.host) &&
          record.ports.some((port) => port.protocol === 'stoq' && port.port === realNode2.port)
        );
      },
      () => `node-1 to commit node-2's registration (has ${JSON.stringify(registered)})`,
      30_000,
    );

    // node-1's pool reaches node-2 itself, not node-3 at the configured address.
    const ping = await node1.endpoint
      .client(nodeService, 'node-2')
      .call('ping', { sentAt: Date.now() }, { deadlineMs: 10_000 });
    assert.equal(ping.node, 'node-2');
    const info = await node1.endpoint
      .client(nodeService, 'node-2')
      .call('info', {}, { deadlineMs: 10_000 });
    assert.equal(info.uri, node2.uri);
    assert.equal(info.peer.uri, node1.uri);

    // A name the catalog does not know goes to its configured address, where node-3 answers:
    // the session is refused, since it does not authenticate as node-5.
    await assert.rejects(
      node1.endpoint
        .client(nodeService, 'node-5')
        .call('ping', { sentAt: Date.now() }, { deadlineMs: 10_000 }),
      (error: unknown) => {
        isStoqError(StoqErrorCode.UNAUTHENTICATED)(error);
        assert.match((error as Error).message, /node-3.*not as node-5/);
        return true;
      },
    );
  });
});
