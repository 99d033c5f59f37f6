/**
 * The core of a strict DER codec (ITU-T X.690 §10), shared by the certificate reader
 * (x509.ts) and the CA's codec (src/trustchain/ca/der.ts). The reader accepts only definite,
 * minimal lengths and low tag numbers, and every constructed element must be exactly filled by
 * its children.
 */

export class DerError extends Error {}

/** Universal tags (with the constructed bit for SEQUENCE and SET). */
export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

// ---------------------------------------------------------------------------------------------
// Writing

function lengthBytes(length: number): number[] {
  if (length < 0x80) return [length];
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

/** One TLV with the given tag around `content`. */
export function tlv(tag: number, content: Uint8Array): Uint8Array {
  const length = lengthBytes(content.length);
  const out = new Uint8Array(1 + length.length + content.length);
  out[0] = tag;
  out.set(length, 1);
  out.set(content, 1 + length.length);
  return out;
}

export function octetString(content: Uint8Array): Uint8Array {
  return tlv(TAG.octetString, content);
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}

/** The element at `offset`, which must end by `limit`. */
export function readTlv(bytes: Uint8Array, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new DerError('truncated element');
  const tag = bytes[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used here');
  const first = bytes[offset + 1] as number;
  let length = first;
  let contentStart = offset + 2;
  if (first === 0x80) throw new DerError('indefinite length is not DER');
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count > 4) throw new DerError('length too large');
    if (contentStart + count > limit) throw new DerError('truncated length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (bytes[contentStart + i] as number);
    if (length < 0x80 || bytes[contentStart] === 0) throw new DerError('length is not minimal');
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > limit) throw new DerError('element overruns its container');
  return { tag, start: offset, contentStart, end };
}

/** The single element spanning all of `bytes`. */
export function readWhole(bytes: Uint8Array): Tlv {
  const element = readTlv(bytes, 0, bytes.length);
  if (element.end !== bytes.length) throw new DerError('trailing bytes');
  return element;
}

/** Children of a constructed element; they must exactly fill it. */
export function children(bytes: Uint8Array, parent: Tlv): Tlv[] {
  if (!(parent.tag & 0x20)) throw new DerError('primitive element has no children');
  const out: Tlv[] = [];
  for (let offset = parent.contentStart; offset < parent.end;) {
    const child = readTlv(bytes, offset, parent.end);
    out.push(child);
    offset = child.end;
  }
  return out;
}

export function expect(element: Tlv | undefined, tag: number, what: string): Tlv {
  if (element === undefined || element.tag !== tag) throw new DerError(`expected ${what}`);
  return element;
}

export function contentOf(bytes: Uint8Array, element: Tlv): Uint8Array {
  return bytes.subarray(element.contentStart, element.end);
}

export function encodingOf(bytes: Uint8Array, element: Tlv): Uint8Array {
  return bytes.subarray(element.start, element.end);
}

/**
 * Content bytes of the longest OBJECT IDENTIFIER read. Real ones are under 40 (a UUID-based
 * `2.25.<128-bit>` one is 20). Without a bound one 60 KB arc cost ~0.35 s of BigInt shifting,
 * and a peer's certificate is parsed before anything in it is verified.
 */
export const MAX_OID_BYTES = 128;

/** An OBJECT IDENTIFIER as dotted text; every arc minimally encoded. */
export function readOid(bytes: Uint8Array, element: Tlv): string {
  const value = contentOf(bytes, expect(element, TAG.oid, 'OBJECT IDENTIFIER'));
  if (value.length === 0) throw new DerError('empty OBJECT IDENTIFIER');
  if (value.length > MAX_OID_BYTES) {
    throw new DerError(`OBJECT IDENTIFIER of ${value.length} bytes; at most ${MAX_OID_BYTES}`);
  }
  const arcs: bigint[] = [];
  let arc = 0n;
  let fresh = true;
  for (const [i, byte] of value.entries()) {
    if (fresh && byte === 0x80) throw new DerError('OBJECT IDENTIFIER arc is not minimal');
    arc = (arc << 7n) | BigInt(byte & 0x7f);
    fresh = false;
    if (!(byte & 0x80)) {
      arcs.push(arc);
      arc = 0n;
      fresh = true;
    } else if (i === value.length - 1) {
      throw new DerError('truncated OBJECT IDENTIFIER');
    }
  }
  const head = arcs[0] as bigint;
  const first = head < 40n ? 0n : head < 80n ? 1n : 2n;
  return [first, head - first * 40n, ...arcs.slice(1)].join('.');
}

/** X.690 §11.1: DER encodes TRUE as 0xFF and FALSE as 0x00. */
export function readBoolean(bytes: Uint8Array, element: Tlv): boolean {
  const value = contentOf(bytes, expect(element, TAG.boolean, 'BOOLEAN'));
  if (value.length !== 1 || (value[0] !== 0 && value[0] !== 0xff))
    throw new DerError('bad BOOLEAN');
  return value[0] === 0xff;
}
