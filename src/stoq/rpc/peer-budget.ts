/**
 * A token bucket per authenticated identity, for the RPC faces' costly read methods
 * (discovery's `resolve`, the CA's `validate`): `rate` calls a second, at most `burst` at once.
 * At most `maxPeers` buckets are kept; past it, full buckets (then the oldest) are dropped. A
 * dropped bucket is full again when next asked for, so dropping full buckets loses nothing.
 */
export class PeerBudget {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  /** `now`: milliseconds of a monotonic clock. */
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number,
    private readonly maxPeers: number = DEFAULT_MAX_BUDGETED_PEERS,
  ) {}

  /** Takes one call from `peer`'s budget; false when none is left. */
  take(peer: string): boolean {
    const now = this.now();
    const held = this.buckets.get(peer);
    const tokens =
      held === undefined
        ? this.burst
        : Math.min(this.burst, held.tokens + (Math.max(0, now - held.at) * this.rate) / 1_000);
    const allowed = tokens >= 1;
    this.buckets.delete(peer);
    this.buckets.set(peer, { tokens: allowed ? tokens - 1 : tokens, at: now });
    if (this.buckets.size > this.maxPeers) this.prune(now);
    return allowed;
  }

  private prune(now: number): void {
    for (const [peer, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) * this.rate) / 1_000 >= this.burst) {
        this.buckets.delete(peer);
      }
    }
    for (const peer of this.buckets.keys()) {
      if (this.buckets.size <= this.maxPeers) break;
      this.buckets.delete(peer);
    }
  }
}

/** Identities whose budget one `PeerBudget` tracks by default. */
export const DEFAULT_MAX_BUDGETED_PEERS = 4_096;
