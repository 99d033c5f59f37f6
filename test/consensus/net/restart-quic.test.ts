import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Cluster, metricValue, status, until, type TestNode } from './net-fixture.js';
import { NetworkProcess } from './network-process-fixture.js';

/**
 * A consensus peer killed with kill -9 and restarted on the same address with the same identity,
 * over real QUIC on loopback. The kill sends no CONNECTION_CLOSE, so its peers' connections to
 * it stay open until the QUIC idle timeout (30 s); the restarted node must be back in the mesh
 * well before that. b runs in a child process between a (which opens the a–b stream, so it
 * holds a dead stream after the kill and learns of the restart only from b's hello) and c
 * (which accepts the b–c stream, so the restarted b's new stream replaces the dead one).
 */

/**
 * How long the restarted node may take to be connected both ways and exchange messages: below
 * the 30 s QUIC idle timeout, so passing cannot come from the dead connections timing out, with
 * room for a loaded CI machine (it takes well under a second on a quiet one, see the
 * diagnostic). The stale-stream drop counted below shows the fast path was taken.
 */
const RECONNECT_WITHIN_MS = 20_000;
/** Starting a process with the TypeScript loader takes a few seconds on a busy machine. */
const PROCESS_START_MS = 30_000;

let cluster: Cluster;
const processes: NetworkProcess[] = [];

before(async () => {
  cluster = await Cluster.create('quic', ['a', 'b', 'c']);
});

after(async () => {
  for (const child of processes) await child.kill();
  await cluster.close();
});

function connectsOf(node: TestNode, peer: string): number {
  return node.connected.filter((name) => name === peer).length;
}

describe('a consensus peer killed (kill -9) and restarted, over QUIC', { timeout: 90_000 }, () => {
  it('is connected both ways again and exchanges gossip within seconds', async (t) => {
    const [aEndpoint, cEndpoint] = await Promise.all([
      cluster.endpoint('a'),
      cluster.endpoint('c'),
    ]);
    const start = (port: number): Promise<NetworkProcess> =>
      NetworkProcess.start({
        identity: cluster.identity('b'),
        pki: cluster.pki,
        port,
        peers: [aEndpoint, cEndpoint],
        readyWithinMs: PROCESS_START_MS,
      }).then((child) => {
        processes.push(child);
        return child;
      });
    let b = await start(0);
    const bPeer = { name: 'b', address: b.address };
    const a = cluster.network(aEndpoint, [bPeer, cEndpoint]);
    const c = cluster.network(cEndpoint, [aEndpoint, bPeer]);
    await until(
      () => a.network.peers().length === 2 && c.network.peers().length === 2,
      'a and c to see both peers',
      PROCESS_START_MS,
    );
    await b.waitFor(
      (events) => {
        const peers = new Set(events.flatMap((e) => (e.event === 'connected' ? [e.peer] : [])));
        return peers.has('a') && peers.has('c') ? true : undefined;
      },
      'b to see a and c',
      PROCESS_START_MS,
    );

    await b.kill();
    // No goodbye reached them: both still hold a stream to b (the QUIC idle timeout is 30 s).
    assert.deepEqual(a.network.peers(), ['b', 'c']);
    assert.deepEqual(c.network.peers(), ['a', 'b']);
    const before = { a: connectsOf(a, 'b'), c: connectsOf(c, 'b') };
    const staleDrops = (): Promise<number> =>
      metricValue(a.registry, 'hypermesh_consensus_net_hellos_total', {
        outcome: 'dropped_stale',
      });
    const dropsBefore = await staleDrops();

    b = await start(bPeer.address.port);
    const ready = performance.now();
    const deadline = ready + RECONNECT_WITHIN_MS;
    const remaining = (): number => deadline - performance.now();

    await until(
      () => connectsOf(a, 'b') > before.a && connectsOf(c, 'b') > before.c,
      'a and c to reconnect the restarted b',
      remaining(),
    );
    const reconnectedMs = performance.now() - ready;
    const restarted = b;
    await restarted.waitFor(
      (events) => {
        const peers = new Set(events.flatMap((e) => (e.event === 'connected' ? [e.peer] : [])));
        return peers.has('a') && peers.has('c') ? true : undefined;
      },
      'the restarted b to see a and c',
      remaining(),
    );

    a.network.send('b', status(11));
    c.network.send('b', status(12));
    await restarted.waitFor(
      (events) => {
        const heights = events.flatMap((e) =>
          e.event === 'message' ? [`${e.peer}:${e.height}`] : [],
        );
        return heights.includes('a:11') && heights.includes('c:12') ? true : undefined;
      },
      'a and c to reach the restarted b',
      remaining(),
    );
    restarted.send({ cmd: 'broadcast', height: 13 });
    const fromB = (node: TestNode): boolean =>
      node.received.some(
        (entry) =>
          entry.peer === 'b' && entry.message.kind === 'status' && entry.message.height === 13,
      );
    await until(() => fromB(a) && fromB(c), 'the restarted b to reach a and c', remaining());
    const totalMs = performance.now() - ready;
    t.diagnostic(
      `restarted b: connected again after ${Math.round(reconnectedMs)} ms, ` +
        `gossip both ways after ${Math.round(totalMs)} ms (deadline ${RECONNECT_WITHIN_MS} ms)`,
    );

    // a learned of the restart from b's hello and dropped the dead stream (once); c accepted
    // the restarted b's new stream in place of the dead one.
    assert.equal((await staleDrops()) - dropsBefore, 1);
    assert.deepEqual(a.network.peers(), ['b', 'c']);
    assert.deepEqual(c.network.peers(), ['a', 'b']);
    assert.equal(connectsOf(a, 'b'), before.a + 1);
    assert.equal(connectsOf(c, 'b'), before.c + 1);
  });
});
