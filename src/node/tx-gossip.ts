import type { ConsensusNetwork } from '../consensus/driver/ports.js';
import { MAX_TXS_PER_GOSSIP } from '../consensus/wire.js';

/**
 * Mempool gossip: transactions this node admitted from its clients are broadcast to every peer
 * as `txs` gossip messages (the driver hands peers' batches to their mempools). Transactions
 * handed over in the same turn of the event loop (one `submitTxs` batch, or several calls) go out
 * together, in messages of at most `MAX_TXS_PER_GOSSIP` transactions and `maxBatchBytes` bytes.
 * Only local transactions are sent: validators are fully meshed, so a peer's transactions
 * already reached every other peer.
 */
export interface TxGossip {
  /** Queues transactions admitted from clients. */
  push(txs: readonly Uint8Array[]): void;
  /** Sends what is queued now. */
  flush(): void;
  close(): void;
}

export const DEFAULT_TX_BATCH_BYTES = 1024 * 1024;

export function createTxGossip(
  network: Pick<ConsensusNetwork, 'broadcast'>,
  maxBatchBytes: number = DEFAULT_TX_BATCH_BYTES,
): TxGossip {
  let queue: Uint8Array[] = [];
  let queuedBytes = 0;
  let scheduled: NodeJS.Immediate | null = null;
  let closed = false;

  const flush = (): void => {
    if (scheduled !== null) clearImmediate(scheduled);
    scheduled = null;
    if (queue.length === 0) return;
    network.broadcast({ kind: 'txs', txs: queue });
    queue = [];
    queuedBytes = 0;
  };

  return {
    push(txs) {
      if (closed || txs.length === 0) return;
      for (const tx of txs) {
        if (
          queue.length > 0 &&
          (queue.length >= MAX_TXS_PER_GOSSIP || queuedBytes + tx.length > maxBatchBytes)
        ) {
          flush();
        }
        queue.push(tx);
        queuedBytes += tx.length;
      }
      scheduled ??= setImmediate(flush);
    },
    flush,
    close() {
      closed = true;
      if (scheduled !== null) clearImmediate(scheduled);
      scheduled = null;
      queue = [];
      queuedBytes = 0;
    },
  };
}
