import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BoundedMap, evictOldest, evictionBatch } from '../../src/codec/bounded-map.js';

describe('BoundedMap', () => {
  it('evicts the least recently used entry of a small map', () => {
    const map = new BoundedMap<string, number>(2);
    map.set('a', 1);
    map.set('b', 2);
    assert.equal(map.get('a'), 1, 'a is now the most recently used');
    map.set('c', 3);
    assert.equal(map.peek('b'), undefined);
    assert.equal(map.peek('a'), 1);
    assert.equal(map.peek('c'), 3);
  });

  it('evicts a batch of the oldest entries when a large map is full', () => {
    const map = new BoundedMap<number, number>(64);
    for (let i = 0; i < 64; i++) map.set(i, i);
    assert.equal(evictionBatch(64), 4);
    map.set(64, 64);
    assert.equal(map.size, 61);
    for (let i = 0; i < 4; i++) assert.equal(map.peek(i), undefined);
    assert.equal(map.peek(4), 4);
    assert.equal(map.peek(64), 64);
  });

  it('never holds more than its capacity, and keeps the newest entry (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 300 })), { maxLength: 500 }),
        (capacity, operations) => {
          const map = new BoundedMap<number, number>(capacity);
          for (const [isGet, key] of operations) {
            if (isGet) {
              map.get(key);
            } else {
              map.set(key, key);
              assert.equal(map.peek(key), key);
            }
            assert.ok(map.size <= capacity);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('holds nothing with capacity 0 and refuses a bad capacity', () => {
    const map = new BoundedMap<string, number>(0);
    map.set('a', 1);
    assert.equal(map.size, 0);
    assert.throws(() => new BoundedMap(-1), RangeError);
    assert.throws(() => new BoundedMap(1.5), RangeError);
  });

  it('evictOldest deletes exactly the oldest entries in insertion order', () => {
    const map = new Map([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    evictOldest(map, 2);
    assert.deepEqual([...map.keys()], ['c']);
    evictOldest(map, 0);
    evictOldest(map, 5);
    assert.equal(map.size, 0);
  });
});
