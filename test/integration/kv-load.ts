import type { KeyObject } from 'node:crypto';
import { toHex } from '../../src/crypto/bytes.js';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import {
  SEQUENCE_QUERY,
  buildTransaction,
  decodeSequence,
} from '../../src/consensus/application/index.js';
import { KV_MODULE_NAME, kvSet } from '../../src/kv/index.js';
import type { TestCluster } from './cluster-harness.js';

/** Refusals that only say "this transaction is (being) committed already". */
export const BENIGN_REFUSALS: ReadonlySet<string> = new Set([
  'TX_SEQUENCE_USED',
  'TX_ALREADY_COMMITTED',
  'MEMPOOL_SEQUENCE_TAKEN',
]);

export interface SubmittedTx {
  readonly sender: string;
  readonly sequence: number;
  readonly txHash: string;
  readonly key: string;
  readonly value: string;
  /** Set once some node's state shows the sender's sequence past this transaction. */
  confirmed: boolean;
}

/**
 * A steady, bounded load of signed, stamped `kv` set transactions, as a careful client sends
 * them: each sender has one transaction in flight; it goes to a running node (round robin over
 * the running ones), and counts as committed once a node's proven `acct/sequence` for the
 * sender has moved past it. A transaction whose node died or that stays uncommitted for
 * `resubmitMs` is submitted again — the same bytes, to another node — so a crash never loses
 * an acknowledged transaction, and the exactly-once check (every txHash in exactly one block)
 * means something.
 */
export class KvLoad {
  readonly txs: SubmittedTx[] = [];
  /** Refusals other than BENIGN_REFUSALS, and other surprises. */
  readonly problems: string[] = [];
  private stopped = false;
  private loops: Promise<void>[] = [];
  private turn = 0;

  constructor(
    private readonly cluster: TestCluster,
    private readonly options: {
      readonly senders: number;
      /** Pause between a commit and the sender's next transaction (bounds the load). */
      readonly pauseMs: number;
      readonly resubmitMs: number;
      readonly prefix: string;
    },
  ) {}

  start(): void {
    for (let i = 0; i < this.options.senders; i++) {
      this.loops.push(this.run(generateEd25519KeyPair().privateKey, i));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  get confirmed(): number {
    return this.txs.filter((tx) => tx.confirmed).length;
  }

  /** Submits `tx` to `node`; false when the node could not be reached. */
  async submitTo(node: string, bytes: Uint8Array): Promise<boolean> {
    try {
      const result = await this.cluster.client(node).submitTx(bytes, { deadlineMs: 2_000 });
      if (!result.ok && !BENIGN_REFUSALS.has(result.code)) {
        this.problems.push(`${node} refused a transaction: ${result.code}: ${result.message}`);
      }
      return true;
    } catch {
      return false;
    }
  }

  private nextNode(): string | undefined {
    const live = this.cluster.live();
    if (live.length === 0) return undefined;
    this.turn = (this.turn + 1) % live.length;
    return live[this.turn];
  }

  private async run(privateKey: KeyObject, index: number): Promise<void> {
    const sender = ed25519RawPublicKey(privateKey);
    for (let sequence = 0; !this.stopped; sequence++) {
      const key = `${this.options.prefix}-${index}-${sequence}`;
      const value = `v${sequence}`;
      const built = buildTransaction({
        chainId: this.cluster.genesis.chainId,
        privateKey,
        sequence,
        module: KV_MODULE_NAME,
        body: kvSet(key, value),
        stampDifficulty: this.cluster.genesis.proof.work.stampDifficulty,
      });
      const tx: SubmittedTx = {
        sender: toHex(sender),
        sequence,
        txHash: toHex(built.txHash),
        key,
        value,
        confirmed: false,
      };
      this.txs.push(tx);
      while (!this.stopped && !tx.confirmed) {
        const node = this.nextNode();
        if (node === undefined || !(await this.submitTo(node, built.bytes))) {
          await pause(100);
          continue;
        }
        tx.confirmed = await this.waitCommitted(node, sender, sequence + 1);
      }
      if (!this.stopped) await pause(this.options.pauseMs);
    }
  }

  /** Polls `node`'s proven sequence of `sender` until it reaches `next`, dies, or time is up. */
  private async waitCommitted(node: string, sender: Uint8Array, next: number): Promise<boolean> {
    const deadline = Date.now() + this.options.resubmitMs;
    while (!this.stopped && Date.now() < deadline && this.cluster.running(node)) {
      try {
        const answer = await this.cluster
          .client(node)
          .query({ path: SEQUENCE_QUERY, data: sender }, { deadlineMs: 2_000 });
        if (decodeSequence(answer.value) >= next) return true;
      } catch {
        return false;
      }
      await pause(100);
    }
    return false;
  }
}

/** The next sequence of `sender` (hex) on `node`, from its proven state. */
export async function sequenceOn(
  cluster: TestCluster,
  node: string,
  sender: string,
  height?: number,
): Promise<{ next: number; stateRoot: string; height: number | null }> {
  const answer = await cluster
    .client(node)
    .query(
      { path: SEQUENCE_QUERY, data: Buffer.from(sender, 'hex'), ...(height ? { height } : {}) },
      { deadlineMs: 3_000 },
    );
  return {
    next: decodeSequence(answer.value),
    stateRoot: toHex(answer.stateRoot),
    height: answer.height,
  };
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
