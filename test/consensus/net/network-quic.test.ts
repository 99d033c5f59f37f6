import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Cluster, status, syncedBlocks, until, type TestNode } from './net-fixture.js';

/**
 * The consensus network over real QUIC on loopback (quinn binding, real certificates and
 * authentication): mesh, broadcast and send, a restart on the same port, and block sync.
 */

let cluster: Cluster;

before(async () => {
  cluster = await Cluster.create('quic', ['a', 'b', 'c']);
});

after(async () => {
  await cluster.close();
});

describe('consensus network over STOQ (QUIC on loopback)', { timeout: 20_000 }, () => {
  it('meshes, gossips, reconnects after a restart and syncs blocks', async () => {
    const endpoints = await Promise.all(['a', 'b', 'c'].map((name) => cluster.endpoint(name)));
    const blocks = syncedBlocks(40);
    const nodes = endpoints.map((running) =>
      cluster.network(
        running,
        endpoints.filter((other) => other !== running),
        { blocks },
      ),
    );
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
    try {
      for (const node of nodes) {
        await until(() => node.network.peers().length === 2, `${node.name} to see two peers`);
      }

      b.network.broadcast({ kind: 'txs', txs: [new Uint8Array(50_000).fill(7)] });
      a.network.send('c', status(2));
      await until(() => a.received.length === 1 && c.received.length === 2, 'gossip to arrive');
      assert.equal(a.received[0]?.peer, 'b');
      assert.deepEqual(c.received.map((entry) => `${entry.peer}:${entry.message.kind}`).sort(), [
        'a:status',
        'b:txs',
      ]);
      assert.equal(b.received.length, 0);

      // c restarts on the same port: a and b reconnect (c opens no streams; they dial it, and
      // c's hello at start cuts their backoff short).
      const address = c.address;
      await c.network.close();
      await c.stop();
      await until(
        () => !a.network.peers().includes('c') && !b.network.peers().includes('c'),
        'a and b to notice that c is gone',
      );
      const restarted = cluster.network(await cluster.endpoint('c', address), [a, b]);
      nodes[2] = restarted;
      await until(
        () => restarted.network.peers().length === 2,
        'the restarted c to see a and b',
        10_000,
      );
      // The openers report c once its welcome arrives.
      await until(
        () =>
          a.connected.filter((peer) => peer === 'c').length === 2 &&
          b.connected.filter((peer) => peer === 'c').length === 2,
        'onPeerConnected(c) to fire again on a and b',
      );
      restarted.network.broadcast(status(9));
      await until(
        () => a.received.length === 2 && b.received.length === 1,
        'the restarted c to reach a and b',
      );

      const fetched: number[] = [];
      for await (const block of a.network.fetchBlocks('b', 5, 60)) fetched.push(block.height);
      assert.deepEqual(
        fetched,
        Array.from({ length: 36 }, (_, i) => i + 5),
      );
    } finally {
      for (const node of nodes) {
        await node.network.close();
        await node.stop();
      }
    }
  });
});
