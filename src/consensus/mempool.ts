import { BoundedMap } from '../codec/bounded-map.js';
import { toHex } from '../crypto/bytes.js';
import { sha256 } from '../crypto/hash.js';
import type { Application, TxCheckResult } from './app.js';
import type { MempoolPort } from './driver/ports.js';
import { ConsensusError, ConsensusErrorCode } from './errors.js';
import { MAX_TX_BYTES } from './wire.js';

/**
 * The mempool: transactions admitted by the application's `checkTx`, waiting for a block.
 *
 * - Admission runs `checkTx` once per new transaction. An exact byte duplicate is recognised by
 *   the SHA-256 of its bytes before `checkTx` runs; a different encoding of a pending
 *   transaction by the application's `txHash` after it.
 * - A bounded LRU of recently committed and rejected byte hashes stops the same bytes, gossiped
 *   again, from being checked again. A rejection is remembered only until the next block: a
 *   transaction refused against one state (a sequence too far ahead) may pass against the next.
 * - Each sender's transactions are kept in sequence order; `candidates` interleaves senders
 *   round-robin in the order each sender's queue started, so one busy sender cannot crowd out
 *   the others.
 * - After a block, `update` drops the committed transactions and re-checks the rest against
 *   the new state in one pass.
 * - Ready and waiting: when `checkTx` tells the sender's next sequence (`nextSequence`), a
 *   sender's transactions from that sequence on without a gap are ready; the rest wait for an
 *   earlier sequence that is not pending (never submitted, or refused). Only ready transactions
 *   are offered to the proposer and count towards the client back-pressure limit
 *   (`maxLocalTxs`). Once `maxWaitingTxs` wait, one more that would wait displaces the
 *   highest-sequence waiting transaction of the sender with the most waiting, if that sender
 *   has more than the newcomer's would, and is refused otherwise (a block can leave more
 *   waiting for a while, when a sender's first pending one expires or is evicted). So
 *   transactions that cannot run never crowd out those that can, and a few senders cannot
 *   hold the whole waiting room.
 *
 * Input from clients and peers never throws: it is admitted or refused with a stable code.
 */

export enum MempoolRejectionCode {
  /** The transaction is not a byte string. */
  NOT_BYTES = 'TX_NOT_BYTES',
  EMPTY = 'TX_EMPTY',
  TOO_LARGE = 'TX_TOO_LARGE',
  /** The same bytes were committed recently. */
  ALREADY_COMMITTED = 'TX_ALREADY_COMMITTED',
  /** The pool holds `maxTxs` transactions or has no room for this one's bytes. */
  FULL = 'MEMPOOL_FULL',
  /**
   * A client's transaction while `maxLocalTxs` are pending: the node is behind (back-pressure;
   * retry later). Transactions from peers are still admitted up to `maxTxs`.
   */
  BUSY = 'MEMPOOL_BUSY',
  /** The sender already has `maxPerSender` pending transactions. */
  SENDER_LIMIT = 'MEMPOOL_SENDER_LIMIT',
  /** The sender has another pending transaction with this sequence number. */
  SEQUENCE_TAKEN = 'MEMPOOL_SEQUENCE_TAKEN',
  /**
   * The transaction would wait for an earlier sequence of its sender that is not pending,
   * `maxWaitingTxs` transactions already wait, and no other sender has more waiting than this
   * one would.
   */
  WAITING_FULL = 'MEMPOOL_WAITING_FULL',
  /** `checkTx` threw or answered something that is not a check result. */
  CHECK_FAILED = 'MEMPOOL_CHECK_FAILED',
}

export type MempoolAddResult =
  | { readonly ok: true; readonly txHash: Uint8Array; readonly duplicate: boolean }
  | {
      readonly ok: false;
      /** A `MempoolRejectionCode`, or the application's code passed through. */
      readonly code: string;
      readonly message: string;
      /** The application's transaction id, when `checkTx` got that far. */
      readonly txHash?: Uint8Array;
    };

export interface MempoolOptions {
  /** Most pending transactions (default 20,000). */
  readonly maxTxs?: number;
  /**
   * Ready transactions (see the class comment) above which a client's (`origin` 'local')
   * transaction is refused with `MEMPOOL_BUSY` (default: `maxTxs`). Below `maxTxs`, so that
   * transactions other nodes already admitted still get in while this node turns new work away.
   */
  readonly maxLocalTxs?: number;
  /**
   * Transactions waiting for an earlier sequence of their sender (default 1,000). From there,
   * one more that would wait displaces a waiting transaction of the sender with the most
   * waiting, if that sender has more than the newcomer's would; otherwise it is refused with
   * `MEMPOOL_WAITING_FULL`. They count towards `maxTxs` too.
   */
  readonly maxWaitingTxs?: number;
  /** Most pending bytes (default 64 MiB). */
  readonly maxBytes?: number;
  /** Largest transaction (default 64 KiB, the wire limit). */
  readonly maxTxBytes?: number;
  /** Most pending transactions of one sender (default 1,000). */
  readonly maxPerSender?: number;
  /** Recently committed or rejected byte hashes remembered (default 100,000). */
  readonly seenCacheSize?: number;
  /**
   * Blocks a transaction may stay pending (default 30). A transaction that cannot run — e.g. its
   * sender's earlier sequence was never submitted or was refused — would otherwise hold its slot
   * forever; once expired it may be submitted again.
   */
  readonly ttlBlocks?: number;
}

export const DEFAULT_MEMPOOL_OPTIONS: Required<Omit<MempoolOptions, 'maxLocalTxs'>> = Object.freeze(
  {
    maxTxs: 20_000,
    maxBytes: 64 * 1024 * 1024,
    maxTxBytes: MAX_TX_BYTES,
    maxPerSender: 1_000,
    seenCacheSize: 100_000,
    ttlBlocks: 30,
    maxWaitingTxs: 1_000,
  },
);

export interface MempoolStats {
  /** Pending now. */
  readonly size: number;
  /** Of those, waiting for an earlier sequence of their sender (not offered to proposers). */
  readonly waiting: number;
  readonly bytes: number;
  /** Transactions admitted since start. */
  readonly admitted: number;
  /** Additions that were already pending. */
  readonly duplicates: number;
  /** Refusals by code (mempool codes and the application's). */
  readonly rejected: Readonly<Record<string, number>>;
  /** Pending transactions removed because a block committed them. */
  readonly committed: number;
  /** Pending transactions dropped because the re-check after a block refused them. */
  readonly evicted: number;
  /** Pending transactions dropped because they stayed `ttlBlocks` blocks without running. */
  readonly expired: number;
  /**
   * Waiting transactions dropped, with the waiting room full, to admit a waiting one of a
   * sender that had fewer waiting (the highest sequence of the sender with the most).
   */
  readonly displaced: number;
  /** Exceptions thrown by `onAdmitted` listeners (caught, so admission is not disturbed). */
  readonly listenerErrors: number;
}

export type AdmittedListener = (tx: Uint8Array, origin: string) => void;

interface PendingTx {
  readonly tx: Uint8Array;
  /** Hex SHA-256 of the bytes. */
  readonly byteKey: string;
  /** Hex of the application's txHash. */
  readonly hashKey: string;
  readonly txHash: Uint8Array;
  readonly sender: string;
  readonly sequence: number;
  /** The last committed height when it was admitted. */
  readonly since: number;
}

/** One sender's pending transactions, sorted by sequence. */
interface SenderQueue {
  readonly txs: PendingTx[];
  /** The sender's next sequence as the last check saw it; null when the application does not tell. */
  next: number | null;
  /** The first `ready` transactions run in order from `next`; the rest wait. */
  ready: number;
  /** `txs.length - ready` when last counted (its share of the pool's waiting total). */
  waiting: number;
}

type SeenOutcome =
  | { readonly kind: 'committed' }
  | {
      readonly kind: 'rejected';
      readonly code: string;
      readonly message: string;
      readonly height: number;
    };

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function isAcceptance(result: TxCheckResult): boolean {
  return (
    result.ok === true &&
    result.txHash instanceof Uint8Array &&
    result.txHash.length === 32 &&
    typeof result.sender === 'string' &&
    Number.isSafeInteger(result.sequence) &&
    result.sequence >= 0 &&
    (result.nextSequence === undefined ||
      (Number.isSafeInteger(result.nextSequence) && result.nextSequence >= 0))
  );
}

/**
 * How many of `queue`'s first transactions run in order: a run of consecutive sequences from
 * the sender's next one (or from the first pending one, when that is lower: committed but not
 * yet removed by `update`). All of them when the next sequence is unknown.
 */
function readyPrefix(queue: SenderQueue): number {
  const { txs, next } = queue;
  if (next === null || txs.length === 0) return txs.length;
  let expected = Math.min(next, txs[0]!.sequence);
  let ready = 0;
  while (ready < txs.length && txs[ready]!.sequence === expected) {
    ready++;
    expected++;
  }
  return ready;
}

function isRejection(result: TxCheckResult): boolean {
  return (
    result.ok === false && typeof result.code === 'string' && typeof result.message === 'string'
  );
}

/** Index of the first entry of `queue` (sorted by sequence) whose sequence is ≥ `sequence`. */
function lowerBound(queue: readonly PendingTx[], sequence: number): number {
  let low = 0;
  let high = queue.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (queue[middle]!.sequence < sequence) low = middle + 1;
    else high = middle;
  }
  return low;
}

export class Mempool implements MempoolPort {
  private readonly options: Required<MempoolOptions>;
  private readonly byBytes = new Map<string, PendingTx>();
  private readonly byTxHash = new Map<string, PendingTx>();
  /** Each sender's pending transactions by sequence; Map order is the order queues started. */
  private readonly senders = new Map<string, SenderQueue>();
  /** Pending transactions that are not ready (the sum over senders). */
  private waitingCount = 0;
  /** Recently committed or rejected byte hashes (least recently used evicted first). */
  private readonly seen: BoundedMap<string, SeenOutcome>;
  /**
   * Why recently evicted transactions were thrown out by the re-check after a commit, by
   * application txHash (`evictionOf`): a client waiting for one learns the refusal.
   */
  private readonly evictions = new BoundedMap<string, { code: string; message: string }>(1024);
  private readonly listeners = new Set<AdmittedListener>();
  private pendingBytes = 0;
  /** Height of the last `update`: rejections remembered at an earlier one are stale. */
  private height = 0;
  private admitted = 0;
  private duplicates = 0;
  private committed = 0;
  private evicted = 0;
  private expired = 0;
  private displaced = 0;
  private listenerErrors = 0;
  private readonly rejected = new Map<string, number>();

  constructor(
    private readonly app: Pick<Application, 'checkTx' | 'forgetCheck'>,
    options: MempoolOptions = {},
  ) {
    const merged: Required<MempoolOptions> = {
      ...DEFAULT_MEMPOOL_OPTIONS,
      maxLocalTxs: options.maxTxs ?? DEFAULT_MEMPOOL_OPTIONS.maxTxs,
      ...options,
    };
    for (const [name, value] of Object.entries(merged)) {
      if (!(Number.isSafeInteger(value) && value >= 1)) {
        throw new ConsensusError(
          ConsensusErrorCode.INVALID_CONFIG,
          `mempool option ${name} must be a positive integer, got ${String(value)}`,
          { option: name },
        );
      }
    }
    this.options = merged;
    this.seen = new BoundedMap(merged.seenCacheSize);
  }

  /** Admits `tx` (from a client when `origin` is 'local', else from the named peer). */
  add(tx: Uint8Array, origin = 'local'): MempoolAddResult {
    if (!(tx instanceof Uint8Array)) {
      return this.reject(
        MempoolRejectionCode.NOT_BYTES,
        `transaction must be a byte string, got ${describe(tx)}`,
      );
    }
    if (tx.length === 0) return this.reject(MempoolRejectionCode.EMPTY, 'transaction is empty');
    if (tx.length > this.options.maxTxBytes) {
      return this.reject(
        MempoolRejectionCode.TOO_LARGE,
        `transaction is ${tx.length} bytes; the limit is ${this.options.maxTxBytes}`,
      );
    }
    const byteKey = toHex(sha256(tx));
    const pending = this.byBytes.get(byteKey);
    if (pending !== undefined) return this.duplicate(pending);
    const seen = this.seen.get(byteKey);
    if (seen?.kind === 'committed') {
      return this.reject(
        MempoolRejectionCode.ALREADY_COMMITTED,
        'transaction was committed in a recent block',
      );
    }
    if (seen?.kind === 'rejected' && seen.height === this.height) {
      return this.reject(seen.code, seen.message);
    }
    if (this.byBytes.size >= this.options.maxTxs) {
      return this.reject(
        MempoolRejectionCode.FULL,
        `mempool holds ${this.byBytes.size} transactions, its limit`,
      );
    }
    const ready = this.byBytes.size - this.waitingCount;
    if (origin === 'local' && ready >= this.options.maxLocalTxs) {
      return this.reject(
        MempoolRejectionCode.BUSY,
        `node is behind: ${ready} transactions are ready for a block (clients are refused from ${this.options.maxLocalTxs}); retry later`,
      );
    }
    if (this.pendingBytes + tx.length > this.options.maxBytes) {
      return this.reject(
        MempoolRejectionCode.FULL,
        `mempool holds ${this.pendingBytes} bytes; ${tx.length} more exceed its limit of ${this.options.maxBytes}`,
      );
    }

    const copy = tx.slice();
    const result = this.check(copy);
    if (!result.ok) {
      if (result.code !== MempoolRejectionCode.CHECK_FAILED) {
        this.seen.set(byteKey, {
          kind: 'rejected',
          code: result.code,
          message: result.message,
          height: this.height,
        });
      }
      return this.reject(result.code, result.message);
    }
    const hashKey = toHex(result.txHash);
    const same = this.byTxHash.get(hashKey);
    if (same !== undefined) {
      this.forget(copy);
      return this.duplicate(same);
    }

    const queue: SenderQueue = this.senders.get(result.sender) ?? {
      txs: [],
      next: null,
      ready: 0,
      waiting: 0,
    };
    if (queue.txs.length >= this.options.maxPerSender) {
      this.forget(copy);
      return this.reject(
        MempoolRejectionCode.SENDER_LIMIT,
        `sender has ${queue.txs.length} pending transactions, the limit`,
        result.txHash,
      );
    }
    const at = lowerBound(queue.txs, result.sequence);
    if (queue.txs[at]?.sequence === result.sequence) {
      this.forget(copy);
      return this.reject(
        MempoolRejectionCode.SEQUENCE_TAKEN,
        `sender already has a pending transaction with sequence ${result.sequence}`,
        result.txHash,
      );
    }
    const entry: PendingTx = {
      tx: copy,
      byteKey,
      hashKey,
      txHash: result.txHash,
      sender: result.sender,
      sequence: result.sequence,
      since: this.height,
    };
    const previousNext = queue.next;
    queue.txs.splice(at, 0, entry);
    queue.next = result.nextSequence ?? null;
    this.recount(queue);
    if (at >= queue.ready && this.waitingCount > this.options.maxWaitingTxs) {
      const holder = this.largestWaitingHolder(queue);
      if (holder === null) {
        const missing = Math.min(queue.next!, queue.txs[0]!.sequence) + queue.ready;
        queue.txs.splice(at, 1);
        queue.next = previousNext;
        this.recount(queue);
        this.forget(copy);
        return this.reject(
          MempoolRejectionCode.WAITING_FULL,
          `sequence ${result.sequence} would wait for the sender's sequence ${missing}, which is not pending, and ${this.waitingCount} transactions already wait (the limit), no sender with more waiting than this one; submit sequence ${missing} first`,
          result.txHash,
        );
      }
      this.displaceLastWaiting(holder);
    }
    if (queue.txs.length === 1) this.senders.set(entry.sender, queue);
    this.byBytes.set(byteKey, entry);
    this.byTxHash.set(hashKey, entry);
    this.pendingBytes += copy.length;
    this.admitted++;
    for (const listener of this.listeners) {
      try {
        listener(copy, origin);
      } catch {
        this.listenerErrors++;
      }
    }
    return { ok: true, txHash: result.txHash, duplicate: false };
  }

  addFromPeer(peer: string, txs: readonly Uint8Array[]): void {
    if (!Array.isArray(txs)) {
      this.reject(MempoolRejectionCode.NOT_BYTES, 'peer sent transactions that are not a list');
      return;
    }
    for (const tx of txs) this.add(tx, peer);
  }

  /**
   * Transactions for the proposer: round-robin over senders (in the order their queues
   * started), each sender's in sequence order.
   */
  *candidates(): Iterable<Uint8Array> {
    let active: PendingTx[][] = [];
    for (const queue of this.senders.values()) {
      if (queue.ready > 0) active.push(queue.txs.slice(0, queue.ready));
    }
    for (let depth = 0; active.length > 0; depth++) {
      const next: PendingTx[][] = [];
      for (const queue of active) {
        yield queue[depth]!.tx;
        if (queue.length > depth + 1) next.push(queue);
      }
      active = next;
    }
  }

  /**
   * After block `height` is committed and executed: drops its transactions (matched by the
   * SHA-256 of their bytes) and remembers them, drops those pending for `ttlBlocks` blocks, then
   * re-checks every remaining transaction against the new state, dropping those now refused —
   * one pass over the pool.
   */
  update(height: number, committed: readonly Uint8Array[]): void {
    this.height = height;
    const included = new Set<PendingTx>();
    for (const tx of committed) {
      if (!(tx instanceof Uint8Array)) continue;
      const byteKey = toHex(sha256(tx));
      this.seen.set(byteKey, { kind: 'committed' });
      const entry = this.byBytes.get(byteKey);
      if (entry !== undefined) included.add(entry);
    }
    for (const [sender, queue] of this.senders) {
      const { txs } = queue;
      let kept = 0;
      let next: number | null = null;
      for (const entry of txs) {
        if (included.has(entry)) {
          this.drop(entry);
          this.committed++;
          continue;
        }
        if (height - entry.since >= this.options.ttlBlocks) {
          // Not remembered as refused: submitted again, it is a new attempt.
          this.drop(entry);
          this.forget(entry.tx);
          this.expired++;
          continue;
        }
        const result = this.check(entry.tx);
        if (result.ok) {
          txs[kept++] = entry;
          next = result.nextSequence ?? null;
          continue;
        }
        this.drop(entry);
        this.evicted++;
        this.evictions.set(entry.hashKey, { code: result.code, message: result.message });
        if (result.code !== MempoolRejectionCode.CHECK_FAILED) {
          this.seen.set(entry.byteKey, {
            kind: 'rejected',
            code: result.code,
            message: result.message,
            height,
          });
        }
      }
      txs.length = kept;
      queue.next = next;
      this.recount(queue);
      if (kept === 0) this.senders.delete(sender);
    }
  }

  size(): number {
    return this.byBytes.size;
  }

  /** Pending transactions that are ready: what `candidates` offers. */
  readySize(): number {
    return this.byBytes.size - this.waitingCount;
  }

  /** Bytes of the pending transactions. */
  bytes(): number {
    return this.pendingBytes;
  }

  /** Whether a transaction with this application txHash is pending. */
  has(txHash: Uint8Array): boolean {
    return txHash instanceof Uint8Array && this.byTxHash.has(toHex(txHash));
  }

  /**
   * How the transaction with this application txHash is pending: `ready` (in its sender's run
   * from the next sequence: `candidates` offers it), `waiting` (for an earlier sequence of its
   * sender), or null when it is not pending.
   */
  readiness(txHash: Uint8Array): 'ready' | 'waiting' | null {
    if (!(txHash instanceof Uint8Array)) return null;
    const entry = this.byTxHash.get(toHex(txHash));
    if (entry === undefined) return null;
    const queue = this.senders.get(entry.sender);
    if (queue === undefined) return null;
    return lowerBound(queue.txs, entry.sequence) < queue.ready ? 'ready' : 'waiting';
  }

  /**
   * The sequence that follows `sender`'s ready transactions (the run from its next sequence,
   * without a gap): what a new transaction of the sender must take to run after those already
   * pending. `sender` is the sequence owner `checkTx` names (`TxAcceptance.sender`). Null when
   * the sender has nothing pending, or the application does not tell its next sequence.
   */
  nextSequenceAfterPending(sender: string): number | null {
    const queue = this.senders.get(sender);
    if (queue === undefined || queue.next === null || queue.txs.length === 0) return null;
    return Math.min(queue.next, queue.txs[0]!.sequence) + queue.ready;
  }

  /**
   * The refusal that evicted the transaction with this application txHash when the mempool
   * re-checked it after a commit (the last 1,024 evictions); undefined otherwise.
   */
  evictionOf(txHash: Uint8Array): { readonly code: string; readonly message: string } | undefined {
    return txHash instanceof Uint8Array ? this.evictions.peek(toHex(txHash)) : undefined;
  }

  stats(): MempoolStats {
    return {
      size: this.byBytes.size,
      waiting: this.waitingCount,
      bytes: this.pendingBytes,
      admitted: this.admitted,
      duplicates: this.duplicates,
      rejected: Object.fromEntries(this.rejected),
      committed: this.committed,
      evicted: this.evicted,
      expired: this.expired,
      displaced: this.displaced,
      listenerErrors: this.listenerErrors,
    };
  }

  /**
   * Calls `listener` with every newly admitted transaction and where it came from ('local' or
   * the peer), e.g. to gossip it on. Returns the function that unsubscribes it.
   */
  onAdmitted(listener: AdmittedListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** `checkTx`, with a throwing or malformed answer turned into a CHECK_FAILED rejection. */
  private check(
    tx: Uint8Array,
  ):
    | { ok: true; txHash: Uint8Array; sender: string; sequence: number; nextSequence?: number }
    | { ok: false; code: string; message: string } {
    let result: TxCheckResult;
    try {
      result = this.app.checkTx(tx);
    } catch (error) {
      return {
        ok: false,
        code: MempoolRejectionCode.CHECK_FAILED,
        message: `checkTx threw: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
    if (typeof result === 'object' && result !== null) {
      if (isAcceptance(result) && result.ok) return result;
      if (isRejection(result) && !result.ok) return result;
    }
    return {
      ok: false,
      code: MempoolRejectionCode.CHECK_FAILED,
      message: 'checkTx answered something that is not a check result',
    };
  }

  /**
   * The sender queue other than `queue` with the most waiting transactions, if it has more
   * than `queue` has now (with the newcomer counted); the first such queue on a tie. Scans the
   * senders: runs only when the waiting room is full.
   */
  private largestWaitingHolder(queue: SenderQueue): SenderQueue | null {
    let largest: SenderQueue | null = null;
    for (const candidate of this.senders.values()) {
      if (candidate === queue || candidate.waiting <= queue.waiting) continue;
      if (largest === null || candidate.waiting > largest.waiting) largest = candidate;
    }
    return largest;
  }

  /**
   * Drops the highest-sequence transaction of `queue`, which waits (`queue.waiting > 0`), to
   * make room for a sender with fewer waiting. Not remembered: sent again, it is a new attempt.
   */
  private displaceLastWaiting(queue: SenderQueue): void {
    const entry = queue.txs.pop()!;
    this.drop(entry);
    this.forget(entry.tx);
    this.displaced++;
    this.recount(queue);
    if (queue.txs.length === 0) this.senders.delete(entry.sender);
  }

  /** Recomputes `queue.ready` and the waiting total after `queue` changed. */
  private recount(queue: SenderQueue): void {
    queue.ready = readyPrefix(queue);
    const waiting = queue.txs.length - queue.ready;
    this.waitingCount += waiting - queue.waiting;
    queue.waiting = waiting;
  }

  /** Tells the application that `checkTx`'s memory of `tx` is not needed (`forgetCheck`). */
  private forget(tx: Uint8Array): void {
    try {
      this.app.forgetCheck?.(tx);
    } catch {
      // A cache the application could not trim is no reason to refuse or keep a transaction.
    }
  }

  /** Removes `entry` from the indexes (its sender queue is compacted by the caller). */
  private drop(entry: PendingTx): void {
    this.byBytes.delete(entry.byteKey);
    this.byTxHash.delete(entry.hashKey);
    this.pendingBytes -= entry.tx.length;
  }

  private duplicate(entry: PendingTx): MempoolAddResult {
    this.duplicates++;
    return { ok: true, txHash: entry.txHash, duplicate: true };
  }

  private reject(code: string, message: string, txHash?: Uint8Array): MempoolAddResult {
    this.rejected.set(code, (this.rejected.get(code) ?? 0) + 1);
    return txHash === undefined
      ? { ok: false, code, message }
      : { ok: false, code, message, txHash };
  }
}
