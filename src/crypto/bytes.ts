import { timingSafeEqual } from 'node:crypto';
import { HyperMeshError } from '../codec/error.js';

/** Small byte helpers shared by the crypto core. */
export enum BytesErrorCode {
  INVALID_HEX = 'BYTES_INVALID_HEX',
  INVALID_BASE64 = 'BYTES_INVALID_BASE64',
}

export class BytesError extends HyperMeshError<BytesErrorCode> {}

/**
 * Byte-wise equality. Equal-length inputs are compared in constant time (they may be MACs or
 * key fingerprints); a length difference is not secret and returns early.
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/** Concatenates byte strings into one fresh array. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** Parses hex (either case, even length, no prefix or separators). */
export function fromHex(hex: string): Uint8Array {
  if (!HEX.test(hex)) {
    throw new BytesError(BytesErrorCode.INVALID_HEX, 'not an even-length hex string', {
      length: hex.length,
    });
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Standard padded base64 (RFC 4648 §4). */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Parses standard padded base64 strictly: Node's decoder silently skips invalid characters, so
 * the text is checked first and must re-encode to itself (no non-zero padding bits).
 */
export function fromBase64(text: string): Uint8Array {
  const invalid = (): BytesError =>
    new BytesError(BytesErrorCode.INVALID_BASE64, 'not canonical padded base64', {
      length: text.length,
    });
  if (!BASE64.test(text)) throw invalid();
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) throw invalid();
  return new Uint8Array(bytes);
}
