import { encodeCanonical } from './cbor.js';

/**
 * Deterministic CBOR (RFC 8949 §4.2.1) for the values consensus signs, hashes and sends on every
 * message — votes, proposals, headers, blocks — written out directly: several times faster than
 * the general encoder, and byte-for-byte the same (tests compare the two on random input).
 *
 * It handles maps whose keys are ASCII text, lists, and the flat values: safe integers, ASCII
 * text, byte strings and null. Anything else anywhere in the value (a non-ASCII string, a float,
 * undefined, a Map, ...) sends the whole value to `encodeCanonical`, so the result (or the
 * refusal) is always the general encoder's.
 */
export type FlatValue = number | string | Uint8Array | null;

export type FlatItem = FlatValue | readonly FlatItem[] | FlatRecord;

export interface FlatRecord {
  readonly [key: string]: FlatItem;
}

/** CBOR major types (RFC 8949 §3.1) and the simple value null; shared with canonical-reader.ts. */
export const MAJOR_UINT = 0;
export const MAJOR_NEGATIVE = 1;
export const MAJOR_BYTES = 2;
export const MAJOR_TEXT = 3;
export const MAJOR_ARRAY = 4;
export const MAJOR_MAP = 5;
export const CBOR_NULL = 0xf6;

/** Thrown inside the writer when a value is outside the flat subset; never escapes. */
const NOT_FLAT = new Error('value outside the flat canonical subset');

/** Key orders are cached per key set (a message type always has the same keys), boundedly. */
const MAX_CACHED_KEY_ORDERS = 1024;
const keyOrders = new Map<string, { readonly keys: readonly string[]; readonly order: string[] }>();

/** Canonical order of ASCII text keys: shorter first, then bytewise (§4.2.1). */
function keyBefore(a: string, b: string): boolean {
  return a.length < b.length || (a.length === b.length && a < b);
}

/**
 * The keys in canonical order. Records built in that order (the wire encoders') need no sort;
 * others are sorted once per key set. Only the order of ASCII keys matters: writing a non-ASCII
 * key hands the whole value to the general encoder.
 */
function canonicalKeyOrder(keys: string[]): readonly string[] {
  let sorted = true;
  for (let i = 1; i < keys.length; i++) {
    if (!keyBefore(keys[i - 1]!, keys[i]!)) {
      sorted = false;
      break;
    }
  }
  if (sorted) return keys;
  // The joined string may collide for keys containing ',': the stored key list decides.
  const id = keys.join(',');
  const cached = keyOrders.get(id);
  if (cached !== undefined && sameKeys(cached.keys, keys)) return cached.order;
  const order = [...keys].sort((a, b) => (keyBefore(a, b) ? -1 : keyBefore(b, a) ? 1 : 0));
  if (cached === undefined && keyOrders.size < MAX_CACHED_KEY_ORDERS) {
    keyOrders.set(id, { keys, order });
  }
  return order;
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Scratch buffers larger than this are not kept between calls. */
const MAX_RETAINED_BUFFER = 1024 * 1024;

/** A growable byte buffer. */
class Writer {
  private buffer = new Uint8Array(4096);
  private length = 0;

  /** Empties the writer, letting go of a buffer grown past `MAX_RETAINED_BUFFER`. */
  reset(): void {
    this.length = 0;
    if (this.buffer.length > MAX_RETAINED_BUFFER) this.buffer = new Uint8Array(4096);
  }

  private reserve(count: number): void {
    const needed = this.length + count;
    if (needed <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < needed) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
  }

  byte(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  /** The head of a data item in its shortest form (§3, §4.2.1). */
  head(major: number, value: number): void {
    this.reserve(9);
    const out = this.buffer;
    const type = major << 5;
    let at = this.length;
    if (value < 24) {
      out[at++] = type | value;
    } else if (value < 0x100) {
      out[at++] = type | 24;
      out[at++] = value;
    } else if (value < 0x10000) {
      out[at++] = type | 25;
      out[at++] = value >>> 8;
      out[at++] = value & 0xff;
    } else if (value < 0x100000000) {
      out[at++] = type | 26;
      at = writeUint32(out, at, value);
    } else {
      out[at++] = type | 27;
      at = writeUint32(out, at, Math.floor(value / 0x100000000));
      at = writeUint32(out, at, value >>> 0);
    }
    this.length = at;
  }

  bytes(value: Uint8Array): void {
    this.head(MAJOR_BYTES, value.length);
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
  }

  /** ASCII text: its UTF-8 bytes are its char codes. */
  text(value: string): void {
    this.head(MAJOR_TEXT, value.length);
    this.reserve(value.length);
    const out = this.buffer;
    let at = this.length;
    for (let i = 0; i < value.length; i++) {
      const code = value.charCodeAt(i);
      if (code > 0x7f) throw NOT_FLAT;
      out[at++] = code;
    }
    this.length = at;
  }

  result(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

function writeUint32(out: Uint8Array, at: number, value: number): number {
  out[at] = value >>> 24;
  out[at + 1] = (value >>> 16) & 0xff;
  out[at + 2] = (value >>> 8) & 0xff;
  out[at + 3] = value & 0xff;
  return at + 4;
}

function writeItem(writer: Writer, item: unknown): void {
  if (item === null) {
    writer.byte(CBOR_NULL);
  } else if (typeof item === 'number') {
    if (!Number.isSafeInteger(item)) throw NOT_FLAT;
    if (item >= 0) writer.head(MAJOR_UINT, item);
    else writer.head(MAJOR_NEGATIVE, -1 - item);
  } else if (typeof item === 'string') {
    writer.text(item);
  } else if (item instanceof Uint8Array) {
    writer.bytes(item);
  } else if (Array.isArray(item)) {
    writer.head(MAJOR_ARRAY, item.length);
    // Indexed, not for-of: a hole is undefined here, which is not flat.
    for (let i = 0; i < item.length; i++) writeItem(writer, item[i]);
  } else if (typeof item === 'object' && Object.getPrototypeOf(item) === Object.prototype) {
    writeRecord(writer, item as FlatRecord);
  } else {
    throw NOT_FLAT;
  }
}

function writeRecord(writer: Writer, record: FlatRecord): void {
  const keys = Object.keys(record);
  writer.head(MAJOR_MAP, keys.length);
  for (const key of canonicalKeyOrder(keys)) {
    writer.text(key);
    writeItem(writer, record[key]);
  }
}

/**
 * One scratch writer for all calls (encoding is synchronous), so a call allocates only its
 * result; a re-entrant call (a getter that encodes) gets its own.
 */
const scratch = new Writer();
let scratchInUse = false;

/** Deterministic CBOR of `record`, equal to `encodeCanonical(record)`. */
export function encodeFlatCanonical(record: FlatRecord): Uint8Array {
  const reentrant = scratchInUse;
  const writer = reentrant ? new Writer() : scratch;
  scratchInUse = true;
  try {
    writeRecord(writer, record);
    return writer.result();
  } catch (error) {
    if (error === NOT_FLAT) return encodeCanonical(record);
    throw error;
  } finally {
    writer.reset();
    if (!reentrant) scratchInUse = false;
  }
}
