/**
 * A small strict DER codec (ITU-T X.690 §10) for the structures the CA reads and writes:
 * PKCS#10 requests, TBSCertificates and the HyperMesh extensions. Writing by hand, rather than
 * through a general ASN.1 library, is what makes a TBSCertificate a pure, byte-exact function
 * of its inputs. The TLV reader and writer, OIDs and BOOLEANs come from src/crypto/der.ts (which
 * the certificate reader shares); the CA's other element types are here.
 */

import { concatBytes } from '../../crypto/bytes.js';
import { DerError, TAG, contentOf, expect, tlv, type Tlv } from '../../crypto/der.js';

export {
  DerError,
  TAG,
  children,
  contentOf,
  encodingOf,
  expect,
  octetString,
  readBoolean,
  readOid,
  readTlv,
  readWhole,
  tlv,
  type Tlv,
} from '../../crypto/der.js';

/** Context-specific tag number `n`, constructed (EXPLICIT or IMPLICIT of a constructed type). */
export function contextConstructed(n: number): number {
  return 0xa0 | n;
}

/** Context-specific tag number `n`, primitive (IMPLICIT of a primitive type). */
export function contextPrimitive(n: number): number {
  return 0x80 | n;
}

// ---------------------------------------------------------------------------------------------
// Writing

export function sequence(...children: readonly Uint8Array[]): Uint8Array {
  return tlv(TAG.sequence, concatBytes(...children));
}

/** SET OF: X.690 §11.6 orders the encoded elements as octet strings. */
export function setOf(...children: readonly Uint8Array[]): Uint8Array {
  const sorted = [...children].sort(compareBytes);
  return tlv(TAG.set, concatBytes(...sorted));
}

export function constructed(tag: number, ...children: readonly Uint8Array[]): Uint8Array {
  return tlv(tag, concatBytes(...children));
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** A non-negative INTEGER (X.690 §8.3: minimal two's complement, so a leading 0x00 when the top bit is set). */
export function unsignedInteger(value: bigint | number): Uint8Array {
  let n = BigInt(value);
  if (n < 0n) throw new DerError('negative INTEGER');
  const bytes: number[] = [];
  do {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  } while (n > 0n);
  if ((bytes[0] as number) & 0x80) bytes.unshift(0);
  return tlv(TAG.integer, Uint8Array.from(bytes));
}

/** An INTEGER from its unsigned big-endian magnitude. */
export function integerFromMagnitude(magnitude: Uint8Array): Uint8Array {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  if (trimmed.length === 0) return tlv(TAG.integer, Uint8Array.of(0));
  return (trimmed[0] as number) & 0x80
    ? tlv(TAG.integer, concatBytes(Uint8Array.of(0), trimmed))
    : tlv(TAG.integer, trimmed);
}

const oidCache = new Map<string, Uint8Array>();

/** OBJECT IDENTIFIER from dotted text (encodings are cached: the same few OIDs recur in every certificate). */
export function oid(dotted: string): Uint8Array {
  let encoded = oidCache.get(dotted);
  if (encoded === undefined) {
    encoded = encodeOid(dotted);
    if (oidCache.size < 1024) oidCache.set(dotted, encoded);
  }
  return encoded;
}

function encodeOid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map((arc) => BigInt(arc));
  if (arcs.length < 2) throw new DerError(`bad OBJECT IDENTIFIER ${dotted}`);
  const [first, second, ...rest] = arcs as [bigint, bigint, ...bigint[]];
  const out: number[] = [];
  for (const arc of [first * 40n + second, ...rest]) {
    const chunk: number[] = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) chunk.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...chunk);
  }
  return tlv(TAG.oid, Uint8Array.from(out));
}

export function bitString(content: Uint8Array, unusedBits = 0): Uint8Array {
  return tlv(TAG.bitString, concatBytes(Uint8Array.of(unusedBits), content));
}

export function booleanTrue(): Uint8Array {
  return Uint8Array.of(TAG.boolean, 1, 0xff);
}

export function derNull(): Uint8Array {
  return Uint8Array.of(TAG.null, 0);
}

const encoder = new TextEncoder();

export function utf8String(value: string): Uint8Array {
  return tlv(TAG.utf8String, encoder.encode(value));
}

export function ia5String(value: string): Uint8Array {
  return tlv(TAG.ia5String, encoder.encode(value));
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/**
 * RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, both in `Z` form with
 * whole seconds. Milliseconds must already be zero.
 */
export function time(date: Date): Uint8Array {
  const ms = date.getTime();
  if (!Number.isFinite(ms) || ms % 1000 !== 0) throw new DerError('time needs whole seconds');
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 9999) throw new DerError('year outside 1950..9999');
  const rest =
    two(date.getUTCMonth() + 1) +
    two(date.getUTCDate()) +
    two(date.getUTCHours()) +
    two(date.getUTCMinutes()) +
    two(date.getUTCSeconds()) +
    'Z';
  return year < 2050
    ? tlv(TAG.utcTime, encoder.encode(two(year % 100) + rest))
    : tlv(TAG.generalizedTime, encoder.encode(String(year) + rest));
}

// ---------------------------------------------------------------------------------------------
// Reading

/** A non-negative INTEGER in minimal encoding, as a bigint. */
export function readUnsigned(bytes: Uint8Array, element: Tlv): bigint {
  const value = contentOf(bytes, expect(element, TAG.integer, 'INTEGER'));
  if (value.length === 0) throw new DerError('empty INTEGER');
  if ((value[0] as number) & 0x80) throw new DerError('negative INTEGER');
  if (value.length > 1 && value[0] === 0 && !((value[1] as number) & 0x80)) {
    throw new DerError('INTEGER is not minimal');
  }
  let n = 0n;
  for (const byte of value) n = (n << 8n) | BigInt(byte);
  return n;
}

/** A small non-negative INTEGER as a safe JavaScript number. */
export function readSmallUnsigned(bytes: Uint8Array, element: Tlv): number {
  const n = readUnsigned(bytes, element);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new DerError('INTEGER too large');
  return Number(n);
}

/** BIT STRING content with zero unused bits (keys and signatures). */
export function readOctetAlignedBitString(bytes: Uint8Array, element: Tlv): Uint8Array {
  const value = contentOf(bytes, expect(element, TAG.bitString, 'BIT STRING'));
  if (value.length === 0 || value[0] !== 0) throw new DerError('BIT STRING has unused bits');
  return value.subarray(1);
}

const decoder = new TextDecoder('utf-8', { fatal: true });

export function readUtf8(bytes: Uint8Array, element: Tlv): string {
  try {
    return decoder.decode(contentOf(bytes, element));
  } catch {
    throw new DerError('string is not UTF-8');
  }
}

/** IA5String / PrintableString content restricted to printable ASCII without spaces. */
export function readPrintableAscii(bytes: Uint8Array, element: Tlv): string {
  const value = contentOf(bytes, element);
  if (value.some((byte) => byte < 0x21 || byte > 0x7e)) throw new DerError('non-printable name');
  return Buffer.from(value).toString('latin1');
}
