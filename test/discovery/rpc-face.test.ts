import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import type { QueryRequest, QueryResponse } from '../../src/consensus/app.js';
import {
  DiscoveryStateError,
  DiscoveryStateErrorCode,
  HEALTHY_STATUSES,
  HEALTH_STATUSES,
  SERVICE_QUERY,
  discoveryDeregister,
  discoveryRenew,
} from '../../src/discovery/index.js';
import {
  createDiscoveryRpcClient,
  registerDiscoveryRpc,
  type DiscoveryRpcClient,
  type DiscoveryRpcSource,
  type WatchEvent,
} from '../../src/faces/discovery-rpc.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import { makeSender, type Sender, type TestNode } from '../consensus/application/fixture.js';
import { Cluster } from '../consensus/net/net-fixture.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';
import { discoveryTx, indexFromQuery, openDiscoveryNode, registerTx } from './discovery-fixture.js';

/**
 * `hypermesh.discovery.v1` over an in-memory STOQ network, answering from a real application:
 * proven resolution (and a tampered answer refused by the client), watch streams following
 * committed blocks (added, status-changed, expired, deregistered), the watcher limit, and a
 * stream that ends on the server when its client leaves.
 */

let cluster: Cluster;
let node: TestNode;
let alice: Sender;
const commits = new EventEmitter();
let client: DiscoveryRpcClient;
let tampered: DiscoveryRpcClient;
let limited: DiscoveryRpcClient;
let onePerPeer: DiscoveryRpcClient;
let served: { watchers(): number };

function source(query: (request: QueryRequest) => QueryResponse): DiscoveryRpcSource {
  return {
    query,
    index: indexFromQuery((request) => node.app.query(request)),
    onCommit: (listener) => {
      commits.on('commit', listener);
      return () => commits.off('commit', listener);
    },
    services: () => ({ height: null, services: [] }),
  };
}

/** Executes and commits a block, then tells watchers (what the node's commit hook does). */
function commit(transactions: readonly Uint8Array[]): number {
  const height = node.nextHeight();
  const result = node.executeAndCommit(transactions);
  assert.ok(
    result.txResults.every((r) => r.code === 0),
    JSON.stringify(result.txResults),
  );
  // Which services changed is not said: every stream reads again.
  commits.emit('commit', height, null);
  return height;
}

before(async () => {
  cluster = await Cluster.create('memory', [
    'n1',
    'n2',
    'n3',
    'n4',
    { name: 'carol', role: 'client' },
  ]);
  node = await openDiscoveryNode();
  alice = makeSender();
  const honest = await cluster.endpoint('n1');
  served = registerDiscoveryRpc(
    honest.endpoint,
    source((request) => node.app.query(request)),
  );
  // n2 flips a byte of every service index it answers with.
  const liar = await cluster.endpoint('n2');
  registerDiscoveryRpc(
    liar.endpoint,
    source((request) => {
      const answer = node.app.query(request);
      if (!request.path.endsWith(`/${SERVICE_QUERY}`) || answer.value === null) return answer;
      const value = answer.value.slice();
      value[value.length - 1] = value.at(-1)! ^ 1;
      return { ...answer, value };
    }),
  );
  const small = await cluster.endpoint('n3');
  registerDiscoveryRpc(
    small.endpoint,
    source((request) => node.app.query(request)),
    { maxWatchers: 1 },
  );
  const perPeer = await cluster.endpoint('n4');
  registerDiscoveryRpc(
    perPeer.endpoint,
    source((request) => node.app.query(request)),
    { maxWatchers: 10, maxWatchersPerPeer: 1 },
  );
  const caller = await cluster.endpoint('carol', undefined, {
    n1: [honest.address],
    n2: [liar.address],
    n3: [small.address],
    n4: [perPeer.address],
  });
  onePerPeer = createDiscoveryRpcClient({ endpoint: caller.endpoint, peer: 'n4' });
  client = createDiscoveryRpcClient({ endpoint: caller.endpoint, peer: 'n1' });
  tampered = createDiscoveryRpcClient({ endpoint: caller.endpoint, peer: 'n2' });
  limited = createDiscoveryRpcClient({ endpoint: caller.endpoint, peer: 'n3' });
});

after(async () => {
  await cluster.close();
  await node.close();
});

describe('hypermesh.discovery.v1', () => {
  it('resolves healthy instances with every proof checked, and refuses a tampered answer', async () => {
    commit([
      registerTx(alice, { service: 'api', instance: 'a1' }),
      registerTx(alice, { service: 'api', instance: 'a2', status: 'critical' }),
    ]);
    const healthy = await client.resolve('api');
    assert.deepEqual(
      healthy.instances.map((i) => [i.instance, i.status]),
      [['a1', 'passing']],
    );
    assert.deepEqual(healthy.instances[0]!.addresses, ['192.0.2.10', '2001:db8::10']);
    const all = await client.resolve('api', HEALTH_STATUSES);
    assert.deepEqual(
      all.instances.map((i) => i.instance),
      ['a1', 'a2'],
    );
    assert.deepEqual((await client.resolve('nothing-here')).instances, []);

    await assert.rejects(
      tampered.resolve('api', HEALTHY_STATUSES),
      (error: unknown) =>
        error instanceof DiscoveryStateError &&
        error.code === DiscoveryStateErrorCode.PROOF_INVALID,
    );
    await assert.rejects(
      (async () => {
        for await (const _event of client.watch('Not_A_Service')) break;
      })(),
      (error: unknown) =>
        error instanceof StoqError && error.code === StoqErrorCode.INVALID_ARGUMENT,
    );
    await assert.rejects(
      client.resolve('Not_A_Service'),
      (error: unknown) =>
        error instanceof StoqError && error.code === StoqErrorCode.INVALID_ARGUMENT,
    );
  });

  it('streams a service’s changes per committed block and ends when the client leaves', async () => {
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
    await next(1, 'the initial live set');
    assert.deepEqual(events[0]!.changes, []);

    const registered = commit([registerTx(alice, { service: 'web', instance: 'w1', ttl: 8 })]);
    await next(2, 'added');
    assert.deepEqual(events[1], {
      height: registered,
      changes: [{ type: 'added', instance: 'w1', status: 'passing', expiresAt: registered + 8 }],
    });

    const renewed = commit([discoveryTx(alice, discoveryRenew('web', 'w1', 'critical'))]);
    await next(3, 'status-changed');
    assert.deepEqual(events[2]!.changes, [
      { type: 'status-changed', instance: 'w1', from: 'passing', to: 'critical' },
    ]);
    // Blocks that change nothing for the service send nothing; expiry is a change.
    commit([registerTx(alice, { service: 'other', instance: 'o1' })]);
    while (node.nextHeight() < renewed + 8) commit([]);
    assert.equal(events.length, 3);
    commit([]);
    await next(4, 'removed (expired)');
    assert.deepEqual(events[3], {
      height: renewed + 8,
      changes: [{ type: 'removed', instance: 'w1', reason: 'expired' }],
    });

    // Each message is the difference from the last one sent: a reader that is behind gets the
    // blocks in between folded into one message, so the stream waits for w2's arrival first.
    commit([registerTx(alice, { service: 'web', instance: 'w2' })]);
    await next(5, 'added');
    commit([discoveryTx(alice, discoveryDeregister('web', 'w2'))]);
    await next(6, 'removed (deregistered)');
    assert.deepEqual(events[5]!.changes, [
      { type: 'removed', instance: 'w2', reason: 'deregistered' },
    ]);

    assert.equal(served.watchers(), 1);
    const ended = waitForCondition(
      commits,
      'removeListener',
      () => served.watchers() === 0,
      'the server to end the stream',
      10_000,
    );
    leave.abort();
    await withDeadline(stream, 10_000, 'the client loop to end');
    await ended;
  });

  it('refuses one identity a watch beyond its own limit, though the node has slots left', async () => {
    const leave = new AbortController();
    const first = onePerPeer.watch('web', { signal: leave.signal })[Symbol.asyncIterator]();
    await first.next();
    await assert.rejects(
      (async () => {
        for await (const _event of onePerPeer.watch('web')) break;
      })(),
      (error: unknown) =>
        error instanceof StoqError &&
        error.code === StoqErrorCode.RESOURCE_EXHAUSTED &&
        /carol already holds 1 watch streams/.test(error.message),
    );
    leave.abort();
    await first.return?.();
  });

  it('refuses a watch beyond the watcher limit', async () => {
    const leave = new AbortController();
    const first = limited.watch('web', { signal: leave.signal })[Symbol.asyncIterator]();
    await first.next();
    await assert.rejects(
      (async () => {
        for await (const _event of limited.watch('web')) break;
      })(),
      (error: unknown) =>
        error instanceof StoqError && error.code === StoqErrorCode.RESOURCE_EXHAUSTED,
    );
    leave.abort();
    await first.return?.();
  });
});
