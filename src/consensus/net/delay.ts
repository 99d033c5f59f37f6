/**
 * A wait that ends after `ms`, when `signal` aborts, or when `wake()` is called, whichever comes
 * first (backoff between reconnection attempts that a peer's hello may cut short).
 */
export function delay(
  ms: number,
  signal: AbortSignal,
): { readonly done: Promise<void>; wake(): void } {
  let wake: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const finish = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', finish);
      resolve();
    };
    const timer = setTimeout(finish, ms);
    signal.addEventListener('abort', finish, { once: true });
    wake = finish;
  });
  return { done, wake: () => wake() };
}
