import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { QueryResponse } from '../../src/consensus/app.js';
import { registerNodeRpc, type ServiceRegistry } from '../../src/consensus/net/index.js';
import {
  HEALTH_STATUSES,
  decodeServiceIndex,
  discoveryInstanceQuery,
  discoveryServiceQuery,
  isLive,
} from '../../src/discovery/index.js';
import { discoveryService, type WatchEvent } from '../../src/faces/discovery-rpc.js';
import { RemoteCatalog } from '../../src/node/discovery-resolver.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import type { TestNode } from '../consensus/application/fixture.js';
import { makeSender } from '../consensus/application/fixture.js';
import { Cluster } from '../consensus/net/net-fixture.js';
import { openDiscoveryNode, registerTx } from '../discovery/discovery-fixture.js';
import { withDeadline } from '../helpers/wait.js';
import { CommittedBlocks } from './committed-roots-fixture.js';

/**
 * `RemoteCatalog` against a lying bootstrap node that answers at a recent height, ends the watch
 * stream, then answers from an older (genuinely committed) height: the older answer must not
 * bring back the addresses the instance has left.
 */

const SERVICE = 'hypermesh-node';
let cluster: Cluster;
let node: TestNode;
let blocks: CommittedBlocks;
/** Heights whose state roots the validators committed, by height. */
const roots = new Map<number, Uint8Array>();

function register(host: string) {
  return registerTx(owner, {
    service: SERVICE,
    instance: 'node-2',
    addresses: [host],
    ports: [{ protocol: 'stoq', port: 9301 }],
    identity: 'spiffe://consensus-net/validator/node-2',
    check: { kind: 'stoq-ping', port: 9301, interval: 10_000, timeout: 2_000, rise: 2, fall: 3 },
    ttl: 60,
  });
}
const owner = makeSender();

/** The node API as far as root checks use it: the committed blocks. */
function serveBlocks(server: ServiceRegistry): void {
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

/** A proven `resolve` answer read at `height` of the real state (every status). */
function resolveAt(height: number) {
  const proven = (answer: QueryResponse) => ({
    value: answer.value,
    proof: answer.proof ?? new Uint8Array(0),
  });
  const index = node.app.query(discoveryServiceQuery(SERVICE, height));
  assert.equal(index.height, height);
  const entries = decodeServiceIndex(index.value!).filter(
    (entry) => isLive(entry, height) && HEALTH_STATUSES.includes(entry.status),
  );
  return {
    height,
    stateRoot: index.stateRoot,
    index: proven(index),
    instances: entries.map((entry) =>
      proven(node.app.query(discoveryInstanceQuery(SERVICE, entry.instance, height))),
    ),
  };
}

before(async () => {
  cluster = await Cluster.create('memory', ['n1', { name: 'operator', role: 'client' }]);
  node = await openDiscoveryNode();
  blocks = await CommittedBlocks.create(2);
  // node-2 at 2001:db8::2 from block 1, moved to 2001:db8::3 at block 15.
  while (node.nextHeight() <= 20) {
    const height = node.nextHeight();
    const txs =
      height === 1 ? [register('2001:db8::2')] : height === 15 ? [register('2001:db8::3')] : [];
    const result = node.executeAndCommit(txs);
    assert.ok(
      result.txResults.every((r) => r.code === 0),
      JSON.stringify(result.txResults),
    );
    roots.set(height, result.stateRoot);
  }
  await blocks.commit(10, roots.get(10)!);
  await blocks.commit(20, roots.get(20)!);
});

after(async () => {
  await cluster.close();
  await node.close();
});

describe('RemoteCatalog against a node that rolls back', () => {
  it('refuses an older answer after the watch stream broke, keeping the moved address out', async () => {
    let servedHeight = 20;
    const served = await cluster.endpoint('n1');
    serveBlocks(served.endpoint);
    served.endpoint.register(discoveryService, {
      resolve: () => resolveAt(servedHeight),
      // One message at the height answered, then the stream ends (the node closes it).
      watch: async function* (): AsyncGenerator<WatchEvent> {
        await Promise.resolve();
        yield { height: servedHeight, changes: [] };
      },
      list: () => ({ height: servedHeight, services: [] }),
    });
    const operator = await cluster.endpoint('operator');
    const catalog = new RemoteCatalog({
      genesis: blocks.chain.genesis,
      bootstrap: [served.address],
      connect: (address, signal) => operator.endpoint.connect(address, { signal }),
    });
    try {
      const lost = withDeadline(
        new Promise<void>((resolve) => catalog.events.once('lost', () => resolve())),
        5_000,
        'the stream to end and the service to be dropped',
      );
      const recent = await catalog.lookup(SERVICE, 'node-2');
      assert.deepEqual(
        recent?.map((record) => record.addresses),
        [['2001:db8::3']],
      );
      await lost;

      servedHeight = 10;
      const stale: (number | null)[] = [];
      catalog.events.on('stale', (_service: string, height: number | null) => stale.push(height));
      const older = await catalog.lookup(SERVICE, 'node-2');
      assert.equal(older, null, 'the address node-2 left at block 15 is not returned');
      assert.equal(stale[0], 10);
    } finally {
      await catalog.close();
    }
  });
});
