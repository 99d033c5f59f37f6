import { HASH_SIZE, emptyRoot, nodeHash } from '../../crypto/merkle.js';
import { CtError, CtErrorCode } from './errors.js';

/**
 * The compact range [0, size) of an RFC 9162 §2.1 Merkle tree: the roots of the complete
 * subtrees along the tree's right edge, one per set bit of `size`, largest (leftmost) first —
 * the same decomposition `MTH` uses when it splits at the largest power of two below n. It is
 * all one needs to append leaves and compute the root: O(log n) hashes, so it fits in consensus
 * state (the `ca` module's tree head, docs/ct.md "Quorum-signed tree head").
 */
export interface CompactRange {
  readonly size: number;
  /** Subtree roots, largest first; `hashes.length` is the number of set bits of `size`. */
  readonly hashes: readonly Uint8Array[];
}

export const EMPTY_COMPACT_RANGE: CompactRange = Object.freeze({ size: 0, hashes: [] });

function popcount(n: number): number {
  let count = 0;
  for (let rest = n; rest > 0; rest = Math.floor(rest / 2)) count += rest % 2;
  return count;
}

/** Throws `OUT_OF_RANGE` / `INVALID_HASH` unless `range` is well formed. */
export function checkCompactRange(range: CompactRange): CompactRange {
  if (!Number.isSafeInteger(range.size) || range.size < 0) {
    throw new CtError(
      CtErrorCode.OUT_OF_RANGE,
      'compact range size must be a non-negative integer',
    );
  }
  const expected = popcount(range.size);
  if (range.hashes.length !== expected) {
    throw new CtError(
      CtErrorCode.OUT_OF_RANGE,
      `a compact range of size ${range.size} has ${expected} hashes, not ${range.hashes.length}`,
    );
  }
  range.hashes.forEach((hash, i) => {
    if (!(hash instanceof Uint8Array) || hash.length !== HASH_SIZE) {
      throw new CtError(CtErrorCode.INVALID_HASH, `compact range hash ${i} is not 32 bytes`);
    }
  });
  return range;
}

/**
 * Appends one leaf hash (`leafHash(MerkleTreeLeaf)`): the new leaf merges with the right-edge
 * subtrees of equal size, one per trailing one bit of `size` (the binary counter's carries).
 */
export function appendToCompactRange(range: CompactRange, leaf: Uint8Array): CompactRange {
  if (!(leaf instanceof Uint8Array) || leaf.length !== HASH_SIZE) {
    throw new CtError(CtErrorCode.INVALID_HASH, 'leaf hash must be 32 bytes');
  }
  if (range.size >= Number.MAX_SAFE_INTEGER) {
    throw new CtError(CtErrorCode.OUT_OF_RANGE, 'compact range is full');
  }
  const hashes = [...range.hashes];
  let carry = leaf;
  for (let bits = range.size; bits % 2 === 1; bits = Math.floor(bits / 2)) {
    carry = nodeHash(hashes.pop() as Uint8Array, carry);
  }
  hashes.push(carry);
  return { size: range.size + 1, hashes };
}

/** MTH(D[size]): the subtree roots folded right to left; SHA-256() for the empty tree. */
export function compactRangeRoot(range: CompactRange): Uint8Array {
  const { hashes } = range;
  if (hashes.length === 0) return emptyRoot();
  let root = hashes[hashes.length - 1] as Uint8Array;
  for (let i = hashes.length - 2; i >= 0; i--) root = nodeHash(hashes[i] as Uint8Array, root);
  return root.slice();
}
