import { fromHex, toHex } from '../crypto/bytes.js';
import { sha256 } from '../crypto/hash.js';
import { CaesarError, CaesarErrorCode } from './errors.js';

/**
 * An account's address is SHA-256 of its raw 32-byte Ed25519 public key (RFC 8032 §5.1.5), 32
 * bytes. Hashing rather than using the key itself keeps the address the same size whatever key
 * kind stands behind it (a FALCON-1024 public key is 1,793 bytes), and an address can receive
 * funds before its key is ever revealed. The transaction envelope's sender is that Ed25519 key,
 * so the router's signature check is what authorizes spending from `address(sender)`.
 *
 * Reserved slot, not implemented: a post-quantum account holding an Ed25519 key and a
 * FALCON-1024 key, spent by a hybrid signature (src/crypto/hybrid.ts), will be addressed by
 * `taggedHash("hypermesh/caesar/account/falcon1024-hybrid", ed25519Key, falconKey)`
 * (src/crypto/hash.ts). Its input is tagged and longer than 32 bytes, so it can never equal the
 * hash of a plain Ed25519 key. Until that lands, every attempt to use such a key is refused with
 * `CAESAR_FALCON_ACCOUNTS_UNSUPPORTED`.
 */
export const ADDRESS_BYTES = 32;
export const ED25519_PUBLIC_KEY_BYTES = 32;

export type AccountKeyKind = 'ed25519' | 'falcon1024-hybrid';

export interface Ed25519AccountKey {
  readonly kind: 'ed25519';
  /** Raw Ed25519 public key, 32 bytes. */
  readonly publicKey: Uint8Array;
}

/** Reserved for post-quantum accounts (see above); refused by everything for now. */
export interface HybridAccountKey {
  readonly kind: 'falcon1024-hybrid';
  readonly ed25519: Uint8Array;
  readonly falcon: Uint8Array;
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
 * The address of an account key. Throws `CaesarError FALCON_ACCOUNTS_UNSUPPORTED` for a
 * FALCON-1024 hybrid key (reserved, not implemented yet).
 */
export function accountAddress(key: AccountKey): Uint8Array {
  switch (key.kind) {
    case 'ed25519':
      return ed25519Address(key.publicKey);
    case 'falcon1024-hybrid':
      throw new CaesarError(
        CaesarErrorCode.FALCON_ACCOUNTS_UNSUPPORTED,
        'FALCON-1024 hybrid accounts are reserved and not supported yet; use an Ed25519 account key',
        { kind: key.kind },
      );
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
