import { EventEmitter } from 'node:events';
import type { KeyObject } from 'node:crypto';
import type { Registry } from 'prom-client';
import { HyperMeshError } from '../codec/error.js';
import type { QueryRequest, QueryResponse, BlockExecutionResult } from '../consensus/app.js';
import type { MempoolAddResult } from '../consensus/mempool.js';
import type { ServiceRegistry } from '../consensus/net/index.js';
import { bytesEqual } from '../crypto/bytes.js';
import { ed25519RawPublicKey } from '../crypto/ed25519.js';
import {
  CatalogView,
  HEALTHY_STATUSES,
  catalogRecords,
  discoveryRegister,
  discoveryRenew,
  discoveryStateKey,
  isLive,
  type DiscoveryGenesis,
} from '../discovery/index.js';
import {
  MAX_LISTED_SERVICES,
  registerDiscoveryRpc,
  type CommittedServices,
  type DiscoveryRpcSource,
} from '../faces/discovery-rpc.js';
import type { ServiceDnsRecords } from '../discovery/index.js';
import type { Session, SocketAddress } from '../stoq/index.js';
import { HealthRunner, type HealthClock } from './discovery-health.js';
import { createDiscoveryMetrics, type DiscoveryMetrics } from './discovery-metrics.js';
import { createProbe, type Probe } from './discovery-probes.js';
import { sameRegistration, selfRegistrations, type SelfFacts } from './discovery-self.js';
import { NodeTxSender } from './discovery-submit.js';
import type { Logger } from './log.js';

/**
 * Service discovery in a running node (docs/discovery.md, "In the node"): the committed catalog
 * held in memory and followed block by block, the `hypermesh.discovery.v1` RPC face, the
 * catalog's records in the DNS zone the genesis names, the health checks of the instances this
 * node hosts (those its identity key registered) with the renewals they call for, the node's
 * own services registered after its first commit, and metrics.
 *
 * Wiring (validator-node.ts): `applyBlock` from the application's commit hook, before the DNS
 * zones are updated (it marks the zone for recompilation when the catalog's records change);
 * `start` once consensus runs; `stop` before the STOQ endpoint closes.
 */

/** Full state keys of the catalog, for reading the committed state by module-relative key. */
export interface CommittedState {
  get(key: Uint8Array, height?: number): Uint8Array | null;
}

export interface DiscoveryNodeOptions {
  readonly genesis: DiscoveryGenesis;
  readonly chainId: string;
  readonly stampDifficulty: number;
  readonly state: CommittedState;
  /** Height of the committed state `state` reads now (null: no block yet). */
  readonly height: number | null;
  readonly query: (request: QueryRequest) => QueryResponse;
  readonly privateKey: KeyObject;
  /** Client admission (intake queue and gossip), as the node API's `submitTx`. */
  readonly submit: (tx: Uint8Array) => Promise<MempoolAddResult>;
  readonly pending: (txHash: Uint8Array) => boolean;
  /** Where `hypermesh.discovery.v1` is served (the node's STOQ endpoint). */
  readonly rpc: ServiceRegistry;
  /** Dials and authenticates a STOQ address (stoq-ping checks). */
  readonly dial: (address: SocketAddress, signal: AbortSignal) => Promise<Session>;
  readonly registry: Registry;
  readonly logger: Logger;
  /** Test seams: the health checks' clock and probe. */
  readonly clock?: HealthClock;
  readonly probe?: Probe;
}

export interface DiscoveryNode {
  /** The DNS zone the catalog is published in (canonical name), or null. */
  readonly dnsZone: string | null;
  /** The catalog's records for the zone at `apex`, by service (ConsensusZones' `overlay`). */
  dnsRecords(apex: string): readonly ServiceDnsRecords[];
  /**
   * Follows a committed block. Returns whether the zone's records changed (the caller then
   * marks the zone for recompilation). Never throws: a catalog out of step is loaded again.
   */
  applyBlock(height: number, changes: BlockExecutionResult['changes']): boolean;
  /** Starts the health checks and self-registration; `facts` are the node's bound addresses. */
  start(facts: SelfFacts): void;
  stop(): void;
  /**
   * Emits `commit` (height, services: `CommittedServices`) after each followed block, once the
   * node's work for it is done.
   */
  readonly events: EventEmitter;
  readonly catalog: () => CatalogView;
}

function describe(error: unknown): string {
  if (error instanceof HyperMeshError) return `${error.message} [${error.code}]`;
  return error instanceof Error ? error.message : String(error);
}

/** Blocks between two attempts to (re-)register one of the node's own services. */
const SELF_RETRY_BLOCKS = 10;

export function createDiscoveryNode(options: DiscoveryNodeOptions): DiscoveryNode {
  const { logger } = options;
  const owner = ed25519RawPublicKey(options.privateKey);
  const reader = {
    get: (key: Uint8Array) => options.state.get(discoveryStateKey(key)),
  };
  let view = CatalogView.load(reader, options.height);
  const events = new EventEmitter();
  events.setMaxListeners(0);
  let metrics: DiscoveryMetrics | null = null;

  const sender = new NodeTxSender({
    chainId: options.chainId,
    stampDifficulty: options.stampDifficulty,
    privateKey: options.privateKey,
    query: options.query,
    submit: options.submit,
    pending: options.pending,
    onSubmit: (key, result, txHash) => {
      metrics?.submitted(result.ok ? 'admitted' : 'refused');
      if (result.ok) logger.debug('discovery transaction submitted', { key, txHash });
      else
        logger.warn('discovery transaction refused', {
          key,
          code: result.code,
          message: result.message,
        });
    },
  });
  const runner = new HealthRunner({
    probe: options.probe ?? createProbe(options.dial),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    report: (request) => {
      const key = `${request.service}/${request.instance}`;
      sender.enqueue(key, discoveryRenew(request.service, request.instance, request.status));
      logger.info('discovery renewal requested', { ...request });
      void pump();
    },
    onCheck: (event) => {
      metrics?.checked(event.result.ok);
      if (event.changedFrom !== undefined) {
        metrics?.flapped();
        logger.info('discovery health changed', {
          service: event.service,
          instance: event.instance,
          from: event.changedFrom,
          to: event.status,
          ...(event.result.ok ? {} : { reason: event.result.reason }),
        });
      }
    },
  });

  const listing = serviceListing(() => view);
  const rpc = registerDiscoveryRpc(options.rpc, {
    query: options.query,
    index: (service) =>
      view.height === null ? null : { height: view.height, entries: view.index(service) },
    onCommit: (listener) => {
      events.on('commit', listener);
      return () => events.off('commit', listener);
    },
    services: listing,
  });
  metrics = createDiscoveryMetrics(options.registry, {
    catalog: () => view.counts(HEALTHY_STATUSES),
    hosted: () => runner.statuses().map((hosted) => hosted.status),
    watchers: () => rpc.watchers(),
  });

  const pump = async (): Promise<void> => {
    try {
      await sender.pump();
    } catch (error) {
      logger.warn('discovery transaction not submitted', { error: describe(error) });
    }
  };

  let self: SelfFacts | null = null;
  let stopped = false;
  const selfTried = new Map<string, number>();
  const ensureSelf = (height: number): void => {
    if (self === null) return;
    for (const wanted of selfRegistrations(self)) {
      const key = `${wanted.service}/${wanted.instance}`;
      const record = view.live(wanted.service).find((r) => r.instance === wanted.instance);
      const ours = record !== undefined && bytesEqual(record.owner, owner);
      if (ours && sameRegistration(record, wanted)) continue;
      const tried = selfTried.get(key);
      if (tried !== undefined && height - tried < SELF_RETRY_BLOCKS) continue;
      if (record !== undefined && !ours && isLive(record, height)) {
        if (tried === undefined) {
          logger.warn('discovery: another key holds this node instance', {
            service: wanted.service,
          });
        }
        selfTried.set(key, height);
        continue;
      }
      selfTried.set(key, height);
      let body: Uint8Array;
      try {
        body = discoveryRegister(wanted);
      } catch (error) {
        // A registration the module would refuse (a port the node cannot name): said once at
        // warn, then at debug on each retry; the node's other services are still registered.
        (tried === undefined ? logger.warn : logger.debug)(
          'discovery: own service not registered',
          {
            service: wanted.service,
            error: describe(error),
          },
        );
        continue;
      }
      sender.enqueue(key, body);
    }
  };

  /**
   * The node's work after a block: checks to run, renewals due, registrations, submissions.
   * Never throws: it runs from `setImmediate` (an exception there ends the process) and from
   * `start` (where it would stop the node from starting); service discovery is not a reason
   * for a validator to stop.
   */
  const afterCommit = (height: number, services: CommittedServices): void => {
    if (stopped) return;
    if (self !== null) {
      try {
        runner.sync(height, view.ownedBy(owner));
        ensureSelf(height);
      } catch (error) {
        logger.warn('discovery: work after the block failed', { height, error: describe(error) });
      }
    }
    void pump().finally(() => events.emit('commit', height, services));
  };

  return {
    dnsZone: options.genesis.dnsZone,
    dnsRecords: (apex) =>
      options.genesis.dnsZone === apex ? catalogRecords(view, options.genesis.dnsZone) : [],
    applyBlock: (height, changes) => {
      let services: CommittedServices;
      try {
        services = view.applyBlock(height, changes).services;
      } catch (error) {
        logger.warn('discovery catalog out of step with the state; loading it again', {
          height,
          error: describe(error),
        });
        view = CatalogView.load(reader, height);
        services = null;
      }
      setImmediate(() => afterCommit(height, services));
      return (services === null || services.length > 0) && options.genesis.dnsZone !== null;
    },
    start: (facts) => {
      self = facts;
      if (view.height !== null) afterCommit(view.height, null);
    },
    stop: () => {
      stopped = true;
      runner.stop();
    },
    events,
    catalog: () => view,
  };
}

/**
 * The `list` answer for the catalog `current()` holds, built once per view and height and then
 * shared: `list` is open to every role, and sorting and counting a large catalog on every call
 * would run on the event loop that also runs consensus. Only the first `MAX_LISTED_SERVICES`
 * names (the most `list` answers) are counted.
 */
export function serviceListing(
  current: () => CatalogView,
): () => ReturnType<DiscoveryRpcSource['services']> {
  let listed: {
    readonly view: CatalogView;
    readonly height: number | null;
    readonly answer: ReturnType<DiscoveryRpcSource['services']>;
  } | null = null;
  return () => {
    const view = current();
    if (listed === null || listed.view !== view || listed.height !== view.height) {
      listed = {
        view,
        height: view.height,
        answer: {
          height: view.height,
          services: view
            .services()
            .slice(0, MAX_LISTED_SERVICES)
            .map((service) => ({
              service,
              live: view.live(service).length,
              healthy: view.live(service, HEALTHY_STATUSES).length,
            })),
        },
      };
    }
    return listed.answer;
  };
}
