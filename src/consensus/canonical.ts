import { encodeCanonical } from '../codec/cbor.js';

/**
 * Deterministic CBOR (RFC 8949 §4.2.1) for the flat maps the engine signs and hashes on every
 * message — votes, proposals, headers — written out directly: about ten times faster than the
 * general encoder, and byte-for-byte the same (tests compare the two on random input).
 * It handles maps whose keys are ASCII text and whose values are safe integers, ASCII text,
 * byte strings or null; anything else goes to `encodeCanonical`.
 */
export type FlatValue = number | string | Uint8Array | null;

const MAJOR_UINT = 0;
const MAJOR_NEGATIVE = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_MAP = 5;
const CBOR_NULL = 0xf6;
const ASCII = /^[\x00-\x7f]*$/;

const keyOrders = new Map<string, string[]>();

/**
 * Canonical key order: by encoded bytes, which for ASCII text keys is shorter first, then
 * bytewise (§4.2.1). Cached per key set, since a message type always has the same keys.
 */
function canonicalKeyOrder(keys: string[]): string[] {
  const id = JSON.stringify(keys);
  let order = keyOrders.get(id);
  if (order === undefined) {
    order = [...keys].sort((a, b) =>
      a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0,
    );
    keyOrders.set(id, order);
  }
  return order;
}

function isFlat(value: unknown): value is FlatValue {
  return (
    value === null ||
    value instanceof Uint8Array ||
    (typeof value === 'string' && ASCII.test(value)) ||
    Number.isSafeInteger(value)
  );
}

export function encodeFlatCanonical(record: Readonly<Record<string, FlatValue>>): Uint8Array {
  const keys = Object.keys(record);
  for (const key of keys) {
    if (!ASCII.test(key) || !isFlat(record[key])) return encodeCanonical(record);
  }
  const out: number[] = [];
  head(out, MAJOR_MAP, keys.length);
  for (const key of canonicalKeyOrder(keys)) {
    text(out, key);
    const value = record[key] as FlatValue;
    if (value === null) {
      out.push(CBOR_NULL);
    } else if (typeof value === 'string') {
      text(out, value);
    } else if (typeof value === 'number') {
      if (value >= 0) head(out, MAJOR_UINT, value);
      else head(out, MAJOR_NEGATIVE, -1 - value);
    } else {
      head(out, MAJOR_BYTES, value.length);
      for (const byte of value) out.push(byte);
    }
  }
  return Uint8Array.from(out);
}

/** The head of a data item in its shortest form (§3, §4.2.1). */
function head(out: number[], major: number, value: number): void {
  const type = major << 5;
  if (value < 24) {
    out.push(type | value);
  } else if (value < 0x100) {
    out.push(type | 24, value);
  } else if (value < 0x10000) {
    out.push(type | 25, value >>> 8, value & 0xff);
  } else if (value < 0x100000000) {
    out.push(type | 26, value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
  } else {
    const high = Math.floor(value / 0x100000000);
    const low = value >>> 0;
    out.push(type | 27, high >>> 24, (high >>> 16) & 0xff, (high >>> 8) & 0xff, high & 0xff);
    out.push(low >>> 24, (low >>> 16) & 0xff, (low >>> 8) & 0xff, low & 0xff);
  }
}

/** ASCII text: its UTF-8 bytes are its char codes. */
function text(out: number[], value: string): void {
  head(out, MAJOR_TEXT, value.length);
  for (let i = 0; i < value.length; i++) out.push(value.charCodeAt(i));
}
