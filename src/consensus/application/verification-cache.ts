import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { BoundedMap } from '../../codec/bounded-map.js';

export interface VerificationCacheOptions {
  /** Verified (txHash, signature) pairs kept (default 100,000). */
  readonly maxVerified?: number;
}

export const DEFAULT_MAX_VERIFIED = 100_000;

/**
 * Per-application memory of signature work: a transaction whose signature was verified at
 * mempool admission is not verified again when its block executes.
 *
 * The verified set remembers the exact signature, not only the txHash: the txHash does not cover
 * the signature, so someone could re-send a verified transaction with its signature replaced.
 * Accepting that copy because its txHash was seen would let nodes that saw the original accept a
 * block that other nodes reject.
 */
export class VerificationCache {
  private readonly verified: BoundedMap<string, Uint8Array>;

  constructor(options: VerificationCacheOptions = {}) {
    this.verified = new BoundedMap(options.maxVerified ?? DEFAULT_MAX_VERIFIED);
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

  get sizes(): { verified: number } {
    return { verified: this.verified.size };
  }
}
