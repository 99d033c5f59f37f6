import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ConsensusNetworkErrorCode,
  createStoqConsensusNetwork,
  defineConsensusPeerService,
  type HelloAnswer,
  type StoqConsensusNetworkOptions,
} from '../../../src/consensus/net/index.js';
import { StoqErrorCode, type StoqError } from '../../../src/stoq/errors.js';
import { createClient } from '../../../src/stoq/rpc/client.js';
import { createTestPki } from '../../helpers/pki.js';
import { isStoqError } from '../../helpers/stoq-error.js';
import { withDeadline } from '../../helpers/wait.js';
import {
  Cluster,
  RecordingLogger,
  formatAddress,
  metricValue,
  until,
  type RunningEndpoint,
  type TestNode,
} from './net-fixture.js';

/**
 * The `hello` a node says to the peers that open its gossip streams when it starts (memory
 * transport, real certificates and authentication): how the opener answers it, that it acts
 * only for the authenticated peer itself and at most once per interval, that it cuts a long
 * backoff short, and that a peer's replacement stream drops the pooled connection to it.
 * restart-quic.test.ts has the kill -9 it exists for.
 */

let cluster: Cluster;

before(async () => {
  cluster = await Cluster.create('memory', ['a', 'b', 'c', 'mallory']);
  const falcon = cluster.identity('b').falcon;
  // Named like the listed peer b, but a client certificate, and one from another CA.
  cluster.identities.set(
    'b-client',
    await cluster.pki.issue({ name: 'b', role: 'client', falcon }),
  );
  const foreign = await createTestPki({ cluster: cluster.pki.cluster });
  cluster.identities.set(
    'b-foreign',
    await foreign.issue({ name: 'b', role: 'validator', falcon }),
  );
});

after(async () => {
  await cluster.close();
});

const peerService = defineConsensusPeerService(['validator', 'node']);

/** Announces test events to `until` (it re-checks on every line a RecordingLogger records). */
const events = new RecordingLogger();

const closers: (() => Promise<void>)[] = [];

/** Like `Cluster.network`, with the network options these tests vary. */
function startNetwork(
  running: RunningEndpoint,
  peers: readonly { name: string; address: RunningEndpoint['address'] }[],
  options: Pick<StoqConsensusNetworkOptions, 'reconnect' | 'helloIntervalMs'> = {},
): TestNode {
  const logger = new RecordingLogger();
  const received: TestNode['received'] = [];
  const connected: string[] = [];
  const network = createStoqConsensusNetwork({
    endpoint: running.endpoint,
    self: running.name,
    peers: peers.map((peer) => ({ id: peer.name, address: formatAddress(peer.address) })),
    blockSource: () => [],
    logger,
    registry: running.registry,
    reconnect: { initialMs: 10, maxMs: 100, ...options.reconnect },
    ...(options.helloIntervalMs === undefined ? {} : { helloIntervalMs: options.helloIntervalMs }),
  });
  network.onMessage((peer, message) => {
    received.push({ peer, message });
    events.info('message', { to: running.name, peer });
  });
  network.onPeerConnected((peer) => {
    connected.push(peer);
    events.info('connected', { at: running.name, peer });
  });
  network.start();
  closers.push(() => network.close());
  return { ...running, network, logger, received, connected, sourceCalls: [] };
}

async function closeNetworks(): Promise<void> {
  for (const close of closers.splice(0).reverse()) await close();
}

/** A hello from `caller` (an endpoint with some identity) to `callee`'s network. */
async function hello(
  caller: RunningEndpoint,
  callee: RunningEndpoint,
  staleStream?: number,
): Promise<HelloAnswer> {
  const session = await caller.endpoint.connect(callee.address);
  try {
    const request = staleStream === undefined ? {} : { staleStream };
    return await createClient(peerService, session).call('hello', request);
  } finally {
    session.connection.close();
  }
}

function hellos(node: TestNode, outcome: string): Promise<number> {
  return metricValue(node.registry, 'hypermesh_consensus_net_hellos_total', { outcome });
}

function connectsOf(node: TestNode, peer: string): number {
  return node.connected.filter((name) => name === peer).length;
}

describe('hello: reconnecting a peer that (re)starts', { timeout: 20_000 }, () => {
  it('drops only the stream the peer names as stale, at most once per interval', async () => {
    const [aEnd, bEnd] = await Promise.all([cluster.endpoint('a'), cluster.endpoint('b')]);
    const a = startNetwork(aEnd, [bEnd], { helloIntervalMs: 60_000 });
    const b = startNetwork(bEnd, [aEnd]);
    // b's own certificate on another endpoint: the hellos a restarted b would send.
    const bAgain = await cluster.endpoint('b');
    try {
      await until(() => a.network.peers().includes('b') && b.network.peers().includes('a'), 'a–b');
      const first = await hello(bAgain, a);
      assert.equal(first.stream?.up, true);
      const id = first.stream?.id as number;

      // A stream that is not the current one: nothing happens.
      const connected = await hellos(a, 'connected');
      assert.deepEqual(await hello(bAgain, a, id + 1), first);
      assert.equal(await hellos(a, 'connected'), connected + 1);
      assert.deepEqual(a.network.peers(), ['b']);
      assert.equal(connectsOf(a, 'b'), 1);

      // The current one: a drops it with its connection and dials b again at once.
      assert.deepEqual(await hello(bAgain, a, id), { stream: null });
      await until(() => connectsOf(a, 'b') === 2 && connectsOf(b, 'a') === 2, 'a to redial b');
      assert.equal(await hellos(a, 'dropped_stale'), 1);
      assert.ok(
        a.logger.lines.some(
          (line) => line.message === 'dropping a gossip stream the peer no longer has',
        ),
      );
      const second = await hello(bAgain, a);
      assert.equal(second.stream?.up, true);
      assert.ok((second.stream?.id as number) > id, 'a new stream');

      // Again within the interval: ignored, the stream stays (a hello acts synchronously).
      assert.deepEqual(await hello(bAgain, a, second.stream?.id), second);
      assert.equal(await hellos(a, 'too_soon'), 1);
      assert.deepEqual(a.network.peers(), ['b']);
      assert.equal(connectsOf(a, 'b'), 2);
    } finally {
      await closeNetworks();
    }
  });

  it('acts only for the authenticated peer itself; others cannot end its stream', async () => {
    const [aEnd, bEnd] = await Promise.all([cluster.endpoint('a'), cluster.endpoint('b')]);
    const a = startNetwork(aEnd, [bEnd]);
    const b = startNetwork(bEnd, [aEnd]);
    try {
      await until(() => a.network.peers().includes('b') && b.network.peers().includes('a'), 'a–b');
      const current = await hello(await cluster.endpoint('b'), a);
      const id = current.stream?.id as number;
      const before = await hellos(a, 'dropped_stale');

      // A valid certificate of the same CA that a does not list.
      const mallory = await cluster.endpoint('mallory');
      await assert.rejects(hello(mallory, a, id), isStoqError(StoqErrorCode.PERMISSION_DENIED));
      // The listed name, but a client certificate.
      const client = await cluster.endpoint('b-client');
      await assert.rejects(hello(client, a, id), isStoqError(StoqErrorCode.PERMISSION_DENIED));
      const channel = await createClient(
        peerService,
        await client.endpoint.connect(a.address),
      ).openMessageStream('gossip');
      await assert.rejects(async () => {
        for await (const _ of channel) void _;
      }, isStoqError(StoqErrorCode.PERMISSION_DENIED));
      // The listed name from another CA: not even a session.
      const foreign = await cluster.endpoint('b-foreign');
      await assert.rejects(
        foreign.endpoint.connect(a.address),
        isStoqError(StoqErrorCode.UNAUTHENTICATED),
      );
      // The listed peer that opens the stream itself has no one to greet.
      await assert.rejects(hello(await cluster.endpoint('a'), b), (error: unknown) => {
        isStoqError(StoqErrorCode.PERMISSION_DENIED)(error);
        assert.equal((error as StoqError).detail.reason, 'wrong-direction');
        return true;
      });

      assert.equal(await hellos(a, 'dropped_stale'), before);
      assert.deepEqual(await hello(await cluster.endpoint('b'), a), current);
      assert.deepEqual(a.network.peers(), ['b']);
      assert.deepEqual(b.network.peers(), ['a']);
      assert.equal(connectsOf(a, 'b'), 1);
      assert.ok(!a.logger.lines.some((line) => line.message === 'consensus peer disconnected'));
    } finally {
      await closeNetworks();
    }
  });

  it('refuses a hello interval it cannot use', async () => {
    const running = await cluster.endpoint('a');
    for (const helloIntervalMs of [-1, 0.5, Number.NaN]) {
      assert.throws(
        () =>
          createStoqConsensusNetwork({
            endpoint: running.endpoint,
            self: 'a',
            peers: [],
            blockSource: () => [],
            helloIntervalMs,
          }),
        (error: unknown) =>
          (error as { code?: unknown }).code === ConsensusNetworkErrorCode.INVALID_OPTIONS,
        String(helloIntervalMs),
      );
    }
  });

  it('cuts a long backoff short when the peer comes up', async () => {
    const [aEnd, bEnd] = await Promise.all([cluster.endpoint('a'), cluster.endpoint('b')]);
    // a waits a minute between attempts; b's endpoint answers, but b runs no network yet.
    const a = startNetwork(aEnd, [bEnd], { reconnect: { initialMs: 60_000, maxMs: 60_000 } });
    try {
      await until(
        () =>
          a.logger.lines.some(
            (line) => line.message === 'cannot open gossip stream' && line.fields.peer === 'b',
          ),
        'a to fail to reach b once',
      );
      const b = startNetwork(bEnd, [aEnd]);
      await until(
        () => connectsOf(a, 'b') === 1 && connectsOf(b, 'a') === 1,
        'b to be connected long before a minute',
      );
      assert.equal(await hellos(a, 'woken'), 1);
      assert.ok(
        a.logger.lines.some((line) => line.message === 'consensus peer is back: dialling it now'),
      );
    } finally {
      await closeNetworks();
    }
  });

  it('drops the pooled connection to a peer whose new stream replaces one that looked open', async () => {
    // b is played by hand: its blocks call stays open until its connection goes.
    const bHand = await cluster.endpoint('b');
    const cEnd = await cluster.endpoint('c');
    bHand.endpoint.register(peerService, {
      gossip: () => undefined,
      hello: () => ({ stream: null }),
      blocks: async function* (_request, ctx) {
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
        yield* [];
      },
    });
    const c = startNetwork(cEnd, [bHand]);
    try {
      // c syncs from b over its pooled connection; the call waits at b.
      const iterator = c.network.fetchBlocks('b', 1, 5)[Symbol.asyncIterator]();
      const fetching = iterator.next();
      fetching.catch(() => undefined);
      const session = await bHand.endpoint.connect(c.address);
      const client = createClient(peerService, session);
      const first = await client.openMessageStream('gossip');
      const welcomes = first[Symbol.asyncIterator]();
      assert.deepEqual((await welcomes.next()).value, { welcome: true });
      // A second stream while the first still looks open: it replaces the first, and c drops
      // its own connection to b, which ends the sync call waiting on it.
      const second = await client.openMessageStream('gossip');
      assert.deepEqual((await second[Symbol.asyncIterator]().next()).value, { welcome: true });
      await assert.rejects(
        withDeadline(fetching, 5_000, 'the sync call to end with the connection'),
        isStoqError([
          StoqErrorCode.CONNECTION_CLOSED,
          StoqErrorCode.UNAVAILABLE,
          StoqErrorCode.STREAM_RESET,
        ]),
      );
      assert.deepEqual(c.network.peers(), ['b']);
      assert.equal(connectsOf(c, 'b'), 2);
      second.abort();
      session.connection.close();
    } finally {
      await closeNetworks();
    }
  });
});
