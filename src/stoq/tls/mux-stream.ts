import { StoqError, StoqErrorCode } from '../errors.js';
import type { TransportStream } from '../transport.js';
import { encodeFrame, FrameType, MAX_DATA_PAYLOAD } from './frame.js';

/**
 * Credit every stream starts with in each direction, before any WINDOW_UPDATE (a protocol
 * constant, like HTTP/2's initial window, RFC 9113 §6.9.2). A receiver that wants a bigger window
 * grants the difference with a WINDOW_UPDATE right after the stream opens.
 */
export const INITIAL_STREAM_WINDOW = 256 * 1024;

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

interface PendingWrite extends Waiter<void> {
  /** `null` marks the FIN, queued behind earlier writes. */
  readonly data: Uint8Array | null;
  offset: number;
}

/** What a stream needs from its connection. */
export interface StreamOwner {
  send(frame: Buffer): void;
  /** Resolves `waiter` once the connection's outgoing buffer has room again (or rejects it). */
  afterCongestion(waiter: Waiter<void>): void;
  /** The stream is finished in both directions and may be forgotten. */
  release(stream: MuxStream): void;
  /** The peer broke flow control or stream state; the connection must close. */
  protocolError(error: StoqError): void;
}

/**
 * One multiplexed stream. Flow control is per stream and per direction (RFC 9113 §5.2): the
 * sender spends credit on DATA and stops at zero; the receiver returns credit as the application
 * reads, so a writer whose peer does not read stalls after one window, and other streams go on.
 */
export class MuxStream implements TransportStream {
  readonly id: string;
  private failure: StoqError | null = null;

  private readonly chunks: Uint8Array[] = [];
  private readonly readers: Waiter<Uint8Array | null>[] = [];
  private remoteFinished = false;
  /** Bytes the peer may still send before it needs more credit from us. */
  private receiveAllowance = INITIAL_STREAM_WINDOW;
  /** Bytes read by the application since the last WINDOW_UPDATE we sent. */
  private consumed = 0;

  private readonly writers: PendingWrite[] = [];
  private sendCredit = INITIAL_STREAM_WINDOW;
  private finishQueued = false;
  private finishSent = false;

  constructor(
    readonly streamId: number,
    private readonly owner: StreamOwner,
    private readonly window: number,
  ) {
    this.id = String(streamId);
  }

  /** Grants the peer the part of our window beyond the protocol's initial one. */
  announceWindow(): void {
    const extra = this.window - INITIAL_STREAM_WINDOW;
    if (extra > 0) {
      this.receiveAllowance += extra;
      this.owner.send(
        encodeFrame({ type: FrameType.WINDOW_UPDATE, streamId: this.streamId, credit: extra }),
      );
    }
  }

  read(): Promise<Uint8Array | null> {
    if (this.failure) return Promise.reject(this.failure);
    const chunk = this.chunks.shift();
    if (chunk) {
      this.consumedBytes(chunk.length);
      return Promise.resolve(chunk);
    }
    if (this.remoteFinished) return Promise.resolve(null);
    return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
  }

  write(data: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.finishQueued) {
      return Promise.reject(
        new StoqError(StoqErrorCode.STREAM_RESET, `write after finish on stream ${this.id}`),
      );
    }
    if (data.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.writers.push({ data, offset: 0, resolve, reject });
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

  reset(): void {
    if (this.failure) return;
    const done = this.finishSent && this.remoteFinished;
    if (!done) this.owner.send(encodeFrame({ type: FrameType.RESET, streamId: this.streamId }));
    this.fail(new StoqError(StoqErrorCode.STREAM_RESET, `stream ${this.id} was reset locally`));
  }

  /** Fails every pending and future operation; used for resets and connection loss. */
  fail(error: StoqError): void {
    if (this.failure) return;
    this.failure = error;
    this.chunks.length = 0;
    for (const writer of this.writers.splice(0)) writer.reject(error);
    for (const reader of this.readers.splice(0)) reader.reject(error);
    this.owner.release(this);
  }

  onData(data: Uint8Array): void {
    if (this.failure) return; // we reset it; bytes already in flight are dropped
    if (this.remoteFinished) {
      this.owner.protocolError(
        new StoqError(StoqErrorCode.MALFORMED_FRAME, `DATA after FIN on stream ${this.id}`),
      );
      return;
    }
    if (data.length > this.receiveAllowance) {
      this.owner.protocolError(
        new StoqError(
          StoqErrorCode.MALFORMED_FRAME,
          `peer overran the window of stream ${this.id}`,
          {
            length: data.length,
            allowance: this.receiveAllowance,
          },
        ),
      );
      return;
    }
    if (data.length === 0) return;
    this.receiveAllowance -= data.length;
    const reader = this.readers.shift();
    if (reader) {
      this.consumedBytes(data.length);
      reader.resolve(data);
    } else {
      this.chunks.push(data);
    }
  }

  onFin(): void {
    if (this.failure || this.remoteFinished) return;
    this.remoteFinished = true;
    for (const reader of this.readers.splice(0)) reader.resolve(null);
    this.releaseIfDone();
  }

  onReset(): void {
    this.fail(new StoqError(StoqErrorCode.STREAM_RESET, `stream ${this.id} was reset by the peer`));
  }

  onWindowUpdate(credit: number): void {
    if (this.failure) return;
    if (this.sendCredit + credit > 0xffffffff) {
      this.owner.protocolError(
        new StoqError(StoqErrorCode.MALFORMED_FRAME, `window overflow on stream ${this.id}`),
      );
      return;
    }
    this.sendCredit += credit;
    this.pumpWrites();
  }

  /**
   * Returns credit in batches of a quarter window: fewer frames than one per read, and the
   * unreturned credit never exceeds the window, so a blocked writer always gets some back.
   */
  private consumedBytes(length: number): void {
    this.consumed += length;
    if (this.consumed >= this.window / 4 && !this.remoteFinished) {
      this.receiveAllowance += this.consumed;
      this.owner.send(
        encodeFrame({
          type: FrameType.WINDOW_UPDATE,
          streamId: this.streamId,
          credit: this.consumed,
        }),
      );
      this.consumed = 0;
    }
  }

  private pumpWrites(): void {
    while (this.writers.length > 0 && !this.failure) {
      const writer = this.writers[0] as PendingWrite;
      if (writer.data === null) {
        this.writers.shift();
        this.finishSent = true;
        this.owner.send(encodeFrame({ type: FrameType.FIN, streamId: this.streamId }));
        writer.resolve();
        this.releaseIfDone();
        continue;
      }
      if (this.sendCredit === 0) return;
      const end = Math.min(
        writer.data.length,
        writer.offset + this.sendCredit,
        writer.offset + MAX_DATA_PAYLOAD,
      );
      const piece = writer.data.subarray(writer.offset, end);
      // encodeFrame copies the piece, so the caller may reuse its buffer once write resolves.
      this.owner.send(encodeFrame({ type: FrameType.DATA, streamId: this.streamId, data: piece }));
      this.sendCredit -= piece.length;
      writer.offset = end;
      if (end === writer.data.length) {
        this.writers.shift();
        this.owner.afterCongestion(writer);
      }
    }
  }

  private releaseIfDone(): void {
    if (this.finishSent && this.remoteFinished) this.owner.release(this);
  }
}
