/**
 * Worker thread of the transaction pre-builder (transactions.ts): signs and stamps the `kv` set
 * transactions of its share of the senders and posts them back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { buildTransaction } from '../../src/consensus/application/index.js';
import { ed25519PrivateKeyFromSeed } from '../../src/crypto/ed25519.js';
import { KV_MODULE_NAME, kvSet } from '../../src/kv/index.js';
import type { BuildJob, BuiltBatch } from './transactions.js';

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
      module: KV_MODULE_NAME,
      body: kvSet(`${sender.label}/${sequence}`, `v${sequence}`),
      stampDifficulty: job.stampDifficulty,
    });
    txs.push(built.bytes);
    hashes.push(built.txHash);
  }
  batch.senders.push({ index: sender.index, txs, hashes });
}
parentPort?.postMessage(batch);
