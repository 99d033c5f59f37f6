import {
  TX_RESULT_QUERY,
  decodeRecordedTxResult,
  sequenceOwner,
} from '../consensus/application/index.js';
import type { Application } from '../consensus/app.js';
import type { Mempool } from '../consensus/mempool.js';
import type { PendingSequenceOwner, TxStatus } from '../consensus/net/index.js';
import type { NodeStore } from '../storage/index.js';
import { storedReceipt } from './tx-receipts.js';

/**
 * What the node API (`txStatus`, `pendingSequence`) tells a client about its transactions, from
 * the node's mempool, the application's recent results and the stored receipts.
 */
export interface TxStatusSource {
  readonly mempool: Pick<Mempool, 'has' | 'evictionOf' | 'nextSequenceAfterPending'>;
  readonly app: Pick<Application, 'query'>;
  readonly store: NodeStore;
}

/**
 * Pending while the mempool holds it; committed once the application has its result (in memory)
 * or the store its receipt; otherwise unknown, with the refusal that evicted it from the mempool
 * when the re-check after a block did (`Mempool.evictionOf`, the last 1,024 evictions).
 */
export function transactionStatus(source: TxStatusSource, txHash: Uint8Array): TxStatus {
  const { mempool, app, store } = source;
  if (mempool.has(txHash)) return { status: 'pending' };
  const answer = app.query({ path: TX_RESULT_QUERY, data: txHash });
  if (answer.value !== null)
    return { status: 'committed', ...decodeRecordedTxResult(answer.value) };
  // Older than the in-memory results (or from before a restart): the stored receipt.
  const stored = storedReceipt(store, txHash);
  if (stored !== null) return { status: 'committed', ...stored };
  const evicted = mempool.evictionOf(txHash);
  return evicted === undefined
    ? { status: 'unknown' }
    : { status: 'unknown', evicted: { code: evicted.code, message: evicted.message } };
}

/** The sequence after `owner`'s transactions ready in the mempool, or null when none are. */
export function pendingSequenceOf(
  source: Pick<TxStatusSource, 'mempool'>,
  owner: PendingSequenceOwner,
): number | null {
  return source.mempool.nextSequenceAfterPending(
    sequenceOwner('sender' in owner ? owner.sender : owner.account),
  );
}
