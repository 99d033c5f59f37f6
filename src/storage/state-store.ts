import { BoundedMap } from '../codec/bounded-map.js';
import type { Database, Statement } from 'better-sqlite3';
import { StorageError, StorageErrorCode } from './errors.js';
import type { StateChange } from './inputs.js';
import { fromSqlite, fromSqliteOrNull } from './sqlite-bytes.js';
import { EMPTY_STATE_ROOT, hashesEqual, stateKeyHash, stateValueHash } from './state-proof.js';
import type { StateProof } from './state-proof.js';
import { EMPTY_REF, proveStateKey, updateStateTree } from './state-tree.js';
import { collectWitnessNodes, type StateWitness } from './state-witness.js';
import type {
  KeyHashChange,
  NodeRef,
  StateNode,
  StateNodeReader,
  TreeUpdate,
} from './state-tree.js';

/** A value read together with the proof that it is (or is not) in the state at `root`. */
export interface StateQueryResult {
  /** The height whose state was read; null while no block is stored (the empty state). */
  readonly height: number | null;
  readonly root: Uint8Array;
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
  readonly proof: StateProof;
}

/** Read access to the application state, at the latest height or an earlier one. */
export interface StateReader {
  /** The state root at `height` (default: latest; the empty root while nothing is stored). */
  root(height?: number): Uint8Array;
  /** Number of keys with a value at `height` (default: latest). */
  keyCount(height?: number): number;
  get(key: Uint8Array, height?: number): Uint8Array | null;
  getWithProof(key: Uint8Array, height?: number): StateQueryResult;
  /** The root `saveBlock` would compute for these changes on top of the latest state. */
  computeRoot(changes: readonly StateChange[]): Uint8Array;
}

/** A planned state write for one block, computed before anything is written. */
export interface StateWrite {
  readonly changes: readonly StateChange[];
  readonly update: TreeUpdate;
  readonly keyCount: number;
}

interface Version {
  readonly height: number;
  readonly root: NodeRef;
  readonly keyCount: number;
}

interface VersionRow {
  height: number;
  root: Buffer;
  root_id: number | null;
  key_count: number;
}

type NodeRow = [kind: number, a: Buffer, b: Buffer, leftId: number | null, rightId: number | null];

const INTERNAL = 1;
const LEAF = 2;

/** Default number of tree nodes kept in memory (a few hundred bytes each). */
export const DEFAULT_NODE_CACHE_SIZE = 200_000;

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** Key hashes of a change set, refusing a key named twice (the order would then matter). */
export function keyHashChanges(changes: readonly StateChange[]): KeyHashChange[] {
  const seen = new Set<string>();
  return changes.map(({ key, value }) => {
    const keyHash = stateKeyHash(key);
    const id = hex(keyHash);
    if (seen.has(id)) {
      throw new StorageError(
        StorageErrorCode.DUPLICATE_STATE_KEY,
        `state key ${hex(key)} is changed twice in one block`,
        { key: hex(key) },
      );
    }
    seen.add(id);
    return { keyHash, valueHash: value === null ? null : stateValueHash(value) };
  });
}

/** Same key hashes with the same value hashes, in the same order. */
function sameChanges(a: readonly KeyHashChange[], b: readonly KeyHashChange[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((change, i) => {
    const other = b[i] as KeyHashChange;
    if (!hashesEqual(change.keyHash, other.keyHash)) return false;
    if (change.valueHash === null || other.valueHash === null) {
      return change.valueHash === other.valueHash;
    }
    return hashesEqual(change.valueHash, other.valueHash);
  });
}

function toVersion(row: VersionRow): Version {
  return {
    height: row.height,
    root: { hash: fromSqlite(row.root), id: row.root_id },
    keyCount: row.key_count,
  };
}

function childRef(hash: Buffer, id: number | null): NodeRef {
  return { hash: fromSqlite(hash), id };
}

export interface StateTablesOptions {
  /** Whether this connection writes the store (as its only writer); see `StateTables`. */
  readonly writer: boolean;
  /** Tree nodes kept in memory (default `DEFAULT_NODE_CACHE_SIZE`). */
  readonly nodeCacheSize?: number | undefined;
}

/**
 * The state tables (schema version 2): tree nodes, every write of every key by height, and the
 * root of each height. Nodes are immutable once written, so a bounded in-memory cache of them
 * is never stale; it is filled from reads and, only after their transaction committed, from
 * writes.
 *
 * The writer's connection also keeps the latest version (height, root, key count) in memory:
 * the application reads the root at the start of every transaction check, and a query per read
 * was a measurable part of a validator's CPU. That copy assumes this connection is the only one
 * that writes the file (a node opens its store once, and nothing else writes it). It is read
 * from SQLite once, replaced in `committed` only after saveBlock's transaction committed, and
 * dropped by `forgetLatest` so that the next read takes it from SQLite again: saveBlock does so
 * under the write lock before it plans, so a block is never written on top of a stale copy,
 * and after any failure. A read-only connection (`writer` false) keeps no copy and reads the
 * latest version on every call: another process writes the file and commits at any time, and
 * nothing would tell this connection.
 */
export class StateTables implements StateReader, StateNodeReader {
  private readonly selectLatest: Statement<[], VersionRow>;
  private readonly selectVersion: Statement<[number], VersionRow>;
  private readonly selectNode: Statement<[number], NodeRow>;
  private readonly selectNextNodeId: Statement<[], number>;
  private readonly selectValue: Statement<[Uint8Array, number], Buffer | null>;
  private readonly insertNode: Statement<
    [number, number, Uint8Array, Uint8Array, number | null, number | null]
  >;
  private readonly insertValue: Statement<[Uint8Array, number, Uint8Array | null]>;
  private readonly insertRoot: Statement<[number, Uint8Array, number | null, number]>;
  private readonly cache: BoundedMap<number, StateNode>;
  private lastPlan:
    { base: NodeRef; nextId: number; hashed: KeyHashChange[]; write: StateWrite } | undefined;
  /** The writer's copy of the latest version: null for the empty state, undefined if unknown. */
  private latest: Version | null | undefined;

  private readonly writer: boolean;

  constructor(db: Database, options: StateTablesOptions) {
    this.writer = options.writer;
    this.cache = new BoundedMap(options.nodeCacheSize ?? DEFAULT_NODE_CACHE_SIZE);
    this.selectLatest = db.prepare(
      'SELECT height, root, root_id, key_count FROM state_root ORDER BY height DESC LIMIT 1',
    );
    this.selectVersion = db.prepare(
      'SELECT height, root, root_id, key_count FROM state_root WHERE height = ?',
    );
    this.selectNode = db
      .prepare<[number], NodeRow>(
        'SELECT kind, a, b, left_id, right_id FROM state_node WHERE id = ?',
      )
      .raw();
    this.selectNextNodeId = db
      .prepare<[], number>('SELECT coalesce(max(id), 0) + 1 FROM state_node')
      .pluck();
    this.selectValue = db
      .prepare<[Uint8Array, number], Buffer | null>(
        'SELECT value FROM state_value WHERE key = ? AND height <= ? ORDER BY height DESC LIMIT 1',
      )
      .pluck();
    this.insertNode = db.prepare(
      'INSERT INTO state_node (id, kind, a, b, left_id, right_id) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.insertValue = db.prepare('INSERT INTO state_value (key, height, value) VALUES (?, ?, ?)');
    this.insertRoot = db.prepare(
      'INSERT INTO state_root (height, root, root_id, key_count) VALUES (?, ?, ?, ?)',
    );
  }

  /** The latest version, from memory on the writer's connection once it has been read. */
  private latestVersion(): Version | null {
    if (this.latest !== undefined) return this.latest;
    const row = this.selectLatest.get();
    const latest = row === undefined ? null : toVersion(row);
    if (this.writer) this.latest = latest;
    return latest;
  }

  /** The latest version, or an explicit one that must exist. */
  private version(height: number | undefined): Version | null {
    if (height === undefined) return this.latestVersion();
    const row = this.selectVersion.get(height);
    if (row === undefined) {
      throw new StorageError(
        StorageErrorCode.UNKNOWN_HEIGHT,
        `the store holds no state at height ${height}`,
        { height },
      );
    }
    return toVersion(row);
  }

  private remember(id: number, node: StateNode): void {
    // Oldest inserted first (reads use `peek`): upper tree levels are rewritten by every block,
    // so recency of insertion is a good enough proxy for use.
    this.cache.set(id, node);
  }

  read(id: number): StateNode {
    const cached = this.cache.peek(id);
    if (cached !== undefined) return cached;
    const row = this.selectNode.get(id);
    if (row === undefined) {
      throw new StorageError(StorageErrorCode.CORRUPT, `state tree node ${id} is missing`, {
        node: id,
      });
    }
    const [kind, a, b, leftId, rightId] = row;
    const node: StateNode =
      kind === INTERNAL
        ? { kind: 'internal', left: childRef(a, leftId), right: childRef(b, rightId) }
        : { kind: 'leaf', keyHash: fromSqlite(a), valueHash: fromSqlite(b) };
    this.remember(id, node);
    return node;
  }

  /** The latest root with its node id (for the integrity check). */
  latestRoot(): NodeRef {
    return this.latestVersion()?.root ?? EMPTY_REF;
  }

  root(height?: number): Uint8Array {
    // A copy: the latest version's bytes are kept, and callers may write into what they get.
    return (this.version(height)?.root.hash ?? EMPTY_STATE_ROOT).slice();
  }

  keyCount(height?: number): number {
    return this.version(height)?.keyCount ?? 0;
  }

  get(key: Uint8Array, height?: number): Uint8Array | null {
    const version = this.version(height);
    if (version === null) return null;
    return fromSqliteOrNull(this.selectValue.get(key, version.height));
  }

  getWithProof(key: Uint8Array, height?: number): StateQueryResult {
    const version = this.version(height);
    const root = version?.root ?? EMPTY_REF;
    const value =
      version === null ? null : fromSqliteOrNull(this.selectValue.get(key, version.height));
    const keyHash = stateKeyHash(key);
    const proof = proveStateKey(this, root, keyHash);
    // Values and tree are written in one transaction; if they disagree the file is damaged.
    const leaf =
      proof.leaf !== null && hashesEqual(proof.leaf.keyHash, keyHash) ? proof.leaf : null;
    const consistent =
      value === null
        ? leaf === null
        : leaf !== null && hashesEqual(leaf.valueHash, stateValueHash(value));
    if (!consistent) {
      throw new StorageError(
        StorageErrorCode.CORRUPT,
        'state value and state tree disagree for this key',
        { key: hex(key), height: version?.height ?? null },
      );
    }
    return { height: version?.height ?? null, root: root.hash.slice(), key, value, proof };
  }

  /**
   * Computes the write for one block's changes on top of the latest state, writing nothing.
   * The last plan is kept: a validator computes the root when it checks a proposal and again
   * when it saves the committed block, and the second time costs only the key hashing.
   */
  plan(changes: readonly StateChange[]): StateWrite {
    const latest = this.latestVersion();
    const base = latest?.root ?? EMPTY_REF;
    const nextId = this.selectNextNodeId.get() as number;
    const hashed = keyHashChanges(changes);
    const previous = this.lastPlan;
    if (
      previous !== undefined &&
      previous.nextId === nextId &&
      hashesEqual(previous.base.hash, base.hash) &&
      sameChanges(previous.hashed, hashed)
    ) {
      return { ...previous.write, changes };
    }
    const update = updateStateTree(this, base, hashed, nextId);
    const write = { changes, update, keyCount: (latest?.keyCount ?? 0) + update.keyCountDelta };
    this.lastPlan = { base, nextId, hashed, write };
    return write;
  }

  /**
   * The witness (state-witness.ts) for executing a block on top of version `height` (0: the
   * empty state before block 1) that read `readKeys` and made `changes`, with the root after
   * those changes. Writes nothing. Throws `UNKNOWN_HEIGHT` for a version the store does not hold.
   */
  witness(
    height: number,
    readKeys: readonly Uint8Array[],
    changes: readonly StateChange[],
  ): { witness: StateWitness; rootAfter: Uint8Array } {
    const version = height === 0 ? null : this.version(height);
    const root = version?.root ?? EMPTY_REF;
    const seen = new Set<string>();
    const values: { key: Uint8Array; value: Uint8Array | null }[] = [];
    for (const key of readKeys) {
      const id = hex(key);
      if (seen.has(id)) continue;
      seen.add(id);
      const value =
        version === null ? null : fromSqliteOrNull(this.selectValue.get(key, version.height));
      values.push({ key, value });
    }
    const { nodes, rootAfter } = collectWitnessNodes(
      this,
      root,
      values.map(({ key }) => stateKeyHash(key)),
      keyHashChanges(changes),
    );
    return { witness: { height, root, nodes, values }, rootAfter };
  }

  computeRoot(changes: readonly StateChange[]): Uint8Array {
    // A copy: the plan is kept for saveBlock and must not change under it.
    return this.plan(changes).update.root.hash.slice();
  }

  /** Writes a planned update as version `height`. Runs inside saveBlock's transaction. */
  write(height: number, planned: StateWrite): void {
    for (const { id, node } of planned.update.created) {
      if (node.kind === 'internal') {
        const { left, right } = node;
        this.insertNode.run(id, INTERNAL, left.hash, right.hash, left.id, right.id);
      } else {
        this.insertNode.run(id, LEAF, node.keyHash, node.valueHash, null, null);
      }
    }
    for (const { key, value } of planned.changes) this.insertValue.run(key, height, value);
    const { root } = planned.update;
    this.insertRoot.run(height, root.hash, root.id, planned.keyCount);
  }

  /**
   * Called after saveBlock's transaction committed: the new nodes are now durable, and version
   * `height` is the latest.
   */
  committed(height: number, planned: StateWrite): void {
    for (const { id, node } of planned.update.created) this.remember(id, node);
    if (this.writer) {
      const { root } = planned.update;
      this.latest = {
        height,
        root: { hash: root.hash.slice(), id: root.id },
        keyCount: planned.keyCount,
      };
    }
  }

  /**
   * Drops the writer's copy of the latest version; the next read takes it from SQLite. Used
   * where SQLite must be the authority: under saveBlock's write lock, after a saveBlock that
   * failed (a failed COMMIT does not always say whether it happened), before the integrity check.
   */
  forgetLatest(): void {
    this.latest = undefined;
  }
}
