import type { z } from 'zod';
import { StoqError, StoqErrorCode } from '../errors.js';
import { EMPTY, END, type FrameReader } from './frame-reader.js';
import type { FrameWriter } from './frame-writer.js';
import {
  MESSAGE_FRAME,
  OK,
  STATUS_FRAME,
  messageFrame,
  parseBySchema,
  parseWireFrame,
  statusError,
  type WireStatus,
} from './wire.js';

/**
 * One side of a message stream: a long-lived, ordered, flow-controlled channel on which both
 * peers send schema-checked messages (consensus votes and gossip).
 *
 * Sending is synchronous and batched: `send` validates, encodes and queues; everything queued
 * while the previous transport write is in flight goes out in one write. When the queue reaches
 * its high-water mark `send` returns false and `drain()` says when to continue, as with Node's
 * `Writable.write`. Receiving is an async iterator that reads ahead only up to a high-water mark,
 * so a slow consumer stalls the peer through transport flow control instead of growing memory.
 */
export interface MessageChannel<In, Out> extends AsyncIterable<In> {
  /** Queues one message. False once the send buffer is at its high-water mark. */
  send(message: Out): boolean;
  /** Resolves when the send buffer is below its high-water mark again. */
  drain(): Promise<void>;
  /** Bytes queued for sending and not yet accepted by the transport. */
  readonly bufferedAmount: number;
  /** Bytes received and not yet consumed by the iterator. */
  readonly receivedBufferedAmount: number;
  /**
   * Ends this side's sending after everything queued was written. The caller's iterator keeps
   * yielding until the server ends; the server's `close` ends the call with status OK.
   */
  close(): Promise<void>;
  /** Resets the stream at once; the peer sees the call cancelled. */
  abort(): void;
  /** Settles when the channel has ended: resolves on a clean end, rejects with the error. */
  readonly closed: Promise<void>;
}

export interface ChannelHooks {
  /** Clean end of this side's sending (caller: finish; server: status OK and finish). */
  close(): Promise<void>;
  /** The channel failed (bad message, protocol error): the owner answers and tears down. */
  fail(error: StoqError): void;
  /** Local abort: reset the stream. */
  abort(): void;
  /** The channel ended (clean when `error` is null); called once. */
  settled?(error: StoqError | null): void;
}

export class StreamMessageChannel<In, Out> implements MessageChannel<In, Out> {
  readonly closed: Promise<void>;
  private settleClosed!: (error: StoqError | null) => void;
  private settled = false;
  private endError: StoqError | null = null;
  /** A terminal status from the server, seen as soon as it arrived (caller side only). */
  private remoteStatus: WireStatus | null = null;

  constructor(
    private readonly side: 'client' | 'server',
    private readonly reader: FrameReader,
    private readonly writer: FrameWriter,
    private readonly incoming: z.ZodType<In, unknown>,
    private readonly outgoing: z.ZodType<unknown, Out>,
    private readonly hooks: ChannelHooks,
  ) {
    this.closed = new Promise<void>((resolve, reject) => {
      this.settleClosed = (error) => (error ? reject(error) : resolve());
    });
    // Awaiting `closed` is optional; an unobserved failure must not become an unhandled rejection.
    this.closed.catch(() => undefined);
  }

  /**
   * Caller side: the reader shows each frame here as it arrives, so a terminal status (e.g.
   * PERMISSION_DENIED) stops `send` at once rather than after the server's reset.
   */
  noticeFrame(value: unknown): void {
    if (this.remoteStatus || !Array.isArray(value) || value[0] !== STATUS_FRAME) return;
    try {
      const frame = parseWireFrame(value);
      if (frame.type !== STATUS_FRAME) return;
      this.remoteStatus = frame.status;
      this.writer.fail(
        frame.status.code === OK
          ? new StoqError(StoqErrorCode.CANCELLED, 'the server ended the message stream')
          : statusError(frame.status),
      );
    } catch {
      // A malformed status is reported when the iterator reaches it.
    }
  }

  get bufferedAmount(): number {
    return this.writer.bufferedAmount;
  }

  get receivedBufferedAmount(): number {
    return this.reader.queuedBytes;
  }

  send(message: Out): boolean {
    const checked = parseBySchema(
      this.outgoing,
      message,
      StoqErrorCode.INVALID_ARGUMENT,
      'message does not match its schema',
    );
    // The parsed value is sent, not the argument: fields the schema does not name never leave.
    return this.writer.enqueue(messageFrame(checked));
  }

  drain(): Promise<void> {
    return this.writer.drain();
  }

  close(): Promise<void> {
    return this.hooks.close();
  }

  abort(): void {
    this.hooks.abort();
  }

  /** The owner reports how the call ended; after an error the iterator rejects with it. */
  settle(error: StoqError | null): void {
    if (this.settled) return;
    this.settled = true;
    this.endError = error;
    this.settleClosed(error);
    this.hooks.settled?.(error);
  }

  [Symbol.asyncIterator](): AsyncIterator<In> {
    return {
      next: () => this.next(),
      return: () => {
        // A caller leaving the loop early abandons the channel, as with a server stream. On
        // the server the handler's return or throw decides how the call ends.
        if (this.side === 'client' && !this.settled) this.hooks.abort();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  private next(): Promise<IteratorResult<In>> {
    if (this.settled) {
      return this.endError
        ? Promise.reject(this.endError)
        : Promise.resolve({ done: true, value: undefined });
    }
    for (;;) {
      let item: unknown;
      try {
        item = this.reader.poll();
      } catch (error) {
        return Promise.reject(error);
      }
      if (item === EMPTY) return this.reader.wait().then(() => this.next());
      try {
        // The common case first: a message frame, without building a WireFrame for it.
        if (Array.isArray(item) && item.length === 2 && item[0] === MESSAGE_FRAME) {
          return Promise.resolve({ done: false, value: this.parseIncoming(item[1]) });
        }
        const result = this.interpret(item);
        if (result) return Promise.resolve(result);
      } catch (error) {
        const failure =
          error instanceof StoqError
            ? error
            : new StoqError(StoqErrorCode.INTERNAL, 'message stream failed');
        this.hooks.fail(failure);
        return Promise.reject(failure);
      }
    }
  }

  /** One inbound item as an iterator result; null for frames that yield nothing. */
  private interpret(item: unknown): IteratorResult<In> | null {
    if (item === END) {
      if (this.side === 'server') return { done: true, value: undefined };
      throw new StoqError(StoqErrorCode.MALFORMED_FRAME, 'stream ended without a status', {
        reason: 'no-status',
      });
    }
    const frame = parseWireFrame(item);
    if (frame.type === MESSAGE_FRAME)
      return { done: false, value: this.parseIncoming(frame.message) };
    if (this.side === 'server') {
      throw new StoqError(StoqErrorCode.MALFORMED_FRAME, 'a caller sent a status frame', {
        reason: 'unexpected-status',
      });
    }
    if (frame.status.code === OK) {
      this.settle(null);
      return { done: true, value: undefined };
    }
    const error = statusError(frame.status);
    this.settle(error);
    throw error;
  }

  private parseIncoming(message: unknown): In {
    // A bad message from the caller is its invalid argument; from the server it is a broken
    // server, which gRPC also reports to the caller as INTERNAL.
    return parseBySchema(
      this.incoming,
      message,
      this.side === 'server' ? StoqErrorCode.INVALID_ARGUMENT : StoqErrorCode.INTERNAL,
      'received message does not match its schema',
      'schema',
    );
  }
}
