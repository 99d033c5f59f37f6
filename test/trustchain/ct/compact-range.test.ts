import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { toHex } from '../../../src/crypto/bytes.js';
import { emptyRoot, leafHash, rootFromLeafHashes } from '../../../src/crypto/merkle.js';
import {
  CtErrorCode,
  EMPTY_COMPACT_RANGE,
  appendToCompactRange,
  checkCompactRange,
  compactRangeRoot,
  type CompactRange,
} from '../../../src/trustchain/ct/index.js';

function popcount(n: number): number {
  return n
    .toString(2)
    .split('')
    .filter((bit) => bit === '1').length;
}

describe('compact range (consensus tree head)', () => {
  it('equals the RFC 9162 root of every size from 0 to 600, one leaf at a time', () => {
    const leaves: Uint8Array[] = [];
    let range: CompactRange = EMPTY_COMPACT_RANGE;
    assert.equal(toHex(compactRangeRoot(range)), toHex(emptyRoot()));
    for (let size = 1; size <= 600; size++) {
      const leaf = leafHash(randomBytes(1 + (size % 40)));
      leaves.push(leaf);
      range = appendToCompactRange(range, leaf);
      assert.equal(range.size, size);
      assert.equal(range.hashes.length, popcount(size), `hashes at size ${size}`);
      assert.equal(
        toHex(compactRangeRoot(range)),
        toHex(rootFromLeafHashes(leaves)),
        `size ${size}`,
      );
    }
  });

  it('property: any sequence of appends gives the full tree root, and leaves the input as it was', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 24 }), { maxLength: 300 }),
        (datas) => {
          const hashes = datas.map((data) => leafHash(data));
          let range: CompactRange = EMPTY_COMPACT_RANGE;
          for (const hash of hashes) {
            const before = range.hashes.map(toHex);
            const next = appendToCompactRange(range, hash);
            assert.deepEqual(range.hashes.map(toHex), before, 'append does not mutate its input');
            range = next;
          }
          assert.equal(toHex(compactRangeRoot(range)), toHex(rootFromLeafHashes(hashes)));
          checkCompactRange(range);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('refuses malformed ranges and leaves with typed errors', () => {
    const leaf = leafHash(new Uint8Array([1]));
    const code = (expected: CtErrorCode) => (error: unknown) =>
      (error as { code?: string }).code === expected;
    assert.throws(
      () => checkCompactRange({ size: 3, hashes: [leaf] }),
      code(CtErrorCode.OUT_OF_RANGE),
    );
    assert.throws(
      () => checkCompactRange({ size: -1, hashes: [] }),
      code(CtErrorCode.OUT_OF_RANGE),
    );
    assert.throws(
      () => checkCompactRange({ size: 1.5, hashes: [] }),
      code(CtErrorCode.OUT_OF_RANGE),
    );
    assert.throws(
      () => checkCompactRange({ size: 1, hashes: [new Uint8Array(31)] }),
      code(CtErrorCode.INVALID_HASH),
    );
    assert.throws(
      () => appendToCompactRange(EMPTY_COMPACT_RANGE, new Uint8Array(33)),
      code(CtErrorCode.INVALID_HASH),
    );
    assert.throws(
      () => appendToCompactRange({ size: Number.MAX_SAFE_INTEGER, hashes: [] }, leaf),
      code(CtErrorCode.OUT_OF_RANGE),
    );
  });
});
