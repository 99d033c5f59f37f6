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
  type Resolver,
  type RpcClient,
  type RpcClientOptions,
  type StoqEndpoint,
} from '../../stoq/index.js';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import type { ConsensusNetwork, GossipMessage, SyncedBlock } from '../driver/ports.js';
import { MAX_VALIDATORS } from '../validator-set.js';
import { decodeGossip, encodeGossip } from '../wire.js';
import { ConsensusNetworkError, ConsensusNetworkErrorCode } from './errors.js';
import { stderrNetworkLogger, type ConsensusNetworkLogger } from './log.js';
import { delay } from './delay.js';
import { greet, type GreetingHost, type GreetingPolicy } from './greeting.js';
import {
  UNLISTED_PEER_LABEL,
  createConsensusNetworkMetrics,
  type ConsensusNetworkMetrics,
} from './metrics.js';
import { GossipOpener, type OpenerHost } from './opener.js';
import {
  SYNC_MAX_BLOCKS_PER_REQUEST,
  defineConsensusPeerService,
  type ConsensusPeerService,
  type HelloAnswer,
  type HelloRequest,
  type Welcome,
} from './peer-service.js';
import { PeerLink } from './peer-link.js';
import {
  dialsFirst,
  parseDiscoveredPeers,
  parsePeerTable,
  type ConsensusPeer,
  type ConsensusPeerConfig,
  type DiscoveredPeer,
  type DiscoveredPeerConfig,
} from './peers.js';
import type { GossipKind, SendQueueLimits } from './send-queue.js';

/**
 * Committed blocks `from..to` (ascending, consecutive from `from`, at most `limit`) from this
 * node's store, served to syncing peers; fewer (or none) when the store has fewer. The network
 * asks for one block at a time, so a sync request holds at most one block read from the store.
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
  /**
   * A served page of blocks ends once its blocks and commits reach this many bytes (default
   * 8 MiB); it always carries at least one block. The client asks for the rest next.
   */
  readonly maxSyncPageBytes: number;
  /**
   * Sync requests this node serves at once, all peers together (default 8); more are refused
   * with RESOURCE_EXHAUSTED (`reason` `sync-busy`) and the client asks another peer or later.
   */
  readonly maxConcurrentSyncRequests: number;
  /** Of those, how many one peer may have at once (default 2); more are refused the same way. */
  readonly maxSyncRequestsPerPeer: number;
  /**
   * Of those, how many followers may have at once, all together (default 4): peers this node
   * neither lists nor discovered and whose key is no validator's. The rest stay free for
   * listed peers and validators, so followers syncing from genesis cannot keep a lagging
   * validator from catching up.
   */
  readonly maxFollowerSyncRequests: number;
  /**
   * A served request ends its page after this long (default 120 s; at least one block), however
   * slowly the client reads; the client asks for the rest next.
   */
  readonly maxSyncServeMs: number;
}

/**
 * Peers this node does not list (docs/stoq-auth.md, "Consensus peers"). A node added to a running
 * cluster (`hypermesh cluster add-node`) lists the existing nodes, but they do not list it and
 * cannot dial it. With a policy, any authenticated `validator` or `node` certificate of the
 * cluster (STOQ authentication checked the chain to the cluster's trust roots and the cluster
 * name) may sync blocks from this node and open a gossip stream to it — whichever id sorts
 * first — so that it can follow the chain; but its proposals and votes are delivered only while
 * its key is a validator of the height being decided or of the next one (`isValidator`). Its
 * statuses and transactions are delivered like a listed peer's (a client may submit transactions
 * through the node API anyway). Without a policy only listed peers are served.
 *
 * The certificate (name and key, issued by the cluster's CA) says who a peer is. A stream whose
 * key is a validator's is always accepted, whatever catalog entry a discovered peer of that name
 * came from: votes are not relayed, so a validator this node refused would lose its power here.
 * Only followers — unlisted peers whose key is no validator's — are bounded, at most
 * `maxFollowers` streams at once; validators are bounded by the validator sets themselves. While
 * this node catches up (`catchingUp`), its sets are a past height's and a key that became a
 * validator since counts as a follower: followers then get `maxCatchUpFollowers` more streams,
 * and once it has caught up `closeExcessFollowers` closes those beyond `maxFollowers` again.
 *
 * Discovered peers (`setDiscoveredPeers`, e.g. validators that joined after this node's
 * configuration was written) are unlisted peers this node also dials: the same rule decides
 * which of a pair opens the stream as for listed peers, but their proposals and votes pass the
 * same validator check as any unlisted peer's. At most `maxDiscoveredPeers` of them.
 */
export interface UnlistedPeerPolicy {
  /** Whether a raw Ed25519 key is a validator of the height being decided or of the next. */
  isValidator(publicKey: Uint8Array): boolean;
  /**
   * Followers (unlisted peers whose key is no validator's) with a gossip stream at once (default
   * 16); more are refused. Validators' streams never count against it.
   */
  readonly maxFollowers?: number;
  /**
   * Whether this node is catching up with the chain, so that its validator sets are a past
   * height's (default: never). A throwing check counts as false.
   */
  catchingUp?(): boolean;
  /**
   * Follower streams taken beyond `maxFollowers` while `catchingUp` (default 128: room for the
   * validators that joined since this node's height — Caesar's staking selects at most 100 by
   * default — so that it does not refuse them).
   */
  readonly maxCatchUpFollowers?: number;
  /**
   * Discovered peers `setDiscoveredPeers` takes (default 20,000: every key of a current and a
   * next set of `MAX_VALIDATORS` each, so no validator is ever left out).
   */
  readonly maxDiscoveredPeers?: number;
}

export const DEFAULT_MAX_FOLLOWER_PEERS = 16;
export const DEFAULT_MAX_CATCH_UP_FOLLOWER_PEERS = 128;
export const DEFAULT_MAX_DISCOVERED_PEERS = 2 * MAX_VALIDATORS;

export const DEFAULT_CONSENSUS_NETWORK_LIMITS: ConsensusNetworkLimits = Object.freeze({
  maxQueuedMessages: 4096,
  maxQueuedBytes: 16 * 1024 * 1024,
  maxMalformedPerStream: 16,
  maxSyncPageBytes: 8 * 1024 * 1024,
  maxConcurrentSyncRequests: 8,
  maxSyncRequestsPerPeer: 2,
  maxFollowerSyncRequests: 4,
  maxSyncServeMs: 120_000,
});

export interface StoqConsensusNetworkOptions {
  /** The node's STOQ endpoint (listening for peers; the network registers its service on it). */
  readonly endpoint: StoqEndpoint;
  /** This node's id: the name in its certificate URI. */
  readonly self: string;
  /**
   * The consensus peers, from configuration. Only these may gossip or sync with this node,
   * unless `unlisted` admits others.
   */
  readonly peers: readonly ConsensusPeerConfig[];
  /** Admits peers that are not in `peers` (see `UnlistedPeerPolicy`); default: none. */
  readonly unlisted?: UnlistedPeerPolicy;
  readonly blockSource: BlockSource;
  readonly logger?: ConsensusNetworkLogger;
  /** Registry for the network's metrics; by default a private one. */
  readonly registry?: Registry;
  readonly limits?: Partial<ConsensusNetworkLimits>;
  /** Backoff between attempts to (re)open a peer's stream (default STOQ's gRPC-style policy). */
  readonly reconnect?: Partial<BackoffPolicy>;
  /**
   * Time for one dial to yield an authenticated session (default 10 s); also how long a peer
   * that answered a hello with "opening" has to deliver its stream before it is asked to drop it.
   */
  readonly connectTimeoutMs?: number;
  /** A peer's hellos make this node redial it at most once per this many ms (default 1 s). */
  readonly helloIntervalMs?: number;
  /** Jitter source for the backoff; [0, 1). */
  readonly random?: () => number;
  /**
   * Where the peers' addresses come from at each dial (e.g. service discovery); by default a
   * fixed table of `peers`' addresses. It answers for the names in `peers`.
   */
  readonly resolver?: Resolver;
}

export interface StoqConsensusNetwork extends ConsensusNetwork {
  readonly self: string;
  readonly metrics: ConsensusNetworkMetrics;
  /** Starts opening streams to the peers this node dials and accepting the others'. */
  start(): void;
  /** Closes every stream and stops reconnecting; the service stays registered, refusing calls. */
  close(): Promise<void>;
  /** The authenticated Ed25519 transport key of a connected peer (its validator key). */
  peerKey(peer: string): Uint8Array | undefined;
  /**
   * Whether `fetchBlocks` can reach `peer`: listed and discovered peers have an address to dial,
   * other unlisted ones do not.
   */
  canFetchFrom(peer: string): boolean;
  /**
   * Replaces the discovered peers: peers that are not configured but that this node dials as if
   * they were — whichever of the pair sorts first opens the gossip stream, with the reconnect
   * backoff, and a dialled peer must authenticate as `id` (and with `publicKey` when given) —
   * while their proposals and votes count only when the unlisted policy says their key is a
   * validator. A peer that leaves the set is no longer dialled and its stream is closed (it may
   * come back as an ordinary unlisted peer, and a stream that authenticated with another key than
   * the one discovered stays); a peer whose address changes is dialled at the new address from
   * the next dial on. Needs the `unlisted` policy; at most its `maxDiscoveredPeers`. Throws
   * `ConsensusNetworkError` (INVALID_PEER: a bad id, address or key, this node, a configured peer
   * or a repeated id; TOO_MANY_PEERS; INVALID_OPTIONS: no policy, or closed) and then changes
   * nothing. Before `start` the set is only recorded.
   */
  setDiscoveredPeers(peers: readonly DiscoveredPeerConfig[]): DiscoveredPeersChange;
  /** The discovered peers' ids, sorted. */
  discoveredPeers(): readonly string[];
  /** How many discovered peers `setDiscoveredPeers` takes (the unlisted policy's). */
  readonly maxDiscoveredPeers: number;
  /**
   * What certificates told this node about validator keys: hex key → the certificate name the
   * key last authenticated with, in a stream, a hello or a session this node dialled (at most
   * `maxDiscoveredPeers` keys, the most recent). Discovery leaves out catalog entries these
   * contradict: a `hypermesh-node` instance is not its owner's name when the owner's
   * certificate says another name, nor when another validator key holds that name's
   * certificate.
   */
  certifiedNames(): ReadonlyMap<string, string>;
  /**
   * How many peers the network remembers having accepted a gossip stream from: listed and
   * discovered ones, and other unlisted ones only while their stream lasts (diagnostics, tests).
   */
  acceptedPeers(): number;
  /**
   * Unless this node is catching up (the unlisted policy's `catchingUp`), closes the follower
   * streams beyond `maxFollowers`, the most recently accepted first: ones taken while it caught
   * up, or validators' whose key left the sets. Returns how many it closed. The node calls it
   * after each commit.
   */
  closeExcessFollowers(): number;
}

/** What one `setDiscoveredPeers` changed, ids sorted. */
export interface DiscoveredPeersChange {
  readonly added: readonly string[];
  readonly removed: readonly string[];
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

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_HELLO_INTERVAL_MS = 1_000;

class StoqGossipNetwork implements StoqConsensusNetwork, OpenerHost, GreetingHost {
  readonly self: string;
  readonly metrics: ConsensusNetworkMetrics;
  readonly logger: ConsensusNetworkLogger;
  readonly queueLimits: SendQueueLimits;
  readonly maxMalformed: number;
  private readonly syncLimits: Pick<
    ConsensusNetworkLimits,
    | 'maxSyncPageBytes'
    | 'maxConcurrentSyncRequests'
    | 'maxSyncRequestsPerPeer'
    | 'maxFollowerSyncRequests'
    | 'maxSyncServeMs'
  >;
  /** Sync requests being served now, in all, to followers, and per peer. */
  private syncServing = 0;
  private syncServingFollowers = 0;
  private readonly syncServingPerPeer = new Map<string, number>();
  private readonly table: ReadonlyMap<string, ConsensusPeer>;
  private readonly endpoint: StoqEndpoint;
  private readonly blockSource: BlockSource;
  private readonly service: ConsensusPeerService;
  private readonly pool: ConnectionPool;
  private readonly backoff: BackoffPolicy;
  private readonly random: () => number;
  private readonly clientOptions: RpcClientOptions;
  private readonly connectTimeoutMs: number;
  private readonly helloIntervalMs: number;
  private readonly unlisted: UnlistedPeerPolicy | null;
  private readonly maxFollowers: number;
  private readonly maxCatchUpFollowers: number;
  private readonly maxDiscovered: number;
  /**
   * The certificate name each validator key last authenticated with here (hex key → name), the
   * most recent `maxDiscovered` of them: what `certifiedNames` tells discovery.
   */
  private readonly certified = new Map<string, string>();
  /** The authenticated transport key of each peer's current stream. */
  private readonly keys = new Map<string, Uint8Array>();
  /** The current stream per peer (up, or opened and waiting for the welcome). */
  private readonly links = new Map<string, PeerLink>();
  private readonly peerClients = new Map<string, RpcClient<ConsensusPeerService>>();
  /** The peers this node opens the stream to, by id (from `start`). */
  private readonly openers = new Map<string, GossipOpener>();
  /** Peers dialled although not configured (`setDiscoveredPeers`). */
  private discovered: ReadonlyMap<string, DiscoveredPeer> = new Map();
  /** Per discovered peer, what ends its dial loop when it leaves the set. */
  private readonly discoveredLoops = new Map<string, AbortController>();
  /**
   * Peers whose stream this network (this process) has accepted at least once; an unlisted peer
   * that is not a discovered one is forgotten when its stream ends (`forgetUnlisted`), or each
   * certificate name that ever connected would stay.
   */
  private readonly acceptedFrom = new Set<string>();
  /** Per peer, the greeting's waits for its stream to arrive (`streamFrom`). */
  private readonly arrivals = new Map<string, Set<() => void>>();
  private readonly loops = new Set<Promise<void>>();
  private readonly closer = new AbortController();
  private messageHandler: ((peer: string, message: GossipMessage) => void) | null = null;
  /** Each `onPeerConnected` handler: the driver's, and the node's transaction gossip. */
  private readonly connectedHandlers: ((peer: string) => void)[] = [];
  private started = false;

  constructor(options: StoqConsensusNetworkOptions) {
    this.self = options.self;
    this.table = parsePeerTable(options.self, options.peers);
    const limits = resolveLimits(options.limits);
    this.queueLimits = { maxMessages: limits.maxQueuedMessages, maxBytes: limits.maxQueuedBytes };
    this.maxMalformed = limits.maxMalformedPerStream;
    this.syncLimits = {
      maxSyncPageBytes: limits.maxSyncPageBytes,
      maxConcurrentSyncRequests: limits.maxConcurrentSyncRequests,
      maxSyncRequestsPerPeer: limits.maxSyncRequestsPerPeer,
      maxFollowerSyncRequests: limits.maxFollowerSyncRequests,
      maxSyncServeMs: limits.maxSyncServeMs,
    };
    this.endpoint = options.endpoint;
    this.blockSource = options.blockSource;
    this.logger = options.logger ?? stderrNetworkLogger;
    this.metrics = createConsensusNetworkMetrics(options.registry ?? new Registry());
    this.backoff = { ...DEFAULT_BACKOFF, ...options.reconnect };
    this.random = options.random ?? Math.random;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.helloIntervalMs = options.helloIntervalMs ?? DEFAULT_HELLO_INTERVAL_MS;
    if (!(Number.isSafeInteger(this.helloIntervalMs) && this.helloIntervalMs >= 0)) {
      throw new ConsensusNetworkError(
        ConsensusNetworkErrorCode.INVALID_OPTIONS,
        `helloIntervalMs must be a non-negative integer, got ${String(this.helloIntervalMs)}`,
        { helloIntervalMs: this.helloIntervalMs },
      );
    }
    this.unlisted = options.unlisted ?? null;
    this.maxFollowers = options.unlisted?.maxFollowers ?? DEFAULT_MAX_FOLLOWER_PEERS;
    this.maxCatchUpFollowers =
      options.unlisted?.maxCatchUpFollowers ?? DEFAULT_MAX_CATCH_UP_FOLLOWER_PEERS;
    this.maxDiscovered = options.unlisted?.maxDiscoveredPeers ?? DEFAULT_MAX_DISCOVERED_PEERS;
    for (const [name, value] of [
      ['maxFollowers', this.maxFollowers],
      ['maxCatchUpFollowers', this.maxCatchUpFollowers],
      ['maxDiscoveredPeers', this.maxDiscovered],
    ] as const) {
      if (!(Number.isSafeInteger(value) && value >= 0)) {
        throw new ConsensusNetworkError(
          ConsensusNetworkErrorCode.INVALID_OPTIONS,
          `unlisted.${name} must be a non-negative integer, got ${String(value)}`,
          { [name]: value },
        );
      }
    }
    this.service = defineConsensusPeerService((peer) => this.mayBePeer(peer));
    const resolverTable = Object.fromEntries(
      [...this.table.values()].map((peer) => [peer.id, [peer.address]]),
    );
    const resolver = options.resolver ?? new StaticResolver(resolverTable);
    // The pool checks the dialled peer's authenticated certificate name (and a discovered peer's
    // key); the pool itself checks the backoff policy.
    this.pool = new ConnectionPool({
      resolver: {
        resolve: (name) => {
          const found = this.discovered.get(name);
          return found === undefined ? resolver.resolve(name) : Promise.resolve([found.address]);
        },
      },
      connect: (address, _name, signal) => this.endpoint.connect(address, { signal }),
      verifyPeer: (name, peer) => {
        if (PEER_ROLES.has(peer.role)) this.certify(peer.name, peer.transportKey);
        return (
          peer.name === name &&
          PEER_ROLES.has(peer.role) &&
          (this.table.has(name)
            ? this.isListed(name, peer.transportKey)
            : !this.discovered.has(name) || this.isDiscovered(name, peer.transportKey))
        );
      },
      backoff: this.backoff,
      connectTimeoutMs: this.connectTimeoutMs,
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
      hello: (request, ctx) => this.answerHello(request, ctx),
    });
  }

  get closing(): AbortSignal {
    return this.closer.signal;
  }

  get maxDiscoveredPeers(): number {
    return this.maxDiscovered;
  }

  certifiedNames(): ReadonlyMap<string, string> {
    return this.certified;
  }

  start(): void {
    if (this.closing.aborted) {
      throw new ConsensusNetworkError(
        ConsensusNetworkErrorCode.INVALID_OPTIONS,
        'the consensus network was closed; make a new one',
      );
    }
    if (this.started) return;
    this.started = true;
    for (const peer of this.table.keys()) this.runPeer(peer, this.closing);
    for (const peer of this.discovered.keys()) this.startDiscovered(peer);
  }

  setDiscoveredPeers(peers: readonly DiscoveredPeerConfig[]): DiscoveredPeersChange {
    if (this.closing.aborted) {
      throw new ConsensusNetworkError(
        ConsensusNetworkErrorCode.INVALID_OPTIONS,
        'the consensus network was closed; make a new one',
      );
    }
    if (this.unlisted === null) {
      throw new ConsensusNetworkError(
        ConsensusNetworkErrorCode.INVALID_OPTIONS,
        'discovered peers need an unlisted policy: their votes count only as a validator’s',
      );
    }
    const next = parseDiscoveredPeers(this.self, this.table, peers, this.maxDiscovered);
    const previous = this.discovered;
    const removed: string[] = [];
    const added: string[] = [];
    for (const [id, peer] of previous) {
      const now = next.get(id);
      // Another key under the same name is another peer: its stream and dial loop start over.
      if (now === undefined || !sameKey(now.publicKey, peer.publicKey)) removed.push(id);
    }
    for (const id of next.keys()) if (!previous.has(id) || removed.includes(id)) added.push(id);
    this.discovered = next;
    for (const id of removed) this.stopDiscovered(id, previous.get(id)?.publicKey ?? null);
    if (this.started) for (const id of added) this.startDiscovered(id);
    return { added: added.sort(), removed: removed.sort() };
  }

  discoveredPeers(): readonly string[] {
    return [...this.discovered.keys()].sort();
  }

  acceptedPeers(): number {
    return this.acceptedFrom.size;
  }

  closeExcessFollowers(): number {
    if (this.unlisted === null || this.catchingUp()) return 0;
    // `keys` is in the order the peers' current streams were first installed.
    const followers = [...this.keys]
      .filter(([peer, key]) => this.links.get(peer)?.isUp === true && this.isFollower(peer, key))
      .map(([peer]) => peer);
    const closing = followers.slice(this.maxFollowers).reverse();
    for (const peer of closing) {
      this.logger.info('closing a follower stream beyond the follower quota', {
        peer,
        maxFollowers: this.maxFollowers,
      });
      this.links.get(peer)?.abort();
    }
    return closing.length;
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

  /** Adds `handler`: every handler is called, in the order they were added. */
  onPeerConnected(handler: (peer: string) => void): void {
    this.connectedHandlers.push(handler);
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

  peerKey(peer: string): Uint8Array | undefined {
    return this.links.get(peer)?.isUp === true ? this.keys.get(peer) : undefined;
  }

  canFetchFrom(peer: string): boolean {
    return this.table.has(peer) || this.discovered.has(peer);
  }

  async close(): Promise<void> {
    if (this.closing.aborted) return;
    this.closer.abort(new StoqError(StoqErrorCode.UNAVAILABLE, 'consensus network closed'));
    for (const link of this.links.values()) link.abort();
    await Promise.allSettled([...this.loops]);
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
    if (
      (message.kind === 'proposal' || message.kind === 'vote') &&
      !this.table.has(peer) &&
      !this.unlistedValidator(peer)
    ) {
      this.metrics.unlistedRefused.inc({ kind: message.kind });
      return;
    }
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
    this.metrics.connects.inc({ peer: this.peerLabel(link.peer) });
    this.updateConnectedGauge();
    this.logger.info('consensus peer connected', {
      peer: link.peer,
      side: link.side,
      ...(this.table.has(link.peer)
        ? {}
        : {
            unlisted: true,
            ...(this.isDiscovered(link.peer, this.keys.get(link.peer) ?? new Uint8Array())
              ? { discovered: true }
              : {}),
          }),
    });
    for (const handler of this.connectedHandlers) {
      try {
        handler(link.peer);
      } catch (error) {
        this.logger.error('peer-connected handler failed', {
          peer: link.peer,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
  }

  peerLabel(peer: string): string {
    return this.table.has(peer) ? peer : UNLISTED_PEER_LABEL;
  }

  // OpenerHost

  /** Makes `link` the peer's current stream, closing the one it replaces. */
  install(link: PeerLink, key: Uint8Array): void {
    const previous = this.links.get(link.peer);
    this.links.set(link.peer, link);
    this.keys.set(link.peer, key);
    if (previous && previous !== link) previous.abort();
  }

  /** Forgets `link` if it is still the peer's current stream. */
  remove(link: PeerLink): void {
    if (this.links.get(link.peer) !== link) return;
    this.links.delete(link.peer);
    this.keys.delete(link.peer);
    this.updateConnectedGauge();
    this.forgetUnlisted(link.peer);
  }

  // GreetingHost

  hasAccepted(peer: string): boolean {
    return this.acceptedFrom.has(peer);
  }

  async streamFrom(peer: string, ms: number, signal = this.closing): Promise<boolean> {
    if (this.acceptedFrom.has(peer)) return true;
    let waiters = this.arrivals.get(peer);
    if (!waiters) {
      waiters = new Set();
      this.arrivals.set(peer, waiters);
    }
    const wait = delay(ms, signal);
    waiters.add(wait.wake);
    await wait.done;
    waiters.delete(wait.wake);
    if (waiters.size === 0 && this.arrivals.get(peer) === waiters) this.arrivals.delete(peer);
    return this.acceptedFrom.has(peer);
  }

  connect(peer: string, signal: AbortSignal): Promise<unknown> {
    return this.pool.get(peer, { signal });
  }

  hello(peer: string, request: HelloRequest, signal: AbortSignal): Promise<HelloAnswer> {
    return this.peerClient(peer).call('hello', request, { signal });
  }

  // Internals

  /** A gossip stream opener for `peer`, ended by `signal` (and by a refusal, when `endOnRefusal`). */
  private opener(peer: string, signal: AbortSignal, endOnRefusal: boolean): GossipOpener {
    return new GossipOpener({
      peer,
      host: this,
      pool: this.pool,
      service: this.service,
      clientOptions: this.clientOptions,
      backoff: this.backoff,
      random: this.random,
      helloIntervalMs: this.helloIntervalMs,
      closing: signal,
      endOnRefusal,
    });
  }

  /**
   * Starts the loop that keeps `peer`'s stream up until `signal` aborts: this node opens it when
   * its id sorts first, and otherwise greets the peer (which opens it).
   */
  private runPeer(peer: string, signal: AbortSignal): void {
    let loop: Promise<void>;
    if (dialsFirst(this.self, peer)) {
      const opener = this.opener(peer, signal, false);
      this.openers.set(peer, opener);
      loop = opener.run();
    } else {
      const policy = {
        backoff: this.backoff,
        random: this.random,
        streamWaitMs: this.connectTimeoutMs,
      };
      loop = this.greetOrOpen(peer, policy, signal);
    }
    this.loops.add(loop);
    void loop.finally(() => this.loops.delete(loop));
  }

  private startDiscovered(peer: string): void {
    const stop = new AbortController();
    this.discoveredLoops.set(peer, stop);
    this.runPeer(peer, AbortSignal.any([this.closing, stop.signal]));
  }

  /**
   * Ends a discovered peer's dial loop and closes its stream, whichever side opened it — unless
   * the stream authenticated with another key than `key` (the one discovered): that is another
   * peer under the same name (the certificate's, not the catalog's), which stays.
   */
  private stopDiscovered(peer: string, key: Uint8Array | null): void {
    const stop = this.discoveredLoops.get(peer);
    if (stop === undefined) return;
    this.discoveredLoops.delete(peer);
    this.openers.delete(peer);
    stop.abort(new StoqError(StoqErrorCode.CANCELLED, `${peer} is no longer a discovered peer`));
    const link = this.links.get(peer);
    const linkKey = this.keys.get(peer);
    // Its stream, if any, is forgotten when it ends (`remove`); without one, forget it now.
    if (link === undefined) this.forgetUnlisted(peer);
    else if (key === null || linkKey === undefined || bytesEqual(key, linkKey)) link.abort();
  }

  /**
   * Forgets what this network keeps about `peer` beyond its stream, once the stream is gone and
   * the peer is neither listed nor discovered: any `node` certificate of the cluster may connect
   * under the unlisted policy, so these would otherwise grow with every name that ever did. A
   * listed or discovered peer keeps them: its greeting loop asks whether its stream ever arrived.
   */
  private forgetUnlisted(peer: string): void {
    if (this.table.has(peer) || this.discovered.has(peer) || this.links.has(peer)) return;
    this.acceptedFrom.delete(peer);
    this.peerClients.delete(peer);
  }

  /** `peer` is a listed peer, and `key` the one it must authenticate with (if one is set). */
  private isListed(peer: string, key: Uint8Array): boolean {
    const found = this.table.get(peer);
    return found !== undefined && (found.publicKey === null || bytesEqual(found.publicKey, key));
  }

  /** `peer` is a discovered peer, and `key` the one it must authenticate with (if one is set). */
  private isDiscovered(peer: string, key: Uint8Array): boolean {
    const found = this.discovered.get(peer);
    return found !== undefined && (found.publicKey === null || bytesEqual(found.publicKey, key));
  }

  /** The greeting's view of this network, its waits ended by `signal`. */
  private greetingHost(signal: AbortSignal): GreetingHost {
    if (signal === this.closing) return this;
    return {
      logger: this.logger,
      closing: signal,
      hasAccepted: (peer) => this.hasAccepted(peer),
      streamFrom: (peer, ms) => this.streamFrom(peer, ms, signal),
      connect: (peer, connectSignal) => this.connect(peer, connectSignal),
      hello: (peer, request, helloSignal) => this.hello(peer, request, helloSignal),
    };
  }

  /**
   * The service's allow check: a listed peer with a peer role, or — when unlisted peers are
   * admitted — any peer-role certificate of the cluster (authentication checked the rest).
   */
  private mayBePeer(peer: PeerIdentity): boolean {
    return PEER_ROLES.has(peer.role) && (this.table.has(peer.name) || this.unlisted !== null);
  }

  /** An unlisted peer's current key is a validator of the height being decided or the next. */
  private unlistedValidator(peer: string): boolean {
    const key = this.keys.get(peer);
    return key !== undefined && this.isValidatorKey(peer, key);
  }

  /** `key` (`peer`'s) is a validator's of the height being decided or the next, by the policy. */
  private isValidatorKey(peer: string, key: Uint8Array): boolean {
    if (this.unlisted === null) return false;
    try {
      return this.unlisted.isValidator(key);
    } catch (error) {
      this.logger.error('validator check of an unlisted peer failed', {
        peer,
        error: error instanceof Error ? error.message : String(error),
      });
      return false;
    }
  }

  /** Whether the unlisted policy says this node is catching up with the chain. */
  private catchingUp(): boolean {
    if (this.unlisted?.catchingUp === undefined) return false;
    try {
      return this.unlisted.catchingUp();
    } catch (error) {
      this.logger.error('catching-up check of the unlisted policy failed', {
        error: error instanceof Error ? error.message : String(error),
      });
      return false;
    }
  }

  /** Follower streams taken at once: more while this node catches up. */
  private followerQuota(): number {
    return this.maxFollowers + (this.catchingUp() ? this.maxCatchUpFollowers : 0);
  }

  /** Streams of followers: peers neither listed nor discovered whose key is no validator's. */
  private followerStreams(): number {
    let count = 0;
    for (const [peer, key] of this.keys) if (this.isFollower(peer, key)) count++;
    return count;
  }

  /**
   * Notes that validator key `key` authenticated as `name` (`certifiedNames`), as its newest
   * entry; the oldest goes beyond `maxDiscovered`. Other keys are not kept: any cluster
   * certificate may connect, and discovery only asks about validators.
   */
  private certify(name: string, key: Uint8Array): void {
    if (this.unlisted === null || !this.isValidatorKey(name, key)) return;
    const hex = toHex(key);
    this.certified.delete(hex);
    this.certified.set(hex, name);
    if (this.certified.size > this.maxDiscovered) {
      const oldest = this.certified.keys().next();
      if (oldest.done !== true) this.certified.delete(oldest.value);
    }
  }

  /**
   * The accepting side of a pair: greet the peer until its stream arrives; if it answers that it
   * does not list this node (it cannot dial us), open the stream ourselves until it refuses it
   * (it then lists us and dials), and greet again.
   */
  private async greetOrOpen(
    peer: string,
    policy: GreetingPolicy,
    signal: AbortSignal,
  ): Promise<void> {
    const host = this.greetingHost(signal);
    for (let round = 0; !signal.aborted; round++) {
      if (round > 0) {
        // The peer refused the stream it told us to open: back off before asking again.
        const wait = delay(backoffDelay(round, this.backoff, this.random), signal);
        await wait.done;
      }
      if ((await greet(peer, host, policy)) !== 'open' || signal.aborted) return;
      this.logger.info('consensus peer does not list this node: opening the stream to it', {
        peer,
      });
      const opener = this.opener(peer, signal, true);
      await opener.run();
    }
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
    if (!this.started || this.closing.aborted) {
      throw new StoqError(StoqErrorCode.UNAVAILABLE, 'the consensus network is not running', {
        reason: 'not-running',
      });
    }
    const listed = this.table.has(peer);
    const key = ctx.peer.transportKey;
    // A discovered peer is one this node dials: the pair rule decides who opens, as for listed ones.
    const known = listed || this.isDiscovered(peer, key);
    const validator = !known && this.isValidatorKey(peer, key);
    this.certify(peer, key);
    if (peer === this.self) {
      throw new StoqError(StoqErrorCode.PERMISSION_DENIED, `${peer} is this node's own name`, {
        reason: 'own-name',
      });
    }
    // A certificate with a listed peer's name but another key than the one configured for it
    // (its genesis validator key) is not that peer: it must not replace the real peer's stream.
    if (listed && !this.isListed(peer, ctx.peer.transportKey)) {
      throw new StoqError(
        StoqErrorCode.PERMISSION_DENIED,
        `${peer} authenticated with another key than the one configured for it`,
        { reason: 'listed-key-mismatch' },
      );
    }
    // A certificate with a discovered peer's name but another key than the catalog's owner is
    // not that peer; taken as unlisted it would replace the real peer's stream. Unless its key is
    // a validator's: the certificate, not the catalog, says who holds a name (any validator key
    // may register an unowned instance under any name), and refusing the real validator would
    // cost its power here.
    if (!listed && !known && !validator && this.discovered.has(peer)) {
      throw new StoqError(
        StoqErrorCode.PERMISSION_DENIED,
        `${peer} authenticated with another key than the one the catalog registers for it`,
        { reason: 'discovered-key-mismatch' },
      );
    }
    // Followers only: a validator's stream is always taken (the sets bound how many there are).
    // A follower replacing its live stream keeps its place; one whose stream was closed (e.g. by
    // `closeExcessFollowers`) asks for a place again.
    if (!known && !validator && this.links.get(peer)?.isUp !== true) {
      const quota = this.followerQuota();
      if (this.followerStreams() >= quota) {
        throw new StoqError(
          StoqErrorCode.RESOURCE_EXHAUSTED,
          `${this.self} serves at most ${quota} consensus peers that are no validators`,
          { reason: 'too-many-followers' },
        );
      }
    }
    // An unlisted peer opens the stream whichever id sorts first: this node cannot dial it.
    if (known && !dialsFirst(peer, this.self)) {
      throw new StoqError(
        StoqErrorCode.PERMISSION_DENIED,
        `${this.self} opens the gossip stream to ${peer}, not the other way round`,
        { reason: 'wrong-direction' },
      );
    }
    // Before the welcome goes out: a hello answer that reports this stream up can only arrive
    // after it (see greeting.ts).
    this.acceptedFrom.add(peer);
    for (const wake of this.arrivals.get(peer) ?? []) wake();
    const replaced = this.links.get(peer);
    channel.send({ welcome: true });
    const link = new PeerLink(peer, 'acceptor', channel, this);
    this.install(link, ctx.peer.transportKey);
    if (replaced) {
      // A new stream while the old one still looks open: the peer restarted or lost the
      // connection it had. A pooled connection to it (hello, block sync) is then most likely
      // dead as well; drop it so that sync does not wait for the transport's idle timeout.
      this.pool.current(peer)?.connection.close('the peer opened a new gossip stream');
    }
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

  /** A peer whose stream this node opens says it is up (see greeting.ts and opener.ts). */
  private answerHello(request: HelloRequest, ctx: CallContext): HelloAnswer {
    const peer = ctx.peer.name;
    if (!this.started || this.closing.aborted) {
      throw new StoqError(StoqErrorCode.UNAVAILABLE, 'the consensus network is not running', {
        reason: 'not-running',
      });
    }
    if (this.table.has(peer) && !this.isListed(peer, ctx.peer.transportKey)) {
      throw new StoqError(
        StoqErrorCode.PERMISSION_DENIED,
        `${peer} authenticated with another key than the one configured for it`,
        { reason: 'listed-key-mismatch' },
      );
    }
    this.certify(peer, ctx.peer.transportKey);
    if (!this.table.has(peer) && !this.isDiscovered(peer, ctx.peer.transportKey)) {
      // Admitted by the allow check but not listed: this node cannot dial it.
      this.metrics.hellos.inc({ outcome: 'unlisted' });
      return { stream: null, open: true };
    }
    const opener = this.openers.get(peer);
    if (!opener) {
      throw new StoqError(
        StoqErrorCode.PERMISSION_DENIED,
        `${peer} opens the gossip stream to ${this.self}: it is the one to say hello`,
        { reason: 'wrong-direction' },
      );
    }
    const { answer, outcome } = opener.answerHello(request.staleStream, performance.now());
    this.metrics.hellos.inc({ outcome });
    return answer;
  }

  /**
   * Serves blocks `from..to` one at a time from the block source, so a request holds one block
   * read from the store plus what STOQ's send buffer holds (the stream waits for the caller to
   * read). A page ends after `maxSyncPageBytes` of blocks and commits or `maxSyncServeMs` (at
   * least one block), and at most `maxConcurrentSyncRequests` requests (`maxSyncRequestsPerPeer`
   * of one peer, `maxFollowerSyncRequests` of followers together) are served at once: a follower
   * cannot make this node load hundreds of blocks per request, run many requests side by side,
   * hold a request open by reading slowly, nor, with others, take the slots a validator needs.
   */
  private async *serveBlocks(
    from: number,
    to: number,
    ctx: CallContext,
  ): AsyncGenerator<SyncedBlock, void, undefined> {
    if (this.closing.aborted) {
      throw new StoqError(StoqErrorCode.UNAVAILABLE, 'the consensus network is closed');
    }
    const limits = this.syncLimits;
    const peer = ctx.peer.name;
    const follower = this.isFollower(peer, ctx.peer.transportKey);
    const ofPeer = this.syncServingPerPeer.get(peer) ?? 0;
    if (
      this.syncServing >= limits.maxConcurrentSyncRequests ||
      ofPeer >= limits.maxSyncRequestsPerPeer ||
      (follower && this.syncServingFollowers >= limits.maxFollowerSyncRequests)
    ) {
      this.logger.warn('sync request refused: too many served at once', {
        peer,
        from,
        follower,
        serving: this.syncServing,
        servingFollowers: this.syncServingFollowers,
        servingPeer: ofPeer,
      });
      throw new StoqError(
        StoqErrorCode.RESOURCE_EXHAUSTED,
        `${this.self} serves at most ${limits.maxConcurrentSyncRequests} sync requests at once, ` +
          `${limits.maxSyncRequestsPerPeer} per peer, ${limits.maxFollowerSyncRequests} to ` +
          'followers',
        { reason: 'sync-busy' },
      );
    }
    const release = this.holdSyncSlot(peer, follower, ctx.signal);
    try {
      const last = Math.min(to, from + SYNC_MAX_BLOCKS_PER_REQUEST - 1);
      const deadline = Date.now() + limits.maxSyncServeMs;
      let bytes = 0;
      for (let expected = from; expected <= last && bytes < limits.maxSyncPageBytes; expected++) {
        if (ctx.signal.aborted) return;
        if (expected > from && Date.now() >= deadline) return;
        const read = await untilAborted(this.blockSource(expected, last, 1), ctx.signal);
        if (read === null) return;
        const block = read[0];
        if (block === undefined) return;
        if (read.length > 1 || block.height !== expected) {
          this.logger.error('block source answered out of range', {
            from,
            to,
            expected,
            height: block.height,
          });
          throw new StoqError(StoqErrorCode.INTERNAL, 'block source answered out of range');
        }
        bytes += block.block.length + block.commit.length;
        yield { height: block.height, block: block.block, commit: block.commit };
        this.metrics.blocksServed.inc();
      }
    } finally {
      release();
    }
  }

  /**
   * A peer with neither a listed nor a discovered name and key, whose key is no validator's of
   * the height being decided or the next (it may follow the chain; see `UnlistedPeerPolicy`).
   */
  private isFollower(peer: string, key: Uint8Array): boolean {
    return (
      !this.isListed(peer, key) && !this.isDiscovered(peer, key) && !this.isValidatorKey(peer, key)
    );
  }

  /**
   * Takes one of `peer`'s sync slots (and a follower's, for a follower) until the returned
   * release is called or `signal` aborts, whichever comes first (the slot is freed once). The
   * abort matters when the call ends while the generator waits on something else: its
   * `finally` then runs only once that wait ends.
   */
  private holdSyncSlot(peer: string, follower: boolean, signal: AbortSignal): () => void {
    this.syncServing++;
    if (follower) this.syncServingFollowers++;
    this.syncServingPerPeer.set(peer, (this.syncServingPerPeer.get(peer) ?? 0) + 1);
    let held = true;
    const release = (): void => {
      if (!held) return;
      held = false;
      signal.removeEventListener('abort', release);
      this.syncServing--;
      if (follower) this.syncServingFollowers--;
      const left = (this.syncServingPerPeer.get(peer) ?? 1) - 1;
      if (left > 0) this.syncServingPerPeer.set(peer, left);
      else this.syncServingPerPeer.delete(peer);
    };
    if (signal.aborted) release();
    else signal.addEventListener('abort', release, { once: true });
    return release;
  }

  private async *fetchPages(
    peer: string,
    from: number,
    to: number,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<SyncedBlock, void, undefined> {
    if (!this.canFetchFrom(peer)) {
      throw new ConsensusNetworkError(
        ConsensusNetworkErrorCode.UNKNOWN_PEER,
        `${JSON.stringify(peer)} is not a configured or discovered consensus peer`,
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
    const client = this.peerClient(peer);
    let next = from;
    while (next <= to) {
      const first = next;
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
      // An empty page: the peer has no more. A short one may be its byte bound (serveBlocks).
      if (next === first) return;
    }
  }

  /** A client of the peer's consensus service on the pooled session (sync and hello). */
  private peerClient(peer: string): RpcClient<ConsensusPeerService> {
    let client = this.peerClients.get(peer);
    if (!client) {
      client = createClient(
        this.service,
        (signal) => this.pool.get(peer, signal ? { signal } : {}),
        this.clientOptions,
      );
      this.peerClients.set(peer, client);
    }
    return client;
  }
}

/**
 * `work`'s result, or null as soon as `signal` aborts: a block read the caller no longer waits
 * for must not keep the call's generator alive (a rejection after that is dropped).
 */
function untilAborted<T>(work: T | Promise<T>, signal: AbortSignal): Promise<T | null> {
  if (signal.aborted) return Promise.resolve(null);
  const read = Promise.resolve(work);
  return new Promise<T | null>((resolve, reject) => {
    const aborted = (): void => resolve(null);
    signal.addEventListener('abort', aborted, { once: true });
    read.then(
      (value) => {
        signal.removeEventListener('abort', aborted);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', aborted);
        reject(error);
      },
    );
  });
}

function sameKey(a: Uint8Array | null, b: Uint8Array | null): boolean {
  return a === null || b === null ? a === b : bytesEqual(a, b);
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
