import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { createConsensusNetworkMetrics } from '../../../src/consensus/net/metrics.js';
import { DEFAULT_CONSENSUS_NETWORK_LIMITS } from '../../../src/consensus/net/network.js';
import { PeerLink, type GossipChannel } from '../../../src/consensus/net/peer-link.js';
import {
  GossipSendQueue,
  type GossipKind,
  type QueuedGossip,
} from '../../../src/consensus/net/send-queue.js';
import { dialsFirst, parsePeerAddress } from '../../../src/consensus/net/peers.js';

/**
 * The per-peer gossip send queue: bounds, drop order (txs first, proposals last), and consensus
 * messages ahead of transaction gossip.
 */

function item(kind: GossipKind, id: number, size = 1): QueuedGossip {
  const bytes = new Uint8Array(Math.max(size, 2));
  bytes[0] = id & 0xff;
  bytes[1] = id >> 8;
  return { kind, bytes };
}

const idOf = (entry: QueuedGossip | undefined): number =>
  entry ? (entry.bytes[0] as number) | ((entry.bytes[1] as number) << 8) : -1;

describe('GossipSendQueue', () => {
  it('drops the oldest txs first, then votes and status, and proposals last', () => {
    const queue = new GossipSendQueue({ maxMessages: 3, maxBytes: 1_000 });
    assert.deepEqual(queue.push(item('vote', 1)), []);
    assert.deepEqual(queue.push(item('txs', 2)), []);
    assert.deepEqual(queue.push(item('proposal', 3)), []);
    // The newer status pushes out the older txs batch, not the vote.
    assert.deepEqual(queue.push(item('status', 4)).map(idOf), [2]);
    // A newer txs batch goes itself rather than a vote or status.
    assert.deepEqual(queue.push(item('txs', 5)).map(idOf), [5]);
    assert.deepEqual(queue.push(item('proposal', 6)).map(idOf), [1]);
    assert.deepEqual(queue.push(item('proposal', 7)).map(idOf), [4]);
    // Only proposals left: the oldest of them goes.
    assert.deepEqual(queue.push(item('proposal', 8)).map(idOf), [3]);
    assert.deepEqual(queue.clear().map(idOf), [6, 7, 8]);
    assert.equal(queue.length, 0);
    assert.equal(queue.byteLength, 0);
  });

  it('sends consensus messages in arrival order ahead of every queued txs batch', () => {
    const queue = new GossipSendQueue({ maxMessages: 100, maxBytes: 10_000 });
    queue.push(item('txs', 1));
    queue.push(item('vote', 2));
    queue.push(item('txs', 3));
    queue.push(item('proposal', 4));
    queue.push(item('status', 5));
    queue.push(item('txs', 6));
    assert.deepEqual(queue.clear().map(idOf), [2, 4, 5, 1, 3, 6]);
  });

  it('bounds bytes too, and refuses a message larger than the whole budget', () => {
    const queue = new GossipSendQueue({ maxMessages: 100, maxBytes: 100 });
    queue.push(item('vote', 1, 40));
    queue.push(item('vote', 2, 40));
    assert.deepEqual(queue.push(item('vote', 3, 40)).map(idOf), [1]);
    assert.equal(queue.byteLength, 80);
    assert.deepEqual(queue.push(item('proposal', 4, 101)).map(idOf), [4]);
    assert.deepEqual([idOf(queue.shift()), idOf(queue.shift()), idOf(queue.shift())], [2, 3, -1]);
  });

  it('holds its bounds, send order and drop order under any sequence of pushes and shifts', () => {
    const kinds: GossipKind[] = ['proposal', 'vote', 'txs', 'status'];
    const op = fc.oneof(
      fc.record({
        push: fc.constantFrom(...kinds),
        size: fc.integer({ min: 2, max: 50 }),
      }),
      fc.constant({ shift: true as const }),
    );
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 300 }),
        fc.integer({ min: 1, max: 20 }),
        (ops, maxMessages) => {
          const queue = new GossipSendQueue({ maxMessages, maxBytes: 400 });
          const model: { id: number; kind: GossipKind; size: number }[] = [];
          let next = 0;
          // The next to send: the oldest consensus message, else the oldest txs batch.
          const nextOut = (): number => {
            const consensus = model.findIndex((entry) => entry.kind !== 'txs');
            return consensus >= 0 ? consensus : 0;
          };
          // The next to drop: the oldest txs batch, else vote or status, else proposal.
          const victimOf = (): number => {
            for (const droppable of [['txs'], ['vote', 'status'], ['proposal']]) {
              const at = model.findIndex((entry) => droppable.includes(entry.kind));
              if (at >= 0) return at;
            }
            return 0;
          };
          for (const step of ops) {
            if ('shift' in step) {
              const [expected] = model.length > 0 ? model.splice(nextOut(), 1) : [];
              assert.equal(idOf(queue.shift()), expected?.id ?? -1);
              continue;
            }
            const id = next++;
            const dropped = queue.push(item(step.push, id, step.size)).map(idOf);
            model.push({ id, kind: step.push, size: step.size });
            const expected: number[] = [];
            const bytes = (): number => model.reduce((sum, entry) => sum + entry.size, 0);
            while (model.length > maxMessages || bytes() > 400) {
              const [victim] = model.splice(victimOf(), 1);
              expected.push(victim!.id);
            }
            assert.deepEqual(dropped, expected);
            assert.equal(queue.length, model.length);
            assert.equal(queue.byteLength, bytes());
          }
          const order: number[] = [];
          while (model.length > 0) order.push(model.splice(nextOut(), 1)[0]!.id);
          assert.deepEqual(queue.clear().map(idOf), order);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('PeerLink send order', () => {
  it('sends a vote queued behind 16 MiB of txs gossip first, and newer txs do not push it out', async () => {
    const MiB = 1024 * 1024;
    // A stream whose buffer is full after one 1 MiB message until the test lets it drain.
    const wire: GossipKind[] = [];
    let buffered = 0;
    let release: (() => void) | null = null;
    let written: (() => void) | null = null;
    const channel: GossipChannel = {
      send(bytes) {
        buffered += bytes.length;
        wire.push(bytes[0] === 2 ? 'vote' : 'txs');
        written?.();
        return buffered < MiB;
      },
      drain: () =>
        new Promise<void>((resolve) => {
          release = () => {
            buffered = 0;
            resolve();
          };
        }),
      abort: () => undefined,
      [Symbol.asyncIterator]: () => ({ next: () => new Promise(() => undefined) }),
    };
    const metrics = createConsensusNetworkMetrics(new Registry());
    const link = new PeerLink('b', 'acceptor', channel, {
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
      metrics,
      queueLimits: {
        maxMessages: DEFAULT_CONSENSUS_NETWORK_LIMITS.maxQueuedMessages,
        maxBytes: DEFAULT_CONSENSUS_NETWORK_LIMITS.maxQueuedBytes,
      },
      maxMalformed: 16,
      decode: () => {
        throw new Error('not reading');
      },
      deliver: () => undefined,
      accepted: () => undefined,
      peerLabel: (peer) => peer,
    });
    const txs = (): QueuedGossip => ({ kind: 'txs', bytes: new Uint8Array(MiB).fill(1) });
    // One batch fills the stream's buffer; 16 more (16 MiB, the queue's byte bound) wait.
    for (let i = 0; i < 17; i++) link.enqueue(txs());
    link.enqueue({ kind: 'vote', bytes: new Uint8Array(3000).fill(2) });
    // More client gossip while the link is still congested.
    for (let i = 0; i < 16; i++) link.enqueue(txs());
    const dropped = (await metrics.dropped.get()).values;
    assert.deepEqual(
      dropped.filter((value) => value.labels.kind !== 'txs'),
      [],
      'only txs batches make room',
    );
    assert.equal(
      dropped.reduce((sum, value) => sum + value.value, 0),
      17,
      'the queue keeps its byte bound: 16 MiB of txs and the vote',
    );
    assert.deepEqual(wire, ['txs']);
    const next = new Promise<void>((resolve) => (written = resolve));
    assert.ok(release, 'the stream is at its high-water mark');
    (release as () => void)();
    await next;
    assert.deepEqual(
      wire.slice(0, 2),
      ['txs', 'vote'],
      'the vote is the first message once the stream drains',
    );
    link.abort();
  });
});

describe('peer table helpers', () => {
  it('parses host:port and [v6]:port, and orders dialling by id', () => {
    assert.deepEqual(parsePeerAddress('node-1.example:9292'), {
      host: 'node-1.example',
      port: 9292,
    });
    assert.deepEqual(parsePeerAddress('[::1]:9292'), { host: '::1', port: 9292 });
    assert.deepEqual(parsePeerAddress('10.0.0.1:1'), { host: '10.0.0.1', port: 1 });
    for (const bad of ['', 'x', 'x:', ':1', 'x:65536', 'x:0', '::1:1', '[x]:1', 'a b:1']) {
      assert.throws(() => parsePeerAddress(bad), /peer address/, bad);
    }
    assert.equal(dialsFirst('a', 'b'), true);
    assert.equal(dialsFirst('b', 'a'), false);
    assert.equal(dialsFirst('B', 'a'), true, 'code-unit order: uppercase sorts first');
  });
});
