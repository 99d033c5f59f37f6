import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fromHex, toHex } from '../../src/crypto/bytes.js';
import {
  HASH_SIZE,
  MerkleError,
  MerkleErrorCode,
  MerkleTree,
  consistencyProofFromLeafHashes,
  emptyRoot,
  inclusionPathFromLeafHashes,
  leafHash,
  nodeHash,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from '../../src/crypto/merkle.js';

interface Vectors {
  leaves: string[];
  nodeHashes: string[][];
  roots: string[];
  inclusionProofs: Array<{ index: number; size: number; proof: string[] }>;
  consistencyProofs: Array<{ oldSize: number; newSize: number; proof: string[] }>;
}

const vectors = JSON.parse(
  readFileSync(new URL('../fixtures/merkle/rfc6962-vectors.json', import.meta.url), 'utf8'),
) as Vectors;

const leaves = vectors.leaves.map(fromHex);
const leafHashes = leaves.map(leafHash);
const roots = vectors.roots.map(fromHex);
const hexes = (list: readonly Uint8Array[]): string[] => list.map(toHex);

/** Some 32-byte value that is no hash in the test trees (from transparency-dev's tests). */
const someHash = fromHex('abacaba000000000000000000000000000000000000000000060061e00123456');

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice();
  out[bit >> 3] = (out[bit >> 3] as number) ^ (1 << (bit & 7));
  return out;
}

function assertMerkleError(run: () => unknown, code: MerkleErrorCode): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof MerkleError, `expected MerkleError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

/** The k of RFC 9162 §2.1.1. */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The shape of PATH(m, D[n]) (RFC 9162 §2.1.3.1): for each proof element, leaf side first,
 * whether it is a right (R) or left (L) sibling. Two sizes with the same shape give the
 * verifier the same computation, so the same proof verifies for both: the tree size is
 * authenticated by the signed tree head, not by the proof.
 */
function pathShape(m: number, n: number): string {
  if (n <= 1) return '';
  const k = split(n);
  return m < k ? pathShape(m, k) + 'R' : pathShape(m - k, n - k) + 'L';
}

/** The shape of SUBPROOF(m, D[n], b) (RFC 9162 §2.1.4.1), in the same spirit. */
function subproofShape(m: number, n: number, complete: boolean): string {
  if (m === n) return complete ? '' : 'S';
  const k = split(n);
  return m <= k ? subproofShape(m, k, complete) + 'R' : subproofShape(m - k, n - k, false) + 'L';
}

/** Probes from transparency-dev/merkle proof/verify_test.go corruptInclusionProof. */
function corruptInclusion(index: number, size: number, proof: Uint8Array[], root: Uint8Array) {
  const probes: Array<[string, number, number, Uint8Array, Uint8Array[]]> = [
    ['index - 1', index - 1, size, root, proof],
    ['index + 1', index + 1, size, root, proof],
    ['index ^ 2', index ^ 2, size, root, proof],
    ['size * 2', index, size * 2, root, proof],
    ['size / 2', index, size / 2, root, proof],
    ['empty root', index, size, emptyRoot(), proof],
    ['random root', index, size, someHash, proof],
    ['trailing garbage', index, size, root, [...proof, new Uint8Array(0)]],
    ['trailing root', index, size, root, [...proof, root]],
    ['preceding garbage', index, size, root, [new Uint8Array(0), ...proof]],
    ['preceding root', index, size, root, [root, ...proof]],
  ];
  proof.forEach((_, i) => {
    const wrong = [...proof];
    wrong[i] = flipBit(proof[i] as Uint8Array, 3);
    probes.push([`proof[${i}] bit 3`, index, size, root, wrong]);
  });
  if (proof.length > 0) probes.push(['removed component', index, size, root, proof.slice(0, -1)]);
  if (proof.length > 1) {
    probes.push([
      'inserted component',
      index,
      size,
      root,
      [proof[0] as Uint8Array, someHash, ...proof.slice(1)],
    ]);
  }
  return probes;
}

/** Probes from transparency-dev/merkle proof/verify_test.go corruptConsistencyProof. */
function corruptConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: Uint8Array[],
) {
  const probes: Array<[string, number, number, Uint8Array, Uint8Array, Uint8Array[]]> = [
    ['oldSize - 1', oldSize - 1, newSize, oldRoot, newRoot, proof],
    ['oldSize + 1', oldSize + 1, newSize, oldRoot, newRoot, proof],
    ['oldSize ^ 2', oldSize ^ 2, newSize, oldRoot, newRoot, proof],
    ['newSize * 2', oldSize, newSize * 2, oldRoot, newRoot, proof],
    ['newSize / 2', oldSize, newSize / 2, oldRoot, newRoot, proof],
    ['wrong old root', oldSize, newSize, someHash, newRoot, proof],
    ['wrong new root', oldSize, newSize, oldRoot, someHash, proof],
    ['swapped roots', oldSize, newSize, newRoot, oldRoot, proof],
    ['empty proof', oldSize, newSize, oldRoot, newRoot, []],
    ['trailing garbage', oldSize, newSize, oldRoot, newRoot, [...proof, new Uint8Array(0)]],
    ['trailing old root', oldSize, newSize, oldRoot, newRoot, [...proof, oldRoot]],
    ['trailing new root', oldSize, newSize, oldRoot, newRoot, [...proof, newRoot]],
    ['preceding garbage', oldSize, newSize, oldRoot, newRoot, [new Uint8Array(0), ...proof]],
    ['preceding old root', oldSize, newSize, oldRoot, newRoot, [oldRoot, ...proof]],
    ['preceding new root', oldSize, newSize, oldRoot, newRoot, [newRoot, ...proof]],
    ['preceding proof[0]', oldSize, newSize, oldRoot, newRoot, [proof[0] as Uint8Array, ...proof]],
  ];
  if (proof.length > 0) {
    probes.push(['truncated proof', oldSize, newSize, oldRoot, newRoot, proof.slice(0, -1)]);
  }
  proof.forEach((_, i) => {
    const wrong = [...proof];
    wrong[i] = flipBit(proof[i] as Uint8Array, 4);
    probes.push([`proof[${i}] bit 4`, oldSize, newSize, oldRoot, newRoot, wrong]);
  });
  return probes;
}

describe('Merkle tree: RFC 6962 test vectors (transparency-dev/merkle)', () => {
  const tree = MerkleTree.fromLeafHashes(leafHashes);

  it('hashes leaves and every complete subtree as published', () => {
    assert.deepStrictEqual(hexes(leafHashes), vectors.nodeHashes[0]);
    for (let level = 1; level < vectors.nodeHashes.length; level++) {
      const below = (vectors.nodeHashes[level - 1] as string[]).map(fromHex);
      const computed = (vectors.nodeHashes[level] as string[]).map((_, i) =>
        toHex(nodeHash(below[2 * i] as Uint8Array, below[2 * i + 1] as Uint8Array)),
      );
      assert.deepStrictEqual(computed, vectors.nodeHashes[level]);
    }
  });

  it('computes the roots of sizes 0..8', () => {
    assert.equal(toHex(emptyRoot()), vectors.roots[0]);
    for (let size = 0; size <= 8; size++) {
      assert.equal(toHex(tree.root(size)), vectors.roots[size], `tree.root(${size})`);
      assert.equal(toHex(rootFromLeafHashes(leafHashes.slice(0, size))), vectors.roots[size]);
    }
  });

  it('produces and verifies the published inclusion proofs, and rejects their corruptions', () => {
    for (const { index, size, proof } of vectors.inclusionProofs) {
      const label = `inclusion ${index} in ${size}`;
      assert.deepStrictEqual(hexes(tree.inclusionProof(index, size)), proof, label);
      assert.deepStrictEqual(
        hexes(inclusionPathFromLeafHashes(index, leafHashes.slice(0, size))),
        proof,
        label,
      );
      const root = roots[size] as Uint8Array;
      const hash = leafHashes[index] as Uint8Array;
      const path = proof.map(fromHex);
      assert.ok(verifyInclusion(hash, index, size, path, root), label);
      for (const [name, i, n, r, p] of corruptInclusion(index, size, path, root)) {
        assert.equal(verifyInclusion(hash, i, n, p, r), false, `${label}: ${name}`);
      }
      assert.equal(verifyInclusion(leafHash(Uint8Array.of(1)), index, size, path, root), false);
    }
  });

  it('produces and verifies the published consistency proofs, and rejects their corruptions', () => {
    for (const { oldSize, newSize, proof } of vectors.consistencyProofs) {
      const label = `consistency ${oldSize} → ${newSize}`;
      assert.deepStrictEqual(hexes(tree.consistencyProof(oldSize, newSize)), proof, label);
      assert.deepStrictEqual(
        hexes(consistencyProofFromLeafHashes(oldSize, leafHashes.slice(0, newSize))),
        proof,
        label,
      );
      const oldRoot = roots[oldSize] as Uint8Array;
      const newRoot = roots[newSize] as Uint8Array;
      const path = proof.map(fromHex);
      assert.ok(verifyConsistency(oldSize, newSize, oldRoot, newRoot, path), label);
      if (path.length === 0) continue;
      for (const [name, m, n, r1, r2, p] of corruptConsistency(
        oldSize,
        newSize,
        oldRoot,
        newRoot,
        path,
      )) {
        assert.equal(verifyConsistency(m, n, r1, r2, p), false, `${label}: ${name}`);
      }
    }
  });

  it('handles a one-leaf tree (transparency-dev TestVerifyInclusionSingleEntry)', () => {
    const hash = leafHash(new TextEncoder().encode('data'));
    assert.ok(verifyInclusion(hash, 0, 1, [], hash), 'the leaf hash is the root');
    assert.equal(verifyInclusion(new Uint8Array(0), 0, 1, [], hash), false);
    assert.equal(verifyInclusion(hash, 0, 1, [], new Uint8Array(0)), false);
    assert.equal(verifyInclusion(new Uint8Array(0), 0, 1, [], new Uint8Array(0)), false);
  });

  it('rejects impossible index/size pairs (transparency-dev TestVerifyInclusion)', () => {
    for (const [index, size] of [
      [0, 0],
      [0, 1],
      [1, 0],
      [2, 1],
    ] as const) {
      assert.equal(verifyInclusion(someHash, index, size, [], new Uint8Array(0)), false);
      assert.equal(verifyInclusion(new Uint8Array(0), index, size, [], emptyRoot()), false);
      assert.equal(verifyInclusion(someHash, index, size, [], emptyRoot()), false);
    }
  });

  it('decides the trivial consistency cases (transparency-dev TestVerifyConsistency)', () => {
    const a = leafHash(Uint8Array.of(1));
    const b = leafHash(Uint8Array.of(2));
    const empty = emptyRoot();
    const cases: Array<[number, number, Uint8Array, Uint8Array, Uint8Array[], boolean]> = [
      [0, 0, a, b, [], false],
      [1, 1, a, b, [], false],
      [0, 0, empty, empty, [], true],
      [0, 1, empty, b, [], true],
      [1, 1, b, b, [], true],
      // Going back in time.
      [1, 0, a, b, [], false],
      [2, 1, a, b, [], false],
      // A non-trivial pair needs a proof.
      [1, 2, a, b, [], false],
      // Roots do not match.
      [0, 0, empty, b, [], false],
      [1, 1, empty, b, [], false],
      // Roots match but the proof is not empty.
      [0, 0, empty, empty, [empty], false],
      [0, 1, empty, empty, [empty], false],
      [1, 1, empty, empty, [empty], false],
      // Size 0 has exactly one root.
      [0, 1, a, b, [], false],
    ];
    for (const [m, n, r1, r2, proof, expected] of cases) {
      assert.equal(verifyConsistency(m, n, r1, r2, proof), expected, `${m} → ${n}`);
    }
  });
});

describe('Merkle tree: errors', () => {
  const tree = MerkleTree.fromLeafHashes(leafHashes.slice(0, 5));

  it('refuses hashes that are not 32 bytes', () => {
    assertMerkleError(() => tree.appendLeafHash(new Uint8Array(31)), MerkleErrorCode.INVALID_HASH);
    assertMerkleError(
      () => nodeHash(new Uint8Array(32), new Uint8Array(33)),
      MerkleErrorCode.INVALID_HASH,
    );
    assertMerkleError(
      () => rootFromLeafHashes([new Uint8Array(32), new Uint8Array(0)]),
      MerkleErrorCode.INVALID_HASH,
    );
    assertMerkleError(
      () => leafHash('data' as unknown as Uint8Array),
      MerkleErrorCode.INVALID_LEAF,
    );
    assert.equal(tree.size, 5, 'a refused append leaves the tree unchanged');
  });

  it('refuses indexes outside the tree', () => {
    for (const index of [5, -1, 1.5, NaN, Infinity]) {
      assertMerkleError(() => tree.inclusionProof(index), MerkleErrorCode.INDEX_OUT_OF_RANGE);
      assertMerkleError(() => tree.leafHashAt(index), MerkleErrorCode.INDEX_OUT_OF_RANGE);
    }
    assertMerkleError(() => tree.inclusionProof(3, 3), MerkleErrorCode.INDEX_OUT_OF_RANGE);
    assertMerkleError(
      () => inclusionPathFromLeafHashes(5, leafHashes.slice(0, 5)),
      MerkleErrorCode.INDEX_OUT_OF_RANGE,
    );
  });

  it('refuses sizes beyond the tree or in the wrong order', () => {
    assertMerkleError(() => tree.root(6), MerkleErrorCode.SIZE_OUT_OF_RANGE);
    assertMerkleError(() => tree.root(-1), MerkleErrorCode.SIZE_OUT_OF_RANGE);
    assertMerkleError(() => tree.inclusionProof(0, 6), MerkleErrorCode.SIZE_OUT_OF_RANGE);
    assertMerkleError(() => tree.consistencyProof(4, 3), MerkleErrorCode.SIZE_OUT_OF_RANGE);
    assertMerkleError(() => tree.consistencyProof(2, 6), MerkleErrorCode.SIZE_OUT_OF_RANGE);
    assertMerkleError(
      () => consistencyProofFromLeafHashes(6, leafHashes.slice(0, 5)),
      MerkleErrorCode.SIZE_OUT_OF_RANGE,
    );
  });

  it('returns copies, so callers cannot alter the tree', () => {
    const root = tree.root();
    const before = toHex(root);
    root.fill(0);
    tree.leafHashAt(0).fill(0);
    tree.inclusionProof(0).forEach((hash) => hash.fill(0));
    assert.equal(toHex(tree.root()), before);
    assert.equal(toHex(tree.leafHashAt(0)), toHex(leafHashes[0] as Uint8Array));
  });

  it('verifiers return false, never throw, for any malformed input', () => {
    const verifyInclusionLoose = verifyInclusion as (...args: unknown[]) => boolean;
    const verifyConsistencyLoose = verifyConsistency as (...args: unknown[]) => boolean;
    const hash = fc.oneof(fc.constant(someHash), fc.uint8Array({ maxLength: 40 }), fc.anything());
    const count = fc.oneof(fc.nat(20), fc.double(), fc.bigInt(), fc.anything());
    const proof = fc.oneof(fc.array(hash, { maxLength: 6 }), fc.anything());
    fc.assert(
      fc.property(hash, count, count, proof, hash, (a, b, c, d, e) => {
        assert.equal(typeof verifyInclusionLoose(a, b, c, d, e), 'boolean');
        assert.equal(typeof verifyConsistencyLoose(b, c, a, e, d), 'boolean');
      }),
      { numRuns: 2000 },
    );
    assert.equal(verifyInclusionLoose(), false);
    assert.equal(verifyConsistencyLoose(), false);
  });
});

describe('Merkle tree: properties', () => {
  const capacity = 2048;
  const hashes = Array.from({ length: capacity }, (_, i) =>
    leafHash(new TextEncoder().encode(`entry ${i}`)),
  );
  const tree = MerkleTree.fromLeafHashes(hashes);

  it('matches the literal RFC 9162 definitions for every index and size up to 64', () => {
    for (let size = 1; size <= 64; size++) {
      const prefix = hashes.slice(0, size);
      assert.deepStrictEqual(tree.root(size), rootFromLeafHashes(prefix), `root(${size})`);
      for (let index = 0; index < size; index++) {
        assert.deepStrictEqual(
          tree.inclusionProof(index, size),
          inclusionPathFromLeafHashes(index, prefix),
          `PATH(${index}, ${size})`,
        );
      }
      for (let oldSize = 0; oldSize <= size; oldSize++) {
        assert.deepStrictEqual(
          tree.consistencyProof(oldSize, size),
          consistencyProofFromLeafHashes(oldSize, prefix),
          `PROOF(${oldSize}, ${size})`,
        );
      }
    }
  });

  it('keeps earlier roots while growing, one append at a time', () => {
    const growing = new MerkleTree();
    const seen: Uint8Array[] = [growing.root()];
    for (let i = 0; i < 300; i++) {
      assert.equal(growing.appendLeafHash(hashes[i] as Uint8Array), i);
      seen.push(growing.root());
      const probe = (i * 7919) % seen.length;
      assert.deepStrictEqual(growing.root(probe), seen[probe]);
    }
    assert.deepStrictEqual(growing.root(), rootFromLeafHashes(hashes.slice(0, 300)));
  });

  const indexInSize = fc
    .integer({ min: 1, max: capacity })
    .chain((size) => fc.tuple(fc.nat(size - 1), fc.constant(size)));
  const sizePair = fc
    .integer({ min: 2, max: capacity })
    .chain((newSize) => fc.tuple(fc.integer({ min: 1, max: newSize - 1 }), fc.constant(newSize)));

  it('generated inclusion proofs verify, and equal the RFC definition', () => {
    fc.assert(
      fc.property(indexInSize, ([index, size]) => {
        const proof = tree.inclusionProof(index, size);
        assert.ok(
          verifyInclusion(hashes[index] as Uint8Array, index, size, proof, tree.root(size)),
          `inclusion of ${index} in ${size}`,
        );
        assert.deepStrictEqual(proof, inclusionPathFromLeafHashes(index, hashes.slice(0, size)));
      }),
      { numRuns: 200 },
    );
  });

  it('generated consistency proofs verify, and equal the RFC definition', () => {
    fc.assert(
      fc.property(sizePair, ([oldSize, newSize]) => {
        const proof = tree.consistencyProof(oldSize, newSize);
        assert.ok(
          verifyConsistency(oldSize, newSize, tree.root(oldSize), tree.root(newSize), proof),
          `consistency ${oldSize} → ${newSize}`,
        );
        assert.deepStrictEqual(
          proof,
          consistencyProofFromLeafHashes(oldSize, hashes.slice(0, newSize)),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('any single-bit change in an inclusion proof, root, leaf or index fails', () => {
    fc.assert(
      fc.property(indexInSize, fc.nat(), fc.nat(), ([index, size], which, bit) => {
        const leaf = hashes[index] as Uint8Array;
        const proof = tree.inclusionProof(index, size);
        const root = tree.root(size);
        const bits = HASH_SIZE * 8;
        if (proof.length > 0) {
          const at = which % proof.length;
          const tampered = [...proof];
          tampered[at] = flipBit(proof[at] as Uint8Array, bit % bits);
          assert.equal(verifyInclusion(leaf, index, size, tampered, root), false, 'proof');
        }
        assert.equal(verifyInclusion(leaf, index, size, proof, flipBit(root, bit % bits)), false);
        assert.equal(verifyInclusion(flipBit(leaf, bit % bits), index, size, proof, root), false);
        const otherIndex = index ^ (1 << (bit % 12));
        assert.equal(verifyInclusion(leaf, otherIndex, size, proof, root), false, 'index');
      }),
      { numRuns: 500 },
    );
  });

  it('a single-bit change in the size fails unless both sizes give the same proof shape', () => {
    let accepted = 0;
    let rejected = 0;
    fc.assert(
      fc.property(indexInSize, fc.nat(12), ([index, size], bit) => {
        const otherSize = size ^ (1 << bit);
        const proof = tree.inclusionProof(index, size);
        const sameShape =
          index < otherSize && pathShape(index, otherSize) === pathShape(index, size);
        const verdict = verifyInclusion(
          hashes[index] as Uint8Array,
          index,
          otherSize,
          proof,
          tree.root(size),
        );
        assert.equal(verdict, sameShape, `index ${index}, size ${size} → ${otherSize}`);
        if (verdict) accepted++;
        else rejected++;
      }),
      { numRuns: 500 },
    );
    assert.ok(rejected > 0 && accepted > 0, `accepted ${accepted}, rejected ${rejected}`);
  });

  it('any single-bit change in a consistency proof or either root fails', () => {
    fc.assert(
      fc.property(sizePair, fc.nat(), fc.nat(), ([oldSize, newSize], which, bit) => {
        const proof = tree.consistencyProof(oldSize, newSize);
        const oldRoot = tree.root(oldSize);
        const newRoot = tree.root(newSize);
        const bits = HASH_SIZE * 8;
        const at = which % proof.length;
        const tampered = [...proof];
        tampered[at] = flipBit(proof[at] as Uint8Array, bit % bits);
        assert.equal(verifyConsistency(oldSize, newSize, oldRoot, newRoot, tampered), false);
        const badOld = flipBit(oldRoot, bit % bits);
        assert.equal(verifyConsistency(oldSize, newSize, badOld, newRoot, proof), false);
        const badNew = flipBit(newRoot, bit % bits);
        assert.equal(verifyConsistency(oldSize, newSize, oldRoot, badNew, proof), false);
      }),
      { numRuns: 500 },
    );
  });

  it('a single-bit change in either size fails unless the proof shape is the same', () => {
    fc.assert(
      fc.property(sizePair, fc.nat(12), fc.boolean(), ([oldSize, newSize], bit, changeOld) => {
        const proof = tree.consistencyProof(oldSize, newSize);
        const m = changeOld ? oldSize ^ (1 << bit) : oldSize;
        const n = changeOld ? newSize : newSize ^ (1 << bit);
        const sameShape =
          m > 0 && m < n && subproofShape(m, n, true) === subproofShape(oldSize, newSize, true);
        const verdict = verifyConsistency(m, n, tree.root(oldSize), tree.root(newSize), proof);
        assert.equal(verdict, sameShape, `${oldSize} → ${newSize} changed to ${m} → ${n}`);
      }),
      { numRuns: 500 },
    );
  });

  it('serves 100,000 leaves with proofs that match the RFC definition', () => {
    const size = 100_000;
    const big = new MerkleTree();
    const data = new Uint8Array(8);
    const view = new DataView(data.buffer);
    for (let i = 0; i < size; i++) {
      view.setUint32(0, i);
      big.appendLeaf(data);
    }
    assert.equal(big.size, size);
    const all = Array.from({ length: size }, (_, i) => big.leafHashAt(i));
    assert.deepStrictEqual(big.root(), rootFromLeafHashes(all));
    for (const [index, treeSize] of [
      [0, size],
      [size - 1, size],
      [65_535, 65_537],
      [77_777, 99_999],
    ] as const) {
      const proof = big.inclusionProof(index, treeSize);
      assert.deepStrictEqual(proof, inclusionPathFromLeafHashes(index, all.slice(0, treeSize)));
      assert.ok(
        verifyInclusion(all[index] as Uint8Array, index, treeSize, proof, big.root(treeSize)),
        `inclusion of ${index} in ${treeSize}`,
      );
    }
    for (const [oldSize, newSize] of [
      [65_536, size],
      [12_345, 98_765],
    ] as const) {
      const proof = big.consistencyProof(oldSize, newSize);
      assert.deepStrictEqual(proof, consistencyProofFromLeafHashes(oldSize, all.slice(0, newSize)));
      assert.ok(
        verifyConsistency(oldSize, newSize, big.root(oldSize), big.root(newSize), proof),
        `consistency ${oldSize} → ${newSize}`,
      );
    }
  });
});
