import { StoqError, StoqErrorCode } from '../../stoq/index.js';
import type { GossipMessage } from '../driver/ports.js';
import type { ConsensusNetworkLogger } from './log.js';
import type { ConsensusNetworkMetrics } from './metrics.js';
import type { Welcome } from './peer-service.js';
import {
  GossipSendQueue,
  type GossipKind,
  type QueuedGossip,
  type SendQueueLimits,
} from './send-queue.js';

/**
 * One peer's gossip stream, from either side: what both the opener's `MessageChannel` and the
 * acceptor's provide. (Only the opener ever receives the welcome.)
 */
export interface GossipChannel {
  send(message: Uint8Array): boolean;
  drain(): Promise<void>;
  abort(): void;
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array | Welcome>;
}

export interface PeerLinkHost {
  readonly logger: ConsensusNetworkLogger;
  readonly metrics: ConsensusNetworkMetrics;
  readonly queueLimits: SendQueueLimits;
  /** Malformed messages one stream may carry before it is closed. */
  readonly maxMalformed: number;
  /** `decodeGossip`: strict, throws on anything that is not one well-formed message. */
  decode(bytes: Uint8Array): GossipMessage;
  /** A decoded message from the link's peer. */
  deliver(peer: string, message: GossipMessage): void;
  /** The opener saw the welcome: the stream is accepted. */
  accepted(link: PeerLink): void;
  /** The `peer` metric label of `peer` (bounded: see `UNLISTED_PEER_LABEL`). */
  peerLabel(peer: string): string;
}

/** How a link ended: `error` null for a clean end by the peer or by `abort`. */
export interface LinkEnd {
  readonly error: StoqError | null;
  /** Whether the stream ever carried gossip both ways (accepted by the peer). */
  readonly wasUp: boolean;
  /** The link closed the stream because the peer sent too many malformed messages. */
  readonly malformedLimit: boolean;
}

/** Stream failures that mean the peer sent bytes that are not valid messages. */
const MALFORMED_CODES: ReadonlySet<string> = new Set([
  StoqErrorCode.MALFORMED_FRAME,
  StoqErrorCode.FRAME_TOO_LARGE,
]);

/**
 * A gossip stream with one peer: a bounded send queue in front of the channel's own buffer
 * (the channel says "full" at its high-water mark; then messages wait here, and when this queue
 * is full too the oldest droppable ones go), and a read loop that decodes, counts and delivers
 * every message, dropping malformed ones. Nothing here throws to the caller.
 */
export class PeerLink {
  private readonly queue: GossipSendQueue;
  private blocked = false;
  private up: boolean;
  private closed = false;
  private malformed = 0;
  private readonly outByKind = new Map<GossipKind, { inc(): void }>();
  private readonly inByKind = new Map<GossipKind, { inc(): void }>();

  constructor(
    readonly peer: string,
    /** `opener` dialled and opened the stream; `acceptor` was called. */
    readonly side: 'opener' | 'acceptor',
    private readonly channel: GossipChannel,
    private readonly host: PeerLinkHost,
  ) {
    this.queue = new GossipSendQueue(host.queueLimits);
    // The acceptor has already sent its welcome: from its side the stream is up at once.
    this.up = side === 'acceptor';
  }

  get isUp(): boolean {
    return this.up && !this.closed;
  }

  /** Sends (or queues) one encoded message; never throws. */
  enqueue(item: QueuedGossip): void {
    if (this.closed) {
      this.drop(item, 'stream_closed');
      return;
    }
    if (!this.blocked && this.queue.length === 0) {
      this.write(item);
      return;
    }
    for (const dropped of this.queue.push(item)) this.drop(dropped, 'queue_full');
  }

  /** Closes the stream at once (shutdown, or a newer stream from the same peer replaced it). */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    this.channel.abort();
  }

  /**
   * Reads until the stream ends; resolves (never rejects) with how it ended. The opener's stream
   * is reset at the end; the acceptor's is left to its handler, which ends the call with a
   * status (OK, or the malformed-limit error).
   */
  async run(): Promise<LinkEnd> {
    const { error, malformedLimit } = await this.readAll();
    const wasUp = this.up;
    if (this.side === 'opener') this.abort();
    this.closed = true;
    this.up = false;
    for (const item of this.queue.clear()) this.drop(item, 'stream_closed');
    return { error, wasUp, malformedLimit };
  }

  private async readAll(): Promise<{ error: StoqError | null; malformedLimit: boolean }> {
    try {
      for await (const item of this.channel) {
        if (!(item instanceof Uint8Array)) {
          if (!this.up && !this.closed) {
            this.up = true;
            this.host.accepted(this);
          }
          continue;
        }
        this.receive(item);
        if (this.malformed >= this.host.maxMalformed) {
          this.host.logger.warn('closing gossip stream: too many malformed messages', {
            peer: this.peer,
            count: this.malformed,
          });
          const error = new StoqError(
            StoqErrorCode.INVALID_ARGUMENT,
            `${this.malformed} malformed gossip messages: closing the stream`,
            { reason: 'malformed-gossip', count: this.malformed },
          );
          return { error, malformedLimit: true };
        }
      }
      return { error: null, malformedLimit: false };
    } catch (caught) {
      const error = toStoqError(caught);
      if (MALFORMED_CODES.has(error.code) || error.detail.reason === 'schema') {
        this.countMalformed(error.message);
      }
      return { error, malformedLimit: false };
    }
  }

  private receive(bytes: Uint8Array): void {
    if (!this.up) {
      // The acceptor's first message is its welcome; gossip before it breaks the protocol.
      this.countMalformed('gossip before the welcome');
      return;
    }
    let message: GossipMessage;
    try {
      message = this.host.decode(bytes);
    } catch (caught) {
      this.countMalformed(caught instanceof Error ? caught.message : String(caught));
      return;
    }
    this.counter(this.inByKind, 'in', message.kind).inc();
    this.host.deliver(this.peer, message);
  }

  private countMalformed(reason: string): void {
    this.malformed++;
    this.host.metrics.malformed.inc({ peer: this.host.peerLabel(this.peer) });
    // The first one per stream is logged; the rest are counted (a flood must not flood the log).
    if (this.malformed === 1) {
      this.host.logger.warn('malformed gossip message dropped', { peer: this.peer, reason });
    }
  }

  private write(item: QueuedGossip): void {
    let belowMark: boolean;
    try {
      belowMark = this.channel.send(item.bytes);
    } catch (caught) {
      const error = toStoqError(caught);
      const tooLarge =
        error.code === StoqErrorCode.FRAME_TOO_LARGE ||
        error.code === StoqErrorCode.INVALID_ARGUMENT;
      this.drop(item, tooLarge ? 'too_large' : 'stream_closed');
      if (tooLarge) {
        this.host.logger.warn('gossip message too large for the stream', {
          peer: this.peer,
          kind: item.kind,
          bytes: item.bytes.length,
        });
      }
      return;
    }
    this.counter(this.outByKind, 'out', item.kind).inc();
    if (!belowMark) {
      this.blocked = true;
      this.channel.drain().then(
        () => {
          this.blocked = false;
          this.flush();
        },
        // The stream failed: the read loop sees it too and ends the link.
        () => undefined,
      );
    }
  }

  private flush(): void {
    while (!this.blocked && !this.closed) {
      const item = this.queue.shift();
      if (!item) return;
      this.write(item);
    }
  }

  private drop(item: QueuedGossip, reason: string): void {
    this.host.metrics.dropped.inc({ kind: item.kind, reason });
  }

  private counter(
    cache: Map<GossipKind, { inc(): void }>,
    direction: 'in' | 'out',
    kind: GossipKind,
  ): { inc(): void } {
    let child = cache.get(kind);
    if (!child) {
      child = this.host.metrics.messages.labels(direction, kind);
      cache.set(kind, child);
    }
    return child;
  }
}

export function toStoqError(error: unknown): StoqError {
  if (error instanceof StoqError) return error;
  return new StoqError(
    StoqErrorCode.INTERNAL,
    error instanceof Error ? error.message : String(error),
    {},
    { cause: error },
  );
}
