import type { Session } from './identity.js';

/**
 * A session authenticated in delegated mode: the peer's transport key is vouched for by its
 * FALCON key only until the delegation's `notAfter`, so the session ends then (at the latest).
 */
export interface DelegatedSession extends Session {
  readonly delegationNotAfter: Date;
}

/**
 * When an authenticated session must end: the first `notAfter` on the peer's verified path
 * (leaf, intermediates, root: the handshake refuses a path any certificate of which is outside
 * its validity, so an open session may not outlive any of them either), or the leaf's
 * `notAfter` for a session made without a path; and no later than the end of the peer's
 * delegation, in delegated mode (the handshake refuses an expired delegation, too).
 */
export function sessionNotAfter(session: Session & Partial<DelegatedSession>): Date {
  let earliest = session.peer.notAfter.getTime();
  for (const certificate of session.path ?? []) {
    earliest = Math.min(earliest, certificate.notAfter.getTime());
  }
  if (session.delegationNotAfter !== undefined) {
    earliest = Math.min(earliest, session.delegationNotAfter.getTime());
  }
  return new Date(earliest);
}

/** The longest delay `setTimeout` honours; a longer one fires at once (Node clamps it to 1). */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** Wall-clock time and timers, injectable so tests need not wait for real certificates. */
export interface SessionClock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: SessionClock = {
  now: () => Date.now(),
  setTimeout: (callback, delayMs) => {
    const timer = setTimeout(callback, delayMs);
    // The connection keeps the process alive while it is open, not its expiry timer.
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Calls `onExpired` once `clock.now()` has passed `notAfter` (at once if it already has; the
 * validity period includes `notAfter` itself, RFC 5280 §4.1.2.5, as `verifyChain` has it).
 * Dates further away than `MAX_TIMER_DELAY_MS` (~24.8 days) are reached in steps: each timer
 * re-arms for the time left. Returns a cancel function; after it, `onExpired` is never called.
 */
export function onExpiry(notAfter: Date, onExpired: () => void, clock: SessionClock): () => void {
  let handle: unknown = null;
  let cancelled = false;
  const arm = (): void => {
    if (cancelled) return;
    const left = notAfter.getTime() - clock.now();
    if (left < 0) {
      handle = null;
      cancelled = true;
      onExpired();
      return;
    }
    handle = clock.setTimeout(arm, Math.min(left + 1, MAX_TIMER_DELAY_MS));
  };
  arm();
  return () => {
    cancelled = true;
    if (handle !== null) clock.clearTimeout(handle);
    handle = null;
  };
}
