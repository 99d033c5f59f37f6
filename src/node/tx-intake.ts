import type { MempoolPort } from '../consensus/driver/ports.js';
import type { Mempool, MempoolAddResult } from '../consensus/mempool.js';
import { MempoolRejectionCode } from '../consensus/mempool.js';
import { peerSubmitter } from '../consensus/net/index.js';

/**
 * Transaction intake: the node's queue in front of its mempool.
 *
 * Admitting a transaction (decoding, hashes, signature, state reads) costs a few hundred
 * microseconds of the one event loop that also runs consensus. Batches from clients and peers
 * are therefore not admitted when they arrive: they are queued and admitted in slices of at most
 * `sliceMs`, with a turn of the event loop (I/O, timers: proposals, votes) between two slices.
 * Consensus messages are handled as they arrive, so a node busy admitting still sees a proposal
 * within one slice, and rounds do not time out because of the offered load.
 *
 * The queue is bounded (`maxQueued` transactions), and one caller — a client identity, or a
 * peer — holds at most `maxQueuedPerCaller` of them: beyond either, a client's transactions are
 * refused at once with `MEMPOOL_BUSY` (back-pressure: retry later) and a peer's batch is dropped
 * (a follower origin sends its pending ones again, a validator proposes its own: tx-gossip.ts).
 * The same answer is given while the mempool itself is above its client limit. Callers take
 * turns, `TURN_TXS` transactions at a time (across the caller's calls: many one-transaction
 * calls make one turn as a batch does), so one caller's long queue does not hold up another's
 * batch.
 */
export interface TxIntakeOptions {
  /** Most transactions waiting for admission (default 4,096). */
  readonly maxQueued?: number;
  /** Most of them from one caller (default 1,024: one full `submitTxs` batch). */
  readonly maxQueuedPerCaller?: number;
  /** Longest stretch of admissions before yielding to the event loop (default 4 ms). */
  readonly sliceMs?: number;
  /** Clock for the slices (default performance.now). */
  readonly now?: () => number;
}

export interface TxIntakeStats {
  /** Transactions waiting for admission now. */
  readonly queued: number;
  /** Client transactions refused because the queue was full. */
  readonly busy: number;
  /** Peer transactions dropped because the queue was full. */
  readonly droppedFromPeers: number;
  /** Slices run (each at most `sliceMs`). */
  readonly slices: number;
}

export interface TxIntake extends MempoolPort {
  /** The mempool's ready transactions (idle pacing counts these; src/consensus/mempool.ts). */
  readySize(): number;
  /**
   * Admits a client's transactions; one result per transaction, in order. `caller` names the
   * client for the per-caller bound and the turns (`submitterOf` its identity: a consensus peer
   * is one caller with its gossip; default 'local', shared by the node's own submissions).
   */
  submit(txs: readonly Uint8Array[], caller?: string): Promise<MempoolAddResult[]>;
  stats(): TxIntakeStats;
  /** Refuses what is queued (`MEMPOOL_BUSY`) and everything after. */
  close(): void;
}

export const DEFAULT_INTAKE_MAX_QUEUED = 4_096;
export const DEFAULT_INTAKE_MAX_QUEUED_PER_CALLER = 1_024;
export const DEFAULT_INTAKE_SLICE_MS = 4;
/** Transactions of one caller admitted before the next caller's turn. */
export const TURN_TXS = 64;

interface Job {
  readonly txs: readonly Uint8Array[];
  /** The mempool's origin: 'local' for clients, else the peer's name. */
  readonly origin: string;
  /** Whose turn and share it is (a client's identity, or `peer/<name>`). */
  readonly caller: string;
  readonly results: MempoolAddResult[];
  readonly done: ((results: MempoolAddResult[]) => void) | null;
}

function busy(message: string): MempoolAddResult {
  return { ok: false, code: MempoolRejectionCode.BUSY, message };
}

export function createTxIntake(mempool: Mempool, options: TxIntakeOptions = {}): TxIntake {
  const maxQueued = options.maxQueued ?? DEFAULT_INTAKE_MAX_QUEUED;
  const maxPerCaller = options.maxQueuedPerCaller ?? DEFAULT_INTAKE_MAX_QUEUED_PER_CALLER;
  const sliceMs = options.sliceMs ?? DEFAULT_INTAKE_SLICE_MS;
  const now = options.now ?? (() => performance.now());
  for (const [name, value] of [
    ['maxQueued', maxQueued],
    ['maxQueuedPerCaller', maxPerCaller],
    ['sliceMs', sliceMs],
  ] as const) {
    if (!(Number.isFinite(value) && value > 0)) {
      throw new RangeError(`tx intake option ${name} must be a positive number, got ${value}`);
    }
  }
  /** Per caller, its jobs in order; the Map's order is the turn order (first: next). */
  const callers = new Map<string, { jobs: Job[]; queued: number }>();
  let queued = 0;
  let busyCount = 0;
  let dropped = 0;
  let slices = 0;
  let scheduled: NodeJS.Immediate | null = null;
  let closed = false;

  const schedule = (): void => {
    if (scheduled === null && callers.size > 0 && !closed) scheduled = setImmediate(runSlice);
  };

  function runSlice(): void {
    scheduled = null;
    slices++;
    const deadline = now() + sliceMs;
    let timeUp = false;
    while (!timeUp && callers.size > 0) {
      const [caller, entry] = callers.entries().next().value as [
        string,
        { jobs: Job[]; queued: number },
      ];
      // A turn is TURN_TXS transactions of the caller, across as many of its jobs as it takes:
      // a client sending one transaction per call gets as much of the intake as a peer whose
      // gossip comes in batches.
      let turnLeft = TURN_TXS;
      while (!timeUp && turnLeft > 0 && entry.jobs.length > 0) {
        const job = entry.jobs[0] as Job;
        const { txs, results, origin } = job;
        while (results.length < txs.length && turnLeft > 0) {
          results.push(mempool.add(txs[results.length] as Uint8Array, origin));
          queued--;
          entry.queued--;
          turnLeft--;
          if (now() >= deadline) {
            timeUp = true;
            break;
          }
        }
        if (results.length === txs.length) {
          entry.jobs.shift();
          job.done?.(results);
        }
      }
      // The caller's turn ends: it goes last, or leaves with nothing queued.
      callers.delete(caller);
      if (entry.jobs.length > 0) callers.set(caller, entry);
    }
    schedule();
  }

  /** Why `count` more transactions of `caller` do not fit, or null if they do. */
  const overLimit = (caller: string, count: number): string | null => {
    if (queued + count > maxQueued) {
      return `${queued} transactions are waiting for admission (limit ${maxQueued})`;
    }
    const ofCaller = callers.get(caller)?.queued ?? 0;
    if (ofCaller + count > maxPerCaller) {
      return `${ofCaller} of this caller's transactions are waiting for admission (limit ${maxPerCaller} per caller)`;
    }
    return null;
  };

  const enqueue = (job: Job): void => {
    let entry = callers.get(job.caller);
    if (entry === undefined) {
      entry = { jobs: [], queued: 0 };
      callers.set(job.caller, entry);
    }
    entry.jobs.push(job);
    entry.queued += job.txs.length;
    queued += job.txs.length;
    schedule();
  };

  return {
    submit(txs, caller = 'local') {
      if (closed) return Promise.resolve(txs.map(() => busy('the node is stopping')));
      const over = overLimit(caller, txs.length);
      if (over !== null) {
        busyCount += txs.length;
        return Promise.resolve(txs.map(() => busy(`node is behind: ${over}; retry later`)));
      }
      return new Promise((resolve) => {
        enqueue({ txs: [...txs], origin: 'local', caller, results: [], done: resolve });
      });
    },
    addFromPeer(peer, txs) {
      if (closed || txs.length === 0) return;
      const caller = peerSubmitter(peer);
      if (overLimit(caller, txs.length) !== null) {
        dropped += txs.length;
        return;
      }
      enqueue({ txs: [...txs], origin: peer, caller, results: [], done: null });
    },
    candidates: () => mempool.candidates(),
    update: (height, committed) => mempool.update(height, committed),
    size: () => mempool.size(),
    readySize: () => mempool.readySize(),
    onAdmitted: (listener) => mempool.onAdmitted(() => listener()),
    stats: () => ({ queued, busy: busyCount, droppedFromPeers: dropped, slices }),
    close() {
      closed = true;
      if (scheduled !== null) clearImmediate(scheduled);
      scheduled = null;
      for (const { jobs } of callers.values()) {
        for (const job of jobs) {
          while (job.results.length < job.txs.length) {
            job.results.push(busy('the node is stopping'));
          }
          job.done?.(job.results);
        }
      }
      callers.clear();
      queued = 0;
    },
  };
}
