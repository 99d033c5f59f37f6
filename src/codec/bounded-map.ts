/**
 * A Map with at most `capacity` entries that evicts the least recently used ones. A Map keeps
 * insertion order, so "use" re-inserts the entry and the first key is always the oldest.
 *
 * When full, it evicts `evictionBatch(capacity)` entries at once, with one iterator. A Map keeps
 * a hole for every deleted entry until it is rehashed, and every new iterator walks over the
 * holes from the start: evicting one entry per insertion through `keys().next()` costs time in
 * proportion to the holes once the map is full (`bench/bounded-map.ts`: ~50 µs per insertion at
 * 200,000 entries, against ~1 µs in batches). A validator's state-node cache filled up after a
 * few dozen loaded blocks, and from then on every commit got slower.
 */
export class BoundedMap<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 0) {
      throw new RangeError(`capacity must be a non-negative integer, got ${capacity}`);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /** The value, marking the entry as recently used. */
  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, value);
    return value;
  }

  /** The value without touching its recency. */
  peek(key: K): V | undefined {
    return this.entries.get(key);
  }

  set(key: K, value: V): void {
    if (this.capacity === 0) return;
    this.entries.delete(key);
    if (this.entries.size >= this.capacity) {
      evictOldest(this.entries, this.entries.size - this.capacity + evictionBatch(this.capacity));
    }
    this.entries.set(key, value);
  }

  delete(key: K): boolean {
    return this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}

/** How many entries a full map of `capacity` evicts at once: 1/16 of it, at least one. */
export function evictionBatch(capacity: number): number {
  return Math.max(1, Math.floor(capacity / 16));
}

/** Deletes the `count` oldest entries (insertion order) of `map` with one iterator. */
export function evictOldest<K, V>(map: Map<K, V>, count: number): void {
  let left = count;
  if (left <= 0) return;
  for (const key of map.keys()) {
    map.delete(key);
    if (--left === 0) return;
  }
}
