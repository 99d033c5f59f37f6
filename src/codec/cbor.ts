import { Tokenizer, Type, decode, encode, rfc8949EncodeOptions } from 'cborg';
import type { DecodeOptions, EncodeOptions, Token } from 'cborg';
import { HyperMeshError } from './error.js';

/**
 * Deterministic CBOR (RFC 8949 §4.2.1 "Core Deterministic Encoding"): shortest-form integers,
 * lengths and floats, definite lengths only, map keys sorted by their encoded bytes. Everything
 * that is signed or hashed goes through `encodeCanonical`, so two nodes that agree on a value
 * agree on its bytes.
 */
export enum CborErrorCode {
  MALFORMED = 'CBOR_MALFORMED',
  NOT_CANONICAL = 'CBOR_NOT_CANONICAL',
  UNSUPPORTED_VALUE = 'CBOR_UNSUPPORTED_VALUE',
  /** The input holds more data items than the decoder's `maxItems` budget allows. */
  TOO_MANY_ITEMS = 'CBOR_TOO_MANY_ITEMS',
}

export class CborError extends HyperMeshError<CborErrorCode> {}

const strictDecodeOptions = {
  strict: true,
  // cborg's own default, repeated because the tokenizer below is handed these options as-is.
  allowBigInt: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowNaN: false,
  allowInfinity: false,
  rejectDuplicateMapKeys: true,
  useMaps: false,
} as const;

/** Exact UTF-8: keeps a leading U+FEFF as text and refuses ill-formed bytes (RFC 8949 §3.1). */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * cborg's own tokenizer reads text with a default `TextDecoder`, which drops a leading U+FEFF
 * and turns ill-formed UTF-8 into U+FFFD: '\uFEFFa' would decode as 'a' and the bytes ff and fe
 * as the same string. Those are the only two ways its text can differ from the bytes, so a
 * string whose bytes start with EF BB BF or whose text holds U+FFFD is read again exactly
 * (throwing on ill-formed UTF-8); every other string keeps cborg's fast path.
 */
class ExactTextTokenizer {
  private readonly inner: Tokenizer;
  /** Data items the heads read so far announce (the root counts as one). */
  private known = 1;

  constructor(
    private readonly data: Uint8Array,
    options: DecodeOptions,
    private readonly maxItems: number,
  ) {
    this.inner = new Tokenizer(data, options);
  }

  done(): boolean {
    return this.inner.done();
  }

  pos(): number {
    return this.inner.pos();
  }

  next(): Token {
    const start = this.inner.pos();
    const token = this.inner.next();
    if (this.maxItems !== Infinity) this.countItems(token);
    if (token.type === Type.string && token.encodedLength !== undefined) {
      const end = start + token.encodedLength;
      const from = end - textByteLength(this.data, start);
      const data = this.data;
      const startsWithBom =
        data[from] === 0xef && data[from + 1] === 0xbb && data[from + 2] === 0xbf;
      if (startsWithBom || (token.value as string).includes('\uFFFD')) {
        token.value = utf8.decode(data.subarray(from, end));
      }
    }
    return token;
  }

  /**
   * Items known to exist are the root plus every child a head announced (an array's length, a
   * map's two per entry, a tag's one): counting heads, not finished items, refuses
   * `9a 00 40 00 00` (an array of 4 Mi items) before a single child is built.
   */
  private countItems(token: Token): void {
    if (token.type === Type.array) this.known += token.value as number;
    else if (token.type === Type.map) this.known += 2 * (token.value as number);
    else if (token.type === Type.tag) this.known += 1;
    else return;
    if (this.known > this.maxItems) {
      throw new CborError(
        CborErrorCode.TOO_MANY_ITEMS,
        `CBOR input holds more than ${this.maxItems} data items`,
        { maxItems: this.maxItems },
      );
    }
  }
}

/** The length of a definite text string's UTF-8 bytes, from its head (RFC 8949 §3). */
function textByteLength(data: Uint8Array, head: number): number {
  const minor = (data[head] as number) & 0x1f;
  if (minor < 24) return minor;
  const width = 1 << (minor - 24);
  let length = 0;
  for (let i = 1; i <= width; i++) length = length * 256 + (data[head + i] as number);
  return length;
}

function unsupported(reason: string): never {
  throw new CborError(CborErrorCode.UNSUPPORTED_VALUE, `cannot encode value as CBOR: ${reason}`);
}

/** A lone UTF-16 surrogate (high not followed by low, or low not preceded by high). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Typed arrays whose bytes depend on the platform's endianness. */
const MULTI_BYTE_ARRAYS = [
  'Uint16Array',
  'Int16Array',
  'Uint32Array',
  'Int32Array',
  'Float32Array',
  'Float64Array',
  'BigUint64Array',
  'BigInt64Array',
];

/**
 * Values that cborg would encode but that break "one value, one encoding" are refused, so
 * `encodeCanonical` never produces bytes that `decodeCanonical` rejects or that two different
 * values share: `undefined` (also array holes), NaN and infinities (the decoder refuses them),
 * strings with lone surrogates (cborg silently substitutes U+FFFD, so '\uD800' and '\uDC00'
 * would collide), and multi-byte typed arrays (their bytes depend on endianness).
 */
const canonicalEncodeOptions: EncodeOptions = {
  ...rfc8949EncodeOptions,
  typeEncoders: {
    undefined: () => unsupported('undefined is not allowed (use null or omit the key)'),
    number: (value: number) =>
      Number.isFinite(value) ? null : unsupported(`${value} is not allowed`),
    string: (value: string) =>
      LONE_SURROGATE.test(value)
        ? unsupported('string contains a lone UTF-16 surrogate, which has no UTF-8 form')
        : null,
    ...Object.fromEntries(
      MULTI_BYTE_ARRAYS.map((name) => [
        name,
        () => unsupported(`${name} is platform-endian; encode its bytes as a Uint8Array`),
      ]),
    ),
  },
};

/** Encodes `value` in RFC 8949 §4.2.1 deterministic form. */
export function encodeCanonical(value: unknown): Uint8Array {
  try {
    return encode(value, canonicalEncodeOptions);
  } catch (error) {
    if (error instanceof CborError) throw error;
    throw new CborError(
      CborErrorCode.UNSUPPORTED_VALUE,
      `cannot encode value as CBOR: ${(error as Error).message}`,
      {},
      { cause: error },
    );
  }
}

const messageEncodeOptions: EncodeOptions = { ignoreUndefinedProperties: true };

/**
 * CBOR for messages that are neither signed nor hashed (RPC frames), about 4× faster than
 * `encodeCanonical`. Map keys still come out in RFC 8949 order for string keys (cborg's default
 * order — length, then bytes — is the bytewise order of their encodings), and properties whose
 * value is `undefined` are omitted. It does not refuse NaN, infinities or lone surrogates: the
 * schemas at the RPC boundary do, and `decodeStrict` refuses NaN and infinities on receipt.
 */
export function encodeMessage(value: unknown): Uint8Array {
  try {
    return encode(value, messageEncodeOptions);
  } catch (error) {
    throw new CborError(
      CborErrorCode.UNSUPPORTED_VALUE,
      `cannot encode value as CBOR: ${(error as Error).message}`,
      {},
      { cause: error },
    );
  }
}

export interface StrictDecodeOptions {
  /**
   * Most data items (RFC 8949 §2: every array, map, map key and value, tag and scalar counts as
   * one) the input may hold; more is CBOR_TOO_MANY_ITEMS, thrown before the surplus is built.
   * Bytes alone do not bound the work: `a0` (an empty map) is one byte, yet each costs an object.
   * Default: no limit.
   */
  readonly maxItems?: number;
}

/**
 * Decodes one well-formed CBOR item: definite lengths, no duplicate map keys, no undefined,
 * NaN or infinities, and no trailing bytes. Does not insist on canonical form; use
 * `decodeCanonical` for bytes that are signed or hashed.
 */
export function decodeStrict(bytes: Uint8Array, options: StrictDecodeOptions = {}): unknown {
  const maxItems = options.maxItems ?? Infinity;
  if (!(maxItems >= 1)) throw new RangeError(`maxItems must be at least 1, got ${maxItems}`);
  try {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('data to decode must be a Uint8Array');
    // A plain view: cborg's own decode does the same to Buffers before tokenizing.
    const data = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const tokenizer = new ExactTextTokenizer(data, strictDecodeOptions, maxItems);
    return decode(data, { ...strictDecodeOptions, tokenizer });
  } catch (error) {
    if (error instanceof CborError) throw error;
    throw new CborError(
      CborErrorCode.MALFORMED,
      `malformed CBOR: ${(error as Error).message}`,
      { length: bytes.length },
      { cause: error },
    );
  }
}

/**
 * Decodes bytes that must already be in deterministic form: re-encoding the decoded value must
 * give the same bytes, otherwise two encodings of one value could carry one signature.
 *
 * Untrusted input should pass a `maxItems` derived from its schema: decoding and re-encoding
 * cost is per data item, and without a budget 1 MiB of `a0` bytes builds a million objects
 * before any shape check can refuse them.
 */
export function decodeCanonical(bytes: Uint8Array, options: StrictDecodeOptions = {}): unknown {
  const value = decodeStrict(bytes, options);
  const again = encodeCanonical(value);
  if (!bytesEqual(again, bytes)) {
    throw new CborError(
      CborErrorCode.NOT_CANONICAL,
      'CBOR item is not in RFC 8949 §4.2.1 deterministic encoding',
      { length: bytes.length },
    );
  }
  return value;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
