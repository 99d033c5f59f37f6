import { StoqError, StoqErrorCode } from '../errors.js';
import { StreamQueues, type PendingWrite } from '../stream-queues.js';
import type { TransportStream } from '../transport.js';
import type { Waiter } from '../waiter.js';
import { encodeFrame, FrameType, MAX_DATA_PAYLOAD } from './frame.js';

/**
 * Credit every stream starts with in each direction, before any WINDOW_UPDATE (a protocol
 * constant, like HTTP/2's initial window, RFC 9113 §6.9.2). A receiver that wants a bigger window
 * grants the difference with a WINDOW_UPDATE right after the stream opens.
 */
export const INITIAL_STREAM_WINDOW = 256 * 1024;

/** What a stream needs from its connection. */
export interface StreamOwner {
  send(frame: Buffer): void;
  /** Resolves `waiter` once the connection's outgoing buffer has room again (or rejects it). */
  afterCongestion(waiter: Waiter<void>): void;
  /** The stream is finished in both directions and may be forgotten. */
  release(stream: MuxStream): void;
  /**
   * Spends up to `wanted` bytes of the connection's send window now. Returns 0 when the window
   * is used up or the socket is congested; the connection then calls `resumeWrites` once the
   * peer grants more or the socket drained.
   */
  takeSendCredit(stream: MuxStream, wanted: number): number;
  /** The stream failed: its DATA not yet handed to the socket is dropped. */
  discardQueuedData(stream: MuxStream): void;
  /** Received bytes left this stream's buffer (read, or dropped with the stream). */
  freeReceiveCredit(length: number): void;
  /** The peer broke flow control or stream state; the connection must close. */
  protocolError(error: StoqError): void;
}

/**
 * One multiplexed stream. Flow control is per stream and per direction (RFC 9113 §5.2): the
 * sender spends credit on DATA and stops at zero; the receiver returns credit as the application
 * reads, so a writer whose peer does not read stalls after one window, and other streams go on.
 * DATA also spends the connection's window (`StreamOwner.takeSendCredit`), which bounds what a
 * peer can make us buffer across all its streams together.
 */
export class MuxStream extends StreamQueues implements TransportStream {
  readonly id: string;
  /** Bytes the peer may still send before it needs more credit from us. */
  private receiveAllowance = INITIAL_STREAM_WINDOW;
  /** Bytes read by the application since the last WINDOW_UPDATE we sent. */
  private unreturnedCredit = 0;
  private sendCredit = INITIAL_STREAM_WINDOW;
  private finishSent = false;

  constructor(
    readonly streamId: number,
    private readonly owner: StreamOwner,
    private readonly window: number,
  ) {
    // Not copied: encodeFrame copies each piece it sends.
    super(`stream ${streamId}`, false);
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

  reset(): void {
    if (this.failure) return;
    const done = this.finishSent && this.finReceived;
    if (!done) {
      // Abandoned: its DATA still queued need not go out (the RESET makes the peer drop it
      // anyway). A stream finished both ways keeps it: its FIN is queued behind that DATA.
      this.owner.discardQueuedData(this);
      this.owner.send(encodeFrame({ type: FrameType.RESET, streamId: this.streamId }));
    }
    this.fail(new StoqError(StoqErrorCode.STREAM_RESET, `stream ${this.id} was reset locally`));
  }

  /** Fails every pending and future operation; used for resets and connection loss. */
  fail(error: StoqError): void {
    let unread = 0;
    for (const chunk of this.chunks) unread += chunk.length;
    if (this.failQueues(error)) {
      // Dropped bytes no longer occupy the connection's window.
      if (unread > 0) this.owner.freeReceiveCredit(unread);
      this.owner.release(this);
    }
  }

  /** The connection's send window opened again: moves queued writes on. */
  resumeWrites(): void {
    this.pumpWrites();
  }

  onData(data: Uint8Array): void {
    if (this.failure) {
      // We reset it; bytes already in flight are dropped and their connection credit returned.
      this.owner.freeReceiveCredit(data.length);
      return;
    }
    if (this.finReceived) {
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
      this.consumed(data.length);
      reader.resolve(data);
    } else {
      this.chunks.push(data);
    }
  }

  onFin(): void {
    if (this.failure || this.finReceived) return;
    this.finReceived = true;
    for (const reader of this.readers.splice(0)) reader.resolve(null);
    this.releaseIfDone();
  }

  onReset(): void {
    this.owner.discardQueuedData(this);
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
  protected consumed(length: number): void {
    this.owner.freeReceiveCredit(length);
    this.unreturnedCredit += length;
    if (this.unreturnedCredit >= this.window / 4 && !this.finReceived) {
      this.receiveAllowance += this.unreturnedCredit;
      this.owner.send(
        encodeFrame({
          type: FrameType.WINDOW_UPDATE,
          streamId: this.streamId,
          credit: this.unreturnedCredit,
        }),
      );
      this.unreturnedCredit = 0;
    }
  }

  protected pumpWrites(): void {
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
      const wanted = Math.min(
        writer.data.length - writer.offset,
        this.sendCredit,
        MAX_DATA_PAYLOAD,
      );
      const granted = this.owner.takeSendCredit(this, wanted);
      if (granted === 0) return;
      const end = writer.offset + granted;
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
    if (this.finishSent && this.finReceived) this.owner.release(this);
  }
}
