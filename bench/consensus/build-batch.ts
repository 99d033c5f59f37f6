/**
 * The loop of a transaction pre-builder worker (prepareLoad's `builder`): signs and stamps
 * `perSender` transactions for each sender of its job, each sender's sequences from
 * `firstSequence` in order, and posts them back as a BuiltBatch. `content` gives the module and
 * body of each transaction.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { buildTransaction } from '../../src/consensus/application/index.js';
import { ed25519PrivateKeyFromSeed } from '../../src/crypto/ed25519.js';
import type { BuildJob, BuiltBatch } from './transactions.js';

export type BuildSender = BuildJob['senders'][number];

export function postBuiltBatch(
  content: (
    job: BuildJob,
    sender: BuildSender,
    sequence: number,
  ) => { readonly module: string; readonly body: Uint8Array },
): void {
  const job = workerData as BuildJob;
  const batch: BuiltBatch = { senders: [] };
  for (const sender of job.senders) {
    const privateKey = ed25519PrivateKeyFromSeed(sender.seed);
    const txs: Uint8Array[] = [];
    const hashes: Uint8Array[] = [];
    for (let i = 0; i < job.perSender; i++) {
      const sequence = sender.firstSequence + i;
      const built = buildTransaction({
        chainId: job.chainId,
        privateKey,
        sequence,
        ...content(job, sender, sequence),
        stampDifficulty: job.stampDifficulty,
      });
      txs.push(built.bytes);
      hashes.push(built.txHash);
    }
    batch.senders.push({ index: sender.index, txs, hashes });
  }
  parentPort?.postMessage(batch);
}
