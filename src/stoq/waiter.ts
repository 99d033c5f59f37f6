/** The settle functions of a promise that something in the transport resolves later. */
export interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}
