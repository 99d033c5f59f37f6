import { concatBytes } from '../crypto/bytes.js';
import { AMOUNT_LIMIT, MAX_AMOUNT_BYTES, bigintToBytes, bytesToBigint } from './amount.js';
import { CaesarError, CaesarErrorCode } from './errors.js';

/**
 * The canonical CBOR (RFC 8949 §4.2.1) that Caesar writes and reads itself, because its amounts
 * reach 2^128 and the shared codec's integers stop at 2^64 (`encodeCanonical`) and 2^53
 * (`CanonicalReader`).
 *
 * An amount is a CBOR unsigned integer (major type 0) below 2^64, and a tag-2 bignum (RFC 8949
 * §3.4.3) from 2^64 up: its byte string is big-endian with no leading zero byte. An amount that
 * fits a plain integer must be one (as the preferred serialization of bignums asks), so each amount has exactly
 * one encoding. Every other item is the shortest form with definite lengths, and map keys are
 * text in canonical order (shorter first, then bytewise), as in the rest of HyperMesh.
 *
 * The reader accepts exactly these encodings and refuses everything else with a `CaesarError`
 * naming the field: `MALFORMED_BODY` for bad or non-canonical CBOR and wrong shapes,
 * `UNKNOWN_FIELD` for a key the caller does not expect, `INVALID_AMOUNT` for an amount that is
 * negative, a float, a fraction or not a number, `AMOUNT_TOO_LARGE` from 2^128 up.
 */

const MAJOR_UINT = 0;
const MAJOR_NEGATIVE = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;
const MAJOR_SIMPLE = 7;
/** RFC 8949 §3.4.3: unsigned bignum. Tag 3 is the negative bignum, 4 the decimal fraction. */
const TAG_UNSIGNED_BIGNUM = 2n;
const TAG_NEGATIVE_BIGNUM = 3n;
const TAG_DECIMAL_FRACTION = 4n;
const TAG_BIGFLOAT = 5n;
const UINT64_LIMIT = 1n << 64n;

// ---------------------------------------------------------------------------------------------
// Writing

function head(major: number, argument: bigint): Uint8Array {
  const top = major << 5;
  if (argument < 24n) return Uint8Array.of(top | Number(argument));
  const size = argument < 0x100n ? 1 : argument < 0x10000n ? 2 : argument < 0x100000000n ? 4 : 8;
  const out = new Uint8Array(1 + size);
  out[0] = top | (24 + Math.log2(size));
  for (let i = size, rest = argument; i >= 1; i--, rest >>= 8n) out[i] = Number(rest & 0xffn);
  return out;
}

export function uintItem(value: number): Uint8Array {
  return head(MAJOR_UINT, BigInt(value));
}

export function bytesItem(value: Uint8Array): Uint8Array {
  return concatBytes(head(MAJOR_BYTES, BigInt(value.length)), value);
}

const encoder = new TextEncoder();

/** A text item; callers pass strings their schemas limited to printable ASCII. */
export function textItem(value: string): Uint8Array {
  const utf8 = encoder.encode(value);
  return concatBytes(head(MAJOR_TEXT, BigInt(utf8.length)), utf8);
}

/** An amount in [0, 2^128): a plain integer below 2^64, a tag-2 bignum above. */
export function amountItem(value: bigint): Uint8Array {
  if (value < 0n || value >= AMOUNT_LIMIT) {
    throw new RangeError(`an amount must be in [0, 2^128), got ${value}`);
  }
  if (value < UINT64_LIMIT) return head(MAJOR_UINT, value);
  return concatBytes(head(MAJOR_TAG, TAG_UNSIGNED_BIGNUM), bytesItem(bigintToBytes(value)));
}

function keyBefore(a: string, b: string): boolean {
  return a.length < b.length || (a.length === b.length && a < b);
}

/** A map of ASCII text keys to encoded items, keys in canonical order. */
export function mapItem(fields: Readonly<Record<string, Uint8Array>>): Uint8Array {
  const keys = Object.keys(fields).sort((a, b) => (keyBefore(a, b) ? -1 : 1));
  const parts = [head(MAJOR_MAP, BigInt(keys.length))];
  for (const key of keys) parts.push(textItem(key), fields[key]!);
  return concatBytes(...parts);
}

// ---------------------------------------------------------------------------------------------
// Reading

const MAJOR_NAMES = [
  'an unsigned integer',
  'a negative integer',
  'a byte string',
  'a text string',
  'an array',
  'a map',
  'a tag',
  'a simple value',
] as const;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Longest map key read; longer keys are unknown fields whatever they say. */
const MAX_KEY_BYTES = 64;

interface Head {
  readonly major: number;
  /** The low five bits of the initial byte (tells floats from other simple values). */
  readonly info: number;
  readonly argument: bigint;
  readonly start: number;
}

export class CaesarReader {
  private offset = 0;

  constructor(
    private readonly input: Uint8Array,
    private context: string,
  ) {}

  /** Names what is read from here on in error messages (e.g. the body's op once it is known). */
  setContext(context: string): void {
    this.context = context;
  }

  malformed(message: string, field?: string): never {
    const where = field === undefined ? this.context : `${this.context}.${field}`;
    throw new CaesarError(CaesarErrorCode.MALFORMED_BODY, `${where}: ${message}`, {
      ...(field === undefined ? {} : { field }),
      offset: this.offset,
    });
  }

  private head(field?: string): Head {
    const input = this.input;
    const start = this.offset;
    if (start >= input.length) this.malformed('unexpected end of input', field);
    const initial = input[start]!;
    const major = initial >>> 5;
    const info = initial & 0x1f;
    if (info < 24) {
      this.offset = start + 1;
      return { major, info, argument: BigInt(info), start };
    }
    if (info > 27) {
      this.malformed(
        info === 31 ? 'indefinite-length items are not allowed' : 'reserved additional information',
        field,
      );
    }
    const size = 1 << (info - 24);
    if (start + 1 + size > input.length) this.malformed('unexpected end of input', field);
    let argument = 0n;
    for (let i = 1; i <= size; i++) argument = (argument << 8n) | BigInt(input[start + i]!);
    this.offset = start + 1 + size;
    // Floats and simple values carry bits, not a count; their form is checked by who reads them.
    if (major !== MAJOR_SIMPLE) {
      const minimum = size === 1 ? 24n : 1n << BigInt(4 * size);
      if (argument < minimum) {
        this.offset = start;
        this.malformed('integer or length not in its shortest form (not canonical)', field);
      }
    }
    return { major, info, argument, start };
  }

  private describe(h: Head): string {
    if (h.major !== MAJOR_SIMPLE) return MAJOR_NAMES[h.major]!;
    if (h.info >= 25 && h.info <= 27) return 'a float';
    if (h.info === 20 || h.info === 21) return 'a boolean';
    if (h.info === 22) return 'null';
    return 'a simple value';
  }

  /** The length of a string whose head was read, checked against the input. */
  private contentLength(h: Head, field: string): number {
    if (h.argument > BigInt(this.input.length - this.offset)) {
      this.malformed('string runs past the input', field);
    }
    return Number(h.argument);
  }

  readMapLength(): number {
    const h = this.head();
    if (h.major !== MAJOR_MAP) this.malformed(`expected a map, got ${this.describe(h)}`);
    // Every entry takes at least two bytes.
    if (h.argument * 2n > BigInt(this.input.length - this.offset)) {
      this.malformed('map runs past the input');
    }
    return Number(h.argument);
  }

  /**
   * A map key: text. Throws `UNKNOWN_FIELD` for a key not in `known`, and `MALFORMED_BODY` for
   * one that does not sort after `previous` (keys out of canonical order, or repeated).
   */
  readKey(known: readonly string[], previous: string | undefined): string {
    const h = this.head();
    if (h.major !== MAJOR_TEXT) this.malformed(`map keys must be text, got ${this.describe(h)}`);
    const length = this.contentLength(h, 'key');
    const raw = this.input.subarray(this.offset, this.offset + length);
    this.offset += length;
    let key: string;
    try {
      key = utf8.decode(raw);
    } catch {
      this.malformed('a map key is not valid UTF-8');
    }
    if (length > MAX_KEY_BYTES || !known.includes(key)) {
      const shown = key.length > MAX_KEY_BYTES ? `${key.slice(0, MAX_KEY_BYTES)}…` : key;
      throw new CaesarError(
        CaesarErrorCode.UNKNOWN_FIELD,
        `${this.context}: unknown field ${JSON.stringify(shown)}; the fields are ${known.join(', ')}`,
        { field: shown },
      );
    }
    if (previous !== undefined && !keyBefore(previous, key)) {
      this.malformed(
        key === previous
          ? `field ${JSON.stringify(key)} appears twice`
          : `field ${JSON.stringify(key)} out of canonical order (not canonical)`,
      );
    }
    return key;
  }

  readBytes(field: string, min: number, max: number, tooLong?: CaesarErrorCode): Uint8Array {
    const h = this.head(field);
    if (h.major !== MAJOR_BYTES) {
      this.malformed(`expected a byte string, got ${this.describe(h)}`, field);
    }
    if (h.argument < BigInt(min) || h.argument > BigInt(max)) {
      const expected = min === max ? `${min}` : `${min} to ${max}`;
      const message = `${this.context}.${field}: expected ${expected} bytes, got ${h.argument}`;
      if (tooLong !== undefined && h.argument > BigInt(max)) {
        throw new CaesarError(tooLong, message, { field, size: Number(h.argument), limit: max });
      }
      this.malformed(`expected ${expected} bytes, got ${h.argument}`, field);
    }
    const length = this.contentLength(h, field);
    const value = this.input.slice(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  /** Printable ASCII text of 1 to `max` characters. */
  readAsciiText(field: string, max: number): string {
    const h = this.head(field);
    if (h.major !== MAJOR_TEXT) this.malformed(`expected text, got ${this.describe(h)}`, field);
    if (h.argument < 1n || h.argument > BigInt(max)) {
      this.malformed(`expected 1 to ${max} characters, got ${h.argument}`, field);
    }
    const length = this.contentLength(h, field);
    let text = '';
    for (let i = this.offset; i < this.offset + length; i++) {
      const byte = this.input[i]!;
      if (byte < 0x20 || byte > 0x7e) this.malformed('expected printable ASCII text', field);
      text += String.fromCharCode(byte);
    }
    this.offset += length;
    return text;
  }

  readSmallUint(field: string, max: number): number {
    const h = this.head(field);
    if (h.major !== MAJOR_UINT) {
      this.malformed(`expected an unsigned integer, got ${this.describe(h)}`, field);
    }
    if (h.argument > BigInt(max))
      this.malformed(`expected at most ${max}, got ${h.argument}`, field);
    return Number(h.argument);
  }

  private invalidAmount(field: string, why: string): never {
    throw new CaesarError(
      CaesarErrorCode.INVALID_AMOUNT,
      `${this.context}.${field}: ${why}; amounts are non-negative integers in base units`,
      { field },
    );
  }

  /** An amount in [0, 2^128): a plain unsigned integer, or a tag-2 bignum from 2^64 up. */
  readAmount(field: string): bigint {
    const h = this.head(field);
    switch (h.major) {
      case MAJOR_UINT:
        return h.argument;
      case MAJOR_NEGATIVE:
        return this.invalidAmount(field, `got the negative integer ${-1n - h.argument}`);
      case MAJOR_TAG:
        break;
      case MAJOR_SIMPLE:
        return this.invalidAmount(field, `got ${this.describe(h)}`);
      default:
        return this.invalidAmount(field, `expected an integer, got ${this.describe(h)}`);
    }
    if (h.argument === TAG_NEGATIVE_BIGNUM)
      return this.invalidAmount(field, 'got a negative bignum');
    if (h.argument === TAG_DECIMAL_FRACTION || h.argument === TAG_BIGFLOAT) {
      return this.invalidAmount(field, 'got a fractional number (decimal fraction or bigfloat)');
    }
    if (h.argument !== TAG_UNSIGNED_BIGNUM) {
      return this.invalidAmount(field, `got tag ${h.argument}; only tag 2 (bignum) is an amount`);
    }
    const magnitude = this.readBytes(field, 0, this.input.length);
    if (magnitude.length > 0 && magnitude[0] === 0) {
      this.malformed('a bignum has a leading zero byte (not canonical)', field);
    }
    if (magnitude.length > MAX_AMOUNT_BYTES) {
      throw new CaesarError(
        CaesarErrorCode.AMOUNT_TOO_LARGE,
        `${this.context}.${field}: a ${magnitude.length}-byte amount is 2^128 or more; the limit is 2^128 - 1`,
        { field, bytes: magnitude.length },
      );
    }
    const value = bytesToBigint(magnitude);
    if (value < UINT64_LIMIT) {
      this.malformed(
        'an amount below 2^64 must be a plain integer, not a bignum (not canonical)',
        field,
      );
    }
    return value;
  }

  end(): void {
    if (this.offset !== this.input.length) {
      this.malformed(`${this.input.length - this.offset} trailing bytes after the item`);
    }
  }
}
