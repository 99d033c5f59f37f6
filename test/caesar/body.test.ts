import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeCanonical } from '../../src/codec/cbor.js';
import { amountItem, bytesItem, mapItem, textItem } from '../../src/caesar/cbor.js';
import {
  AMOUNT_LIMIT,
  CaesarError,
  CaesarErrorCode,
  MAX_AMOUNT,
  MAX_MEMO_BYTES,
  decodeCaesarBody,
  encodeCaesarBody,
  encodeTransfer,
} from '../../src/caesar/index.js';
import type { CaesarTx, Transfer } from '../../src/caesar/index.js';

const caesarCode = (code: CaesarErrorCode, name?: string) => (error: unknown) => {
  assert.ok(
    error instanceof CaesarError,
    `${name ?? ''}: expected a CaesarError, got ${String(error)}`,
  );
  assert.equal(error.code, code, `${name ?? ''}: ${error.message}`);
  return true;
};

const to = new Uint8Array(32).fill(7);
const utf8 = (text: string) => new TextEncoder().encode(text);
const bytes = (...parts: (number | Uint8Array)[]) =>
  Uint8Array.from(parts.flatMap((part) => (typeof part === 'number' ? [part] : [...part])));

/** A transfer body with some fields replaced by raw CBOR items (keys sorted canonically). */
function body(overrides: Record<string, Uint8Array | null> = {}): Uint8Array {
  const fields: Record<string, Uint8Array> = {
    op: textItem('transfer'),
    to: bytesItem(to),
    fee: amountItem(1n),
    amount: amountItem(5n),
  };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === null) delete fields[key];
    else fields[key] = value;
  }
  return mapItem(fields);
}

/** A tag-2 bignum item with exactly these magnitude bytes. */
const bignum = (magnitude: Uint8Array) => bytes(0xc2, bytesItem(magnitude));

describe('caesar transfer body', () => {
  it('round-trips, with amounts from 1 to 2^128 - 1 and an optional memo', () => {
    const cases: Transfer[] = [
      { op: 'transfer', to, fee: 0n, amount: 1n },
      { op: 'transfer', to, fee: 23n, amount: 24n, memo: utf8('rent') },
      { op: 'transfer', to, fee: (1n << 64n) - 1n, amount: 1n << 64n },
      { op: 'transfer', to, fee: MAX_AMOUNT, amount: MAX_AMOUNT, memo: new Uint8Array(256) },
    ];
    for (const tx of cases) {
      const encoded = encodeTransfer(tx);
      assert.deepEqual(decodeCaesarBody(encoded), tx);
    }
    // The layout is the documented one: canonical key order op, to, fee, memo, amount.
    assert.deepEqual(
      encodeTransfer({ to, amount: 5n, fee: 1n }),
      encodeCanonical({ op: 'transfer', to, fee: 1, amount: 5 }),
    );
    // 2^64 is a tag-2 bignum of nine bytes.
    assert.deepEqual(amountItem(1n << 64n), bytes(0xc2, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0));
    assert.deepEqual(amountItem((1n << 64n) - 1n), bytes(0x1b, ...new Array<number>(8).fill(0xff)));
  });

  it('the encoder refuses what the decoder would', () => {
    const cases: [string, () => unknown, CaesarErrorCode][] = [
      ['zero', () => encodeTransfer({ to, amount: 0n }), CaesarErrorCode.ZERO_AMOUNT],
      ['negative', () => encodeTransfer({ to, amount: -1n }), CaesarErrorCode.INVALID_AMOUNT],
      [
        'number',
        () => encodeTransfer({ to, amount: 5 as unknown as bigint }),
        CaesarErrorCode.INVALID_AMOUNT,
      ],
      [
        '2^128',
        () => encodeTransfer({ to, amount: AMOUNT_LIMIT }),
        CaesarErrorCode.AMOUNT_TOO_LARGE,
      ],
      [
        'fee 2^128',
        () => encodeTransfer({ to, amount: 1n, fee: AMOUNT_LIMIT }),
        CaesarErrorCode.AMOUNT_TOO_LARGE,
      ],
      [
        'negative fee',
        () => encodeTransfer({ to, amount: 1n, fee: -1n }),
        CaesarErrorCode.INVALID_AMOUNT,
      ],
      [
        'short address',
        () => encodeTransfer({ to: new Uint8Array(31), amount: 1n }),
        CaesarErrorCode.MALFORMED_BODY,
      ],
      [
        'empty memo',
        () => encodeTransfer({ to, amount: 1n, memo: new Uint8Array(0) }),
        CaesarErrorCode.MALFORMED_BODY,
      ],
      [
        'long memo',
        () => encodeTransfer({ to, amount: 1n, memo: new Uint8Array(MAX_MEMO_BYTES + 1) }),
        CaesarErrorCode.MEMO_TOO_LONG,
      ],
    ];
    for (const [name, run, code] of cases) assert.throws(run, caesarCode(code, name), name);
  });

  it('refuses every bad body with its precise typed error', () => {
    const float64Five = bytes(0xfb, 0x40, 0x14, 0, 0, 0, 0, 0, 0);
    const sixteenFF = new Uint8Array(16).fill(0xff);
    const twoTo128 = bytes(1, new Uint8Array(16));
    const { MALFORMED_BODY, UNKNOWN_FIELD, INVALID_AMOUNT, AMOUNT_TOO_LARGE } = CaesarErrorCode;
    const valid = body();
    const cases: [string, Uint8Array, CaesarErrorCode][] = [
      ['empty input', new Uint8Array(0), MALFORMED_BODY],
      ['not CBOR', bytes(0xff), MALFORMED_BODY],
      ['JSON', utf8('{"op":"transfer"}'), MALFORMED_BODY],
      ['an array', encodeCanonical(['transfer', to, 1, 5]), MALFORMED_BODY],
      ['an empty map', bytes(0xa0), MALFORMED_BODY],
      ['a truncated body', valid.subarray(0, valid.length - 1), MALFORMED_BODY],
      ['trailing bytes', bytes(valid, 0x00), MALFORMED_BODY],
      ['an indefinite-length map', bytes(0xbf, valid.subarray(1), 0xff), MALFORMED_BODY],
      ['a map claiming more entries than it has', bytes(0xa9, valid.subarray(1)), MALFORMED_BODY],
      ['no op', body({ op: null }), MALFORMED_BODY],
      ['an unknown op', body({ op: textItem('mint') }), MALFORMED_BODY],
      ['op not text', body({ op: amountItem(1n) }), MALFORMED_BODY],
      ['an unknown field', body({ from: bytesItem(to) }), UNKNOWN_FIELD],
      ['an unknown long field', body({ ['x'.repeat(100)]: amountItem(1n) }), UNKNOWN_FIELD],
      ['a prototype field', body({ __proto__x: amountItem(1n) }), UNKNOWN_FIELD],
      ['an integer key', bytes(0xa5, valid.subarray(1, valid.length), 0x01, 0x01), MALFORMED_BODY],
      ['no to', body({ to: null }), MALFORMED_BODY],
      ['no fee', body({ fee: null }), MALFORMED_BODY],
      ['no amount', body({ amount: null }), MALFORMED_BODY],
      ['a 31-byte address', body({ to: bytesItem(new Uint8Array(31)) }), MALFORMED_BODY],
      ['an address as text', body({ to: textItem('a'.repeat(32)) }), MALFORMED_BODY],
      ['a negative amount', body({ amount: bytes(0x24) }), INVALID_AMOUNT],
      ['a negative fee', body({ fee: bytes(0x20) }), INVALID_AMOUNT],
      ['a float16 amount 5.0', body({ amount: bytes(0xf9, 0x45, 0x00) }), INVALID_AMOUNT],
      ['a float64 amount 5.0', body({ amount: float64Five }), INVALID_AMOUNT],
      ['a fractional amount 1.5', body({ amount: encodeCanonical(1.5) }), INVALID_AMOUNT],
      ['a float fee', body({ fee: encodeCanonical(0.25) }), INVALID_AMOUNT],
      [
        'a decimal fraction 1.5',
        body({ amount: bytes(0xc4, encodeCanonical([-1, 15])) }),
        INVALID_AMOUNT,
      ],
      ['a bigfloat', body({ amount: bytes(0xc5, encodeCanonical([-1, 3])) }), INVALID_AMOUNT],
      ['a negative bignum', body({ amount: bytes(0xc3, bytesItem(sixteenFF)) }), INVALID_AMOUNT],
      ['another tag', body({ amount: bytes(0xc1, 0x05) }), INVALID_AMOUNT],
      ['an amount as text', body({ amount: textItem('5') }), INVALID_AMOUNT],
      ['an amount as bytes', body({ amount: bytesItem(bytes(5)) }), INVALID_AMOUNT],
      ['a null amount', body({ amount: bytes(0xf6) }), INVALID_AMOUNT],
      ['a boolean fee', body({ fee: bytes(0xf5) }), INVALID_AMOUNT],
      ['an amount of 2^128', body({ amount: bignum(twoTo128) }), AMOUNT_TOO_LARGE],
      ['a fee of 2^200', body({ fee: bignum(bytes(1, new Uint8Array(25))) }), AMOUNT_TOO_LARGE],
      [
        'a bignum with a leading zero',
        body({ amount: bignum(bytes(0, 1, new Uint8Array(8))) }),
        MALFORMED_BODY,
      ],
      [
        'a bignum below 2^64',
        body({ amount: bignum(new Uint8Array(8).fill(0xff)) }),
        MALFORMED_BODY,
      ],
      ['an empty bignum', body({ amount: bignum(new Uint8Array(0)) }), MALFORMED_BODY],
      ['a bignum of text', body({ amount: bytes(0xc2, textItem('1')) }), MALFORMED_BODY],
      ['a non-shortest integer', body({ amount: bytes(0x18, 0x05) }), MALFORMED_BODY],
      ['a non-shortest length', body({ to: bytes(0x59, 0x00, 0x20, to) }), MALFORMED_BODY],
      ['a zero amount', body({ amount: amountItem(0n) }), CaesarErrorCode.ZERO_AMOUNT],
      ['an empty memo', body({ memo: bytesItem(new Uint8Array(0)) }), MALFORMED_BODY],
      ['a memo as text', body({ memo: textItem('hi') }), MALFORMED_BODY],
      [
        'a 257-byte memo',
        body({ memo: bytesItem(new Uint8Array(MAX_MEMO_BYTES + 1)) }),
        CaesarErrorCode.MEMO_TOO_LONG,
      ],
      [
        'a repeated field',
        bytes(
          0xa5,
          textItem('op'),
          textItem('transfer'),
          textItem('to'),
          bytesItem(to),
          textItem('to'),
          bytesItem(to),
          textItem('fee'),
          0x01,
          textItem('amount'),
          0x05,
        ),
        MALFORMED_BODY,
      ],
      [
        'fields out of canonical order',
        bytes(
          0xa4,
          textItem('op'),
          textItem('transfer'),
          textItem('to'),
          bytesItem(to),
          textItem('amount'),
          0x05,
          textItem('fee'),
          0x01,
        ),
        MALFORMED_BODY,
      ],
      [
        'op not first',
        bytes(
          0xa4,
          textItem('to'),
          bytesItem(to),
          textItem('op'),
          textItem('transfer'),
          textItem('fee'),
          0x01,
          textItem('amount'),
          0x05,
        ),
        MALFORMED_BODY,
      ],
    ];
    for (const [name, input, code] of cases) {
      assert.throws(() => decodeCaesarBody(input), caesarCode(code, name), name);
    }
    // The refusal says which field and why; the code is the stable number the block records.
    assert.throws(
      () => decodeCaesarBody(body({ amount: float64Five })),
      (error: unknown) =>
        error instanceof CaesarError &&
        error.resultCode === 3 &&
        error.message ===
          'transfer.amount: got a float; amounts are non-negative integers in base units',
    );
  });

  const transferArb = fc.record(
    {
      to: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      amount: fc.oneof(
        fc.bigInt({ min: 1n, max: 100_000n }),
        fc.bigInt({ min: 1n, max: MAX_AMOUNT }),
      ),
      fee: fc.oneof(fc.bigInt({ min: 0n, max: 1_000n }), fc.bigInt({ min: 0n, max: MAX_AMOUNT })),
      memo: fc.uint8Array({ minLength: 1, maxLength: MAX_MEMO_BYTES }),
    },
    { requiredKeys: ['to', 'amount', 'fee'] },
  );

  it('decode(encode(t)) = t for random transfers (property)', () => {
    fc.assert(
      fc.property(transferArb, (input) => {
        assert.deepEqual(decodeCaesarBody(encodeTransfer(input)), { op: 'transfer', ...input });
      }),
      { numRuns: 300 },
    );
  });

  it('a mutated body is refused with a CaesarError or re-encodes to the same bytes (property)', () => {
    fc.assert(
      fc.property(transferArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (input, at, byte) => {
        const encoded = encodeTransfer(input);
        const mutated = encoded.slice();
        mutated[at % mutated.length] = byte;
        let decoded: CaesarTx;
        try {
          decoded = decodeCaesarBody(mutated);
        } catch (error) {
          assert.ok(error instanceof CaesarError, String(error));
          return;
        }
        // Whatever is accepted has exactly one encoding: these very bytes.
        const again = encodeCaesarBody(decoded);
        assert.deepEqual(again, mutated);
      }),
      { numRuns: 1000 },
    );
  });

  it('garbage only ever raises CaesarError (property)', () => {
    const check = (input: Uint8Array) => {
      try {
        decodeCaesarBody(input);
      } catch (error) {
        assert.ok(error instanceof CaesarError, String(error));
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), check), { numRuns: 300 });
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom('op', 'to', 'fee', 'memo', 'amount', '__proto__', 'x'),
          fc.oneof(
            fc.constant('transfer'),
            fc.uint8Array({ maxLength: 40 }),
            fc.integer(),
            // The shared encoder refuses NaN and ±Infinity itself: only what it can encode.
            fc.double({ noDefaultInfinity: true, noNaN: true }),
            fc.bigInt({ min: -(1n << 64n) + 1n, max: (1n << 64n) - 1n }),
          ),
        ),
        (map) => check(encodeCanonical(map)),
      ),
      { numRuns: 300 },
    );
  });
});
