import type { Socket } from 'node:net';
import { AcceptQueue } from '../accept-queue.js';
import { StoqError, StoqErrorCode } from '../errors.js';
import type {
  ProvenKey,
  SocketAddress,
  TransportConnection,
  TransportKind,
  TransportStream,
} from '../transport.js';
import {
  encodeFrame,
  FrameDecoder,
  FrameType,
  GoAwayCode,
  MAX_STREAM_ID,
  type Frame,
} from './frame.js';
import type { Waiter } from '../waiter.js';
import { MuxStream, type StreamOwner } from './mux-stream.js';

export interface MuxOptions {
  readonly kind: TransportKind;
  readonly direction: 'inbound' | 'outbound';
  readonly localAddress: SocketAddress;
  readonly remoteAddress: SocketAddress;
  readonly peerKey: ProvenKey | null;
  /** Receive window per stream; at least `INITIAL_STREAM_WINDOW`. */
  readonly streamWindow: number;
  /** Streams the peer may have open at once; more are refused with RESET. */
  readonly maxInboundStreams: number;
  /** How long to wait for the peer to close after our GOAWAY before dropping the socket. */
  readonly closeGraceMs: number;
}

/** Outgoing bytes buffered above which writes wait for the socket to drain. */
const CONGESTION_BYTES = 1024 * 1024;
const KEEP_ALIVE_MS = 15_000;

let nextConnectionId = 1;

/**
 * Many ordered, flow-controlled streams over one byte stream (a TLS socket). Small writes are
 * coalesced: frames queue in memory and go to the socket in one write per event-loop tick.
 * Anything malformed from the peer ends this connection with a GOAWAY and a typed error; it
 * never throws out of a socket callback.
 */
export class MuxConnection implements TransportConnection, StreamOwner {
  readonly id: string;
  readonly kind: TransportKind;
  readonly direction: 'inbound' | 'outbound';
  readonly localAddress: SocketAddress;
  readonly remoteAddress: SocketAddress;
  readonly peerKey: ProvenKey | null;
  readonly closed: Promise<void>;
  /** Why the connection closed, once it has. */
  closeReason: StoqError | null = null;

  private readonly decoder = new FrameDecoder();
  private readonly streams = new Map<number, MuxStream>();
  private inboundOpen = 0;
  private nextLocalId: number;
  private highestRemoteId = 0;
  private readonly inbound = new AcceptQueue<MuxStream>();

  private outgoing: Buffer[] = [];
  private outgoingBytes = 0;
  private flushScheduled = false;
  private readonly congestionWaiters: Waiter<void>[] = [];

  constructor(
    private readonly socket: Socket,
    private readonly options: MuxOptions,
  ) {
    this.id = `${options.kind}-${nextConnectionId++}`;
    this.kind = options.kind;
    this.direction = options.direction;
    this.localAddress = options.localAddress;
    this.remoteAddress = options.remoteAddress;
    this.peerKey = options.peerKey;
    this.nextLocalId = options.direction === 'outbound' ? 1 : 2;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setNoDelay(true);
    // TCP keep-alive notices a peer that vanished without closing (QUIC has its own PINGs).
    socket.setKeepAlive(true, KEEP_ALIVE_MS);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', (error: Error) => {
      this.shutDown(
        new StoqError(
          StoqErrorCode.CONNECTION_CLOSED,
          `connection ${this.id} failed`,
          {},
          {
            cause: error,
          },
        ),
      );
    });
    socket.on('end', () => {
      this.shutDown(
        new StoqError(StoqErrorCode.CONNECTION_CLOSED, `connection ${this.id} ended by the peer`),
      );
      socket.end();
    });
    socket.on('close', () => {
      this.shutDown(new StoqError(StoqErrorCode.CONNECTION_CLOSED, `connection ${this.id} lost`));
    });
  }

  openStream(): Promise<TransportStream> {
    if (this.closeReason) return Promise.reject(this.closeReason);
    if (this.nextLocalId > MAX_STREAM_ID) {
      return Promise.reject(
        new StoqError(
          StoqErrorCode.RESOURCE_EXHAUSTED,
          `connection ${this.id} ran out of stream ids`,
        ),
      );
    }
    const stream = new MuxStream(this.nextLocalId, this, this.options.streamWindow);
    this.nextLocalId += 2;
    this.streams.set(stream.streamId, stream);
    this.send(encodeFrame({ type: FrameType.OPEN, streamId: stream.streamId }));
    stream.announceWindow();
    return Promise.resolve(stream);
  }

  acceptStream(): Promise<TransportStream | null> {
    return this.inbound.accept();
  }

  close(reason = 'closed'): void {
    if (this.closeReason) return;
    this.goAway(
      GoAwayCode.NORMAL,
      reason,
      new StoqError(StoqErrorCode.CONNECTION_CLOSED, `connection ${this.id} closed: ${reason}`),
    );
  }

  send(frame: Buffer): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.outgoing.push(frame);
    this.outgoingBytes += frame.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // After the current microtasks: a burst of awaited small writes becomes one socket write.
      process.nextTick(() => this.flush());
    }
  }

  afterCongestion(waiter: Waiter<void>): void {
    if (this.closeReason) waiter.reject(this.closeReason);
    else if (this.outgoingBytes + this.socket.writableLength <= CONGESTION_BYTES) waiter.resolve();
    else this.congestionWaiters.push(waiter);
  }

  release(stream: MuxStream): void {
    if (this.streams.get(stream.streamId) !== stream) return;
    this.streams.delete(stream.streamId);
    if (!this.isLocalId(stream.streamId)) this.inboundOpen -= 1;
  }

  protocolError(error: StoqError): void {
    this.goAway(
      GoAwayCode.PROTOCOL_ERROR,
      error.message,
      new StoqError(
        StoqErrorCode.CONNECTION_CLOSED,
        `connection ${this.id} closed: protocol error from peer: ${error.message}`,
        { reason: error.code },
        { cause: error },
      ),
    );
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.outgoingBytes === 0 || this.socket.destroyed || this.socket.writableEnded) return;
    const chunks = this.outgoing;
    const bytes =
      chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.outgoingBytes);
    this.outgoing = [];
    this.outgoingBytes = 0;
    this.socket.write(bytes);
  }

  private onDrain(): void {
    for (const waiter of this.congestionWaiters.splice(0)) waiter.resolve();
  }

  private onData(chunk: Buffer): void {
    if (this.closeReason) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      this.protocolError(
        error instanceof StoqError
          ? error
          : new StoqError(StoqErrorCode.MALFORMED_FRAME, 'undecodable frame', {}, { cause: error }),
      );
      return;
    }
    for (const frame of frames) {
      if (this.closeReason) return;
      this.onFrame(frame);
    }
  }

  private onFrame(frame: Frame): void {
    if (frame.type === FrameType.GOAWAY) {
      const reason = frame.reason === '' ? 'no reason given' : frame.reason;
      this.shutDown(
        new StoqError(
          StoqErrorCode.CONNECTION_CLOSED,
          `connection ${this.id} closed by the peer: ${reason}`,
          { goAwayCode: frame.code },
        ),
      );
      this.socket.end();
      return;
    }
    if (frame.type === FrameType.OPEN) {
      this.onOpen(frame.streamId);
      return;
    }
    const stream = this.streams.get(frame.streamId);
    if (!stream) {
      // Frames for a stream that already ended (e.g. DATA in flight when we reset it) are
      // dropped; frames for a stream that was never opened mean the peer lost track.
      if (!this.wasOpened(frame.streamId)) {
        this.protocolError(
          new StoqError(
            StoqErrorCode.MALFORMED_FRAME,
            `frame type ${frame.type} for stream ${frame.streamId}, which was never opened`,
          ),
        );
      }
      return;
    }
    switch (frame.type) {
      case FrameType.DATA:
        stream.onData(frame.data);
        return;
      case FrameType.FIN:
        stream.onFin();
        return;
      case FrameType.RESET:
        stream.onReset();
        return;
      case FrameType.WINDOW_UPDATE:
        stream.onWindowUpdate(frame.credit);
        return;
    }
  }

  private onOpen(streamId: number): void {
    if (this.isLocalId(streamId) || streamId <= this.highestRemoteId) {
      this.protocolError(
        new StoqError(
          StoqErrorCode.MALFORMED_FRAME,
          `peer opened stream ${streamId} out of order`,
          {
            streamId,
            highest: this.highestRemoteId,
          },
        ),
      );
      return;
    }
    this.highestRemoteId = streamId;
    if (this.inboundOpen >= this.options.maxInboundStreams) {
      // Refused like an HTTP/2 stream over SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §5.1.2).
      this.send(encodeFrame({ type: FrameType.RESET, streamId }));
      return;
    }
    const stream = new MuxStream(streamId, this, this.options.streamWindow);
    this.streams.set(streamId, stream);
    this.inboundOpen += 1;
    stream.announceWindow();
    this.inbound.offer(stream);
  }

  private isLocalId(streamId: number): boolean {
    return (streamId % 2 === 1) === (this.direction === 'outbound');
  }

  private wasOpened(streamId: number): boolean {
    return this.isLocalId(streamId)
      ? streamId < this.nextLocalId
      : streamId <= this.highestRemoteId;
  }

  /** Tells the peer why we close, sends what is queued, and ends the socket. */
  private goAway(code: GoAwayCode, reason: string, error: StoqError): void {
    if (this.closeReason) return;
    this.send(encodeFrame({ type: FrameType.GOAWAY, streamId: 0, code, reason }));
    this.flush();
    this.shutDown(error);
    this.socket.end();
    // The peer answers a GOAWAY by ending its side; one that does not is dropped.
    const timer = setTimeout(() => this.socket.destroy(), this.options.closeGraceMs);
    timer.unref();
    this.socket.once('close', () => clearTimeout(timer));
  }

  private shutDown(error: StoqError): void {
    if (this.closeReason) return;
    this.closeReason = error;
    for (const stream of [...this.streams.values()]) stream.fail(error);
    this.streams.clear();
    for (const stream of this.inbound.close()) stream.fail(error);
    for (const waiter of this.congestionWaiters.splice(0)) waiter.reject(error);
    if (!this.socket.writableEnded) this.flush();
  }
}
