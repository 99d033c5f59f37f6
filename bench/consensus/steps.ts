/**
 * What the consensus and Caesar benchmarks share around one measurement step: the batched
 * submission settings, senders per offered rate, draining the mempools between steps, and a step
 * of pre-built `kv` set transactions measured with `runStep` and reported with the 5 % rule.
 */
import { loadavg } from 'node:os';
import type { BenchContext } from '../report.js';
import type { BenchCluster } from './cluster.js';
import {
  batchedSubmit,
  describeStep,
  runStep,
  sustains,
  type CommitTracker,
  type StepResult,
  type Submit,
} from './load.js';
import { prepareLoad, type PreparedLoad } from './transactions.js';

/**
 * Emits the machine's load average at the start and returns a progress function that stamps
 * each line with the seconds since then.
 */
export function startSuite(harness: BenchContext): (message: string) => void {
  const started = performance.now();
  harness.emit({
    metric: 'machine_loadavg_1m_at_start',
    value: loadavg()[0] ?? 0,
    unit: 'load',
    note: 'other processes share this machine; read the numbers with it',
  });
  return (message) =>
    harness.progress(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${message}`);
}

/** Up to 1,024 transactions in flight. */
const MAX_IN_FLIGHT = 1_024;
/** Transactions per `submitTxs` call at most. */
const SUBMIT_BATCH = 256;
/** A batch is sent this long after its first transaction was queued, if not full before. */
const SUBMIT_FLUSH_MS = 5;
export const BATCHING = `batched submission: up to ${SUBMIT_BATCH} txs per submitTxs call, sent ${SUBMIT_FLUSH_MS} ms after the first is queued if not full`;

/** The benchmarks' batching client (see BATCHING). */
export function batched(cluster: BenchCluster): Submit {
  return batchedSubmit(cluster, { maxBatch: SUBMIT_BATCH, flushMs: SUBMIT_FLUSH_MS });
}

/** At most ~8 s of one sender's transactions pending: below the router's sequence lead (64). */
export function sendersFor(rate: number): number {
  return Math.min(4_096, Math.max(64, Math.ceil(rate / 8)));
}

export function fixed(value: number, digits = 0): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/** Waits until no node has pending transactions (or `ms` passes); returns the largest left. */
export async function drainMempools(cluster: BenchCluster, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  let largest = Number.POSITIVE_INFINITY;
  while (Date.now() < deadline) {
    const sizes = await Promise.all(
      cluster.names.map(async (node) => {
        // A node too busy to answer counts as not drained yet (the loop is bounded by `ms`).
        const status = await cluster
          .client(0, node)
          .status({ deadlineMs: 5_000 })
          .catch(() => null);
        if (status === null) return Number.POSITIVE_INFINITY;
        return typeof status.mempoolSize === 'number' ? status.mempoolSize : 0;
      }),
    );
    largest = Math.max(...sizes);
    if (largest === 0) return 0;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return largest;
}

export interface StepTiming {
  readonly warmupSeconds: number;
  readonly windowSeconds: number;
  readonly drainSeconds: number;
}

export interface StepDeps {
  readonly cluster: BenchCluster;
  readonly tracker: CommitTracker;
  readonly submit: Submit;
  readonly timing: StepTiming;
  readonly stampDifficulty: number;
  readonly progress: (message: string) => void;
}

/** Transactions a step at `rate` offers: its warm-up and its window. */
export function stepCount(rate: number, timing: StepTiming): number {
  return Math.ceil(rate * (timing.warmupSeconds + timing.windowSeconds));
}

/**
 * Drains the mempools (up to 30 s), then runs `load` open loop at `rate` through `submit` and
 * reports whether it sustained.
 */
export async function measureStep(
  deps: StepDeps,
  load: PreparedLoad,
  rate: number,
  submit: Submit = deps.submit,
): Promise<StepResult> {
  const left = await drainMempools(deps.cluster, 30_000);
  if (left > 0) {
    deps.progress(
      Number.isFinite(left)
        ? `  mempools still hold ${left} transactions`
        : '  a node did not answer its status while draining',
    );
  }
  const { warmupSeconds, windowSeconds, drainSeconds } = deps.timing;
  const result = await runStep(deps.cluster, deps.tracker, load, submit, {
    rate,
    warmupSeconds,
    windowSeconds,
    drainSeconds,
    maxInFlight: MAX_IN_FLIGHT,
  });
  deps.progress(`  ${sustains(result) ? 'sustained' : 'NOT sustained'}: ${describeStep(result)}`);
  return result;
}

/**
 * Steps of small `kv` set transactions, freshly built for each step from fresh senders (sequence
 * 0 on); `tag` starts each step's sender labels and `prefix` (empty, or a name and a space)
 * comes before the rate in the progress lines.
 */
export class KvSteps {
  /** Mean encoded transaction size of the last step, bytes. */
  meanBytes = 0;
  private step = 0;
  constructor(
    private readonly deps: StepDeps,
    private readonly naming: { readonly tag: string; readonly prefix: string },
  ) {}

  async run(rate: number, label: string): Promise<StepResult> {
    const { cluster, timing, progress } = this.deps;
    const count = stepCount(rate, timing);
    const senders = sendersFor(rate);
    const built = performance.now();
    const load = await prepareLoad({
      chainId: cluster.genesis.chainId,
      stampDifficulty: this.deps.stampDifficulty,
      senders,
      count,
      tag: `${this.naming.tag}${this.step++}`,
    });
    this.meanBytes = load.meanBytes;
    progress(
      `${label}: ${this.naming.prefix}${rate.toFixed(0)} tx/s — built ${count} txs from ${senders} senders in ` +
        `${((performance.now() - built) / 1000).toFixed(1)} s`,
    );
    return measureStep(this.deps, load, rate);
  }
}
