import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { bytesEqual } from '../../src/crypto/bytes.js';
import { connectedPeerCounts, createNodeMetrics } from '../../src/node/node-metrics.js';
import { Cluster, metricValue, until } from '../consensus/net/net-fixture.js';

/**
 * The node's consensus metrics (src/node/node-metrics.ts): `hypermesh_consensus_peers_connected`
 * counts validators only (docs/node.md, "Metrics"), followers have their own gauge.
 */

let cluster: Cluster;

before(async () => {
  cluster = await Cluster.create('memory', ['a', 'b', { name: 'follower', role: 'node' }]);
});

after(async () => {
  await cluster.close();
});

describe('node metrics', { timeout: 20_000 }, () => {
  it('counts connected validators and followers apart, by the key each peer authenticated with', async () => {
    const bKey = cluster.identity('b').transportKey.publicKey;
    const isValidator = (key: Uint8Array): boolean => bytesEqual(key, bKey);
    const [aEndpoint, bEndpoint] = await Promise.all([
      cluster.endpoint('a'),
      cluster.endpoint('b'),
    ]);
    const a = cluster.network(aEndpoint, [bEndpoint], { unlisted: { isValidator } });
    cluster.network(bEndpoint, [aEndpoint], { unlisted: { isValidator } });
    // A node a does not list (its key is no validator's) follows the chain through a.
    cluster.network(await cluster.endpoint('follower'), [aEndpoint]);
    await until(
      () => a.network.peers().includes('b') && a.network.peers().includes('follower'),
      'b and the follower to connect to a',
    );

    const registry = new Registry();
    createNodeMetrics(registry, {
      committedHeight: () => 0,
      progress: () => ({ height: 1, round: 0 }),
      connectedPeers: () => connectedPeerCounts(a.network, isValidator),
      votingPower: () => ({ online: 0, total: 0 }),
      mempoolSize: () => 0,
      mempoolWaiting: () => 0,
      intake: () => ({ queued: 0, busy: 0, droppedFromPeers: 0 }),
      walBytes: () => 0,
      storeBytes: () => ({ database: 0, wal: 0 }),
      driver: () => ({ pendingEvidence: 0, latePrecommits: 0 }),
    });
    assert.equal(await metricValue(registry, 'hypermesh_consensus_peers_connected'), 1);
    assert.equal(await metricValue(registry, 'hypermesh_consensus_followers_connected'), 1);
  });
});
