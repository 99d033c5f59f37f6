import type { KeyObject } from 'node:crypto';
import { toHex } from '../../src/crypto/bytes.js';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import {
  SEQUENCE_QUERY,
  buildTransaction,
  decodeSequence,
} from '../../src/consensus/application/index.js';
import { KV_MODULE_NAME, kvSet } from '../../src/kv/index.js';
import { eventually, type TestCluster } from './cluster-harness.js';

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

export interface KvLoadOptions {
  readonly senders: number;
  /** Pause between a commit and the sender's next transaction: the pacing of the load. */
  readonly pauseMs: number;
  /** How long one submission may stay uncommitted before it is sent again, to another node. */
  readonly resubmitMs: number;
  /** Each sender sends at most this many transactions (sequences 0 .. max - 1). */
  readonly maxTxsPerSender: number;
  /** Nothing is sent or resent once this long has passed since `start()`. */
  readonly maxDurationMs: number;
  readonly prefix: string;
}

/**
 * A steady, bounded load of signed, stamped `kv` set transactions, as a careful client sends
 * them: each sender has one transaction in flight; it goes to a running node (round robin over
 * the running ones), and counts as committed once a node's proven `acct/sequence` for the
 * sender has moved past it. A transaction whose node died or that stays uncommitted for
 * `resubmitMs` is submitted again — the same bytes, to another node — so a crash never loses
 * an acknowledged transaction, and the exactly-once check (every txHash in exactly one block)
 * means something.
 *
 * Waiting is driven by the cluster's events (`eventually`: a node logs a commit, becomes ready
 * or exits); `resubmitMs` is only the deadline of one attempt. The one other timer is the
 * pacing, `pauseMs` after each commit, and the load ends by itself after `maxTxsPerSender`
 * transactions per sender or `maxDurationMs`, whichever comes first, or at `stop()`.
 */
export class KvLoad {
  readonly txs: SubmittedTx[] = [];
  /** Refusals other than BENIGN_REFUSALS, and other surprises. */
  readonly problems: string[] = [];
  private stopped = false;
  private readonly stopping: Promise<void>;
  private signalStop: () => void = () => undefined;
  private loops: Promise<void>[] = [];
  private turn = 0;
  private endsAt = 0;

  constructor(
    private readonly cluster: TestCluster,
    private readonly options: KvLoadOptions,
  ) {
    this.stopping = new Promise((resolve) => {
      this.signalStop = resolve;
    });
  }

  start(): void {
    this.endsAt = Date.now() + this.options.maxDurationMs;
    for (let i = 0; i < this.options.senders; i++) {
      this.loops.push(this.run(generateEd25519KeyPair().privateKey, i));
    }
  }

  /** Ends every sender's loop, interrupting its current wait, and waits for them to return. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.signalStop();
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

  /** Still sending: not stopped and within `maxDurationMs` of the start. */
  private get active(): boolean {
    return !this.stopped && Date.now() < this.endsAt;
  }

  private nextNode(): string | undefined {
    const live = this.cluster.live();
    if (live.length === 0) return undefined;
    this.turn = (this.turn + 1) % live.length;
    return live[this.turn];
  }

  private async run(privateKey: KeyObject, index: number): Promise<void> {
    const sender = ed25519RawPublicKey(privateKey);
    for (let sequence = 0; sequence < this.options.maxTxsPerSender && this.active; sequence++) {
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
      while (this.active && !tx.confirmed) {
        const node = await this.submitSomewhere(built.bytes);
        if (node !== undefined) tx.confirmed = await this.waitCommitted(node, sender, sequence + 1);
      }
      if (tx.confirmed && this.active) await pause(this.options.pauseMs);
    }
  }

  /**
   * Sends `bytes` to the next running node that takes them, trying again on each cluster event
   * (a node that restarts, exits or commits) while none does; undefined when none took them
   * within `resubmitMs` or the load stopped.
   */
  private async submitSomewhere(bytes: Uint8Array): Promise<string | undefined> {
    return this.untilStopped(
      eventually('a running node accepts the transaction', this.options.resubmitMs, async () => {
        if (this.stopped) return null;
        const node = this.nextNode();
        return node !== undefined && (await this.submitTo(node, bytes)) ? node : undefined;
      }),
      null,
    ).then((node) => node ?? undefined);
  }

  /**
   * Whether `node`'s proven sequence of `sender` reaches `next`, checked now and again each
   * time a node logs a commit; false as soon as `node` exits or cannot answer, or after
   * `resubmitMs`, or when the load stops.
   */
  private waitCommitted(node: string, sender: Uint8Array, next: number): Promise<boolean> {
    return this.untilStopped(
      eventually(`${node} commits sequence ${next - 1}`, this.options.resubmitMs, async () => {
        if (this.stopped || !this.cluster.running(node)) return false;
        try {
          const answer = await this.cluster
            .client(node)
            .query({ path: SEQUENCE_QUERY, data: sender }, { deadlineMs: 2_000 });
          return decodeSequence(answer.value) >= next ? true : undefined;
        } catch {
          return false;
        }
      }),
      false,
    );
  }

  /**
   * `wait`'s value, or `fallback` if it fails (its deadline passed) or the load stops first. A
   * wait left behind by `stop()` ends at the next cluster event, its check seeing `stopped`.
   */
  private untilStopped<T>(wait: Promise<T>, fallback: T): Promise<T> {
    return Promise.race([wait.catch(() => fallback), this.stopping.then(() => fallback)]);
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

/** The pacing between a sender's transactions (not a wait for anything). */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
