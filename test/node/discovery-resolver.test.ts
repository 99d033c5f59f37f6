import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, describe, it } from 'node:test';
import {
  createStoqConsensusNetwork,
  registerNodeRpc,
  type ServiceRegistry,
} from '../../src/consensus/net/index.js';
import { toHex } from '../../src/crypto/bytes.js';
import type { ServiceInstance } from '../../src/discovery/index.js';
import { registerDiscoveryRpc } from '../../src/faces/discovery-rpc.js';
import {
  DiscoveryResolver,
  RemoteCatalog,
  catalogNameOf,
  certifiedKeyOf,
  viewCatalogSource,
  type CatalogReader,
} from '../../src/node/discovery-resolver.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import type { SocketAddress } from '../../src/stoq/transport.js';
import { makeSender } from '../consensus/application/fixture.js';
import { Cluster, formatAddress } from '../consensus/net/net-fixture.js';
import { indexFromQuery, openDiscoveryNode, registerTx } from '../discovery/discovery-fixture.js';
import { isStoqError } from '../helpers/stoq-error.js';
import { CommittedRootError, CommittedRootErrorCode } from '../../src/node/verified-root.js';
import { CommittedBlocks } from './committed-roots-fixture.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';

/**
 * The discovery-backed STOQ resolver (src/node/discovery-resolver.ts): precedence of the catalog
 * over configuration, a consensus peer whose registered address changed dialled at the new
 * address, and the remote catalog (proven resolve, then followed with watch) operator tools use.
 */

function nodeRecord(name: string, addresses: readonly SocketAddress[]): ServiceInstance {
  const port = addresses[0]!.port;
  return {
    service: 'hypermesh-node',
    instance: name,
    addresses: addresses.map((address) => address.host),
    ports: [{ protocol: 'stoq', port }],
    identity: `spiffe://consensus-net/validator/${name}`,
    metadata: {},
    check: { kind: 'stoq-ping', port, interval: 10_000, timeout: 2_000, rise: 2, fall: 3 },
    ttl: 60,
    status: 'passing',
    owner: new Uint8Array(32),
    registeredAt: 1,
    updatedAt: 1,
    expiresAt: 61,
  };
}

/** A committed catalog the test edits by hand. */
class FakeCatalog implements CatalogReader {
  records: ServiceInstance[] = [];
  live(service: string): readonly ServiceInstance[] {
    return this.records.filter((record) => record.service === service);
  }
}

const stale: SocketAddress = { host: '192.0.2.1', port: 4 };

describe('DiscoveryResolver', () => {
  it('names: node names and service/instance', () => {
    assert.deepEqual(catalogNameOf('node-2'), { service: 'hypermesh-node', instance: 'node-2' });
    assert.deepEqual(catalogNameOf('trustchain-ca/ca-1'), {
      service: 'trustchain-ca',
      instance: 'ca-1',
    });
    assert.equal(catalogNameOf('Node_2'), null);
  });

  it('uses the catalog first, configuration after it, and configuration alone until the catalog answers', async () => {
    const catalog = new FakeCatalog();
    let view: CatalogReader | null = null;
    const resolver = new DiscoveryResolver({
      bootstrap: { 'node-2': [stale] },
      catalog: viewCatalogSource(() => view),
    });
    assert.deepEqual(await resolver.resolve('node-2'), [stale]);
    view = catalog;
    assert.deepEqual(await resolver.resolve('node-2'), [stale]);
    const moved = [
      { host: '2001:db8::2', port: 9301 },
      { host: '192.0.2.2', port: 9301 },
    ];
    catalog.records = [nodeRecord('node-2', moved)];
    assert.deepEqual(await resolver.resolve('node-2'), [...moved, stale]);
    // Known to the catalog only (a node added later).
    catalog.records.push(nodeRecord('node-9', [{ host: '192.0.2.9', port: 9309 }]));
    assert.deepEqual(await resolver.resolve('node-9'), [{ host: '192.0.2.9', port: 9309 }]);
    // The configured address is not repeated when the catalog gives it too.
    catalog.records = [nodeRecord('node-2', [stale])];
    assert.deepEqual(await resolver.resolve('node-2'), [stale]);
    await assert.rejects(resolver.resolve('node-7'), isStoqError(StoqErrorCode.NOT_FOUND));
  });

  it('ignores a catalog entry of a configured name that another key than the configured one owns', async () => {
    const configuredKey = new Uint8Array(32).fill(2);
    const catalog = new FakeCatalog();
    const resolver = new DiscoveryResolver({
      bootstrap: { 'node-2': [stale] },
      catalog: viewCatalogSource(() => catalog),
      keys: new Map([['node-2', configuredKey]]),
    });
    const elsewhere = { host: '192.0.2.7', port: 9307 };
    // Another validator took the name in the catalog: its address would be dialled first.
    catalog.records = [{ ...nodeRecord('node-2', [elsewhere]), owner: new Uint8Array(32).fill(7) }];
    assert.deepEqual(await resolver.resolve('node-2'), [stale]);
    // The configured key's own entry is used as usual, and names without a key are unaffected.
    const moved = { host: '192.0.2.2', port: 9302 };
    catalog.records = [
      { ...nodeRecord('node-2', [moved]), owner: configuredKey },
      nodeRecord('node-9', [elsewhere]),
    ];
    assert.deepEqual(await resolver.resolve('node-2'), [moved, stale]);
    assert.deepEqual(await resolver.resolve('node-9'), [elsewhere]);
  });

  it('pins a configured name that is no genesis validator to the key its certificate proved', async () => {
    // node-5 was added with `cluster add-node` before this node: listed, but not in the genesis.
    const provenKey = new Uint8Array(32).fill(5);
    const certified = new Map([
      [toHex(provenKey), 'node-5'],
      [toHex(new Uint8Array(32).fill(9)), 'node-9'],
    ]);
    const catalog = new FakeCatalog();
    const resolver = new DiscoveryResolver({
      bootstrap: { 'node-5': [stale] },
      catalog: viewCatalogSource(() => catalog),
      certifiedKey: (name) => certifiedKeyOf(certified, name),
    });
    const elsewhere = { host: '192.0.2.7', port: 9307 };
    // Another validator key took node-5 in the catalog: its address would be dialled first.
    const squatted = { ...nodeRecord('node-5', [elsewhere]), owner: new Uint8Array(32).fill(7) };
    catalog.records = [squatted];
    assert.deepEqual(await resolver.resolve('node-5'), [stale]);
    const moved = { host: '192.0.2.5', port: 9305 };
    catalog.records = [{ ...nodeRecord('node-5', [moved]), owner: provenKey }];
    assert.deepEqual(await resolver.resolve('node-5'), [moved, stale]);
    // Before any certificate proved a key for the name, the catalog comes first as before.
    certified.delete(toHex(provenKey));
    catalog.records = [squatted];
    assert.deepEqual(await resolver.resolve('node-5'), [elsewhere, stale]);
  });

  it('certifiedKeyOf: the key a name last authenticated with', () => {
    const [older, newer] = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];
    const certified = new Map([
      [toHex(older), 'node-5'],
      [toHex(newer), 'node-5'],
    ]);
    assert.deepEqual(certifiedKeyOf(certified, 'node-5'), newer);
    assert.equal(certifiedKeyOf(certified, 'node-6'), undefined);
  });
});

describe('consensus peers through the catalog', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it('dials a peer where the catalog says it is, and at its new address after it moved', async () => {
    const cluster = await Cluster.create('quic', ['a', 'b']);
    cleanup.push(() => cluster.close());
    const catalog = new FakeCatalog();
    const ups = new EventEmitter();
    let aUps = 0;

    const a = await cluster.endpoint('a');
    // `a` dials `b` (the lower name opens the stream). Its configuration has a stale address
    // for `b`; only the catalog knows where `b` is.
    const network = createStoqConsensusNetwork({
      endpoint: a.endpoint,
      self: 'a',
      peers: [{ id: 'b', address: formatAddress(stale) }],
      blockSource: () => [],
      reconnect: { initialMs: 10, maxMs: 100 },
      connectTimeoutMs: 2_000,
      resolver: new DiscoveryResolver({
        bootstrap: { b: [stale] },
        catalog: viewCatalogSource(() => catalog),
      }),
    });
    network.onPeerConnected((peer) => {
      if (peer === 'b') aUps += 1;
      ups.emit('up');
    });
    network.start();
    cleanup.push(() => network.close());

    /** `b` at a fresh address, unable to dial `a` (nothing listens where it thinks `a` is). */
    const startB = async (): Promise<{ address: SocketAddress; stop(): Promise<void> }> => {
      const b = await cluster.endpoint('b');
      const bNetwork = createStoqConsensusNetwork({
        endpoint: b.endpoint,
        self: 'b',
        peers: [{ id: 'a', address: formatAddress(stale) }],
        blockSource: () => [],
        reconnect: { initialMs: 10, maxMs: 100 },
      });
      bNetwork.start();
      return {
        address: b.address,
        stop: async () => {
          await bNetwork.close();
          await b.stop();
        },
      };
    };

    const first = await startB();
    catalog.records = [nodeRecord('b', [first.address])];
    await waitForCondition(ups, 'up', () => aUps >= 1, 'a connects to b', 15_000);
    assert.deepEqual(network.peers(), ['b']);

    // `b` restarts at another port and registers it; `a` redials it there.
    await first.stop();
    const second = await startB();
    cleanup.push(() => second.stop());
    assert.notEqual(second.address.port, first.address.port);
    catalog.records = [nodeRecord('b', [second.address])];
    await waitForCondition(
      ups,
      'up',
      () => aUps >= 2,
      'a reconnects to b at its new address',
      15_000,
    );
    assert.deepEqual(network.peers(), ['b']);
  });
});

/**
 * The node API of a bootstrap node as far as root checks use it: committed blocks (headers over
 * the discovery node's state roots, committed by `blocks`' validators) and validator updates.
 */
function serveBlocks(server: ServiceRegistry, blocks: CommittedBlocks): void {
  const refuse = (): never => {
    throw new StoqError(StoqErrorCode.UNAVAILABLE, 'this test node serves committed blocks only');
  };
  registerNodeRpc(server, {
    submitTx: refuse,
    submitTxs: refuse,
    txStatus: refuse,
    pendingSequence: refuse,
    query: refuse,
    status: refuse,
    receipt: refuse,
    accountHistory: refuse,
    blockWitness: refuse,
    getBlock: (height) => blocks.getBlock(height).catch(() => null),
    validatorUpdates: (from, to) => blocks.validatorUpdates(from, to),
  });
}

describe('RemoteCatalog', () => {
  it('resolves with proofs through a bootstrap node and follows changes with watch', async () => {
    const cluster = await Cluster.create('memory', ['n1', { name: 'operator', role: 'client' }]);
    const node = await openDiscoveryNode();
    const blocks = await CommittedBlocks.create(2);
    const commits = new EventEmitter();
    const served = await cluster.endpoint('n1');
    serveBlocks(served.endpoint, blocks);
    registerDiscoveryRpc(served.endpoint, {
      query: (request) => node.app.query(request),
      index: indexFromQuery((request) => node.app.query(request)),
      onCommit: (listener) => {
        commits.on('commit', listener);
        return () => commits.off('commit', listener);
      },
      services: () => ({ height: null, services: [] }),
    });
    const operator = await cluster.endpoint('operator');
    const catalog = new RemoteCatalog({
      genesis: blocks.chain.genesis,
      bootstrap: [{ host: 'nowhere.test', port: 1 }, served.address],
      connect: (address, signal) => operator.endpoint.connect(address, { signal }),
    });
    const resolver = new DiscoveryResolver({ bootstrap: { 'node-2': [stale] }, catalog });
    try {
      const owner = makeSender();
      /** Executes `txs` as the next block, which the validators commit, then announces it. */
      const commitBlock = async (txs: Uint8Array[]): Promise<void> => {
        const height = node.nextHeight();
        const result = node.executeAndCommit(txs);
        assert.ok(
          result.txResults.every((r) => r.code === 0),
          JSON.stringify(result.txResults),
        );
        await blocks.commit(height, result.stateRoot);
        commits.emit('commit', height, null);
      };
      const commit = (tx: Uint8Array): Promise<void> => commitBlock([tx]);
      const register = (host: string, port: number): Uint8Array =>
        registerTx(owner, {
          service: 'hypermesh-node',
          instance: 'node-2',
          addresses: [host],
          ports: [{ protocol: 'stoq', port }],
          identity: 'spiffe://consensus-net/validator/node-2',
          check: { kind: 'stoq-ping', port, interval: 10_000, timeout: 2_000, rise: 2, fall: 3 },
        });

      const nextUpdate = (): Promise<void> =>
        withDeadline(
          new Promise<void>((resolve) => catalog.events.once('update', () => resolve())),
          5_000,
          'the watch stream brings the new registration',
        );

      // Nothing registered yet: the catalog's (proven, empty) answer leaves the configuration.
      await commitBlock([]);
      let updated = nextUpdate();
      assert.deepEqual(await resolver.resolve('node-2'), [stale]);
      await updated;
      updated = nextUpdate();
      await commit(register('2001:db8::2', 9301));
      await updated;
      assert.deepEqual(await resolver.resolve('node-2'), [
        { host: '2001:db8::2', port: 9301 },
        stale,
      ]);
      updated = nextUpdate();
      await commit(register('2001:db8::3', 9302));
      await updated;
      assert.deepEqual(await resolver.resolve('node-2'), [
        { host: '2001:db8::3', port: 9302 },
        stale,
      ]);
    } finally {
      await resolver.close();
      await cluster.close();
      await node.close();
    }
  });
  it('refuses an answer whose state root the validators did not commit, keeping the configuration', async () => {
    const cluster = await Cluster.create('memory', ['n1', { name: 'operator', role: 'client' }]);
    const node = await openDiscoveryNode();
    const blocks = await CommittedBlocks.create(2);
    const served = await cluster.endpoint('n1');
    serveBlocks(served.endpoint, blocks);
    registerDiscoveryRpc(served.endpoint, {
      query: (request) => node.app.query(request),
      index: indexFromQuery((request) => node.app.query(request)),
      onCommit: () => () => undefined,
      services: () => ({ height: null, services: [] }),
    });
    const operator = await cluster.endpoint('operator');
    const catalog = new RemoteCatalog({
      genesis: blocks.chain.genesis,
      bootstrap: [served.address],
      connect: (address, signal) => operator.endpoint.connect(address, { signal }),
    });
    const resolver = new DiscoveryResolver({ bootstrap: { 'node-2': [stale] }, catalog });
    try {
      // The node's state registers node-2 elsewhere, but only one of the two validators
      // (10 of 20 power) signed the block carrying that state's root.
      const height = node.nextHeight();
      const result = node.executeAndCommit([
        registerTx(makeSender(), {
          service: 'hypermesh-node',
          instance: 'node-2',
          addresses: ['2001:db8::66'],
          ports: [{ protocol: 'stoq', port: 9366 }],
          identity: 'spiffe://consensus-net/validator/node-2',
          check: {
            kind: 'stoq-ping',
            port: 9366,
            interval: 10_000,
            timeout: 2_000,
            rise: 2,
            fall: 3,
          },
        }),
      ]);
      await blocks.commit(height, result.stateRoot, {
        signers: blocks.chain.validators.slice(0, 1),
      });
      const refusal = withDeadline(
        new Promise<unknown>((resolve) =>
          catalog.events.once('refused', (_service: string, error: unknown) => resolve(error)),
        ),
        5_000,
        'the catalog refuses the answer',
      );
      assert.deepEqual(await resolver.resolve('node-2'), [stale]);
      const error = await refusal;
      assert.ok(error instanceof CommittedRootError);
      assert.equal(error.code, CommittedRootErrorCode.INVALID_COMMIT);
      assert.match(
        error.message,
        new RegExp(`^state root at height ${height} is not committed by the validator quorum: `),
      );
    } finally {
      await resolver.close();
      await cluster.close();
      await node.close();
    }
  });

  it('keeps the newer answer when a bootstrap node answers from an older height', async () => {
    const blocks = await CommittedBlocks.create(2);
    const catalog = new RemoteCatalog({
      genesis: blocks.chain.genesis,
      bootstrap: [{ host: 'nowhere.test', port: 1 }],
      connect: () => Promise.reject(new Error('not used')),
    });
    const newer = [nodeRecord('node-2', [{ host: '2001:db8::3', port: 9302 }])];
    const older = [nodeRecord('node-2', [{ host: '2001:db8::2', port: 9301 }])];
    const entry = { records: newer, height: 10, ready: Promise.resolve() };
    // What `refresh` uses of a connection: a proven resolve (its root check passes here).
    const connected = {
      rpc: {
        resolve: () =>
          Promise.resolve({ height: 7, stateRoot: new Uint8Array(32), instances: older }),
      },
      roots: { check: () => Promise.resolve() },
    };
    const refused = new Promise<number>((resolve) =>
      catalog.events.once('stale', (_service: string, height: number) => resolve(height)),
    );
    const refresh = (
      catalog as unknown as {
        refresh(c: unknown, service: string, e: typeof entry): Promise<void>;
      }
    ).refresh.bind(catalog);
    await refresh(connected, 'hypermesh-node', entry);
    assert.equal(entry.height, 10);
    assert.deepEqual(entry.records, newer);
    assert.equal(await withDeadline(refused, 5_000, 'the stale event'), 7);
    await catalog.close();
  });
});
