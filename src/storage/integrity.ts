import type { Database } from 'better-sqlite3';
import type { StoredBlock } from './block-store.js';
import { StorageError, StorageErrorCode } from './errors.js';
import { fromSqlite } from './sqlite-bytes.js';
import {
  EMPTY_STATE_ROOT,
  hashesEqual,
  stateInternalHash,
  stateKeyHash,
  stateLeafHash,
  stateValueHash,
} from './state-proof.js';
import type { StateTables } from './state-store.js';
import { EMPTY_REF, updateStateTree } from './state-tree.js';
import type { NodeRef, StateNode, StateNodeReader } from './state-tree.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** What a full consistency check found (it throws `CORRUPT` at the first violation instead). */
export interface IntegrityReport {
  readonly earliestHeight: number | null;
  readonly latestHeight: number | null;
  readonly blocks: number;
  readonly stateKeys: number;
  readonly stateRoot: Uint8Array;
  /** Whether the latest state was compared with the latest block header (`headerStateRoot`). */
  readonly headerChecked: boolean;
}

/**
 * The application state root a stored block's header commits to: the state after executing
 * that block, so the store's state root at the block's height. Block bytes are opaque to the
 * store, so the layer that encodes blocks supplies this (consensus: `storedBlockStateRoot` in
 * src/consensus/driver/chain.ts). It may throw for bytes it cannot decode.
 */
export type HeaderStateRoot = (block: StoredBlock) => Uint8Array;

export interface IntegrityOptions {
  /** Also require the latest state root to be the one the latest header commits to. */
  readonly headerStateRoot?: HeaderStateRoot;
}

function corrupt(message: string, detail: Record<string, unknown> = {}): never {
  throw new StorageError(StorageErrorCode.CORRUPT, message, detail);
}

function count(db: Database, sql: string): number {
  return Number(db.prepare(sql).pluck().get());
}

/**
 * SQLite's own check, then foreign keys. `integrity_check`, not `quick_check`: only the full
 * check compares every index with its table (https://www.sqlite.org/pragma.html#pragma_quick_check),
 * and a damaged index entry makes a lookup by block hash miss a stored block. It costs little
 * next to the state check below (a 58 MiB store of 3,000 blocks: 236 ms against quick_check's
 * 169 ms, of 1.2-1.5 s for the whole check).
 */
function checkSqlite(db: Database): void {
  const problems = db.pragma('integrity_check', { simple: false }) as {
    integrity_check: string;
  }[];
  if (problems.length !== 1 || problems[0]?.integrity_check !== 'ok') {
    corrupt('SQLite integrity_check failed', { problems: problems.slice(0, 10) });
  }
  const dangling = db.pragma('foreign_key_check') as unknown[];
  if (dangling.length > 0) corrupt('rows point at missing blocks', { rows: dangling.length });
}

/** Heights contiguous, each block linked to its parent and holding a commit and a state root. */
function checkChain(db: Database): {
  earliest: number | null;
  latest: number | null;
  blocks: number;
} {
  const { earliest, latest, blocks } = db
    .prepare('SELECT min(height) AS earliest, max(height) AS latest, count(*) AS blocks FROM block')
    .get() as { earliest: number | null; latest: number | null; blocks: number };
  if (earliest !== null && latest !== null && latest - earliest + 1 !== blocks) {
    corrupt('block heights have gaps', { earliest, latest, blocks });
  }
  const unlinked = count(
    db,
    `SELECT count(*) FROM block b JOIN block p ON p.height = b.height - 1
     WHERE b.parent_hash != p.hash`,
  );
  if (unlinked > 0) corrupt('blocks whose parent hash is not the previous block', { unlinked });
  const uncommitted = count(
    db,
    'SELECT count(*) FROM block b LEFT JOIN block_commit c USING (height) WHERE c.height IS NULL',
  );
  if (uncommitted > 0) corrupt('blocks without a commit', { uncommitted });
  const rootless = count(
    db,
    'SELECT count(*) FROM block b LEFT JOIN state_root r USING (height) WHERE r.height IS NULL',
  );
  if (rootless > 0) corrupt('blocks without a state root', { rootless });
  return { earliest, latest, blocks };
}

/**
 * Every node reachable from `root` is present and hashes to what its parent records; returns
 * the leaves as key hash -> value hash.
 */
function walkTree(reader: StateNodeReader, root: NodeRef): Map<string, Uint8Array> {
  const leaves = new Map<string, Uint8Array>();
  const pending: NodeRef[] = [root];
  while (pending.length > 0) {
    const ref = pending.pop() as NodeRef;
    if (ref.id === null) {
      if (!hashesEqual(ref.hash, EMPTY_STATE_ROOT)) {
        corrupt('a state tree child has a hash but no node', { hash: hex(ref.hash) });
      }
      continue;
    }
    const node: StateNode = reader.read(ref.id);
    const actual =
      node.kind === 'internal'
        ? stateInternalHash(node.left.hash, node.right.hash)
        : stateLeafHash(node.keyHash, node.valueHash);
    if (!hashesEqual(actual, ref.hash)) {
      corrupt('a state tree node does not hash to what its parent records', { node: ref.id });
    }
    if (node.kind === 'internal') pending.push(node.left, node.right);
    else leaves.set(hex(node.keyHash), node.valueHash);
  }
  return leaves;
}

/**
 * The latest state tree is intact and agrees with the latest value of every key: rebuilt from
 * the values alone it has the stored root, and walking the stored nodes finds exactly those
 * keys and values.
 */
function checkState(db: Database, state: StateTables): { keys: number; root: Uint8Array } {
  const root = state.latestRoot();
  // Row by row, each value hashed as it is read and dropped: only the 32-byte hashes are kept,
  // not the whole latest state at once (a value may be 16 MiB; reading all rows first held a
  // 160 MiB state in memory a second time, on every restore).
  const rows = db
    .prepare('SELECT key, value, max(height) FROM state_value GROUP BY key')
    .raw()
    .iterate() as IterableIterator<[Buffer, Buffer | null, number]>;
  const live = new Map<string, Uint8Array>();
  for (const [key, value] of rows) {
    if (value !== null)
      live.set(Buffer.from(stateKeyHash(key)).toString('hex'), stateValueHash(value));
  }
  const empty: StateNodeReader = {
    read: () => corrupt('rebuilding the state tree read a node'),
  };
  const rebuilt = updateStateTree(
    empty,
    EMPTY_REF,
    [...live].map(([keyHash, valueHash]) => ({ keyHash: Buffer.from(keyHash, 'hex'), valueHash })),
    1,
  );
  if (!hashesEqual(rebuilt.root.hash, root.hash)) {
    corrupt('the stored state root is not the root of the stored values', {
      stored: hex(root.hash),
      rebuilt: hex(rebuilt.root.hash),
    });
  }
  const leaves = walkTree(state, root);
  const keyCount = state.keyCount();
  if (leaves.size !== live.size || keyCount !== live.size) {
    corrupt('state key count disagrees', { leaves: leaves.size, values: live.size, keyCount });
  }
  for (const [keyHash, valueHash] of leaves) {
    const expected = live.get(keyHash);
    if (expected === undefined || !hashesEqual(expected, valueHash)) {
      corrupt('a state tree leaf disagrees with the stored value', { keyHash });
    }
  }
  return { keys: live.size, root: root.hash };
}

interface LatestBlockRow {
  height: number;
  hash: Buffer;
  parent_hash: Buffer;
  time_ms: number;
  bytes: Buffer;
  root: Buffer | null;
}

/**
 * The latest block and the state root stored at its height (null when missing). A file from
 * before schema version 2 has no state tables; migrating it gives every block the empty root.
 */
function latestBlockAndRoot(db: Database): { block: StoredBlock; root: Uint8Array | null } | null {
  const hasState =
    db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'state_root'").get() !==
    undefined;
  const row = db
    .prepare(
      hasState
        ? `SELECT b.height, b.hash, b.parent_hash, b.time_ms, b.bytes, r.root
           FROM block b LEFT JOIN state_root r USING (height) ORDER BY b.height DESC LIMIT 1`
        : `SELECT height, hash, parent_hash, time_ms, bytes, NULL AS root
           FROM block ORDER BY height DESC LIMIT 1`,
    )
    .get() as LatestBlockRow | undefined;
  if (row === undefined) return null;
  const block: StoredBlock = {
    height: row.height,
    hash: fromSqlite(row.hash),
    parentHash: fromSqlite(row.parent_hash),
    timeMs: row.time_ms,
    bytes: fromSqlite(row.bytes),
  };
  if (!hasState) return { block, root: EMPTY_STATE_ROOT };
  return { block, root: row.root === null ? null : fromSqlite(row.root) };
}

/**
 * The state stored for the latest block is the state its header commits to: otherwise the
 * store would serve, prove and build on a state the chain never agreed on (a state row copied
 * from another height passes every other check). Reads only; nothing to compare without blocks.
 * Throws `HEADER_STATE_MISMATCH`, or `CORRUPT` when the root or the header cannot be read.
 */
export function checkLatestStateAgainstHeader(
  db: Database,
  headerStateRoot: HeaderStateRoot,
): void {
  const latest = latestBlockAndRoot(db);
  if (latest === null) return;
  const { block, root } = latest;
  if (root === null) corrupt(`block ${block.height} has no state root`, { height: block.height });
  let committed: unknown;
  try {
    committed = headerStateRoot(block);
  } catch (error) {
    throw new StorageError(
      StorageErrorCode.CORRUPT,
      `the header of block ${block.height} cannot be read: ${(error as Error).message}`,
      { height: block.height },
      { cause: error },
    );
  }
  if (!(committed instanceof Uint8Array) || committed.length !== root.length) {
    corrupt(`the header of block ${block.height} holds no state root`, { height: block.height });
  }
  if (!hashesEqual(committed, root)) {
    throw new StorageError(
      StorageErrorCode.HEADER_STATE_MISMATCH,
      `the state stored for block ${block.height} is not the state its header commits to`,
      { height: block.height, stored: hex(root), header: hex(committed) },
    );
  }
}

/**
 * Full consistency check of a store; O(blocks + state keys). With `headerStateRoot`, the
 * latest state root must also be the one the latest block's header commits to. Only the latest
 * state is checked: older heights' values, roots and the nodes only they reach are taken as
 * written (docs/storage.md, "Errors").
 */
export function checkIntegrity(
  db: Database,
  state: StateTables,
  options: IntegrityOptions = {},
): IntegrityReport {
  checkSqlite(db);
  const chain = checkChain(db);
  const { keys, root } = checkState(db, state);
  const { headerStateRoot } = options;
  if (headerStateRoot !== undefined) checkLatestStateAgainstHeader(db, headerStateRoot);
  return {
    earliestHeight: chain.earliest,
    latestHeight: chain.latest,
    blocks: chain.blocks,
    stateKeys: keys,
    stateRoot: root,
    headerChecked: headerStateRoot !== undefined,
  };
}
