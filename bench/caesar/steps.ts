import type { BenchCluster } from '../consensus/cluster.js';
import {
  describeStep,
  runStep,
  sustains,
  type CommitTracker,
  type StepResult,
  type Submit,
} from '../consensus/load.js';
import { prepareLoad, type PreparedLoad } from '../consensus/transactions.js';
import { freshSeeds, walletFromSeed, type Funder } from './funding.js';
import type { LedgerBook, PlannedTransfer } from './ledger-book.js';
import { fundingFor, recipientOf, type TransferParams } from './transfer-plan.js';

/**
 * One measurement step of each workload at an offered rate, on the consensus benchmark's
 * machinery (prepareLoad, runStep, the 5 % rule): `kv` runs the consensus benchmark's small kv
 * set transactions; `caesar` runs transfers between freshly funded senders. Both use fresh
 * senders from sequence 0 in every step, so a step never depends on what an earlier one left
 * behind — for Caesar that matters because a transaction refused at admission (MEMPOOL_BUSY
 * under overload) leaves a sequence gap that strands its sender's later transactions.
 */
export interface StepTiming {
  readonly warmupSeconds: number;
  readonly windowSeconds: number;
  readonly drainSeconds: number;
}

export interface Workload {
  readonly name: 'kv' | 'caesar';
  run(rate: number, label: string): Promise<StepResult>;
  /** Mean encoded transaction size of the last step, bytes. */
  readonly meanBytes: number;
}

/** Up to 1,024 transactions in flight, as in the consensus benchmark. */
const MAX_IN_FLIGHT = 1_024;
const BUILDER = new URL('./transfer-worker.ts', import.meta.url);

/** As the consensus benchmark: at most ~8 s of a sender's transactions pending (lead 64). */
export function sendersFor(rate: number): number {
  return Math.min(4_096, Math.max(64, Math.ceil(rate / 8)));
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

interface StepDeps {
  readonly cluster: BenchCluster;
  readonly tracker: CommitTracker;
  readonly submit: Submit;
  readonly timing: StepTiming;
  readonly stampDifficulty: number;
  readonly progress: (message: string) => void;
}

async function measure(
  deps: StepDeps,
  load: PreparedLoad,
  rate: number,
  submit: Submit,
): Promise<StepResult> {
  const left = await drainMempools(deps.cluster, 30_000);
  if (left > 0) {
    deps.progress(
      Number.isFinite(left)
        ? `  mempools still hold ${left} transactions`
        : '  a node did not answer its status while draining',
    );
  }
  const result = await runStep(deps.cluster, deps.tracker, load, submit, {
    rate,
    ...deps.timing,
    maxInFlight: MAX_IN_FLIGHT,
  });
  deps.progress(`  ${sustains(result) ? 'sustained' : 'NOT sustained'}: ${describeStep(result)}`);
  return result;
}

function stepCount(rate: number, timing: StepTiming): number {
  return Math.ceil(rate * (timing.warmupSeconds + timing.windowSeconds));
}

export class KvWorkload implements Workload {
  readonly name = 'kv';
  meanBytes = 0;
  private step = 0;
  constructor(private readonly deps: StepDeps) {}

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
      tag: `kv${this.step++}`,
    });
    this.meanBytes = load.meanBytes;
    progress(
      `${label}: kv ${rate.toFixed(0)} tx/s — built ${count} txs from ${senders} senders in ` +
        `${((performance.now() - built) / 1000).toFixed(1)} s`,
    );
    return measure(this.deps, load, rate, this.deps.submit);
  }
}

export class CaesarWorkload implements Workload {
  readonly name = 'caesar';
  meanBytes = 0;
  /** Transfers refused at admission over all steps, by code (never executed, no sequence used). */
  readonly admissionRefusals = new Map<string, number>();
  constructor(
    private readonly deps: StepDeps,
    private readonly funder: Funder,
    private readonly book: LedgerBook,
    private readonly transfer: { readonly amount: bigint; readonly fee: bigint },
  ) {}

  async run(rate: number, label: string): Promise<StepResult> {
    const { cluster, timing, progress } = this.deps;
    const count = stepCount(rate, timing);
    const senders = sendersFor(rate);
    const wallets = freshSeeds(senders).map((seed) => ({ seed, ...walletFromSeed(seed) }));
    const params: TransferParams = {
      addresses: wallets.map((wallet) => wallet.address),
      ...this.transfer,
    };
    const built = performance.now();
    const load = await prepareLoad({
      chainId: cluster.genesis.chainId,
      stampDifficulty: this.deps.stampDifficulty,
      senders,
      count,
      tag: 'caesar',
      seeds: wallets.map((wallet) => wallet.seed),
      builder: BUILDER,
      params,
    });
    this.meanBytes = load.meanBytes;
    const buildSeconds = (performance.now() - built) / 1000;
    const funded = performance.now();
    const perSender = Math.ceil(count / senders);
    await drainMempools(cluster, 30_000);
    await this.funder.fund(
      params.addresses.map((to) => ({ to, amount: fundingFor(perSender, params) })),
    );
    progress(
      `${label}: caesar ${rate.toFixed(0)} transfers/s — built ${count} transfers from ${senders} ` +
        `senders in ${buildSeconds.toFixed(1)} s, funded them in ` +
        `${((performance.now() - funded) / 1000).toFixed(1)} s`,
    );

    const indexOf = new Map<Uint8Array, number>(load.txs.map((tx, i) => [tx, i]));
    const admitted: (readonly [string, PlannedTransfer])[] = [];
    const submit: Submit = async (tx, node, connection) => {
      const code = await this.deps.submit(tx, node, connection);
      const i = indexOf.get(tx);
      if (i === undefined) throw new Error('a transfer the step did not build was submitted');
      if (code === null) admitted.push([load.hashes[i] as string, this.planned(params, i)]);
      else this.admissionRefusals.set(code, (this.admissionRefusals.get(code) ?? 0) + 1);
      return code;
    };
    const result = await measure(this.deps, load, rate, submit);
    this.book.submitted(admitted);
    await drainMempools(cluster, 30_000);
    const outcome = await this.book.resolve(
      (index) => cluster.client(index, cluster.names[index % cluster.names.length] as string),
      false,
    );
    progress(
      `  ledger: ${this.book.applied} transfers applied so far, ${outcome.refused} refused by ` +
        `the ledger in this step, ${outcome.unresolved} admitted but not committed yet`,
    );
    return result;
  }

  private planned(params: TransferParams, i: number): PlannedTransfer {
    const senders = params.addresses.length;
    const sender = i % senders;
    const sequence = Math.floor(i / senders);
    return {
      from: params.addresses[sender] as Uint8Array,
      to: params.addresses[recipientOf(sender, sequence, senders)] as Uint8Array,
      amount: params.amount,
      fee: params.fee,
    };
  }
}
