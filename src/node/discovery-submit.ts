import type { KeyObject } from 'node:crypto';
import { toHex } from '../crypto/bytes.js';
import { ed25519RawPublicKey } from '../crypto/ed25519.js';
import {
  SEQUENCE_QUERY,
  buildTransaction,
  decodeSequence,
} from '../consensus/application/index.js';
import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import type { MempoolAddResult } from '../consensus/mempool.js';
import { DISCOVERY_MODULE_NAME } from '../discovery/index.js';

/**
 * The node's own transactions of one module — discovery's (renewals, status changes,
 * self-registration), or the `ca` renewal of its identity certificate (cert-renewal.ts) — signed
 * with its identity key and handed to its own mempool. One round is in flight at a time: up to
 * `maxPerRound` queued bodies (default `DEFAULT_MAX_PER_ROUND`) go out together after a commit,
 * with consecutive sequence numbers from the one the committed state gives, and the next round
 * waits until all of them left the mempool, so a sender never races itself for a sequence. A
 * refusal ends the round: the bodies not yet submitted stay queued in order (a later sequence
 * would only wait behind the refused one). Other users of the same key (the node's other
 * sender, its CA publications) may take a sequence first: the refusal is transient and the
 * body is tried again after the next commit. Requests are keyed (`service/instance`): a newer
 * one replaces a queued older one for the same instance.
 *
 * One transaction per round would cap a node at about one renewal per block: with the default
 * TTL of 60 blocks (renewed every 20) that is some 20 hosted instances.
 */

/**
 * Bodies submitted per round. Well below the mempool's per-sender sequence lead (64), so a
 * round never runs into it, and enough for hundreds of instances at the default TTL.
 */
export const DEFAULT_MAX_PER_ROUND = 16;

/**
 * Refusals that say "not now" rather than "never": another transaction of the same key (an
 * operator using the node's key file) holds the sequence, or the node is busy. Tried again
 * after the next commit.
 */
const TRANSIENT = new Set([
  'MEMPOOL_SEQUENCE_TAKEN',
  'MEMPOOL_BUSY',
  'MEMPOOL_FULL',
  'MEMPOOL_WAITING_FULL',
  'MEMPOOL_SENDER_LIMIT',
  'TX_SEQUENCE_USED',
]);

export interface NodeTxSenderOptions {
  readonly chainId: string;
  readonly stampDifficulty: number;
  readonly privateKey: KeyObject;
  /** The module the bodies are for; default `discovery`. */
  readonly module?: string;
  /** The committed application's query (for the sender's next sequence). */
  readonly query: (request: QueryRequest) => QueryResponse;
  /** Admission into the node's mempool and gossip to its peers. */
  readonly submit: (tx: Uint8Array) => Promise<MempoolAddResult>;
  /** Whether a transaction is still waiting in the mempool. */
  readonly pending: (txHash: Uint8Array) => boolean;
  /** Told of every submission and its admission result. */
  readonly onSubmit?: (key: string, result: MempoolAddResult, txHash: string) => void;
  /** Bodies submitted per round (1–64); default `DEFAULT_MAX_PER_ROUND`. */
  readonly maxPerRound?: number;
}

export class NodeTxSender {
  private readonly queue = new Map<string, Uint8Array>();
  private inFlight: Uint8Array[] = [];
  private busy = false;
  private readonly sender: Uint8Array;
  private readonly maxPerRound: number;

  constructor(private readonly options: NodeTxSenderOptions) {
    this.sender = ed25519RawPublicKey(options.privateKey);
    const max = options.maxPerRound ?? DEFAULT_MAX_PER_ROUND;
    if (!Number.isInteger(max) || max < 1 || max > 64) {
      throw new RangeError(`maxPerRound must be an integer in 1..64, got ${String(max)}`);
    }
    this.maxPerRound = max;
  }

  /** Queues a body under `key`, replacing a queued one with the same key. */
  enqueue(key: string, body: Uint8Array): void {
    this.queue.delete(key);
    this.queue.set(key, body);
  }

  /** Whether a body is queued under `key` (not yet submitted). */
  queued(key: string): boolean {
    return this.queue.has(key);
  }

  /**
   * Submits the next round of queued bodies if nothing of the last round is in the mempool.
   * Call after commits.
   */
  async pump(): Promise<void> {
    if (this.busy) return;
    if (this.inFlight.some((txHash) => this.options.pending(txHash))) return;
    this.inFlight = [];
    if (this.queue.size === 0) return;
    const round = [...this.queue].slice(0, this.maxPerRound);
    for (const [key] of round) this.queue.delete(key);
    this.busy = true;
    try {
      const answer = this.options.query({ path: SEQUENCE_QUERY, data: this.sender });
      const first = decodeSequence(answer.value);
      for (let index = 0; index < round.length; index++) {
        const [key, body] = round[index]!;
        const tx = buildTransaction({
          chainId: this.options.chainId,
          privateKey: this.options.privateKey,
          sequence: first + index,
          module: this.options.module ?? DISCOVERY_MODULE_NAME,
          body,
          stampDifficulty: this.options.stampDifficulty,
        });
        const result = await this.options.submit(tx.bytes);
        this.options.onSubmit?.(key, result, toHex(tx.txHash));
        if (result.ok) {
          this.inFlight.push(tx.txHash);
          continue;
        }
        // The round ends here: the rest would wait behind a sequence that is not coming. A body
        // queued again under the same key meanwhile is newer and stays.
        const retry = TRANSIENT.has(result.code) ? round.slice(index) : round.slice(index + 1);
        for (const [laterKey, laterBody] of retry) {
          if (!this.queue.has(laterKey)) this.queue.set(laterKey, laterBody);
        }
        break;
      }
    } finally {
      this.busy = false;
    }
  }
}
