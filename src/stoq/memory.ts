import { AcceptQueue } from './accept-queue.js';
import { StoqError, StoqErrorCode, dialAbortedError, transportClosedError } from './errors.js';
import { positiveIntegerOption } from './options.js';
import { StreamQueues, type PendingWrite } from './stream-queues.js';
import type {
  DialOptions,
  ProvenKey,
  SocketAddress,
  Transport,
  TransportConnection,
  TransportListener,
  TransportStream,
} from './transport.js';
import type { Waiter } from './waiter.js';

/**
 * An in-process STOQ transport with the same semantics as the network ones: per-stream
 * flow-control windows (a write resolves only once the peer has buffer space for it), FIN,
 * resets, connection close. It moves no bytes over sockets, so tests of the layers above
 * (authentication, RPC) are fast and deterministic.
 *
 * Transports created from one `MemoryNetwork` can reach each other; listen addresses are plain
 * names inside that network.
 */

/** Receive buffer per stream direction; the writer waits when the reader is this far behind. */
export const MEMORY_STREAM_WINDOW = 256 * 1024;

export interface MemoryTransportOptions {
  /**
   * Raw 32-byte Ed25519 public key the peer sees as `peerKey`. Without one the peer sees
   * `null`, like a TLS client that sent no certificate.
   */
  readonly publicKey?: Uint8Array;
  /** Flow-control window per stream direction in bytes (default `MEMORY_STREAM_WINDOW`). */
  readonly streamWindow?: number;
}

export interface MemoryNetwork {
  transport(options?: MemoryTransportOptions): Transport;
}

export function createMemoryNetwork(): MemoryNetwork {
  const network = new Network();
  return { transport: (options = {}) => new MemoryTransport(network, options) };
}

/** One direction of a stream: the writer's queue, the reader's buffer and the window between. */
class Pipe extends StreamQueues {
  /** Bytes in `chunks`, which the window bounds. */
  private buffered = 0;

  constructor(private readonly window: number) {
    // Copied: a piece stays in the reader's buffer after its write resolved.
    super('this stream', true);
  }

  fail(error: StoqError): void {
    if (this.failQueues(error)) this.buffered = 0;
  }

  protected consumed(length: number): void {
    this.buffered -= length;
    this.pumpWrites();
  }

  /** Moves queued writes into the reader's buffer as far as the window allows. */
  protected pumpWrites(): void {
    let progressed = true;
    while (progressed) {
      progressed = false;
      while (this.writers.length > 0) {
        const writer = this.writers[0] as PendingWrite;
        if (writer.data === null) {
          this.writers.shift();
          this.finReceived = true;
          writer.resolve();
          progressed = true;
          continue;
        }
        const room = this.window - this.buffered;
        if (room <= 0) break;
        const end = Math.min(writer.data.length, writer.offset + room);
        const piece = writer.data.subarray(writer.offset, end);
        writer.offset = end;
        this.chunks.push(piece);
        this.buffered += piece.length;
        progressed = true;
        if (end === writer.data.length) {
          this.writers.shift();
          writer.resolve();
        }
      }
      // Serving waiting readers frees window space, so writers may move again.
      while (this.readers.length > 0) {
        const chunk = this.chunks.shift();
        if (chunk) {
          this.buffered -= chunk.length;
          (this.readers.shift() as Waiter<Uint8Array | null>).resolve(chunk);
          progressed = true;
        } else if (this.finReceived) {
          (this.readers.shift() as Waiter<Uint8Array | null>).resolve(null);
        } else {
          break;
        }
      }
    }
  }
}

class MemoryStream implements TransportStream {
  constructor(
    readonly id: string,
    private readonly incoming: Pipe,
    private readonly outgoing: Pipe,
  ) {}

  read(): Promise<Uint8Array | null> {
    return this.incoming.read();
  }

  write(data: Uint8Array): Promise<void> {
    return this.outgoing.write(data);
  }

  finish(): Promise<void> {
    return this.outgoing.finish();
  }

  reset(): void {
    const error = new StoqError(StoqErrorCode.STREAM_RESET, `stream ${this.id} was reset`);
    this.incoming.fail(error);
    this.outgoing.fail(error);
  }

  abort(error: StoqError): void {
    this.incoming.fail(error);
    this.outgoing.fail(error);
  }
}

let nextConnectionId = 1;

class MemoryConnection implements TransportConnection {
  readonly kind = 'memory' as const;
  readonly id: string;
  readonly closed: Promise<void>;
  peer!: MemoryConnection;
  private markClosed!: () => void;
  private isClosed = false;
  private nextStreamId: number;
  private readonly streams = new Map<string, MemoryStream>();
  private readonly inbound = new AcceptQueue<MemoryStream>();

  constructor(
    readonly direction: 'inbound' | 'outbound',
    readonly localAddress: SocketAddress,
    readonly remoteAddress: SocketAddress,
    readonly peerKey: ProvenKey | null,
    readonly window: number,
    private readonly onClose: (connection: MemoryConnection) => void,
  ) {
    this.id = `memory-${nextConnectionId++}`;
    // Dialer streams are odd, listener streams even, as in the TLS multiplexer.
    this.nextStreamId = direction === 'outbound' ? 1 : 2;
    this.closed = new Promise((resolve) => {
      this.markClosed = resolve;
    });
  }

  openStream(): Promise<TransportStream> {
    if (this.isClosed) return Promise.reject(closedError(this.id));
    const id = String(this.nextStreamId);
    this.nextStreamId += 2;
    // Each direction's window is the receiving side's buffer.
    const toPeer = new Pipe(this.peer.window);
    const fromPeer = new Pipe(this.window);
    const local = new MemoryStream(id, fromPeer, toPeer);
    const remote = new MemoryStream(id, toPeer, fromPeer);
    this.streams.set(id, local);
    this.peer.deliverStream(remote);
    return Promise.resolve(local);
  }

  acceptStream(): Promise<TransportStream | null> {
    return this.inbound.accept();
  }

  close(reason = 'closed by local side'): void {
    if (this.isClosed) return;
    this.shutDown(reason);
    this.peer.shutDown('closed by peer');
  }

  private deliverStream(stream: MemoryStream): void {
    this.streams.set(stream.id, stream);
    this.inbound.offer(stream);
  }

  private shutDown(reason: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const error = closedError(this.id, reason);
    for (const stream of this.streams.values()) stream.abort(error);
    this.streams.clear();
    this.inbound.close();
    this.onClose(this);
    this.markClosed();
  }
}

function closedError(id: string, reason = 'connection is closed'): StoqError {
  return new StoqError(StoqErrorCode.CONNECTION_CLOSED, `connection ${id}: ${reason}`, {
    connection: id,
  });
}

function addressKey(address: SocketAddress): string {
  return `${address.host}|${address.port}`;
}

/** The shared name space: which listener answers on which address. */
class Network {
  private readonly listeners = new Map<string, MemoryListener>();
  private nextPort = 1;

  allocatePort(host: string): number {
    for (;;) {
      const port = this.nextPort;
      this.nextPort = this.nextPort >= 65535 ? 1 : this.nextPort + 1;
      if (!this.listeners.has(addressKey({ host, port }))) return port;
    }
  }

  bind(listener: MemoryListener): void {
    const key = addressKey(listener.address);
    if (this.listeners.has(key)) {
      throw new StoqError(
        StoqErrorCode.TRANSPORT_UNAVAILABLE,
        `address ${listener.address.host}:${listener.address.port} is already in use`,
      );
    }
    this.listeners.set(key, listener);
  }

  unbind(listener: MemoryListener): void {
    const key = addressKey(listener.address);
    if (this.listeners.get(key) === listener) this.listeners.delete(key);
  }

  lookup(address: SocketAddress): MemoryListener | undefined {
    return this.listeners.get(addressKey(address));
  }
}

class MemoryListener implements TransportListener {
  private isClosed = false;
  private readonly arrivals = new AcceptQueue<MemoryConnection>();
  private readonly connections = new Set<MemoryConnection>();

  constructor(
    readonly address: SocketAddress,
    readonly owner: MemoryTransport,
    private readonly onClose: (listener: MemoryListener) => void,
  ) {}

  deliver(connection: MemoryConnection): void {
    this.connections.add(connection);
    void connection.closed.then(() => this.connections.delete(connection));
    this.arrivals.offer(connection);
  }

  accept(): Promise<TransportConnection | null> {
    return this.arrivals.accept();
  }

  close(): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    this.isClosed = true;
    this.onClose(this);
    this.arrivals.close();
    // Like a QUIC endpoint, a closed listener takes the connections it accepted down with it
    // (those still in the backlog among them).
    for (const connection of [...this.connections]) connection.close('listener closed');
    return Promise.resolve();
  }
}

class MemoryTransport implements Transport {
  readonly kind = 'memory' as const;
  private isClosed = false;
  private readonly listeners = new Set<MemoryListener>();
  private readonly connections = new Set<MemoryConnection>();
  private readonly window: number;
  readonly provenKey: ProvenKey | null;

  constructor(
    private readonly network: Network,
    options: MemoryTransportOptions,
  ) {
    if (options.publicKey !== undefined && options.publicKey.length !== 32) {
      throw new StoqError(
        StoqErrorCode.INVALID_ARGUMENT,
        `Ed25519 public key must be 32 bytes, got ${options.publicKey.length}`,
      );
    }
    this.window = positiveIntegerOption(options.streamWindow, MEMORY_STREAM_WINDOW, 'streamWindow');
    this.provenKey = options.publicKey
      ? { algorithm: 'ed25519', publicKey: new Uint8Array(options.publicKey) }
      : null;
  }

  listen(address: SocketAddress): Promise<TransportListener> {
    if (this.isClosed) return Promise.reject(transportClosedError());
    const port = address.port === 0 ? this.network.allocatePort(address.host) : address.port;
    const listener = new MemoryListener({ host: address.host, port }, this, (closed) => {
      this.network.unbind(closed);
      this.listeners.delete(closed);
    });
    try {
      this.network.bind(listener);
    } catch (error) {
      return Promise.reject(error);
    }
    this.listeners.add(listener);
    return Promise.resolve(listener);
  }

  dial(address: SocketAddress, options: DialOptions = {}): Promise<TransportConnection> {
    if (this.isClosed) return Promise.reject(transportClosedError());
    if (options.signal?.aborted) return Promise.reject(dialAbortedError(options.signal));
    const listener = this.network.lookup(address);
    if (!listener) {
      return Promise.reject(
        new StoqError(
          StoqErrorCode.CONNECTION_REFUSED,
          `nothing listens on ${address.host}:${address.port}`,
          { host: address.host, port: address.port },
        ),
      );
    }
    const server = listener.owner;
    const local: SocketAddress = {
      host: address.host,
      port: this.network.allocatePort(address.host),
    };
    const outbound = new MemoryConnection(
      'outbound',
      local,
      listener.address,
      server.provenKey,
      this.window,
      (closed) => this.connections.delete(closed),
    );
    const inbound = new MemoryConnection(
      'inbound',
      listener.address,
      local,
      this.provenKey,
      server.window,
      (closed) => server.connections.delete(closed),
    );
    outbound.peer = inbound;
    inbound.peer = outbound;
    this.connections.add(outbound);
    server.connections.add(inbound);
    listener.deliver(inbound);
    return Promise.resolve(outbound);
  }

  close(): Promise<void> {
    this.isClosed = true;
    for (const listener of [...this.listeners]) void listener.close();
    for (const connection of [...this.connections]) connection.close('transport closed');
    return Promise.resolve();
  }
}
