import { EventEmitter } from 'node:events';
import { Registry } from 'prom-client';
import type { CertificateRole } from '../../../src/crypto/x509.js';
import type { GossipMessage, SyncedBlock } from '../../../src/consensus/driver/ports.js';
import {
  createStoqConsensusNetwork,
  type BlockSource,
  type ConsensusNetworkLimits,
  type ConsensusNetworkLogger,
  type StoqConsensusNetwork,
  type UnlistedPeerPolicy,
} from '../../../src/consensus/net/index.js';
import { createAuthenticator } from '../../../src/stoq/auth/authenticator.js';
import { StoqEndpoint } from '../../../src/stoq/endpoint.js';
import { createMemoryNetwork, type MemoryNetwork } from '../../../src/stoq/memory.js';
import { createStoqMetrics } from '../../../src/stoq/metrics.js';
import { createQuicTransport } from '../../../src/stoq/quic/transport.js';
import { StaticResolver } from '../../../src/stoq/resolver.js';
import type { SocketAddress, Transport } from '../../../src/stoq/transport.js';
import { createTestPki, type TestIdentity, type TestPki } from '../../helpers/pki.js';
import { waitForCondition } from '../../helpers/wait.js';

/**
 * Consensus-network test nodes: a real STOQ endpoint (memory or QUIC transport, the real
 * authenticator with certificates from a test CA) with the network on top, plus what tests
 * watch — messages received, peer-connected events and log lines.
 */

export type TransportChoice = 'memory' | 'quic';

/**
 * What tests wait on announces itself here: every message a test network delivers to its
 * handler, every peer-connected call and every log line (the network logs each peer connecting
 * and disconnecting, each refused stream, each first malformed message of a stream and each
 * failed handler). `until` re-checks its condition on each, never on a timer.
 */
const activity = new EventEmitter();
activity.setMaxListeners(0);
const ACTIVITY = 'activity';

function noteActivity(): void {
  activity.emit(ACTIVITY);
}

export class RecordingLogger implements ConsensusNetworkLogger {
  readonly lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  info(message: string, fields: Record<string, unknown>): void {
    this.record('info', message, fields);
  }
  warn(message: string, fields: Record<string, unknown>): void {
    this.record('warn', message, fields);
  }
  error(message: string, fields: Record<string, unknown>): void {
    this.record('error', message, fields);
  }
  private record(level: string, message: string, fields: Record<string, unknown>): void {
    this.lines.push({ level, message, fields });
    noteActivity();
  }
}

/** Calls `handler`, then announces the call to `until` (even if the handler threw). */
function announced<A extends unknown[]>(handler: (...args: A) => void): (...args: A) => void {
  return (...args) => {
    try {
      handler(...args);
    } finally {
      noteActivity();
    }
  };
}

/**
 * `network` as the tests see it: the same network, except that the handlers given to it (by the
 * fixture or by a test that replaces them) announce each call to `until`.
 */
function observed(network: StoqConsensusNetwork): StoqConsensusNetwork {
  return {
    self: network.self,
    metrics: network.metrics,
    start: () => network.start(),
    close: () => network.close(),
    broadcast: (message) => network.broadcast(message),
    send: (peer, message) => network.send(peer, message),
    onMessage: (handler) => network.onMessage(announced(handler)),
    onPeerConnected: (handler) => network.onPeerConnected(announced(handler)),
    peers: () => network.peers(),
    fetchBlocks: (peer, from, to, signal) => network.fetchBlocks(peer, from, to, signal),
    peerKey: (peer) => network.peerKey(peer),
    canFetchFrom: (peer) => network.canFetchFrom(peer),
    setDiscoveredPeers: (peers) => network.setDiscoveredPeers(peers),
    discoveredPeers: () => network.discoveredPeers(),
    maxDiscoveredPeers: network.maxDiscoveredPeers,
    certifiedNames: () => network.certifiedNames(),
    acceptedPeers: () => network.acceptedPeers(),
    closeExcessFollowers: () => network.closeExcessFollowers(),
  };
}

export class Cluster {
  readonly identities = new Map<string, TestIdentity>();
  private readonly memory: MemoryNetwork = createMemoryNetwork();
  private readonly stoppers: (() => Promise<void>)[] = [];

  private constructor(
    readonly pki: TestPki,
    readonly transport: TransportChoice,
  ) {}

  static async create(
    transport: TransportChoice,
    names: readonly (string | { name: string; role: CertificateRole })[],
  ): Promise<Cluster> {
    const pki = await createTestPki({ cluster: 'consensus-net' });
    const cluster = new Cluster(pki, transport);
    const falcon = await pki.falconBackend.generateKeyPair();
    for (const entry of names) {
      const { name, role } =
        typeof entry === 'string' ? { name: entry, role: 'validator' as const } : entry;
      // One FALCON key for all: each identity still has its own certificate and transport key.
      cluster.identities.set(name, await pki.issue({ name, role, falcon }));
    }
    return cluster;
  }

  identity(name: string): TestIdentity {
    const identity = this.identities.get(name);
    if (!identity) throw new Error(`no identity ${name}`);
    return identity;
  }

  /** An endpoint for `name` listening on `address` (a fresh one by default). */
  async endpoint(
    name: string,
    address?: SocketAddress,
    resolver: Record<string, SocketAddress[]> = {},
    options: { maxMessageBytes?: number } = {},
  ): Promise<RunningEndpoint> {
    const identity = this.identity(name);
    const registry = new Registry();
    const metrics = createStoqMetrics(registry);
    const transport: Transport =
      this.transport === 'memory'
        ? this.memory.transport({ publicKey: identity.transportKey.publicKey })
        : createQuicTransport({ privateKey: identity.transportKey.privateKey });
    const endpoint = new StoqEndpoint({
      transport,
      authenticator: createAuthenticator({
        local: {
          chain: identity.chain,
          falcon: identity.falcon,
          falconBackend: this.pki.falconBackend,
        },
        trust: { roots: this.pki.roots, revocation: this.pki.revocation },
        mode: 'delegated',
        metrics,
      }),
      resolver: new StaticResolver(resolver),
      metrics,
      logger: { warn: () => undefined, error: () => undefined },
      pool: { backoff: { initialMs: 10, maxMs: 100 } },
      ...(options.maxMessageBytes === undefined
        ? {}
        : { limits: { maxMessageBytes: options.maxMessageBytes } }),
    });
    const host = this.transport === 'memory' ? `${name}.test` : '127.0.0.1';
    const bound = await endpoint.listen(address ?? { host, port: 0 });
    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      await endpoint.close();
      await transport.close();
    };
    this.stoppers.push(stop);
    return { name, endpoint, registry, address: bound, stop };
  }

  /** Starts a network on `running` with the given peers (name → address). */
  network(
    running: RunningEndpoint,
    peers:
      | readonly RunningEndpoint[]
      | readonly { name: string; address: SocketAddress; publicKey?: Uint8Array }[],
    options: {
      blocks?: readonly SyncedBlock[] | BlockSource;
      limits?: Partial<ConsensusNetworkLimits>;
      unlisted?: UnlistedPeerPolicy;
    } = {},
  ): TestNode {
    const logger = new RecordingLogger();
    const received: { peer: string; message: GossipMessage }[] = [];
    const connected: string[] = [];
    const sourceCalls: { from: number; to: number; limit: number }[] = [];
    const blocks = options.blocks ?? [];
    const blockSource: BlockSource = (from, to, limit) => {
      sourceCalls.push({ from, to, limit });
      if (typeof blocks === 'function') return blocks(from, to, limit);
      return blocks.filter((b) => b.height >= from && b.height <= to).slice(0, limit);
    };
    const network = observed(
      createStoqConsensusNetwork({
        endpoint: running.endpoint,
        self: running.name,
        peers: peers.map((peer) => ({
          id: peer.name,
          address: formatAddress(peer.address),
          ...('publicKey' in peer && peer.publicKey !== undefined
            ? { publicKey: peer.publicKey }
            : {}),
        })),
        blockSource,
        logger,
        registry: running.registry,
        reconnect: { initialMs: 10, maxMs: 100 },
        ...(options.limits ? { limits: options.limits } : {}),
        ...(options.unlisted ? { unlisted: options.unlisted } : {}),
      }),
    );
    network.onMessage((peer, message) => received.push({ peer, message }));
    network.onPeerConnected((peer) => connected.push(peer));
    network.start();
    this.stoppers.push(() => network.close());
    return { ...running, network, logger, received, connected, sourceCalls };
  }

  /** Stops everything started, newest first. */
  async close(): Promise<void> {
    for (const stop of this.stoppers.splice(0).reverse()) await stop();
  }
}

export interface RunningEndpoint {
  readonly name: string;
  readonly endpoint: StoqEndpoint;
  readonly registry: Registry;
  readonly address: SocketAddress;
  stop(): Promise<void>;
}

export interface TestNode extends RunningEndpoint {
  readonly network: StoqConsensusNetwork;
  readonly logger: RecordingLogger;
  readonly received: { peer: string; message: GossipMessage }[];
  readonly connected: string[];
  readonly sourceCalls: { from: number; to: number; limit: number }[];
}

export function formatAddress(address: SocketAddress): string {
  return address.host.includes(':')
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/**
 * Waits until `condition` holds: checks it now and again after each message, peer connection or
 * log line of a test network (see `activity`); fails with `what` after `timeoutMs`. An async
 * condition is checked once at a time; events during a check ask for one more check after it.
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  await waitForCondition(activity, ACTIVITY, condition, what, timeoutMs);
}

export function status(height: number): GossipMessage {
  return { kind: 'status', committedHeight: height - 1, height, round: 0 };
}

export function syncedBlocks(count: number): SyncedBlock[] {
  return Array.from({ length: count }, (_, index) => ({
    height: index + 1,
    block: Uint8Array.of(1, (index >> 8) & 0xff, index & 0xff),
    commit: Uint8Array.of(2, (index >> 8) & 0xff, index & 0xff),
  }));
}

export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values
    .filter((value) =>
      Object.entries(labels).every(([key, expected]) => String(value.labels[key]) === expected),
    )
    .reduce((sum, value) => sum + value.value, 0);
}
