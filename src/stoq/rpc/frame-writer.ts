import { StoqError, StoqErrorCode } from '../errors.js';
import type { TransportStream } from '../transport.js';
import { asStoqError } from './frame-reader.js';
import { FRAME_PREFIX_BYTES, encodeFrames, encodePayload, frameTooLarge } from './framing.js';

export interface FrameWriterOptions {
  readonly maxMessageBytes: number;
  /** Buffered bytes at which `enqueue` starts returning false. */
  readonly highWaterMark: number;
  readonly onBytes?: (bytes: number) => void;
  /** Called once, when a transport write failed. */
  readonly onError?: (error: StoqError) => void;
}

/**
 * Queues frames and writes them in batches: everything enqueued while the previous transport
 * write is in flight (or within the current microtask) goes out as one buffer in one write.
 * Under load this coalesces thousands of small messages per write with no timer, and an idle
 * stream still sends a lone message at once (no Nagle-style delay).
 *
 * `enqueue` never blocks; it returns false once `bufferedAmount` reaches the high-water mark,
 * and `drain()` resolves when it is below again. The transport's write only resolves when the
 * peer has window for the bytes, so a slow reader holds this writer's buffer at the mark.
 */
export class FrameWriter {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private inFlightBytes = 0;
  private running = false;
  private scheduled = false;
  private finishRequested = false;
  private finished = false;
  private failure: StoqError | null = null;
  private drainWaiters: { resolve(): void; reject(error: StoqError): void }[] = [];
  private finishWaiters: { resolve(): void; reject(error: StoqError): void }[] = [];
  /** `Date.now()` when the transport write in flight started, else 0 (stall detection). */
  writeStartedAt = 0;

  constructor(
    private readonly stream: TransportStream,
    private readonly options: FrameWriterOptions,
  ) {}

  /** Bytes enqueued and not yet accepted by the transport. */
  get bufferedAmount(): number {
    return this.pendingBytes + this.inFlightBytes;
  }

  /** True until the writer failed or its side of the stream was finished. */
  get writable(): boolean {
    return this.failure === null && !this.finishRequested;
  }

  /** Encodes and queues one value; false means "over the high-water mark, await drain()". */
  enqueue(value: unknown): boolean {
    return this.enqueueEncoded(encodePayload(value));
  }

  enqueueEncoded(payload: Uint8Array): boolean {
    if (this.failure) throw this.failure;
    if (this.finishRequested) {
      throw new StoqError(StoqErrorCode.STREAM_RESET, 'write after this side of the stream ended');
    }
    if (payload.length > this.options.maxMessageBytes) {
      throw frameTooLarge(payload.length, this.options.maxMessageBytes);
    }
    this.pending.push(payload);
    this.pendingBytes += payload.length + FRAME_PREFIX_BYTES;
    this.schedule();
    return this.bufferedAmount < this.options.highWaterMark;
  }

  drain(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.bufferedAmount < this.options.highWaterMark) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
  }

  /** Writes everything queued, then finishes this side of the stream. Idempotent. */
  finish(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.finished) return Promise.resolve();
    this.finishRequested = true;
    const done = new Promise<void>((resolve, reject) =>
      this.finishWaiters.push({ resolve, reject }),
    );
    this.schedule();
    return done;
  }

  /** Stops writing: queued frames are dropped and every waiter rejects with `error`. */
  fail(error: StoqError): void {
    if (this.failure) return;
    this.failure = error;
    this.pending = [];
    this.pendingBytes = 0;
    this.inFlightBytes = 0;
    for (const waiter of this.drainWaiters.splice(0)) waiter.reject(error);
    for (const waiter of this.finishWaiters.splice(0)) waiter.reject(error);
    this.options.onError?.(error);
  }

  private schedule(): void {
    if (this.running || this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.running || this.failure) return;
    this.running = true;
    try {
      for (;;) {
        if (this.failure) return;
        if (this.pending.length > 0) {
          const batch = this.pending;
          const bytes = this.pendingBytes;
          this.pending = [];
          this.pendingBytes = 0;
          this.inFlightBytes = bytes;
          const buffer = encodeFrames(batch, bytes - FRAME_PREFIX_BYTES * batch.length);
          this.writeStartedAt = Date.now();
          await this.stream.write(buffer);
          this.writeStartedAt = 0;
          if (this.failure) return;
          this.inFlightBytes = 0;
          this.options.onBytes?.(bytes);
          this.releaseDrainWaiters();
          continue;
        }
        if (this.finishRequested && !this.finished) {
          // A transport that took the whole answer into its own buffer (QUIC's write resolves
          // once the bytes are queued) holds it until the caller reads: waiting for the finish
          // is waiting for the caller's flow control, and counts as a write for the stall timeout.
          this.writeStartedAt = Date.now();
          await this.stream.finish();
          this.writeStartedAt = 0;
          this.finished = true;
          for (const waiter of this.finishWaiters.splice(0)) waiter.resolve();
        }
        return;
      }
    } catch (error) {
      this.writeStartedAt = 0;
      this.fail(asStoqError(error, StoqErrorCode.STREAM_RESET));
    } finally {
      this.running = false;
      // A finish requested while the last write was in flight still needs its turn.
      if (!this.failure && (this.pending.length > 0 || (this.finishRequested && !this.finished))) {
        this.schedule();
      }
    }
  }

  private releaseDrainWaiters(): void {
    if (this.drainWaiters.length === 0 || this.bufferedAmount >= this.options.highWaterMark) return;
    for (const waiter of this.drainWaiters.splice(0)) waiter.resolve();
  }
}
