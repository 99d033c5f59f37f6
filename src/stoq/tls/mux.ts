import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
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
  FRAME_HEADER_BYTES,
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
  /**
   * Receive window of the whole connection: bytes the peer may have sent on all its streams
   * together that the application has not read yet. Default `defaultConnectionWindow`.
   */
  readonly connectionWindow?: number;
  /**
   * Control frames (all but DATA) queued while the socket is congested above which the peer
   * counts as not reading and the connection is closed. Default `DEFAULT_MAX_QUEUED_CONTROL_BYTES`.
   */
  readonly maxQueuedControlBytes?: number;
  /**
   * Bytes queued for the peer (our queue and the socket's buffer together) above which the
   * connection is closed as not reading. Default `DEFAULT_MAX_QUEUED_BYTES`.
   */
  readonly maxQueuedBytes?: number;
}

/**
 * Connection-level credit each side starts with before any WINDOW_UPDATE on stream 0 (a protocol
 * constant, like QUIC's initial_max_data, RFC 9000 §4.1 and §18.2).
 */
export const INITIAL_CONNECTION_WINDOW = 1024 * 1024;
/** Default connection window in stream windows: a few streams can run at full speed at once. */
const CONNECTION_WINDOW_STREAMS = 4;
/**
 * Our DATA is held to the peer's windows, but control frames answer what the peer sends (a RESET
 * per refused OPEN, WINDOW_UPDATEs). This much of them queued behind a congested socket means the
 * peer makes us talk while it does not read: the floods of CVE-2019-9512/9514, for which HTTP/2
 * servers also close the connection.
 */
export const DEFAULT_MAX_QUEUED_CONTROL_BYTES = 1024 * 1024;
/**
 * Hard bound on what we hold for one peer: `outgoing` plus the socket's buffer. DATA waits
 * (`takeSendCredit`) while they exceed `CONGESTION_BYTES`, so DATA adds at most that plus one
 * frame; control frames are closed off at `maxQueuedControlBytes`; this is the backstop should
 * anything else queue, so a peer that grants itself credit and stops reading costs a bounded
 * amount whatever it does.
 */
export const DEFAULT_MAX_QUEUED_BYTES = 4 * 1024 * 1024;
/** Largest connection send credit a peer may grant; beyond it the peer is broken. */
const MAX_CONNECTION_CREDIT = 2 ** 40;

/** The default receive window of a connection whose streams each have `streamWindow`. */
export function defaultConnectionWindow(streamWindow: number): number {
  return Math.max(INITIAL_CONNECTION_WINDOW, CONNECTION_WINDOW_STREAMS * streamWindow);
}

/**
 * Outgoing bytes buffered (ours and the socket's) above which DATA is not queued and writes wait
 * for the socket to drain: flow-control credit alone would let a peer that grants itself credit
 * and stops reading TCP make us buffer every write in full.
 */
export const CONGESTION_BYTES = 1024 * 1024;
const KEEP_ALIVE_MS = 15_000;

let nextConnectionId = 1;

/**
 * Many ordered, flow-controlled streams over one byte stream (a TLS socket). Small writes are
 * coalesced: frames queue in memory and go to the socket in one write per event-loop tick.
 * Anything malformed from the peer ends this connection with a GOAWAY and a typed error; it
 * never throws out of a socket callback.
 *
 * What a peer can make us hold is bounded before it has authenticated: received bytes by the
 * connection window, streams by `maxInboundStreams` (reset streams leave the accept backlog at
 * once) or, once the authenticator holds the connection, by one; and our outgoing queue by
 * `CONGESTION_BYTES` for DATA (a reset stream's unsent DATA is dropped), `maxQueuedControlBytes`
 * for control frames and `maxQueuedBytes` for everything together.
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
  /** Streams the peer has opened on this connection, refused ones not counted. */
  private inboundOpened = 0;
  /** Set by `holdUntilAuthenticated`: only the peer's first stream is let in. */
  private held = false;
  private readonly inbound = new AcceptQueue<MuxStream>();

  private readonly connectionWindow: number;
  /** Bytes the peer may still send on the connection before it needs more credit from us. */
  private receiveAllowance = INITIAL_CONNECTION_WINDOW;
  /** Received bytes that left stream buffers since the last connection WINDOW_UPDATE we sent. */
  private unreturnedCredit = 0;
  /** Bytes we may still send on the connection. */
  private sendCredit = INITIAL_CONNECTION_WINDOW;
  /** Streams with DATA waiting for connection credit, in the order they ran out. */
  private readonly creditWaiters = new Set<MuxStream>();
  /** Streams with DATA waiting for the socket to drain, in the order they were held back. */
  private readonly drainWaiters = new Set<MuxStream>();
  private readonly maxQueuedControlBytes: number;
  private readonly maxQueuedBytes: number;

  private outgoing: Buffer[] = [];
  private outgoingBytes = 0;
  /** Bytes of `outgoing` that are not DATA. */
  private outgoingControlBytes = 0;
  /** Streams with DATA frames in `outgoing`, and how many frames, so a reset can drop them. */
  private readonly outgoingDataFrames = new Map<number, number>();
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
    this.connectionWindow =
      options.connectionWindow ?? defaultConnectionWindow(options.streamWindow);
    this.maxQueuedControlBytes = options.maxQueuedControlBytes ?? DEFAULT_MAX_QUEUED_CONTROL_BYTES;
    this.maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
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
    const extra = this.connectionWindow - INITIAL_CONNECTION_WINDOW;
    if (extra > 0) {
      this.receiveAllowance += extra;
      this.send(encodeFrame({ type: FrameType.WINDOW_UPDATE, streamId: 0, credit: extra }));
    }
  }

  /**
   * The authentication exchange starts (auth/authenticator.ts `AuthenticationGate`): until
   * `authenticated`, the peer may open only the one stream the exchange runs on; further OPENs
   * are refused with RESET, and streams beyond the first that are already open are reset now.
   * Only a listener holds its connections: the dialer opens nothing before the listener's final
   * Result, which the listener sends after it called `authenticated`.
   */
  holdUntilAuthenticated(): void {
    if (this.closeReason || this.held) return;
    this.held = true;
    const inbound = [...this.streams.values()]
      .filter((stream) => !this.isLocalId(stream.streamId))
      .sort((a, b) => a.streamId - b.streamId);
    for (const stream of inbound.slice(1)) stream.reset();
  }

  /** Authentication succeeded: the peer may open streams up to `maxInboundStreams` again. */
  authenticated(): void {
    this.held = false;
  }

  /**
   * Keying material exported from the TLS session under this connection (RFC 5705, for TLS 1.3
   * RFC 8446 §7.5): both ends of this one session derive the same bytes and nobody else can,
   * not even a relay holding both sides' keys (it runs two sessions). The authenticator signs it
   * as channel binding (auth/authenticator.ts `channelBinding`, RFC 9266).
   */
  exportKeyingMaterial(length: number, label: string, context: Uint8Array): Uint8Array {
    if (!(this.socket instanceof TLSSocket)) {
      throw new StoqError(StoqErrorCode.INTERNAL, `connection ${this.id} is not a TLS session`);
    }
    try {
      return new Uint8Array(this.socket.exportKeyingMaterial(length, label, Buffer.from(context)));
    } catch (error) {
      throw new StoqError(
        StoqErrorCode.CONNECTION_CLOSED,
        `connection ${this.id} cannot export keying material`,
        {},
        { cause: error },
      );
    }
  }

  /** Received bytes the application has not read yet, on all streams together. */
  get unreadBytes(): number {
    return this.connectionWindow - this.receiveAllowance - this.unreturnedCredit;
  }

  /** Bytes queued for the peer and not yet taken by the kernel: ours and the socket's buffer. */
  get queuedBytes(): number {
    return this.outgoingBytes + this.socket.writableLength;
  }

  /** Streams open in either direction, not yet finished both ways or reset. */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Streams the peer opened that wait for `acceptStream`. */
  get acceptBacklog(): number {
    return this.inbound.backlogLength;
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
    if (frame[0] === FrameType.DATA) {
      const streamId = frame.readUInt32BE(1);
      this.outgoingDataFrames.set(streamId, (this.outgoingDataFrames.get(streamId) ?? 0) + 1);
    } else {
      this.outgoingControlBytes += frame.length;
      if (this.outgoingControlBytes > this.maxQueuedControlBytes && !this.closeReason) {
        const queued = this.outgoingControlBytes;
        this.abandon(
          new StoqError(
            StoqErrorCode.RESOURCE_EXHAUSTED,
            `connection ${this.id} closed: the peer does not read (${queued} bytes of control frames queued for it)`,
            { queued, limit: this.maxQueuedControlBytes },
          ),
        );
        return;
      }
    }
    const queued = this.outgoingBytes + this.socket.writableLength;
    if (queued > this.maxQueuedBytes && !this.closeReason) {
      this.abandon(
        new StoqError(
          StoqErrorCode.RESOURCE_EXHAUSTED,
          `connection ${this.id} closed: the peer does not read (${queued} bytes queued for it)`,
          { queued, limit: this.maxQueuedBytes },
        ),
      );
      return;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // After the current microtasks: a burst of awaited small writes becomes one socket write.
      process.nextTick(() => this.flush());
    }
  }

  afterCongestion(waiter: Waiter<void>): void {
    if (this.closeReason) waiter.reject(this.closeReason);
    else if (!this.congested()) waiter.resolve();
    else this.congestionWaiters.push(waiter);
  }

  /**
   * Drops the DATA of a failed stream that is still queued here (what the socket holds is out
   * of reach) and takes back the connection credit it spent: the peer never receives it.
   */
  discardQueuedData(stream: MuxStream): void {
    if (!this.outgoingDataFrames.delete(stream.streamId)) return;
    const kept: Buffer[] = [];
    let dropped = 0;
    for (const frame of this.outgoing) {
      const own = frame.readUInt32BE(1) === stream.streamId;
      if (own && frame[0] === FrameType.DATA) {
        dropped += frame.length;
        this.sendCredit += frame.length - FRAME_HEADER_BYTES;
      } else if (own && frame[0] === FrameType.FIN) {
        // A FIN behind dropped data would let the peer read a clean, shorter end before the
        // RESET arrives: the stream ends by the RESET alone.
        dropped += frame.length;
      } else {
        kept.push(frame);
      }
    }
    this.outgoing = kept;
    this.outgoingBytes -= dropped;
    // The peer will return no credit for bytes it never gets: other streams may use it now.
    this.wakeCreditWaiters();
  }

  release(stream: MuxStream): void {
    this.creditWaiters.delete(stream);
    this.drainWaiters.delete(stream);
    if (this.streams.get(stream.streamId) !== stream) return;
    this.streams.delete(stream.streamId);
    if (!this.isLocalId(stream.streamId)) {
      this.inboundOpen -= 1;
      // A stream reset before anyone accepted it must not linger in the backlog.
      this.inbound.remove(stream);
    }
  }

  takeSendCredit(stream: MuxStream, wanted: number): number {
    if (this.congested()) {
      this.drainWaiters.add(stream);
      return 0;
    }
    const granted = Math.min(wanted, this.sendCredit);
    if (granted === 0) this.creditWaiters.add(stream);
    this.sendCredit -= granted;
    return granted;
  }

  /** Returns credit in batches of a quarter window, as streams do (see `MuxStream.consumed`). */
  freeReceiveCredit(length: number): void {
    if (this.closeReason) return;
    this.unreturnedCredit += length;
    if (this.unreturnedCredit >= this.connectionWindow / 4) {
      this.receiveAllowance += this.unreturnedCredit;
      this.send(
        encodeFrame({ type: FrameType.WINDOW_UPDATE, streamId: 0, credit: this.unreturnedCredit }),
      );
      this.unreturnedCredit = 0;
    }
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

  /**
   * Writes what is queued to the socket, unless the socket already holds more than
   * `CONGESTION_BYTES` (then `onDrain` writes it): frames wait here, where they are counted,
   * rather than pile up unseen in the socket. `force` writes anyway, for the last frames before
   * closing.
   */
  private flush(force = false): void {
    this.flushScheduled = false;
    if (this.outgoingBytes === 0 || this.socket.destroyed || this.socket.writableEnded) return;
    if (!force && this.socket.writableLength > CONGESTION_BYTES) return;
    const chunks = this.outgoing;
    const bytes =
      chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.outgoingBytes);
    this.outgoing = [];
    this.outgoingBytes = 0;
    this.outgoingControlBytes = 0;
    this.outgoingDataFrames.clear();
    this.socket.write(bytes);
    // The kernel may take it all at once: then no 'drain' follows, and nothing else would wake
    // what waits for room.
    if (!force) this.relieve();
  }

  /** Too much is buffered for the peer already: DATA and writes wait for the socket to drain. */
  private congested(): boolean {
    return this.outgoingBytes + this.socket.writableLength > CONGESTION_BYTES;
  }

  private onDrain(): void {
    this.flush();
    this.relieve();
  }

  /** Wakes writes and streams waiting for room, as far as there is room now. */
  private relieve(): void {
    if (this.congested() || this.closeReason) return;
    for (const waiter of this.congestionWaiters.splice(0)) waiter.resolve();
    // Writing more refills the socket; the streams still waiting then wait for the next drain.
    for (const stream of this.drainWaiters) {
      if (this.congested() || this.closeReason) return;
      this.drainWaiters.delete(stream);
      stream.resumeWrites();
    }
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
    if (frame.type === FrameType.DATA && !this.chargeReceive(frame.data.length)) return;
    if (frame.type === FrameType.WINDOW_UPDATE && frame.streamId === 0) {
      this.onConnectionCredit(frame.credit);
      return;
    }
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
      } else if (frame.type === FrameType.DATA) {
        this.freeReceiveCredit(frame.data.length);
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

  /** Counts received DATA against the connection window; false if the peer overran it. */
  private chargeReceive(length: number): boolean {
    if (length > this.receiveAllowance) {
      this.goAway(
        GoAwayCode.FLOW_CONTROL_ERROR,
        'connection window overrun',
        new StoqError(
          StoqErrorCode.CONNECTION_CLOSED,
          `connection ${this.id} closed: the peer overran the connection window`,
          { length, allowance: this.receiveAllowance, window: this.connectionWindow },
        ),
      );
      return false;
    }
    this.receiveAllowance -= length;
    return true;
  }

  private onConnectionCredit(credit: number): void {
    if (this.sendCredit + credit > MAX_CONNECTION_CREDIT) {
      this.protocolError(
        new StoqError(StoqErrorCode.MALFORMED_FRAME, 'connection window overflow', { credit }),
      );
      return;
    }
    this.sendCredit += credit;
    this.wakeCreditWaiters();
  }

  private wakeCreditWaiters(): void {
    for (const stream of this.creditWaiters) {
      if (this.sendCredit === 0 || this.closeReason) return;
      this.creditWaiters.delete(stream);
      stream.resumeWrites();
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
    // The accept backlog holds only open streams (`release` drops reset ones), so this also caps it.
    if (
      this.inboundOpen >= this.options.maxInboundStreams ||
      (this.held && this.inboundOpened > 0)
    ) {
      // Refused like an HTTP/2 stream over SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §5.1.2).
      this.send(encodeFrame({ type: FrameType.RESET, streamId }));
      return;
    }
    const stream = new MuxStream(streamId, this, this.options.streamWindow);
    this.streams.set(streamId, stream);
    this.inboundOpen += 1;
    this.inboundOpened += 1;
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
    this.flush(true);
    this.shutDown(error);
    this.socket.end();
    // The peer answers a GOAWAY by ending its side; one that does not is dropped.
    const timer = setTimeout(() => this.socket.destroy(), this.options.closeGraceMs);
    timer.unref();
    this.socket.once('close', () => clearTimeout(timer));
  }

  /** Gives up on a peer that cannot be told (it does not read): drops what is queued for it. */
  private abandon(error: StoqError): void {
    this.outgoing = [];
    this.outgoingBytes = 0;
    this.outgoingControlBytes = 0;
    this.outgoingDataFrames.clear();
    this.shutDown(error);
    this.socket.destroy();
  }

  private shutDown(error: StoqError): void {
    if (this.closeReason) return;
    this.closeReason = error;
    this.creditWaiters.clear();
    this.drainWaiters.clear();
    for (const stream of [...this.streams.values()]) stream.fail(error);
    this.streams.clear();
    for (const stream of this.inbound.close()) stream.fail(error);
    for (const waiter of this.congestionWaiters.splice(0)) waiter.reject(error);
    if (!this.socket.writableEnded) this.flush(true);
  }
}
