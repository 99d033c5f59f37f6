import { StoqError, StoqErrorCode } from '../errors.js';
import type { TransportStream } from '../transport.js';
import type { Waiter } from '../waiter.js';
import type { QuinnStream } from './binding.js';
import { streamError } from './errors.js';

export interface QuicStreamLimits {
  /** Largest chunk one native read asks for. */
  readonly readChunkBytes: number;
  /** Bytes `write()` may buffer in JavaScript before it waits for quinn to take them. */
  readonly writeBufferBytes: number;
}

/**
 * A QUIC bidirectional stream (RFC 9000 §2) over the binding.
 *
 * Every native call is a round trip through the binding's thread pool, so calls are batched:
 * writes are copied into a small buffer and resolve at once while it has room (then they wait,
 * so quinn's flow control still reaches the caller), and one native write carries everything
 * buffered; one native read is kept running ahead of the caller. The binding's read and write
 * take `&mut self` in Rust, so at most one of each runs at a time.
 *
 * A QUIC stream becomes visible to the peer only with its first STREAM frame, so the peer's
 * `acceptStream()` returns it after the first write (or finish), not at `openStream()`.
 */
export class QuicStream implements TransportStream {
  readonly id: string;
  private failure: StoqError | null = null;

  private readonly received: Uint8Array[] = [];
  private readonly readers: Waiter<Uint8Array | null>[] = [];
  private reading = false;
  private remoteFinished = false;

  private buffered: Uint8Array[] = [];
  private bufferedBytes = 0;
  private writing = false;
  private readonly writers: (Waiter<void> & { readonly data: Uint8Array })[] = [];
  private finishRequested = false;
  private finishSent = false;
  private readonly finishers: Waiter<void>[] = [];

  constructor(
    private readonly native: QuinnStream,
    initiatedByClient: boolean,
    private readonly limits: QuicStreamLimits,
    private readonly onDone: (stream: QuicStream) => void,
  ) {
    // The binding reports the stream's index among its kind; the QUIC stream id adds the
    // initiator and direction bits (RFC 9000 §2.1: bidirectional, 0 client / 1 server), so
    // both sides name the stream alike and ids are unique within the connection.
    this.id = String(Number(native.id()) * 4 + (initiatedByClient ? 0 : 1));
  }

  read(): Promise<Uint8Array | null> {
    if (this.failure) return Promise.reject(this.failure);
    const chunk = this.received.shift();
    if (chunk) {
      this.readAhead();
      return Promise.resolve(chunk);
    }
    if (this.remoteFinished) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.readers.push({ resolve, reject });
      this.readAhead();
    });
  }

  write(data: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.finishRequested) {
      return Promise.reject(
        new StoqError(StoqErrorCode.STREAM_RESET, `write after finish on stream ${this.id}`),
      );
    }
    if (data.length === 0) return Promise.resolve();
    if (this.writers.length === 0 && this.bufferedBytes < this.limits.writeBufferBytes) {
      this.buffer(data);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      // Copied now: the caller may reuse its buffer only after the promise resolves, but a copy
      // keeps the bytes it meant even if it does not wait.
      this.writers.push({ data: new Uint8Array(data), resolve, reject });
    });
  }

  finish(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.finishSent) return Promise.resolve();
    this.finishRequested = true;
    return new Promise((resolve, reject) => {
      this.finishers.push({ resolve, reject });
      this.flush();
    });
  }

  reset(): void {
    if (this.failure) return;
    // RESET_STREAM for our sending side and STOP_SENDING for the peer's (RFC 9000 §3.5):
    // the peer's reads and writes on this stream then fail.
    this.releaseNative();
    this.fail(new StoqError(StoqErrorCode.STREAM_RESET, `stream ${this.id} was reset locally`));
  }

  /**
   * Closes whichever native halves are still open. Quinn counts a stream against the peer's
   * concurrent-stream limit until both directions are closed, so a stream that failed (e.g. the
   * peer reset it) must release our halves too, or every such stream leaks one stream credit.
   */
  private releaseNative(): void {
    if (!this.finishSent) settle(() => this.native.resetWrite());
    if (!this.remoteFinished) settle(() => this.native.stopRead());
  }

  /** Fails every pending and future operation (connection closed, or a reset). */
  fail(error: StoqError): void {
    if (this.failure) return;
    this.failure = error;
    this.received.length = 0;
    this.buffered = [];
    this.bufferedBytes = 0;
    for (const waiter of [...this.readers.splice(0), ...this.writers.splice(0)]) {
      waiter.reject(error);
    }
    for (const finisher of this.finishers.splice(0)) finisher.reject(error);
    this.onDone(this);
  }

  private buffer(data: Uint8Array): void {
    // new Uint8Array copies (Buffer#slice would not): the write has already resolved.
    this.buffered.push(new Uint8Array(data));
    this.bufferedBytes += data.length;
    this.flush();
  }

  /** Sends everything buffered in one native write, then the FIN once all data is out. */
  private flush(): void {
    if (this.writing || this.failure) return;
    if (this.bufferedBytes === 0) {
      if (this.finishRequested && !this.finishSent && this.writers.length === 0) {
        this.finishSent = true;
        this.native.finishWrite();
        for (const finisher of this.finishers.splice(0)) finisher.resolve();
        this.doneIfClosed();
      }
      return;
    }
    const chunks = this.buffered;
    const data = chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks);
    this.buffered = [];
    this.bufferedBytes = 0;
    this.writing = true;
    this.native.write(data).then(
      () => {
        this.writing = false;
        // Quinn took the bytes: room for the writers that waited.
        while (this.writers.length > 0 && this.bufferedBytes < this.limits.writeBufferBytes) {
          const writer = this.writers.shift() as Waiter<void> & { readonly data: Uint8Array };
          this.buffered.push(writer.data);
          this.bufferedBytes += writer.data.length;
          writer.resolve();
        }
        this.flush();
      },
      (error: unknown) => {
        this.writing = false;
        this.nativeFailed(error);
      },
    );
  }

  private readAhead(): void {
    if (this.reading || this.remoteFinished || this.failure) return;
    if (this.received.length > 0) return;
    this.reading = true;
    this.native.read(this.limits.readChunkBytes).then(
      (chunk) => {
        this.reading = false;
        if (this.failure) return;
        if (chunk === null) {
          this.remoteFinished = true;
          for (const reader of this.readers.splice(0)) reader.resolve(null);
          this.doneIfClosed();
          return;
        }
        const reader = this.readers.shift();
        if (reader) reader.resolve(chunk);
        else this.received.push(chunk);
        if (this.readers.length > 0 || this.received.length === 0) this.readAhead();
      },
      (error: unknown) => {
        this.reading = false;
        this.nativeFailed(error);
      },
    );
  }

  private nativeFailed(error: unknown): void {
    if (this.failure) return;
    // A reset or a lost connection ends both directions of the stream.
    this.releaseNative();
    this.fail(streamError(this.id, error));
  }

  private doneIfClosed(): void {
    if (this.remoteFinished && this.finishSent) this.onDone(this);
  }
}

/**
 * Runs a native close call whose failure means only that the stream is already gone: it may
 * throw, or return a promise that rejects, once the connection has closed.
 */
function settle(call: () => unknown): void {
  try {
    const result = call();
    if (result instanceof Promise) result.catch(() => undefined);
  } catch {
    // already closed
  }
}
