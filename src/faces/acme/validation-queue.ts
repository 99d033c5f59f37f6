/**
 * Which challenge validations may run now (service.ts starts them). Each validation holds an
 * outbound connection or DNS lookup for up to the validation timeout, so they are capped in
 * total and per account, as Boulder caps its VA's concurrency; the rest wait here, first in
 * first out, and an account at its cap is skipped so it cannot hold up others. A pure data
 * structure: no clock and no I/O; the caller reports each finished validation.
 */

export interface ValidationLimits {
  /** Validations running at once, over all accounts. */
  readonly maxInFlight: number;
  /** Validations running at once for one account. */
  readonly maxInFlightPerAccount: number;
}

export interface QueuedValidation {
  readonly challengeId: string;
  readonly accountId: string;
}

export class ValidationQueue {
  /** Waiting validations by challenge id; a Map iterates in insertion order (FIFO). */
  private readonly waiting = new Map<string, string>();
  private readonly running = new Map<string, string>();
  private readonly runningPerAccount = new Map<string, number>();

  constructor(private readonly limits: ValidationLimits) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(`${name} must be a positive integer, not ${String(value)}`);
      }
    }
  }

  get inFlight(): number {
    return this.running.size;
  }

  get queued(): number {
    return this.waiting.size;
  }

  /** Whether the challenge is waiting or running. */
  has(challengeId: string): boolean {
    return this.waiting.has(challengeId) || this.running.has(challengeId);
  }

  /** Queues a validation; false (and nothing changes) when it is already waiting or running. */
  enqueue(challengeId: string, accountId: string): boolean {
    if (this.has(challengeId)) return false;
    this.waiting.set(challengeId, accountId);
    return true;
  }

  /**
   * Takes the validations that may start now, oldest first, skipping accounts at their cap,
   * and counts them as running until `finish`.
   */
  takeStartable(): QueuedValidation[] {
    const started: QueuedValidation[] = [];
    for (const [challengeId, accountId] of this.waiting) {
      if (this.running.size >= this.limits.maxInFlight) break;
      const ofAccount = this.runningPerAccount.get(accountId) ?? 0;
      if (ofAccount >= this.limits.maxInFlightPerAccount) continue;
      this.waiting.delete(challengeId);
      this.running.set(challengeId, accountId);
      this.runningPerAccount.set(accountId, ofAccount + 1);
      started.push({ challengeId, accountId });
    }
    return started;
  }

  /** A running validation ended (however it ended): its slots are free again. */
  finish(challengeId: string): void {
    const accountId = this.running.get(challengeId);
    if (accountId === undefined) return;
    this.running.delete(challengeId);
    const left = (this.runningPerAccount.get(accountId) ?? 1) - 1;
    if (left === 0) this.runningPerAccount.delete(accountId);
    else this.runningPerAccount.set(accountId, left);
  }

  /** Forgets every waiting validation (the server is stopping); running ones stay counted. */
  dropWaiting(): void {
    this.waiting.clear();
  }
}
