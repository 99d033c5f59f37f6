import {
  StoqError,
  StoqErrorCode,
  backoffDelay,
  createClient,
  type BackoffPolicy,
  type ConnectionPool,
  type RpcClientOptions,
  type Session,
} from '../../stoq/index.js';
import { delay } from './delay.js';
import type { ConsensusPeerService, HelloAnswer } from './peer-service.js';
import { PeerLink, toStoqError, type PeerLinkHost } from './peer-link.js';

/** What the opener needs from the network it belongs to. */
export interface OpenerHost extends PeerLinkHost {
  /** Makes `link` the peer's current stream; `key` is the peer's authenticated transport key. */
  install(link: PeerLink, key: Uint8Array): void;
  /** Forgets `link` if it is still the peer's current stream. */
  remove(link: PeerLink): void;
}

export interface GossipOpenerOptions {
  readonly peer: string;
  readonly host: OpenerHost;
  readonly pool: ConnectionPool;
  readonly service: ConsensusPeerService;
  readonly clientOptions: RpcClientOptions;
  readonly backoff: BackoffPolicy;
  readonly random: () => number;
  /** A peer's hellos change what the opener does at most once per this many milliseconds. */
  readonly helloIntervalMs: number;
  /** Aborts when the network closes. */
  readonly closing: AbortSignal;
  /**
   * Stop (instead of retrying) when the peer refuses the stream with PERMISSION_DENIED: set for
   * a peer that sorts first but does not list this node (docs/stoq-auth.md "Consensus peers"),
   * whose refusal means it now lists this node and dials it itself.
   */
  readonly endOnRefusal?: boolean;
}

/** What a hello led to, for `hypermesh_consensus_net_hellos_total{outcome}`. */
export type HelloOutcome =
  /** The opener has a welcomed stream; the caller decides whether it is one it accepted. */
  | 'connected'
  /** The opener is connecting or has a stream waiting for its welcome. */
  | 'opening'
  /** The opener was waiting out its backoff and dials now. */
  | 'woken'
  /** The stream the caller named as stale was dropped with its connection; the opener redials. */
  | 'dropped_stale'
  /** The hello would have acted, but the previous one acted less than the interval ago. */
  | 'too_soon';

/** One stream of the opener's (its number is what hellos name). */
interface OpenedStream {
  readonly id: number;
  readonly session: Session;
  link: PeerLink | null;
}

/** One attempt: dial (or reuse the pooled session), open the stream, run it until it ends. */
interface Attempt {
  readonly abort: AbortController;
  stream: OpenedStream | null;
  /** Set when a hello showed the stream runs to a previous process; that session was closed. */
  stale: Session | null;
}

/**
 * The opening side of one peer's gossip stream (this node's id sorts first): keeps one stream
 * open, reopening it with backoff after each loss, and answers the peer's hellos.
 *
 * A peer killed without closing its connection leaves the stream looking open until the
 * transport's idle timeout. When that peer comes back it calls `hello`; `answerHello` then
 * redials at once — if the backoff is running, or if the peer names the open stream as one it
 * never accepted (it was welcomed by the previous process). Only the authenticated peer itself
 * reaches `answerHello` (the service's allow check), so a hello can only ever end that peer's own
 * stream, and at most once per `helloIntervalMs`.
 */
export class GossipOpener {
  readonly peer: string;
  private attempt: Attempt | null = null;
  private waking: (() => void) | null = null;
  private streams = 0;
  private lastHelloActionAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: GossipOpenerOptions) {
    this.peer = options.peer;
  }

  /** Runs until the network closes (or the peer refuses the stream, with `endOnRefusal`). */
  async run(): Promise<void> {
    const { closing, backoff, random } = this.options;
    let failures = 0;
    while (!closing.aborted) {
      const attempt: Attempt = { abort: new AbortController(), stream: null, stale: null };
      const forward = (): void => attempt.abort.abort(closing.reason);
      closing.addEventListener('abort', forward, { once: true });
      this.attempt = attempt;
      let wasUp = false;
      let refused = false;
      try {
        wasUp = await this.open(attempt);
      } catch (error) {
        const failure = toStoqError(error);
        if (!attempt.abort.signal.aborted) this.logFailure(failure, failures);
        refused =
          this.options.endOnRefusal === true && failure.code === StoqErrorCode.PERMISSION_DENIED;
      } finally {
        closing.removeEventListener('abort', forward);
        this.attempt = null;
      }
      if (closing.aborted || refused) break;
      if (attempt.stale) {
        // Redial now, on a new connection: once the dead one is closed the pool lets go of it.
        await attempt.stale.connection.closed;
        failures = 0;
        continue;
      }
      failures = wasUp ? 1 : failures + 1;
      const wait = delay(backoffDelay(failures, backoff, random), closing);
      this.waking = wait.wake;
      await wait.done;
      this.waking = null;
    }
  }

  /**
   * The peer says it is (back) up; `staleStream` names a stream of ours it never accepted. `now`
   * is a monotonic clock in milliseconds.
   */
  answerHello(
    staleStream: number | undefined,
    now: number,
  ): { answer: HelloAnswer; outcome: HelloOutcome } {
    const attempt = this.attempt;
    const stream = attempt?.stream ?? null;
    const mayAct = now - this.lastHelloActionAt >= this.options.helloIntervalMs;
    if (attempt && stream && stream.id === staleStream && attempt.stale === null) {
      if (!mayAct) return { answer: describe(stream), outcome: 'too_soon' };
      this.lastHelloActionAt = now;
      this.options.host.logger.info('dropping a gossip stream the peer no longer has', {
        peer: this.peer,
        stream: stream.id,
      });
      // The connection runs to the peer's previous process: block sync must not use it either.
      attempt.stale = stream.session;
      stream.session.connection.close(
        'the peer restarted: this connection runs to its old process',
      );
      attempt.abort.abort(
        new StoqError(StoqErrorCode.CANCELLED, 'the peer no longer has this gossip stream'),
      );
      return { answer: { stream: null }, outcome: 'dropped_stale' };
    }
    if (attempt === null && this.waking !== null) {
      if (!mayAct) return { answer: { stream: null }, outcome: 'too_soon' };
      this.lastHelloActionAt = now;
      this.options.host.logger.info('consensus peer is back: dialling it now', { peer: this.peer });
      this.waking();
      return { answer: { stream: null }, outcome: 'woken' };
    }
    return {
      answer: describe(stream),
      outcome: stream?.link?.isUp === true ? 'connected' : 'opening',
    };
  }

  /** One attempt; resolves with whether the stream was ever up, throws if it never was. */
  private async open(attempt: Attempt): Promise<boolean> {
    const { host, pool, service, clientOptions } = this.options;
    const signal = attempt.abort.signal;
    const session = await pool.get(this.peer, { signal });
    const stream: OpenedStream = { id: ++this.streams, session, link: null };
    attempt.stream = stream;
    const client = createClient(service, session, clientOptions);
    const channel = await client.openMessageStream('gossip', { signal });
    const link = new PeerLink(this.peer, 'opener', channel, host);
    stream.link = link;
    host.install(link, session.peer.transportKey);
    if (signal.aborted) link.abort();
    const end = await link.run();
    host.remove(link);
    if (end.wasUp) {
      host.logger.info('consensus peer disconnected', {
        peer: this.peer,
        side: 'opener',
        ...(end.error ? { code: end.error.code, error: end.error.message } : {}),
      });
    }
    if (!end.wasUp && end.error) throw end.error;
    return end.wasUp;
  }

  private logFailure(failure: StoqError, failures: number): void {
    // The first failure in a row and then every power of two: a peer that stays away does not
    // fill the log.
    if ((failures & (failures + 1)) !== 0) return;
    this.options.host.logger.warn('cannot open gossip stream', {
      peer: this.peer,
      attempt: failures + 1,
      code: failure.code,
      error: failure.message,
    });
  }
}

function describe(stream: OpenedStream | null): HelloAnswer {
  if (stream === null) return { stream: null };
  return { stream: { id: stream.id, up: stream.link?.isUp === true } };
}
