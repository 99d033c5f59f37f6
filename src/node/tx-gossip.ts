import { Fifo } from '../codec/fifo.js';
import type { ConsensusNetwork } from '../consensus/driver/ports.js';
import { DEFAULT_MEMPOOL_OPTIONS } from '../consensus/mempool.js';
import { MAX_TXS_PER_GOSSIP } from '../consensus/wire.js';
import { DEFAULT_INTAKE_MAX_QUEUED_PER_CALLER } from './tx-intake.js';

/**
 * Mempool gossip: transactions this node admitted from its clients are broadcast to every peer
 * as `txs` gossip messages (the driver hands peers' batches to their mempools). Only local
 * transactions are sent: validators are fully meshed, so a peer's transactions already reached
 * every other peer.
 *
 * - At once: transactions handed over in the same turn of the event loop (one `submitTxs`
 *   batch, or several calls) go out together, in messages of at most `MAX_TXS_PER_GOSSIP`
 *   transactions and `maxBatchBytes` bytes.
 * - To a peer that (re)connects: at the next tick, the pending ones the mempool holds ready (not
 *   waiting for an earlier sequence of their sender), oldest first, within what is left of the
 *   peer's budget below; once per tick however often the peer reconnected in between. So a peer
 *   that was not connected when a batch was broadcast gets (up to the budget) what it missed.
 * - Again while pending, on a follower only (`proposer()` false: this node's key is no validator
 *   of the current or next height, so it never proposes). A batch can be lost without the
 *   sender knowing — dropped from a congested peer's send queue (consensus/net/send-queue.ts),
 *   refused by a peer's full intake queue (tx-intake.ts), queued on a stream that ended — and a
 *   follower's transaction then reaches no block. So a follower broadcasts each one again while
 *   the mempool holds it ready: once it has been pending for a gossip period (`periodMs`), then
 *   after 2, 4 and 8 more periods, then every 8 periods, until it is committed, expires or is
 *   evicted. A validator does not: its own proposals include its pending transactions, and its
 *   peers hold them unless a batch was lost there; peers that (re)connected get them as above.
 *   A transaction waiting for an earlier sequence is not sent again until it is ready (no block
 *   could take it).
 *
 * Budget: each tick sends one peer at most `maxResendTxs` transactions (default 24) and
 * `maxResendBytes` bytes, resends and reconnect sends together. A peer's intake queue holds at
 * most 1,024 transactions of one origin (tx-intake.ts) and a fresh batch at most 1,000
 * (`MAX_TXS_PER_GOSSIP`), so a full fresh batch still fits behind a tick's resends there. Due
 * transactions go out oldest due first across the resend levels. One that does not fit what is
 * left of the budget stays due at the head of its level, which the tick then skips: at the next
 * tick it is among the oldest due, and the first of a tick's batch always fits, so none is
 * starved.
 *
 * Bookkeeping: at most `maxTracked` transactions and `maxTrackedBytes` bytes are kept (the
 * mempool's own default limits; beyond them the most resent go first). Each tick looks up the
 * due ones (at most `MIN_CHECKS_PER_TICK` plus twice the number kept since the last tick), and
 * a sweep looks up an eighth of all kept ones (so each about once every 8 ticks, whatever is
 * due, skipped or sent). Both forget what the mempool no longer holds: one committed within a
 * period mostly when it comes due, at the cost of about one lookup, and every one within about
 * 8 ticks of leaving the mempool.
 */
export interface TxGossip {
  /** Queues transactions admitted from clients, and keeps them for resending while pending. */
  push(txs: readonly LocalTx[]): void;
  /** Sends what is queued now. */
  flush(): void;
  /**
   * Resends what is due (a follower only), sends the pending ones to peers that connected since
   * the last tick, and forgets ones the mempool no longer holds.
   */
  tick(): void;
  stats(): TxGossipStats;
  close(): void;
}

/** A transaction the mempool admitted from a client, with the txHash it is pending under. */
export interface LocalTx {
  readonly tx: Uint8Array;
  readonly txHash: Uint8Array;
}

/**
 * How the mempool holds a transaction: ready for a block, waiting for an earlier sequence of its
 * sender (`Mempool.readiness`), or not at all (null: committed, expired, evicted).
 */
export type TxReadiness = 'ready' | 'waiting' | null;

export interface TxGossipStats {
  /** Transactions kept (pending ones, and ones the mempool no longer holds not yet looked up). */
  readonly tracked: number;
  /** Their bytes. */
  readonly trackedBytes: number;
  /** Transactions sent again (each message counted once per transaction). */
  readonly resent: number;
  /** Transactions no longer kept because of `maxTracked` or `maxTrackedBytes`. */
  readonly untracked: number;
}

export interface TxGossipOptions {
  /** Bytes of one `txs` message (default 1 MiB). */
  readonly maxBatchBytes?: number;
  /** The gossip period: first resend after it, the tick timer's interval (default 1,000 ms). */
  readonly periodMs?: number;
  /** Transactions sent again to one peer per tick (default 24: see the budget above). */
  readonly maxResendTxs?: number;
  /** Bytes sent again to one peer per tick (default 256 KiB). */
  readonly maxResendBytes?: number;
  /** Transactions kept for resending (default 20,000: the mempool's default `maxTxs`). */
  readonly maxTracked?: number;
  /** Bytes kept for resending (default 64 MiB: the mempool's default `maxBytes`). */
  readonly maxTrackedBytes?: number;
  /**
   * Whether this node proposes blocks (its key is a validator of the current or next height):
   * then nothing is resent periodically, only to peers that (re)connect. Default: never.
   */
  readonly proposer?: () => boolean;
  /** false: no timer, the caller calls `tick` (tests). Default true. */
  readonly timer?: boolean;
  /** Monotonic clock in ms (default performance.now). */
  readonly now?: () => number;
}

export const DEFAULT_TX_BATCH_BYTES = 1024 * 1024;
export const DEFAULT_TX_GOSSIP_PERIOD_MS = 1000;
/** A peer's intake share for one origin, less a full fresh batch. */
export const DEFAULT_MAX_RESEND_TXS = DEFAULT_INTAKE_MAX_QUEUED_PER_CALLER - MAX_TXS_PER_GOSSIP;
export const DEFAULT_MAX_RESEND_BYTES = 256 * 1024;
export const DEFAULT_MAX_TRACKED_TXS = DEFAULT_MEMPOOL_OPTIONS.maxTxs;
export const DEFAULT_MAX_TRACKED_BYTES = DEFAULT_MEMPOOL_OPTIONS.maxBytes;
/** Lookups of due transactions a tick makes at least (plus twice the number kept since the last). */
export const MIN_CHECKS_PER_TICK = 1024;
/** The sweep looks at every kept transaction about once in this many ticks. */
const SWEEP_TICKS = 8;
/** Kept transactions a tick looks at for the peers that connected, per one it may send. */
const SCAN_FACTOR = 8;
/** Periods between two sends of a pending transaction: after the nth resend, the nth delay. */
const RESEND_DELAYS = [1, 2, 4, 8] as const;

interface Tracked {
  /** Null once forgotten: its bytes are released, and the queues drop it when they reach it. */
  tx: Uint8Array | null;
  readonly txHash: Uint8Array;
  /** When it is due at its level. */
  due: number;
}

type GossipNetwork = Pick<ConsensusNetwork, 'broadcast' | 'send' | 'peers' | 'onPeerConnected'>;

/**
 * Collects transactions up to a count and a byte budget. The first one of a tick's budget
 * always fits (a transaction larger than the byte budget is still sent, alone); what is left of
 * a budget for another batch (`rest`) holds only what fits.
 */
class Budget {
  readonly txs: Uint8Array[] = [];
  private bytes = 0;

  constructor(
    private readonly maxTxs: number,
    private readonly maxBytes: number,
    private readonly firstAlwaysFits = true,
  ) {}

  add(tx: Uint8Array): boolean {
    const oversize = this.bytes + tx.length > this.maxBytes;
    if (
      this.txs.length >= this.maxTxs ||
      (oversize && (this.txs.length > 0 || !this.firstAlwaysFits))
    ) {
      return false;
    }
    this.txs.push(tx);
    this.bytes += tx.length;
    return true;
  }

  /** What is left for another batch to the same peers, in the same tick. */
  rest(): Budget {
    return new Budget(
      Math.max(0, this.maxTxs - this.txs.length),
      Math.max(0, this.maxBytes - this.bytes),
      false,
    );
  }
}

export function createTxGossip(
  network: GossipNetwork,
  /** How the mempool holds the transaction with this txHash (`Mempool.readiness`). */
  readiness: (txHash: Uint8Array) => TxReadiness,
  options: TxGossipOptions = {},
): TxGossip {
  const maxBatchBytes = options.maxBatchBytes ?? DEFAULT_TX_BATCH_BYTES;
  const periodMs = options.periodMs ?? DEFAULT_TX_GOSSIP_PERIOD_MS;
  const maxResendTxs = options.maxResendTxs ?? DEFAULT_MAX_RESEND_TXS;
  const maxResendBytes = options.maxResendBytes ?? DEFAULT_MAX_RESEND_BYTES;
  const maxTracked = options.maxTracked ?? DEFAULT_MAX_TRACKED_TXS;
  const maxTrackedBytes = options.maxTrackedBytes ?? DEFAULT_MAX_TRACKED_BYTES;
  const proposer = options.proposer ?? (() => false);
  const now = options.now ?? (() => performance.now());
  for (const [name, value] of [
    ['maxBatchBytes', maxBatchBytes],
    ['periodMs', periodMs],
    ['maxResendTxs', maxResendTxs],
    ['maxResendBytes', maxResendBytes],
    ['maxTracked', maxTracked],
    ['maxTrackedBytes', maxTrackedBytes],
  ] as const) {
    if (!(Number.isFinite(value) && value > 0)) {
      throw new RangeError(`tx gossip option ${name} must be a positive number, got ${value}`);
    }
  }
  let queue: Uint8Array[] = [];
  let queuedBytes = 0;
  let scheduled: NodeJS.Immediate | null = null;
  let closed = false;
  /**
   * The kept transactions by how often they came due (the last level holds every later time).
   * Each level is in order of due time: its entries all wait the same delay from the
   * (non-decreasing) time they were added. Forgotten entries stay until a level reaches them.
   */
  let levels = RESEND_DELAYS.map(() => new Fifo<Tracked>());
  /** Every kept transaction once, in the order the sweep looks at them. */
  let sweep = new Fifo<Tracked>();
  let tracked = 0;
  let trackedBytes = 0;
  let keptSinceTick = 0;
  let resent = 0;
  let untracked = 0;
  /** Peers that connected since the last tick (cleared by every tick). */
  const joined = new Set<string>();

  const flush = (): void => {
    if (scheduled !== null) clearImmediate(scheduled);
    scheduled = null;
    if (queue.length === 0) return;
    network.broadcast({ kind: 'txs', txs: queue });
    queue = [];
    queuedBytes = 0;
  };

  /** `txs` as messages within the batch limits. */
  const messages = (txs: readonly Uint8Array[]): Uint8Array[][] => {
    const out: Uint8Array[][] = [];
    let current: Uint8Array[] = [];
    let bytes = 0;
    for (const tx of txs) {
      if (
        current.length > 0 &&
        (current.length >= MAX_TXS_PER_GOSSIP || bytes + tx.length > maxBatchBytes)
      ) {
        out.push(current);
        current = [];
        bytes = 0;
      }
      current.push(tx);
      bytes += tx.length;
    }
    if (current.length > 0) out.push(current);
    return out;
  };

  const schedule = (entry: Tracked, level: number, at: number): void => {
    entry.due = at + (RESEND_DELAYS[level] as number) * periodMs;
    (levels[level] as Fifo<Tracked>).push(entry);
  };

  const forget = (entry: Tracked): void => {
    if (entry.tx === null) return;
    tracked--;
    trackedBytes -= entry.tx.length;
    entry.tx = null;
  };

  /**
   * The level whose head is due soonest, at `at` or before, other than `skipped` ones; -1 when
   * none is due.
   */
  const dueLevel = (at: number, skipped: ReadonlySet<number>): number => {
    let best = -1;
    let bestDue = Infinity;
    levels.forEach((fifo, level) => {
      while (fifo.peek()?.tx === null) fifo.shift();
      const head = fifo.peek();
      if (skipped.has(level)) return;
      if (head !== undefined && head.due <= at && head.due < bestDue) {
        best = level;
        bestDue = head.due;
      }
    });
    return best;
  };

  /**
   * Moves the due transactions on to their next level, oldest due first across the levels,
   * forgetting those the mempool no longer holds; a follower puts the ready ones into `batch`
   * (a validator only keeps them, for peers that reconnect).
   * One that does not fit stays due at the head of its level, which this tick then skips: it is
   * the oldest due of the next tick, whose batch starts with it. At most `checks` of them.
   */
  const passDue = (at: number, follower: boolean, batch: Budget, checks: number): void => {
    const skipped = new Set<number>();
    for (let left = checks; left > 0; left--) {
      const level = dueLevel(at, skipped);
      if (level < 0) return;
      const fifo = levels[level] as Fifo<Tracked>;
      const head = fifo.peek() as Tracked;
      const next = Math.min(level + 1, levels.length - 1);
      const state = readiness(head.txHash);
      if (state === null) {
        fifo.shift();
        forget(head);
        continue;
      }
      if (follower && state === 'ready' && !batch.add(head.tx as Uint8Array)) {
        skipped.add(level);
        continue;
      }
      fifo.shift();
      schedule(head, next, at);
    }
  };

  /** Looks up an eighth of the kept transactions, forgetting those the mempool no longer holds. */
  const sweepKept = (): void => {
    for (let left = Math.ceil(sweep.length / SWEEP_TICKS); left > 0; left--) {
      const entry = sweep.shift();
      if (entry === undefined) return;
      if (entry.tx === null) continue;
      if (readiness(entry.txHash) === null) forget(entry);
      else sweep.push(entry);
    }
  };

  /**
   * The ready transactions, oldest first, within `batch`, to peers that just connected.
   * Looks at most `SCAN_FACTOR` × `maxResendTxs` kept ones.
   */
  const sendToJoined = (batch: Budget, justSent: ReadonlySet<Uint8Array>): void => {
    const connected = new Set(network.peers());
    const to = [...joined].filter((peer) => connected.has(peer));
    joined.clear();
    if (to.length === 0) return;
    let scan = SCAN_FACTOR * maxResendTxs;
    outer: for (let level = levels.length - 1; level >= 0; level--) {
      for (const entry of (levels[level] as Fifo<Tracked>).values()) {
        if (entry.tx === null || justSent.has(entry.tx)) continue;
        if (scan-- <= 0) break outer;
        if (readiness(entry.txHash) !== 'ready') continue;
        if (!batch.add(entry.tx)) break outer;
      }
    }
    if (batch.txs.length === 0) return;
    for (const peer of to) {
      for (const txs of messages(batch.txs)) network.send(peer, { kind: 'txs', txs });
    }
    resent += batch.txs.length * to.length;
  };

  const tick = (): void => {
    if (closed) return;
    const at = now();
    const follower = !proposer();
    const checks = MIN_CHECKS_PER_TICK + 2 * keptSinceTick;
    keptSinceTick = 0;
    const batch = new Budget(maxResendTxs, maxResendBytes);
    passDue(at, follower, batch, checks);
    for (const txs of messages(batch.txs)) network.broadcast({ kind: 'txs', txs });
    resent += batch.txs.length;
    // A peer that just connected got the broadcast too: it gets only the rest of the budget.
    if (joined.size > 0) sendToJoined(batch.rest(), new Set(batch.txs));
    sweepKept();
  };

  /** Forgets the most resent kept transactions while over the bounds. */
  const enforceBounds = (): void => {
    for (let level = levels.length - 1; level >= 0; level--) {
      const fifo = levels[level] as Fifo<Tracked>;
      while (tracked > maxTracked || trackedBytes > maxTrackedBytes) {
        const entry = fifo.shift();
        if (entry === undefined) break;
        if (entry.tx === null) continue;
        forget(entry);
        untracked++;
      }
    }
  };

  network.onPeerConnected((peer) => {
    if (!closed) joined.add(peer);
  });
  const timer = options.timer === false ? null : setInterval(tick, periodMs);
  timer?.unref();

  return {
    push(txs) {
      if (closed || txs.length === 0) return;
      const at = now();
      for (const { tx, txHash } of txs) {
        if (
          queue.length > 0 &&
          (queue.length >= MAX_TXS_PER_GOSSIP || queuedBytes + tx.length > maxBatchBytes)
        ) {
          flush();
        }
        queue.push(tx);
        queuedBytes += tx.length;
        const entry: Tracked = { tx, txHash, due: 0 };
        schedule(entry, 0, at);
        sweep.push(entry);
        tracked++;
        trackedBytes += tx.length;
        keptSinceTick++;
      }
      enforceBounds();
      scheduled ??= setImmediate(flush);
    },
    flush,
    tick,
    stats: () => ({ tracked, trackedBytes, resent, untracked }),
    close() {
      closed = true;
      if (scheduled !== null) clearImmediate(scheduled);
      scheduled = null;
      if (timer !== null) clearInterval(timer);
      queue = [];
      queuedBytes = 0;
      levels = RESEND_DELAYS.map(() => new Fifo<Tracked>());
      sweep = new Fifo<Tracked>();
      tracked = 0;
      trackedBytes = 0;
      joined.clear();
    },
  };
}
