import type { StateChange, StateReader } from '../../storage/index.js';
import { MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES } from '../../storage/index.js';
import { BoundedMap } from '../../codec/bounded-map.js';
import { ApplicationError, ApplicationErrorCode } from './errors.js';
import type { ModuleState, ModuleStateReader } from './module.js';

/**
 * The speculative state of one block being executed: the latest committed state (read through
 * `StateReader`) plus the writes of the transactions executed so far. Each transaction writes
 * into its own `TxScope` first, which is merged only if the transaction is applied.
 *
 * Keys are held as latin1 strings of their bytes: one character per byte, so comparing the
 * strings orders keys bytewise, which is how `changes()` orders its output.
 */
export const keyId = (key: Uint8Array): string =>
  Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');

interface Write {
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
}

export interface StateAccess {
  get(key: Uint8Array): Uint8Array | null;
  put(key: Uint8Array, value: Uint8Array | null): void;
}

/** Default number of committed values the router keeps in memory. */
export const DEFAULT_STATE_CACHE_ENTRIES = 50_000;

/**
 * Reads of the latest committed state, cached while its root stays the same. The root commits
 * to every key and value (a sparse Merkle tree over the whole state), so an unchanged root
 * means unchanged values, whatever was written in between; `sync()` re-reads the root (one
 * query) at the start of every operation and drops the cache when it moved. A transaction
 * admitted by checkTx is then executed without reading its keys from SQLite again.
 */
export class CommittedState {
  private root: string | undefined;
  private readonly values: BoundedMap<string, Uint8Array | null>;

  constructor(
    private readonly state: StateReader,
    capacity: number = DEFAULT_STATE_CACHE_ENTRIES,
  ) {
    this.values = new BoundedMap(capacity);
  }

  /** The state root (hex) as of the last `sync()`. */
  currentRoot(): string | undefined {
    return this.root;
  }

  sync(): void {
    const root = Buffer.from(this.state.root()).toString('hex');
    if (root !== this.root) {
      this.values.clear();
      this.root = root;
    }
  }

  /** The committed value; callers must not modify it (it may be shared). */
  getById(id: string, key: Uint8Array): Uint8Array | null {
    const cached = this.values.get(id);
    if (cached !== undefined) return cached;
    const value = this.state.get(key);
    this.values.set(id, value);
    return value;
  }

  get(key: Uint8Array): Uint8Array | null {
    return this.getById(keyId(key), key);
  }
}

export class BlockOverlay implements StateAccess {
  private readonly writes = new Map<string, Write>();

  constructor(private readonly committed: CommittedState) {}

  getById(id: string, key: Uint8Array): Uint8Array | null {
    const written = this.writes.get(id);
    if (written !== undefined) return written.value;
    return this.committed.getById(id, key);
  }

  get(key: Uint8Array): Uint8Array | null {
    return this.getById(keyId(key), key);
  }

  put(key: Uint8Array, value: Uint8Array | null): void {
    this.writes.set(keyId(key), { key, value });
  }

  putById(id: string, write: Write): void {
    this.writes.set(id, write);
  }

  beginTx(): TxScope {
    return new TxScope(this);
  }

  /**
   * The block's state changes: one per key whose value differs from the committed one, in
   * bytewise key order, so the list depends only on the resulting state, not on the order of
   * writes.
   */
  changes(): StateChange[] {
    const ids = [...this.writes.keys()].sort();
    const changes: StateChange[] = [];
    for (const id of ids) {
      const { key, value } = this.writes.get(id) as Write;
      const before = this.committed.getById(id, key);
      if (value === null ? before === null : before !== null && sameBytes(before, value)) continue;
      changes.push({ key, value });
    }
    return changes;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** One transaction's writes on top of the block overlay, kept only on `merge()`. */
export class TxScope implements StateAccess {
  private readonly pending = new Map<string, Write>();

  constructor(private readonly block: BlockOverlay) {}

  get(key: Uint8Array): Uint8Array | null {
    const id = keyId(key);
    const written = this.pending.get(id);
    if (written !== undefined) return written.value;
    return this.block.getById(id, key);
  }

  put(key: Uint8Array, value: Uint8Array | null): void {
    this.pending.set(keyId(key), { key, value });
  }

  merge(): void {
    for (const [id, write] of this.pending) this.block.putById(id, write);
    this.pending.clear();
  }
}

const encoder = new TextEncoder();

/** The state key prefix of a module: `<name>/`. */
export function modulePrefix(name: string): Uint8Array {
  return encoder.encode(`${name}/`);
}

function prefixed(prefix: Uint8Array, key: Uint8Array, module: string): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length === 0) {
    throw new ApplicationError(
      ApplicationErrorCode.INVALID_STATE_WRITE,
      `module ${module} used a state key that is not a non-empty byte string`,
      { module },
    );
  }
  if (prefix.length + key.length > MAX_STATE_KEY_BYTES) {
    throw new ApplicationError(
      ApplicationErrorCode.INVALID_STATE_WRITE,
      `module ${module} used a ${key.length}-byte state key; with its prefix the limit is ${MAX_STATE_KEY_BYTES - prefix.length}`,
      { module, size: key.length },
    );
  }
  const full = new Uint8Array(prefix.length + key.length);
  full.set(prefix, 0);
  full.set(key, prefix.length);
  return full;
}

/**
 * A module's view of `access`: keys get the module's prefix, and the view stops working once
 * the call it was made for returns (`close()`), so a module cannot write outside a transaction.
 */
export class ModuleView implements ModuleState {
  private open = true;

  constructor(
    private readonly access: StateAccess | ModuleStateReader,
    private readonly prefix: Uint8Array,
    private readonly module: string,
    private readonly writable: boolean,
  ) {}

  private ensureOpen(): void {
    if (!this.open) {
      throw new ApplicationError(
        ApplicationErrorCode.STATE_VIEW_CLOSED,
        `module ${this.module} used a state view after its call returned`,
        { module: this.module },
      );
    }
  }

  close(): void {
    this.open = false;
  }

  /** A copy: values may be shared with the committed-state cache. */
  get(key: Uint8Array): Uint8Array | null {
    this.ensureOpen();
    const value = this.access.get(prefixed(this.prefix, key, this.module));
    return value === null ? null : value.slice();
  }

  private write(key: Uint8Array, value: Uint8Array | null): void {
    this.ensureOpen();
    if (!this.writable || !('put' in this.access)) {
      throw new ApplicationError(
        ApplicationErrorCode.INVALID_STATE_WRITE,
        `module ${this.module} tried to write through a read-only state view`,
        { module: this.module },
      );
    }
    this.access.put(prefixed(this.prefix, key, this.module), value);
  }

  set(key: Uint8Array, value: Uint8Array): void {
    if (!(value instanceof Uint8Array) || value.length > MAX_STATE_VALUE_BYTES) {
      throw new ApplicationError(
        ApplicationErrorCode.INVALID_STATE_WRITE,
        `module ${this.module} tried to store a value that is not a byte string of at most ${MAX_STATE_VALUE_BYTES} bytes`,
        { module: this.module },
      );
    }
    this.write(key, value.slice());
  }

  delete(key: Uint8Array): void {
    this.write(key, null);
  }
}
