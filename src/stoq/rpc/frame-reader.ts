import { StoqError, StoqErrorCode } from '../errors.js';
import type { TransportStream } from '../transport.js';
import { FRAME_PREFIX_BYTES, FrameDecoder, decodePayload } from './framing.js';

/** `poll()` results that are not a message. */
export const EMPTY: unique symbol = Symbol('empty');
export const END: unique symbol = Symbol('end');

export interface FrameReaderOptions {
  readonly maxMessageBytes: number;
  /** Most CBOR data items in one frame (default `DEFAULT_MAX_FRAME_ITEMS`). */
  readonly maxItems?: number;
  /**
   * Decodes the first frame instead of `decodePayload` (the server's call header). With it the
   * reader reads nothing after the first frame, and decodes nothing after it, until `release()`:
   * a caller's later frames wait in the transport's flow-control window until the call is
   * authorized.
   */
  readonly header?: (payload: Uint8Array) => unknown;
  /**
   * Decoded-but-unconsumed bytes at which the reader stops reading the transport. The peer's
   * writes then stall in the transport's flow-control window: a slow consumer bounds memory to
   * this plus one transport chunk.
   */
  readonly highWaterMark: number;
  /** Sees every decoded frame as it arrives, before it is queued (status sniffing). */
  readonly inspect?: (value: unknown) => void;
  readonly onBytes?: (bytes: number) => void;
  /** Called once, when the stream failed (transport error or bad frame). */
  readonly onError?: (error: StoqError) => void;
  /**
   * A frame that started arriving must complete within this many milliseconds of waiting for
   * the peer, or the reader fails with DEADLINE_EXCEEDED (reason `stalled-read`). Time the reader
   * spends paused at its high-water mark (our consumer is slow) does not count. Without it the
   * owner watches `partialSince` itself (the server sweeps all its calls on one timer).
   */
  readonly stallTimeoutMs?: number;
}

/**
 * Reads frames from a transport stream ahead of its consumer, up to a high-water mark, and
 * hands out decoded CBOR values. `poll` is synchronous so a consumer drains a whole batch
 * without one promise per message; `wait` resolves when `poll` has something new.
 */
export class FrameReader {
  private items: unknown[] = [];
  private sizes: number[] = [];
  private head = 0;
  private queued = 0;
  private ended = false;
  private failure: StoqError | null = null;
  private pumping = false;
  private waiters: (() => void)[] = [];
  private readonly failureListeners: ((error: StoqError) => void)[] = [];
  private readonly decoder: FrameDecoder;
  /** Set while the first frame was read but `release()` not yet called (`header` option). */
  private holding: boolean;
  private frames = 0;
  /** Frames that arrived with the header's chunk while holding: neither decoded nor inspected. */
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  /** After `discardFrames()`: frames are still delimited, but dropped without decoding. */
  private discarding = false;
  /** `Date.now()` when a frame started arriving and is still incomplete, else 0. */
  partialSince = 0;
  /** Runs while a started frame waits for the peer, with `stallTimeoutMs`. */
  private stallTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly stream: TransportStream,
    private readonly options: FrameReaderOptions,
  ) {
    this.decoder = new FrameDecoder(options.maxMessageBytes);
    this.holding = options.header !== undefined;
  }

  /** Starts reading; separate from the constructor so an owner can wire itself up first. */
  start(): void {
    void this.pump();
  }

  get queuedBytes(): number {
    return this.queued;
  }

  get error(): StoqError | null {
    return this.failure;
  }

  /** True once the peer finished its side and every frame was consumed. */
  get done(): boolean {
    return this.ended && this.held.length === 0 && this.head === this.items.length;
  }

  /** Next decoded value, `EMPTY` if none has arrived yet, or `END`. Throws the stream's error. */
  poll(): unknown {
    if (this.failure) throw this.failure;
    if (this.head === this.items.length) {
      return this.ended && this.held.length === 0 ? END : EMPTY;
    }
    const value = this.items[this.head];
    this.queued -= this.sizes[this.head] as number;
    this.items[this.head] = undefined;
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.sizes = [];
      this.head = 0;
    }
    this.resume();
    return value;
  }

  /** Resolves once `poll` would return something other than `EMPTY` (or throw). */
  wait(): Promise<void> {
    if (this.failure || this.head < this.items.length || (this.ended && this.held.length === 0)) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The call was authorized: decode what arrived after the header, and read on. */
  release(): void {
    if (!this.holding) return;
    this.holding = false;
    const held = this.held;
    this.held = [];
    this.queued -= this.heldBytes;
    this.heldBytes = 0;
    try {
      for (const payload of held) this.accept(payload);
    } catch (error) {
      this.fail(asStoqError(error, StoqErrorCode.MALFORMED_FRAME));
      return;
    }
    if (held.length > 0) this.wake();
    this.resume();
  }

  /**
   * Nothing more will be consumed (the call has its answer): drops what is queued or held, and
   * reads on only to find the peer's end, delimiting frames without decoding them.
   */
  discardFrames(): void {
    if (this.discarding) return;
    this.discarding = true;
    this.holding = false;
    this.dropQueued();
    this.wake();
    this.resume();
  }

  /** Forgets every decoded or held frame not yet consumed. */
  private dropQueued(): void {
    this.items = [];
    this.sizes = [];
    this.head = 0;
    this.held = [];
    this.heldBytes = 0;
    this.queued = 0;
  }

  /** Next value, waiting for it; `END` when the peer finished. */
  async next(): Promise<unknown> {
    for (;;) {
      const value = this.poll();
      if (value !== EMPTY) return value;
      await this.wait();
    }
  }

  /** Adds a listener for the stream's failure; called at once if it already failed. */
  onFailure(listener: (error: StoqError) => void): void {
    if (this.failure) listener(this.failure);
    else this.failureListeners.push(listener);
  }

  /** Marks the reader failed (the owner reset the stream); pending waits wake up. */
  fail(error: StoqError): void {
    if (this.failure) return;
    this.failure = error;
    this.stopStallTimer();
    this.dropQueued();
    this.wake();
    this.options.onError?.(error);
    for (const listener of this.failureListeners.splice(0)) listener(error);
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.ended && !this.failure && this.wantsMore()) {
        if (this.decoder.inFrame) this.startStallTimer();
        const chunk = await this.stream.read();
        if (this.failure) return;
        if (chunk === null) {
          this.decoder.end();
          this.ended = true;
          break;
        }
        this.options.onBytes?.(chunk.length);
        const payloads = this.decoder.push(chunk);
        for (const payload of payloads) {
          if (this.discarding) continue;
          if (this.holding && this.frames > 0) {
            this.held.push(payload);
            this.heldBytes += payload.length + FRAME_PREFIX_BYTES;
            this.queued += payload.length + FRAME_PREFIX_BYTES;
          } else {
            this.accept(payload);
          }
        }
        // A completed frame stops the clock; the next one, if started, gets its own.
        if (payloads.length > 0) this.stopStallTimer();
        if (this.decoder.inFrame) {
          if (this.partialSince === 0) this.partialSince = Date.now();
        } else {
          this.partialSince = 0;
        }
        if (payloads.length > 0) this.wake();
      }
    } catch (error) {
      this.fail(asStoqError(error, StoqErrorCode.STREAM_RESET));
    } finally {
      this.pumping = false;
      // Paused at the high-water mark or done: nothing waits for the peer now.
      this.stopStallTimer();
      if (this.ended) this.wake();
    }
  }

  /** Reading goes on below the high-water mark, and not past a header awaiting `release()`. */
  private wantsMore(): boolean {
    return this.queued < this.options.highWaterMark && !(this.holding && this.frames > 0);
  }

  private resume(): void {
    if (!this.pumping && !this.ended && !this.failure && this.wantsMore()) void this.pump();
  }

  private accept(payload: Uint8Array): void {
    const header = this.frames === 0 ? this.options.header : undefined;
    const value = header ? header(payload) : decodePayload(payload, this.options.maxItems);
    this.frames += 1;
    this.options.inspect?.(value);
    this.items.push(value);
    this.sizes.push(payload.length + FRAME_PREFIX_BYTES);
    this.queued += payload.length + FRAME_PREFIX_BYTES;
  }

  /** Starts the stall clock for the frame now incomplete, unless it already runs for it. */
  private startStallTimer(): void {
    const timeoutMs = this.options.stallTimeoutMs;
    if (timeoutMs === undefined || this.stallTimer !== undefined) return;
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      this.fail(
        new StoqError(
          StoqErrorCode.DEADLINE_EXCEEDED,
          `a frame stayed incomplete for ${timeoutMs} ms`,
          { reason: 'stalled-read', received: this.decoder.partialBytes },
        ),
      );
    }, timeoutMs);
  }

  private stopStallTimer(): void {
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** Errors from below arrive as StoqErrors; anything else is wrapped so codes stay typed. */
export function asStoqError(error: unknown, code: StoqErrorCode): StoqError {
  if (error instanceof StoqError) return error;
  return new StoqError(
    code,
    error instanceof Error ? error.message : String(error),
    {},
    { cause: error },
  );
}
