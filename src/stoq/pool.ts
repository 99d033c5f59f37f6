import { StoqError, StoqErrorCode } from './errors.js';
import type { PeerIdentity, Session } from './identity.js';
import { positiveIntegerOption } from './options.js';
import type { Resolver } from './resolver.js';
import type { SocketAddress } from './transport.js';

/**
 * Reconnection backoff, after gRPC's connection-backoff algorithm
 * (grpc/doc/connection-backoff.md): the delay grows by `multiplier` per failed attempt up to
 * `maxMs`, and each delay is spread by ±`jitter` so that peers which lost a node together do
 * not all redial it in the same instant.
 */
export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
  /** Fraction in [0, 1): each delay is uniformly drawn from `base × (1 ± jitter)`. */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({
  initialMs: 100,
  maxMs: 30_000,
  multiplier: 1.6,
  jitter: 0.2,
});

/** Delay before attempt number `attempt` (1 for the first retry); `random` returns [0, 1). */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number): number {
  const exponent = Math.max(0, attempt - 1);
  const base = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** exponent);
  const spread = base * policy.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(Math.min(policy.maxMs * (1 + policy.jitter), base + spread)));
}

/** The pool's only clock: injectable, so tests drive backoff without waiting. */
export interface PoolTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemTimers: PoolTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export type PoolEvent =
  | { readonly type: 'connected'; readonly name: string; readonly address: SocketAddress }
  | { readonly type: 'disconnected'; readonly name: string }
  | {
      readonly type: 'connect-failed';
      readonly name: string;
      readonly attempt: number;
      readonly error: StoqError;
    }
  | {
      readonly type: 'reconnect-scheduled';
      readonly name: string;
      readonly attempt: number;
      readonly delayMs: number;
    };

export type ConnectFunction = (
  address: SocketAddress,
  name: string,
  signal: AbortSignal,
) => Promise<Session>;

export interface ConnectionPoolOptions {
  readonly resolver: Resolver;
  /** Dials and authenticates one address; must close what it opened when `signal` aborts. */
  readonly connect: ConnectFunction;
  readonly backoff?: Partial<BackoffPolicy>;
  /** Time for one address to yield a session (default 10 s). */
  readonly connectTimeoutMs?: number;
  /**
   * Checks that the authenticated peer is the one the name stands for (e.g. the certificate's
   * name equals it). Without it any authenticated peer at the resolved address is accepted.
   */
  readonly verifyPeer?: (name: string, peer: PeerIdentity) => boolean;
  readonly timers?: PoolTimers;
  readonly random?: () => number;
  readonly onEvent?: (event: PoolEvent) => void;
}

export interface GetOptions {
  /** Gives up waiting (the connect attempt itself goes on for other callers). */
  readonly signal?: AbortSignal;
}

interface Waiter {
  resolve(session: Session): void;
  reject(error: StoqError): void;
}

/** Everything the pool knows about one peer name. */
interface PeerSlot {
  readonly name: string;
  session: Session | null;
  connecting: Promise<Session> | null;
  abort: AbortController | null;
  /** Consecutive failed attempts since the last session. */
  failures: number;
  retryTimer: unknown;
  /** Callers waiting for the attempt at the end of the current backoff. */
  waiters: Waiter[];
  /** Once a peer was reached, the pool keeps reconnecting to it after every loss. */
  everConnected: boolean;
}

/**
 * One authenticated session per peer name, shared by every caller: resolves the name, dials
 * (concurrent `get`s share one attempt), and after a loss reconnects with backoff until it
 * succeeds or the pool is closed.
 */
export class ConnectionPool {
  private readonly slots = new Map<string, PeerSlot>();
  private readonly backoff: BackoffPolicy;
  private readonly timers: PoolTimers;
  private readonly random: () => number;
  private readonly connectTimeoutMs: number;
  private isClosed = false;

  constructor(private readonly options: ConnectionPoolOptions) {
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    const { initialMs, maxMs, multiplier, jitter } = this.backoff;
    if (!(initialMs > 0 && maxMs >= initialMs && multiplier >= 1 && jitter >= 0 && jitter < 1)) {
      throw new StoqError(StoqErrorCode.INVALID_ARGUMENT, 'invalid backoff policy', {
        ...this.backoff,
      });
    }
    this.connectTimeoutMs = positiveIntegerOption(
      options.connectTimeoutMs,
      10_000,
      'connectTimeoutMs',
    );
    this.timers = options.timers ?? systemTimers;
    this.random = options.random ?? Math.random;
  }

  /** The session for `name`, connecting if there is none. */
  get(name: string, options: GetOptions = {}): Promise<Session> {
    if (this.isClosed) return Promise.reject(poolClosed());
    const slot = this.slot(name);
    if (slot.session) return Promise.resolve(slot.session);
    if (slot.connecting) return withSignal(slot.connecting, options.signal);
    if (slot.retryTimer !== null) {
      return new Promise<Session>((resolve, reject) => {
        const waiter: Waiter = { resolve, reject };
        slot.waiters.push(waiter);
        const signal = options.signal;
        if (!signal) return;
        const onAbort = (): void => {
          slot.waiters = slot.waiters.filter((other) => other !== waiter);
          reject(abortReason(signal));
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      });
    }
    return withSignal(this.attempt(slot), options.signal);
  }

  /** The current session for `name`, without connecting. */
  current(name: string): Session | undefined {
    return this.slots.get(name)?.session ?? undefined;
  }

  /** Closes every session, stops reconnecting and fails waiting callers. */
  close(): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    this.isClosed = true;
    for (const slot of this.slots.values()) {
      if (slot.retryTimer !== null) this.timers.clearTimeout(slot.retryTimer);
      slot.retryTimer = null;
      slot.abort?.abort(poolClosed());
      for (const waiter of slot.waiters.splice(0)) waiter.reject(poolClosed());
      slot.session?.connection.close('connection pool closed');
      slot.session = null;
    }
    this.slots.clear();
    return Promise.resolve();
  }

  private slot(name: string): PeerSlot {
    let slot = this.slots.get(name);
    if (!slot) {
      slot = {
        name,
        session: null,
        connecting: null,
        abort: null,
        failures: 0,
        retryTimer: null,
        waiters: [],
        everConnected: false,
      };
      this.slots.set(name, slot);
    }
    return slot;
  }

  private attempt(slot: PeerSlot): Promise<Session> {
    const abort = new AbortController();
    slot.abort = abort;
    const connecting = this.connectAny(slot.name, abort.signal);
    slot.connecting = connecting;
    connecting.then(
      (session) => this.onConnected(slot, session),
      (error: unknown) => this.onFailed(slot, toStoqError(error)),
    );
    return connecting;
  }

  /** Tries each resolved address in order; the first session wins. */
  private async connectAny(name: string, signal: AbortSignal): Promise<Session> {
    const addresses = await this.options.resolver.resolve(name);
    let lastError: StoqError | null = null;
    for (const address of addresses) {
      if (signal.aborted) throw abortReason(signal);
      const attempt = new AbortController();
      const onAbort = (): void => attempt.abort(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      const timer = this.timers.setTimeout(
        () =>
          attempt.abort(
            new StoqError(
              StoqErrorCode.UNAVAILABLE,
              `no session with ${name} at ${address.host}:${address.port} within ${this.connectTimeoutMs} ms`,
              { name, reason: 'connect-timeout' },
            ),
          ),
        this.connectTimeoutMs,
      );
      try {
        const connecting = this.options.connect(address, name, attempt.signal);
        // A session that arrives after we gave up on it has no owner: close it.
        attempt.signal.addEventListener(
          'abort',
          () =>
            void connecting.then(
              (late) => late.connection.close('connect attempt abandoned'),
              () => undefined,
            ),
          { once: true },
        );
        const session = await withSignal(connecting, attempt.signal);
        if (this.options.verifyPeer && !this.options.verifyPeer(name, session.peer)) {
          session.connection.close('peer is not who the name stands for');
          throw new StoqError(
            StoqErrorCode.UNAUTHENTICATED,
            `${address.host}:${address.port} authenticated as ${session.peer.uri}, not as ${name}`,
            { name, peer: session.peer.uri, reason: 'peer-mismatch' },
          );
        }
        this.options.onEvent?.({ type: 'connected', name, address });
        return session;
      } catch (error) {
        lastError = toStoqError(error);
      } finally {
        this.timers.clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      }
    }
    throw lastError ?? new StoqError(StoqErrorCode.UNAVAILABLE, `no address for ${name}`);
  }

  private onConnected(slot: PeerSlot, session: Session): void {
    slot.connecting = null;
    slot.abort = null;
    if (this.isClosed) {
      session.connection.close('connection pool closed');
      return;
    }
    slot.session = session;
    slot.failures = 0;
    slot.everConnected = true;
    for (const waiter of slot.waiters.splice(0)) waiter.resolve(session);
    void session.connection.closed.then(() => {
      if (slot.session !== session) return;
      slot.session = null;
      if (this.isClosed) return;
      this.options.onEvent?.({ type: 'disconnected', name: slot.name });
      this.scheduleRetry(slot);
    });
  }

  private onFailed(slot: PeerSlot, error: StoqError): void {
    slot.connecting = null;
    slot.abort = null;
    if (this.isClosed) return;
    slot.failures++;
    this.options.onEvent?.({
      type: 'connect-failed',
      name: slot.name,
      attempt: slot.failures,
      error,
    });
    for (const waiter of slot.waiters.splice(0)) waiter.reject(error);
    // An unknown name will not become known by retrying; configuration has to change.
    if (error.code === StoqErrorCode.NOT_FOUND) {
      this.slots.delete(slot.name);
      return;
    }
    this.scheduleRetry(slot);
  }

  private scheduleRetry(slot: PeerSlot): void {
    const attempt = slot.failures + 1;
    const delayMs = backoffDelay(attempt, this.backoff, this.random);
    this.options.onEvent?.({ type: 'reconnect-scheduled', name: slot.name, attempt, delayMs });
    slot.retryTimer = this.timers.setTimeout(() => {
      slot.retryTimer = null;
      if (this.isClosed) return;
      // A peer never reached is retried only for callers still waiting; one that was reached is
      // redialled until it answers again.
      if (slot.everConnected || slot.waiters.length > 0) {
        this.attempt(slot).catch(() => undefined);
      }
    }, delayMs);
  }
}

function withSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function abortReason(signal: AbortSignal): StoqError {
  return signal.reason instanceof StoqError
    ? signal.reason
    : new StoqError(
        StoqErrorCode.CANCELLED,
        'gave up waiting for a connection',
        {},
        { cause: signal.reason },
      );
}

function toStoqError(error: unknown): StoqError {
  if (error instanceof StoqError) return error;
  return new StoqError(
    StoqErrorCode.UNAVAILABLE,
    error instanceof Error ? error.message : String(error),
    {},
    { cause: error },
  );
}

function poolClosed(): StoqError {
  return new StoqError(StoqErrorCode.UNAVAILABLE, 'connection pool is closed');
}
