import { StoqError, StoqErrorCode } from '../errors.js';
import type { Session } from '../identity.js';
import type { StoqMetrics } from '../metrics.js';
import { resolveRpcLimits, type RpcLimits } from './limits.js';
import { stderrLogger, type RpcLogger } from './log.js';
import { ServerCall, type CallHost, type RegisteredMethod } from './server-call.js';
import { wireMethodName, type ServiceDefinition, type ServiceHandlers } from './service.js';
import type { StatusCode } from './wire.js';

export interface RpcServerOptions {
  readonly limits?: Partial<RpcLimits>;
  readonly metrics?: StoqMetrics;
  readonly logger?: RpcLogger;
}

/**
 * Serves registered services on authenticated sessions. Routing, authorization, validation,
 * deadlines and limits live here; handlers only do their one thing (Hono/Fastify style).
 */
export class RpcServer {
  readonly limits: RpcLimits;
  private readonly methods = new Map<string, RegisteredMethod>();
  private readonly calls = new Set<ServerCall>();
  private readonly callsPerPeer = new Map<string, number>();
  private readonly sessions = new Set<Session>();
  private readonly logger: RpcLogger;
  private readonly metrics: StoqMetrics | undefined;
  private readonly host: CallHost;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private isClosed = false;

  constructor(options: RpcServerOptions = {}) {
    this.limits = resolveRpcLimits(options.limits);
    this.logger = options.logger ?? stderrLogger;
    this.metrics = options.metrics;
    const bytesIn = this.metrics?.bytes.labels('in');
    const bytesOut = this.metrics?.bytes.labels('out');
    this.host = {
      limits: this.limits,
      logger: this.logger,
      lookup: (name) => this.methods.get(name),
      countBytes: (direction, bytes) => (direction === 'in' ? bytesIn : bytesOut)?.inc(bytes),
      recordCall: (method, code, seconds) => this.recordCall(method, code, seconds),
      rejectFrame: (reason) => this.metrics?.rejectedFrames.inc({ reason }),
      finished: (call) => this.uncount(call.session.peer.uri),
      release: (call) => this.release(call),
    };
  }

  /** Registers every method of `service`; a method registered twice is an error. */
  register<S extends ServiceDefinition>(service: S, handlers: ServiceHandlers<S>): void {
    for (const [name, definition] of Object.entries(service.methods)) {
      const wireName = wireMethodName(service, name);
      const handler = (handlers as Record<string, RegisteredMethod['handler'] | undefined>)[name];
      if (typeof handler !== 'function') {
        throw new StoqError(StoqErrorCode.INVALID_ARGUMENT, `no handler for ${wireName}`);
      }
      if (this.methods.has(wireName)) {
        throw new StoqError(StoqErrorCode.INVALID_ARGUMENT, `${wireName} is already registered`);
      }
      this.methods.set(wireName, { wireName, definition, handler });
    }
  }

  /** Streams in use by calls, including ones lingering after their status. */
  get activeCalls(): number {
    return this.calls.size;
  }

  /** In-flight calls of one peer identity, over all its sessions. */
  callsOf(peerUri: string): number {
    return this.callsPerPeer.get(peerUri) ?? 0;
  }

  /**
   * Accepts and serves the session's streams until its connection closes. The session must
   * already be authenticated: the authenticator's own stream is not seen here.
   */
  async serve(session: Session): Promise<void> {
    if (this.isClosed) {
      session.connection.close('server closed');
      return;
    }
    this.sessions.add(session);
    void session.connection.closed.then(() => {
      this.sessions.delete(session);
      const lost = new StoqError(StoqErrorCode.UNAVAILABLE, 'connection lost');
      for (const call of [...this.calls]) if (call.session === session) call.cancel(lost);
    });
    try {
      for (;;) {
        const stream = await session.connection.acceptStream();
        if (stream === null) return;
        if (this.isClosed) {
          stream.reset();
          return;
        }
        this.startCall(session, new ServerCall(this.host, session, stream));
      }
    } catch (error) {
      this.logger.warn('accepting streams failed', {
        connection: session.connection.id,
        peer: session.peer.uri,
        error: error instanceof Error ? error.message : String(error),
      });
      session.connection.close('stream accept failed');
    } finally {
      this.sessions.delete(session);
    }
  }

  /** Stops serving: in-flight calls are cancelled (their handlers' signals fire). */
  close(): Promise<void> {
    this.isClosed = true;
    const closing = new StoqError(StoqErrorCode.UNAVAILABLE, 'server is shutting down');
    for (const call of [...this.calls]) call.cancel(closing);
    this.stopSweep();
    return Promise.resolve();
  }

  private startCall(session: Session, call: ServerCall): void {
    this.calls.add(call);
    this.startSweep();
    const peer = session.peer.uri;
    const active = this.callsPerPeer.get(peer) ?? 0;
    this.callsPerPeer.set(peer, active + 1);
    if (active >= this.limits.maxConcurrentCallsPerPeer) {
      call.refuse(
        new StoqError(
          StoqErrorCode.RESOURCE_EXHAUSTED,
          `${this.limits.maxConcurrentCallsPerPeer} calls in flight is this peer's limit`,
          { limit: this.limits.maxConcurrentCallsPerPeer },
        ),
      );
      return;
    }
    void call.run();
  }

  private uncount(peer: string): void {
    const remaining = (this.callsPerPeer.get(peer) ?? 1) - 1;
    if (remaining > 0) this.callsPerPeer.set(peer, remaining);
    else this.callsPerPeer.delete(peer);
  }

  private release(call: ServerCall): void {
    if (!this.calls.delete(call)) return;
    if (this.calls.size === 0) this.stopSweep();
  }

  private recordCall(method: string, code: StatusCode, seconds: number): void {
    if (!this.metrics) return;
    this.metrics.rpcCalls.inc({ method, code, side: 'server' });
    this.metrics.rpcSeconds.observe({ method, side: 'server' }, seconds);
  }

  /** One timer for all calls' header, stall and linger timeouts, running only while needed. */
  private startSweep(): void {
    if (this.sweepTimer) return;
    const { headerTimeoutMs, stallTimeoutMs, lingerMs } = this.limits;
    const period = Math.max(5, Math.floor(Math.min(headerTimeoutMs, stallTimeoutMs, lingerMs) / 4));
    this.sweepTimer = setInterval(() => {
      const now = Date.now();
      for (const call of [...this.calls]) call.checkTimers(now);
    }, period);
  }

  private stopSweep(): void {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }
}
