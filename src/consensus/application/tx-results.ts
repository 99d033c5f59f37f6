import { z } from 'zod';
import { decodeCanonical, encodeCanonical } from '../../codec/cbor.js';
import { parseInput, uint } from '../../codec/schema.js';
import { toHex } from '../../crypto/bytes.js';
import type { TxResult } from '../app.js';
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

/** Decodes a `tx/result` answer (client side). Throws `CborError` or `SchemaError`. */
export function decodeRecordedTxResult(bytes: Uint8Array): RecordedTxResult {
  return parseInput(recordedTxResultSchema, decodeCanonical(bytes), 'txResult');
}
