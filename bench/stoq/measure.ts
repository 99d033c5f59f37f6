/**
 * Measuring loops for the STOQ suite. Every loop is bounded by a count and by a time, and a
 * failing operation is counted (by error code and message) instead of ending the run: the suite
 * reports what it measured and what failed.
 */
import { describeError } from './control.js';

/** Failures by `CODE: message (cause)`, keeping a count per distinct text. */
export class ErrorTally {
  readonly counts = new Map<string, number>();
  total = 0;

  add(error: unknown): void {
    this.total += 1;
    const key = errorText(error);
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  summary(limit = 3): string {
    return [...this.counts]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([text, count]) => `${count}x ${text}`)
      .join('; ');
  }
}

/** Code, message, the authentication failure reason and the cause, as far as they exist. */
export function errorText(error: unknown): string {
  const reason = (error as { detail?: { reason?: unknown } } | null)?.detail?.reason;
  const cause = (error as { cause?: unknown } | null)?.cause;
  return [
    describeError(error),
    reason === undefined ? '' : ` [reason ${String(reason)}]`,
    cause === undefined ? '' : ` (cause: ${describeError(cause)})`,
  ].join('');
}

export interface RateResult {
  /** Operations that succeeded. */
  readonly count: number;
  readonly seconds: number;
  /** Successful operations per second. */
  readonly rate: number;
  readonly errors: ErrorTally;
}

export interface RateOptions {
  readonly seconds: number;
  readonly maxCount: number;
  /** Operations in flight at once (default 1). */
  readonly concurrency?: number;
  /** Give up after this many failures (default: a tenth of maxCount, at least 20). */
  readonly maxErrors?: number;
}

/** Runs `task` with `concurrency` workers until `seconds` pass or `maxCount` were started. */
export async function measureRate(
  task: () => Promise<unknown>,
  options: RateOptions,
): Promise<RateResult> {
  const errors = new ErrorTally();
  const maxErrors = options.maxErrors ?? Math.max(20, Math.floor(options.maxCount / 10));
  const start = performance.now();
  const limit = start + options.seconds * 1000;
  let started = 0;
  let count = 0;
  const worker = async (): Promise<void> => {
    while (started < options.maxCount && performance.now() < limit && errors.total < maxErrors) {
      started += 1;
      try {
        await task();
        count += 1;
      } catch (error) {
        errors.add(error);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 1 }, worker));
  const seconds = (performance.now() - start) / 1000;
  return { count, seconds, rate: count / seconds, errors };
}

export class PhaseTimeout extends Error {
  readonly code = 'BENCH_PHASE_TIMEOUT';
}

/** Rejects if `promise` has not settled within `ms` (the phase is then reported as failed). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new PhaseTimeout(`${what} did not finish within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
