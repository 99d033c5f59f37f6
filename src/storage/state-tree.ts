import {
  EMPTY_STATE_ROOT,
  STATE_TREE_DEPTH,
  keyBit,
  stateInternalHash,
  stateLeafHash,
} from './state-proof.js';
import type { StateLeaf, StateProof } from './state-proof.js';

/**
 * Updates and proofs for the compact sparse Merkle tree defined in state-proof.ts, over any
 * node source (SQLite in state-store.ts, a Map in tests). Pure: reads through `StateNodeReader`,
 * returns the nodes it created, writes nothing.
 *
 * Nodes are addressed by integer ids that only grow, and an internal node stores both its
 * children's ids and their hashes. A block's new nodes therefore get consecutive ids (an append
 * at the end of SQLite's table B-tree instead of ~log n random page writes per node, as keying
 * by hash would cost), and a proof reads each sibling's hash from the parent without visiting
 * the sibling.
 */
export interface NodeRef {
  readonly hash: Uint8Array;
  /** null exactly for the empty subtree. */
  readonly id: number | null;
}

export type StateNode =
  | { readonly kind: 'internal'; readonly left: NodeRef; readonly right: NodeRef }
  | { readonly kind: 'leaf'; readonly keyHash: Uint8Array; readonly valueHash: Uint8Array };

export interface StateNodeReader {
  /** The node with this id; throws if the store does not have it. */
  read(id: number): StateNode;
}

/** One key's change: a new value hash, or `null` to delete the key. */
export interface KeyHashChange {
  readonly keyHash: Uint8Array;
  readonly valueHash: Uint8Array | null;
}

export interface CreatedNode {
  readonly id: number;
  readonly node: StateNode;
}

export interface TreeUpdate {
  readonly root: NodeRef;
  /** New nodes, with ids `firstId`, `firstId + 1`, ... in creation order (children first). */
  readonly created: readonly CreatedNode[];
  /** How many keys the update added minus how many it removed. */
  readonly keyCountDelta: number;
}

export const EMPTY_REF: NodeRef = { hash: EMPTY_STATE_ROOT, id: null };

type Kind = 'empty' | 'leaf' | 'internal';

interface Ref extends NodeRef {
  /** Known for nodes this update created; read on demand for untouched subtrees. */
  readonly kind: Kind | undefined;
}

const EMPTY: Ref = { ...EMPTY_REF, kind: 'empty' };

function compareHashes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** Index of the first change in [lo, hi) whose bit at `depth` is 1 (changes are sorted). */
function splitAt(changes: readonly KeyHashChange[], lo: number, hi: number, depth: number): number {
  let index = lo;
  while (index < hi && keyBit((changes[index] as KeyHashChange).keyHash, depth) === 0) index++;
  return index;
}

/**
 * Applies `changes` (distinct key hashes, any order) to the tree `root` and returns the new
 * root. Only the paths to changed keys are visited: O(k log n) node reads and hashes for k
 * changes in a tree of n keys. New nodes are numbered from `firstId`.
 */
export function updateStateTree(
  reader: StateNodeReader,
  root: NodeRef,
  changes: readonly KeyHashChange[],
  firstId: number,
): TreeUpdate {
  const sorted = [...changes].sort((a, b) => compareHashes(a.keyHash, b.keyHash));
  for (let i = 1; i < sorted.length; i++) {
    const previous = (sorted[i - 1] as KeyHashChange).keyHash;
    if (compareHashes(previous, (sorted[i] as KeyHashChange).keyHash) === 0) {
      throw new RangeError('duplicate key hash in one state update');
    }
  }
  const created: CreatedNode[] = [];
  let keyCountDelta = 0;

  const create = (hash: Uint8Array, node: StateNode): Ref => {
    const id = firstId + created.length;
    created.push({ id, node });
    return { hash, id, kind: node.kind };
  };

  const kindOf = (ref: Ref): Kind => {
    if (ref.kind !== undefined) return ref.kind;
    return ref.id === null ? 'empty' : reader.read(ref.id).kind;
  };

  const plain = (ref: Ref): NodeRef => ({ hash: ref.hash, id: ref.id });

  /**
   * Canonical parent of two subtrees: a lone leaf moves up, an empty pair is empty. A subtree is
   * empty exactly when it has no id, so a sibling's node is read (`kindOf`) only when the other
   * side is empty — not for every untouched sibling along a changed path.
   */
  const join = (left: Ref, right: Ref): Ref => {
    if (left.id === null && (right.id === null || kindOf(right) === 'leaf')) return right;
    if (right.id === null && kindOf(left) === 'leaf') return left;
    const node: StateNode = { kind: 'internal', left: plain(left), right: plain(right) };
    return create(stateInternalHash(left.hash, right.hash), node);
  };

  /** The compact subtree at `depth` holding exactly `leaves` (sorted, distinct). */
  const build = (depth: number, leaves: readonly StateLeaf[]): Ref => {
    if (leaves.length === 0) return EMPTY;
    if (leaves.length === 1) {
      const { keyHash, valueHash } = leaves[0] as StateLeaf;
      return create(stateLeafHash(keyHash, valueHash), { kind: 'leaf', keyHash, valueHash });
    }
    if (depth >= STATE_TREE_DEPTH) throw new RangeError('two leaves with one key hash');
    const middle = leaves.findIndex((leaf) => keyBit(leaf.keyHash, depth) === 1);
    const split = middle === -1 ? leaves.length : middle;
    return join(build(depth + 1, leaves.slice(0, split)), build(depth + 1, leaves.slice(split)));
  };

  /** The leaves a range of changes puts into an empty subtree. */
  const puts = (lo: number, hi: number): StateLeaf[] => {
    const leaves: StateLeaf[] = [];
    for (let i = lo; i < hi; i++) {
      const { keyHash, valueHash } = sorted[i] as KeyHashChange;
      if (valueHash !== null) {
        leaves.push({ keyHash, valueHash });
        keyCountDelta++;
      }
    }
    return leaves;
  };

  /** A subtree that is one leaf, with changes landing in it: rebuild from the merged set. */
  const mergeIntoLeaf = (existing: StateLeaf, depth: number, lo: number, hi: number): Ref => {
    let existingChanged = false;
    const leaves: StateLeaf[] = [];
    for (let i = lo; i < hi; i++) {
      const { keyHash, valueHash } = sorted[i] as KeyHashChange;
      const isExisting = compareHashes(keyHash, existing.keyHash) === 0;
      if (isExisting) existingChanged = true;
      if (valueHash !== null) {
        leaves.push({ keyHash, valueHash });
        if (!isExisting) keyCountDelta++;
      } else if (isExisting) {
        keyCountDelta--;
      }
    }
    if (!existingChanged) {
      leaves.push(existing);
      leaves.sort((a, b) => compareHashes(a.keyHash, b.keyHash));
    }
    return build(depth, leaves);
  };

  const update = (ref: NodeRef, depth: number, lo: number, hi: number): Ref => {
    if (lo === hi) return { ...ref, kind: undefined };
    if (ref.id === null) return build(depth, puts(lo, hi));
    const node = reader.read(ref.id);
    if (node.kind === 'leaf') return mergeIntoLeaf(node, depth, lo, hi);
    const split = splitAt(sorted, lo, hi, depth);
    const left = update(node.left, depth + 1, lo, split);
    const right = update(node.right, depth + 1, split, hi);
    return join(left, right);
  };

  const result = update(root, 0, 0, sorted.length);
  return { root: plain(result), created, keyCountDelta };
}

/** The proof path for `keyHash` in the tree `root` (see `StateProof`). */
export function proveStateKey(
  reader: StateNodeReader,
  root: NodeRef,
  keyHash: Uint8Array,
): StateProof {
  const siblings: Uint8Array[] = [];
  let ref = root;
  for (let depth = 0; depth <= STATE_TREE_DEPTH; depth++) {
    if (ref.id === null) return { siblings, leaf: null };
    const node = reader.read(ref.id);
    if (node.kind === 'leaf') {
      return { siblings, leaf: { keyHash: node.keyHash, valueHash: node.valueHash } };
    }
    const right = keyBit(keyHash, depth) === 1;
    siblings.push(right ? node.left.hash : node.right.hash);
    ref = right ? node.right : node.left;
  }
  throw new RangeError('state tree deeper than 256 levels');
}
