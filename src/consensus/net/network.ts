import { Registry } from 'prom-client';
import {
  ConnectionPool,
  DEFAULT_BACKOFF,
  StaticResolver,
  StoqError,
  StoqErrorCode,
  backoffDelay,
  createClient,
  type BackoffPolicy,
  type CallContext,
  type MessageChannel,
  type PeerIdentity,
  type RpcClient,
  type RpcClientOptions,
  type StoqEndpoint,
} from '../../stoq/index.js';
import type { ConsensusNetwork, GossipMessage, SyncedBlock } from '../driver/ports.js';
import { decodeGossip, encodeGossip } from '../wire.js';
import { ConsensusNetworkError, ConsensusNetworkErrorCode } from './errors.js';
import { stderrNetworkLogger, type ConsensusNetworkLogger } from './log.js';
import { createConsensusNetworkMetrics, type ConsensusNetworkMetrics } from './metrics.js';
import {
  SYNC_MAX_BLOCKS_PER_REQUEST,
  defineConsensusPeerService,
  type ConsensusPeerService,
  type Welcome,
} from './peer-service.js';
import { PeerLink, toStoqError, type PeerLinkHost } from './peer-link.js';
import {
  dialsFirst,
  parsePeerTable,
  type ConsensusPeer,
  type ConsensusPeerConfig,
} from './peers.js';
import type { GossipKind, SendQueueLimits } from './send-queue.js';

/**
 * Committed blocks `from..to` (ascending, consecutive from `from`, at most `limit`) from this
 * node's store, served to syncing peers; fewer (or none) when the store has fewer.
 */
export type BlockSource = (
  from: number,
  to: number,
  limit: number,
) => readonly SyncedBlock[] | Promise<readonly SyncedBlock[]>;

export interface ConsensusNetworkLimits {
  /** Messages queued per peer while its stream is at its high-water mark (default 4096). */
  readonly maxQueuedMessages: number;
  /** Bytes queued per peer (default 16 MiB). */
  readonly maxQueuedBytes: number;
  /** Malformed messages one stream may carry before it is closed (default 16). */
  readonly maxMalformedPerStream: number;
}

export const DEFAULT_CONSENSUS_NETWORK_LIMITS: ConsensusNetworkLimits = Object.freeze({
  maxQueuedMessages: 4096,
  maxQueuedBytes: 16 * 1024 * 1024,
  maxMalformedPerStream: 16,
});

export interface StoqConsensusNetworkOptions {
  /** The node's STOQ endpoint (listening for peers; the network registers its service on it). */
  readonly endpoint: StoqEndpoint;
  /** This node's id: the name in its certificate URI. */
  readonly self: string;
  /** The consensus peers, from configuration. Only these may gossip or sync with this node. */
  readonly peers: readonly ConsensusPeerConfig[];
  readonly blockSource: BlockSource;
  readonly logger?: ConsensusNetworkLogger;
  /** Registry for the network's metrics; by default a private one. */
  readonly registry?: Registry;
  readonly limits?: Partial<ConsensusNetworkLimits>;
  /** Backoff between attempts to (re)open a peer's stream (default STOQ's gRPC-style policy). */
  readonly reconnect?: Partial<BackoffPolicy>;
  /** Time for one dial to yield an authenticated session (default 10 s). */
  readonly connectTimeoutMs?: number;
  /** Jitter source for the backoff; [0, 1). */
  readonly random?: () => number;
}

export interface StoqConsensusNetwork extends ConsensusNetwork {
  readonly self: string;
  readonly metrics: ConsensusNetworkMetrics;
  /** Starts opening streams to the peers this node dials and accepting the others'. */
  start(): void;
  /** Closes every stream and stops reconnecting; the service stays registered, refusing calls. */
  close(): Promise<void>;
}

/**
 * Builds the consensus network over STOQ and registers its service on `options.endpoint`.
 * Nothing is dialled or accepted before `start()`.
 */
export function createStoqConsensusNetwork(
  options: StoqConsensusNetworkOptions,
): StoqConsensusNetwork {
  return new StoqGossipNetwork(options);
}

/** Roles that may take part in consensus gossip (clients may not, whatever their name). */
const PEER_ROLES: ReadonlySet<string> = new Set(['validator', 'node']);

class StoqGossipNetwork implements StoqConsensusNetwork, PeerLinkHost {
  readonly self: string;
  readonly metrics: ConsensusNetworkMetrics;
  readonly logger: ConsensusNetworkLogger;
  readonly queueLimits: SendQueueLimits;
  readonly maxMalformed: number;
  private readonly table: ReadonlyMap<string, ConsensusPeer>;
  private readonly endpoint: StoqEndpoint;
  private readonly blockSource: BlockSource;
  private readonly service: ConsensusPeerService;
  private readonly pool: ConnectionPool;
  private readonly backoff: BackoffPolicy;
  private readonly random: () => number;
  private readonly clientOptions: RpcClientOptions;
  /** The current stream per peer (up, or opened and waiting for the welcome). */
  private readonly links = new Map<string, PeerLink>();
  private readonly syncClients = new Map<string, RpcClient<ConsensusPeerService>>();
  private readonly dialLoops: Promise<void>[] = [];
  private readonly closing = new AbortController();
  private messageHandler: ((peer: string, message: GossipMessage) => void) | null = null;
  private connectedHandler: ((peer: string) => void) | null = null;
  private started = false;

  constructor(options: StoqConsensusNetworkOptions) {
    this.self = options.self;
    this.table = parsePeerTable(options.self, options.peers);
    const limits = resolveLimits(options.limits);
    this.queueLimits = { maxMessages: limits.maxQueuedMessages, maxBytes: limits.maxQueuedBytes };
    this.maxMalformed = limits.maxMalformedPerStream;
    this.endpoint = options.endpoint;
    this.blockSource = options.blockSource;
    this.logger = options.logger ?? stderrNetworkLogger;
    this.metrics = createConsensusNetworkMetrics(options.registry ?? new Registry());
    this.backoff = { ...DEFAULT_BACKOFF, ...options.reconnect };
    this.random = options.random ?? Math.random;
    this.service = defineConsensusPeerService((peer) => this.isConfiguredPeer(peer));
    const resolverTable = Object.fromEntries(
      [...this.table.values()].map((peer) => [peer.id, [peer.address]]),
    );
    // The pool checks the dialled peer's authenticated certificate name; the pool itself checks
    // the backoff policy.
    this.pool = new ConnectionPool({
      resolver: new StaticResolver(resolverTable),
      connect: (address, _name, signal) => this.endpoint.connect(address, { signal }),
      verifyPeer: (name, peer) => peer.name === name && PEER_ROLES.has(peer.role),
      backoff: this.backoff,
      ...(options.connectTimeoutMs === undefined
        ? {}
        : { connectTimeoutMs: options.connectTimeoutMs }),
      random: this.random,
    });
    this.clientOptions = {
      metrics: this.endpoint.metrics,
      limits: {
        maxMessageBytes: this.endpoint.server.limits.maxMessageBytes,
        highWaterMark: this.endpoint.server.limits.highWaterMark,
      },
    };
    this.endpoint.register(this.service, {
      gossip: (channel, ctx) => this.accept(channel, ctx),
      blocks: (request, ctx) => this.serveBlocks(request.from, request.to, ctx),
    });
  }

  start(): void {
    if (this.closing.signal.aborted) {
      throw new ConsensusNetworkError(
        ConsensusNetworkErrorCode.INVALID_OPTIONS,
        'the consensus network was closed; make a new one',
      );
    }
    if (this.started) return;
    this.started = true;
    for (const peer of this.table.values()) {
      if (dialsFirst(this.self, peer.id)) this.dialLoops.push(this.dialLoop(peer));
    }
  }

  broadcast(message: GossipMessage): void {
    const item = this.encode(message);
    if (!item) return;
    for (const link of this.links.values()) if (link.isUp) link.enqueue(item);
  }

  send(peer: string, message: GossipMessage): void {
    const item = this.encode(message);
    if (!item) return;
    const link = this.links.get(peer);
    if (link?.isUp) link.enqueue(item);
    else this.metrics.dropped.inc({ kind: item.kind, reason: 'not_connected' });
  }

  onMessage(handler: (peer: string, message: GossipMessage) => void): void {
    this.messageHandler = handler;
  }

  onPeerConnected(handler: (peer: string) => void): void {
    this.connectedHandler = handler;
  }

  peers(): readonly string[] {
    return [...this.links.values()]
      .filter((link) => link.isUp)
      .map((link) => link.peer)
      .sort();
  }

  fetchBlocks(
    peer: string,
    from: number,
    to: number,
    signal?: AbortSignal,
  ): AsyncIterable<SyncedBlock> {
    return { [Symbol.asyncIterator]: () => this.fetchPages(peer, from, to, signal) };
  }

  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort(new StoqError(StoqErrorCode.UNAVAILABLE, 'consensus network closed'));
    for (const link of this.links.values()) link.abort();
    await Promise.allSettled(this.dialLoops);
    this.links.clear();
    this.metrics.connectedPeers.set(0);
    await this.pool.close();
  }

  // PeerLinkHost

  decode(bytes: Uint8Array): GossipMessage {
    return decodeGossip(bytes);
  }

  deliver(peer: string, message: GossipMessage): void {
    const handler = this.messageHandler;
    if (!handler) return;
    try {
      handler(peer, message);
    } catch (error) {
      this.logger.error('gossip message handler failed', {
        peer,
        kind: message.kind,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  accepted(link: PeerLink): void {
    if (this.links.get(link.peer) !== link) return;
    this.metrics.connects.inc({ peer: link.peer });
    this.updateConnectedGauge();
    this.logger.info('consensus peer connected', { peer: link.peer, side: link.side });
    const handler = this.connectedHandler;
    if (!handler) return;
    try {
      handler(link.peer);
    } catch (error) {
      this.logger.error('peer-connected handler failed', {
        peer: link.peer,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  // Internals

  private isConfiguredPeer(peer: PeerIdentity): boolean {
    return this.table.has(peer.name) && PEER_ROLES.has(peer.role);
  }

  private encode(message: GossipMessage): { kind: GossipKind; bytes: Uint8Array } | null {
    // Callers are typed, but a driver bug must cost one message, not the process.
    const kind = (message as { kind?: unknown }).kind;
    const label = typeof kind === 'string' ? kind : 'unknown';
    try {
      const bytes: unknown = encodeGossip(message);
      if (!(bytes instanceof Uint8Array)) throw new TypeError(`no encoding for kind ${label}`);
      return { kind: message.kind, bytes };
    } catch (error) {
      this.metrics.dropped.inc({ kind: label, reason: 'encode_failed' });
      this.logger.error('gossip message cannot be encoded', {
        kind: label,
        error: error instanceof Error ? error.message : String(error),
      });
      return null;
    }
  }

  /** Makes `link` the peer's current stream, closing the one it replaces. */
  private install(link: PeerLink): void {
    const previous = this.links.get(link.peer);
    this.links.set(link.peer, link);
    if (previous && previous !== link) previous.abort();
  }

  /** Forgets `link` if it is still the peer's current stream. */
  private remove(link: PeerLink): void {
    if (this.links.get(link.peer) !== link) return;
    this.links.delete(link.peer);
    this.updateConnectedGauge();
  }

  private updateConnectedGauge(): void {
    let up = 0;
    for (const link of this.links.values()) if (link.isUp) up++;
    this.metrics.connectedPeers.set(up);
  }

  /**
   * The acceptor's side of a gossip stream. The allow check already made sure the caller is a
   * configured peer with a peer role; its id is the authenticated certificate name.
   */
  private async accept(
    channel: MessageChannel<Uint8Array, Uint8Array | Welcome>,
    ctx: CallContext,
  ): Promise<void> {
    const peer = ctx.peer.name;
    if (!this.started || this.closing.signal.aborted) {
      throw new StoqError(StoqErrorCode.UNAVAILABLE, 'the consensus network is not running', {
        reason: 'not-running',
      });
    }
    if (!dialsFirst(peer, this.self)) {
      throw new StoqError(
        StoqErrorCode.PERMISSION_DENIED,
        `${this.self} opens the gossip stream to ${peer}, not the other way round`,
        { reason: 'wrong-direction' },
      );
    }
    channel.send({ welcome: true });
    const link = new PeerLink(peer, 'acceptor', channel, this);
    this.install(link);
    this.accepted(link);
    const end = await link.run();
    this.remove(link);
    this.logger.info('consensus peer disconnected', {
      peer,
      side: 'acceptor',
      ...(end.error ? { code: end.error.code, error: end.error.message } : {}),
    });
    // The stream's status tells the opener why it was closed.
    if (end.malformedLimit && end.error) throw end.error;
  }

  /** The opener's side: keeps one stream open to `peer`, reopening it with backoff. */
  private async dialLoop(peer: ConsensusPeer): Promise<void> {
    const signal = this.closing.signal;
    let failures = 0;
    while (!signal.aborted) {
      let wasUp = false;
      try {
        const session = await this.pool.get(peer.id, { signal });
        const client = createClient(this.service, session, this.clientOptions);
        const channel = await client.openMessageStream('gossip', { signal });
        const link = new PeerLink(peer.id, 'opener', channel, this);
        this.install(link);
        if (signal.aborted) link.abort();
        const end = await link.run();
        this.remove(link);
        wasUp = end.wasUp;
        if (wasUp) {
          this.logger.info('consensus peer disconnected', {
            peer: peer.id,
            side: 'opener',
            ...(end.error ? { code: end.error.code, error: end.error.message } : {}),
          });
        }
        if (!wasUp && end.error) throw end.error;
      } catch (error) {
        if (signal.aborted) break;
        const failure = toStoqError(error);
        // The first failure in a row and then every power of two: a peer that stays away
        // does not fill the log.
        if ((failures & (failures + 1)) === 0) {
          this.logger.warn('cannot open gossip stream', {
            peer: peer.id,
            attempt: failures + 1,
            code: failure.code,
            error: failure.message,
          });
        }
      }
      if (signal.aborted) break;
      failures = wasUp ? 1 : failures + 1;
      await sleep(backoffDelay(failures, this.backoff, this.random), signal);
    }
  }

  private async *serveBlocks(
    from: number,
    to: number,
    ctx: CallContext,
  ): AsyncGenerator<SyncedBlock, void, undefined> {
    if (this.closing.signal.aborted) {
      throw new StoqError(StoqErrorCode.UNAVAILABLE, 'the consensus network is closed');
    }
    const blocks = await this.blockSource(from, to, SYNC_MAX_BLOCKS_PER_REQUEST);
    let expected = from;
    for (const block of blocks) {
      if (ctx.signal.aborted) return;
      if (block.height !== expected || expected > to) {
        this.logger.error('block source answered out of range', {
          from,
          to,
          expected,
          height: block.height,
        });
        throw new StoqError(StoqErrorCode.INTERNAL, 'block source answered out of range');
      }
      yield { height: block.height, block: block.block, commit: block.commit };
      this.metrics.blocksServed.inc();
      expected++;
    }
  }

  private async *fetchPages(
    peer: string,
    from: number,
    to: number,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<SyncedBlock, void, undefined> {
    if (!this.table.has(peer)) {
      throw new ConsensusNetworkError(
        ConsensusNetworkErrorCode.UNKNOWN_PEER,
        `${JSON.stringify(peer)} is not a configured consensus peer`,
        { peer },
      );
    }
    for (const [name, value] of [
      ['from', from],
      ['to', to],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new ConsensusNetworkError(
          ConsensusNetworkErrorCode.INVALID_RANGE,
          `${name} must be a positive safe integer, got ${value}`,
          { [name]: value },
        );
      }
    }
    const client = this.syncClient(peer);
    let next = from;
    while (next <= to) {
      const last = Math.min(to, next + SYNC_MAX_BLOCKS_PER_REQUEST - 1);
      const page = client.stream('blocks', { from: next, to: last }, signal ? { signal } : {});
      for await (const block of page) {
        if (block.height !== next || next > last) {
          throw new ConsensusNetworkError(
            ConsensusNetworkErrorCode.SYNC_OUT_OF_ORDER,
            `${peer} sent block ${block.height}, expected ${next <= last ? next : 'the end'}`,
            { peer, height: block.height, expected: next, last },
          );
        }
        next++;
        this.metrics.blocksFetched.inc();
        yield block;
      }
      // A short page: the peer has no more.
      if (next <= last) return;
    }
  }

  private syncClient(peer: string): RpcClient<ConsensusPeerService> {
    let client = this.syncClients.get(peer);
    if (!client) {
      client = createClient(
        this.service,
        (signal) => this.pool.get(peer, signal ? { signal } : {}),
        this.clientOptions,
      );
      this.syncClients.set(peer, client);
    }
    return client;
  }
}

function resolveLimits(overrides: Partial<ConsensusNetworkLimits> = {}): ConsensusNetworkLimits {
  const limits = { ...DEFAULT_CONSENSUS_NETWORK_LIMITS, ...overrides };
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ConsensusNetworkError(
        ConsensusNetworkErrorCode.INVALID_OPTIONS,
        `limit ${key} must be a positive integer, got ${String(value)}`,
        { [key]: value },
      );
    }
  }
  return limits;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
