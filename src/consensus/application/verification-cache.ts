import type { KeyObject } from 'node:crypto';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { ed25519PublicKeyFromRaw } from '../../crypto/ed25519.js';
import { BoundedMap } from '../../codec/bounded-map.js';

export interface VerificationCacheOptions {
  /** Imported sender keys kept (default 10,000). */
  readonly maxKeys?: number;
  /** Verified (txHash, signature) pairs kept (default 100,000). */
  readonly maxVerified?: number;
}

export const DEFAULT_MAX_CACHED_KEYS = 10_000;
export const DEFAULT_MAX_VERIFIED = 100_000;

/**
 * Per-application memory of signature work. Importing a raw Ed25519 key into a KeyObject costs
 * as much as verifying with it, so imported keys are kept per sender; and a transaction whose
 * signature was verified at mempool admission is not verified again when its block executes.
 *
 * The verified set remembers the exact signature, not only the txHash: the txHash does not cover
 * the signature, so someone could re-send a verified transaction with its signature replaced.
 * Accepting that copy because its txHash was seen would let nodes that saw the original accept a
 * block that other nodes reject.
 */
export class VerificationCache {
  private readonly keys: BoundedMap<string, KeyObject>;
  private readonly verified: BoundedMap<string, Uint8Array>;

  constructor(options: VerificationCacheOptions = {}) {
    this.keys = new BoundedMap(options.maxKeys ?? DEFAULT_MAX_CACHED_KEYS);
    this.verified = new BoundedMap(options.maxVerified ?? DEFAULT_MAX_VERIFIED);
  }

  /** The sender's public key as a KeyObject (imported once, then from the cache). */
  publicKey(sender: Uint8Array): KeyObject {
    const id = toHex(sender);
    const cached = this.keys.get(id);
    if (cached !== undefined) return cached;
    const key = ed25519PublicKeyFromRaw(sender);
    this.keys.set(id, key);
    return key;
  }

  /** True if exactly this signature was verified for this txHash. */
  wasVerified(txHash: Uint8Array, signature: Uint8Array): boolean {
    const known = this.verified.peek(toHex(txHash));
    return known !== undefined && bytesEqual(known, signature);
  }

  markVerified(txHash: Uint8Array, signature: Uint8Array): void {
    this.verified.set(toHex(txHash), signature.slice());
  }

  /** Drops a transaction that can never be executed again (its block committed). */
  forget(txHash: Uint8Array): void {
    this.verified.delete(toHex(txHash));
  }

  get sizes(): { keys: number; verified: number } {
    return { keys: this.keys.size, verified: this.verified.size };
  }
}
