/**
 * Per-account issuance rate limits as a pure step over a small fixed-window counter: the state
 * is two numbers per account and key, so it fits in the replicated application state, and every
 * validator reaches the same decision from the same block time.
 */

export interface RateLimit {
  /** Certificates allowed per window. */
  readonly max: number;
  readonly windowSeconds: number;
}

export interface RateWindow {
  /** Start of the current window, in seconds since the Unix epoch (a multiple of the window). */
  readonly start: number;
  readonly count: number;
}

export type RateDecision =
  | { readonly allowed: true; readonly window: RateWindow; readonly remaining: number }
  | { readonly allowed: false; readonly window: RateWindow; readonly retryAfterSeconds: number };

/**
 * Decides one issuance at `blockTimeMs` against `limit`, given the stored window (`null` when
 * the account has none). When allowed, `window` is the state to store; when refused, it is the
 * unchanged state and `retryAfterSeconds` says when the next window opens.
 */
export function rateLimitStep(
  window: RateWindow | null,
  blockTimeMs: number,
  limit: RateLimit,
): RateDecision {
  if (
    !Number.isSafeInteger(limit.max) ||
    limit.max < 0 ||
    !Number.isSafeInteger(limit.windowSeconds) ||
    limit.windowSeconds < 1
  ) {
    throw new RangeError('rate limit needs an integer max >= 0 and windowSeconds >= 1');
  }
  const now = Math.floor(blockTimeMs / 1000);
  const start = now - (now % limit.windowSeconds);
  const current = window !== null && window.start === start ? window : { start, count: 0 };
  if (current.count >= limit.max) {
    return {
      allowed: false,
      window: window ?? current,
      retryAfterSeconds: start + limit.windowSeconds - now,
    };
  }
  const next = { start, count: current.count + 1 };
  return { allowed: true, window: next, remaining: limit.max - next.count };
}

/**
 * Whether an issuance would be refused in the window `currentStart` (seconds, a multiple of the
 * window: the window of the latest committed block), given the account's stored `window`. The
 * check before a block time is known (the `ca` module's admission): a later block may fall into
 * a fresh window, so `rateLimitStep` at the block's time still decides. Returns when that window
 * ends (seconds since the Unix epoch) if the account has used it up, else null.
 */
export function rateLimitExhausted(
  window: RateWindow | null,
  currentStart: number,
  limit: RateLimit,
): { readonly windowEnd: number; readonly count: number } | null {
  const count = window !== null && window.start === currentStart ? window.count : 0;
  return count >= limit.max ? { windowEnd: currentStart + limit.windowSeconds, count } : null;
}

/** The start (seconds since the Unix epoch) of the window holding `blockTimeMs`. */
export function rateWindowStart(blockTimeMs: number, limit: RateLimit): number {
  const now = Math.floor(blockTimeMs / 1000);
  return now - (now % limit.windowSeconds);
}
