import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ConsensusNetworkError,
  ConsensusNetworkErrorCode,
  type DiscoveredPeerConfig,
  type DiscoveredPeersChange,
} from '../../src/consensus/net/index.js';
import { toHex } from '../../src/crypto/bytes.js';
import type { ServiceInstance } from '../../src/discovery/index.js';
import {
  discoveredValidators,
  followDiscoveredValidators,
} from '../../src/node/discovered-validators.js';
import type { CatalogReader } from '../../src/node/discovery-resolver.js';
import type { Logger } from '../../src/node/log.js';

/**
 * Which catalog instances a node dials (src/node/discovered-validators.ts): `hypermesh-node`
 * instances owned by a validator key, other than the node itself and its configured peers, one
 * per key, at most the network's limit, none that a certificate contradicts; and the follower
 * that hands them to the network after each commit and logs what changed.
 */

function keyOf(seed: number): Uint8Array {
  return new Uint8Array(32).fill(seed);
}

function instance(
  name: string,
  owner: Uint8Array,
  options: { host?: string; port?: number | null; service?: string } = {},
): ServiceInstance {
  const port = options.port === undefined ? 9000 : options.port;
  return {
    service: options.service ?? 'hypermesh-node',
    instance: name,
    addresses: [options.host ?? '127.0.0.1'],
    ports: port === null ? [{ protocol: 'http', port: 80 }] : [{ protocol: 'stoq', port }],
    identity: `spiffe://test/validator/${name}`,
    metadata: {},
    check: { kind: 'tcp', port: port ?? 80, interval: 10_000, timeout: 2_000, rise: 2, fall: 3 },
    ttl: 60,
    status: 'passing',
    owner,
    registeredAt: 1,
    updatedAt: 1,
    expiresAt: 61,
  };
}

const validatorKeys = new Set([1, 2, 3, 4, 5].map((seed) => keyOf(seed)[0]));
const isValidator = (key: Uint8Array): boolean => validatorKeys.has(key[0]);

describe('discoveredValidators', () => {
  it('takes validators only, not this node or a configured peer, one name per key, up to max', () => {
    const found = discoveredValidators({
      instances: [
        instance('node-9', keyOf(9)), // a follower
        instance('node-1', keyOf(1)), // this node
        instance('node-2', keyOf(2)), // configured
        instance('node-5', keyOf(5), { host: '::1', port: 9005 }),
        instance('node-4', keyOf(4)),
        instance('node-4b', keyOf(4)), // the same key again
        instance('node-3', keyOf(3), { port: null }), // no STOQ port
        instance('node-6', keyOf(6), { service: 'hypermesh-dns' }),
      ],
      self: 'node-1',
      configured: new Set(['node-2']),
      isValidator,
      max: 16,
    });
    assert.deepEqual(
      found.peers.map((peer) => [peer.id, peer.address, peer.publicKey?.[0]]),
      [
        ['node-4', '127.0.0.1:9000', 4],
        ['node-5', '[::1]:9005', 5],
      ],
    );
    assert.deepEqual(found.dropped, []);
    const capped = discoveredValidators({
      instances: [instance('b', keyOf(2)), instance('a', keyOf(1)), instance('c', keyOf(3))],
      self: 'x',
      configured: new Set(),
      isValidator,
      max: 2,
    });
    assert.deepEqual(
      capped.peers.map((peer) => peer.id),
      ['a', 'b'],
    );
    assert.deepEqual(capped.dropped, ['c']);
  });

  it('leaves out instances whose name a certificate says is not their owner’s', () => {
    // Validator 2 registered the unowned name node-3 (validator 3 had not registered yet), and
    // validator 4 the name node-5; the certificates this node saw say otherwise.
    const instances = [
      instance('node-3', keyOf(2)),
      instance('node-4', keyOf(4)),
      instance('node-5', keyOf(4)),
    ];
    const input = {
      instances,
      self: 'node-1',
      configured: new Set<string>(),
      isValidator,
      max: 16,
    };
    assert.deepEqual(
      discoveredValidators(input).peers.map((peer) => peer.id),
      ['node-3', 'node-4'],
      'without certificates the catalog is taken at its word',
    );
    const found = discoveredValidators({
      ...input,
      certified: new Map([
        // The real node-3's key, a validator's, authenticated as node-3.
        [toHex(keyOf(3)), 'node-3'],
        // A follower's certificate for node-4 proves nothing about a validator's name.
        [toHex(keyOf(9)), 'node-4'],
        // Key 4's certificate names node-4, not node-5.
        [toHex(keyOf(4)), 'node-4'],
      ]),
    });
    assert.deepEqual(
      found.peers.map((peer) => [peer.id, peer.publicKey?.[0]]),
      [['node-4', 4]],
    );
    assert.deepEqual(found.contradicted, ['node-3', 'node-5']);
    assert.deepEqual(found.dropped, []);
  });
});

class RecordingNetwork {
  readonly maxDiscoveredPeers = 16;
  readonly certified = new Map<string, string>();
  certifiedNames(): ReadonlyMap<string, string> {
    return this.certified;
  }
  readonly calls: (readonly DiscoveredPeerConfig[])[] = [];
  current: string[] = [];
  refuse = false;
  setDiscoveredPeers(peers: readonly DiscoveredPeerConfig[]): DiscoveredPeersChange {
    if (this.refuse) {
      throw new ConsensusNetworkError(ConsensusNetworkErrorCode.INVALID_PEER, 'refused');
    }
    this.calls.push(peers);
    const next = peers.map((peer) => peer.id);
    const change = {
      added: next.filter((id) => !this.current.includes(id)),
      removed: this.current.filter((id) => !next.includes(id)),
    };
    this.current = next;
    return change;
  }
}

function recordingLogger(): Logger & { lines: [string, string, Record<string, unknown>][] } {
  const lines: [string, string, Record<string, unknown>][] = [];
  const at =
    (level: string) =>
    (msg: string, fields: Record<string, unknown> = {}): void =>
      void lines.push([level, msg, fields]);
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('followDiscoveredValidators', () => {
  it('hands the set to the network when it changes, and logs validators added and removed', () => {
    const records: ServiceInstance[] = [];
    const catalog: CatalogReader = {
      live: (service) => records.filter((r) => r.service === service),
    };
    const inSet = new Set<number>([3]);
    const network = new RecordingNetwork();
    const logger = recordingLogger();
    const follower = followDiscoveredValidators({
      self: 'node-1',
      configured: ['node-2'],
      catalog: () => catalog,
      isValidator: (key) => inSet.has(key[0] as number),
      network,
      logger,
    });
    // Nothing to dial: the network's (empty) set is left alone.
    follower.update();
    assert.equal(network.calls.length, 0);

    // A follower is registered: not dialled, nothing handed over again.
    records.push(instance('node-3', keyOf(3)), instance('node-4', keyOf(4)));
    inSet.delete(3);
    follower.update();
    assert.equal(network.calls.length, 0);

    // It joins the set.
    inSet.add(4);
    follower.update();
    assert.deepEqual(network.current, ['node-4']);
    assert.deepEqual(
      logger.lines
        .filter(([level]) => level === 'info')
        .map(([, msg, fields]) => [msg, fields.peer]),
      [['dialling a validator found in the catalog', 'node-4']],
    );
    follower.update();
    assert.equal(network.calls.length, 1, 'an unchanged set is not handed over again');

    // A refused set is logged and retried at the next update.
    network.refuse = true;
    inSet.delete(4);
    follower.update();
    assert.ok(logger.lines.some(([level]) => level === 'warn'));
    assert.deepEqual(network.current, ['node-4']);
    network.refuse = false;
    follower.update();
    assert.deepEqual(network.current, []);
    assert.deepEqual(logger.lines.at(-1)?.slice(0, 2), [
      'info',
      'no longer dialling a discovered validator',
    ]);
  });

  it('stops dialling a squatted name once a certificate contradicts it, and says so once', () => {
    // Validator 2 holds the catalog name node-3 before the real node-3 (key 3) registers.
    const network = new RecordingNetwork();
    const logger = recordingLogger();
    const follower = followDiscoveredValidators({
      self: 'node-1',
      configured: [],
      catalog: () => ({ live: () => [instance('node-3', keyOf(2))] }),
      isValidator,
      network,
      logger,
    });
    follower.update();
    assert.deepEqual(network.current, ['node-3']);
    // The real node-3 connected: the network saw its certificate.
    network.certified.set(toHex(keyOf(3)), 'node-3');
    follower.update();
    follower.update();
    assert.deepEqual(network.current, []);
    assert.deepEqual(
      logger.lines.filter(([level]) => level === 'warn').map(([, , fields]) => fields.instances),
      [['node-3']],
    );
  });

  it('drops every discovered validator when the catalog has no answer', () => {
    const network = new RecordingNetwork();
    let catalog: CatalogReader | null = { live: () => [instance('node-4', keyOf(4))] };
    const follower = followDiscoveredValidators({
      self: 'node-1',
      configured: [],
      catalog: () => catalog,
      isValidator: () => true,
      network,
      logger: recordingLogger(),
    });
    follower.update();
    assert.deepEqual(network.current, ['node-4']);
    catalog = null;
    follower.update();
    assert.deepEqual(network.current, []);
  });
});
