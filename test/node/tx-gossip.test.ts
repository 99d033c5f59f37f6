import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { GossipMessage } from '../../src/consensus/driver/ports.js';
import { MAX_TXS_PER_GOSSIP } from '../../src/consensus/wire.js';
import { toHex } from '../../src/crypto/bytes.js';
import { createTxGossip, type LocalTx } from '../../src/node/tx-gossip.js';
import { Cluster, until } from '../consensus/net/net-fixture.js';

/**
 * Client transactions handed to gossip: coalesced per event-loop turn, split at the limits, sent
 * again while pending (with back-off, within a per-tick budget) and to peers that connect.
 */

interface RecordingNetwork {
  readonly sent: GossipMessage[];
  /** `send` calls: to one peer. */
  readonly sentTo: { peer: string; message: GossipMessage }[];
  connected: string[];
  broadcast(message: GossipMessage): void;
  send(peer: string, message: GossipMessage): void;
  peers(): readonly string[];
  onPeerConnected(handler: (peer: string) => void): void;
  /** Calls the peer-connected handler. */
  connect(peer: string): void;
  /** Resolves once `count` messages were broadcast; fails after a deadline. */
  sentCount(count: number): Promise<void>;
}

function recordingNetwork(): RecordingNetwork {
  const sent: GossipMessage[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  let connectedHandler: ((peer: string) => void) | null = null;
  return {
    sent,
    sentTo: [],
    connected: [],
    broadcast(message) {
      sent.push(message);
      for (const waiter of waiters.filter((w) => sent.length >= w.count)) waiter.resolve();
    },
    send(peer, message) {
      this.sentTo.push({ peer, message });
    },
    peers() {
      return this.connected;
    },
    onPeerConnected(handler) {
      connectedHandler = handler;
    },
    connect(peer) {
      connectedHandler?.(peer);
    },
    sentCount(count) {
      if (sent.length >= count) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const deadline = setTimeout(
          () => reject(new Error(`expected ${count} gossip messages, got ${sent.length}`)),
          5_000,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(deadline);
            resolve();
          },
        });
      });
    },
  };
}

/** A transaction whose txHash is its bytes padded to 32 (unique per test transaction). */
function local(bytes: Uint8Array): LocalTx {
  const txHash = new Uint8Array(32);
  txHash.set(bytes.subarray(0, 32));
  txHash[31] = bytes.length;
  return { tx: bytes, txHash };
}

const txsOf = (message: GossipMessage | undefined): Uint8Array[] => {
  assert.equal(message?.kind, 'txs');
  return message?.kind === 'txs' ? [...message.txs] : [];
};

const sizes = (network: RecordingNetwork): number[][] =>
  network.sent.map((message) => txsOf(message).map((tx) => tx.length));

/** A mempool's pending set, by txHash, and a clock the test moves. */
function pendingPool(): {
  add(txs: readonly LocalTx[]): void;
  commit(tx: LocalTx): void;
  has(txHash: Uint8Array): boolean;
} {
  const held = new Set<string>();
  return {
    add: (txs) => txs.forEach((entry) => held.add(toHex(entry.txHash))),
    commit: (entry) => void held.delete(toHex(entry.txHash)),
    has: (txHash) => held.has(toHex(txHash)),
  };
}

const PERIOD = 1_000;

describe('tx gossip', () => {
  it('sends what is handed over in one turn together, split at MAX_TXS_PER_GOSSIP', async () => {
    const network = recordingNetwork();
    const gossip = createTxGossip(network, () => true, { timer: false });
    const batch = Array.from({ length: MAX_TXS_PER_GOSSIP + 200 }, (_, i) =>
      Uint8Array.of(i >> 8, i & 0xff),
    );
    gossip.push(batch.slice(0, 300).map(local));
    gossip.push([]);
    gossip.push(batch.slice(300).map(local));
    // A full message goes out at once; the rest at the end of the turn.
    assert.equal(network.sent.length, 1);
    await network.sentCount(2);
    const sent = network.sent.map(txsOf);
    assert.deepEqual(
      sent.map((txs) => txs.length),
      [MAX_TXS_PER_GOSSIP, 200],
    );
    assert.deepEqual(sent.flat(), batch);
    gossip.close();
  });

  it('splits at the byte limit and drops what is queued when closed', async () => {
    const network = recordingNetwork();
    const gossip = createTxGossip(network, () => true, { maxBatchBytes: 10, timer: false });
    gossip.push([new Uint8Array(6), new Uint8Array(4), new Uint8Array(1)].map(local));
    await network.sentCount(2);
    assert.deepEqual(sizes(network), [[6, 4], [1]]);

    gossip.push([local(Uint8Array.of(1))]);
    gossip.close();
    gossip.push([local(Uint8Array.of(2))]);
    gossip.flush();
    gossip.tick();
    assert.equal(network.sent.length, 2, 'nothing is sent after close');
    assert.equal(gossip.stats().tracked, 0);
  });

  it('sends a transaction again while it is pending, after 1, 2, 4 periods, and stops once it is not', () => {
    const network = recordingNetwork();
    const pool = pendingPool();
    let now = 0;
    const gossip = createTxGossip(network, pool.has, {
      periodMs: PERIOD,
      timer: false,
      now: () => now,
    });
    const [a, b] = [local(Uint8Array.of(1)), local(Uint8Array.of(2))];
    pool.add([a, b]);
    gossip.push([a, b]);
    gossip.flush();
    assert.equal(network.sent.length, 1);

    // Say the first batch was lost (a full send queue, a peer's full intake).
    const resentAt = (at: number): Uint8Array[] => {
      now = at;
      const before = network.sent.length;
      gossip.tick();
      return network.sent.slice(before).flatMap(txsOf);
    };
    assert.deepEqual(resentAt(PERIOD - 1), [], 'not yet pending for a period');
    assert.deepEqual(resentAt(PERIOD), [a.tx, b.tx]);
    pool.commit(a);
    assert.deepEqual(resentAt(2 * PERIOD), [], 'the next send waits two periods');
    assert.deepEqual(resentAt(3 * PERIOD), [b.tx], 'a was committed: not sent again');
    assert.deepEqual(gossip.stats(), { tracked: 1, resent: 3, untracked: 0 });
    assert.deepEqual(resentAt(6 * PERIOD), []);
    assert.deepEqual(resentAt(7 * PERIOD), [b.tx], 'then after four periods');
    pool.commit(b);
    assert.deepEqual(resentAt(100 * PERIOD), []);
    assert.equal(gossip.stats().tracked, 0, 'nothing is kept once committed or expired');
    gossip.close();
  });

  it('resends at most maxResendTxs and maxResendBytes per tick, the oldest first', () => {
    const network = recordingNetwork();
    let now = 0;
    const gossip = createTxGossip(network, () => true, {
      periodMs: PERIOD,
      maxResendTxs: 3,
      maxResendBytes: 10,
      timer: false,
      now: () => now,
    });
    const txs = [1, 2, 3, 4, 5].map((i) => local(Uint8Array.of(i)));
    gossip.push(txs.slice(0, 2));
    now = 10;
    gossip.push(txs.slice(2));
    gossip.flush();
    network.sent.length = 0;
    now = PERIOD + 10;
    gossip.tick();
    assert.deepEqual(
      network.sent.flatMap(txsOf),
      [1, 2, 3].map((i) => Uint8Array.of(i)),
    );
    gossip.tick();
    assert.deepEqual(
      network.sent.flatMap(txsOf),
      [1, 2, 3, 4, 5].map((i) => Uint8Array.of(i)),
      'the rest stays due for the next tick',
    );
    // The byte budget ends a tick's batch too.
    network.sent.length = 0;
    const big = createTxGossip(network, () => true, {
      periodMs: PERIOD,
      maxResendBytes: 10,
      timer: false,
      now: () => now,
    });
    big.push([new Uint8Array(6).fill(1), new Uint8Array(6).fill(2)].map(local));
    big.flush();
    network.sent.length = 0;
    now += PERIOD;
    big.tick();
    assert.deepEqual(sizes(network), [[6]]);
    gossip.close();
    big.close();
  });

  it('sends the pending transactions to a peer that connected, once per tick', () => {
    const network = recordingNetwork();
    const pool = pendingPool();
    let now = 0;
    const gossip = createTxGossip(network, pool.has, {
      periodMs: PERIOD,
      timer: false,
      now: () => now,
    });
    const [a, b] = [local(Uint8Array.of(1)), local(Uint8Array.of(2))];
    pool.add([a, b]);
    // Admitted while no peer was connected: the broadcast reached nobody.
    gossip.push([a, b]);
    gossip.flush();
    pool.commit(a);
    // b flaps twice before the tick; c connects and is gone again by then.
    network.connected = ['b'];
    network.connect('b');
    network.connect('b');
    network.connect('c');
    now = 1;
    gossip.tick();
    assert.deepEqual(
      network.sentTo.map(({ peer, message }) => [peer, txsOf(message)]),
      [['b', [b.tx]]],
    );
    gossip.tick();
    assert.equal(network.sentTo.length, 1, 'sent once per connection');
    gossip.close();
  });

  it('keeps at most maxTracked transactions for resending', () => {
    const network = recordingNetwork();
    const gossip = createTxGossip(network, () => true, { maxTracked: 2, timer: false });
    gossip.push([1, 2, 3].map((i) => local(Uint8Array.of(i))));
    assert.deepEqual(gossip.stats(), { tracked: 2, resent: 0, untracked: 1 });
    gossip.close();
  });
});

describe('tx gossip over the consensus network', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await Cluster.create('memory', ['a', 'b']);
  });
  after(async () => {
    await cluster.close();
  });

  it('reaches a peer that was not connected when the transaction was admitted', async () => {
    const [ae, be] = [await cluster.endpoint('a'), await cluster.endpoint('b')];
    // a runs alone first (the fixture's own peer-connected handler is registered, as the
    // driver's is in a node); the gossip adds its handler beside it.
    const a = cluster.network(ae, [be]);
    const pool = pendingPool();
    const gossip = createTxGossip(a.network, pool.has, { timer: false });
    const tx = local(Uint8Array.of(7, 7, 7));
    pool.add([tx]);
    gossip.push([tx]);
    gossip.flush();
    const b = cluster.network(be, [ae]);
    await until(() => a.connected.includes('b'), 'a to tell every handler that b connected');
    gossip.tick();
    await until(
      () => b.received.some(({ message }) => message.kind === 'txs'),
      'b to receive the transaction a admitted before b connected',
    );
    assert.deepEqual(
      b.received.filter(({ message }) => message.kind === 'txs').flatMap((r) => txsOf(r.message)),
      [tx.tx],
    );
    gossip.close();
  });
});
