/**
 * Which challenge validations may run now (service.ts starts them). Each validation holds an
 * outbound connection or DNS lookup for up to the validation timeout, so they are capped in
 * total and per account, as Boulder caps its VA's concurrency. The rest wait here in one queue
 * per account (first in, first out), and a free slot goes to the accounts in turn (round
 * robin): an account with a long backlog gets one slot per round, like every other account
 * with work waiting, so it cannot hold up the others. Each account may also have only so many
 * validations waiting (`maxQueuedPerAccount`). A pure data structure: no clock and no I/O; the
 * caller reports each finished validation. The node's corroborator (src/node/acme-mpic.ts)
 * queues the validations it runs for its peers here too, one queue per caller.
 */

export interface ValidationLimits {
  /** Validations running at once, over all accounts. */
  readonly maxInFlight: number;
  /** Validations running at once for one account. */
  readonly maxInFlightPerAccount: number;
  /** Validations one account may have waiting; `enqueue` refuses more (`full`). */
  readonly maxQueuedPerAccount: number;
}

export interface QueuedValidation {
  readonly challengeId: string;
  readonly accountId: string;
}

/** What `enqueue` did: queued, or nothing because the challenge is already there or the account's queue is full. */
export type EnqueueResult = 'queued' | 'duplicate' | 'full';

export class ValidationQueue {
  /** Waiting validations: the account of each challenge id. */
  private readonly waiting = new Map<string, string>();
  /**
   * Each account's waiting challenge ids, oldest first. A Map iterates in insertion order: the
   * accounts' turn order, an account that starts a validation moving to the back.
   */
  private readonly turns = new Map<string, string[]>();
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

  /** Validations of `accountId` waiting for a slot. */
  queuedOf(accountId: string): number {
    return this.turns.get(accountId)?.length ?? 0;
  }

  /** Whether the challenge is waiting or running. */
  has(challengeId: string): boolean {
    return this.waiting.has(challengeId) || this.running.has(challengeId);
  }

  /**
   * Queues a validation at the back of its account's queue. Nothing changes when it is already
   * waiting or running (`duplicate`) or when the account has `maxQueuedPerAccount` waiting
   * (`full`), unless `overCap` (validations accepted before a restart, queued again by
   * `resume`: they were admitted under the cap once).
   */
  enqueue(challengeId: string, accountId: string, overCap = false): EnqueueResult {
    if (this.has(challengeId)) return 'duplicate';
    const queue = this.turns.get(accountId);
    if (!overCap && (queue?.length ?? 0) >= this.limits.maxQueuedPerAccount) return 'full';
    this.waiting.set(challengeId, accountId);
    if (queue === undefined) this.turns.set(accountId, [challengeId]);
    else queue.push(challengeId);
    return 'queued';
  }

  /**
   * Takes the validations that may start now, one per account per round, accounts in turn
   * (skipping those at their cap), each account's oldest first, and counts them as running
   * until `finish`.
   */
  takeStartable(): QueuedValidation[] {
    const started: QueuedValidation[] = [];
    let progressed = true;
    while (progressed && this.running.size < this.limits.maxInFlight) {
      progressed = false;
      // One round: every account with work waiting, in turn order, gets at most one slot.
      for (const accountId of [...this.turns.keys()]) {
        if (this.running.size >= this.limits.maxInFlight) break;
        const ofAccount = this.runningPerAccount.get(accountId) ?? 0;
        if (ofAccount >= this.limits.maxInFlightPerAccount) continue;
        const queue = this.turns.get(accountId) as string[];
        const challengeId = queue.shift() as string;
        // To the back of the turn order, or out of it when nothing of the account waits.
        this.turns.delete(accountId);
        if (queue.length > 0) this.turns.set(accountId, queue);
        this.waiting.delete(challengeId);
        this.running.set(challengeId, accountId);
        this.runningPerAccount.set(accountId, ofAccount + 1);
        started.push({ challengeId, accountId });
        progressed = true;
      }
    }
    return started;
  }

  /**
   * Takes a waiting validation out of its account's queue (its requester gave up waiting);
   * false when it is not waiting (it started already, or was never queued).
   */
  withdraw(challengeId: string): boolean {
    const accountId = this.waiting.get(challengeId);
    if (accountId === undefined) return false;
    this.waiting.delete(challengeId);
    const queue = this.turns.get(accountId) as string[];
    queue.splice(queue.indexOf(challengeId), 1);
    if (queue.length === 0) this.turns.delete(accountId);
    return true;
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
    this.turns.clear();
  }
}
