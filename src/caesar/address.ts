import { fromHex, toHex } from '../crypto/bytes.js';
import { FALCON1024_PUBLIC_KEY_BYTES } from '../crypto/falcon.js';
import { sha256, taggedHash } from '../crypto/hash.js';

/**
 * An account's address is SHA-256 of its raw 32-byte Ed25519 public key (RFC 8032 §5.1.5), 32
 * bytes. Hashing rather than using the key itself keeps the address the same size whatever key
 * kind stands behind it (a FALCON-1024 public key is 1,793 bytes), and an address can receive
 * funds before its key is ever revealed. The transaction envelope's sender is that Ed25519 key,
 * so the router's signature check is what authorizes spending from `address(sender)`.
 *
 * A hybrid (post-quantum) account has an Ed25519 and a FALCON-1024 key, and its address is the
 * tagged hash of both (`hybridAddress`), so it never equals the Ed25519-only address of the same
 * Ed25519 key and only a transaction signed with both keys spends from it (hybrid.ts).
 */
export const ADDRESS_BYTES = 32;
export const ED25519_PUBLIC_KEY_BYTES = 32;
/** Tag of the hybrid address hash (`taggedHash`, src/crypto/hash.ts). */
export const HYBRID_ADDRESS_TAG = 'hypermesh/caesar/address/ed25519+falcon-1024-r3';

export type AccountKeyKind = 'ed25519' | 'ed25519+falcon-1024';

export interface Ed25519AccountKey {
  readonly kind: 'ed25519';
  /** Raw Ed25519 public key, 32 bytes. */
  readonly publicKey: Uint8Array;
}

export interface HybridAccountKey {
  readonly kind: 'ed25519+falcon-1024';
  /** Raw Ed25519 public key, 32 bytes: the transaction sender. */
  readonly publicKey: Uint8Array;
  /** FALCON-1024 (Round 3) public key, 1,793 bytes. */
  readonly falconPublicKey: Uint8Array;
}

export type AccountKey = Ed25519AccountKey | HybridAccountKey;

/** The address of a raw Ed25519 public key. Throws `RangeError` for a key of another size. */
export function ed25519Address(publicKey: Uint8Array): Uint8Array {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new RangeError(`an Ed25519 public key is ${ED25519_PUBLIC_KEY_BYTES} bytes`);
  }
  return sha256(publicKey);
}

/**
 * The address of a hybrid account:
 *
 *   SHA-256(SHA-256(tag) || SHA-256(tag) || u64be(32) || ed25519Key || u64be(1793) || falconKey)
 *
 * with tag `HYBRID_ADDRESS_TAG` (BIP-340's tagged hash with length-prefixed parts). Its input
 * is never the 32 bytes an Ed25519-only address hashes, so the two kinds cannot be made to
 * coincide short of a SHA-256 collision. Throws `RangeError` for keys of the wrong sizes.
 */
export function hybridAddress(
  ed25519PublicKey: Uint8Array,
  falconPublicKey: Uint8Array,
): Uint8Array {
  if (
    !(ed25519PublicKey instanceof Uint8Array) ||
    ed25519PublicKey.length !== ED25519_PUBLIC_KEY_BYTES
  ) {
    throw new RangeError(`an Ed25519 public key is ${ED25519_PUBLIC_KEY_BYTES} bytes`);
  }
  if (
    !(falconPublicKey instanceof Uint8Array) ||
    falconPublicKey.length !== FALCON1024_PUBLIC_KEY_BYTES
  ) {
    throw new RangeError(`a FALCON-1024 public key is ${FALCON1024_PUBLIC_KEY_BYTES} bytes`);
  }
  return taggedHash(HYBRID_ADDRESS_TAG, ed25519PublicKey, falconPublicKey);
}

/** The address of an account key. Throws `RangeError` for a kind it does not know. */
export function accountAddress(key: AccountKey): Uint8Array {
  switch (key.kind) {
    case 'ed25519':
      return ed25519Address(key.publicKey);
    case 'ed25519+falcon-1024':
      return hybridAddress(key.publicKey, key.falconPublicKey);
    default: {
      const kind: unknown = (key as { kind?: unknown }).kind;
      throw new RangeError(`unknown account key kind ${String(kind)}`);
    }
  }
}

const ADDRESS_HEX = /^[0-9a-f]{64}$/;

/** An address as 64 lowercase hex digits (how genesis files and the CLI write it). */
export function formatAddress(address: Uint8Array): string {
  return toHex(address);
}

/** Parses 64 lowercase hex digits; returns undefined for anything else. */
export function parseAddress(text: string): Uint8Array | undefined {
  if (!ADDRESS_HEX.test(text)) return undefined;
  return fromHex(text);
}
