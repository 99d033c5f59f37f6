import { decodeCanonical, encodeCanonical } from '../codec/cbor.js';
import { HyperMeshError } from '../codec/error.js';
import type { StateChange } from './inputs.js';
import { MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES } from './inputs.js';
import {
  EMPTY_STATE_ROOT,
  STATE_HASH_SIZE,
  STATE_TREE_DEPTH,
  hashesEqual,
  stateInternalHash,
  stateKeyHash,
  stateLeafHash,
  stateValueHash,
} from './state-proof.js';
import type { StateQueryResult, StateReader } from './state-store.js';
import { proveStateKey, updateStateTree } from './state-tree.js';
import type { KeyHashChange, NodeRef, StateNode, StateNodeReader } from './state-tree.js';

/**
 * A state witness: the part of the state tree of one version that executing one block touches
 * — the nodes on the path of every key the execution read or changed, and the values it read —
 * so that someone without the state (an operator's `hypermesh block verify`) can re-execute the
 * block and recompute the state root after it, trusting nothing but the version's root.
 *
 * `WitnessState` checks every node against the root before it answers anything (a node's hash
 * must be the hash its parent holds for it; node ids are only handles and are not trusted), and
 * answers reads by walking the checked tree: a value must hash to its leaf, an absent key must
 * be shown absent by the tree. A read or an update that needs a node the witness left out fails
 * with `STATE_WITNESS_INCOMPLETE` instead of guessing. So a witness can only be incomplete, never
 * lie: with SHA-256 collision resistance, the root it computes after a block's changes is the
 * real one exactly when the changes are.
 */
export enum StateWitnessErrorCode {
  /** Not the encoding below, or out of its bounds. */
  MALFORMED = 'STATE_WITNESS_MALFORMED',
  /** A node does not hash to what its parent (or the expected root) says. */
  ROOT_MISMATCH = 'STATE_WITNESS_ROOT_MISMATCH',
  /** A read value that does not hash to its leaf, or a value for a key the tree shows absent. */
  VALUE_MISMATCH = 'STATE_WITNESS_VALUE_MISMATCH',
  /** The execution needed a node or value the witness does not hold. */
  INCOMPLETE = 'STATE_WITNESS_INCOMPLETE',
  /** A read the witness cannot answer (another height, the key count). */
  UNSUPPORTED = 'STATE_WITNESS_UNSUPPORTED',
}

export class StateWitnessError extends HyperMeshError<StateWitnessErrorCode> {}

/** A key the execution read and its value in the witnessed version (null: absent). */
export interface WitnessValue {
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
}

export interface StateWitness {
  /** The witnessed version's height (0: the empty state before block 1). */
  readonly height: number;
  /** Its root: hash and node id (null for the empty state). */
  readonly root: NodeRef;
  /** Tree nodes by id. */
  readonly nodes: ReadonlyMap<number, StateNode>;
  readonly values: readonly WitnessValue[];
}

/**
 * Bounds of a witness: one STOQ message of the default 4 MiB limit (stoq/rpc/framing.ts) less
 * 64 KiB for the rest of the response frame.
 */
export const MAX_STATE_WITNESS_BYTES = 4 * 1024 * 1024 - 64 * 1024;
export const MAX_WITNESS_ITEMS = 2_000_000;
export const MAX_WITNESS_VALUES = 200_000;

/**
 * The decoder's item budget (RFC 8949 §2 data items, as `decodeStrict` counts them): the largest
 * count a witness `decodeStateWitness` accepts can hold. It has the witness array and its 4
 * elements (5); at most `MAX_WITNESS_ITEMS` tree items, of which each leaf `[keyHash, valueHash]`
 * adds its 2 hashes — and a leaf takes 1 + 2 × 34 = 69 bytes, so at most
 * ⌊MAX_STATE_WITNESS_BYTES / 69⌋ = 59,837 of them fit; and at most `MAX_WITNESS_VALUES` values,
 * each `[key, value]` 3 items. 5 + 2,000,000 + 2 × 59,837 + 3 × 200,000 = 2,719,679. Bytes alone
 * would allow 4 Mi items (an empty map is one byte).
 */
const MAX_WITNESS_DATA_ITEMS =
  5 +
  MAX_WITNESS_ITEMS +
  2 * Math.floor(MAX_STATE_WITNESS_BYTES / (1 + 2 * (2 + STATE_HASH_SIZE))) +
  3 * MAX_WITNESS_VALUES;

/** Ids of nodes an update over a witness creates: far above any id a store hands out. */
const WITNESS_FIRST_ID = 2 ** 52;

const FORMAT = 2;
/** A tree item: a node the witness holds, its two subtrees following. */
const EXPANDED = 0;

/**
 * The nodes `updateStateTree` and a proof of each key in `keyHashes` read from `reader` on
 * the tree `root`: exactly what re-executing needs, and nothing is written.
 */
export function collectWitnessNodes(
  reader: StateNodeReader,
  root: NodeRef,
  keyHashes: readonly Uint8Array[],
  changes: readonly KeyHashChange[],
): { nodes: Map<number, StateNode>; rootAfter: Uint8Array } {
  const nodes = new Map<number, StateNode>();
  const recording: StateNodeReader = {
    read: (id) => {
      const node = reader.read(id);
      nodes.set(id, node);
      return node;
    },
  };
  for (const keyHash of keyHashes) proveStateKey(recording, root, keyHash);
  const update = updateStateTree(recording, root, changes, WITNESS_FIRST_ID);
  return { nodes, rootAfter: update.root.hash };
}

/** The key and value hashes of `changes`, as `updateStateTree` takes them. */
export function hashStateChanges(changes: readonly StateChange[]): KeyHashChange[] {
  return changes.map(({ key, value }) => ({
    keyHash: stateKeyHash(key),
    valueHash: value === null ? null : stateValueHash(value),
  }));
}

/**
 * Deterministic CBOR: `[2, height, tree, values]`. `tree` is the witnessed part of the tree in
 * pre-order from the root, one item per subtree: `0` a node the witness holds, followed by its
 * left and then its right subtree; `[keyHash, valueHash]` a leaf it holds; `null` the empty
 * subtree; a 32-byte hash a subtree it does not hold (opaque). So each node on a touched path
 * costs one byte and each untouched sibling its hash, about a state proof per key less the
 * shared upper levels; node ids are not sent (the decoder numbers the nodes itself). `values`
 * is `[key, value | null]` ascending by key. Nodes of `witness.nodes` not under the root are
 * left out.
 */
export function encodeStateWitness(witness: StateWitness): Uint8Array {
  const tree: unknown[] = [];
  const visit = (ref: NodeRef): void => {
    if (ref.id === null) {
      tree.push(null);
      return;
    }
    const node = witness.nodes.get(ref.id);
    if (node === undefined) {
      tree.push(ref.hash);
    } else if (node.kind === 'leaf') {
      tree.push([node.keyHash, node.valueHash]);
    } else {
      tree.push(EXPANDED);
      visit(node.left);
      visit(node.right);
    }
  };
  visit(witness.root);
  const values = [...witness.values]
    .sort((a, b) => Buffer.compare(a.key, b.key))
    .map(({ key, value }) => [key, value]);
  return encodeCanonical([FORMAT, witness.height, tree, values]);
}

function malformed(reason: string, detail: Record<string, unknown> = {}): never {
  throw new StateWitnessError(
    StateWitnessErrorCode.MALFORMED,
    `malformed state witness: ${reason}`,
    detail,
  );
}

const isHash = (value: unknown): value is Uint8Array =>
  value instanceof Uint8Array && value.length === STATE_HASH_SIZE;

/**
 * The tree of an encoded witness: nodes numbered 1, 2, ... in the order they end, each child
 * reference carrying the hash computed from below; an opaque subtree gets a number no node has,
 * so reading it fails as incomplete.
 */
function decodeTree(items: readonly unknown[]): { root: NodeRef; nodes: Map<number, StateNode> } {
  const nodes = new Map<number, StateNode>();
  let position = 0;
  let nextId = 1;
  const subtree = (depth: number): NodeRef => {
    if (position >= items.length) malformed('the tree ends before its last subtree');
    const where = `tree[${position}]`;
    const item = items[position++];
    if (item === null) return { hash: EMPTY_STATE_ROOT, id: null };
    if (isHash(item)) {
      if (hashesEqual(item, EMPTY_STATE_ROOT)) {
        malformed(`${where}: the empty subtree is null, not its hash`);
      }
      return { hash: item, id: nextId++ };
    }
    if (item === EXPANDED) {
      if (depth >= STATE_TREE_DEPTH) malformed('the tree is deeper than 256 levels');
      const left = subtree(depth + 1);
      const right = subtree(depth + 1);
      const id = nextId++;
      nodes.set(id, { kind: 'internal', left, right });
      return { hash: stateInternalHash(left.hash, right.hash), id };
    }
    if (Array.isArray(item) && item.length === 2 && isHash(item[0]) && isHash(item[1])) {
      const [keyHash, valueHash] = item as [Uint8Array, Uint8Array];
      const id = nextId++;
      nodes.set(id, { kind: 'leaf', keyHash, valueHash });
      return { hash: stateLeafHash(keyHash, valueHash), id };
    }
    return malformed(`${where} is not 0, [keyHash, valueHash], null or a 32-byte hash`);
  };
  const root = subtree(0);
  if (position !== items.length) malformed(`${items.length - position} items after the tree`);
  return { root, nodes };
}

/** Parses an encoded witness; anything but the exact canonical form is `STATE_WITNESS_MALFORMED`. */
export function decodeStateWitness(bytes: Uint8Array): StateWitness {
  if (!(bytes instanceof Uint8Array)) malformed('expected bytes');
  if (bytes.length > MAX_STATE_WITNESS_BYTES) {
    malformed(`${bytes.length} bytes; the limit is ${MAX_STATE_WITNESS_BYTES}`);
  }
  let decoded: unknown;
  try {
    decoded = decodeCanonical(bytes, { maxItems: MAX_WITNESS_DATA_ITEMS });
  } catch (error) {
    throw new StateWitnessError(
      StateWitnessErrorCode.MALFORMED,
      `malformed state witness: ${(error as Error).message}`,
      { length: bytes.length },
      { cause: error },
    );
  }
  if (!Array.isArray(decoded) || decoded.length !== 4) malformed('expected a 4-element array');
  const [format, height, tree, valueList] = decoded as unknown[];
  if (format !== FORMAT) malformed(`unknown format ${String(format)}`, { format });
  if (typeof height !== 'number' || !Number.isSafeInteger(height) || height < 0) {
    malformed('height must be a non-negative integer');
  }
  if (!Array.isArray(tree) || tree.length > MAX_WITNESS_ITEMS) {
    malformed(`the tree must be an array of at most ${MAX_WITNESS_ITEMS} items`);
  }
  const { root, nodes } = decodeTree(tree);
  if (!Array.isArray(valueList) || valueList.length > MAX_WITNESS_VALUES) {
    malformed(`values must be an array of at most ${MAX_WITNESS_VALUES}`);
  }
  const values: WitnessValue[] = [];
  for (const [index, entry] of valueList.entries()) {
    const where = `values[${index}]`;
    if (!Array.isArray(entry) || entry.length !== 2) malformed(`${where} is not [key, value]`);
    const [key, value] = entry as unknown[];
    if (!(key instanceof Uint8Array) || key.length < 1 || key.length > MAX_STATE_KEY_BYTES) {
      malformed(`${where}: key must be 1 to ${MAX_STATE_KEY_BYTES} bytes`);
    }
    if (
      value !== null &&
      (!(value instanceof Uint8Array) || value.length > MAX_STATE_VALUE_BYTES)
    ) {
      malformed(`${where}: value must be null or at most ${MAX_STATE_VALUE_BYTES} bytes`);
    }
    const previous = values.at(-1);
    if (previous !== undefined && Buffer.compare(previous.key, key) >= 0) {
      malformed(`${where}: keys must be strictly increasing`);
    }
    values.push({ key, value });
  }
  return { height, root, nodes, values };
}

function nodeHash(node: StateNode): Uint8Array {
  return node.kind === 'leaf'
    ? stateLeafHash(node.keyHash, node.valueHash)
    : stateInternalHash(node.left.hash, node.right.hash);
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/**
 * The state of one version as a witness shows it: a `StateReader` for an application's
 * execution on top of that version. Built only by `verifyStateWitness`.
 */
export class WitnessState implements StateReader, StateNodeReader {
  private constructor(
    private readonly witness: StateWitness,
    private readonly valuesByKey: ReadonlyMap<string, Uint8Array | null>,
  ) {}

  /**
   * Checks `witness` against `expectedRoot` (from a header the caller trusts): the witness's
   * root is that root, every node hashes to the hash its parent gives it, and every node is
   * reached from the root. Throws `StateWitnessError`.
   */
  static verify(witness: StateWitness, expectedRoot: Uint8Array): WitnessState {
    if (!hashesEqual(witness.root.hash, expectedRoot)) {
      throw new StateWitnessError(
        StateWitnessErrorCode.ROOT_MISMATCH,
        `the witness is of state root ${hex(witness.root.hash)}, not ${hex(expectedRoot)}`,
        { witness: hex(witness.root.hash), expected: hex(expectedRoot) },
      );
    }
    const reached = new Set<number>();
    const pending: { ref: NodeRef; depth: number }[] = [{ ref: witness.root, depth: 0 }];
    for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
      const { ref, depth } = next;
      if (ref.id === null) continue;
      const node = witness.nodes.get(ref.id);
      if (node === undefined) continue;
      if (!hashesEqual(nodeHash(node), ref.hash)) {
        throw new StateWitnessError(
          StateWitnessErrorCode.ROOT_MISMATCH,
          `witness node ${ref.id} does not hash to what its parent holds for it`,
          { node: ref.id, depth },
        );
      }
      if (reached.has(ref.id)) continue;
      reached.add(ref.id);
      if (node.kind === 'internal') {
        if (depth >= STATE_TREE_DEPTH) malformed('the tree is deeper than 256 levels');
        pending.push({ ref: node.left, depth: depth + 1 }, { ref: node.right, depth: depth + 1 });
      }
    }
    for (const id of witness.nodes.keys()) {
      if (!reached.has(id)) malformed(`node ${id} is not under the root`, { node: id });
    }
    const valuesByKey = new Map(witness.values.map(({ key, value }) => [hex(key), value]));
    const state = new WitnessState(witness, valuesByKey);
    // Every value carried must agree with the tree, whether or not the execution reads it.
    for (const { key } of witness.values) state.get(key);
    return state;
  }

  read(id: number): StateNode {
    const node = this.witness.nodes.get(id);
    if (node === undefined) {
      throw new StateWitnessError(
        StateWitnessErrorCode.INCOMPLETE,
        `the witness does not hold state tree node ${id}`,
        { node: id },
      );
    }
    return node;
  }

  private only(height: number | undefined, what: string): void {
    if (height !== undefined && height !== this.witness.height) {
      throw new StateWitnessError(
        StateWitnessErrorCode.UNSUPPORTED,
        `a witness of height ${this.witness.height} cannot answer ${what} at height ${height}`,
        { height },
      );
    }
  }

  root(height?: number): Uint8Array {
    this.only(height, 'the state root');
    return this.witness.root.hash.slice();
  }

  keyCount(): number {
    throw new StateWitnessError(
      StateWitnessErrorCode.UNSUPPORTED,
      'a state witness does not carry the number of keys (no root commits to it)',
    );
  }

  get(key: Uint8Array, height?: number): Uint8Array | null {
    this.only(height, 'a read');
    const keyHash = stateKeyHash(key);
    const proof = proveStateKey(this, this.witness.root, keyHash);
    const id = hex(key);
    const carried = this.valuesByKey.get(id);
    const leaf =
      proof.leaf !== null && hashesEqual(proof.leaf.keyHash, keyHash) ? proof.leaf : null;
    if (leaf === null) {
      if (carried !== undefined && carried !== null) {
        throw new StateWitnessError(
          StateWitnessErrorCode.VALUE_MISMATCH,
          `the witness carries a value for key ${id}, which its tree shows absent`,
          { key: id },
        );
      }
      return null;
    }
    if (carried === undefined) {
      throw new StateWitnessError(
        StateWitnessErrorCode.INCOMPLETE,
        `the witness does not carry the value of key ${id}`,
        { key: id },
      );
    }
    if (carried === null || !hashesEqual(stateValueHash(carried), leaf.valueHash)) {
      throw new StateWitnessError(
        StateWitnessErrorCode.VALUE_MISMATCH,
        `the witness's value of key ${id} is not the one its tree holds`,
        { key: id },
      );
    }
    return carried.slice();
  }

  getWithProof(key: Uint8Array, height?: number): StateQueryResult {
    const value = this.get(key, height);
    const proof = proveStateKey(this, this.witness.root, stateKeyHash(key));
    const at = this.witness.height;
    return { height: at === 0 ? null : at, root: this.root(), key, value, proof };
  }

  computeRoot(changes: readonly StateChange[]): Uint8Array {
    return updateStateTree(
      this,
      this.witness.root,
      hashStateChanges(changes),
      WITNESS_FIRST_ID,
    ).root.hash.slice();
  }
}
