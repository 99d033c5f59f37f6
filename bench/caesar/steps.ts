import type { StepResult } from '../consensus/load.js';
import {
  KvSteps,
  drainMempools,
  measureStep,
  sendersFor,
  stepCount,
  type StepDeps,
} from '../consensus/steps.js';
import { prepareLoad } from '../consensus/transactions.js';
import { AdmissionLog } from './admission.js';
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
export interface Workload {
  readonly name: 'kv' | 'caesar';
  run(rate: number, label: string): Promise<StepResult>;
  /** Mean encoded transaction size of the last step, bytes. */
  readonly meanBytes: number;
}

const BUILDER = new URL('./transfer-worker.ts', import.meta.url);

export class KvWorkload extends KvSteps implements Workload {
  readonly name = 'kv';
  constructor(deps: StepDeps) {
    super(deps, { tag: 'kv', prefix: 'kv ' });
  }
}

export class CaesarWorkload implements Workload {
  readonly name = 'caesar';
  meanBytes = 0;
  /**
   * Transfers finally refused at admission over all steps, by their last answer's code (never
   * executed, no sequence used); one admitted on a resend is not counted.
   */
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
    const admission = new AdmissionLog((tx) => indexOf.get(tx));
    // runStep has every answer, resends included, before it returns: the last ones are final.
    const result = await measureStep(this.deps, load, rate, admission.wrap(this.deps.submit));
    this.book.submitted(
      admission.admitted().map((i) => [load.hashes[i] as string, this.planned(params, i)] as const),
    );
    for (const [code, n] of admission.refusals()) {
      this.admissionRefusals.set(code, (this.admissionRefusals.get(code) ?? 0) + n);
    }
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
