import { CanonicalReader } from '../codec/canonical-reader.js';
import { encodeCanonical } from '../codec/cbor.js';
import { MAX_BODY_BYTES } from '../consensus/application/envelope.js';
import { MAX_KV_KEY_BYTES, MAX_KV_VALUE_BYTES } from './entry.js';
import type { KvDelete, KvSet, KvTx } from './entry.js';
import { KvError, KvErrorCode } from './errors.js';

function malformed(message: string, detail: Record<string, unknown> = {}): never {
  throw new KvError(KvErrorCode.MALFORMED_BODY, `kv body: ${message}`, detail);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (Array.isArray(value)) return `array of ${value.length}`;
  return typeof value;
}

export function checkKvKey(key: unknown): Uint8Array {
  if (!(key instanceof Uint8Array)) malformed(`key must be a byte string, got ${describe(key)}`);
  if (key.length === 0) malformed('key must not be empty');
  if (key.length > MAX_KV_KEY_BYTES) {
    throw new KvError(
      KvErrorCode.KEY_TOO_LONG,
      `kv key is ${key.length} bytes, above the limit of ${MAX_KV_KEY_BYTES}`,
      { size: key.length, limit: MAX_KV_KEY_BYTES },
    );
  }
  return key;
}

function checkValue(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    malformed(`value must be a byte string, got ${describe(value)}`);
  }
  if (value.length > MAX_KV_VALUE_BYTES) {
    throw new KvError(
      KvErrorCode.VALUE_TOO_LARGE,
      `kv value is ${value.length} bytes, above the limit of ${MAX_KV_VALUE_BYTES}`,
      { size: value.length, limit: MAX_KV_VALUE_BYTES },
    );
  }
  return value;
}

/** Reads the next map key and insists it is `expected` (keys come in canonical order). */
function expectKey(reader: CanonicalReader, expected: string, previous: string | undefined): void {
  const key = reader.readKey('kv body', previous);
  if (key !== expected)
    malformed(`unexpected field ${JSON.stringify(key)}, expected "${expected}"`);
}

/** A byte string field, as a plain copy (the reader may return views or Buffers). */
function readField(reader: CanonicalReader, name: string): Uint8Array {
  return new Uint8Array(reader.readBytes(`kv body.${name}`, 0, MAX_BODY_BYTES));
}

/**
 * Parses a KV transaction body (stateless rules). Throws `KvError`: `MALFORMED_BODY`,
 * `KEY_TOO_LONG` or `VALUE_TOO_LARGE`. Only the canonical encoding is accepted, read in place.
 */
export function decodeKvBody(body: Uint8Array): KvTx {
  try {
    const reader = new CanonicalReader(body);
    const count = reader.readMapLength('kv body', 3);
    expectKey(reader, 'op', undefined);
    const op = reader.readText('kv body.op', 16);
    if (op !== 'set' && op !== 'delete') malformed('op must be "set" or "delete"');
    const fields = op === 'set' ? 3 : 2;
    if (count !== fields) malformed(`a ${op} has ${fields} fields, got ${count}`);
    expectKey(reader, 'key', 'op');
    const key = checkKvKey(readField(reader, 'key'));
    let tx: KvTx;
    if (op === 'set') {
      expectKey(reader, 'value', 'key');
      tx = { op, key, value: checkValue(readField(reader, 'value')) };
    } else {
      tx = { op, key };
    }
    reader.end('kv body');
    return tx;
  } catch (error) {
    if (error instanceof KvError) throw error;
    return malformed(error instanceof Error ? error.message : String(error));
  }
}

const encoder = new TextEncoder();
const asBytes = (input: Uint8Array | string): Uint8Array =>
  typeof input === 'string' ? encoder.encode(input) : input;

/** The body of a `set` (strings are taken as UTF-8). Throws `KvError` for a bad key or value. */
export function kvSet(key: Uint8Array | string, value: Uint8Array | string): Uint8Array {
  const tx: KvSet = { op: 'set', key: checkKvKey(asBytes(key)), value: checkValue(asBytes(value)) };
  return encodeCanonical(tx);
}

/** The body of a `delete`. Throws `KvError` for a bad key. */
export function kvDelete(key: Uint8Array | string): Uint8Array {
  const tx: KvDelete = { op: 'delete', key: checkKvKey(asBytes(key)) };
  return encodeCanonical(tx);
}
