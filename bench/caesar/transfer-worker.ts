/**
 * Worker thread of the Caesar transfer pre-builder (prepareLoad with this file as its builder):
 * signs and stamps the transfers of its share of the senders, each sender's sequences from
 * `firstSequence` in order, and posts them back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { buildTransaction } from '../../src/consensus/application/index.js';
import { ed25519PrivateKeyFromSeed } from '../../src/crypto/ed25519.js';
import { CAESAR_MODULE_NAME } from '../../src/caesar/state.js';
import { encodeTransfer } from '../../src/caesar/transfer.js';
import type { BuildJob, BuiltBatch } from '../consensus/transactions.js';
import { recipientOf, type TransferParams } from './transfer-plan.js';

const job = workerData as BuildJob;
const params = job.params as TransferParams;
const senders = params.addresses.length;
const batch: BuiltBatch = { senders: [] };
for (const sender of job.senders) {
  const privateKey = ed25519PrivateKeyFromSeed(sender.seed);
  const txs: Uint8Array[] = [];
  const hashes: Uint8Array[] = [];
  for (let i = 0; i < job.perSender; i++) {
    const sequence = sender.firstSequence + i;
    const to = params.addresses[recipientOf(sender.index, sequence, senders)];
    if (to === undefined) throw new Error(`no address for the recipient of sender ${sender.index}`);
    const built = buildTransaction({
      chainId: job.chainId,
      privateKey,
      sequence,
      module: CAESAR_MODULE_NAME,
      body: encodeTransfer({ to, amount: params.amount, fee: params.fee }),
      stampDifficulty: job.stampDifficulty,
    });
    txs.push(built.bytes);
    hashes.push(built.txHash);
  }
  batch.senders.push({ index: sender.index, txs, hashes });
}
parentPort?.postMessage(batch);
