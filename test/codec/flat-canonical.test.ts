import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CborError, encodeCanonical } from '../../src/codec/cbor.js';
import { encodeFlatCanonical, type FlatRecord } from '../../src/codec/flat-canonical.js';
import { toHex } from '../../src/crypto/bytes.js';

/** Hex of the encoding, or the refusal's class name: the two encoders must agree on both. */
function attempt(encode: () => Uint8Array): string {
  try {
    return toHex(encode());
  } catch (error) {
    return `error: ${(error as Error).name}`;
  }
}

function assertSameAsGeneral(record: FlatRecord): void {
  assert.equal(
    attempt(() => encodeFlatCanonical(record)),
    attempt(() => encodeCanonical(record)),
  );
}

const scalar = fc.oneof(
  fc.maxSafeInteger(),
  fc.integer({ min: -30, max: 70_000 }),
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.uint8Array({ maxLength: 300 }),
  fc.constant(null),
);

const key = fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ unit: 'binary' }));

describe('encodeFlatCanonical', () => {
  it('equals encodeCanonical for any flat map', () => {
    fc.assert(
      fc.property(fc.dictionary(key, scalar, { maxKeys: 14 }), assertSameAsGeneral),
      // {} and {"": 0} once shared a cached key order.
      { numRuns: 500, examples: [[{}], [{ '': 0 }], [{ a: 1, '': null }]] },
    );
  });

  it('equals encodeCanonical for nested maps and lists', () => {
    const { tree } = fc.letrec((tie) => ({
      tree: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        scalar,
        fc.array(tie('tree'), { maxLength: 5 }),
        fc.dictionary(key, tie('tree'), { maxKeys: 5 }),
      ),
    }));
    fc.assert(
      fc.property(fc.dictionary(key, tree, { maxKeys: 6 }), (record) =>
        assertSameAsGeneral(record as FlatRecord),
      ),
      { numRuns: 400 },
    );
  });

  it('hands values outside the flat subset to the general encoder', () => {
    const outside: unknown[] = [
      { a: 1.5 },
      { a: 2 ** 53 },
      { a: [1, { b: -0.5 }] },
      { a: 'é' },
      { é: 1 },
      { a: { b: { c: new Map([[1, 2]]) } } },
      { a: true },
    ];
    for (const value of outside) {
      const flat = encodeFlatCanonical(value as FlatRecord);
      assert.equal(toHex(flat), toHex(encodeCanonical(value)), JSON.stringify(String(value)));
    }
    // What the general encoder refuses, the flat one refuses the same way.
    for (const value of [{ a: undefined }, { a: [1, undefined] }, { a: Number.NaN }]) {
      assert.throws(() => encodeFlatCanonical(value as unknown as FlatRecord), CborError);
    }
    assert.throws(() => encodeFlatCanonical({ a: [1, , 2] as unknown as FlatRecord[] }), CborError);
  });

  it('writes large byte strings and deep lists', () => {
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i & 0xff);
    const record = { body: big, list: Array.from({ length: 70_000 }, (_, i) => i) };
    assert.equal(toHex(encodeFlatCanonical(record)), toHex(encodeCanonical(record)));
  });
});
