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
 * with its identity key and handed to its own mempool. One is in flight at a time: the next is
 * built after a commit once the previous one left the mempool, with the sequence number the
 * committed state gives, so a sender never races itself for a sequence. Other users of the same
 * key (the node's other sender, its CA publications) may take that sequence first: the refusal
 * is transient and the body is tried again after the next commit. Requests are keyed
 * (`service/instance`): a newer one replaces a queued older one for the same instance.
 */

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
}

export class NodeTxSender {
  private readonly queue = new Map<string, Uint8Array>();
  private inFlight: Uint8Array | null = null;
  private busy = false;
  private readonly sender: Uint8Array;

  constructor(private readonly options: NodeTxSenderOptions) {
    this.sender = ed25519RawPublicKey(options.privateKey);
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

  /** Submits the next queued body if nothing of ours is in the mempool. Call after commits. */
  async pump(): Promise<void> {
    if (this.busy) return;
    if (this.inFlight !== null && this.options.pending(this.inFlight)) return;
    this.inFlight = null;
    const next = this.queue.entries().next();
    if (next.done === true) return;
    const [key, body] = next.value;
    this.queue.delete(key);
    this.busy = true;
    try {
      const answer = this.options.query({ path: SEQUENCE_QUERY, data: this.sender });
      const tx = buildTransaction({
        chainId: this.options.chainId,
        privateKey: this.options.privateKey,
        sequence: decodeSequence(answer.value),
        module: this.options.module ?? DISCOVERY_MODULE_NAME,
        body,
        stampDifficulty: this.options.stampDifficulty,
      });
      const result = await this.options.submit(tx.bytes);
      if (result.ok) this.inFlight = tx.txHash;
      else if (TRANSIENT.has(result.code) && !this.queue.has(key)) this.queue.set(key, body);
      this.options.onSubmit?.(key, result, toHex(tx.txHash));
    } finally {
      this.busy = false;
    }
  }
}
