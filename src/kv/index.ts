/**
 * The key-value module (layer 5): owned byte keys with `set`, `delete` and proven `get`.
 * See docs/application.md.
 */
export { decodeKvBody, kvDelete, kvSet } from './body.js';
export { kvGetQuery, verifyKvGet } from './client.js';
export {
  KV_MODULE_NAME,
  MAX_KV_KEY_BYTES,
  MAX_KV_VALUE_BYTES,
  decodeKvEntry,
  encodeKvEntry,
  kvStateKey,
} from './entry.js';
export type { KvDelete, KvEntry, KvSet, KvTx } from './entry.js';
export { KV_RESULT_CODES, KvError, KvErrorCode, KvStateError } from './errors.js';
export { KV_GET_QUERY, createKvModule } from './module.js';
