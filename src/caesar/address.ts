import { fromHex, toHex } from '../crypto/bytes.js';
import { sha256 } from '../crypto/hash.js';

/**
 * An account's address is SHA-256 of its raw 32-byte Ed25519 public key (RFC 8032 §5.1.5), 32
 * bytes. Hashing rather than using the key itself keeps the address the same size whatever key
 * kind stands behind it (a FALCON-1024 public key is 1,793 bytes), and an address can receive
 * funds before its key is ever revealed. The transaction envelope's sender is that Ed25519 key,
 * so the router's signature check is what authorizes spending from `address(sender)`.
 * Post-quantum (Ed25519 + FALCON-1024) accounts are planned, with an address that can never
 * collide with this one (docs/caesar.md, "Not yet").
 */
export const ADDRESS_BYTES = 32;
export const ED25519_PUBLIC_KEY_BYTES = 32;

export type AccountKeyKind = 'ed25519';

export interface Ed25519AccountKey {
  readonly kind: 'ed25519';
  /** Raw Ed25519 public key, 32 bytes. */
  readonly publicKey: Uint8Array;
}

export type AccountKey = Ed25519AccountKey;

/** The address of a raw Ed25519 public key. Throws `RangeError` for a key of another size. */
export function ed25519Address(publicKey: Uint8Array): Uint8Array {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new RangeError(`an Ed25519 public key is ${ED25519_PUBLIC_KEY_BYTES} bytes`);
  }
  return sha256(publicKey);
}

/** The address of an account key. Throws `RangeError` for a kind it does not know. */
export function accountAddress(key: AccountKey): Uint8Array {
  switch (key.kind) {
    case 'ed25519':
      return ed25519Address(key.publicKey);
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
