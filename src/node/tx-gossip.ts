import { Fifo } from '../codec/fifo.js';
import type { ConsensusNetwork } from '../consensus/driver/ports.js';
import { MAX_TXS_PER_GOSSIP } from '../consensus/wire.js';

/**
 * Mempool gossip: transactions this node admitted from its clients are broadcast to every peer
 * as `txs` gossip messages (the driver hands peers' batches to their mempools). Only local
 * transactions are sent: validators are fully meshed, so a peer's transactions already reached
 * every other peer.
 *
 * - At once: transactions handed over in the same turn of the event loop (one `submitTxs`
 *   batch, or several calls) go out together, in messages of at most `MAX_TXS_PER_GOSSIP`
 *   transactions and `maxBatchBytes` bytes.
 * - Again while pending: a batch can be lost without the sender knowing — dropped from a
 *   congested peer's send queue (consensus/net/send-queue.ts), refused by a peer's full intake
 *   queue (tx-intake.ts), queued on a stream that ended, or broadcast while no peer was
 *   connected. So every transaction is broadcast again while the mempool still holds it
 *   (`pending`): once it has been pending for a gossip period (`periodMs`), then after 2, 4 and
 *   8 more periods, then every 8 periods, until it is committed, expires or is evicted. A
 *   transaction committed within a period costs one `pending` lookup, nothing is resent.
 * - To a peer that (re)connects: at the next tick, the pending ones, oldest first; once per tick
 *   however often the peer reconnected in between.
 *
 * Each tick sends at most `maxResendTxs` transactions and `maxResendBytes` bytes again (to all
 * peers, and the same again to each peer that connected), oldest first; the rest stay due for
 * the next tick. So a backlog under load adds a bounded trickle to the gossip, not a second copy
 * of it, and a peer's intake queue (1,024 transactions per peer) is not filled by resends.
 *
 * This is what brings a follower's transactions (a node added with `cluster add-node` that
 * serves `submitTx` but never proposes) into a block when a batch was lost; a validator's lost
 * transactions would otherwise wait until it proposes itself.
 */
export interface TxGossip {
  /** Queues transactions admitted from clients, and keeps them for resending while pending. */
  push(txs: readonly LocalTx[]): void;
  /** Sends what is queued now. */
  flush(): void;
  /** Resends what is due, and the pending transactions to peers that connected since the last tick. */
  tick(): void;
  stats(): TxGossipStats;
  close(): void;
}

/** A transaction the mempool admitted from a client, with the txHash it is pending under. */
export interface LocalTx {
  readonly tx: Uint8Array;
  readonly txHash: Uint8Array;
}

export interface TxGossipStats {
  /** Transactions kept for resending (pending ones, and committed ones not yet looked up). */
  readonly tracked: number;
  /** Transactions sent again (each message counted once per transaction). */
  readonly resent: number;
  /** Transactions no longer kept because `maxTracked` were (the longest-kept went first). */
  readonly untracked: number;
}

export interface TxGossipOptions {
  /** Bytes of one `txs` message (default 1 MiB). */
  readonly maxBatchBytes?: number;
  /** The gossip period: first resend after it, the tick timer's interval (default 1,000 ms). */
  readonly periodMs?: number;
  /** Transactions resent per tick (default 256). */
  readonly maxResendTxs?: number;
  /** Bytes resent per tick (default 256 KiB). */
  readonly maxResendBytes?: number;
  /** Transactions kept for resending (default 20,000: the mempool's default `maxTxs`). */
  readonly maxTracked?: number;
  /** false: no timer, the caller calls `tick` (tests). Default true. */
  readonly timer?: boolean;
  /** Monotonic clock in ms (default performance.now). */
  readonly now?: () => number;
}

export const DEFAULT_TX_BATCH_BYTES = 1024 * 1024;
export const DEFAULT_TX_GOSSIP_PERIOD_MS = 1000;
export const DEFAULT_MAX_RESEND_TXS = 256;
export const DEFAULT_MAX_RESEND_BYTES = 256 * 1024;
export const DEFAULT_MAX_TRACKED_TXS = 20_000;
/** Kept transactions a tick looks at for the peers that connected, per one it may send. */
const SCAN_FACTOR = 8;
/** Periods between two sends of a pending transaction: after the nth resend, the nth delay. */
const RESEND_DELAYS = [1, 2, 4, 8] as const;

interface Tracked extends LocalTx {
  /** When it is due to be sent again. */
  readonly due: number;
}

type GossipNetwork = Pick<ConsensusNetwork, 'broadcast' | 'send' | 'peers' | 'onPeerConnected'>;

export function createTxGossip(
  network: GossipNetwork,
  /** Whether the mempool still holds the transaction with this txHash. */
  pending: (txHash: Uint8Array) => boolean,
  options: TxGossipOptions = {},
): TxGossip {
  const maxBatchBytes = options.maxBatchBytes ?? DEFAULT_TX_BATCH_BYTES;
  const periodMs = options.periodMs ?? DEFAULT_TX_GOSSIP_PERIOD_MS;
  const maxResendTxs = options.maxResendTxs ?? DEFAULT_MAX_RESEND_TXS;
  const maxResendBytes = options.maxResendBytes ?? DEFAULT_MAX_RESEND_BYTES;
  const maxTracked = options.maxTracked ?? DEFAULT_MAX_TRACKED_TXS;
  const now = options.now ?? (() => performance.now());
  for (const [name, value] of [
    ['maxBatchBytes', maxBatchBytes],
    ['periodMs', periodMs],
    ['maxResendTxs', maxResendTxs],
    ['maxResendBytes', maxResendBytes],
    ['maxTracked', maxTracked],
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
   * The transactions kept for resending, by how often they were resent (the last level holds
   * every later resend). Each level is in order of due time: its entries all waited the same
   * delay from the (non-decreasing) time they were added.
   */
  const levels = RESEND_DELAYS.map(() => new Fifo<Tracked>());
  let tracked = 0;
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

  const track = (level: number, entry: LocalTx, at: number): void => {
    const delay = RESEND_DELAYS[level] as number;
    (levels[level] as Fifo<Tracked>).push({
      tx: entry.tx,
      txHash: entry.txHash,
      due: at + delay * periodMs,
    });
  };

  /** Collects transactions up to the per-tick budget. */
  const budget = (): { add(tx: Uint8Array): boolean; readonly txs: Uint8Array[] } => {
    const txs: Uint8Array[] = [];
    let bytes = 0;
    return {
      txs,
      add(tx) {
        if (txs.length >= maxResendTxs || (txs.length > 0 && bytes + tx.length > maxResendBytes)) {
          return false;
        }
        txs.push(tx);
        bytes += tx.length;
        return true;
      },
    };
  };

  /** Due transactions, oldest first (the most resent level first), within the budget. */
  const resendDue = (at: number): Set<Uint8Array> => {
    const batch = budget();
    let full = false;
    for (let level = levels.length - 1; level >= 0 && !full; level--) {
      const fifo = levels[level] as Fifo<Tracked>;
      for (let head = fifo.peek(); head !== undefined && head.due <= at; head = fifo.peek()) {
        if (!pending(head.txHash)) {
          fifo.shift();
          tracked--;
          continue;
        }
        if (!batch.add(head.tx)) {
          full = true;
          break;
        }
        fifo.shift();
        track(Math.min(level + 1, levels.length - 1), head, at);
      }
    }
    for (const txs of messages(batch.txs)) network.broadcast({ kind: 'txs', txs });
    resent += batch.txs.length;
    return new Set(batch.txs);
  };

  /**
   * The pending transactions, oldest first, within the budget, to peers that just connected.
   * Looks at most `SCAN_FACTOR` × `maxResendTxs` kept ones (committed ones stay kept until they
   * are due): past that, the periodic resends bring the rest.
   */
  const sendToJoined = (justSent: ReadonlySet<Uint8Array>): void => {
    const connected = new Set(network.peers());
    const to = [...joined].filter((peer) => connected.has(peer));
    joined.clear();
    if (to.length === 0) return;
    const batch = budget();
    let scan = SCAN_FACTOR * maxResendTxs;
    outer: for (let level = levels.length - 1; level >= 0; level--) {
      for (const entry of (levels[level] as Fifo<Tracked>).values()) {
        if (scan-- <= 0) break outer;
        if (justSent.has(entry.tx) || !pending(entry.txHash)) continue;
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
    const justSent = resendDue(now());
    if (joined.size > 0) sendToJoined(justSent);
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
      for (const entry of txs) {
        const { tx } = entry;
        if (
          queue.length > 0 &&
          (queue.length >= MAX_TXS_PER_GOSSIP || queuedBytes + tx.length > maxBatchBytes)
        ) {
          flush();
        }
        queue.push(tx);
        queuedBytes += tx.length;
        track(0, entry, at);
        tracked++;
      }
      // Over the bound: the longest-kept go (the most resent level first).
      for (let level = levels.length - 1; tracked > maxTracked && level >= 0; level--) {
        const fifo = levels[level] as Fifo<Tracked>;
        while (tracked > maxTracked && fifo.shift() !== undefined) {
          tracked--;
          untracked++;
        }
      }
      scheduled ??= setImmediate(flush);
    },
    flush,
    tick,
    stats: () => ({ tracked, resent, untracked }),
    close() {
      closed = true;
      if (scheduled !== null) clearImmediate(scheduled);
      scheduled = null;
      if (timer !== null) clearInterval(timer);
      queue = [];
      queuedBytes = 0;
      for (let level = 0; level < levels.length; level++) levels[level] = new Fifo<Tracked>();
      tracked = 0;
      joined.clear();
    },
  };
}
