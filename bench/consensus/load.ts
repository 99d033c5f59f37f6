import { toHex } from '../../src/crypto/bytes.js';
import { decodeTransaction } from '../../src/consensus/application/index.js';
import {
  MAX_SUBMIT_BATCH,
  MAX_SUBMIT_BATCH_BYTES,
  type TxSubmitResult,
} from '../../src/consensus/net/index.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/index.js';
import { decodeBlock } from '../../src/consensus/wire.js';
import type { BenchCluster, CommitEvent } from './cluster.js';
import type { PreparedLoad } from './transactions.js';
import { describeLatency, percentile, percentileCountingMissing } from '../percentile.js';

/**
 * Open-loop load and commit tracking for the consensus benchmark.
 *
 * Submission: transaction i is due at `i / rate` seconds after the start, whether or not
 * earlier submissions have returned (open loop), and is handed to the `Submit` function (one
 * unary call, or a queue that sends batches: `unarySubmit`, `batchedSubmit`) as soon as it is
 * due, unless `maxInFlight` transactions are outstanding — then the client is the bottleneck and
 * the lag is reported. Sender s's transactions always go to node `s mod n` over connection
 * `s mod connections`. A transaction refused with `MEMPOOL_BUSY` (the node's back-pressure:
 * "retry later"), or whose call the node refused with `RESOURCE_EXHAUSTED` (too many calls in
 * flight from this client), is sent again after `RETRY_DELAY_MS`, up to `MAX_RETRIES` times, as a client
 * should; it stays in flight meanwhile and its latency counts from the first attempt. Without
 * the retry, the refused sequence would leave every later transaction of its sender waiting
 * for it, so one busy moment would end the sender's part of the step.
 *
 * Commits: the observer node's (node-1's) "block committed" log lines give each block's commit
 * time on the node's own clock; the block is then fetched (`getBlock`) and its transactions
 * hashed, so each transaction of the load is matched to the block, and the time, it was
 * committed in. Latency = that commit time − the wall-clock time it was handed to `Submit`
 * (a batching client's queueing time included). Latency percentiles are over every transaction
 * handed over in the window: one that never committed counts as +Infinity (`stepLatency`).
 */
export interface StepOptions {
  readonly rate: number;
  readonly warmupSeconds: number;
  readonly windowSeconds: number;
  /** After sending stops: how long to wait for the window's transactions to commit. */
  readonly drainSeconds: number;
  readonly maxInFlight: number;
}

export interface StepResult {
  readonly rate: number;
  /** Submissions started per second during the window. */
  readonly sentRate: number;
  /** Transactions of this step committed per second during the window (block-aligned). */
  readonly committedRate: number;
  /** Blocks the observer committed during the window. */
  readonly blocks: number;
  readonly meanBlockTxs: number;
  /** Highest round a window block was decided in: > 0 means rounds failed (timeouts). */
  readonly maxRound: number;
  /**
   * Latency (ms) of every transaction submitted in the window and committed; percentiles count
   * the `uncommitted` ones too (`stepLatency`).
   */
  readonly latencies: readonly number[];
  /**
   * Transactions submitted in the window that were not committed by the end of the drain
   * (refused at admission included).
   */
  readonly uncommitted: number;
  /** Refusals (by code) and call failures (by STOQ code). */
  readonly refusals: ReadonlyMap<string, number>;
  /** How far behind its schedule the client sent, 99th percentile (ms). */
  readonly lagP99Ms: number;
  /** Submissions sent again after a `MEMPOOL_BUSY` or `RESOURCE_EXHAUSTED` refusal. */
  readonly retries: number;
}

/**
 * Refusals a client answers by sending the transaction again a little later: the node's
 * back-pressure, and a STOQ server's per-peer limit on calls in flight.
 */
const RETRIED_CODES: ReadonlySet<string> = new Set([
  'MEMPOOL_BUSY',
  `call failed: ${StoqErrorCode.RESOURCE_EXHAUSTED}`,
]);
const RETRY_DELAY_MS = 200;
const MAX_RETRIES = 25;

export interface Submitted {
  readonly at: number;
  committedAt: number | null;
}

interface CommitWaiter {
  readonly pending: Set<string>;
  readonly heights: Map<string, number>;
  readonly resolve: () => void;
}

interface ObservedBlock {
  readonly height: number;
  readonly round: number;
  readonly time: number;
  /** Indices (into the current step's load) of the step's transactions in the block. */
  readonly stepTxs: number;
}

export { percentile };

/**
 * The p-th percentile of commit latency over every transaction submitted in the step's window,
 * one that never committed counted as +Infinity (percentileCountingMissing).
 */
export function stepLatency(
  result: Pick<StepResult, 'latencies' | 'uncommitted'>,
  p: number,
): number {
  return percentileCountingMissing(result.latencies, result.uncommitted, p);
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Follows the observer's commits and matches block contents to the running step. */
export class CommitTracker {
  private readonly observer: string;
  private fetching: Promise<void> = Promise.resolve();
  private lastLogged = 0;
  private lastProcessed = 0;
  private byHash = new Map<string, Submitted>();
  private blocks: ObservedBlock[] = [];
  private readonly waiters = new Set<CommitWaiter>();
  readonly fetchErrors: string[] = [];

  constructor(private readonly cluster: BenchCluster) {
    this.observer = cluster.names[0] as string;
    cluster.onCommit((event) => this.onCommit(event));
  }

  /** Starts matching commits to `hashes` (the next step's load); earlier blocks are forgotten. */
  track(hashes: ReadonlyMap<string, Submitted>): void {
    this.byHash = new Map(hashes);
    this.blocks = [];
  }

  observedBlocks(): readonly ObservedBlock[] {
    return this.blocks;
  }

  /**
   * Resolves with the height each of `hashes` (hex txHashes) was committed at, once the
   * observer's blocks hold all of them, independently of `track`; rejects after `timeoutMs`
   * naming how many are missing. Blocks matched before the call are not looked at.
   */
  waitForCommits(hashes: Iterable<string>, timeoutMs: number): Promise<Map<string, number>> {
    const pending = new Set(hashes);
    const heights = new Map<string, number>();
    if (pending.size === 0) return Promise.resolve(heights);
    return new Promise((resolve, reject) => {
      const waiter: CommitWaiter = {
        pending,
        heights,
        resolve: () => {
          clearTimeout(deadline);
          this.waiters.delete(waiter);
          resolve(heights);
        },
      };
      const deadline = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new Error(
            `${pending.size} of ${pending.size + heights.size} transactions not committed within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Waits until every block the observer logged so far has been fetched and matched. */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.lastProcessed < this.lastLogged && Date.now() < deadline) await pause(20);
  }

  private onCommit(event: CommitEvent): void {
    if (event.node !== this.observer || event.height <= this.lastLogged) return;
    this.lastLogged = event.height;
    const { height, round, time } = event;
    this.fetching = this.fetching.then(() => this.match(height, round, time));
  }

  private async match(height: number, round: number, time: number): Promise<void> {
    try {
      const synced = await this.cluster
        .client(0, this.observer)
        .getBlock(height, { deadlineMs: 30_000 });
      const block = decodeBlock(synced.block);
      let stepTxs = 0;
      for (const tx of block.transactions) {
        const hash = toHex(decodeTransaction(tx).txHash);
        for (const waiter of this.waiters) {
          if (waiter.pending.delete(hash)) waiter.heights.set(hash, height);
        }
        const submitted = this.byHash.get(hash);
        if (submitted === undefined) continue;
        stepTxs += 1;
        submitted.committedAt ??= time;
      }
      for (const waiter of [...this.waiters]) if (waiter.pending.size === 0) waiter.resolve();
      this.blocks.push({ height, round, time, stepTxs });
    } catch (error) {
      this.fetchErrors.push(`block ${height}: ${(error as Error).message}`);
    } finally {
      this.lastProcessed = Math.max(this.lastProcessed, height);
    }
  }
}

/** Submits one transaction; resolves with null when admitted, else a refusal/failure code. */
export type Submit = (tx: Uint8Array, node: string, connection: number) => Promise<string | null>;

const SUBMIT_DEADLINE_MS = 15_000;

function outcome(result: TxSubmitResult): string | null {
  return result.ok ? null : result.code;
}

function callFailure(error: unknown): string {
  return error instanceof StoqError ? `call failed: ${error.code}` : 'call failed';
}

/** One `submitTx` call per transaction. */
export function unarySubmit(cluster: BenchCluster): Submit {
  return async (tx, node, connection) => {
    try {
      return outcome(
        await cluster.client(connection, node).submitTx(tx, { deadlineMs: SUBMIT_DEADLINE_MS }),
      );
    } catch (error) {
      return callFailure(error);
    }
  };
}

/**
 * `submit`, sending a transaction again after `RETRY_DELAY_MS` while the node answers with a
 * retryable refusal (`RETRIED_CODES`), up to `MAX_RETRIES` times; resolves with null once
 * admitted, else the last refusal. `resends.count` counts the repeated submissions.
 */
export function resending(submit: Submit, resends: { count: number }): Submit {
  return async (tx, node, connection) => {
    for (let attempt = 0; ; attempt++) {
      const code = await submit(tx, node, connection);
      if (code === null || !RETRIED_CODES.has(code) || attempt === MAX_RETRIES) return code;
      resends.count += 1;
      await pause(RETRY_DELAY_MS);
    }
  };
}

export interface BatchOptions {
  /** Transactions per `submitTxs` call at most (1..MAX_SUBMIT_BATCH). */
  readonly maxBatch: number;
  /** How long after the first transaction is queued the batch is sent anyway (default 5 ms). */
  readonly flushMs?: number;
}

interface QueuedTx {
  readonly tx: Uint8Array;
  readonly resolve: (code: string | null) => void;
}

interface BatchQueue {
  readonly node: string;
  readonly connection: number;
  items: QueuedTx[];
  bytes: number;
  timer: NodeJS.Timeout | null;
}

/**
 * `submitTxs` calls: each transaction is queued per (node, connection) and a queue is sent as one
 * call when `maxBatch` transactions are queued (or the next would exceed MAX_SUBMIT_BATCH_BYTES),
 * or `flushMs` after its first one. Each transaction's promise resolves with its own result, so
 * the `Submit` contract — and the latency accounting of `runStep`, which starts when a
 * transaction is handed over — is the same as for unary calls; the queueing time is included.
 */
export function batchedSubmit(cluster: BenchCluster, options: BatchOptions): Submit {
  const { maxBatch, flushMs = 5 } = options;
  if (!(Number.isSafeInteger(maxBatch) && maxBatch >= 1 && maxBatch <= MAX_SUBMIT_BATCH)) {
    throw new RangeError(`maxBatch must be an integer in 1..${MAX_SUBMIT_BATCH}, got ${maxBatch}`);
  }
  if (!(Number.isFinite(flushMs) && flushMs >= 0)) {
    throw new RangeError(`flushMs must be a non-negative number, got ${flushMs}`);
  }
  const queues = new Map<string, BatchQueue>();

  const send = (queue: BatchQueue): void => {
    if (queue.timer !== null) clearTimeout(queue.timer);
    queue.timer = null;
    const items = queue.items;
    if (items.length === 0) return;
    queue.items = [];
    queue.bytes = 0;
    cluster
      .client(queue.connection, queue.node)
      .submitTxs(
        items.map((item) => item.tx),
        { deadlineMs: SUBMIT_DEADLINE_MS },
      )
      .then(
        (results) =>
          items.forEach((item, i) => item.resolve(outcome(results[i] as TxSubmitResult))),
        (error: unknown) => {
          const code = callFailure(error);
          for (const item of items) item.resolve(code);
        },
      );
  };

  return (tx, node, connection) =>
    new Promise((resolve) => {
      const slot = connection % cluster.connections;
      const key = `${node}/${slot}`;
      let queue = queues.get(key);
      if (queue === undefined) {
        queue = { node, connection: slot, items: [], bytes: 0, timer: null };
        queues.set(key, queue);
      }
      if (queue.bytes + tx.length > MAX_SUBMIT_BATCH_BYTES) send(queue);
      queue.items.push({ tx, resolve });
      queue.bytes += tx.length;
      if (queue.items.length >= maxBatch) {
        send(queue);
        return;
      }
      const waiting = queue;
      queue.timer ??= setTimeout(() => send(waiting), flushMs);
    });
}

export async function runStep(
  cluster: BenchCluster,
  tracker: CommitTracker,
  load: PreparedLoad,
  submit: Submit,
  options: StepOptions,
): Promise<StepResult> {
  const { rate, warmupSeconds, windowSeconds, maxInFlight } = options;
  const total = Math.min(load.txs.length, Math.floor(rate * (warmupSeconds + windowSeconds)));
  const submitted = new Map<string, Submitted>();
  const records: Submitted[] = new Array(total);
  for (let i = 0; i < total; i++) {
    const record: Submitted = { at: 0, committedAt: null };
    records[i] = record;
    submitted.set(load.hashes[i] as string, record);
  }
  tracker.track(submitted);
  const refusals = new Map<string, number>();
  const lags: number[] = [];
  const nodes = cluster.names;
  let inFlight = 0;
  let next = 0;
  const resends = { count: 0 };
  const resend = resending(submit, resends);
  const calls: Promise<void>[] = [];
  const send = async (tx: Uint8Array, node: string, sender: number): Promise<void> => {
    const code = await resend(tx, node, sender);
    if (code !== null) refusals.set(code, (refusals.get(code) ?? 0) + 1);
  };
  const start = performance.now();
  const wallStart = Date.now();
  const windowStart = wallStart + warmupSeconds * 1000;
  const windowEnd = windowStart + windowSeconds * 1000;
  while (next < total) {
    const elapsed = (performance.now() - start) / 1000;
    const due = Math.min(total, Math.floor(elapsed * rate) + 1);
    while (next < due && inFlight < maxInFlight) {
      const i = next++;
      const sender = load.senderOf(i);
      const record = records[i] as Submitted;
      (record as { at: number }).at = Date.now();
      lags.push(Math.max(0, (performance.now() - start) / 1000 - i / rate) * 1000);
      inFlight += 1;
      calls.push(
        send(load.txs[i] as Uint8Array, nodes[sender % nodes.length] as string, sender).then(() => {
          inFlight -= 1;
        }),
      );
    }
    // Transaction `next` is due at next / rate seconds.
    if (next < total) await pause(next < due ? 1 : Math.max(1, (next / rate - elapsed) * 1000));
  }
  await Promise.all(calls);
  const inWindow = records.filter((r) => r.at >= windowStart && r.at < windowEnd);
  const drainUntil = Date.now() + options.drainSeconds * 1000;
  while (Date.now() < drainUntil && inWindow.some((r) => r.committedAt === null)) {
    await tracker.settle(5_000);
    await pause(100);
  }
  await tracker.settle(10_000);

  const blocks = tracker
    .observedBlocks()
    .filter((block) => block.time >= windowStart && block.time < windowEnd);
  let committedRate = 0;
  const first = blocks[0];
  const last = blocks[blocks.length - 1];
  if (first !== undefined && last !== undefined && last.time > first.time) {
    // Block-aligned: the transactions of the blocks after the first, over the time between the
    // first and the last block, so a window never counts a partial block interval.
    const txs = blocks.slice(1).reduce((sum, block) => sum + block.stepTxs, 0);
    committedRate = txs / ((last.time - first.time) / 1000);
  } else if (first !== undefined) {
    committedRate = first.stepTxs / windowSeconds;
  }
  const latencies = inWindow
    .filter((r) => r.committedAt !== null)
    .map((r) => (r.committedAt as number) - r.at);
  return {
    rate,
    sentRate: inWindow.length / windowSeconds,
    committedRate,
    blocks: blocks.length,
    meanBlockTxs:
      blocks.length === 0 ? 0 : blocks.reduce((sum, b) => sum + b.stepTxs, 0) / blocks.length,
    maxRound: blocks.reduce((max, block) => Math.max(max, block.round), 0),
    latencies,
    uncommitted: inWindow.length - latencies.length,
    refusals,
    lagP99Ms: percentile(lags, 99),
    retries: resends.count,
  };
}

/** A step sustains its rate if both what was sent and what was committed are within 5 %. */
export function sustains(result: StepResult, tolerance = 0.05): boolean {
  const floor = result.rate * (1 - tolerance);
  return result.sentRate >= floor && result.committedRate >= floor;
}

export function describeStep(result: StepResult): string {
  const refusals = [...result.refusals].map(([code, n]) => `${n}x ${code}`).join(', ');
  return (
    `offered ${result.rate.toFixed(0)}/s: sent ${result.sentRate.toFixed(0)}/s, committed ` +
    `${result.committedRate.toFixed(0)}/s in ${result.blocks} blocks (mean ${result.meanBlockTxs.toFixed(0)} txs, ` +
    `highest round ${result.maxRound}), ` +
    `p50 ${describeLatency(stepLatency(result, 50))}, p99 ${describeLatency(stepLatency(result, 99))}, ` +
    `uncommitted ${result.uncommitted}, client lag p99 ${result.lagP99Ms.toFixed(0)} ms` +
    (result.retries === 0
      ? ''
      : `, ${result.retries} resent after MEMPOOL_BUSY or RESOURCE_EXHAUSTED`) +
    (refusals === '' ? '' : `, refused: ${refusals}`)
  );
}
