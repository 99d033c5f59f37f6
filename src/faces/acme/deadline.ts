/**
 * One deadline over work that makes several network requests in turn — a challenge validation
 * (the check, the CAA climb, the corroboration), a corroboration at a validator, finalize's CAA
 * re-check — so each step gets the time left instead of a timeout of its own and the whole ends
 * within `ms` (docs/acme.md, "Limits and what is not there"). The clock is monotonic and real:
 * it is independent of the server's `now`, which tests move to expire objects.
 */

export interface Deadline {
  /** The whole budget, in milliseconds. */
  readonly ms: number;
  /** Aborted once the budget is spent: long-running steps stop on it. */
  readonly signal: AbortSignal;
  /** Milliseconds left (0 once spent). */
  remainingMs(): number;
}

/**
 * A deadline `ms` from now; with `cancel`, its signal also aborts when `cancel` does (the caller
 * went away or its own deadline passed), so the work stops then too.
 */
export function startDeadline(ms: number, cancel?: AbortSignal): Deadline {
  if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`a deadline needs ms > 0, not ${ms}`);
  const started = performance.now();
  const timeout = AbortSignal.timeout(ms);
  return {
    ms,
    signal: cancel === undefined ? timeout : AbortSignal.any([timeout, cancel]),
    remainingMs: () => Math.max(0, ms - (performance.now() - started)),
  };
}

/** What `beforeDeadline` rejects with when the deadline passes first. */
export class DeadlineExpired extends Error {
  constructor(readonly ms: number) {
    super(`not done within ${ms} ms`);
    this.name = 'DeadlineExpired';
  }
}

/**
 * `promise`, or a rejection with `DeadlineExpired` as soon as `deadline` passes. The work behind
 * `promise` is not cancelled by this (steps that can stop watch `deadline.signal`); its late
 * result or failure is ignored.
 */
export function beforeDeadline<T>(promise: Promise<T>, deadline: Deadline): Promise<T> {
  const { signal } = deadline;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(new DeadlineExpired(deadline.ms));
  }
  return new Promise<T>((resolve, reject) => {
    const expire = (): void => reject(new DeadlineExpired(deadline.ms));
    signal.addEventListener('abort', expire, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', expire);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', expire);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
