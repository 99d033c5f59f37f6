import { z } from 'zod';
import { bytes } from '../codec/schema.js';
import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import { wireError, type ServiceRegistry } from '../consensus/net/index.js';
import {
  DiscoveryStateError,
  DiscoveryStateErrorCode,
  HEALTHY_STATUSES,
  HEALTH_STATUSES,
  MAX_INSTANCES_PER_SERVICE,
  MAX_LABEL_LENGTH,
  decodeServiceIndex,
  discoveryInstanceQuery,
  discoveryServiceQuery,
  isLive,
  serviceChanges,
  verifyDiscoveryInstance,
  verifyDiscoveryService,
  type HealthStatus,
  type ServiceChange,
  type ServiceInstance,
  type ServiceSnapshot,
} from '../discovery/index.js';
import {
  StoqError,
  StoqErrorCode,
  createClient,
  defineService,
  serverStream,
  unary,
  type CallContext,
  type CallOptions,
  type RpcClient,
  type SessionSource,
  type StoqEndpoint,
} from '../stoq/index.js';
import { PeerBudget } from '../stoq/rpc/peer-budget.js';

/**
 * The catalog's RPC face (`hypermesh.discovery.v1`, docs/discovery.md "RPC"), served by every
 * node next to the node API:
 *
 * - `resolve`: a service's live instances with the given statuses (default: healthy), as the
 *   proven answers of the service index and of each instance, all read at one height, so the
 *   client checks every proof against one state root (`createDiscoveryRpcClient` does). Built
 *   once per height, service and statuses, and budgeted per identity: a small call asks for up
 *   to 65 proofs.
 * - `watch`: a stream of change events of one service, one message per committed height at
 *   which something changed (the first message is the live set at the start, as `added`
 *   events). A slow reader skips heights rather than queueing them: each message is the
 *   difference from the last one sent, so memory per stream is one index. Blocks that do not
 *   change the service are not read for it, and the index is read without a proof.
 * - `list`: the services the node's committed catalog holds, with counts (not proven).
 *
 * Reading the catalog is open to every authenticated role; it changes only by transactions.
 */
export const DISCOVERY_SERVICE_NAME = 'hypermesh.discovery.v1';

/** Watch streams one node serves at once; one more is refused with RESOURCE_EXHAUSTED. */
export const DEFAULT_MAX_WATCHERS = 256;
/**
 * Watch streams one authenticated identity (certificate name) holds at once, so one client
 * cannot take every slot of `maxWatchers`; one more is refused with RESOURCE_EXHAUSTED.
 */
export const DEFAULT_MAX_WATCHERS_PER_PEER = 16;
/** Services `list` returns at most. */
export const MAX_LISTED_SERVICES = 4_096;
/**
 * `resolve` calls one authenticated identity (certificate URI) may make per second, and at once
 * after a pause (the bucket's size); one more is refused with RESOURCE_EXHAUSTED, reason
 * `resolve-rate`. A call is 61 bytes, its answer up to 65 state proofs (~666 KB): without a
 * budget one client would keep the consensus event loop building and encoding them.
 */
export const DEFAULT_RESOLVE_RATE_PER_PEER = 10;
export const DEFAULT_RESOLVE_BURST_PER_PEER = 20;
/** Built `resolve` answers kept for the current height (least recently used one leaves first). */
export const RESOLVE_CACHE_ENTRIES = 32;
const MAX_PROVEN_BYTES = 256 * 1024;

const readers = ['validator', 'node', 'client'] as const;
const height = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const label = z.string().min(1).max(MAX_LABEL_LENGTH);
const status = z.enum(HEALTH_STATUSES);
const provenValue = z.strictObject({
  value: bytes({ max: MAX_PROVEN_BYTES }).nullable(),
  proof: bytes({ max: MAX_PROVEN_BYTES }),
});

const change = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('added'), instance: label, status, expiresAt: height }),
  z.strictObject({
    type: z.literal('removed'),
    instance: label,
    reason: z.enum(['expired', 'deregistered']),
  }),
  z.strictObject({ type: z.literal('updated'), instance: label, updatedAt: height }),
  z.strictObject({ type: z.literal('status-changed'), instance: label, from: status, to: status }),
]);

export const discoveryService = defineService({
  name: DISCOVERY_SERVICE_NAME,
  methods: {
    resolve: unary({
      request: z.strictObject({
        service: label,
        statuses: z.array(status).min(1).max(HEALTH_STATUSES.length).optional(),
      }),
      response: z.strictObject({
        height: height.nullable(),
        stateRoot: bytes({ length: 32 }),
        index: provenValue,
        instances: z.array(provenValue).max(MAX_INSTANCES_PER_SERVICE),
      }),
      allow: readers,
    }),
    watch: serverStream({
      request: z.strictObject({ service: label }),
      response: z.strictObject({
        height,
        changes: z.array(change).max(MAX_INSTANCES_PER_SERVICE * 2),
      }),
      allow: readers,
    }),
    list: unary({
      request: z.strictObject({}),
      response: z.strictObject({
        height: height.nullable(),
        services: z
          .array(
            z.strictObject({
              service: label,
              live: z.int().min(0).max(MAX_INSTANCES_PER_SERVICE),
              healthy: z.int().min(0).max(MAX_INSTANCES_PER_SERVICE),
            }),
          )
          .max(MAX_LISTED_SERVICES),
      }),
      allow: readers,
    }),
  },
});

export type DiscoveryRpcService = typeof discoveryService;

/** One message of a `watch` stream. */
export interface WatchEvent {
  readonly height: number;
  readonly changes: ServiceChange[];
}

/**
 * What one committed block changed: the services whose index or instances changed or expired
 * (`CatalogUpdate.services`), or null when that is not known (every service may have changed).
 */
export type CommittedServices = readonly string[] | null;

/** What the face reads: the node's application and its commits. */
export interface DiscoveryRpcSource {
  /** The application's query (the router answers with proofs). */
  query(request: QueryRequest): QueryResponse;
  /**
   * The service's index as committed at the latest height, read without a proof (the node's
   * `CatalogView`); null before the first block. What `watch` compares, since it sends no proof.
   */
  index(service: string): ServiceSnapshot | null;
  /** Calls `listener` after each committed block; returns the unsubscribe function. */
  onCommit(listener: (height: number, services: CommittedServices) => void): () => void;
  /** Services of the committed catalog with live and healthy counts, sorted by name. */
  services(): {
    height: number | null;
    services: { service: string; live: number; healthy: number }[];
  };
}

export interface DiscoveryRpcOptions {
  readonly maxWatchers?: number;
  readonly maxWatchersPerPeer?: number;
  readonly resolveRatePerPeer?: number;
  readonly resolveBurstPerPeer?: number;
  /** Milliseconds of a monotonic clock, for the resolve budget (default `performance.now`). */
  readonly now?: () => number;
}

type ResolveAnswer = z.infer<(typeof discoveryService)['methods']['resolve']['response']>;

function liveEntries(snapshot: ServiceSnapshot, statuses: readonly HealthStatus[]) {
  return snapshot.entries.filter(
    (entry) => isLive(entry, snapshot.height) && statuses.includes(entry.status),
  );
}

/** Registers `hypermesh.discovery.v1` on `server`, answering from `source`. */
export function registerDiscoveryRpc(
  server: ServiceRegistry,
  source: DiscoveryRpcSource,
  options: DiscoveryRpcOptions = {},
): { watchers(): number } {
  const maxWatchers = options.maxWatchers ?? DEFAULT_MAX_WATCHERS;
  const maxPerPeer = options.maxWatchersPerPeer ?? DEFAULT_MAX_WATCHERS_PER_PEER;
  let watchers = 0;
  const watchersOf = new Map<string, number>();

  const budget = new PeerBudget(
    options.resolveRatePerPeer ?? DEFAULT_RESOLVE_RATE_PER_PEER,
    options.resolveBurstPerPeer ?? DEFAULT_RESOLVE_BURST_PER_PEER,
    options.now ?? (() => performance.now()),
  );
  /** Built answers of the height `cachedAt`, by service and statuses, least recently used first. */
  const answers = new Map<string, ResolveAnswer>();
  let cachedAt: number | null | undefined;

  const build = (service: string, statuses: readonly HealthStatus[]): ResolveAnswer => {
    const index = source.query(discoveryServiceQuery(service));
    const proven = (answer: QueryResponse) => ({
      value: answer.value,
      proof: answer.proof ?? new Uint8Array(0),
    });
    if (index.height === null || index.value === null) {
      return {
        height: index.height,
        stateRoot: index.stateRoot,
        index: proven(index),
        instances: [],
      };
    }
    const entries = liveEntries(
      { height: index.height, entries: decodeServiceIndex(index.value) },
      statuses,
    );
    const instances = entries.map((entry) => {
      const answer = source.query(discoveryInstanceQuery(service, entry.instance, index.height!));
      return proven(answer);
    });
    return { height: index.height, stateRoot: index.stateRoot, index: proven(index), instances };
  };

  /**
   * The proven answer, built once per (height, service, statuses): every caller at one height
   * gets the same proofs, so answering again costs no state reads.
   */
  const resolve = (service: string, statuses: readonly HealthStatus[]): ResolveAnswer => {
    const height = source.index(service)?.height ?? null;
    if (height !== cachedAt) {
      answers.clear();
      cachedAt = height;
    }
    const wanted = HEALTH_STATUSES.filter((status) => statuses.includes(status));
    const key = `${service}/${wanted.join(',')}`;
    const cached = answers.get(key);
    if (cached !== undefined) {
      answers.delete(key);
      answers.set(key, cached);
      return cached;
    }
    const answer = build(service, wanted);
    // Kept only when built at the height it is filed under (the view and the store agree).
    if (answer.height === height) {
      answers.set(key, answer);
      for (const oldest of answers.keys()) {
        if (answers.size <= RESOLVE_CACHE_ENTRIES) break;
        answers.delete(oldest);
      }
    }
    return answer;
  };

  const checkBudget = (ctx: CallContext): void => {
    if (budget.take(ctx.peer.uri)) return;
    throw new StoqError(
      StoqErrorCode.RESOURCE_EXHAUSTED,
      `${ctx.peer.name} called resolve more often than this node answers one identity`,
      {
        reason: 'resolve-rate',
        ratePerSecond: options.resolveRatePerPeer ?? DEFAULT_RESOLVE_RATE_PER_PEER,
      },
    );
  };

  async function* watch(service: string, ctx: CallContext): AsyncGenerator<WatchEvent> {
    if (watchers >= maxWatchers) {
      throw new StoqError(
        StoqErrorCode.RESOURCE_EXHAUSTED,
        `this node serves ${maxWatchers} watch streams, the limit`,
        { reason: 'watchers', limit: maxWatchers },
      );
    }
    const peer = ctx.peer.name;
    const held = watchersOf.get(peer) ?? 0;
    if (held >= maxPerPeer) {
      throw new StoqError(
        StoqErrorCode.RESOURCE_EXHAUSTED,
        `${peer} already holds ${held} watch streams on this node, the limit per identity`,
        { reason: 'watchers-per-peer', limit: maxPerPeer },
      );
    }
    watchers++;
    watchersOf.set(peer, held + 1);
    let wake: (() => void) | null = null;
    let previous: ServiceSnapshot | null = null;
    // Read again only after a block that changed the service (or before the first message, after
    // any block): the index is read from the node's view, without a proof, since none is sent.
    let stale = true;
    const off = source.onCommit((_height, services) => {
      if (previous !== null && services !== null && !services.includes(service)) return;
      stale = true;
      wake?.();
    });
    const onAbort = (): void => wake?.();
    ctx.signal.addEventListener('abort', onAbort);
    try {
      while (!ctx.signal.aborted) {
        if (!stale) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = null;
          continue;
        }
        stale = false;
        const next = source.index(service);
        if (next === null || (previous !== null && next.height <= previous.height)) continue;
        const changes = serviceChanges(previous ?? { height: next.height, entries: [] }, next);
        const first = previous === null;
        previous = next;
        if (first || changes.length > 0) yield { height: next.height, changes };
      }
    } finally {
      off();
      ctx.signal.removeEventListener('abort', onAbort);
      watchers--;
      const left = (watchersOf.get(peer) ?? 1) - 1;
      if (left === 0) watchersOf.delete(peer);
      else watchersOf.set(peer, left);
    }
  }

  const run = <T>(work: () => T): T => {
    try {
      return work();
    } catch (error) {
      throw wireError(error);
    }
  };

  server.register(discoveryService, {
    resolve: (request, ctx) =>
      run(() => {
        discoveryServiceQuery(request.service);
        checkBudget(ctx);
        return resolve(request.service, request.statuses ?? HEALTHY_STATUSES);
      }),
    watch: (request, ctx) => {
      run(() => discoveryServiceQuery(request.service));
      return watch(request.service, ctx);
    },
    list: () => {
      const listed = source.services();
      return { height: listed.height, services: listed.services.slice(0, MAX_LISTED_SERVICES) };
    },
  });
  return { watchers: () => watchers };
}

/** A resolved service, every answer's proof checked against `stateRoot`. */
export interface ResolvedService {
  readonly height: number | null;
  readonly stateRoot: Uint8Array;
  readonly instances: readonly ServiceInstance[];
}

export interface DiscoveryRpcClient {
  /**
   * The live instances of `service` with `statuses` (default: healthy). Checks the proof of the
   * index and of every instance against the answer's state root, and that the node left no
   * matching instance out; throws `DiscoveryStateError` otherwise. The caller must trust the
   * state root itself (e.g. find it in a committed block header).
   */
  resolve(
    service: string,
    statuses?: readonly HealthStatus[],
    options?: CallOptions,
  ): Promise<ResolvedService>;
  /** The service's change events; leaving the loop ends the stream on both sides. */
  watch(service: string, options?: CallOptions): AsyncIterable<WatchEvent>;
  list(options?: CallOptions): Promise<{
    height: number | null;
    services: { service: string; live: number; healthy: number }[];
  }>;
}

export type DiscoveryRpcTarget =
  { readonly endpoint: StoqEndpoint; readonly peer: string } | { readonly session: SessionSource };

export function createDiscoveryRpcClient(target: DiscoveryRpcTarget): DiscoveryRpcClient {
  const rpc: RpcClient<DiscoveryRpcService> =
    'endpoint' in target
      ? target.endpoint.client(discoveryService, target.peer)
      : createClient(discoveryService, target.session);
  return {
    resolve: async (service, statuses = HEALTHY_STATUSES, options) => {
      const answer = await rpc.call('resolve', { service, statuses: [...statuses] }, options);
      const response = (value: { value: Uint8Array | null; proof: Uint8Array }): QueryResponse => ({
        height: answer.height,
        value: value.value,
        proof: value.proof,
        stateRoot: answer.stateRoot,
      });
      const entries = verifyDiscoveryService(service, response(answer.index), { statuses });
      // A node that leaves a matching instance out (or adds one) answers against its own proof.
      if (entries.length !== answer.instances.length) {
        throw new DiscoveryStateError(
          DiscoveryStateErrorCode.PROOF_INVALID,
          `the node answered ${answer.instances.length} instances for ${entries.length} proven index entries`,
          { service, proven: entries.length, answered: answer.instances.length },
        );
      }
      const instances = entries.map((entry, i) => {
        const record = verifyDiscoveryInstance(
          service,
          entry.instance,
          response(answer.instances[i]!),
        );
        if (record === null) {
          throw new DiscoveryStateError(
            DiscoveryStateErrorCode.PROOF_INVALID,
            `the node proved ${service}/${entry.instance} absent although its index lists it`,
            { service, instance: entry.instance },
          );
        }
        return record;
      });
      return { height: answer.height, stateRoot: answer.stateRoot, instances };
    },
    watch: (service, options) => rpc.stream('watch', { service }, options),
    list: (options) => rpc.call('list', {}, options),
  };
}
