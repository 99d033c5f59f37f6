import type { MempoolPort } from '../consensus/driver/ports.js';
import type { Mempool, MempoolAddResult } from '../consensus/mempool.js';
import { MempoolRejectionCode } from '../consensus/mempool.js';

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
 * The queue is bounded (`maxQueued` transactions): beyond it, a client's transactions are refused
 * at once with `MEMPOOL_BUSY` (back-pressure: retry later) and a peer's batch is dropped (its
 * origin node keeps the transactions and proposes them itself). The same answer is given while
 * the mempool itself is above its client limit.
 */
export interface TxIntakeOptions {
  /** Most transactions waiting for admission (default 4,096). */
  readonly maxQueued?: number;
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
  /** Admits a client's transactions; one result per transaction, in order. */
  submit(txs: readonly Uint8Array[]): Promise<MempoolAddResult[]>;
  stats(): TxIntakeStats;
  /** Refuses what is queued (`MEMPOOL_BUSY`) and everything after. */
  close(): void;
}

export const DEFAULT_INTAKE_MAX_QUEUED = 4_096;
export const DEFAULT_INTAKE_SLICE_MS = 4;

interface Job {
  readonly txs: readonly Uint8Array[];
  /** 'local' for clients, else the peer's name. */
  readonly origin: string;
  readonly results: MempoolAddResult[];
  readonly done: ((results: MempoolAddResult[]) => void) | null;
}

function busy(message: string): MempoolAddResult {
  return { ok: false, code: MempoolRejectionCode.BUSY, message };
}

export function createTxIntake(mempool: Mempool, options: TxIntakeOptions = {}): TxIntake {
  const maxQueued = options.maxQueued ?? DEFAULT_INTAKE_MAX_QUEUED;
  const sliceMs = options.sliceMs ?? DEFAULT_INTAKE_SLICE_MS;
  const now = options.now ?? (() => performance.now());
  for (const [name, value] of [
    ['maxQueued', maxQueued],
    ['sliceMs', sliceMs],
  ] as const) {
    if (!(Number.isFinite(value) && value > 0)) {
      throw new RangeError(`tx intake option ${name} must be a positive number, got ${value}`);
    }
  }
  const jobs: Job[] = [];
  let queued = 0;
  let busyCount = 0;
  let dropped = 0;
  let slices = 0;
  let scheduled: NodeJS.Immediate | null = null;
  let closed = false;

  const schedule = (): void => {
    if (scheduled === null && jobs.length > 0 && !closed) scheduled = setImmediate(runSlice);
  };

  function runSlice(): void {
    scheduled = null;
    slices++;
    const deadline = now() + sliceMs;
    while (jobs.length > 0) {
      const job = jobs[0] as Job;
      const { txs, results, origin } = job;
      while (results.length < txs.length) {
        results.push(mempool.add(txs[results.length] as Uint8Array, origin));
        queued--;
        if (now() >= deadline) break;
      }
      if (results.length < txs.length) break;
      jobs.shift();
      job.done?.(results);
      if (now() >= deadline) break;
    }
    schedule();
  }

  const full = (count: number): boolean => queued + count > maxQueued;

  return {
    submit(txs) {
      if (closed) return Promise.resolve(txs.map(() => busy('the node is stopping')));
      if (full(txs.length)) {
        busyCount += txs.length;
        return Promise.resolve(
          txs.map(() =>
            busy(
              `node is behind: ${queued} transactions are waiting for admission (limit ${maxQueued}); retry later`,
            ),
          ),
        );
      }
      return new Promise((resolve) => {
        jobs.push({ txs: [...txs], origin: 'local', results: [], done: resolve });
        queued += txs.length;
        schedule();
      });
    },
    addFromPeer(peer, txs) {
      if (closed || txs.length === 0) return;
      if (full(txs.length)) {
        dropped += txs.length;
        return;
      }
      jobs.push({ txs: [...txs], origin: peer, results: [], done: null });
      queued += txs.length;
      schedule();
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
      for (const job of jobs.splice(0)) {
        while (job.results.length < job.txs.length) job.results.push(busy('the node is stopping'));
        job.done?.(job.results);
      }
      queued = 0;
    },
  };
}
