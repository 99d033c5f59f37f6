import { z } from 'zod';
import { decodeCanonical, encodeCanonical } from '../../codec/cbor.js';
import { bytes, parseInput, uint } from '../../codec/schema.js';
import { toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { EVENT_LIMITS, type TxEvent, type TxResult } from '../app.js';
import { BoundedMap } from '../../codec/bounded-map.js';

/** Where and how a committed transaction was executed. */
export interface RecordedTxResult {
  readonly height: number;
  /** Position in the block. */
  readonly index: number;
  readonly code: number;
  readonly log: string;
}

/** Results of committed transactions kept in memory (default: the last 100,000). */
export const DEFAULT_RECENT_RESULTS = 100_000;

/**
 * An in-memory index of the most recently committed transaction results, by txHash. It answers
 * "was my transaction applied" for recent transactions only: it is not part of the replicated
 * state (so it has no proof), it starts empty when the node starts, and it forgets the oldest
 * results beyond its capacity. Keeping every result in the state would add one state key per
 * transaction, forever.
 */
export class RecentTxResults {
  private readonly results: BoundedMap<string, RecordedTxResult>;

  constructor(capacity: number = DEFAULT_RECENT_RESULTS) {
    this.results = new BoundedMap(capacity);
  }

  record(height: number, results: readonly TxResult[]): void {
    results.forEach((result, index) => {
      this.results.set(toHex(result.txHash), {
        height,
        index,
        code: result.code,
        log: result.log,
      });
    });
  }

  get(txHash: Uint8Array): RecordedTxResult | undefined {
    return this.results.peek(toHex(txHash));
  }

  get size(): number {
    return this.results.size;
  }
}

/** The `tx/result` query's value: canonical CBOR `{height, index, code, log}`. */
export function encodeRecordedTxResult(result: RecordedTxResult): Uint8Array {
  return encodeCanonical({
    height: result.height,
    index: result.index,
    code: result.code,
    log: result.log,
  });
}

const recordedTxResultSchema = z.strictObject({
  height: uint,
  index: uint,
  code: uint,
  log: z.string(),
});

/** Items (RFC 8949 §2) of a `tx/result` answer: the schema's strict map of 4, 1 + 2 × 4. */
const MAX_TX_RESULT_ITEMS = 1 + 2 * 4;

/**
 * Decodes a `tx/result` answer (client side; the node's answer has no proof). Throws `CborError`
 * (`CBOR_TOO_MANY_ITEMS` past the schema's 9 items, before building them) or `SchemaError`.
 */
export function decodeRecordedTxResult(bytes: Uint8Array): RecordedTxResult {
  return parseInput(
    recordedTxResultSchema,
    decodeCanonical(bytes, { maxItems: MAX_TX_RESULT_ITEMS }),
    'txResult',
  );
}

/**
 * A committed transaction's receipt: where it ran, its result code and log, and the events it
 * emitted (`TxEvent`, empty when refused). Nodes store it with the block (NodeStore receipts)
 * and serve it by transaction hash; like the results it is derived by executing the block and
 * has no proof.
 */
export interface TxReceipt extends RecordedTxResult {
  readonly txHash: Uint8Array;
  readonly events: readonly TxEvent[];
}

/** Canonical CBOR `{height, index, code, log, events}`; the hash is the storage key. */
export function encodeTxReceipt(receipt: TxReceipt): Uint8Array {
  return encodeCanonical({
    height: receipt.height,
    index: receipt.index,
    code: receipt.code,
    log: receipt.log,
    events: receipt.events.map((event) => ({
      type: event.type,
      attributes: event.attributes,
      accounts: event.accounts,
    })),
  });
}

const receiptSchema = z.strictObject({
  height: uint,
  index: uint,
  code: uint,
  log: z.string(),
  events: z
    .array(
      z.strictObject({
        type: z.string().min(1).max(128),
        attributes: z.record(z.string().max(64), z.string().max(EVENT_LIMITS.valueChars)),
        accounts: z
          .array(bytes({ min: 1, max: EVENT_LIMITS.accountBytes }))
          .max(EVENT_LIMITS.accountsPerEvent),
      }),
    )
    .max(EVENT_LIMITS.eventsPerTx),
});

/** Decodes a stored receipt of `txHash`. Throws `CborError` or `SchemaError`. */
export function decodeTxReceipt(txHash: Uint8Array, bytes: Uint8Array): TxReceipt {
  const fields = parseInput(receiptSchema, decodeCanonical(bytes), 'receipt');
  return { txHash, ...fields };
}

/**
 * The account of a transaction's sender under which its receipt is indexed: SHA-256 of the
 * envelope's raw Ed25519 key, the address of that key's account (docs/caesar.md, "Accounts").
 * Every transaction the key signs is listed there, applied or refused, so its owner finds the
 * refused ones in its history too. (A hybrid account's address hashes its FALCON key as well,
 * which only its module's body carries, and its transactions spend the hybrid account's own
 * sequence numbers, not the key's: they are listed under the Ed25519 address of its key, and,
 * through their events, under the hybrid address when applied.)
 */
export function senderAccount(sender: Uint8Array): Uint8Array {
  return sha256(sender);
}

/**
 * The receipts of a block's results (`txResults[i]` is transaction i) as the store keeps them:
 * each indexed under the accounts its events name and its sender's account (`senderAccount`),
 * each account once. A refused transaction emits no events, so its sender's account is where
 * it is found.
 */
export function blockReceipts(
  height: number,
  results: readonly TxResult[],
): { txHash: Uint8Array; index: number; bytes: Uint8Array; accounts: Uint8Array[] }[] {
  return results.map((result, index) => {
    const events = result.events ?? [];
    const accounts = new Map<string, Uint8Array>();
    for (const event of events) {
      for (const account of event.accounts) accounts.set(toHex(account), account);
    }
    if (result.sender !== undefined) {
      const account = senderAccount(result.sender);
      accounts.set(toHex(account), account);
    }
    return {
      txHash: result.txHash,
      index,
      bytes: encodeTxReceipt({
        txHash: result.txHash,
        height,
        index,
        code: result.code,
        log: result.log,
        events,
      }),
      accounts: [...accounts.values()],
    };
  });
}
