import { randomBytes } from 'node:crypto';
import { evictOldest, evictionBatch } from '../../codec/bounded-map.js';

/**
 * Anti-replay nonces (RFC 8555 §6.5): 128 random bits, base64url. Each is accepted once. At most
 * `capacity` are live: issuing one more forgets the oldest, and a nonce older than `maxAgeMs`
 * is refused, so the set stays bounded however many are handed out. Nonces live in memory
 * only: after a restart every client gets one `badNonce`, with a fresh nonce to retry with.
 */
export class NonceStore {
  /** Nonce → issue time (ms). A Map iterates in insertion order: the first key is the oldest. */
  private readonly live = new Map<string, number>();

  constructor(
    readonly capacity: number,
    readonly maxAgeMs: number,
    private readonly now: () => number,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`nonce capacity must be a positive integer, got ${capacity}`);
    }
  }

  get size(): number {
    return this.live.size;
  }

  issue(): string {
    if (this.live.size >= this.capacity) {
      // In batches: see src/codec/bounded-map.ts for why one-at-a-time eviction slows down.
      evictOldest(this.live, this.live.size - this.capacity + evictionBatch(this.capacity));
    }
    const nonce = randomBytes(16).toString('base64url');
    this.live.set(nonce, this.now());
    return nonce;
  }

  /** True once for a live nonce; it is spent whatever the outcome of the request. */
  consume(nonce: string): boolean {
    const issued = this.live.get(nonce);
    if (issued === undefined) return false;
    this.live.delete(nonce);
    return this.now() - issued <= this.maxAgeMs;
  }
}
