import { createSecureContext, connect, TLSSocket, type SecureContext } from 'node:tls';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { AcceptQueue } from '../accept-queue.js';
import { StoqError, StoqErrorCode, dialAbortedError, transportClosedError } from '../errors.js';
import { positiveIntegerOption } from '../options.js';
import type {
  DialOptions,
  SocketAddress,
  Transport,
  TransportConnection,
  TransportListener,
} from '../transport.js';
import {
  provenPeerKey,
  resolveTlsIdentity,
  type TlsCredentials,
  type TlsIdentity,
} from './identity.js';
import { MuxConnection } from './mux.js';
import { INITIAL_STREAM_WINDOW } from './mux-stream.js';

/**
 * STOQ over TLS 1.3 on TCP: the fallback transport and the benchmark baseline for QUIC.
 *
 * Both sides present an Ed25519 certificate in the handshake (the listener requests one) and
 * prove they hold its key with CertificateVerify (RFC 8446 §4.4.3); `peerKey` is that key.
 * The chain itself is deliberately NOT verified here (`rejectUnauthorized: false`): the
 * authentication layer (`auth/`) checks chain, validity and revocation for every transport the
 * same way, because QUIC's handshake (libp2p TLS) cannot carry our X.509 chain.
 */

export const STOQ_ALPN = 'stoq/1';

export interface TlsTransportOptions {
  /** Required to listen; a dialer without one connects anonymously (the peer sees null). */
  readonly identity?: TlsIdentity;
  /** Deadline for TCP connect plus TLS handshake, both directions (default 10 s). */
  readonly handshakeTimeoutMs?: number;
  /** Receive window per stream in bytes (default and minimum 256 KiB). */
  readonly streamWindow?: number;
  /** Streams a peer may have open at once on one connection (default 1024). */
  readonly maxInboundStreams?: number;
  /** How long a closing connection waits for the peer's close (default 2 s). */
  readonly closeGraceMs?: number;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_INBOUND_STREAMS = 1024;
const DEFAULT_CLOSE_GRACE_MS = 2_000;

interface ResolvedOptions {
  readonly credentials: TlsCredentials | null;
  readonly handshakeTimeoutMs: number;
  readonly streamWindow: number;
  readonly maxInboundStreams: number;
  readonly closeGraceMs: number;
}

function resolveOptions(options: TlsTransportOptions): ResolvedOptions {
  const streamWindow = positiveIntegerOption(
    options.streamWindow,
    INITIAL_STREAM_WINDOW,
    'streamWindow',
  );
  if (streamWindow < INITIAL_STREAM_WINDOW || streamWindow > 0x7fffffff) {
    throw new StoqError(
      StoqErrorCode.INVALID_ARGUMENT,
      `streamWindow must be between ${INITIAL_STREAM_WINDOW} and 2^31-1 bytes`,
      { streamWindow },
    );
  }
  return {
    credentials: options.identity ? resolveTlsIdentity(options.identity) : null,
    handshakeTimeoutMs: positiveIntegerOption(
      options.handshakeTimeoutMs,
      DEFAULT_HANDSHAKE_TIMEOUT_MS,
      'handshakeTimeoutMs',
    ),
    streamWindow,
    maxInboundStreams: positiveIntegerOption(
      options.maxInboundStreams,
      DEFAULT_MAX_INBOUND_STREAMS,
      'maxInboundStreams',
    ),
    closeGraceMs: positiveIntegerOption(
      options.closeGraceMs,
      DEFAULT_CLOSE_GRACE_MS,
      'closeGraceMs',
    ),
  };
}

function tlsContextOptions(credentials: TlsCredentials | null) {
  return {
    minVersion: 'TLSv1.3' as const,
    maxVersion: 'TLSv1.3' as const,
    ...(credentials ? { key: credentials.keyPem, cert: [...credentials.certificatePems] } : {}),
  };
}

const REFUSED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

function dialError(address: SocketAddress, error: unknown): StoqError {
  if (error instanceof StoqError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const where = `${address.host}:${address.port}`;
  if (code !== undefined && REFUSED.has(code)) {
    return new StoqError(
      StoqErrorCode.CONNECTION_REFUSED,
      `connection to ${where} refused`,
      {
        host: address.host,
        port: address.port,
        errno: code,
      },
      { cause: error },
    );
  }
  return new StoqError(
    StoqErrorCode.HANDSHAKE_FAILED,
    `TLS handshake with ${where} failed`,
    {
      host: address.host,
      port: address.port,
      errno: code,
    },
    { cause: error },
  );
}

function socketAddress(host: string | undefined, port: number | undefined): SocketAddress {
  return { host: host ?? '', port: port ?? 0 };
}

class TlsListener implements TransportListener {
  private isClosed = false;
  private readonly arrivals = new AcceptQueue<MuxConnection>();
  private readonly connections = new Set<MuxConnection>();
  /** Raw TCP sockets whose TLS handshake has not finished yet. */
  private readonly handshaking = new Set<Socket>();
  private readonly context: SecureContext;

  constructor(
    private readonly server: Server,
    readonly address: SocketAddress,
    private readonly options: ResolvedOptions,
    credentials: TlsCredentials,
    private readonly onConnection: (connection: MuxConnection) => void,
    private readonly onClose: (listener: TlsListener) => void,
  ) {
    this.context = createSecureContext(tlsContextOptions(credentials));
    server.on('connection', (raw: Socket) => this.handshake(raw));
    // Errors on the listening socket (e.g. EMFILE on accept) must not crash the process; the
    // affected connection attempt is simply lost and the client sees it fail.
    server.on('error', () => undefined);
  }

  accept(): Promise<TransportConnection | null> {
    return this.arrivals.accept();
  }

  async close(): Promise<void> {
    if (!this.isClosed) {
      this.isClosed = true;
      this.onClose(this);
      const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const raw of this.handshaking) raw.destroy();
      this.arrivals.close();
      for (const connection of this.connections) connection.close('listener closed');
      await closing;
    }
    await Promise.all([...this.connections].map((connection) => connection.closed));
  }

  private handshake(raw: Socket): void {
    if (this.isClosed) {
      raw.destroy();
      return;
    }
    this.handshaking.add(raw);
    raw.once('close', () => this.handshaking.delete(raw));
    // A reset from a client is that connection's problem; without a listener it would crash us.
    raw.on('error', () => raw.destroy());
    const socket = new TLSSocket(raw, {
      isServer: true,
      secureContext: this.context,
      // Ask for the client's certificate but accept any: see the comment at the top of the file.
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: [STOQ_ALPN],
    });
    const timer = setTimeout(() => socket.destroy(), this.options.handshakeTimeoutMs);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => clearTimeout(timer));
    socket.once('secure', () => {
      clearTimeout(timer);
      this.handshaking.delete(raw);
      if (this.isClosed || socket.alpnProtocol !== STOQ_ALPN) {
        socket.destroy();
        return;
      }
      const connection = new MuxConnection(socket, {
        kind: 'tls',
        direction: 'inbound',
        localAddress: socketAddress(socket.localAddress, socket.localPort),
        remoteAddress: socketAddress(socket.remoteAddress, socket.remotePort),
        peerKey: provenPeerKey(socket.getPeerX509Certificate()),
        streamWindow: this.options.streamWindow,
        maxInboundStreams: this.options.maxInboundStreams,
        closeGraceMs: this.options.closeGraceMs,
      });
      this.connections.add(connection);
      void connection.closed.then(() => this.connections.delete(connection));
      this.onConnection(connection);
      this.arrivals.offer(connection);
    });
  }
}

class TlsTransport implements Transport {
  readonly kind = 'tls' as const;
  private isClosed = false;
  private readonly listeners = new Set<TlsListener>();
  private readonly connections = new Set<MuxConnection>();
  private readonly options: ResolvedOptions;
  /** Built once: a context per dial costs ~2 ms of CPU and ~35 KiB per held connection. */
  private readonly dialContext: SecureContext;

  constructor(options: TlsTransportOptions) {
    this.options = resolveOptions(options);
    this.dialContext = createSecureContext(tlsContextOptions(this.options.credentials));
  }

  async listen(address: SocketAddress): Promise<TransportListener> {
    if (this.isClosed) throw transportClosedError();
    const credentials = this.options.credentials;
    if (!credentials) {
      throw new StoqError(
        StoqErrorCode.INVALID_ARGUMENT,
        'a TLS transport needs an identity (key and certificate) to listen',
      );
    }
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          new StoqError(
            StoqErrorCode.TRANSPORT_UNAVAILABLE,
            `cannot listen on ${address.host}:${address.port}: ${error.code ?? error.message}`,
            { host: address.host, port: address.port, errno: error.code },
            { cause: error },
          ),
        ),
      );
      server.listen({ host: address.host, port: address.port }, () => resolve());
    });
    const bound = server.address() as AddressInfo;
    const listener = new TlsListener(
      server,
      { host: bound.address, port: bound.port },
      this.options,
      credentials,
      (connection) => this.track(connection),
      (closed) => this.listeners.delete(closed),
    );
    this.listeners.add(listener);
    return listener;
  }

  dial(address: SocketAddress, options: DialOptions = {}): Promise<TransportConnection> {
    if (this.isClosed) return Promise.reject(transportClosedError());
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(dialAbortedError(signal));
    return new Promise<TransportConnection>((resolve, reject) => {
      const socket = connect({
        host: address.host,
        port: address.port,
        secureContext: this.dialContext,
        minVersion: 'TLSv1.3',
        maxVersion: 'TLSv1.3',
        // Accept any server certificate: see the comment at the top of the file.
        rejectUnauthorized: false,
        ALPNProtocols: [STOQ_ALPN],
      });
      const fail = (error: StoqError): void => {
        cleanup();
        socket.destroy();
        reject(error);
      };
      const onError = (error: Error): void => fail(dialError(address, error));
      const onAbort = (): void => fail(dialAbortedError(signal as AbortSignal));
      const onClose = (): void =>
        fail(dialError(address, new Error('connection closed during the handshake')));
      const timer = setTimeout(
        () =>
          fail(
            new StoqError(
              StoqErrorCode.HANDSHAKE_FAILED,
              `TLS handshake with ${address.host}:${address.port} timed out`,
              {
                host: address.host,
                port: address.port,
                timeoutMs: this.options.handshakeTimeoutMs,
              },
            ),
          ),
        this.options.handshakeTimeoutMs,
      );
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.off('error', onError);
        socket.off('close', onClose);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('error', onError);
      socket.once('close', onClose);
      socket.once('secureConnect', () => {
        cleanup();
        if (this.isClosed) {
          socket.destroy();
          reject(transportClosedError());
          return;
        }
        if (socket.alpnProtocol !== STOQ_ALPN) {
          socket.destroy();
          reject(
            new StoqError(
              StoqErrorCode.HANDSHAKE_FAILED,
              `${address.host}:${address.port} does not speak ${STOQ_ALPN}`,
              { alpn: socket.alpnProtocol },
            ),
          );
          return;
        }
        const connection = new MuxConnection(socket, {
          kind: 'tls',
          direction: 'outbound',
          localAddress: socketAddress(socket.localAddress, socket.localPort),
          remoteAddress: { host: address.host, port: address.port },
          peerKey: provenPeerKey(socket.getPeerX509Certificate()),
          streamWindow: this.options.streamWindow,
          maxInboundStreams: this.options.maxInboundStreams,
          closeGraceMs: this.options.closeGraceMs,
        });
        this.track(connection);
        resolve(connection);
      });
    });
  }

  async close(): Promise<void> {
    this.isClosed = true;
    const listeners = [...this.listeners].map((listener) => listener.close());
    for (const connection of this.connections) connection.close('transport closed');
    await Promise.all([...listeners, ...[...this.connections].map((c) => c.closed)]);
  }

  private track(connection: MuxConnection): void {
    this.connections.add(connection);
    void connection.closed.then(() => this.connections.delete(connection));
  }
}

export function createTlsTransport(options: TlsTransportOptions = {}): Transport {
  return new TlsTransport(options);
}
