import { z } from 'zod';
import { decodeCanonical, encodeCanonical } from '../codec/cbor.js';
import { bytes, parseInput } from '../codec/schema.js';
import { KvStateError } from './errors.js';

/**
 * Transaction bodies and stored entries of the KV module, all canonical CBOR maps:
 *
 *   set    { op: "set", key: bstr(1..256), value: bstr(0..4096) }
 *   delete { op: "delete", key: bstr(1..256) }
 *   entry  { owner: bstr(32), value: bstr }   stored at state key "kv/" || key
 */
export const KV_MODULE_NAME = 'kv';
export const MAX_KV_KEY_BYTES = 256;
export const MAX_KV_VALUE_BYTES = 4 * 1024;

export interface KvSet {
  readonly op: 'set';
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export interface KvDelete {
  readonly op: 'delete';
  readonly key: Uint8Array;
}

export type KvTx = KvSet | KvDelete;

export interface KvEntry {
  /** Raw Ed25519 public key of the sender that created the key. */
  readonly owner: Uint8Array;
  readonly value: Uint8Array;
}

const entrySchema = z.strictObject({ owner: bytes({ length: 32 }), value: bytes() });

export function encodeKvEntry(entry: KvEntry): Uint8Array {
  return encodeCanonical({ owner: entry.owner, value: entry.value });
}

/**
 * Decodes a stored entry (the value a `kv/get` query returns). Throws `KvStateError` for bytes
 * that are not an entry.
 */
export function decodeKvEntry(value: Uint8Array): KvEntry {
  try {
    const entry = parseInput(entrySchema, decodeCanonical(value), 'kvEntry');
    return { owner: new Uint8Array(entry.owner), value: new Uint8Array(entry.value) };
  } catch (error) {
    throw new KvStateError(
      'KV_CORRUPT_ENTRY',
      `not a KV entry: ${error instanceof Error ? error.message : String(error)}`,
      {},
      { cause: error },
    );
  }
}

const encoder = new TextEncoder();

/** The full state key of a KV key (what a `kv/get` proof proves). */
export function kvStateKey(key: Uint8Array): Uint8Array {
  const prefix = encoder.encode(`${KV_MODULE_NAME}/`);
  const full = new Uint8Array(prefix.length + key.length);
  full.set(prefix, 0);
  full.set(key, prefix.length);
  return full;
}
