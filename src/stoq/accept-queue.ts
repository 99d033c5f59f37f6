import type { Waiter } from './waiter.js';

/**
 * What one side offers and the other takes with `accept()`, in arrival order: the connections a
 * listener completed, the streams a peer opened. An arrival goes to the longest-waiting
 * `accept()` or, with none waiting, into the backlog. Once closed, `accept()` returns `null`.
 */
export class AcceptQueue<T> {
  private isClosed = false;
  private readonly backlog: T[] = [];
  private readonly accepters: Waiter<T | null>[] = [];

  /** Arrivals waiting for an `accept()`. */
  get backlogLength(): number {
    return this.backlog.length;
  }

  offer(item: T): void {
    const accepter = this.accepters.shift();
    if (accepter) accepter.resolve(item);
    else this.backlog.push(item);
  }

  accept(): Promise<T | null> {
    const item = this.backlog.shift();
    if (item !== undefined) return Promise.resolve(item);
    if (this.isClosed) return Promise.resolve(null);
    return new Promise((resolve, reject) => this.accepters.push({ resolve, reject }));
  }

  /**
   * Answers every waiting `accept()` with `null` and empties the backlog; returns the arrivals
   * nobody took, for the owner to close.
   */
  close(): T[] {
    this.isClosed = true;
    for (const accepter of this.accepters.splice(0)) accepter.resolve(null);
    return this.backlog.splice(0);
  }
}
