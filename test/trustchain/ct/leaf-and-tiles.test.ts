import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { toHex } from '../../../src/crypto/bytes.js';
import {
  CtError,
  CtErrorCode,
  MAX_LEAF_BYTES,
  TILE_WIDTH,
  decodeMerkleTreeLeaf,
  encodeCertificateChain,
  encodeMerkleTreeLeaf,
  encodePrecertChainEntry,
  formatTilePath,
  parseTilePath,
  type TimestampedEntry,
} from '../../../src/trustchain/ct/index.js';

function invalid(fn: () => unknown): void {
  assert.throws(
    fn,
    (error: unknown) => error instanceof CtError && error.code === CtErrorCode.INVALID_ENTRY,
  );
}

describe('MerkleTreeLeaf (RFC 6962 §3.4)', () => {
  it('encodes the exact TLS layout', () => {
    const leaf = encodeMerkleTreeLeaf({
      timestamp: 0x0102030405,
      entry: { type: 'x509', certificate: Uint8Array.of(0xaa, 0xbb) },
    });
    // version 0, leaf_type 0, uint64 timestamp, entry_type 0 (uint16), uint24 length + cert, uint16 extensions length.
    assert.equal(toHex(leaf), '0000' + '0000000102030405' + '0000' + '000002aabb' + '0000');
    const pre = encodeMerkleTreeLeaf({
      timestamp: 1,
      entry: {
        type: 'precert',
        issuerKeyHash: new Uint8Array(32).fill(7),
        tbsCertificate: Uint8Array.of(0x30),
      },
      extensions: Uint8Array.of(9),
    });
    assert.equal(
      toHex(pre),
      '0000' + '0000000000000001' + '0001' + '07'.repeat(32) + '00000130' + '000109',
    );
    assert.equal(
      toHex(encodeCertificateChain([Uint8Array.of(1), Uint8Array.of(2, 3)])),
      '000009' + '00000101' + '0000020203',
    );
    assert.equal(toHex(encodePrecertChainEntry(Uint8Array.of(5), [])), '00000105' + '000000');
  });

  it('round-trips any valid entry (property)', () => {
    const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
    const entry: fc.Arbitrary<TimestampedEntry> = fc.record({
      timestamp: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      entry: fc.oneof(
        fc.record({ type: fc.constant('x509' as const), certificate: bytes(1, 300) }),
        fc.record({
          type: fc.constant('precert' as const),
          issuerKeyHash: bytes(32, 32),
          tbsCertificate: bytes(1, 300),
        }),
      ),
      extensions: bytes(0, 20),
    });
    fc.assert(
      fc.property(entry, (value) => {
        // fast-check builds null-prototype records; compare plain copies.
        const expected = {
          timestamp: value.timestamp,
          entry: { ...value.entry },
          extensions: value.extensions,
        };
        assert.deepEqual(decodeMerkleTreeLeaf(encodeMerkleTreeLeaf(value)), expected);
      }),
      { numRuns: 200, seed: 6962 },
    );
  });

  it('refuses malformed, truncated, oversized and garbage leaves with INVALID_ENTRY', () => {
    const good = encodeMerkleTreeLeaf({
      timestamp: 5,
      entry: { type: 'x509', certificate: Uint8Array.of(1) },
    });
    invalid(() => decodeMerkleTreeLeaf(good.subarray(0, good.length - 1)));
    invalid(() => decodeMerkleTreeLeaf(Uint8Array.from([...good, 0])));
    invalid(() => decodeMerkleTreeLeaf(Uint8Array.from([1, ...good.subarray(1)])));
    invalid(() => decodeMerkleTreeLeaf(Uint8Array.from([0, 1, ...good.subarray(2)])));
    const badType = good.slice();
    badType[11] = 2;
    invalid(() => decodeMerkleTreeLeaf(badType));
    const empty = good.slice();
    empty[14] = 0; // certificate length 0 (< 1)
    invalid(() => decodeMerkleTreeLeaf(empty));
    invalid(() =>
      encodeMerkleTreeLeaf({
        timestamp: 1,
        entry: { type: 'x509', certificate: new Uint8Array(MAX_LEAF_BYTES) },
      }),
    );
    invalid(() =>
      encodeMerkleTreeLeaf({
        timestamp: -1,
        entry: { type: 'x509', certificate: Uint8Array.of(1) },
      }),
    );
    invalid(() =>
      encodeMerkleTreeLeaf({
        timestamp: 1,
        entry: { type: 'x509', certificate: new Uint8Array(0) },
      }),
    );
    invalid(() =>
      encodeMerkleTreeLeaf({
        timestamp: 1,
        entry: {
          type: 'precert',
          issuerKeyHash: new Uint8Array(31),
          tbsCertificate: Uint8Array.of(1),
        },
      }),
    );
    invalid(() => encodeMerkleTreeLeaf({ timestamp: 1, entry: { type: 'other' } as never }));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => {
        try {
          decodeMerkleTreeLeaf(garbage);
        } catch (error) {
          assert.ok(error instanceof CtError && error.code === CtErrorCode.INVALID_ENTRY);
        }
      }),
      { numRuns: 500, seed: 1 },
    );
  });
});

describe('tlog-tiles paths', () => {
  it('formats and parses the C2SP examples', () => {
    assert.equal(
      formatTilePath({ kind: 'hashes', level: 4, index: 1234067, width: TILE_WIDTH }),
      'tile/4/x001/x234/067',
    );
    assert.equal(
      formatTilePath({ kind: 'hashes', level: 0, index: 0, width: 1 }),
      'tile/0/000.p/1',
    );
    assert.equal(
      formatTilePath({ kind: 'entries', index: 1000, width: 255 }),
      'tile/entries/x001/000.p/255',
    );
    assert.deepEqual(parseTilePath('tile/4/x001/x234/067'), {
      kind: 'hashes',
      level: 4,
      index: 1234067,
      width: 256,
    });
    assert.deepEqual(parseTilePath('tile/entries/x001/000.p/255'), {
      kind: 'entries',
      index: 1000,
      width: 255,
    });
  });

  it('accepts only canonical spellings', () => {
    for (const path of [
      'tile/0/1',
      'tile/0/0001',
      'tile/00/000',
      'tile/64/000',
      'tile/0/x000/001',
      'tile/0/001.p/0',
      'tile/0/001.p/256',
      'tile/0/001.p/07',
      'tile/0/001.p/',
      'tile/0/001/',
      'tile/0/x001',
      'tile/data/000',
      'tile/-1/000',
      'tile/entries',
      'tiles/0/000',
      'tile/0/x9999/000',
      'tile/0/' + 'x999/'.repeat(6) + '999',
    ]) {
      assert.equal(parseTilePath(path), undefined, path);
    }
  });

  it('round-trips every coordinate (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 63 }),
        fc.integer({ min: 0, max: 2 ** 45 }),
        fc.integer({ min: 1, max: 256 }),
        fc.boolean(),
        (level, index, width, entries) => {
          const tile = entries
            ? ({ kind: 'entries', index, width } as const)
            : ({ kind: 'hashes', level, index, width } as const);
          assert.deepEqual(parseTilePath(formatTilePath(tile)), tile);
        },
      ),
      { numRuns: 300, seed: 7 },
    );
  });
});
