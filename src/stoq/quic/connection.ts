import { StoqError, StoqErrorCode } from '../errors.js';
import type {
  ProvenKey,
  SocketAddress,
  TransportConnection,
  TransportStream,
} from '../transport.js';
import type { QuinnConnection, QuinnStream } from './binding.js';
import { parsePeerMultiaddr } from './peer-id.js';
import { QuicStream, type QuicStreamLimits } from './stream.js';

/**
 * A QUIC connection over the binding. The binding closes connections only abruptly
 * (CONNECTION_CLOSE with application code 0, RFC 9000 §10.2): data not yet received by the peer
 * is lost, as `TransportConnection.close` allows.
 */
export class QuicConnection implements TransportConnection {
  readonly kind = 'quic' as const;
  readonly id: string;
  readonly remoteAddress: SocketAddress;
  readonly peerKey: ProvenKey;
  readonly closed: Promise<void>;
  private closeReason: StoqError | null = null;
  private readonly streams = new Set<QuicStream>();

  /** Parses the peer's address and key; throws `HANDSHAKE_FAILED` if the binding's is odd. */
  constructor(
    private readonly native: QuinnConnection,
    readonly direction: 'inbound' | 'outbound',
    readonly localAddress: SocketAddress,
    private readonly limits: QuicStreamLimits,
  ) {
    const peer = parsePeerMultiaddr(native.remoteMultiaddr());
    this.id = `quic-${native.id()}`;
    this.remoteAddress = peer.address;
    this.peerKey = peer.key;
    this.closed = native.closed().then(
      () => this.shutDown('closed'),
      () => this.shutDown('closed'),
    );
  }

  async openStream(): Promise<TransportStream> {
    if (this.closeReason) throw this.closeReason;
    let native: QuinnStream;
    try {
      native = await this.native.outboundStream();
    } catch (error) {
      this.shutDown('lost', error);
      throw this.closeReason ?? error;
    }
    return this.adopt(native, this.direction === 'outbound');
  }

  async acceptStream(): Promise<TransportStream | null> {
    if (this.closeReason) return null;
    let native: QuinnStream;
    try {
      native = await this.native.inboundStream();
    } catch (error) {
      // quinn's accept_bi fails only with a ConnectionError: the connection is over.
      this.shutDown('lost', error);
      return null;
    }
    if (this.closeReason) return null;
    return this.adopt(native, this.direction === 'inbound');
  }

  close(reason = 'closed'): void {
    if (this.closeReason) return;
    this.shutDown(`closed locally: ${reason}`);
    this.native.abort();
  }

  /** Round-trip time estimate in milliseconds. */
  rtt(): number {
    return this.native.rtt();
  }

  private adopt(native: QuinnStream, initiatedByClient: boolean): QuicStream {
    const stream = new QuicStream(native, initiatedByClient, this.limits, (done) =>
      this.streams.delete(done),
    );
    this.streams.add(stream);
    return stream;
  }

  private shutDown(reason: string, cause?: unknown): void {
    if (this.closeReason) return;
    const message = cause instanceof Error ? `${reason} (${cause.message})` : reason;
    this.closeReason = new StoqError(
      StoqErrorCode.CONNECTION_CLOSED,
      `connection ${this.id} ${message}`,
      {},
      { cause },
    );
    for (const stream of [...this.streams]) stream.fail(this.closeReason);
    this.streams.clear();
  }
}
