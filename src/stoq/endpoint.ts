import { Registry } from 'prom-client';
import { StoqError, StoqErrorCode } from './errors.js';
import { refuseConnection, type AuthenticateOptions } from './auth/authenticator.js';
import { checkRevocation, type RevocationCheck } from './auth/peer.js';
import { AuthFailureReason, authFailure, limitRefusal } from './auth/reasons.js';
import type { Authenticator, PeerIdentity, Session } from './identity.js';
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
/** Inbound sessions one authenticated identity (certificate URI) may hold at once. */
export const DEFAULT_MAX_INBOUND_SESSIONS_PER_PEER = 64;
/**
 * Connections over `maxInboundConnections` that are told why before they are closed (each for
 * at most the authentication linger, 1 s); past this many at once the rest are just closed.
 */
const MAX_CONCURRENT_REFUSALS = 64;
/**
 * At most one log line about sessions refused for `maxInboundSessionsPerPeer` per this many ms:
 * a peer holding its identity's sessions can dial again at will.
 */
const PEER_LIMIT_LOG_INTERVAL_MS = 10_000;

/** `Authenticator.authenticate` with the options `createAuthenticator`'s authenticator takes. */
type AuthenticateWithOptions = (
  connection: TransportConnection,
  options?: AuthenticateOptions,
) => Promise<Session>;

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
  /**
   * Inbound sessions one authenticated identity (the certificate's `spiffe://` URI) may hold
   * at once (default 64); one more is refused with `RESOURCE_EXHAUSTED` (reason
   * `connection_limit`) on both sides. Without it one certificate could take every slot of
   * `maxInboundConnections` for as long as it is valid.
   */
  readonly maxInboundSessionsPerPeer?: number;
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
  private readonly maxPerPeer: number;
  /** Inbound sessions admitted per identity URI, and the identity each connection counts for. */
  private readonly inboundByPeer = new Map<string, number>();
  private readonly admitted = new Map<TransportConnection, string>();
  private refusing = 0;
  /** Per-identity refusals not yet logged, and when the last log line was written. */
  private unloggedPeerRefusals = 0;
  private lastPeerRefusalLog = -Infinity;
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
    this.maxPerPeer = positiveIntegerOption(
      options.maxInboundSessionsPerPeer,
      DEFAULT_MAX_INBOUND_SESSIONS_PER_PEER,
      'maxInboundSessionsPerPeer',
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

  /**
   * Admits every connection `listener` completes until it closes. A listener closes only when
   * its owner closes it, so one that ends while this endpoint is open means nothing listens on
   * that address any more: that is logged as an error.
   */
  private async acceptLoop(listener: TransportListener): Promise<void> {
    for (;;) {
      let connection: TransportConnection | null;
      try {
        connection = await listener.accept();
      } catch (error) {
        if (!this.isClosed) {
          this.logger.error('STOQ listener failed: this endpoint no longer accepts connections', {
            address: `${listener.address.host}:${listener.address.port}`,
            error: (error as Error).message,
          });
        }
        return;
      }
      if (connection === null) {
        if (!this.isClosed) {
          this.logger.error('STOQ listener ended: this endpoint no longer accepts connections', {
            address: `${listener.address.host}:${listener.address.port}`,
          });
        }
        return;
      }
      this.admit(connection);
    }
  }

  private admit(connection: TransportConnection): void {
    if (this.isClosed) {
      connection.close('endpoint closed');
      return;
    }
    if (this.inbound >= this.maxInbound) {
      // Refused before authentication, the expensive part, so a flood costs little. The dialer
      // is told why (its exchange reads a `connection_limit` Result), while few are waiting.
      this.metrics.handshakes.inc({ transport: connection.kind, outcome: 'connection_limit' });
      if (this.refusing >= MAX_CONCURRENT_REFUSALS) {
        connection.close('connection limit reached');
        return;
      }
      this.refusing++;
      void refuseConnection(connection, AuthFailureReason.CONNECTION_LIMIT).finally(() => {
        this.refusing--;
      });
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
    const inbound = connection.direction === 'inbound';
    const precheck = inbound
      ? (peer: PeerIdentity) => this.checkPeerRoom(connection, peer)
      : undefined;
    const admit = inbound ? (peer: PeerIdentity) => this.admitPeer(connection, peer) : undefined;
    const authenticate = this.authenticator.authenticate as AuthenticateWithOptions;
    const authenticating = authenticate.call(this.authenticator, connection, { precheck, admit });
    try {
      const session = signal ? await raceAbort(authenticating, signal) : await authenticating;
      if (this.isClosed) throw endpointClosed();
      this.handshaking.delete(connection);
      // An authenticator that does not take `admit` (e.g. tests' own): the same check, after it.
      if (admit !== undefined && !this.admitted.has(connection)) {
        try {
          admit(session.peer);
        } catch (error) {
          throw error instanceof StoqError ? limitRefusal(error) : error;
        }
      }
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

  /**
   * Counts `connection` for `peer` if it has room: run by the authenticator once the peer proved
   * who it is, before the listener confirms the session (so the refusal reaches the dialer).
   * Only sessions that complete are counted; `checkPeerRoom` already refused most extra ones.
   */
  private admitPeer(connection: TransportConnection, peer: PeerIdentity): void {
    if (this.admitted.has(connection)) return;
    const held = this.checkPeerRoom(connection, peer);
    this.inboundByPeer.set(peer.uri, held + 1);
    this.admitted.set(connection, peer.uri);
  }

  /**
   * Throws the refusal if `connection` could not be counted for `peer` now, without counting
   * it; returns the sessions `peer` holds. The authenticator runs it as soon as the peer's
   * certificate is verified and bound to the transport key (before any FALCON work), so an
   * identity at its limit that keeps dialling costs the listener its ClientHello checks only.
   */
  private checkPeerRoom(connection: TransportConnection, peer: PeerIdentity): number {
    if (!this.connections.has(connection)) {
      // Closed meanwhile: counting it now would never be undone.
      throw authFailure(
        AuthFailureReason.PROTOCOL_ERROR,
        'the connection closed while authenticating',
      );
    }
    const held = this.inboundByPeer.get(peer.uri) ?? 0;
    if (held >= this.maxPerPeer) {
      this.logPeerRefusal(peer);
      throw authFailure(
        AuthFailureReason.CONNECTION_LIMIT,
        `${peer.uri} already holds ${held} inbound sessions, the most this endpoint allows one identity (maxInboundSessionsPerPeer)`,
        { uri: peer.uri, limit: this.maxPerPeer },
      );
    }
    return held;
  }

  /**
   * At most one warn line per `PEER_LIMIT_LOG_INTERVAL_MS`, with the refusals since the last
   * (of any identity) and the identity refused last.
   */
  private logPeerRefusal(peer: PeerIdentity): void {
    this.unloggedPeerRefusals += 1;
    const now = performance.now();
    if (now - this.lastPeerRefusalLog < PEER_LIMIT_LOG_INTERVAL_MS) return;
    this.logger.warn('refusing STOQ sessions: an identity holds the most sessions allowed', {
      refusals: this.unloggedPeerRefusals,
      lastPeer: peer.uri,
      limit: this.maxPerPeer,
    });
    this.unloggedPeerRefusals = 0;
    this.lastPeerRefusalLog = now;
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
      const uri = this.admitted.get(connection);
      if (uri !== undefined) {
        this.admitted.delete(connection);
        const held = (this.inboundByPeer.get(uri) ?? 1) - 1;
        if (held > 0) this.inboundByPeer.set(uri, held);
        else this.inboundByPeer.delete(uri);
      }
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
