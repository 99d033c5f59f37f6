import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import {
  CONSENSUS_SERVICE_NAME,
  ConsensusNetworkErrorCode,
  SYNC_MAX_BLOCKS_PER_REQUEST,
  createStoqConsensusNetwork,
  defineConsensusPeerService,
} from '../../../src/consensus/net/index.js';
import { decodeGossip, encodeGossip } from '../../../src/consensus/wire.js';
import { StoqErrorCode, type StoqError } from '../../../src/stoq/errors.js';
import { createClient } from '../../../src/stoq/rpc/client.js';
import { defineService, messageStream, serverStream } from '../../../src/stoq/rpc/service.js';
import { isStoqError } from '../../helpers/stoq-error.js';
import { Cluster, metricValue, status, syncedBlocks, until, type TestNode } from './net-fixture.js';

/**
 * The consensus network over STOQ on the memory transport, with real certificates and the real
 * authenticator: mesh formation, broadcast and send, reconnection after a restart, refusal of
 * unlisted peers, malformed input, backpressure and block sync.
 */

let cluster: Cluster;

before(async () => {
  cluster = await Cluster.create('memory', ['a', 'b', 'c', 'a0', { name: 'spy', role: 'client' }]);
});

after(async () => {
  await cluster.close();
});

const peerService = defineConsensusPeerService(['validator', 'node']);

/** Three nodes a, b, c in a full mesh; b serves `blocks`. */
async function mesh(blocks = syncedBlocks(0)): Promise<TestNode[]> {
  const endpoints = await Promise.all(['a', 'b', 'c'].map((name) => cluster.endpoint(name)));
  const nodes = endpoints.map((running) =>
    cluster.network(
      running,
      endpoints.filter((other) => other !== running),
      running.name === 'b' ? { blocks } : {},
    ),
  );
  for (const node of nodes) {
    await until(() => node.network.peers().length === 2, `${node.name} to see two peers`);
  }
  return nodes;
}

/** Reads a channel to its end (a refusal arrives as the iterator's error). */
async function drain(channel: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of channel) void _;
}

async function stopAll(nodes: readonly TestNode[]): Promise<void> {
  for (const node of nodes) {
    await node.network.close();
    await node.stop();
  }
}

describe('consensus network over STOQ (memory transport)', { timeout: 20_000 }, () => {
  it('forms a full mesh with one stream per pair; broadcast reaches all, send reaches one', async () => {
    const nodes = await mesh();
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
    try {
      assert.deepEqual(a.network.peers(), ['b', 'c']);
      assert.deepEqual(b.network.peers(), ['a', 'c']);
      assert.deepEqual(c.network.peers(), ['a', 'b']);
      assert.deepEqual([...a.connected].sort(), ['b', 'c']);
      assert.deepEqual([...c.connected].sort(), ['a', 'b']);
      // One stream per pair, opened by the id that sorts first: a serves none, b one, c two.
      assert.equal(a.endpoint.server.activeCalls, 0);
      assert.equal(b.endpoint.server.activeCalls, 1);
      assert.equal(c.endpoint.server.activeCalls, 2);
      assert.equal(await metricValue(a.registry, 'hypermesh_consensus_net_peer_connects_total'), 2);
      assert.equal(await metricValue(c.registry, 'hypermesh_consensus_net_connected_peers'), 2);

      a.network.broadcast(status(7));
      await until(
        () => b.received.length === 1 && c.received.length === 1,
        'b and c to receive the broadcast',
      );
      assert.deepEqual(b.received[0], { peer: 'a', message: status(7) });
      assert.deepEqual(c.received[0], { peer: 'a', message: status(7) });

      // Per-stream order: c's message to b and then a broadcast arrive in that order at b,
      // and a, which only got the broadcast, never saw the first one.
      c.network.send('b', { kind: 'txs', txs: [Uint8Array.of(1, 2, 3)] });
      c.network.broadcast(status(8));
      await until(() => b.received.length === 3 && a.received.length === 1, 'c to reach b and a');
      assert.deepEqual(b.received.slice(1), [
        { peer: 'c', message: { kind: 'txs', txs: [Uint8Array.of(1, 2, 3)] } },
        { peer: 'c', message: status(8) },
      ]);
      assert.deepEqual(a.received, [{ peer: 'c', message: status(8) }]);

      // Send to a peer without a stream: dropped and counted, never thrown.
      a.network.send('nobody', status(1));
      assert.equal(
        await metricValue(a.registry, 'hypermesh_consensus_net_gossip_dropped_total', {
          reason: 'not_connected',
        }),
        1,
      );
    } finally {
      await stopAll(nodes);
    }
  });

  it('fires onPeerConnected again after a peer restarts, on both sides of each pair', async () => {
    const nodes = await mesh();
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
    try {
      const address = b.address;
      await b.network.close();
      await b.stop();
      await until(
        () => !a.network.peers().includes('b') && !c.network.peers().includes('b'),
        'a and c to notice that b is gone',
      );
      const again = cluster.network(await cluster.endpoint('b', address), [a, c]);
      nodes[1] = again;
      await until(() => a.connected.filter((p) => p === 'b').length === 2, 'a to reconnect to b');
      await until(() => c.connected.filter((p) => p === 'b').length === 2, 'c to reconnect to b');
      await until(() => again.network.peers().length === 2, 'the new b to see a and c');
      again.network.broadcast(status(3));
      await until(() => a.received.length === 1 && c.received.length === 1, 'b to reach a and c');
      assert.equal(a.received[0]?.peer, 'b');
    } finally {
      await stopAll(nodes);
    }
  });

  it('refuses an authenticated peer that is not in the list (and a client-role certificate)', async () => {
    const nodes = await mesh();
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
    // a0 holds a valid certificate of the same CA and lists b and c, which do not list it; it
    // sorts before them, so it keeps trying to open streams to them.
    const outsider = cluster.network(await cluster.endpoint('a0'), [b, c]);
    try {
      await until(
        () =>
          outsider.logger.lines.some(
            (line) =>
              line.message === 'cannot open gossip stream' &&
              line.fields.code === StoqErrorCode.PERMISSION_DENIED &&
              line.fields.peer === 'b',
          ),
        'b to refuse a0',
      );
      assert.deepEqual(outsider.network.peers(), []);
      assert.deepEqual(b.network.peers(), ['a', 'c']);
      assert.ok(!b.connected.includes('a0'));
      await assert.rejects(async () => {
        for await (const _ of outsider.network.fetchBlocks('b', 1, 5)) void _;
      }, isStoqError(StoqErrorCode.PERMISSION_DENIED));

      // A client certificate named like no peer: refused before its stream is served.
      const spy = await cluster.endpoint('spy');
      const session = await spy.endpoint.connect(a.address);
      const channel = await createClient(peerService, session).openMessageStream('gossip');
      await assert.rejects(drain(channel), isStoqError(StoqErrorCode.PERMISSION_DENIED));
      assert.deepEqual(a.network.peers(), ['b', 'c']);
    } finally {
      await outsider.network.close();
      await stopAll(nodes);
    }
  });

  it('counts and drops malformed gossip without crashing, and closes a stream that keeps sending it', async () => {
    // b lists a; the test plays a by hand so that it can send anything.
    const handPlayed = await cluster.endpoint('a');
    const b = cluster.network(await cluster.endpoint('b'), [handPlayed], {
      limits: { maxMalformedPerStream: 4 },
    });
    const session = await handPlayed.endpoint.connect(b.address);
    const client = createClient(peerService, session);
    try {
      const channel = await client.openMessageStream('gossip');
      const incoming = channel[Symbol.asyncIterator]();
      assert.deepEqual((await incoming.next()).value, { welcome: true });
      await until(() => b.network.peers().includes('a'), 'b to accept a');
      for (let i = 0; i < 3; i++) channel.send(Uint8Array.of(0xff, i));
      channel.send(encodeGossip(status(5)));
      await until(() => b.received.length === 1, 'the valid message after the garbage');
      assert.deepEqual(b.received[0], { peer: 'a', message: status(5) });
      const malformed = (): Promise<number> =>
        metricValue(b.registry, 'hypermesh_consensus_net_gossip_malformed_total', { peer: 'a' });
      assert.equal(await malformed(), 3);
      assert.deepEqual(b.network.peers(), ['a']);
      assert.equal(
        b.logger.lines.filter((line) => line.message === 'malformed gossip message dropped').length,
        1,
        'logged once per stream, counted every time',
      );

      // The fourth reaches the limit: b ends the stream and says why.
      channel.send(Uint8Array.of(0x80));
      await assert.rejects(incoming.next(), (error: unknown) => {
        isStoqError(StoqErrorCode.INVALID_ARGUMENT)(error);
        assert.equal((error as StoqError).detail.reason, 'malformed-gossip');
        return true;
      });
      await until(() => b.network.peers().length === 0, 'b to drop the stream');
      assert.equal(await malformed(), 4);

      // Not even an RPC-level message of the right type: the stream fails, b carries on.
      const lax = defineService({
        name: CONSENSUS_SERVICE_NAME,
        methods: {
          gossip: messageStream({ request: z.unknown(), response: z.unknown(), allow: ['node'] }),
        },
      });
      const raw = await createClient(lax, session).openMessageStream('gossip');
      await until(() => b.network.peers().includes('a'), 'b to accept a again');
      raw.send({ not: 'bytes' });
      await assert.rejects(drain(raw), isStoqError(StoqErrorCode.INVALID_ARGUMENT));
      await until(async () => (await malformed()) === 5, 'the schema failure to be counted');

      const again = await client.openMessageStream('gossip');
      again.send(encodeGossip(status(6)));
      await until(() => b.received.length === 2, 'b to take gossip again');
      assert.equal(b.network.peers().length, 1);
      again.abort();
    } finally {
      session.connection.close();
      await b.network.close();
    }
  });

  it('refuses a stream opened by the peer that should accept (one stream per pair)', async () => {
    const handPlayed = await cluster.endpoint('c');
    const b = cluster.network(await cluster.endpoint('b'), [handPlayed]);
    const session = await handPlayed.endpoint.connect(b.address);
    try {
      const channel = await createClient(peerService, session).openMessageStream('gossip');
      await assert.rejects(drain(channel), (error: unknown) => {
        isStoqError(StoqErrorCode.PERMISSION_DENIED)(error);
        assert.equal((error as StoqError).detail.reason, 'wrong-direction');
        return true;
      });
    } finally {
      session.connection.close();
      await b.network.close();
    }
  });

  it('bounds the queue for a peer that stops reading, dropping the oldest gossip first', async () => {
    const handPlayed = await cluster.endpoint('a');
    const b = cluster.network(await cluster.endpoint('b'), [handPlayed], {
      limits: { maxQueuedMessages: 8 },
    });
    const session = await handPlayed.endpoint.connect(b.address);
    try {
      const channel = await createClient(peerService, session).openMessageStream('gossip');
      await until(() => b.network.peers().includes('a'), 'b to accept a');
      // The reader does not read: the transport window and the stream buffer fill, then b's queue.
      const total = 200;
      const tx = new Uint8Array(60_000);
      for (let i = 0; i < total; i++) {
        tx[0] = i;
        b.network.broadcast({ kind: 'txs', txs: [tx.slice()] });
      }
      const dropped = await metricValue(
        b.registry,
        'hypermesh_consensus_net_gossip_dropped_total',
        {
          kind: 'txs',
          reason: 'queue_full',
        },
      );
      assert.ok(dropped > 0 && dropped < total, `dropped ${dropped} of ${total}`);

      // Now read everything: exactly what was not dropped arrives, oldest drops first, in order.
      const seen: number[] = [];
      for await (const item of channel) {
        if (!(item instanceof Uint8Array)) continue;
        const message = decodeGossip(item);
        assert.equal(message.kind, 'txs');
        if (message.kind === 'txs') seen.push(message.txs[0]![0]!);
        if (seen.length === total - dropped) break;
      }
      const sorted = [...seen].sort((x, y) => x - y);
      assert.deepEqual(seen, sorted, 'order is kept');
      // The newest 8 (the queue) survived; the dropped ones were the oldest queued.
      assert.deepEqual(
        seen.slice(-8),
        Array.from({ length: 8 }, (_, i) => total - 8 + i),
      );
    } finally {
      session.connection.close();
      await b.network.close();
    }
  });

  it('streams a block range from a peer, paging by the per-request cap', async () => {
    const nodes = await mesh(syncedBlocks(1200));
    const [a, b] = nodes as [TestNode, TestNode, TestNode];
    try {
      // A message that cannot be encoded (a driver bug): dropped and counted, never thrown.
      a.network.broadcast({ kind: 'bogus' } as never);
      assert.equal(
        await metricValue(a.registry, 'hypermesh_consensus_net_gossip_dropped_total', {
          reason: 'encode_failed',
        }),
        1,
      );

      const heights: number[] = [];
      for await (const block of a.network.fetchBlocks('b', 3, 2000)) {
        heights.push(block.height);
        assert.deepEqual(block, syncedBlocks(1200)[block.height - 1]);
      }
      assert.deepEqual(
        heights,
        Array.from({ length: 1198 }, (_, i) => i + 3),
      );
      // The server reads one block at a time; requests end at the cap. After the short third
      // page the client asks once more and gets nothing: the peer has no more.
      assert.ok(b.sourceCalls.every((call) => call.limit === 1));
      const pages = new Map<number, number>();
      for (const call of b.sourceCalls) pages.set(call.to, (pages.get(call.to) ?? 0) + 1);
      assert.deepEqual(
        [...pages],
        [
          [2 + SYNC_MAX_BLOCKS_PER_REQUEST, 500],
          [2 + 2 * SYNC_MAX_BLOCKS_PER_REQUEST, 500],
          [2 + 3 * SYNC_MAX_BLOCKS_PER_REQUEST, 199],
          [1200 + SYNC_MAX_BLOCKS_PER_REQUEST, 1],
        ],
      );
      assert.equal(
        await metricValue(b.registry, 'hypermesh_consensus_net_sync_blocks_served_total'),
        1198,
      );

      // The cap is the server's rule too: a larger request is refused by its schema at both ends.
      assert.throws(
        () =>
          createClient(peerService, (() => Promise.reject(new Error('unused'))) as never).stream(
            'blocks',
            { from: 1, to: 501 },
          ),
        isStoqError(StoqErrorCode.INVALID_ARGUMENT),
      );
      const lax = defineService({
        name: CONSENSUS_SERVICE_NAME,
        methods: {
          blocks: serverStream({
            request: z.strictObject({ from: z.int(), to: z.int() }),
            response: z.unknown(),
            allow: ['node'],
          }),
        },
      });
      const session = await a.endpoint.connect(b.address);
      await assert.rejects(
        drain(createClient(lax, session).stream('blocks', { from: 1, to: 501 })),
        isStoqError(StoqErrorCode.INVALID_ARGUMENT),
      );
      session.connection.close();

      // A peer with no blocks ends at once; an empty range asks nothing; bad arguments are typed.
      let count = 0;
      for await (const _ of a.network.fetchBlocks('c', 1, 10)) count += 1;
      for await (const _ of a.network.fetchBlocks('b', 10, 9)) count += 1;
      assert.equal(count, 0);
      await assert.rejects(
        async () => {
          for await (const _ of a.network.fetchBlocks('zed', 1, 2)) void _;
        },
        (error: unknown) =>
          (error as { code?: unknown }).code === ConsensusNetworkErrorCode.UNKNOWN_PEER,
      );
      await assert.rejects(
        async () => {
          for await (const _ of a.network.fetchBlocks('b', 0, 2)) void _;
        },
        (error: unknown) =>
          (error as { code?: unknown }).code === ConsensusNetworkErrorCode.INVALID_RANGE,
      );

      // Leaving the loop early cancels the call.
      let taken = 0;
      for await (const _ of a.network.fetchBlocks('b', 1, 1200)) {
        void _;
        if (++taken === 5) break;
      }
      assert.equal(taken, 5);
    } finally {
      await stopAll(nodes);
    }
  });

  it('survives misbehaving collaborators: handler, block source, sync peer, oversized messages', async () => {
    const small = await cluster.endpoint('a', undefined, {}, { maxMessageBytes: 1024 });
    const bEndpoint = await cluster.endpoint('b');
    // b's block source skips a height; c is a "peer" whose blocks service answers out of order.
    const b = cluster.network(bEndpoint, [small], {
      blocks: (from, to, limit) =>
        syncedBlocks(5)
          .filter((block) => block.height !== 2 && block.height >= from && block.height <= to)
          .slice(0, limit),
    });
    const fakeC = await cluster.endpoint('c');
    fakeC.endpoint.register(
      defineService({
        name: CONSENSUS_SERVICE_NAME,
        methods: {
          blocks: serverStream({
            request: z.unknown(),
            response: z.unknown(),
            allow: ['validator'],
          }),
        },
      }),
      {
        blocks: async function* () {
          yield* syncedBlocks(3).reverse();
        },
      },
    );
    const a = cluster.network(small, [b, fakeC]);
    try {
      await until(() => a.network.peers().includes('b'), 'a and b to connect');
      let calls = 0;
      b.network.onMessage(() => {
        calls++;
        throw new Error('driver bug');
      });
      a.network.broadcast(status(1));
      a.network.broadcast(status(2));
      await until(() => calls === 2, 'both messages despite the throwing handler');
      assert.equal(
        b.logger.lines.filter((line) => line.message === 'gossip message handler failed').length,
        2,
      );

      // Larger than a's STOQ message limit: dropped at a, counted and logged; the stream lives on.
      a.network.send('b', { kind: 'txs', txs: [new Uint8Array(2000)] });
      a.network.send('b', status(3));
      await until(() => calls === 3, 'the message after the oversized one');
      assert.equal(
        await metricValue(a.registry, 'hypermesh_consensus_net_gossip_dropped_total', {
          reason: 'too_large',
        }),
        1,
      );

      const heights: number[] = [];
      await assert.rejects(async () => {
        for await (const block of a.network.fetchBlocks('b', 1, 5)) heights.push(block.height);
      }, isStoqError(StoqErrorCode.INTERNAL));
      assert.deepEqual(heights, [1]);
      assert.ok(
        b.logger.lines.some((line) => line.message === 'block source answered out of range'),
      );

      await assert.rejects(
        async () => {
          for await (const _ of a.network.fetchBlocks('c', 1, 3)) void _;
        },
        (error: unknown) =>
          (error as { code?: unknown }).code === ConsensusNetworkErrorCode.SYNC_OUT_OF_ORDER,
      );
    } finally {
      await a.network.close();
      await b.network.close();
    }
  });

  it('rejects a peer table it cannot run with', async () => {
    const running = await cluster.endpoint('a');
    const make = (peers: { id: string; address: string }[], self = 'a') =>
      createStoqConsensusNetwork({
        endpoint: running.endpoint,
        self,
        peers,
        blockSource: () => [],
      });
    const code = (error: unknown): unknown => (error as { code?: unknown }).code;
    for (const [peers, self] of [
      [[{ id: 'a', address: 'x:1' }], 'a'],
      [
        [
          { id: 'b', address: 'x:1' },
          { id: 'b', address: 'y:1' },
        ],
        'a',
      ],
      [[{ id: 'b', address: 'x' }], 'a'],
      [[{ id: 'b', address: 'x:0' }], 'a'],
      [[{ id: 'b', address: '::1:80' }], 'a'],
      [[{ id: 'b/c', address: 'x:1' }], 'a'],
      [[], ''],
    ] as const) {
      assert.throws(
        () => make([...peers], self),
        (error: unknown) => code(error) === ConsensusNetworkErrorCode.INVALID_OPTIONS,
        JSON.stringify(peers),
      );
    }
    assert.throws(
      () =>
        createStoqConsensusNetwork({
          endpoint: running.endpoint,
          self: 'a',
          peers: [],
          blockSource: () => [],
          limits: { maxQueuedMessages: 0 },
        }),
      (error: unknown) => code(error) === ConsensusNetworkErrorCode.INVALID_OPTIONS,
    );
    const ok = make([{ id: 'b', address: '[::1]:9292' }]);
    await ok.close();
    assert.throws(
      () => ok.start(),
      (error: unknown) => code(error) === ConsensusNetworkErrorCode.INVALID_OPTIONS,
    );
  });
});
