import {
  consistencyPathFromSubtrees,
  emptyRoot,
  inclusionPathFromSubtrees,
  subtreeRangeRoot,
  type SubtreeReader,
} from '../../crypto/merkle.js';

/**
 * RFC 9162 §2.1 roots and proofs computed from the log's stored complete-subtree hashes (its
 * tiles), so any root or proof at any earlier size costs O(log n) reads instead of a rebuild.
 * The algorithms are src/crypto/merkle.ts's, which `MerkleTree` runs over the same hashes in
 * memory; `read(level, index)` is the root of leaves [index·2^level, (index+1)·2^level).
 */
export type { SubtreeReader };

/** Number of complete subtrees stored at `level` for a tree of `size` leaves. */
export function levelWidth(size: number, level: number): number {
  return Math.floor(size / 2 ** level);
}

/** MTH(D[size]); the empty tree's root is SHA-256() (RFC 9162 §2.1.1). */
export function rootAt(read: SubtreeReader, size: number): Uint8Array {
  return size === 0 ? emptyRoot() : subtreeRangeRoot(read, 0, size);
}

/** PATH(index, D[size]) of RFC 9162 §2.1.3.1, leaf-side sibling first. Needs index < size. */
export const inclusionPath = inclusionPathFromSubtrees;

/** PROOF(first, D[second]) of RFC 9162 §2.1.4.1; empty when first is 0 or second. */
export const consistencyPath = consistencyPathFromSubtrees;
