import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { ed25519Libp2pPrivateKeyProto } from '../../crypto/ed25519.js';
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
  loadQuinnBinding,
  QuinnSocketFamily,
  type QuinnBinding,
  type QuinnClient,
  type QuinnConfig,
  type QuinnConfigInit,
  type QuinnConnection,
  type QuinnServer,
} from './binding.js';
import { QuicConnection } from './connection.js';
import type { QuicStreamLimits } from './stream.js';
import { stderrLogger, type RpcLogger } from '../rpc/log.js';

/**
 * STOQ over QUIC (RFC 9000) with the quinn binding from @chainsafe/libp2p-quic. Its handshake is
 * libp2p TLS 1.3: each side proves its Ed25519 identity key, which becomes `peerKey`. X.509
 * chains cannot travel in this handshake; the authentication layer (`auth/`) exchanges and
 * checks them on the connection afterwards, for both transports alike.
 */
export interface QuicTransportOptions {
  /** Ed25519 identity: a private `KeyObject` or the 32-byte RFC 8032 seed. */
  readonly privateKey: KeyObject | Uint8Array;
  /**
   * Deadline for a dial's handshake (default 10 s). The binding does not apply it to inbound
   * handshakes: quinn bounds those by `maxIdleTimeoutMs`.
   */
  readonly handshakeTimeoutMs?: number;
  /** A connection without any packet for this long is dropped (default 30 s). */
  readonly maxIdleTimeoutMs?: number;
  /** Keep-alive PING interval; below both peers' idle timeouts (default 10 s). */
  readonly keepAliveIntervalMs?: number;
  /** Streams a peer may have open at once on one connection (default 256). */
  readonly maxConcurrentStreams?: number;
  /** Receive window per stream in bytes (default `DEFAULT_QUIC_MAX_STREAM_DATA`, 2 MiB). */
  readonly maxStreamData?: number;
  /**
   * Receive window per connection in bytes (default `DEFAULT_QUIC_MAX_CONNECTION_DATA`, 4 MiB):
   * also what a peer can make us buffer before it authenticated.
   */
  readonly maxConnectionData?: number;
  /** OS UDP socket send and receive buffer size (default 4 MiB; clamped by the OS). */
  readonly socketBufferBytes?: number;
  /** Largest chunk one `read()` returns (default 256 KiB). */
  readonly readChunkBytes?: number;
  /** Bytes a stream's `write()` buffers before it waits for quinn (default 256 KiB). */
  readonly writeBufferBytes?: number;
  /**
   * Inbound handshakes a listener runs at once (default `DEFAULT_QUIC_ACCEPT_CONCURRENCY`,
   * 4096). A handshake the peer stalls holds its slot until `maxIdleTimeoutMs`.
   */
  readonly acceptConcurrency?: number;
  /** Handshaken connections a listener holds for `accept()` before it stops taking more. */
  readonly acceptBacklog?: number;
  /** Where a listener reports failed accepts (rate-limited); default one JSON line on stderr. */
  readonly logger?: RpcLogger;
}

export interface ResolvedQuicOptions {
  readonly handshakeTimeoutMs: number;
  readonly streamLimits: QuicStreamLimits;
  readonly acceptConcurrency: number;
  readonly acceptBacklog: number;
}

/**
 * Receive window per stream. quinn applies its windows from the handshake on, the same for every
 * connection, and the binding cannot change them later, so they also bound what a peer that has
 * not authenticated can make us buffer. A window smaller than a message is fine for flow control
 * (credit comes back as the reader takes bytes); it must only be large enough for throughput: at
 * 2 MiB a whole consensus proposal (`maxBlockBytes`, 1 MiB, plus its overhead) is in flight in one
 * round trip, and one stream still reaches 2 MiB / RTT (over 160 MB/s at 10 ms).
 */
export const DEFAULT_QUIC_MAX_STREAM_DATA = 2 * 1024 * 1024;
/**
 * Receive window per connection: two streams at full window. This is the bound on received,
 * unread bytes per connection, authenticated or not (the libp2p defaults were 10 MB per stream and
 * 15 MB per connection, which let each unauthenticated connection cost a listener 15 MB until the
 * authentication deadline).
 */
export const DEFAULT_QUIC_MAX_CONNECTION_DATA = 4 * 1024 * 1024;
/** Streams a peer may have open at once on one connection. */
export const DEFAULT_QUIC_MAX_CONCURRENT_STREAMS = 256;

/** Every numeric option ends up in a quinn config field or a timer; quinn takes u32s. */
function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  return positiveIntegerOption(value, fallback, name, 0xffffffff);
}

function invalid(message: string, cause: unknown): StoqError {
  return new StoqError(StoqErrorCode.INVALID_ARGUMENT, message, {}, { cause });
}

function quinnConfig(binding: QuinnBinding, options: QuicTransportOptions): QuinnConfig {
  const init = quinnConfigInit(options);
  try {
    return new binding.QuinnConfig(init);
  } catch (error) {
    throw invalid(`QUIC configuration rejected by the binding: ${String(error)}`, error);
  }
}

/** The settings handed to quinn for `options`, defaults filled in and checked. */
export function quinnConfigInit(options: QuicTransportOptions): QuinnConfigInit {
  let privateKeyProto: Uint8Array;
  try {
    privateKeyProto = ed25519Libp2pPrivateKeyProto(options.privateKey);
  } catch (error) {
    throw invalid('QUIC identity must be an Ed25519 private key or 32-byte seed', error);
  }
  const handshakeTimeout = positiveInteger(
    options.handshakeTimeoutMs,
    10_000,
    'handshakeTimeoutMs',
  );
  const socketBuffer = positiveInteger(
    options.socketBufferBytes,
    4 * 1024 * 1024,
    'socketBufferBytes',
  );
  return {
    privateKeyProto,
    handshakeTimeout,
    maxIdleTimeout: positiveInteger(options.maxIdleTimeoutMs, 30_000, 'maxIdleTimeoutMs'),
    keepAliveInterval: positiveInteger(options.keepAliveIntervalMs, 10_000, 'keepAliveIntervalMs'),
    maxConcurrentStreamLimit: positiveInteger(
      options.maxConcurrentStreams,
      DEFAULT_QUIC_MAX_CONCURRENT_STREAMS,
      'maxConcurrentStreams',
    ),
    maxStreamData: positiveInteger(
      options.maxStreamData,
      DEFAULT_QUIC_MAX_STREAM_DATA,
      'maxStreamData',
    ),
    maxConnectionData: positiveInteger(
      options.maxConnectionData,
      DEFAULT_QUIC_MAX_CONNECTION_DATA,
      'maxConnectionData',
    ),
    receiveBufferSize: socketBuffer,
    sendBufferSize: socketBuffer,
  };
}

/**
 * Inbound handshakes a listener runs at once by default. quinn answers a client's Initial only
 * once the listener takes it (`inboundConnection()`), and the binding ignores `handshakeTimeout`
 * on the server side, so a handshake the peer stalls holds its slot until quinn's idle timeout
 * (`maxIdleTimeoutMs`, 30 s) — longer if the peer keeps sending Initial packets. A pending
 * handshake costs only quinn's connection state, so the cap is high: to keep every slot stalled
 * a peer must keep this many handshakes open at once (docs/stoq.md, "QUIC inbound handshakes").
 */
export const DEFAULT_QUIC_ACCEPT_CONCURRENCY = 4096;
/**
 * Handshaken connections a listener holds for `accept()` by default. Handshakes in progress
 * count towards it too, so it is no lower than `DEFAULT_QUIC_ACCEPT_CONCURRENCY`.
 */
export const DEFAULT_QUIC_ACCEPT_BACKLOG = 4096;
/** At most one log line about failed accepts per this many ms (a peer can fail them at will). */
const ACCEPT_FAILURE_LOG_INTERVAL_MS = 10_000;
/** Longest pause before taking handshakes again after accepts kept failing back to back. */
const MAX_ACCEPT_RETRY_MS = 1_000;

/** Exported for tests that drive it with an instrumented server; use `Transport.listen`. */
export class QuicListener implements TransportListener {
  private isClosed = false;
  private closing: Promise<void> | null = null;
  private handshakes = 0;
  /** Native accepts that failed since the last one that succeeded. */
  private failureStreak = 0;
  /** Failed accepts not yet logged, and when the last log line was written. */
  private unloggedFailures = 0;
  private lastFailureLog = -Infinity;
  private retryDelayMs = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly arrivals = new AcceptQueue<QuicConnection>();
  private readonly connections = new Set<QuicConnection>();

  constructor(
    private readonly server: QuinnServer,
    readonly address: SocketAddress,
    private readonly options: ResolvedQuicOptions,
    private readonly onConnection: (connection: QuicConnection) => void,
    private readonly onClose: (listener: QuicListener) => void,
    private readonly logger: RpcLogger = stderrLogger,
  ) {
    this.acceptMore();
  }

  accept(): Promise<TransportConnection | null> {
    const next = this.arrivals.accept();
    // A connection taken from the backlog makes room for another handshake.
    this.acceptMore();
    return next;
  }

  /**
   * Closes the UDP endpoint, and with it every connection it accepted. This is the only way a
   * listener closes: nothing a peer sends ends it (see `acceptFailed`).
   */
  close(): Promise<void> {
    if (!this.closing) {
      this.isClosed = true;
      if (this.retryTimer !== null) clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.onClose(this);
      for (const connection of [...this.connections, ...this.arrivals.close()]) {
        connection.close('listener closed');
      }
      // Never call server.port() after this: the binding panics on an unbound socket.
      this.closing = this.server.abort().then(
        () => undefined,
        () => undefined,
      );
    }
    return this.closing;
  }

  /**
   * Keeps several native accepts running: the binding completes a handshake inside
   * `inboundConnection()`, so one slow client would otherwise hold up every other.
   */
  private acceptMore(): void {
    while (
      !this.isClosed &&
      this.retryTimer === null &&
      this.handshakes < this.options.acceptConcurrency &&
      this.handshakes + this.arrivals.backlogLength < this.options.acceptBacklog
    ) {
      this.handshakes += 1;
      this.server.inboundConnection().then(
        (native) => this.arrived(native),
        (error: unknown) => {
          this.handshakes -= 1;
          if (!this.isClosed) this.acceptFailed(error);
        },
      );
    }
  }

  /**
   * A native accept failed. Its text is never read to decide anything: the binding reports a
   * client's failed handshake with that client's CONNECTION_CLOSE reason phrase in it, so any
   * text ("server closed" included) can come from an unauthenticated peer. The endpoint ends
   * only through `close()`, and quinn's endpoint only stops accepting when that aborted it, so
   * every failure is one client's and the listener takes the next handshake. Should accepts
   * fail back to back with none succeeding (more in a row than can be in flight), it pauses
   * before taking more, 10 ms doubling to 1 s, so a broken native endpoint cannot spin.
   */
  private acceptFailed(error: unknown): void {
    this.failureStreak += 1;
    this.unloggedFailures += 1;
    const now = performance.now();
    if (now - this.lastFailureLog >= ACCEPT_FAILURE_LOG_INTERVAL_MS) {
      this.logger.warn('QUIC listener: inbound handshakes failed', {
        port: this.address.port,
        failures: this.unloggedFailures,
        lastError: describeError(error),
      });
      this.unloggedFailures = 0;
      this.lastFailureLog = now;
    }
    if (this.failureStreak <= this.options.acceptConcurrency) {
      this.acceptMore();
      return;
    }
    if (this.retryTimer !== null) return;
    this.retryDelayMs = Math.min(Math.max(this.retryDelayMs * 2, 10), MAX_ACCEPT_RETRY_MS);
    if (this.retryDelayMs === 10) {
      this.logger.error('QUIC listener: every inbound handshake keeps failing; pacing accepts', {
        port: this.address.port,
        failuresInARow: this.failureStreak,
        lastError: describeError(error),
      });
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.acceptMore();
    }, this.retryDelayMs);
  }

  private arrived(native: QuinnConnection): void {
    this.handshakes -= 1;
    if (this.isClosed) {
      native.abort();
      return;
    }
    this.failureStreak = 0;
    this.retryDelayMs = 0;
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    let connection: QuicConnection;
    try {
      connection = new QuicConnection(native, 'inbound', this.address, this.options.streamLimits);
    } catch {
      native.abort();
      this.acceptMore();
      return;
    }
    this.connections.add(connection);
    void connection.closed.then(() => this.connections.delete(connection));
    this.onConnection(connection);
    this.arrivals.offer(connection);
    this.acceptMore();
  }
}

/** An error's text for a log line, bounded: it may carry a peer's reason phrase. */
function describeError(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 200);
}

class QuicTransport implements Transport {
  readonly kind = 'quic' as const;
  private isClosed = false;
  private readonly binding: QuinnBinding;
  private readonly config: QuinnConfig;
  private readonly options: ResolvedQuicOptions;
  private readonly logger: RpcLogger;
  private readonly clients = new Map<QuinnSocketFamily, QuinnClient>();
  private readonly listeners = new Set<QuicListener>();
  private readonly connections = new Set<QuicConnection>();

  constructor(options: QuicTransportOptions) {
    this.binding = loadQuinnBinding();
    this.config = quinnConfig(this.binding, options);
    this.logger = options.logger ?? stderrLogger;
    this.options = {
      handshakeTimeoutMs: positiveInteger(options.handshakeTimeoutMs, 10_000, 'handshakeTimeoutMs'),
      streamLimits: {
        readChunkBytes: positiveInteger(options.readChunkBytes, 256 * 1024, 'readChunkBytes'),
        writeBufferBytes: positiveInteger(options.writeBufferBytes, 256 * 1024, 'writeBufferBytes'),
      },
      acceptConcurrency: positiveInteger(
        options.acceptConcurrency,
        DEFAULT_QUIC_ACCEPT_CONCURRENCY,
        'acceptConcurrency',
      ),
      acceptBacklog: positiveInteger(
        options.acceptBacklog,
        DEFAULT_QUIC_ACCEPT_BACKLOG,
        'acceptBacklog',
      ),
    };
  }

  listen(address: SocketAddress): Promise<TransportListener> {
    if (this.isClosed) return Promise.reject(transportClosedError());
    if (isIP(address.host) === 0) {
      return Promise.reject(
        new StoqError(StoqErrorCode.INVALID_ARGUMENT, `QUIC listens on IP addresses only`, {
          host: address.host,
        }),
      );
    }
    let server: QuinnServer;
    try {
      server = new this.binding.Server(this.config, address.host, address.port);
    } catch (error) {
      return Promise.reject(
        new StoqError(
          StoqErrorCode.TRANSPORT_UNAVAILABLE,
          `cannot listen on ${address.host}:${address.port}: ${String(error)}`,
          { host: address.host, port: address.port },
          { cause: error },
        ),
      );
    }
    const listener = new QuicListener(
      server,
      { host: address.host, port: server.port() },
      this.options,
      (connection) => this.track(connection),
      (closed) => this.listeners.delete(closed),
      this.logger,
    );
    this.listeners.add(listener);
    return Promise.resolve(listener);
  }

  async dial(address: SocketAddress, options: DialOptions = {}): Promise<TransportConnection> {
    if (this.isClosed) throw transportClosedError();
    const signal = options.signal;
    if (signal?.aborted) throw dialAbortedError(signal);
    const family = isIP(address.host);
    if (family === 0) {
      throw new StoqError(StoqErrorCode.INVALID_ARGUMENT, 'QUIC dials IP addresses only', {
        host: address.host,
      });
    }
    const client = this.client(family === 6 ? QuinnSocketFamily.Ipv6 : QuinnSocketFamily.Ipv4);
    const attempt = client.outboundConnection(address.host, address.port);
    const native = await this.raceDial(attempt, address, signal);
    if (this.isClosed) {
      native.abort();
      throw transportClosedError();
    }
    let connection: QuicConnection;
    try {
      // The binding does not expose a client socket's local port; the wildcard address of
      // the dialing endpoint's family is all that is known.
      const localAddress = { host: family === 6 ? '::' : '0.0.0.0', port: 0 };
      connection = new QuicConnection(native, 'outbound', localAddress, this.options.streamLimits);
    } catch (error) {
      native.abort();
      throw error;
    }
    this.track(connection);
    return connection;
  }

  async close(): Promise<void> {
    this.isClosed = true;
    const listeners = [...this.listeners].map((listener) => listener.close());
    for (const connection of this.connections) connection.close('transport closed');
    await Promise.all([...listeners, ...[...this.connections].map((c) => c.closed)]);
    for (const client of this.clients.values()) client.abort();
    this.clients.clear();
  }

  /** One UDP endpoint per address family serves every dial. */
  private client(family: QuinnSocketFamily): QuinnClient {
    let client = this.clients.get(family);
    if (!client) {
      client = new this.binding.Client(this.config, family);
      this.clients.set(family, client);
    }
    return client;
  }

  private raceDial(
    attempt: Promise<QuinnConnection>,
    address: SocketAddress,
    signal: AbortSignal | undefined,
  ): Promise<QuinnConnection> {
    const where = `${address.host}:${address.port}`;
    return new Promise<QuinnConnection>((resolve, reject) => {
      let settled = false;
      const finish = (): boolean => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        return true;
      };
      // The binding cannot cancel a handshake: a connection that completes after we gave up
      // is closed at once.
      const giveUp = (error: StoqError): void => {
        if (!finish()) return;
        attempt.then(
          (late) => late.abort(),
          () => undefined,
        );
        reject(error);
      };
      const onAbort = (): void => giveUp(dialAbortedError(signal as AbortSignal));
      const timer = setTimeout(
        () =>
          giveUp(
            new StoqError(
              StoqErrorCode.HANDSHAKE_FAILED,
              `QUIC handshake with ${where} timed out`,
              {
                host: address.host,
                port: address.port,
                timeoutMs: this.options.handshakeTimeoutMs,
              },
            ),
          ),
        this.options.handshakeTimeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      attempt.then(
        (native) => {
          if (finish()) resolve(native);
        },
        (error: unknown) => {
          if (!finish()) return;
          const message = error instanceof Error ? error.message : String(error);
          reject(
            /endpoint stopping/i.test(message)
              ? transportClosedError()
              : new StoqError(
                  StoqErrorCode.HANDSHAKE_FAILED,
                  `QUIC handshake with ${where} failed: ${message}`,
                  { host: address.host, port: address.port },
                  { cause: error },
                ),
          );
        },
      );
    });
  }

  private track(connection: QuicConnection): void {
    this.connections.add(connection);
    void connection.closed.then(() => this.connections.delete(connection));
  }
}

/** Throws `TRANSPORT_UNAVAILABLE` when the quinn binding cannot be loaded on this platform. */
export function createQuicTransport(options: QuicTransportOptions): Transport {
  return new QuicTransport(options);
}
