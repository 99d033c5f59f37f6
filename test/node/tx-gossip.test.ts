import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { GossipMessage } from '../../src/consensus/driver/ports.js';
import { MAX_TXS_PER_GOSSIP } from '../../src/consensus/wire.js';
import type { Application, TxCheckResult } from '../../src/consensus/app.js';
import { Mempool } from '../../src/consensus/mempool.js';
import { toHex } from '../../src/crypto/bytes.js';
import { sha256 } from '../../src/crypto/hash.js';
import {
  createTxGossip,
  DEFAULT_MAX_RESEND_TXS,
  DEFAULT_TX_GOSSIP_PERIOD_MS,
  type LocalTx,
  type TxReadiness,
} from '../../src/node/tx-gossip.js';
import { createTxIntake, DEFAULT_INTAKE_MAX_QUEUED_PER_CALLER } from '../../src/node/tx-intake.js';
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

/** A mempool's pending transactions by txHash, ready unless marked waiting. */
function pendingPool(): {
  add(txs: readonly LocalTx[]): void;
  commit(tx: LocalTx): void;
  wait(tx: LocalTx, waiting: boolean): void;
  readiness(txHash: Uint8Array): TxReadiness;
} {
  const held = new Map<string, 'ready' | 'waiting'>();
  return {
    add: (txs) => txs.forEach((entry) => held.set(toHex(entry.txHash), 'ready')),
    commit: (entry) => void held.delete(toHex(entry.txHash)),
    wait: (entry, waiting) => void held.set(toHex(entry.txHash), waiting ? 'waiting' : 'ready'),
    readiness: (txHash) => held.get(toHex(txHash)) ?? null,
  };
}

const ready = (): TxReadiness => 'ready';

/** Accepts every transaction, each its own sender. */
class AcceptingApp implements Pick<Application, 'checkTx'> {
  checkTx(bytes: Uint8Array): TxCheckResult {
    const txHash = sha256(bytes);
    return { ok: true, txHash, sender: toHex(txHash), sequence: 0 };
  }
}

const PERIOD = 1_000;

describe('tx gossip', () => {
  it('sends what is handed over in one turn together, split at MAX_TXS_PER_GOSSIP', async () => {
    const network = recordingNetwork();
    const gossip = createTxGossip(network, ready, { timer: false });
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
    const gossip = createTxGossip(network, ready, { maxBatchBytes: 10, timer: false });
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
    const gossip = createTxGossip(network, pool.readiness, {
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
    assert.deepEqual(gossip.stats(), { tracked: 1, trackedBytes: 1, resent: 3, untracked: 0 });
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
    const gossip = createTxGossip(network, ready, {
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
    const big = createTxGossip(network, ready, {
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
    const gossip = createTxGossip(network, pool.readiness, {
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
    const gossip = createTxGossip(network, ready, { maxTracked: 2, timer: false });
    gossip.push([1, 2, 3].map((i) => local(Uint8Array.of(i))));
    assert.deepEqual(gossip.stats(), { tracked: 2, trackedBytes: 2, resent: 0, untracked: 1 });
    gossip.close();
  });
});

/** Transaction `n` of `size` bytes (at least 4): `n` in its first bytes and in its txHash. */
function numbered(n: number, size = 300): LocalTx {
  const tx = new Uint8Array(size);
  new DataView(tx.buffer).setUint32(0, n);
  const txHash = new Uint8Array(32);
  new DataView(txHash.buffer).setUint32(0, n);
  return { tx, txHash };
}

const numberOf = (bytes: Uint8Array): number =>
  new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);

describe('tx gossip under load', () => {
  /**
   * 40 transactions of 64 KiB stay pending for good (only 4 fit a tick's 256 KiB), then one
   * more is admitted and its batch lost, while 250 others per period are admitted and committed
   * within the period.
   */
  function backlog(longPending: 'ready' | 'waiting'): {
    lostFirstResentAfter: number;
    longPendingResent: number;
    peakTracked: number;
  } {
    let now = 0;
    let next = 0;
    const held = new Map<number, 'ready' | 'waiting'>();
    const resent: number[] = [];
    let flushing = false;
    const network = recordingNetwork();
    network.connected = ['b', 'c', 'd'];
    const broadcast = network.broadcast.bind(network);
    network.broadcast = (message) => {
      if (!flushing) resent.push(...txsOf(message).map(numberOf));
      broadcast(message);
    };
    const gossip = createTxGossip(network, (txHash) => held.get(numberOf(txHash)) ?? null, {
      periodMs: PERIOD,
      timer: false,
      now: () => now,
    });
    const admit = (txs: LocalTx[], state: 'ready' | 'waiting' | null): void => {
      for (const entry of txs) if (state !== null) held.set(numberOf(entry.txHash), state);
      flushing = true;
      gossip.push(txs);
      gossip.flush();
      flushing = false;
    };
    const period = (): void => {
      now += PERIOD;
      gossip.tick();
    };
    const long = Array.from({ length: 40 }, () => numbered(next++, 64 * 1024));
    // Admitted over 8 periods, so that they come due spread over the periods.
    for (let i = 0; i < 8; i++) {
      admit(long.slice(i * 5, i * 5 + 5), longPending);
      period();
    }
    for (let i = 0; i < 16; i++) period();
    const lost = numbered(next++);
    admit([lost], 'ready');
    resent.length = 0;
    let lostFirstResentAfter = -1;
    let peakTracked = 0;
    for (let p = 1; p <= 30; p++) {
      admit(
        Array.from({ length: 250 }, () => numbered(next++, 16)),
        null,
      );
      period();
      peakTracked = Math.max(peakTracked, gossip.stats().tracked);
      if (lostFirstResentAfter < 0 && resent.includes(numberOf(lost.tx))) lostFirstResentAfter = p;
    }
    gossip.close();
    return {
      lostFirstResentAfter,
      longPendingResent: resent.filter((n) => n < 40).length,
      peakTracked,
    };
  }

  it('resends a newer transaction even behind a backlog of long-pending ones, and forgets committed ones', () => {
    const ready = backlog('ready');
    // Oldest due first: the backlog due before the lost one goes first, 4 per tick.
    assert.ok(
      ready.lostFirstResentAfter >= 1 && ready.lostFirstResentAfter <= 12,
      JSON.stringify(ready),
    );
    assert.ok(ready.longPendingResent > 0);
    // Committed ones are forgotten within about 8 ticks (the sweep), whatever is due.
    assert.ok(ready.peakTracked <= 41 + 250 * 9, JSON.stringify(ready));
  });

  it('does not resend transactions waiting for an earlier sequence', () => {
    const waiting = backlog('waiting');
    assert.deepEqual(waiting.longPendingResent, 0);
    assert.equal(waiting.lostFirstResentAfter, 1, JSON.stringify(waiting));
    assert.ok(waiting.peakTracked <= 41 + 250 * 2, JSON.stringify(waiting));
  });

  it('sends a waiting transaction again once it is ready, and not to peers that connect before', () => {
    const network = recordingNetwork();
    const pool = pendingPool();
    let now = 0;
    const gossip = createTxGossip(network, pool.readiness, {
      periodMs: PERIOD,
      timer: false,
      now: () => now,
    });
    const gapped = local(Uint8Array.of(9));
    pool.add([gapped]);
    pool.wait(gapped, true);
    gossip.push([gapped]);
    gossip.flush();
    network.sent.length = 0;
    network.connected = ['b'];
    network.connect('b');
    now = PERIOD;
    gossip.tick();
    assert.deepEqual(network.sent, [], 'waiting: not resent');
    assert.deepEqual(network.sentTo, [], 'waiting: not sent to a peer that connected');
    pool.wait(gapped, false);
    now = 3 * PERIOD;
    gossip.tick();
    assert.deepEqual(network.sent.flatMap(txsOf), [gapped.tx], 'ready at its next due time');
    gossip.close();
  });

  it('keeps at most maxTrackedBytes for resending', () => {
    const network = recordingNetwork();
    const gossip = createTxGossip(network, ready, { maxTrackedBytes: 10, timer: false });
    gossip.push([new Uint8Array(6).fill(1), new Uint8Array(6).fill(2)].map(local));
    assert.deepEqual(gossip.stats(), { tracked: 1, trackedBytes: 6, resent: 0, untracked: 1 });
    gossip.close();
  });

  it('a validator resends only to peers that (re)connect; a follower resends periodically', () => {
    const network = recordingNetwork();
    const pool = pendingPool();
    let now = 0;
    let validator = true;
    const gossip = createTxGossip(network, pool.readiness, {
      periodMs: PERIOD,
      timer: false,
      now: () => now,
      proposer: () => validator,
    });
    const [a, b] = [local(Uint8Array.of(1)), local(Uint8Array.of(2))];
    pool.add([a, b]);
    network.connected = ['p', 'q'];
    gossip.push([a, b]);
    gossip.flush();
    network.sent.length = 0;
    for (let p = 1; p <= 20; p++) {
      now = p * PERIOD;
      gossip.tick();
    }
    assert.deepEqual(network.sent, [], 'its peers hold them; its proposals include them');
    // q's stream ended and came back: q gets them, p does not.
    network.connect('q');
    gossip.tick();
    assert.deepEqual(
      network.sentTo.map(({ peer, message }) => [peer, txsOf(message)]),
      [['q', [a.tx, b.tx]]],
    );
    // Out of the validator set, it resends them at their next due time.
    validator = false;
    now = 40 * PERIOD;
    gossip.tick();
    assert.deepEqual(network.sent.flatMap(txsOf), [a.tx, b.tx]);
    gossip.close();
  });

  it("sends one peer at most maxResendTxs a tick, resends and a reconnect's together", () => {
    const network = recordingNetwork();
    let now = 0;
    const gossip = createTxGossip(network, ready, {
      periodMs: PERIOD,
      maxResendTxs: 3,
      timer: false,
      now: () => now,
    });
    const txs = [1, 2, 3, 4, 5].map((i) => local(Uint8Array.of(i)));
    gossip.push(txs.slice(0, 2));
    now = PERIOD;
    gossip.push(txs.slice(2));
    gossip.flush();
    network.sent.length = 0;
    network.connected = ['b'];
    network.connect('b');
    now = PERIOD + 1;
    gossip.tick();
    // 1 and 2 are due, broadcast (b gets them too); b gets one more of the rest.
    assert.deepEqual(network.sent.flatMap(txsOf), [txs[0]!.tx, txs[1]!.tx]);
    assert.deepEqual(
      network.sentTo.map(({ peer, message }) => [peer, txsOf(message).map((tx) => tx[0])]),
      [['b', [3]]],
    );
    gossip.close();
  });

  it("sends one peer at most maxResendBytes a tick, resends and a reconnect's together", () => {
    const network = recordingNetwork();
    let now = 0;
    const gossip = createTxGossip(network, ready, {
      periodMs: PERIOD,
      maxResendBytes: 10,
      timer: false,
      now: () => now,
    });
    // The first resend alone is over the budget (a tick's first always goes): nothing is left.
    const big = local(new Uint8Array(12).fill(1));
    const small = local(Uint8Array.of(2));
    gossip.push([big]);
    now = PERIOD;
    gossip.push([small]);
    gossip.flush();
    network.sent.length = 0;
    network.connected = ['b'];
    network.connect('b');
    now = PERIOD + 1;
    gossip.tick();
    assert.deepEqual(network.sent.flatMap(txsOf), [big.tx]);
    assert.deepEqual(network.sentTo, [], 'the byte budget is spent: no reconnect send');
    gossip.close();
  });

  it("leaves room in a peer's intake share for a full fresh batch behind a tick's resends", () => {
    assert.ok(DEFAULT_MAX_RESEND_TXS + MAX_TXS_PER_GOSSIP <= DEFAULT_INTAKE_MAX_QUEUED_PER_CALLER);
    const network = recordingNetwork();
    let now = 0;
    const gossip = createTxGossip(network, ready, { timer: false, now: () => now });
    gossip.push(Array.from({ length: 2_000 }, (_, i) => numbered(i)));
    gossip.flush();
    network.sent.length = 0;
    now += 10 * DEFAULT_TX_GOSSIP_PERIOD_MS;
    gossip.tick();
    assert.ok(network.sent.length > 0, 'some are resent');
    // The receiver admits nothing in between: the resends wait in its intake queue when this
    // node's next fresh batch arrives.
    const intake = createTxIntake(new Mempool(new AcceptingApp()));
    for (const message of network.sent) intake.addFromPeer('a', txsOf(message));
    const fresh = Array.from({ length: MAX_TXS_PER_GOSSIP }, (_, i) => numbered(10_000 + i).tx);
    intake.addFromPeer('a', fresh);
    assert.equal(intake.stats().droppedFromPeers, 0);
    intake.close();
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
    const gossip = createTxGossip(a.network, pool.readiness, { timer: false });
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
