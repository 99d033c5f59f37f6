import * as nodeCrypto from 'node:crypto';
import { HyperMeshError } from '../codec/error.js';
import { bytesEqual } from './bytes.js';

/**
 * The Merkle Tree Hash of RFC 9162 §2.1 (unchanged from RFC 6962 §2.1) over SHA-256, with
 * inclusion and consistency proofs and their verifiers. The CT log and batch signatures
 * (one FALCON signature over a root, one inclusion proof per item) are built on it.
 */
export enum MerkleErrorCode {
  INVALID_HASH = 'MERKLE_INVALID_HASH',
  INVALID_LEAF = 'MERKLE_INVALID_LEAF',
  INDEX_OUT_OF_RANGE = 'MERKLE_INDEX_OUT_OF_RANGE',
  SIZE_OUT_OF_RANGE = 'MERKLE_SIZE_OUT_OF_RANGE',
}

export class MerkleError extends HyperMeshError<MerkleErrorCode> {}

export const HASH_SIZE = 32;

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

/** One-shot `crypto.hash` (Node ≥ 20.12) is about twice as fast as `createHash` for 65 bytes. */
const sha256: (data: Uint8Array) => Uint8Array =
  typeof nodeCrypto.hash === 'function'
    ? (data) => new Uint8Array(nodeCrypto.hash('sha256', data, 'buffer'))
    : (data) => new Uint8Array(nodeCrypto.createHash('sha256').update(data).digest());

/** MTH({}) = SHA-256() (RFC 9162 §2.1.1). */
const EMPTY_ROOT = sha256(new Uint8Array(0));

/** Scratch input for interior nodes; hashing is synchronous, so one buffer suffices. */
const nodeInput = new Uint8Array(1 + 2 * HASH_SIZE);
nodeInput[0] = NODE_PREFIX;

function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_SIZE);
  return sha256(nodeInput);
}

/** The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1). */
export function emptyRoot(): Uint8Array {
  return EMPTY_ROOT.slice();
}

/** MTH({d}) = HASH(0x00 || d): the hash of one log entry (RFC 9162 §2.1.1). */
export function leafHash(data: Uint8Array): Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw new MerkleError(
      MerkleErrorCode.INVALID_LEAF,
      `leaf data must be a Uint8Array, got ${data === null ? 'null' : typeof data}`,
    );
  }
  const input = new Uint8Array(1 + data.length);
  input[0] = LEAF_PREFIX;
  input.set(data, 1);
  return sha256(input);
}

/** HASH(0x01 || left || right): an interior node (RFC 9162 §2.1.1). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  requireHash(left, 'left');
  requireHash(right, 'right');
  return hashChildren(left, right);
}

/**
 * MTH(D[n]) over leaf hashes, by the recursive definition of RFC 9162 §2.1.1: split at the
 * largest power of two smaller than n. O(n) hashing.
 */
export function rootFromLeafHashes(leafHashes: readonly Uint8Array[]): Uint8Array {
  leafHashes.forEach((hash, i) => requireHash(hash, `leafHashes[${i}]`));
  if (leafHashes.length === 0) return emptyRoot();
  return subtreeRoot(leafHashes, 0, leafHashes.length).slice();
}

/**
 * PATH(m, D[n]) of RFC 9162 §2.1.3.1 over leaf hashes, computed literally from the
 * definition (O(n)); `MerkleTree.inclusionProof` gives the same result in O(log n).
 */
export function inclusionPathFromLeafHashes(
  index: number,
  leafHashes: readonly Uint8Array[],
): Uint8Array[] {
  leafHashes.forEach((hash, i) => requireHash(hash, `leafHashes[${i}]`));
  requireCount(index, 'index', MerkleErrorCode.INDEX_OUT_OF_RANGE);
  if (index >= leafHashes.length) {
    throw new MerkleError(
      MerkleErrorCode.INDEX_OUT_OF_RANGE,
      `leaf index ${index} is not in a tree of size ${leafHashes.length}`,
      { index, size: leafHashes.length },
    );
  }
  const path = (m: number, start: number, end: number): Uint8Array[] => {
    if (end - start <= 1) return [];
    const k = largestPowerOfTwoBelow(end - start);
    return m < k
      ? [...path(m, start, start + k), subtreeRoot(leafHashes, start + k, end)]
      : [...path(m - k, start + k, end), subtreeRoot(leafHashes, start, start + k)];
  };
  return path(index, 0, leafHashes.length).map((hash) => hash.slice());
}

/**
 * PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 9162 §2.1.4.1 over leaf hashes, computed
 * literally from the definition (O(n)). The RFC defines it for 0 < m < n; for m = 0 and m = n
 * the proof is empty (the empty tree and the tree itself are trivially prefixes).
 */
export function consistencyProofFromLeafHashes(
  oldSize: number,
  leafHashes: readonly Uint8Array[],
): Uint8Array[] {
  leafHashes.forEach((hash, i) => requireHash(hash, `leafHashes[${i}]`));
  requireSizes(oldSize, leafHashes.length, leafHashes.length);
  if (oldSize === 0 || oldSize === leafHashes.length) return [];
  const subproof = (m: number, start: number, end: number, complete: boolean): Uint8Array[] => {
    if (m === end - start) return complete ? [] : [subtreeRoot(leafHashes, start, end)];
    const k = largestPowerOfTwoBelow(end - start);
    return m <= k
      ? [...subproof(m, start, start + k, complete), subtreeRoot(leafHashes, start + k, end)]
      : [...subproof(m - k, start + k, end, false), subtreeRoot(leafHashes, start, start + k)];
  };
  return subproof(oldSize, 0, leafHashes.length, true).map((hash) => hash.slice());
}

function subtreeRoot(leafHashes: readonly Uint8Array[], start: number, end: number): Uint8Array {
  if (end - start === 1) return leafHashes[start] as Uint8Array;
  const k = largestPowerOfTwoBelow(end - start);
  return hashChildren(
    subtreeRoot(leafHashes, start, start + k),
    subtreeRoot(leafHashes, start + k, end),
  );
}

/** Hashes of one tree level, packed into one growable buffer (32 bytes per hash). */
class HashLevel {
  private bytes = new Uint8Array(HASH_SIZE * 64);
  length = 0;

  push(hash: Uint8Array): void {
    const offset = this.length * HASH_SIZE;
    if (offset + HASH_SIZE > this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2);
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes.set(hash, offset);
    this.length++;
  }

  /** A view of hash `i`; it must not escape to callers, who get copies. */
  at(i: number): Uint8Array {
    return this.bytes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
  }
}

/**
 * An append-only Merkle tree that keeps the hash of every complete subtree, level by level:
 * `levels[h][i]` is the root of leaves [i·2^h, (i+1)·2^h). These are the hashes a
 * transparency log stores in its tiles (and the ones Go's `tlog.StoredHashes` keeps), about
 * 2n hashes for n leaves. Every subtree that RFC 9162's recursion visits starts at a multiple
 * of its largest power-of-two part, so any root, path or proof for any earlier size reads
 * O(log n) stored hashes and hashes O(log n) new nodes. Appending is O(1) amortized hashing.
 */
export class MerkleTree {
  private readonly levels: HashLevel[] = [new HashLevel()];

  /** A tree holding `leafHashes` in order. */
  static fromLeafHashes(leafHashes: Iterable<Uint8Array>): MerkleTree {
    const tree = new MerkleTree();
    for (const hash of leafHashes) tree.appendLeafHash(hash);
    return tree;
  }

  get size(): number {
    return (this.levels[0] as HashLevel).length;
  }

  /** Appends HASH(0x00 || data) and returns the new leaf's index. */
  appendLeaf(data: Uint8Array): number {
    return this.appendLeafHash(leafHash(data));
  }

  /** Appends an already computed leaf hash and returns its index. */
  appendLeafHash(hash: Uint8Array): number {
    requireHash(hash, 'leaf hash');
    const index = this.size;
    let node = hash;
    // Each trailing 1 bit of the new size's predecessor closes one complete subtree.
    for (let level = 0; ; level++) {
      const row = this.levelAt(level);
      row.push(node);
      if (row.length % 2 === 1) break;
      node = hashChildren(row.at(row.length - 2), row.at(row.length - 1));
    }
    return index;
  }

  /** The hash of leaf `index`. */
  leafHashAt(index: number): Uint8Array {
    this.requireIndex(index, this.size);
    return (this.levels[0] as HashLevel).at(index).slice();
  }

  /** MTH of the first `size` leaves (default: all of them). */
  root(size: number = this.size): Uint8Array {
    requireSizes(size, size, this.size);
    return size === 0 ? emptyRoot() : subtreeRangeRoot(this.reader, 0, size).slice();
  }

  /** PATH(index, D[size]) of RFC 9162 §2.1.3.1, leaf-side sibling first. */
  inclusionProof(index: number, size: number = this.size): Uint8Array[] {
    requireSizes(size, size, this.size);
    this.requireIndex(index, size);
    return inclusionPathFromSubtrees(this.reader, index, size).map((hash) => hash.slice());
  }

  /** PROOF(oldSize, D[newSize]) of RFC 9162 §2.1.4.1; empty when oldSize is 0 or newSize. */
  consistencyProof(oldSize: number, newSize: number = this.size): Uint8Array[] {
    requireSizes(oldSize, newSize, this.size);
    return consistencyPathFromSubtrees(this.reader, oldSize, newSize).map((hash) => hash.slice());
  }

  private levelAt(level: number): HashLevel {
    let row = this.levels[level];
    if (row === undefined) {
      row = new HashLevel();
      this.levels.push(row);
    }
    return row;
  }

  /** Stored subtree `index` of `level` (a view); the recursion only asks for stored ones. */
  private readonly reader: SubtreeReader = (level, index) => {
    const row = this.levels[level];
    if (row === undefined || !Number.isInteger(index) || index >= row.length) {
      const width = 2 ** level;
      throw new Error(
        `MerkleTree invariant broken: no stored subtree [${index * width}, ${(index + 1) * width})`,
      );
    }
    return row.at(index);
  };

  private requireIndex(index: number, size: number): void {
    requireCount(index, 'index', MerkleErrorCode.INDEX_OUT_OF_RANGE);
    if (index >= size) {
      throw new MerkleError(
        MerkleErrorCode.INDEX_OUT_OF_RANGE,
        `leaf index ${index} is not in a tree of size ${size}`,
        { index, size },
      );
    }
  }
}

/**
 * Verifies an inclusion proof exactly as RFC 9162 §2.1.3.2 describes. Returns false (never
 * throws) for any malformed input: wrong hash lengths, non-integer or out-of-range index or
 * size, a proof that is too short or too long.
 */
export function verifyInclusion(
  leaf: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!isHash(leaf) || !isHash(root) || !isCount(index) || !isCount(size)) return false;
  if (!Array.isArray(proof) || !proof.every(isHash)) return false;
  // 1. leaf_index must be below tree_size.
  if (index >= size) return false;
  // 2–3.
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  // 4.
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 5.
  return sn === 0 && bytesEqual(r, root);
}

/**
 * Verifies a consistency proof exactly as RFC 9162 §2.1.4.2 describes, for 0 < oldSize <
 * newSize. The RFC defines no proof outside that range; here the trivial cases need an empty
 * proof: oldSize = 0 needs oldRoot = MTH({}), and oldSize = newSize needs equal roots.
 * Returns false (never throws) for any malformed input.
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!isCount(oldSize) || !isCount(newSize) || !isHash(oldRoot) || !isHash(newRoot)) return false;
  if (!Array.isArray(proof) || !proof.every(isHash)) return false;
  if (oldSize > newSize) return false;
  if (oldSize === 0) {
    return (
      proof.length === 0 &&
      bytesEqual(oldRoot, EMPTY_ROOT) &&
      (newSize > 0 || bytesEqual(newRoot, EMPTY_ROOT))
    );
  }
  if (oldSize === newSize) return proof.length === 0 && bytesEqual(oldRoot, newRoot);
  // 1.
  if (proof.length === 0) return false;
  // 2.
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof;
  // 3.
  let fn = oldSize - 1;
  let sn = newSize - 1;
  // 4.
  while (fn % 2 === 1) {
    fn = half(fn);
    sn = half(sn);
  }
  // 5.
  let fr = path[0] as Uint8Array;
  let sr = fr;
  // 6.
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 7.
  return bytesEqual(fr, oldRoot) && bytesEqual(sr, newRoot) && sn === 0;
}

/**
 * RFC 9162 §2.1 roots and proofs from stored complete-subtree hashes — those `MerkleTree` keeps
 * in memory and a transparency log keeps in its tiles — so any root or proof at any earlier size
 * reads O(log n) of them. `read(level, index)` is the root of leaves
 * [index·2^level, (index+1)·2^level), a complete subtree of every tree of size ≥ (index+1)·2^level.
 */
export type SubtreeReader = (level: number, index: number) => Uint8Array;

/**
 * MTH of leaves [start, end), where start is a multiple of the largest power of two not above
 * end - start (true of every subtree RFC 9162's recursion visits). The range splits into
 * complete stored subtrees of decreasing size, folded right to left as the recursion does.
 */
export function subtreeRangeRoot(read: SubtreeReader, start: number, end: number): Uint8Array {
  const parts: Uint8Array[] = [];
  let offset = start;
  while (offset < end) {
    let level = 0;
    while (2 ** (level + 1) <= end - offset) level++;
    const width = 2 ** level;
    parts.push(read(level, offset / width));
    offset += width;
  }
  let hash = parts[parts.length - 1] as Uint8Array;
  for (let i = parts.length - 2; i >= 0; i--) hash = nodeHash(parts[i] as Uint8Array, hash);
  return hash;
}

/** PATH(index, D[size]) of RFC 9162 §2.1.3.1 from stored subtrees, leaf-side sibling first. Needs index < size. */
export function inclusionPathFromSubtrees(
  read: SubtreeReader,
  index: number,
  size: number,
): Uint8Array[] {
  const path: Uint8Array[] = [];
  let start = 0;
  let end = size;
  while (end - start > 1) {
    const k = largestPowerOfTwoBelow(end - start);
    if (index < start + k) {
      path.push(subtreeRangeRoot(read, start + k, end));
      end = start + k;
    } else {
      path.push(subtreeRangeRoot(read, start, start + k));
      start += k;
    }
  }
  return path.reverse();
}

/** PROOF(first, D[second]) of RFC 9162 §2.1.4.1 from stored subtrees; empty when first is 0 or second. */
export function consistencyPathFromSubtrees(
  read: SubtreeReader,
  first: number,
  second: number,
): Uint8Array[] {
  if (first === 0 || first === second) return [];
  const proof: Uint8Array[] = [];
  let start = 0;
  let end = second;
  let complete = true;
  while (end !== first) {
    const k = largestPowerOfTwoBelow(end - start);
    if (first <= start + k) {
      proof.push(subtreeRangeRoot(read, start + k, end));
      end = start + k;
    } else {
      proof.push(subtreeRangeRoot(read, start, start + k));
      start += k;
      complete = false;
    }
  }
  if (!complete) proof.push(subtreeRangeRoot(read, start, end));
  return proof.reverse();
}

/** Right shift by one for any safe integer (`>>` would truncate to 32 bits). */
function half(n: number): number {
  return Math.floor(n / 2);
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && largestPowerOfTwoAtMost(n) === n;
}

function largestPowerOfTwoAtMost(n: number): number {
  let k = 1;
  while (k * 2 <= n) k *= 2;
  return k;
}

/** The k of RFC 9162 §2.1.1: the largest power of two smaller than n (n > 1). */
function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isHash(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length === HASH_SIZE;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function requireHash(value: unknown, name: string): asserts value is Uint8Array {
  if (!isHash(value)) {
    const got = value instanceof Uint8Array ? `${value.length} bytes` : typeof value;
    throw new MerkleError(
      MerkleErrorCode.INVALID_HASH,
      `${name} must be a ${HASH_SIZE}-byte hash, got ${got}`,
      { name },
    );
  }
}

function requireCount(
  value: unknown,
  name: string,
  code: MerkleErrorCode,
): asserts value is number {
  if (!isCount(value)) {
    throw new MerkleError(
      code,
      `${name} must be a non-negative safe integer, got ${String(value)}`,
      {
        name,
      },
    );
  }
}

/** 0 ≤ oldSize ≤ newSize ≤ available. */
function requireSizes(oldSize: number, newSize: number, available: number): void {
  requireCount(oldSize, 'size', MerkleErrorCode.SIZE_OUT_OF_RANGE);
  requireCount(newSize, 'size', MerkleErrorCode.SIZE_OUT_OF_RANGE);
  if (oldSize > newSize || newSize > available) {
    throw new MerkleError(
      MerkleErrorCode.SIZE_OUT_OF_RANGE,
      oldSize > newSize
        ? `old size ${oldSize} is larger than new size ${newSize}`
        : `size ${newSize} exceeds the tree's ${available} leaves`,
      { oldSize, newSize, available },
    );
  }
}
