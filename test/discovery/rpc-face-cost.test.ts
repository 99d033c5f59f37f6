import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import type { QueryRequest, QueryResponse } from '../../src/consensus/app.js';
import type { ServiceRegistry } from '../../src/consensus/net/index.js';
import {
  CatalogView,
  DiscoveryStateError,
  DiscoveryStateErrorCode,
  HEALTH_STATUSES,
} from '../../src/discovery/index.js';
import {
  createDiscoveryRpcClient,
  discoveryService,
  registerDiscoveryRpc,
  type DiscoveryRpcOptions,
  type DiscoveryRpcService,
  type DiscoveryRpcSource,
  type WatchEvent,
} from '../../src/faces/discovery-rpc.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import type { ServiceHandlers } from '../../src/stoq/index.js';
import { makeSender, type Sender, type TestNode } from '../consensus/application/fixture.js';
import { Cluster, type RunningEndpoint } from '../consensus/net/net-fixture.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';
import { openDiscoveryNode, registerTx } from './discovery-fixture.js';

/**
 * What `hypermesh.discovery.v1` costs the node that answers it: `resolve` answers built once per
 * height, a resolve budget per identity, `watch` streams that read nothing for blocks that do not
 * touch their service; and a client that calls a node leaving an instance out a proof failure.
 */

let cluster: Cluster;
let node: TestNode;
let alice: Sender;
/** The node's committed catalog, followed block by block as the discovery node does. */
const view = CatalogView.load({ get: () => null }, null);
const commits = new EventEmitter();
/** Queries the faces made of the application (each one builds a state proof). */
let proofReads = 0;
/** Proof-less index reads the faces made of the view. */
let indexReads = 0;
let clock = 0;
const addresses: Record<string, RunningEndpoint['address'][]> = {};

function source(): DiscoveryRpcSource {
  return {
    query: (request: QueryRequest): QueryResponse => {
      proofReads++;
      return node.app.query(request);
    },
    index: (service) => {
      indexReads++;
      return view.height === null ? null : { height: view.height, entries: view.index(service) };
    },
    onCommit: (listener) => {
      commits.on('commit', listener);
      return () => commits.off('commit', listener);
    },
    services: () => ({ height: null, services: [] }),
  };
}

/** Commits a block, then tells the faces which services it changed (the node's commit hook). */
function commit(transactions: readonly Uint8Array[]): number {
  const height = node.nextHeight();
  const result = node.executeAndCommit(transactions);
  assert.ok(
    result.txResults.every((r) => r.code === 0),
    JSON.stringify(result.txResults),
  );
  commits.emit('commit', height, view.applyBlock(height, result.changes).services);
  return height;
}

async function serve(name: string, options: DiscoveryRpcOptions, registry?: ServiceRegistry) {
  const served = await cluster.endpoint(name);
  registerDiscoveryRpc(registry ?? served.endpoint, source(), options);
  addresses[name] = [served.address];
  return served;
}

async function clientOf(caller: string, peer: string) {
  const endpoint = await cluster.endpoint(caller, undefined, addresses);
  return createDiscoveryRpcClient({ endpoint: endpoint.endpoint, peer });
}

before(async () => {
  cluster = await Cluster.create('memory', [
    'n1',
    'n2',
    'n3',
    { name: 'carol', role: 'client' },
    { name: 'dave', role: 'client' },
  ]);
  node = await openDiscoveryNode();
  alice = makeSender();
  await serve('n1', { resolveBurstPerPeer: 10_000 });
  // n2 leaves the first matching instance out of every resolve answer.
  const liar = await cluster.endpoint('n2');
  const dropping: ServiceRegistry = {
    register: (_service, handlers) => {
      const real = handlers as unknown as ServiceHandlers<DiscoveryRpcService>;
      liar.endpoint.register(discoveryService, {
        ...real,
        resolve: async (request, ctx) => {
          const answer = await real.resolve(request, ctx);
          return { ...answer, instances: answer.instances.slice(1) };
        },
      });
    },
  };
  registerDiscoveryRpc(dropping, source());
  addresses.n2 = [liar.address];
  await serve('n3', { resolveRatePerPeer: 1, resolveBurstPerPeer: 3, now: () => clock });
  commit([
    registerTx(alice, { service: 'api', instance: 'a1' }),
    registerTx(alice, { service: 'api', instance: 'a2', status: 'warning' }),
    registerTx(alice, { service: 'api', instance: 'a3', status: 'critical' }),
  ]);
});

after(async () => {
  await cluster.close();
  await node.close();
});

describe('the cost of hypermesh.discovery.v1', () => {
  it('builds a resolve answer once per height, however many callers ask', async () => {
    const client = await clientOf('carol', 'n1');
    proofReads = 0;
    for (let batch = 0; batch < 20; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => client.resolve('api', HEALTH_STATUSES)),
      );
      for (const answer of answers) {
        assert.deepEqual(
          answer.instances.map((i) => i.instance),
          ['a1', 'a2', 'a3'],
        );
      }
    }
    // The index and three instances, once for 1,000 calls.
    assert.equal(proofReads, 4);
    // The statuses are a set: another order is the same answer.
    await client.resolve('api', ['critical', 'warning', 'passing']);
    assert.equal(proofReads, 4);
    // A new height, a new answer.
    const height = commit([]);
    const fresh = await client.resolve('api', HEALTH_STATUSES);
    assert.equal(fresh.height, height);
    assert.equal(proofReads, 8);
  });

  it('refuses an identity over its resolve budget while serving another', async () => {
    const carol = await clientOf('carol', 'n3');
    const dave = await clientOf('dave', 'n3');
    for (let i = 0; i < 3; i++) await carol.resolve('api');
    await assert.rejects(
      carol.resolve('api'),
      (error: unknown) =>
        error instanceof StoqError &&
        error.code === StoqErrorCode.RESOURCE_EXHAUSTED &&
        error.detail.reason === 'resolve-rate',
    );
    assert.deepEqual(
      (await dave.resolve('api')).instances.map((i) => i.instance),
      ['a1', 'a2'],
    );
    // One second later carol has one call again, and only one.
    clock += 1_000;
    await carol.resolve('api');
    await assert.rejects(carol.resolve('api'), (error: unknown) => {
      return error instanceof StoqError && error.code === StoqErrorCode.RESOURCE_EXHAUSTED;
    });
  });

  it('calls a node that leaves a matching instance out a proof failure', async () => {
    const client = await clientOf('carol', 'n2');
    await assert.rejects(
      client.resolve('api'),
      (error: unknown) =>
        error instanceof DiscoveryStateError &&
        error.code === DiscoveryStateErrorCode.PROOF_INVALID &&
        /answered 1 instances for 2 proven index entries/.test(error.message),
    );
  });

  it('reads nothing for a watch stream on blocks that do not touch its service', async () => {
    const client = await clientOf('dave', 'n1');
    commit([registerTx(alice, { service: 'web', instance: 'w1', ttl: 300 })]);
    const events: WatchEvent[] = [];
    const arrived = new EventEmitter();
    const leave = new AbortController();
    const stream = (async () => {
      for await (const event of client.watch('web', { signal: leave.signal })) {
        events.push(event);
        arrived.emit('event');
      }
    })().catch((error: unknown) => {
      if (!leave.signal.aborted) throw error;
    });
    const next = (count: number, what: string) =>
      waitForCondition(arrived, 'event', () => events.length >= count, what, 10_000);
    try {
      await next(1, 'the initial live set');
      proofReads = 0;
      indexReads = 0;
      for (let i = 0; i < 20; i++) {
        commit(i % 2 === 0 ? [] : [registerTx(alice, { service: 'other', instance: `o${i}` })]);
      }
      const added = commit([registerTx(alice, { service: 'web', instance: 'w2' })]);
      await next(2, 'w2 added');
      assert.equal(events[1]!.height, added);
      assert.deepEqual(
        events[1]!.changes.map((change) => [change.type, change.instance]),
        [['added', 'w2']],
      );
      assert.equal(proofReads, 0, 'no state proof built for a stream that sends none');
      assert.equal(indexReads, 1, 'one read, for the one block that touched web');
    } finally {
      leave.abort();
    }
    await withDeadline(stream, 10_000, 'the client loop to end');
  });
});
