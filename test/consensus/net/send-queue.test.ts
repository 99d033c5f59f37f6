import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  GossipSendQueue,
  type GossipKind,
  type QueuedGossip,
} from '../../../src/consensus/net/send-queue.js';
import { dialsFirst, parsePeerAddress } from '../../../src/consensus/net/peers.js';

/** The per-peer gossip send queue: bounds, drop order, FIFO order across kinds. */

function item(kind: GossipKind, id: number, size = 1): QueuedGossip {
  const bytes = new Uint8Array(Math.max(size, 2));
  bytes[0] = id & 0xff;
  bytes[1] = id >> 8;
  return { kind, bytes };
}

const idOf = (entry: QueuedGossip | undefined): number =>
  entry ? (entry.bytes[0] as number) | ((entry.bytes[1] as number) << 8) : -1;

describe('GossipSendQueue', () => {
  it('drops the oldest vote/txs/status first and keeps proposals while others remain', () => {
    const queue = new GossipSendQueue({ maxMessages: 3, maxBytes: 1_000 });
    assert.deepEqual(queue.push(item('vote', 1)), []);
    assert.deepEqual(queue.push(item('proposal', 2)), []);
    assert.deepEqual(queue.push(item('txs', 3)), []);
    assert.deepEqual(queue.push(item('status', 4)).map(idOf), [1]);
    assert.deepEqual(queue.push(item('proposal', 5)).map(idOf), [3]);
    assert.deepEqual(queue.push(item('proposal', 6)).map(idOf), [4]);
    // Only proposals left: the oldest of them goes.
    assert.deepEqual(queue.push(item('proposal', 7)).map(idOf), [2]);
    assert.deepEqual(queue.clear().map(idOf), [5, 6, 7]);
    assert.equal(queue.length, 0);
    assert.equal(queue.byteLength, 0);
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

  it('holds its bounds and arrival order under any sequence of pushes and shifts', () => {
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
          for (const step of ops) {
            if ('shift' in step) {
              assert.equal(idOf(queue.shift()), model.shift()?.id ?? -1);
              continue;
            }
            const id = next++;
            const dropped = queue.push(item(step.push, id, step.size)).map(idOf);
            model.push({ id, kind: step.push, size: step.size });
            const expected: number[] = [];
            const bytes = (): number => model.reduce((sum, entry) => sum + entry.size, 0);
            while (model.length > maxMessages || bytes() > 400) {
              const other = model.findIndex((entry) => entry.kind !== 'proposal');
              const [victim] = model.splice(other >= 0 ? other : 0, 1);
              expected.push(victim!.id);
            }
            assert.deepEqual(dropped, expected);
            assert.equal(queue.length, model.length);
            assert.equal(queue.byteLength, bytes());
          }
          assert.deepEqual(
            queue.clear().map(idOf),
            model.map((entry) => entry.id),
          );
        },
      ),
      { numRuns: 200 },
    );
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
