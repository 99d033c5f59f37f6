/**
 * Cache insertion cost once a cache is full: `BoundedMap` (src/codec/bounded-map.ts, evicts
 * 1/16 of its capacity at a time with one iterator) against the baseline it replaced in the same
 * run, a Map that evicts its oldest entry on every insertion through `map.keys().next()`. V8
 * keeps a hole for every deleted Map entry until it rehashes, and every new iterator walks the
 * holes from the start, so the baseline gets slower the more it has evicted.
 *
 *   node --import tsx bench/bounded-map.ts [--capacity 200000] [--inserts 200000]
 *
 * Prints one JSON line per metric (bench/report.ts format).
 */
import { parseArgs } from 'node:util';
import { BoundedMap } from '../src/codec/bounded-map.js';
import { formatResult } from './report.js';

const { values } = parseArgs({
  options: {
    capacity: { type: 'string', default: '200000' },
    inserts: { type: 'string', default: '200000' },
  },
});
const CAPACITY = Number(values.capacity);
const INSERTS = Number(values.inserts);
if (
  !Number.isSafeInteger(CAPACITY) ||
  CAPACITY < 1 ||
  !Number.isSafeInteger(INSERTS) ||
  INSERTS < 1
) {
  throw new RangeError('--capacity and --inserts must be positive integers');
}

/** Microseconds per insertion into a full cache, `INSERTS` insertions. */
function timeInserts(insert: (key: number) => void): number {
  for (let key = 0; key < CAPACITY; key++) insert(key);
  const started = performance.now();
  for (let key = CAPACITY; key < CAPACITY + INSERTS; key++) insert(key);
  return ((performance.now() - started) * 1000) / INSERTS;
}

const oneByOne = new Map<number, number>();
const baseline = timeInserts((key) => {
  if (oneByOne.size >= CAPACITY) oneByOne.delete(oneByOne.keys().next().value as number);
  oneByOne.set(key, key);
});
const bounded = new BoundedMap<number, number>(CAPACITY);
const batched = timeInserts((key) => bounded.set(key, key));

console.log(
  formatResult('bounded-map', {
    metric: 'insert_into_full_cache_us',
    value: batched,
    unit: 'µs/insert',
    baseline: { name: 'evict one per insert via keys().next()', value: baseline },
    note: `capacity ${CAPACITY}, ${INSERTS} insertions after filling it; lower is better`,
  }),
);
