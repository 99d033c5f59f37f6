import type { KeyObject } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { toHex } from '../../src/crypto/bytes.js';
import { ed25519PrivateKeyFromSeed, ed25519RawPublicKey } from '../../src/crypto/ed25519.js';
import {
  SEQUENCE_QUERY,
  buildTransaction,
  decodeSequence,
} from '../../src/consensus/application/index.js';
import { MAX_SUBMIT_BATCH } from '../../src/consensus/net/index.js';
import { ed25519Address } from '../../src/caesar/address.js';
import { CAESAR_MODULE_NAME } from '../../src/caesar/state.js';
import { encodeTransfer } from '../../src/caesar/transfer.js';
import { readWalletKey } from '../../src/node/wallet.js';
import type { BenchCluster } from '../consensus/cluster.js';
import type { CommitTracker } from '../consensus/load.js';
import type { LedgerBook, PlannedTransfer } from './ledger-book.js';

/**
 * Funding the benchmark's senders with real transfers: the treasury (its key from the genesis
 * ceremony, `operator/treasury.key`) pays a set of distributor accounts once; before each step
 * the distributors pay that step's fresh senders. Each round is submitted, then awaited on the
 * observer's commits (CommitTracker.waitForCommits), and every transfer's result code is read
 * back: funding that is not applied stops the benchmark.
 */
export interface BenchWallet {
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
  readonly address: Uint8Array;
  /** The next sequence number this wallet signs with. */
  sequence: number;
}

export interface Payment {
  readonly to: Uint8Array;
  readonly amount: bigint;
}

/** The router admits a sender's transactions at most this far ahead of its next sequence. */
const SEQUENCE_LEAD = 64;
/** Refusals that mean "try again": the node's intake is full, or the call did not get through. */
const RETRYABLE = /^(MEMPOOL_BUSY|MEMPOOL_FULL|call failed)/;
const SUBMIT_ATTEMPTS = 40;
const RETRY_PAUSE_MS = 250;
const COMMIT_TIMEOUT_MS = 60_000;
const CALL_DEADLINE_MS = 15_000;

export function walletFromSeed(seed: Uint8Array, sequence = 0): BenchWallet {
  const privateKey = ed25519PrivateKeyFromSeed(seed);
  const publicKey = ed25519RawPublicKey(privateKey);
  return { privateKey, publicKey, address: ed25519Address(publicKey), sequence };
}

export function freshSeeds(count: number): Uint8Array[] {
  return Array.from({ length: count }, () => new Uint8Array(randomBytes(32)));
}

interface SignedPayment {
  readonly payer: number;
  readonly bytes: Uint8Array;
  readonly hash: string;
  readonly transfer: PlannedTransfer;
}

export class Funder {
  private constructor(
    private readonly cluster: BenchCluster,
    private readonly tracker: CommitTracker,
    private readonly book: LedgerBook,
    private readonly stampDifficulty: number,
    private readonly distributors: readonly BenchWallet[],
    private readonly fee: bigint,
  ) {}

  /** Pays `count` fresh distributor accounts `each` base units from the treasury. */
  static async create(options: {
    readonly cluster: BenchCluster;
    readonly tracker: CommitTracker;
    readonly book: LedgerBook;
    readonly stampDifficulty: number;
    readonly distributors: number;
    readonly each: bigint;
    readonly fee: bigint;
  }): Promise<Funder> {
    const { cluster } = options;
    const ledger = cluster.layout.ledger;
    if (ledger === null)
      throw new Error('the benchmark cluster has no Caesar ledger in its genesis');
    const treasuryKey = await readWalletKey(ledger.treasuryKeyFile);
    const answer = await cluster
      .client(0, cluster.names[0] as string)
      .query(
        { path: SEQUENCE_QUERY, data: treasuryKey.publicKey },
        { deadlineMs: CALL_DEADLINE_MS },
      );
    const treasury: BenchWallet = { ...treasuryKey, sequence: decodeSequence(answer.value) };
    const distributors = freshSeeds(options.distributors).map((seed) => walletFromSeed(seed));
    const funder = new Funder(
      cluster,
      options.tracker,
      options.book,
      options.stampDifficulty,
      distributors,
      options.fee,
    );
    await funder.pay(
      [treasury],
      distributors.map((wallet) => ({ to: wallet.address, amount: options.each })),
    );
    return funder;
  }

  /** Pays each of `payments` from the distributors (payment j from distributor j mod count). */
  async fund(payments: readonly Payment[]): Promise<void> {
    await this.pay(this.distributors, payments);
  }

  /**
   * Payment j comes from payer j mod payers. Rounds keep each payer within the router's
   * sequence lead; each round is committed and checked before the next.
   */
  private async pay(payers: readonly BenchWallet[], payments: readonly Payment[]): Promise<void> {
    const perRound = payers.length * SEQUENCE_LEAD;
    for (let start = 0; start < payments.length; start += perRound) {
      const round = payments.slice(start, start + perRound);
      const signed = round.map((payment, j) => {
        const payer = (start + j) % payers.length;
        const wallet = payers[payer] as BenchWallet;
        const built = buildTransaction({
          chainId: this.cluster.genesis.chainId,
          privateKey: wallet.privateKey,
          sequence: wallet.sequence++,
          module: CAESAR_MODULE_NAME,
          body: encodeTransfer({ to: payment.to, amount: payment.amount, fee: this.fee }),
          stampDifficulty: this.stampDifficulty,
        });
        const transfer: PlannedTransfer = {
          from: wallet.address,
          to: payment.to,
          amount: payment.amount,
          fee: this.fee,
        };
        return { payer, bytes: built.bytes, hash: toHex(built.txHash), transfer };
      });
      await this.submitRound(signed);
    }
  }

  private async submitRound(signed: readonly SignedPayment[]): Promise<void> {
    const hashes = signed.map((payment) => payment.hash);
    const committed = this.tracker.waitForCommits(hashes, COMMIT_TIMEOUT_MS);
    // A rejection before it is awaited must not surface as an unhandled one.
    committed.catch(() => undefined);
    const names = this.cluster.names;
    const byNode = new Map<string, SignedPayment[]>();
    for (const payment of signed) {
      const node = names[payment.payer % names.length] as string;
      byNode.set(node, [...(byNode.get(node) ?? []), payment]);
    }
    await Promise.all(
      [...byNode].map(async ([node, payments]) => {
        for (let i = 0; i < payments.length; i += MAX_SUBMIT_BATCH) {
          await this.submitWithRetries(node, payments.slice(i, i + MAX_SUBMIT_BATCH));
        }
      }),
    );
    this.book.submitted(signed.map((payment) => [payment.hash, payment.transfer] as const));
    await committed;
    const clients = (index: number) =>
      this.cluster.client(index, names[index % names.length] as string);
    const outcome = await this.book.resolve(clients, false, hashes);
    if (outcome.refused > 0 || outcome.unresolved > 0) {
      throw new Error(
        `funding: ${outcome.refused} of ${signed.length} transfers were refused by the ledger and ` +
          `${outcome.unresolved} have no result (${[...this.book.refused].map(([code, n]) => `${n}x ${code}`).join(', ')})`,
      );
    }
  }

  private async submitWithRetries(node: string, payments: readonly SignedPayment[]): Promise<void> {
    let waiting = payments;
    for (let attempt = 1; waiting.length > 0; attempt++) {
      let results: { ok: boolean; code?: string; message?: string }[];
      try {
        results = await this.cluster.client(0, node).submitTxs(
          waiting.map((payment) => payment.bytes),
          { deadlineMs: CALL_DEADLINE_MS },
        );
      } catch (error) {
        results = waiting.map(() => ({ ok: false, code: 'call failed', message: String(error) }));
      }
      const again: SignedPayment[] = [];
      results.forEach((result, i) => {
        if (result.ok) return;
        const code = result.code ?? 'unknown';
        // A retried call the node had in fact carried out: the transfer is in or already done.
        if (attempt > 1 && code === 'TX_ALREADY_COMMITTED') return;
        if (!RETRYABLE.test(code) || attempt >= SUBMIT_ATTEMPTS) {
          throw new Error(`funding: ${node} refused a transfer: ${code}: ${result.message ?? ''}`);
        }
        again.push(waiting[i] as SignedPayment);
      });
      waiting = again;
      if (waiting.length > 0) await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
    }
  }
}
