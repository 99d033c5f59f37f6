import * as nodeCrypto from 'node:crypto';

/**
 * Hashing primitives for the proof's hot loops (slot nonces, stamps, the sequential chain), where
 * the length-prefixed `taggedHash` of crypto/hash.ts would cost a streaming hash per attempt.
 * Hot-loop inputs have a fixed layout instead: `prefix(tag) || fixed-size fields`, where
 * `prefix(tag) = SHA-256(tag) || SHA-256(tag)` is BIP-340's tag prefix (one 64-byte block, so
 * inputs under different tags never coincide). Every field has a fixed size, so no length
 * prefixes are needed for an unambiguous split.
 */

/** One-shot `crypto.hash` (Node ≥ 20.12) is markedly faster than `createHash` for short inputs. */
const digest: (data: Uint8Array) => Buffer =
  typeof nodeCrypto.hash === 'function'
    ? (data) => nodeCrypto.hash('sha256', data, 'buffer')
    : (data) => nodeCrypto.createHash('sha256').update(data).digest();

/** SHA-256 (FIPS 180-4) as a fresh plain Uint8Array. */
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(digest(data));
}

/** SHA-256 as Node's Buffer, for loops that only compare or re-hash the result. */
export const sha256Raw = digest;

const encoder = new TextEncoder();

/** `SHA-256(tag) || SHA-256(tag)`: the 64-byte BIP-340 tag prefix. */
export function tagPrefix(tag: string): Uint8Array {
  const tagHash = sha256(encoder.encode(tag));
  const prefix = new Uint8Array(64);
  prefix.set(tagHash, 0);
  prefix.set(tagHash, 32);
  return prefix;
}

/** Number of leading zero bits of `bytes`, counted from the most significant bit of byte 0. */
export function leadingZeroBits(bytes: Uint8Array): number {
  let bits = 0;
  for (const byte of bytes) {
    if (byte === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

/** True if `bytes` starts with at least `bits` zero bits (false if it has fewer bits). */
export function hasLeadingZeroBits(bytes: Uint8Array, bits: number): boolean {
  if (bits > bytes.length * 8) return false;
  const whole = Math.floor(bits / 8);
  for (let i = 0; i < whole; i++) if (bytes[i] !== 0) return false;
  const rest = bits % 8;
  return rest === 0 || (bytes[whole] as number) >> (8 - rest) === 0;
}

/** Big-endian unsigned 32-bit integer. */
export function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

/** Big-endian unsigned 64-bit integer from a non-negative safe integer. */
export function u64(value: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value));
  return out;
}

/**
 * An index in [0, n) from a digest: its first 8 bytes as a big-endian integer, reduced mod n.
 * The bias is below n / 2^64, negligible for every n used here (n ≤ 2^32).
 */
export function indexFromDigest(digestBytes: Uint8Array, n: number): number {
  const view = new DataView(digestBytes.buffer, digestBytes.byteOffset, 8);
  return Number(view.getBigUint64(0) % BigInt(n));
}
