import type { Waiter } from './waiter.js';

/**
 * What one side offers and the other takes with `accept()`, in arrival order: the connections a
 * listener completed, the streams a peer opened. An arrival goes to the longest-waiting
 * `accept()` or, with none waiting, into the backlog. Once closed, `accept()` returns `null`.
 */
export class AcceptQueue<T> {
  private isClosed = false;
  /** A set keeps arrival order and makes `remove` cheap; arrivals are distinct objects. */
  private readonly backlog = new Set<T>();
  private readonly accepters: Waiter<T | null>[] = [];

  /** Arrivals waiting for an `accept()`. */
  get backlogLength(): number {
    return this.backlog.size;
  }

  offer(item: T): void {
    const accepter = this.accepters.shift();
    if (accepter) accepter.resolve(item);
    else this.backlog.add(item);
  }

  /**
   * Takes `item` out of the backlog if it is still there, e.g. a stream the peer reset before
   * anyone accepted it; returns whether it was.
   */
  remove(item: T): boolean {
    return this.backlog.delete(item);
  }

  accept(): Promise<T | null> {
    const next = this.backlog.values().next();
    if (next.done !== true) {
      this.backlog.delete(next.value);
      return Promise.resolve(next.value);
    }
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
    const unaccepted = [...this.backlog];
    this.backlog.clear();
    return unaccepted;
  }
}
