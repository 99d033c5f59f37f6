import { Registry } from 'prom-client';
import { StoqError, StoqErrorCode } from './errors.js';
import { checkRevocation, type RevocationCheck } from './auth/peer.js';
import { AuthFailureReason } from './auth/reasons.js';
import type { Authenticator, Session } from './identity.js';
import { createStoqMetrics, type StoqMetrics } from './metrics.js';
import { positiveIntegerOption } from './options.js';
import { ConnectionPool, type ConnectionPoolOptions } from './pool.js';
import type { Resolver } from './resolver.js';
import { RpcClient, type RpcClientOptions } from './rpc/client.js';
import type { RpcLimits } from './rpc/limits.js';
import { stderrLogger, type RpcLogger } from './rpc/log.js';
import { RpcServer } from './rpc/server.js';
import type { ServiceDefinition, ServiceHandlers } from './rpc/service.js';
import {
  onExpiry,
  sessionNotAfter,
  systemClock,
  type DelegatedSession,
  type SessionClock,
} from './session-expiry.js';
import type {
  SocketAddress,
  Transport,
  TransportConnection,
  TransportListener,
} from './transport.js';

export const DEFAULT_MAX_INBOUND_CONNECTIONS = 16_384;

export interface StoqEndpointOptions {
  readonly transport: Transport;
  readonly authenticator: Authenticator;
  /** Names → addresses for `client(service, name)`. */
  readonly resolver: Resolver;
  /** Metrics on a registry the caller owns; by default a private registry. */
  readonly metrics?: StoqMetrics;
  readonly logger?: RpcLogger;
  readonly limits?: Partial<RpcLimits>;
  /** Inbound connections held at once, counting those still authenticating. */
  readonly maxInboundConnections?: number;
  readonly pool?: Omit<ConnectionPoolOptions, 'resolver' | 'connect'>;
  /** Clock and timers for closing sessions when the peer's certificate expires; default real. */
  readonly clock?: SessionClock;
}

export interface ConnectOptions {
  readonly signal?: AbortSignal;
}

/**
 * A STOQ node's network face: one transport, one authenticator, an RPC server for the services
 * it offers and a connection pool for the peers it calls. Every connection, in either
 * direction, is authenticated before any RPC stream on it is accepted; a connection that fails
 * authentication is closed. Services are served on outbound sessions too, so two peers need
 * only one connection to call each other.
 */
export class StoqEndpoint {
  readonly server: RpcServer;
  readonly pool: ConnectionPool;
  readonly metrics: StoqMetrics;
  private readonly transport: Transport;
  private readonly authenticator: Authenticator;
  private readonly logger: RpcLogger;
  private readonly maxInbound: number;
  private readonly listeners = new Set<TransportListener>();
  private readonly connections = new Set<TransportConnection>();
  /** Authenticated sessions by connection (for `recheckRevocation`). */
  private readonly sessions = new Map<TransportConnection, Session>();
  /**
   * Connections still in the authentication exchange, with the revocation checks
   * `recheckRevocation` ran while they were: their session is checked against those too before
   * it opens (the exchange read revocation state before that recheck).
   */
  private readonly handshaking = new Map<TransportConnection, Set<RevocationCheck>>();
  /** Cancels each session's expiry timer. */
  private readonly expiries = new Map<TransportConnection, () => void>();
  private readonly clock: SessionClock;
  private inbound = 0;
  private isClosed = false;

  constructor(options: StoqEndpointOptions) {
    this.transport = options.transport;
    this.authenticator = options.authenticator;
    this.logger = options.logger ?? stderrLogger;
    this.clock = options.clock ?? systemClock;
    this.metrics = options.metrics ?? createStoqMetrics(new Registry());
    this.maxInbound = positiveIntegerOption(
      options.maxInboundConnections,
      DEFAULT_MAX_INBOUND_CONNECTIONS,
      'maxInboundConnections',
    );
    this.server = new RpcServer({
      limits: options.limits,
      metrics: this.metrics,
      logger: this.logger,
    });
    this.pool = new ConnectionPool({
      ...options.pool,
      resolver: options.resolver,
      connect: (address, _name, signal) => this.connect(address, { signal }),
    });
  }

  /** Inbound connections currently held (authenticating or authenticated). */
  get inboundConnections(): number {
    return this.inbound;
  }

  /** Starts accepting connections on `address` (port 0 picks a free port); returns the bound address. */
  async listen(address: SocketAddress): Promise<SocketAddress> {
    if (this.isClosed) throw endpointClosed();
    const listener = await this.transport.listen(address);
    this.listeners.add(listener);
    void this.acceptLoop(listener);
    return listener.address;
  }

  register<S extends ServiceDefinition>(service: S, handlers: ServiceHandlers<S>): void {
    this.server.register(service, handlers);
  }

  /** A typed client for `service` on the peer called `peerName` (resolved, pooled, redialled). */
  client<S extends ServiceDefinition>(
    service: S,
    peerName: string,
    options: RpcClientOptions = {},
  ): RpcClient<S> {
    return new RpcClient(service, (signal) => this.pool.get(peerName, { signal }), {
      metrics: this.metrics,
      logger: this.logger,
      limits: {
        maxMessageBytes: this.server.limits.maxMessageBytes,
        highWaterMark: this.server.limits.highWaterMark,
      },
      ...options,
    });
  }

  /** Dials and authenticates `address`; the session also serves this endpoint's services. */
  async connect(address: SocketAddress, options: ConnectOptions = {}): Promise<Session> {
    if (this.isClosed) throw endpointClosed();
    const connection = await this.transport.dial(address, { signal: options.signal });
    this.track(connection);
    const session = await this.authenticate(connection, options.signal);
    void this.server.serve(session);
    return session;
  }

  /**
   * Runs `revocation` again over the certificate path of every authenticated session and closes
   * each session a certificate of which is now `revoked`, or whose path has expired
   * (docs/stoq-auth.md, "Revocation of open sessions"). A check that cannot answer (`unknown`,
   * an error) leaves the session open: it passed when it was made, and only a definite
   * revocation ends it. Connections still authenticating are checked with `revocation` just
   * before their session opens. Returns the sessions closed.
   */
  async recheckRevocation(revocation: RevocationCheck): Promise<Session[]> {
    for (const checks of this.handshaking.values()) checks.add(revocation);
    const closed: Session[] = [];
    for (const session of [...this.sessions.values()]) {
      if (this.closeIfExpired(session) || (await this.closeIfRevoked(session, revocation))) {
        closed.push(session);
      }
    }
    return closed;
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    await Promise.all([...this.listeners].map((listener) => listener.close()));
    this.listeners.clear();
    await this.pool.close();
    await this.server.close();
    for (const connection of [...this.connections]) connection.close('endpoint closed');
  }

  private async acceptLoop(listener: TransportListener): Promise<void> {
    for (;;) {
      let connection: TransportConnection | null;
      try {
        connection = await listener.accept();
      } catch (error) {
        this.logger.warn('accepting connections failed', { error: (error as Error).message });
        return;
      }
      if (connection === null) return;
      this.admit(connection);
    }
  }

  private admit(connection: TransportConnection): void {
    if (this.isClosed) {
      connection.close('endpoint closed');
      return;
    }
    if (this.inbound >= this.maxInbound) {
      // Refused before authentication, the expensive part, so a flood costs little.
      this.metrics.handshakes.inc({ transport: connection.kind, outcome: 'connection_limit' });
      connection.close('connection limit reached');
      return;
    }
    this.track(connection);
    this.authenticate(connection).then(
      (session) => void this.server.serve(session),
      () => undefined,
    );
  }

  private async authenticate(
    connection: TransportConnection,
    signal?: AbortSignal,
  ): Promise<Session> {
    const rechecks = new Set<RevocationCheck>();
    this.handshaking.set(connection, rechecks);
    const authenticating = this.authenticator.authenticate(connection);
    try {
      const session = signal ? await raceAbort(authenticating, signal) : await authenticating;
      if (this.isClosed) throw endpointClosed();
      this.handshaking.delete(connection);
      if (this.connections.has(connection)) this.open(session);
      // Revocations that committed during the exchange, after it read revocation state: from
      // here on `sessions` holds this one, so later rechecks see it themselves.
      for (const revocation of rechecks) {
        if (await this.closeIfRevoked(session, revocation)) {
          throw new StoqError(
            StoqErrorCode.UNAUTHENTICATED,
            'the peer certificate was revoked during the authentication exchange',
            { reason: AuthFailureReason.REVOKED, origin: 'local', uri: session.peer.uri },
          );
        }
      }
      return session;
    } catch (error) {
      // The authenticator closes on failure; closing again also covers abort and shutdown.
      connection.close(error instanceof StoqError ? error.message : 'authentication failed');
      authenticating.catch(() => undefined);
      throw error;
    } finally {
      this.handshaking.delete(connection);
    }
  }

  /** Holds an authenticated session and closes it when its peer's certificate path expires. */
  private open(session: Session): void {
    const { connection } = session;
    this.sessions.set(connection, session);
    const notAfter = sessionNotAfter(session);
    this.expiries.set(
      connection,
      onExpiry(notAfter, () => this.expire(session, notAfter), this.clock),
    );
  }

  private expire(session: Session & Partial<DelegatedSession>, notAfter: Date): void {
    const what =
      session.delegationNotAfter?.getTime() === notAfter.getTime()
        ? 'peer delegation'
        : 'peer certificate';
    this.logger.warn(`closing a STOQ session: the ${what} expired`, {
      peer: session.peer.uri,
      notAfter: notAfter.toISOString(),
    });
    session.connection.close(`${what} expired at ${notAfter.toISOString()}`);
  }

  private closeIfExpired(session: Session): boolean {
    const notAfter = sessionNotAfter(session);
    if (this.clock.now() <= notAfter.getTime()) return false;
    this.expire(session, notAfter);
    return true;
  }

  /** Closes `session` if `revocation` definitely says a certificate on its path is revoked. */
  private async closeIfRevoked(session: Session, revocation: RevocationCheck): Promise<boolean> {
    if (session.path === undefined) return false;
    try {
      await checkRevocation(session.path, revocation);
      return false;
    } catch (error) {
      if (
        error instanceof StoqError &&
        (error.detail as { reason?: unknown } | undefined)?.reason === AuthFailureReason.REVOKED
      ) {
        session.connection.close(`peer certificate revoked: ${error.message}`);
        return true;
      }
      return false;
    }
  }

  private track(connection: TransportConnection): void {
    if (this.connections.has(connection)) return;
    this.connections.add(connection);
    const labels = { transport: connection.kind, direction: connection.direction };
    this.metrics.connections.inc(labels);
    if (connection.direction === 'inbound') this.inbound++;
    void connection.closed.then(() => {
      this.connections.delete(connection);
      this.sessions.delete(connection);
      this.expiries.get(connection)?.();
      this.expiries.delete(connection);
      this.metrics.connections.dec(labels);
      if (connection.direction === 'inbound') this.inbound--;
    });
  }
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function abortError(signal: AbortSignal): StoqError {
  return signal.reason instanceof StoqError
    ? signal.reason
    : new StoqError(StoqErrorCode.CANCELLED, 'connect aborted', {}, { cause: signal.reason });
}

function endpointClosed(): StoqError {
  return new StoqError(StoqErrorCode.UNAVAILABLE, 'endpoint is closed');
}
