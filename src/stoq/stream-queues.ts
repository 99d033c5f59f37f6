import { StoqError, StoqErrorCode } from './errors.js';
import type { Waiter } from './waiter.js';

export interface PendingWrite extends Waiter<void> {
  /** `null` marks the FIN, queued behind earlier writes. */
  readonly data: Uint8Array | null;
  /** Bytes of `data` already passed on. */
  offset: number;
}

/**
 * The application's side of a flow-controlled byte stream: `read()` takes received chunks in
 * order or waits for the next one, and `write()`/`finish()` queue behind each other until the
 * flow control lets them through. A write resolves once its last byte went on, so a caller that
 * awaits each write is held back by a slow reader.
 *
 * The subclass is the flow control: `pumpWrites` moves `writers` on as far as its window or
 * credit allows (and ends the stream when it reaches the FIN entry), and `consumed` hears how
 * many bytes the application took, so it can open the window again.
 */
export abstract class StreamQueues {
  protected failure: StoqError | null = null;
  /** Received bytes the application has not read yet. */
  protected readonly chunks: Uint8Array[] = [];
  protected readonly readers: Waiter<Uint8Array | null>[] = [];
  /** The FIN arrived: once `chunks` is empty, reads return `null`. */
  protected finReceived = false;
  protected readonly writers: PendingWrite[] = [];
  protected finishQueued = false;

  /**
   * @param label how errors name the stream
   * @param copyWrites copy each write's bytes when it is queued, for flow control that keeps
   *   them after the write resolved (the caller may reuse its buffer by then)
   */
  protected constructor(
    private readonly label: string,
    private readonly copyWrites: boolean,
  ) {}

  /** Moves queued writes on as far as the flow control allows. */
  protected abstract pumpWrites(): void;

  /** The application took `length` received bytes. */
  protected abstract consumed(length: number): void;

  read(): Promise<Uint8Array | null> {
    if (this.failure) return Promise.reject(this.failure);
    const chunk = this.chunks.shift();
    if (chunk) {
      this.consumed(chunk.length);
      return Promise.resolve(chunk);
    }
    if (this.finReceived) return Promise.resolve(null);
    return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
  }

  write(data: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.finishQueued) {
      return Promise.reject(
        new StoqError(StoqErrorCode.STREAM_RESET, `write after finish on ${this.label}`),
      );
    }
    if (data.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      // new Uint8Array copies; Buffer#slice would not.
      const queued = this.copyWrites ? new Uint8Array(data) : data;
      this.writers.push({ data: queued, offset: 0, resolve, reject });
      this.pumpWrites();
    });
  }

  finish(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.finishQueued) return Promise.resolve();
    this.finishQueued = true;
    return new Promise<void>((resolve, reject) => {
      this.writers.push({ data: null, offset: 0, resolve, reject });
      this.pumpWrites();
    });
  }

  /**
   * Fails every pending and future operation with `error` and drops what was received; returns
   * false if the stream had already failed.
   */
  protected failQueues(error: StoqError): boolean {
    if (this.failure) return false;
    this.failure = error;
    this.chunks.length = 0;
    for (const writer of this.writers.splice(0)) writer.reject(error);
    for (const reader of this.readers.splice(0)) reader.reject(error);
    return true;
  }
}
