/**
 * Named timers of the driver (the consensus timeouts, the commit delay, the sync grace period).
 * Setting a name again replaces its timer; all of them can be cleared at once on stop.
 */
export class Timers {
  private readonly handles = new Map<string, NodeJS.Timeout>();

  set(name: string, delayMs: number, fire: () => void): void {
    this.clear(name);
    const handle = setTimeout(() => {
      this.handles.delete(name);
      fire();
    }, delayMs);
    this.handles.set(name, handle);
  }

  has(name: string): boolean {
    return this.handles.has(name);
  }

  clear(name: string): void {
    const handle = this.handles.get(name);
    if (handle !== undefined) {
      clearTimeout(handle);
      this.handles.delete(name);
    }
  }

  /** Clears every timer whose name passes `test`. */
  clearWhere(test: (name: string) => boolean): void {
    for (const name of [...this.handles.keys()]) if (test(name)) this.clear(name);
  }

  clearAll(): void {
    this.clearWhere(() => true);
  }

  get size(): number {
    return this.handles.size;
  }
}
