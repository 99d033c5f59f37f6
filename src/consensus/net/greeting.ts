import {
  StoqErrorCode,
  backoffDelay,
  type BackoffPolicy,
  type StoqError,
} from '../../stoq/index.js';
import type { ConsensusNetworkLogger } from './log.js';
import type { HelloAnswer, HelloRequest } from './peer-service.js';
import { toStoqError } from './peer-link.js';

/** What greeting one peer needs from the network. */
export interface GreetingHost {
  readonly logger: ConsensusNetworkLogger;
  /** Aborts when the network closes. */
  readonly closing: AbortSignal;
  /** Whether this network (this process) has accepted a gossip stream from `peer`. */
  hasAccepted(peer: string): boolean;
  /**
   * Resolves with true once a gossip stream from `peer` has been accepted, false after `ms`
   * without one or when the network closes.
   */
  streamFrom(peer: string, ms: number): Promise<boolean>;
  /** An authenticated session with `peer` (the pool's). */
  connect(peer: string, signal: AbortSignal): Promise<unknown>;
  hello(peer: string, request: HelloRequest, signal: AbortSignal): Promise<HelloAnswer>;
}

export interface GreetingPolicy {
  readonly backoff: BackoffPolicy;
  readonly random: () => number;
  /** How long the opener may take to open its stream after saying it is opening one. */
  readonly streamWaitMs: number;
}

/** Refusals that will not change by asking again: not a consensus peer, or not our opener. */
const FINAL_REFUSALS: ReadonlySet<string> = new Set([
  StoqErrorCode.PERMISSION_DENIED,
  StoqErrorCode.NOT_FOUND,
]);

/**
 * The accepting side's hello to one peer that opens our shared gossip stream (its id sorts
 * first), from the moment this node starts until that peer's stream arrives here.
 *
 * After a kill -9 and restart the peer's stream is still open at its end, bound to a connection
 * whose other end is gone, and the peer would notice only at its transport's idle timeout. So
 * this node asks: `hello` returns the peer's current stream. A stream that is up there but was
 * never accepted here was welcomed by a previous process of this node — the welcome is sent
 * after the stream is installed here, and the answer leaves the peer after the welcome reached
 * it — so the next hello names it `staleStream` and the peer drops it with its connection and
 * redials. A stream the peer is still opening gets `streamWaitMs` to arrive before it is named
 * stale too (it may be waiting for a welcome that a dead connection will never carry). A peer
 * without a stream dials at once (its backoff is cut short). Calls are spaced by the reconnect
 * backoff; the loop ends as soon as a stream from the peer is accepted, or on a final refusal.
 *
 * Resolves with `open` when the peer answers that it does not list this node (a node added to a
 * running cluster, docs/stoq-auth.md "Consensus peers"): it will never dial, so this node must
 * open the stream itself; with `done` otherwise.
 */
export async function greet(
  peer: string,
  host: GreetingHost,
  policy: GreetingPolicy,
): Promise<'done' | 'open'> {
  const { closing, logger } = host;
  let staleStream: number | undefined;
  let failures = 0;
  for (let round = 0; ; round++) {
    if (round > 0) {
      const delayMs = backoffDelay(round, policy.backoff, policy.random);
      if (await host.streamFrom(peer, delayMs)) return 'done';
    }
    if (closing.aborted || host.hasAccepted(peer)) return 'done';
    const request: HelloRequest = staleStream === undefined ? {} : { staleStream };
    staleStream = undefined;
    let answer: HelloAnswer;
    try {
      // A peer that starts along with this node dials it meanwhile; then there is nothing to say.
      await host.connect(peer, closing);
      if (host.hasAccepted(peer)) return 'done';
      answer = await host.hello(peer, request, closing);
    } catch (error) {
      if (closing.aborted) return 'done';
      const failure = toStoqError(error);
      if (FINAL_REFUSALS.has(failure.code)) {
        logger.warn('consensus peer refused hello', describeFailure(peer, failure));
        return 'done';
      }
      if ((failures & (failures + 1)) === 0) {
        logger.warn('cannot say hello to consensus peer', {
          ...describeFailure(peer, failure),
          attempt: failures + 1,
        });
      }
      failures++;
      continue;
    }
    if (host.hasAccepted(peer)) return 'done';
    if (answer.open === true) return 'open';
    if (answer.stream?.up === true) {
      staleStream = answer.stream.id;
      continue;
    }
    if (await host.streamFrom(peer, policy.streamWaitMs)) return 'done';
    if (answer.stream) staleStream = answer.stream.id;
  }
}

function describeFailure(peer: string, failure: StoqError): Record<string, unknown> {
  return { peer, code: failure.code, error: failure.message };
}
