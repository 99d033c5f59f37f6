import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import { decodeStateProof, verifyStateProof } from '../storage/index.js';
import { checkKvKey } from './body.js';
import { KV_MODULE_NAME, decodeKvEntry, kvStateKey } from './entry.js';
import type { KvEntry } from './entry.js';
import { KvStateError } from './errors.js';
import { KV_GET_QUERY } from './module.js';

export { kvDelete, kvSet } from './body.js';

const encoder = new TextEncoder();

/** The `kv/get` query for `key` (optionally at an earlier height). */
export function kvGetQuery(key: Uint8Array | string, height?: number): QueryRequest {
  const data = checkKvKey(typeof key === 'string' ? encoder.encode(key) : key);
  const path = `${KV_MODULE_NAME}/${KV_GET_QUERY}`;
  return height === undefined ? { path, data } : { path, data, height };
}

/**
 * Checks a `kv/get` answer against its state root and returns the entry (null: the key is
 * absent, and the proof shows it). The caller must also trust `response.stateRoot`, e.g. by
 * finding it in a committed block header. Throws `KvStateError` if the proof does not verify,
 * `StateProofError` if it does not decode.
 */
export function verifyKvGet(key: Uint8Array, response: QueryResponse): KvEntry | null {
  if (response.proof === undefined) {
    throw new KvStateError('KV_CORRUPT_ENTRY', 'the kv/get answer carries no proof');
  }
  const proof = decodeStateProof(response.proof);
  if (!verifyStateProof(response.stateRoot, kvStateKey(key), response.value, proof)) {
    throw new KvStateError(
      'KV_CORRUPT_ENTRY',
      "the kv/get answer's proof does not verify against its state root",
    );
  }
  return response.value === null ? null : decodeKvEntry(response.value);
}
