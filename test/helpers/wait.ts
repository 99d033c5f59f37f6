import type { EventEmitter } from 'node:events';

/**
 * `promise`, or a failure naming `what` once `ms` pass. The timer is only the failure deadline.
 */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolves once `condition` holds: it is checked now, and again after each `event` that
 * `emitter` emits — never on a timer. A burst of events in one synchronous run costs one check,
 * made once the emitting code has finished its step; an async condition runs once at a time,
 * and events during a check ask for one more check after it. Fails with `what` (a function is
 * called at the deadline, so it can tell the state then) after `timeoutMs`, the only timer.
 */
export function waitForCondition(
  emitter: EventEmitter,
  event: string,
  condition: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs: number,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let running = false;
    let again = false;
    let done = false;
    const finish = (error: Error | null): void => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      emitter.off(event, onEvent);
      if (error === null) resolve();
      else reject(error);
    };
    const check = async (): Promise<void> => {
      try {
        do {
          again = false;
          if (await condition()) finish(null);
        } while (again && !done);
      } catch (error) {
        finish(error as Error);
      } finally {
        running = false;
      }
    };
    const onEvent = (): void => {
      if (done) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      queueMicrotask(() => void check());
    };
    const deadline = setTimeout(() => {
      const text = typeof what === 'function' ? what() : what;
      finish(new Error(`timed out after ${timeoutMs} ms waiting for ${text}`));
    }, timeoutMs);
    emitter.on(event, onEvent);
    running = true;
    void check();
  });
}
