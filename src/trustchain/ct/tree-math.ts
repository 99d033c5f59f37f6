import { emptyRoot, nodeHash } from '../../crypto/merkle.js';

/**
 * RFC 9162 §2.1 roots and proofs computed from stored complete-subtree hashes, so any root or
 * proof at any earlier size costs O(log n) reads instead of a rebuild. `read(level, index)` is
 * the root of leaves [index·2^level, (index+1)·2^level) — a complete subtree that exists in
 * every tree of size ≥ (index+1)·2^level. The algorithms are those of `MerkleTree` in
 * src/crypto/merkle.ts (which keeps the same hashes in memory), over a reader instead.
 */
export type SubtreeReader = (level: number, index: number) => Uint8Array;

/** Number of complete subtrees stored at `level` for a tree of `size` leaves. */
export function levelWidth(size: number, level: number): number {
  return Math.floor(size / 2 ** level);
}

/** The k of RFC 9162 §2.1.1: the largest power of two smaller than n (n > 1). */
function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function log2Floor(n: number): number {
  let level = 0;
  while (2 ** (level + 1) <= n) level++;
  return level;
}

/**
 * MTH of leaves [start, end), where start is a multiple of the largest power of two not above
 * end - start (true of every subtree RFC 9162's recursion visits). The range splits into
 * complete stored subtrees of decreasing size, folded right to left as the recursion does.
 */
export function rangeRoot(read: SubtreeReader, start: number, end: number): Uint8Array {
  const parts: Uint8Array[] = [];
  let offset = start;
  while (offset < end) {
    const level = log2Floor(end - offset);
    const width = 2 ** level;
    parts.push(read(level, offset / width));
    offset += width;
  }
  let hash = parts[parts.length - 1] as Uint8Array;
  for (let i = parts.length - 2; i >= 0; i--) hash = nodeHash(parts[i] as Uint8Array, hash);
  return hash;
}

/** MTH(D[size]); the empty tree's root is SHA-256() (RFC 9162 §2.1.1). */
export function rootAt(read: SubtreeReader, size: number): Uint8Array {
  return size === 0 ? emptyRoot() : rangeRoot(read, 0, size);
}

/** PATH(index, D[size]) of RFC 9162 §2.1.3.1, leaf-side sibling first. Needs index < size. */
export function inclusionPath(read: SubtreeReader, index: number, size: number): Uint8Array[] {
  const path: Uint8Array[] = [];
  let start = 0;
  let end = size;
  while (end - start > 1) {
    const k = largestPowerOfTwoBelow(end - start);
    if (index < start + k) {
      path.push(rangeRoot(read, start + k, end));
      end = start + k;
    } else {
      path.push(rangeRoot(read, start, start + k));
      start += k;
    }
  }
  return path.reverse();
}

/** PROOF(first, D[second]) of RFC 9162 §2.1.4.1; empty when first is 0 or second. */
export function consistencyPath(read: SubtreeReader, first: number, second: number): Uint8Array[] {
  if (first === 0 || first === second) return [];
  const proof: Uint8Array[] = [];
  let start = 0;
  let end = second;
  let complete = true;
  while (end !== first) {
    const k = largestPowerOfTwoBelow(end - start);
    if (first <= start + k) {
      proof.push(rangeRoot(read, start + k, end));
      end = start + k;
    } else {
      proof.push(rangeRoot(read, start, start + k));
      start += k;
      complete = false;
    }
  }
  if (!complete) proof.push(rangeRoot(read, start, end));
  return proof.reverse();
}
