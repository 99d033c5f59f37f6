import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import type { Registry } from 'prom-client';
import type { SyncedBlock } from '../../../src/consensus/driver/ports.js';
import {
  DEFAULT_CONSENSUS_NETWORK_LIMITS,
  defineConsensusPeerService,
} from '../../../src/consensus/net/index.js';
import { StoqErrorCode, type StoqError } from '../../../src/stoq/errors.js';
import { createClient } from '../../../src/stoq/rpc/client.js';
import { isStoqError } from '../../helpers/stoq-error.js';
import { waitForCondition } from '../../helpers/wait.js';
import { Cluster, metricValue, until, type TestNode } from './net-fixture.js';

/**
 * What a syncing follower can make a serving node hold: blocks are read one at a time, a page
 * ends at a byte bound, and only so many sync requests are served at once.
 */

const BLOCK_BYTES = 100 * 1024;
const PAGE_BYTES = 250 * 1024;

function largeBlocks(count: number): SyncedBlock[] {
  return Array.from({ length: count }, (_, index) => ({
    height: index + 1,
    block: new Uint8Array(BLOCK_BYTES).fill(index + 1),
    commit: Uint8Array.of(2, index + 1),
  }));
}

let cluster: Cluster;

before(async () => {
  cluster = await Cluster.create('memory', ['a', 'b', 'c', 'a0', 'd']);
});

after(async () => {
  await cluster.close();
});

describe('consensus network: serving block sync', { timeout: 20_000 }, () => {
  it('ends a page at its byte bound and the client pages on to the end', async () => {
    const [aEnd, bEnd] = await Promise.all([cluster.endpoint('a'), cluster.endpoint('b')]);
    const blocks = largeBlocks(20);
    const b = cluster.network(bEnd, [aEnd], { blocks, limits: { maxSyncPageBytes: PAGE_BYTES } });
    const a = cluster.network(aEnd, [bEnd]);
    try {
      await until(() => a.network.peers().includes('b'), 'a and b to connect');
      // One request: the server stops once 250 KiB went out (the third 100 KiB block).
      const session = await aEnd.endpoint.connect(bEnd.address);
      const client = createClient(defineConsensusPeerService(['validator', 'node']), session);
      const page: number[] = [];
      for await (const block of client.stream('blocks', { from: 1, to: 20 })) {
        page.push(block.height);
      }
      session.connection.close();
      assert.deepEqual(page, [1, 2, 3]);
      assert.deepEqual(
        b.sourceCalls.map((call) => call.limit),
        [1, 1, 1],
        'one block read at a time',
      );

      // fetchBlocks takes a short page for what it is and asks for the rest.
      const heights: number[] = [];
      for await (const block of a.network.fetchBlocks('b', 1, 20)) {
        heights.push(block.height);
        assert.deepEqual(block, blocks[block.height - 1]);
      }
      assert.deepEqual(
        heights,
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      assert.equal(
        await metricValue(b.registry, 'hypermesh_consensus_net_sync_blocks_served_total'),
        23,
      );
      // A block larger than the bound is still served, alone, and then the page ends.
      const cEnd = await cluster.endpoint('c');
      const huge = cluster.network(cEnd, [aEnd], {
        blocks: [1, 2].map((height) => ({
          height,
          block: new Uint8Array(PAGE_BYTES * 2),
          commit: Uint8Array.of(1),
        })),
        limits: { maxSyncPageBytes: PAGE_BYTES },
      });
      const toC = await aEnd.endpoint.connect(cEnd.address);
      const fromC: number[] = [];
      const service = defineConsensusPeerService(['validator', 'node']);
      for await (const block of createClient(service, toC).stream('blocks', { from: 1, to: 2 })) {
        fromC.push(block.height);
      }
      toC.connection.close();
      assert.deepEqual(fromC, [1]);
      await huge.network.close();
      assert.equal(DEFAULT_CONSENSUS_NETWORK_LIMITS.maxSyncPageBytes, 8 * 1024 * 1024);
    } finally {
      await a.network.close();
      await b.network.close();
    }
  });

  it('serves a bounded number of sync requests at once, in all and per peer', async () => {
    const endpoints = await Promise.all(['a', 'b', 'c', 'a0'].map((n) => cluster.endpoint(n)));
    const [aEnd, bEnd, cEnd, a0End] = endpoints as [
      (typeof endpoints)[0],
      (typeof endpoints)[0],
      (typeof endpoints)[0],
      (typeof endpoints)[0],
    ];
    const blocks = largeBlocks(4);
    // The block source holds every read until the gate opens, so requests stay in progress.
    const reads = new EventEmitter();
    let entered = 0;
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const b = cluster.network(bEnd, [aEnd, cEnd, a0End], {
      blocks: async (from, to, limit) => {
        entered++;
        reads.emit('read');
        await gate;
        return blocks.filter((x) => x.height >= from && x.height <= to).slice(0, limit);
      },
      limits: { maxConcurrentSyncRequests: 2, maxSyncRequestsPerPeer: 1 },
    });
    const followers: TestNode[] = [aEnd, cEnd, a0End].map((end) => cluster.network(end, [bEnd]));
    const [a, c, a0] = followers as [TestNode, TestNode, TestNode];
    const readsReach = (count: number) =>
      waitForCondition(reads, 'read', () => entered >= count, `${count} block reads`, 5_000);
    const collect = async (node: TestNode): Promise<number[]> => {
      const heights: number[] = [];
      for await (const block of node.network.fetchBlocks('b', 1, 4)) heights.push(block.height);
      return heights;
    };
    try {
      for (const node of followers) {
        await until(() => node.network.peers().includes('b'), `${node.name} to connect to b`);
      }
      const first = collect(a);
      await readsReach(1);
      // a already has a request in progress: refused; c gets the second slot; a0 finds none.
      await assert.rejects(collect(a), isStoqError(StoqErrorCode.RESOURCE_EXHAUSTED));
      const second = collect(c);
      await readsReach(2);
      await assert.rejects(collect(a0), isStoqError(StoqErrorCode.RESOURCE_EXHAUSTED));
      assert.equal(entered, 2, 'refused requests read nothing');
      open();
      assert.deepEqual(await first, [1, 2, 3, 4]);
      assert.deepEqual(await second, [1, 2, 3, 4]);
      // Finished requests free their slots.
      assert.deepEqual(await collect(a0), [1, 2, 3, 4]);
      assert.equal(
        b.logger.lines.filter(
          (line) => line.message === 'sync request refused: too many served at once',
        ).length,
        2,
      );
    } finally {
      for (const node of [...followers, b]) await node.network.close();
    }
  });

  it('keeps slots for listed peers and validators while followers sync', async () => {
    const names = ['a', 'b', 'c', 'a0', 'd'];
    const ends = await Promise.all(names.map((n) => cluster.endpoint(n)));
    const [aEnd, bEnd, cEnd, a0End, dEnd] = ends as [
      (typeof ends)[0],
      (typeof ends)[0],
      (typeof ends)[0],
      (typeof ends)[0],
      (typeof ends)[0],
    ];
    const blocks = largeBlocks(2);
    const reads = new EventEmitter();
    let entered = 0;
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    // b lists only a; a0 is unlisted but a validator; c and d are followers.
    const validatorKey = cluster.identity('a0').transportKey.publicKey;
    const b = cluster.network(bEnd, [aEnd], {
      blocks: async (from, to, limit) => {
        entered++;
        reads.emit('read');
        await gate;
        return blocks.filter((x) => x.height >= from && x.height <= to).slice(0, limit);
      },
      limits: { maxConcurrentSyncRequests: 4, maxFollowerSyncRequests: 1 },
      unlisted: { isValidator: (key) => Buffer.from(key).equals(validatorKey) },
    });
    const nodes = [aEnd, cEnd, a0End, dEnd].map((end) => cluster.network(end, [bEnd]));
    const [a, c, a0, d] = nodes as [TestNode, TestNode, TestNode, TestNode];
    const readsReach = (count: number) =>
      waitForCondition(reads, 'read', () => entered >= count, `${count} block reads`, 5_000);
    const collect = async (node: TestNode): Promise<number[]> => {
      const heights: number[] = [];
      for await (const block of node.network.fetchBlocks('b', 1, 2)) heights.push(block.height);
      return heights;
    };
    try {
      const follower = collect(c);
      await readsReach(1);
      // The followers' one slot is taken: d is refused, with two slots still free.
      await assert.rejects(
        collect(d),
        (error: unknown) =>
          isStoqError(StoqErrorCode.RESOURCE_EXHAUSTED)(error) &&
          (error as StoqError).detail.reason === 'sync-busy',
      );
      const validator = collect(a0);
      await readsReach(2);
      const listed = collect(a);
      await readsReach(3);
      open();
      assert.deepEqual(await follower, [1, 2]);
      assert.deepEqual(await validator, [1, 2]);
      assert.deepEqual(await listed, [1, 2]);
      assert.deepEqual(await collect(d), [1, 2], 'the slot is free again');
      assert.equal(DEFAULT_CONSENSUS_NETWORK_LIMITS.maxFollowerSyncRequests, 4);
    } finally {
      for (const node of [...nodes, b]) await node.network.close();
    }
  });

  it('ends a page at its time bound however slowly the blocks come', async () => {
    const [aEnd, bEnd] = await Promise.all([cluster.endpoint('a'), cluster.endpoint('b')]);
    const blocks = largeBlocks(4);
    const b = cluster.network(bEnd, [aEnd], {
      // Each read returns once the clock moved on 2 ms: the 1 ms bound has passed after it.
      blocks: (from, to, limit) => {
        const start = Date.now();
        while (Date.now() < start + 2);
        return blocks.filter((x) => x.height >= from && x.height <= to).slice(0, limit);
      },
      limits: { maxSyncServeMs: 1 },
    });
    const a = cluster.network(aEnd, [bEnd]);
    try {
      const session = await aEnd.endpoint.connect(bEnd.address);
      const client = createClient(defineConsensusPeerService(['validator', 'node']), session);
      const page: number[] = [];
      for await (const block of client.stream('blocks', { from: 1, to: 4 })) {
        page.push(block.height);
      }
      session.connection.close();
      assert.deepEqual(page, [1], 'one block, then the bound ended the page');
      // fetchBlocks asks for the rest, a page at a time.
      const heights: number[] = [];
      for await (const block of a.network.fetchBlocks('b', 1, 4)) heights.push(block.height);
      assert.deepEqual(heights, [1, 2, 3, 4]);
      assert.equal(DEFAULT_CONSENSUS_NETWORK_LIMITS.maxSyncServeMs, 120_000);
    } finally {
      await a.network.close();
      await b.network.close();
    }
  });

  it('frees the slots of sync requests whose caller gave up mid-page', async () => {
    const endpoints = await Promise.all(['a', 'b', 'c', 'a0'].map((n) => cluster.endpoint(n)));
    const [aEnd, bEnd, cEnd, a0End] = endpoints as [
      (typeof endpoints)[0],
      (typeof endpoints)[0],
      (typeof endpoints)[0],
      (typeof endpoints)[0],
    ];
    const blocks = largeBlocks(4);
    // Reads hang (a store that never answers) until `hold` turns false; they ignore the call.
    const reads = new EventEmitter();
    let entered = 0;
    let hold = true;
    const b = cluster.network(bEnd, [aEnd, cEnd, a0End], {
      blocks: (from, to, limit) => {
        entered++;
        reads.emit('read');
        if (hold) return new Promise<never>(() => undefined);
        return blocks.filter((x) => x.height >= from && x.height <= to).slice(0, limit);
      },
      limits: { maxConcurrentSyncRequests: 3, maxSyncRequestsPerPeer: 2 },
    });
    const followers: TestNode[] = [aEnd, a0End].map((end) => cluster.network(end, [bEnd]));
    const [a, a0] = followers as [TestNode, TestNode];
    const readsReach = (count: number) =>
      waitForCondition(reads, 'read', () => entered >= count, `${count} block reads`, 5_000);
    const collect = async (node: TestNode): Promise<number[]> => {
      const heights: number[] = [];
      for await (const block of node.network.fetchBlocks('b', 1, 4)) heights.push(block.height);
      return heights;
    };
    try {
      for (const node of followers) {
        await until(() => node.network.peers().includes('b'), `${node.name} to connect to b`);
      }
      // a gives up twice while b waits on its store (as BlockSync does at a deadline): a's
      // per-peer limit, were the slots kept.
      for (let call = 1; call <= 2; call++) {
        const giveUp = new AbortController();
        const page = a.network.fetchBlocks('b', 1, 4, giveUp.signal)[Symbol.asyncIterator]();
        const first = page.next();
        await readsReach(call);
        giveUp.abort();
        await assert.rejects(first);
      }
      // c's connection drops with its request in progress: the third, last slot of b.
      const toB = await cEnd.endpoint.connect(bEnd.address);
      const service = defineConsensusPeerService(['validator', 'node']);
      const dropped = createClient(service, toB)
        .stream('blocks', { from: 1, to: 4 })
        [Symbol.asyncIterator]()
        .next();
      await readsReach(3);
      toB.connection.close();
      await assert.rejects(dropped);
      await turnsUntil(
        async () => (await serverBlocksCalls(bEnd.registry)) >= 3,
        'b to end the three abandoned sync calls',
      );
      hold = false;
      assert.deepEqual(await collect(a), [1, 2, 3, 4], 'a may sync again');
      assert.deepEqual(await collect(a0), [1, 2, 3, 4], 'another peer may sync');
      assert.equal(
        b.logger.lines.filter(
          (line) => line.message === 'sync request refused: too many served at once',
        ).length,
        0,
      );
    } finally {
      for (const node of [...followers, b]) await node.network.close();
    }
  });
});

/** Sync calls the node behind `registry` ended with an error status (cancelled or lost). */
async function serverBlocksCalls(registry: Registry): Promise<number> {
  const metric = registry.getSingleMetric('hypermesh_stoq_rpc_calls_total');
  if (!metric) return 0;
  const { values } = await metric.get();
  return values
    .filter(
      ({ labels }) =>
        labels.side === 'server' &&
        String(labels.method).endsWith('/blocks') &&
        labels.code !== 'OK',
    )
    .reduce((sum, { value }) => sum + value, 0);
}

/**
 * Waits until `condition` holds, checking it once per event-loop turn: a server ending a call
 * announces it nowhere but in its metrics. Fails with `what` after five seconds.
 */
async function turnsUntil(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after 5000 ms waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
