import { CborError, CborErrorCode } from './cbor.js';
import { SchemaError } from './schema.js';
import {
  CBOR_NULL,
  MAJOR_ARRAY,
  MAJOR_BYTES,
  MAJOR_MAP,
  MAJOR_NEGATIVE,
  MAJOR_TEXT,
  MAJOR_UINT,
} from './flat-canonical.js';

/**
 * A schema-driven reader of deterministic CBOR (RFC 8949 §4.2.1) for hot or large untrusted
 * messages: the caller reads the fields it expects, one at a time, and every limit is checked
 * before anything is allocated, so a 16 MiB message of tiny items costs what its schema allows,
 * not millions of objects. It accepts exactly the canonical encoding — shortest-form heads,
 * definite lengths, map keys in canonical order (which also rules out duplicates), valid UTF-8 —
 * so whatever it accepts re-encodes to the same bytes.
 *
 * Errors name the field by `path`: `CborError` (`CBOR_MALFORMED`: truncated, reserved or
 * indefinite-length items, invalid UTF-8, trailing bytes; `CBOR_NOT_CANONICAL`: non-shortest
 * heads, keys out of order) and `SchemaError` (wrong type, length or range; unknown key).
 *
 * Byte strings it returns never alias the caller's buffer: a large input is copied once when the
 * reader is constructed and byte strings are views into that copy (thousands of transactions
 * cost one allocation); a small one is not copied and each byte string is sliced (small slices
 * live on the JavaScript heap, cheaper than one off-heap copy).
 */

const MAJOR_NAMES = [
  'unsigned integer',
  'negative integer',
  'byte string',
  'text string',
  'array',
  'map',
  'tag',
  'simple value or float',
] as const;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Longest map key the reader decodes (keys are field names). */
const MAX_KEY_BYTES = 64;

/** Inputs up to this size are sliced per byte string rather than copied whole. */
const SLICE_LIMIT = 512;

export class CanonicalReader {
  private readonly input: Uint8Array;
  private readonly copied: boolean;
  private offset = 0;
  /** Major type and argument of the head read last (kept in fields: no allocation per item). */
  private major = 0;
  private argument = 0;

  constructor(input: Uint8Array) {
    this.copied = input.length > SLICE_LIMIT;
    // Uint8Array.prototype.slice copies even for a Buffer (whose own slice() is a view).
    this.input = this.copied ? Uint8Array.prototype.slice.call(input) : input;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.input.length - this.offset;
  }

  private malformed(path: string, message: string): CborError {
    return new CborError(CborErrorCode.MALFORMED, `${path}: ${message}`, {
      path,
      offset: this.offset,
    });
  }

  private schema(path: string, code: string, message: string): SchemaError {
    return new SchemaError(path, [{ path, code, message }]);
  }

  /** Reads one head into `major`/`argument`, insisting on the shortest form. */
  private head(path: string): void {
    const input = this.input;
    const start = this.offset;
    if (start >= input.length) throw this.malformed(path, 'unexpected end of input');
    const initial = input[start]!;
    const major = initial >>> 5;
    const info = initial & 0x1f;
    if (info < 24) {
      this.offset = start + 1;
      this.major = major;
      this.argument = info;
      return;
    }
    if (info > 27) {
      throw this.malformed(
        path,
        info === 31 ? 'indefinite-length items are not allowed' : 'reserved additional information',
      );
    }
    const size = 1 << (info - 24);
    const at = start + 1;
    if (at + size > input.length) throw this.malformed(path, 'unexpected end of input');
    this.offset = at + size;
    this.major = major;
    if (major === 7) {
      // Floats and simple values carry bits, not a count; no reader here accepts them.
      this.argument = info;
      return;
    }
    let argument: number;
    let minimum: number;
    if (size === 1) {
      argument = input[at]!;
      minimum = 24;
    } else if (size === 2) {
      argument = (input[at]! << 8) | input[at + 1]!;
      minimum = 0x100;
    } else if (size === 4) {
      argument = uint32(input, at);
      minimum = 0x10000;
    } else {
      const high = uint32(input, at);
      // Beyond 2^53 - 1 nothing here is meaningful (no length or safe integer that large).
      if (high >= 0x200000) {
        this.offset = start;
        throw this.schema(path, 'too_big', 'integer or length exceeds 2^53 - 1');
      }
      argument = high * 0x100000000 + uint32(input, at + 4);
      minimum = 0x100000000;
    }
    if (argument < minimum) {
      this.offset = start;
      throw new CborError(
        CborErrorCode.NOT_CANONICAL,
        `${path}: integer or length not in its shortest form`,
        { path, offset: start },
      );
    }
    this.argument = argument;
  }

  /** Reads a head of `major`; on another type the offset stays at the item. */
  private expect(path: string, major: number): number {
    const start = this.offset;
    this.head(path);
    if (this.major !== major) {
      const got = this.major;
      this.offset = start;
      throw this.schema(
        path,
        'invalid_type',
        `expected ${MAJOR_NAMES[major]}, got ${this.describe(got)}`,
      );
    }
    return this.argument;
  }

  /** Names the item whose head was read last. */
  private describe(major: number): string {
    if (major !== 7) return MAJOR_NAMES[major] ?? 'unknown';
    switch (this.argument) {
      case 20:
      case 21:
        return 'boolean';
      case 22:
        return 'null';
      case 23:
        return 'undefined';
      case 25:
      case 26:
      case 27:
        return 'float';
      default:
        return 'simple value';
    }
  }

  /** Consumes a CBOR null and returns true, or returns false and consumes nothing. */
  readNull(): boolean {
    if (this.input[this.offset] !== CBOR_NULL) return false;
    this.offset++;
    return true;
  }

  /** A non-negative integer in [min, max] (default: any safe integer). */
  readUint(path: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const value = this.expect(path, MAJOR_UINT);
    if (value < min || value > max) {
      throw this.schema(
        path,
        'out_of_range',
        `expected an integer in [${min}, ${max}], got ${value}`,
      );
    }
    return value;
  }

  /** A safe integer in [min, max], which may be negative. */
  readInt(path: string, min: number, max: number): number {
    const start = this.offset;
    this.head(path);
    let value: number;
    if (this.major === MAJOR_UINT) value = this.argument;
    else if (this.major === MAJOR_NEGATIVE) value = -1 - this.argument;
    else {
      const got = this.major;
      this.offset = start;
      throw this.schema(path, 'invalid_type', `expected integer, got ${this.describe(got)}`);
    }
    if (value < min || value > max) {
      throw this.schema(
        path,
        'out_of_range',
        `expected an integer in [${min}, ${max}], got ${value}`,
      );
    }
    return value;
  }

  /** A byte string of `min..max` bytes. */
  readBytes(path: string, min: number, max: number): Uint8Array {
    const length = this.expect(path, MAJOR_BYTES);
    if (length < min || length > max) {
      const expected = min === max ? `${min}` : `${min} to ${max}`;
      throw this.schema(path, 'invalid_length', `expected ${expected} bytes, got ${length}`);
    }
    if (length > this.remaining) throw this.malformed(path, 'byte string runs past the input');
    const end = this.offset + length;
    const value = this.copied
      ? this.input.subarray(this.offset, end)
      : Uint8Array.prototype.slice.call(this.input, this.offset, end);
    this.offset += length;
    return value;
  }

  /** A text string of at most `maxBytes` UTF-8 bytes. */
  readText(path: string, maxBytes: number): string {
    const length = this.expect(path, MAJOR_TEXT);
    if (length > maxBytes) {
      throw this.schema(
        path,
        'too_big',
        `expected at most ${maxBytes} bytes of text, got ${length}`,
      );
    }
    if (length > this.remaining) throw this.malformed(path, 'text string runs past the input');
    const start = this.offset;
    this.offset += length;
    const ascii = asciiText(this.input, start, length);
    if (ascii !== undefined) return ascii;
    try {
      return utf8.decode(this.input.subarray(start, start + length));
    } catch {
      this.offset = start;
      throw this.malformed(path, 'text string is not valid UTF-8');
    }
  }

  /** An array head with at most `max` items; returns the count. */
  readArrayLength(path: string, max: number): number {
    const count = this.expect(path, MAJOR_ARRAY);
    if (count > max) {
      throw this.schema(path, 'too_big', `expected at most ${max} items, got ${count}`);
    }
    // Every item takes at least one byte: a count the input cannot hold is refused up front.
    if (count > this.remaining) throw this.malformed(path, 'array runs past the input');
    return count;
  }

  /** A map head with at most `max` entries; returns the count. Read keys with `readKey`. */
  readMapLength(path: string, max: number): number {
    const count = this.expect(path, MAJOR_MAP);
    if (count > max) {
      throw this.schema(path, 'too_big', `expected at most ${max} entries, got ${count}`);
    }
    if (count * 2 > this.remaining) throw this.malformed(path, 'map runs past the input');
    return count;
  }

  /**
   * A map key: ASCII text that sorts after `previous` in canonical order (shorter first, then
   * bytewise), which is how RFC 8949 §4.2.1 orders text keys.
   */
  readKey(path: string, previous: string | undefined): string {
    const start = this.offset;
    const length = this.expect(path, MAJOR_TEXT);
    if (length > MAX_KEY_BYTES) {
      this.offset = start;
      throw this.schema(path, 'unrecognized_keys', `unexpected key of ${length} bytes`);
    }
    if (length > this.remaining) throw this.malformed(path, 'map key runs past the input');
    const key = asciiText(this.input, this.offset, length);
    if (key === undefined) {
      this.offset = start;
      throw this.schema(path, 'unrecognized_keys', 'unexpected non-ASCII key');
    }
    this.offset += length;
    if (
      previous !== undefined &&
      (key.length < previous.length || (key.length === previous.length && key <= previous))
    ) {
      this.offset = start;
      throw new CborError(
        CborErrorCode.NOT_CANONICAL,
        key === previous
          ? `${path}: duplicate key ${JSON.stringify(key)}`
          : `${path}: key ${JSON.stringify(key)} out of canonical order`,
        { path, offset: start },
      );
    }
    return key;
  }

  /** Insists that the whole input was read. */
  end(path: string): void {
    if (this.offset !== this.input.length) {
      throw this.malformed(path, `${this.remaining} trailing bytes after the item`);
    }
  }
}

function uint32(input: Uint8Array, at: number): number {
  return (
    ((input[at]! << 24) >>> 0) + ((input[at + 1]! << 16) | (input[at + 2]! << 8) | input[at + 3]!)
  );
}

/** The text if every byte is ASCII, else undefined. Short field names and addresses are hot. */
function asciiText(input: Uint8Array, start: number, length: number): string | undefined {
  if (length > 128) {
    for (let i = start; i < start + length; i++) if (input[i]! > 0x7f) return undefined;
    return utf8.decode(input.subarray(start, start + length));
  }
  let text = '';
  for (let i = start; i < start + length; i++) {
    const byte = input[i]!;
    if (byte > 0x7f) return undefined;
    text += String.fromCharCode(byte);
  }
  return text;
}
