import { StoqError, StoqErrorCode } from '../errors.js';
import { MAX_DEADLINE_MS } from './wire.js';

export interface CallOptions {
  /** Time budget for the whole call in milliseconds; DEADLINE_EXCEEDED when it runs out. */
  readonly deadlineMs?: number;
  /** Aborting it cancels the call (CANCELLED); the server's handler sees its signal fire. */
  readonly signal?: AbortSignal;
}

/**
 * A call's deadline and cancellation on the caller's side: one timer and one abort listener,
 * cleaned up by `dispose`. When either fires, registered cleanups run (they reset the stream)
 * and every `race` rejects with DEADLINE_EXCEEDED or CANCELLED, whether or not the server ever
 * answers.
 */
export class CallGuard {
  readonly deadlineAt: number | null;
  private failure: StoqError | null = null;
  private rejectFailed: ((error: StoqError) => void) | null = null;
  private failed: Promise<never> | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly cleanups: ((error: StoqError) => void)[] = [];
  private readonly onSignalAbort: (() => void) | null = null;

  constructor(private readonly options: CallOptions) {
    const { deadlineMs, signal } = options;
    if (deadlineMs !== undefined) {
      if (!Number.isSafeInteger(deadlineMs) || deadlineMs < 1 || deadlineMs > MAX_DEADLINE_MS) {
        throw new StoqError(
          StoqErrorCode.INVALID_ARGUMENT,
          `deadlineMs must be an integer in 1..${MAX_DEADLINE_MS}, got ${deadlineMs}`,
        );
      }
      this.deadlineAt = Date.now() + deadlineMs;
      this.timer = setTimeout(
        () =>
          this.trip(
            new StoqError(
              StoqErrorCode.DEADLINE_EXCEEDED,
              `deadline of ${deadlineMs} ms exceeded`,
              {
                deadlineMs,
              },
            ),
          ),
        deadlineMs,
      );
    } else {
      this.deadlineAt = null;
    }
    if (signal) {
      if (signal.aborted) {
        this.trip(cancelled(signal));
      } else {
        this.onSignalAbort = () => this.trip(cancelled(signal));
        signal.addEventListener('abort', this.onSignalAbort, { once: true });
      }
    }
  }

  /** Time left for the server, rounded up so it never reads as zero while time remains. */
  remainingMs(): number | undefined {
    if (this.deadlineAt === null) return undefined;
    return Math.max(1, Math.ceil(this.deadlineAt - Date.now()));
  }

  /** False when the call has neither deadline nor signal, so nothing can cut it short. */
  get cancellable(): boolean {
    return this.deadlineAt !== null || this.options.signal !== undefined;
  }

  /** Throws if the call was already cancelled or timed out. */
  check(): void {
    if (this.failure) throw this.failure;
  }

  /** `promise`, unless the deadline or cancellation comes first. */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.failure) {
      promise.catch(() => undefined);
      return Promise.reject(this.failure);
    }
    if (!this.cancellable) return promise;
    return Promise.race([promise, this.failedPromise()]);
  }

  /** Runs `cleanup` when the call is cancelled or times out (at once if it already was). */
  onTrip(cleanup: (error: StoqError) => void): void {
    if (this.failure) cleanup(this.failure);
    else this.cleanups.push(cleanup);
  }

  dispose(): void {
    clearTimeout(this.timer);
    if (this.onSignalAbort) this.options.signal?.removeEventListener('abort', this.onSignalAbort);
    this.cleanups.length = 0;
  }

  private failedPromise(): Promise<never> {
    if (!this.failed) {
      this.failed = new Promise<never>((_resolve, reject) => {
        this.rejectFailed = reject;
      });
      this.failed.catch(() => undefined);
    }
    return this.failed;
  }

  private trip(error: StoqError): void {
    if (this.failure) return;
    this.failure = error;
    clearTimeout(this.timer);
    this.rejectFailed?.(error);
    for (const cleanup of this.cleanups.splice(0)) cleanup(error);
  }
}

function cancelled(signal: AbortSignal): StoqError {
  return new StoqError(
    StoqErrorCode.CANCELLED,
    'the call was cancelled',
    {},
    { cause: signal.reason },
  );
}
