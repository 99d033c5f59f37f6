/**
 * Worker thread of the transaction pre-builder (transactions.ts): signs and stamps the `kv` set
 * transactions of its share of the senders and posts them back.
 */
import { KV_MODULE_NAME, kvSet } from '../../src/kv/index.js';
import { postBuiltBatch } from './build-batch.js';

postBuiltBatch((_job, sender, sequence) => ({
  module: KV_MODULE_NAME,
  body: kvSet(`${sender.label}/${sequence}`, `v${sequence}`),
}));
