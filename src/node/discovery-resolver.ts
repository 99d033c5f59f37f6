import { EventEmitter } from 'node:events';
import type { GenesisDocument } from '../consensus/genesis.js';
import { createNodeRpcClient } from '../consensus/net/index.js';
import { bytesEqual, fromHex } from '../crypto/bytes.js';
import type { HealthStatus, ServiceInstance } from '../discovery/index.js';
import { createDiscoveryRpcClient, type DiscoveryRpcClient } from '../faces/discovery-rpc.js';
import {
  StaticResolver,
  StoqError,
  StoqErrorCode,
  type PeerIdentity,
  type Resolver,
  type ResolverTable,
  type Session,
  type SocketAddress,
} from '../stoq/index.js';
import { SELF_SERVICES } from './discovery-self.js';
import { CommittedRootError, CommittedRoots, type VerifiedRootCache } from './verified-root.js';

/**
 * The STOQ `Resolver` backed by service discovery (docs/discovery.md, "Resolving peers"):
 * a peer name resolves to the addresses its live catalog registration gives, with the
 * configured (bootstrap) addresses only as the fallback.
 *
 * Names: `node-2` is the instance `node-2` of `hypermesh-node` (what every node registers for
 * itself); `<service>/<instance>` is that instance of any service. The addresses are the
 * instance's addresses, each with its `stoq` port, in the owner's order.
 *
 * Precedence, per name:
 *   1. the live catalog record (any status: a registration says where the peer is, its health
 *      says whether it answers; the pool's own backoff handles one that does not) — but not one
 *      owned by another key than the one configured for the name (`keys`) or, for another
 *      configured name, than the one its certificate last proved (`certifiedKey`);
 *   2. then the configured addresses for the name, tried after the catalog's (deduplicated), so
 *      a catalog entry that is stale or wrong never cuts a node off from its configured peers;
 *   3. neither: NOT_FOUND.
 * While the catalog has no answer yet (no block committed, the bootstrap nodes unreachable, the
 * name not registered) only the configured addresses are used. The pool checks that the
 * dialled peer authenticates as the name, so an address from the catalog can never stand in for
 * another node's identity.
 *
 * Two catalog sources: inside a node, the node's committed `CatalogView` (followed block by
 * block, read at every dial); outside one (operator tools), `RemoteCatalog`, which asks a
 * bootstrap node's `hypermesh.discovery.v1` for proven answers, checks their state root against
 * the committed header, and follows them with `watch`.
 */

/** The catalog records a source knows for one instance: null while it has no answer yet. */
export interface CatalogSource {
  lookup(service: string, instance: string): Promise<readonly ServiceInstance[] | null>;
  close?(): Promise<void>;
}

/** Anything with a committed view of the catalog (`CatalogView`). */
export interface CatalogReader {
  live(service: string): readonly ServiceInstance[];
}

/** Every status: a registration is where the peer is, whatever its health. */
const ALL_STATUSES: readonly HealthStatus[] = ['passing', 'warning', 'critical'];

/** The catalog service and instance a peer name stands for, or null for a name that is neither. */
export function catalogNameOf(name: string): { service: string; instance: string } | null {
  const slash = name.indexOf('/');
  const [service, instance] =
    slash < 0 ? [SELF_SERVICES.node, name] : [name.slice(0, slash), name.slice(slash + 1)];
  if (!/^[a-z0-9-]{1,63}$/.test(service) || !/^[a-z0-9-]{1,63}$/.test(instance)) return null;
  return { service, instance };
}

/** The STOQ addresses of a registration: every address with its `stoq` port (none without one). */
export function stoqAddressesOf(record: ServiceInstance): SocketAddress[] {
  const port = record.ports.find((entry) => entry.protocol === 'stoq')?.port;
  if (port === undefined) return [];
  return record.addresses.map((host) => ({ host, port }));
}

function sameAddress(a: SocketAddress, b: SocketAddress): boolean {
  return a.port === b.port && a.host.toLowerCase() === b.host.toLowerCase();
}

export interface DiscoveryResolverOptions {
  /** The configured addresses by name (node configuration `peers`, cluster.json nodes). */
  readonly bootstrap: ResolverTable;
  readonly catalog: CatalogSource;
  /**
   * The keys configured names must authenticate with (a listed genesis validator's key). A
   * catalog registration of such a name owned by another key is ignored: any validator key may
   * take an unowned or expired name in the catalog, and its addresses, tried first, would each
   * fail the name check (or not answer for the connect timeout) before the configured one.
   */
  readonly keys?: ReadonlyMap<string, Uint8Array>;
  /**
   * For a configured name without a `keys` entry (e.g. a node `cluster add-node` made, which
   * lists the nodes added before it): the key a certificate of that name last authenticated with
   * (`certifiedKeyOf` a consensus network's `certifiedNames`), pinned like `keys` while known.
   */
  readonly certifiedKey?: (name: string) => Uint8Array | undefined;
}

/**
 * The key a certificate named `name` last authenticated with, from a consensus network's
 * `certifiedNames` (hex key → name, the most recent last): undefined when none did. Looks at
 * every entry (at most the network's `maxDiscoveredPeers`).
 */
export function certifiedKeyOf(
  certified: ReadonlyMap<string, string>,
  name: string,
): Uint8Array | undefined {
  let found: string | undefined;
  for (const [key, holder] of certified) if (holder === name) found = key;
  return found === undefined ? undefined : fromHex(found);
}

export class DiscoveryResolver implements Resolver {
  private readonly bootstrap: StaticResolver | null;
  private readonly names: ReadonlySet<string>;
  private readonly keys: ReadonlyMap<string, Uint8Array>;
  private readonly certifiedKey: (name: string) => Uint8Array | undefined;
  readonly catalog: CatalogSource;

  constructor(options: DiscoveryResolverOptions) {
    this.names = new Set(Object.keys(options.bootstrap));
    this.bootstrap = this.names.size === 0 ? null : new StaticResolver(options.bootstrap);
    this.keys = new Map(options.keys ?? []);
    this.certifiedKey = options.certifiedKey ?? (() => undefined);
    this.catalog = options.catalog;
  }

  async resolve(name: string): Promise<SocketAddress[]> {
    const configured =
      this.bootstrap !== null && this.names.has(name) ? await this.bootstrap.resolve(name) : [];
    const wanted = catalogNameOf(name);
    const records =
      wanted === null ? null : await this.catalog.lookup(wanted.service, wanted.instance);
    const key = this.keys.get(name) ?? (this.names.has(name) ? this.certifiedKey(name) : undefined);
    const owned = (records ?? []).filter(
      (record) => key === undefined || bytesEqual(record.owner, key),
    );
    const found: SocketAddress[] = [];
    for (const address of [...owned.flatMap(stoqAddressesOf), ...configured]) {
      if (!found.some((seen) => sameAddress(seen, address))) found.push(address);
    }
    if (found.length === 0) {
      throw new StoqError(
        StoqErrorCode.NOT_FOUND,
        `no addresses for ${JSON.stringify(name)} in the catalog or the configuration`,
        { name, reason: 'unknown-name' },
      );
    }
    return found;
  }

  close(): Promise<void> {
    return this.catalog.close?.() ?? Promise.resolve();
  }
}

/**
 * The node's own committed catalog. `view()` returns null before discovery is set up (or on a
 * chain without it): then the source has no answer and the configured addresses are used.
 */
export function viewCatalogSource(view: () => CatalogReader | null): CatalogSource {
  return {
    lookup: (service, instance) => {
      const current = view();
      if (current === null) return Promise.resolve(null);
      const records = current.live(service).filter((record) => record.instance === instance);
      return Promise.resolve(records.length === 0 ? null : records);
    },
  };
}

export interface RemoteCatalogOptions {
  /**
   * The chain's genesis: each answer's state root must be the one its height's header carries
   * under a commit by the validator quorum (verified-root.ts), asked of the same node.
   */
  readonly genesis: GenesisDocument;
  /** Addresses of nodes that serve `hypermesh.discovery.v1` (from configuration). */
  readonly bootstrap: readonly SocketAddress[];
  /** Dials and authenticates an address (the caller's STOQ endpoint). */
  readonly connect: (address: SocketAddress, signal: AbortSignal) => Promise<Session>;
  /** Time for reaching a bootstrap node and its first answer (default 3 s). */
  readonly deadlineMs?: number;
  /** Bootstrap nodes dialled at once, the first to answer wins (default 8). */
  readonly fanOut?: number;
  /** After a failure to get an answer, lookups answer "none yet" at once for this long (default 5 s). */
  readonly retryAfterMs?: number;
}

/** Services whose highest proven height `RemoteCatalog` keeps after it stops following them. */
const MAX_REMEMBERED_SERVICES = 1_024;

/** Roles whose nodes serve the node and discovery APIs (a `client` certificate serves neither). */
export const SERVING_ROLES: ReadonlySet<string> = new Set(['validator', 'node']);

/**
 * Whether an authenticated peer is the node `name` stands for: its certificate names exactly
 * that name and a serving role. The check a client's connection pool runs on every session it
 * dials by node name (`ConnectionPoolOptions.verifyPeer`; operator.ts), since any cluster
 * identity, an operator's or a wallet's `client` certificate included, can listen at an
 * address a name resolves to.
 */
export function isServingNode(name: string, peer: PeerIdentity): boolean {
  return peer.name === name && SERVING_ROLES.has(peer.role);
}

interface Connected {
  readonly rpc: DiscoveryRpcClient;
  readonly session: Session;
  readonly roots: CommittedRoots;
}

interface Followed {
  records: readonly ServiceInstance[] | null;
  /** Height of the state `records` were proven at. */
  height: number | null;
  ready: Promise<void>;
}

/**
 * The catalog as a bootstrap node proves it: for each service asked about, one proven
 * `resolve` (every proof checked against the answer's state root, as `createDiscoveryRpcClient`
 * does, and that root against block H's header and its commit by the validator quorum, fetched
 * from the same node: `CommittedRoots`, once per height), then a `watch` stream whose every
 * message is followed by a fresh proven `resolve`, so the answers keep up with registrations
 * that change. The session to the bootstrap node is its own (not the pool's), so resolving a
 * name never waits on a dial of that same name. When no bootstrap node answers, or its answer
 * does not verify (a refused root is emitted as `refused`), the source has no answer, and lookups within
 * `retryAfterMs` do not try again; when the stream breaks, the next lookup starts over.
 */
export class RemoteCatalog implements CatalogSource {
  private readonly options: RemoteCatalogOptions;
  private readonly closer = new AbortController();
  private readonly followed = new Map<string, Followed>();
  private client: Promise<Connected> | null = null;
  /** Roots verified so far, whichever bootstrap node was asked. */
  private readonly verifiedRoots: VerifiedRootCache = new Map();
  /**
   * The highest height each service was proven at, kept when a followed service is dropped, so
   * a bootstrap node cannot roll the catalog back by breaking the stream and answering again
   * from an older (genuinely committed) height. Bounded: the least recently taken service
   * leaves first.
   */
  private readonly highest = new Map<string, number>();
  /** When the last attempt to get an answer failed (performance.now), or null. */
  private failedAt: number | null = null;
  /**
   * Emits `update` (service) after each answer the source takes in, `lost` (service) when it
   * drops one, `refused` (service, `CommittedRootError`) when an answer's state root is not the
   * committed one, `stale` (service, height) when a proven answer is older than one taken before
   * for the service, even one since dropped (it is not taken).
   */
  readonly events = new EventEmitter();

  constructor(options: RemoteCatalogOptions) {
    this.options = options;
    this.events.setMaxListeners(0);
  }

  private get deadlineMs(): number {
    return this.options.deadlineMs ?? 3_000;
  }

  async lookup(service: string, instance: string): Promise<readonly ServiceInstance[] | null> {
    if (this.closer.signal.aborted || this.options.bootstrap.length === 0) return null;
    const retryAfterMs = this.options.retryAfterMs ?? 5_000;
    if (this.failedAt !== null && performance.now() - this.failedAt < retryAfterMs) return null;
    let entry = this.followed.get(service);
    if (entry === undefined) {
      const created: Followed = { records: null, height: null, ready: Promise.resolve() };
      created.ready = this.follow(service, created);
      this.followed.set(service, created);
      entry = created;
    }
    await entry.ready;
    const records = entry.records?.filter((record) => record.instance === instance) ?? [];
    return records.length === 0 ? null : records;
  }

  async close(): Promise<void> {
    this.closer.abort();
    const client = this.client;
    this.client = null;
    const opened = await client?.catch(() => null);
    opened?.session.connection.close('discovery resolver closed');
  }

  /** First proven answer, then the watch loop in the background. Never rejects. */
  private async follow(service: string, entry: Followed): Promise<void> {
    let connected: Connected;
    try {
      connected = await this.connected();
      await this.refresh(connected, service, entry);
    } catch (error) {
      this.failedAt = performance.now();
      this.forget(service, entry);
      if (error instanceof CommittedRootError) this.events.emit('refused', service, error);
      return;
    }
    this.failedAt = null;
    void this.watch(connected, service, entry);
  }

  private async refresh(connected: Connected, service: string, entry: Followed): Promise<void> {
    const answer = await connected.rpc.resolve(service, ALL_STATUSES, {
      deadlineMs: this.deadlineMs,
      signal: this.closer.signal,
    });
    await connected.roots.check(answer.height, answer.stateRoot);
    // A proven answer from an older height than any taken for the service (a lagging or lying
    // bootstrap node, also after the stream broke and the service is asked for afresh) would
    // bring back expired registrations and addresses peers left: it is not taken.
    const highest = Math.max(entry.height ?? -1, this.highest.get(service) ?? -1);
    if (answer.height === null ? highest >= 0 : answer.height < highest) {
      this.events.emit('stale', service, answer.height);
      return;
    }
    entry.records = answer.instances;
    entry.height = answer.height;
    if (answer.height !== null) this.remember(service, answer.height);
    this.events.emit('update', service);
  }

  private async watch(connected: Connected, service: string, entry: Followed): Promise<void> {
    try {
      let first = true;
      for await (const message of connected.rpc.watch(service, { signal: this.closer.signal })) {
        // The first message is the live set the stream starts from: nothing new when it is
        // the height `resolve` already proved.
        const known = first && message.height === entry.height;
        first = false;
        if (!known) await this.refresh(connected, service, entry);
      }
    } catch (error) {
      // The stream or a resolve failed: below, the service is asked for afresh next time.
      if (error instanceof CommittedRootError) this.events.emit('refused', service, error);
    }
    this.forget(service, entry);
  }

  private remember(service: string, height: number): void {
    this.highest.delete(service);
    this.highest.set(service, height);
    for (const oldest of this.highest.keys()) {
      if (this.highest.size <= MAX_REMEMBERED_SERVICES) break;
      this.highest.delete(oldest);
    }
  }

  /** Drops a followed service so the next lookup starts over. */
  private forget(service: string, entry: Followed): void {
    if (this.followed.get(service) === entry) this.followed.delete(service);
    this.events.emit('lost', service);
  }

  /** The session to a bootstrap node: dialled once, again after it failed or closed. */
  private connected(): Promise<Connected> {
    if (this.client !== null) return this.client;
    const client = this.dial();
    this.client = client;
    const drop = (): void => {
      if (this.client === client) this.client = null;
    };
    client.then(({ session }) => void session.connection.closed.then(drop), drop);
    return client;
  }

  /** Dials up to `fanOut` bootstrap nodes at once; the first authenticated node wins. */
  private async dial(): Promise<Connected> {
    const abort = new AbortController();
    const onClose = (): void => abort.abort();
    this.closer.signal.addEventListener('abort', onClose, { once: true });
    const timer = setTimeout(() => abort.abort(), this.deadlineMs);
    const candidates = this.options.bootstrap.slice(0, this.options.fanOut ?? 8);
    let won = false;
    try {
      const session = await Promise.any(
        candidates.map(async (address) => {
          const session = await this.options.connect(address, abort.signal);
          if (won || abort.signal.aborted || !SERVING_ROLES.has(session.peer.role)) {
            session.connection.close('not used for discovery');
            throw new StoqError(StoqErrorCode.UNAVAILABLE, 'not a discovery server', {
              reason: 'role',
            });
          }
          won = true;
          return session;
        }),
      );
      // Dials still in flight give up; one that connects anyway closes its session (above).
      abort.abort();
      const roots = new CommittedRoots(createNodeRpcClient({ session }), this.options.genesis, {
        cache: this.verifiedRoots,
      });
      return { rpc: createDiscoveryRpcClient({ session }), session, roots };
    } finally {
      clearTimeout(timer);
      this.closer.signal.removeEventListener('abort', onClose);
    }
  }
}
