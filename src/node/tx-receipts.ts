import { decodeTxReceipt, type TxReceipt } from '../consensus/application/tx-results.js';
import type { AccountHistoryPage, TxReceiptView } from '../consensus/net/index.js';
import {
  MAX_HISTORY_PAGE,
  StorageError,
  StorageErrorCode,
  type NodeStore,
} from '../storage/index.js';

/**
 * Receipts and account history for the node API, read from the receipts the driver stores with
 * every block (storage schema version 4). Blocks stored before that version have none: their
 * transactions are unknown here (the in-memory `tx/result` may still know recent ones).
 */
export function storedReceipt(store: NodeStore, txHash: Uint8Array): TxReceiptView | null {
  const stored = store.blocks.receipt(txHash);
  return stored === null ? null : decodeStored(stored.txHash, stored.bytes, stored.height);
}

/** One page of `account`'s history: receipts newest first, and where the next page starts. */
export function accountHistoryPage(
  store: NodeStore,
  account: Uint8Array,
  before: { readonly height: number; readonly index: number } | undefined,
  limit: number,
): AccountHistoryPage {
  const bounded = Math.min(limit, MAX_HISTORY_PAGE);
  const entries = store.blocks.accountHistory(account, before ?? null, bounded);
  const receipts = entries.map((entry) => {
    const stored = store.blocks.receipt(entry.txHash);
    if (stored === null) {
      throw new StorageError(
        StorageErrorCode.CORRUPT,
        `account history names transaction ${Buffer.from(entry.txHash).toString('hex')} at height ${entry.height}, which has no receipt`,
        { height: entry.height },
      );
    }
    return decodeStored(stored.txHash, stored.bytes, stored.height);
  });
  const last = entries.at(-1);
  return {
    receipts,
    next:
      entries.length === bounded && last !== undefined
        ? { height: last.height, index: last.index }
        : null,
  };
}

function decodeStored(txHash: Uint8Array, bytes: Uint8Array, height: number): TxReceiptView {
  let receipt: TxReceipt;
  try {
    receipt = decodeTxReceipt(txHash, bytes);
  } catch (error) {
    throw new StorageError(
      StorageErrorCode.CORRUPT,
      `the stored receipt of a transaction at height ${height} does not decode: ${(error as Error).message}`,
      { height },
      { cause: error },
    );
  }
  return {
    ...receipt,
    events: receipt.events.map((event) => ({
      type: event.type,
      attributes: { ...event.attributes },
      accounts: [...event.accounts],
    })),
  };
}
