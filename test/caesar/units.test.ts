import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CaesarAmountError,
  CaesarAmountErrorCode,
  MAX_AMOUNT,
  MAX_AMOUNT_TEXT_LENGTH,
  formatTokenAmount,
  parseBaseUnits,
  parseTokenAmount,
  smallestUnit,
} from '../../src/caesar/index.js';

/** Amounts as people write them (`wallet send --amount 1.5`), converted exactly to base units. */

const refused = (code: CaesarAmountErrorCode, pattern: RegExp) => (error: unknown) => {
  assert.ok(error instanceof CaesarAmountError, `expected CaesarAmountError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  assert.match(error.message, pattern);
  return true;
};

describe('token amounts', () => {
  it('converts token amounts to base units exactly', () => {
    const cases: [string, number, bigint][] = [
      ['1.5', 6, 1_500_000n],
      ['0.000001', 6, 1n],
      ['12', 6, 12_000_000n],
      ['0', 6, 0n],
      ['007.25', 2, 725n],
      ['1.5000000', 6, 1_500_000n], // zeros beyond the decimals change nothing
      ['42', 0, 42n],
      ['42.000', 0, 42n],
      ['0.1', 18, 100_000_000_000_000_000n],
      // 0.1 + 0.2 in floats is 0.30000000000000004; in bigint it stays exact.
      ['0.3', 18, 300_000_000_000_000_000n],
      ['340282366920938463463.374607431768211455', 18, MAX_AMOUNT],
    ];
    for (const [text, decimals, expected] of cases) {
      assert.equal(parseTokenAmount(text, decimals), expected, `${text} at ${decimals} decimals`);
    }
    assert.equal(parseBaseUnits('1500000'), 1_500_000n);
    assert.equal(parseBaseUnits(MAX_AMOUNT.toString()), MAX_AMOUNT);
  });

  it('refuses negative, garbled, too precise and too large amounts with a precise code', () => {
    const bad: [string, number, CaesarAmountErrorCode, RegExp][] = [
      ['-1', 6, CaesarAmountErrorCode.NEGATIVE, /amount "-1" is negative/],
      ['-0.5', 6, CaesarAmountErrorCode.NEGATIVE, /negative/],
      ['', 6, CaesarAmountErrorCode.SYNTAX, /is not a number of tokens.*\(it is empty\)/],
      ['1e6', 6, CaesarAmountErrorCode.SYNTAX, /without an exponent/],
      ['+1', 6, CaesarAmountErrorCode.SYNTAX, /leave out the "\+"/],
      ['1,000', 6, CaesarAmountErrorCode.SYNTAX, /digit separators/],
      ['1 000', 6, CaesarAmountErrorCode.SYNTAX, /contains a space/],
      ['.5', 6, CaesarAmountErrorCode.SYNTAX, /a digit on both sides/],
      ['5.', 6, CaesarAmountErrorCode.SYNTAX, /a digit on both sides/],
      ['1.2.3', 6, CaesarAmountErrorCode.SYNTAX, /not a number of tokens/],
      ['0x10', 6, CaesarAmountErrorCode.SYNTAX, /not a number of tokens/],
      ['NaN', 6, CaesarAmountErrorCode.SYNTAX, /not a number of tokens/],
      ['Infinity', 6, CaesarAmountErrorCode.SYNTAX, /not a number of tokens/],
      [
        '1.0000001',
        6,
        CaesarAmountErrorCode.TOO_PRECISE,
        /has 7 decimal places, but the token has 6 \(its smallest unit is 0\.000001\)/,
      ],
      ['0.5', 0, CaesarAmountErrorCode.TOO_PRECISE, /the token has no decimals/],
      [
        '340282366920938463463.374607431768211456',
        18,
        CaesarAmountErrorCode.TOO_LARGE,
        /is too large: 340282366920938463463374607431768211456 base units; the largest amount is 2\^128 - 1/,
      ],
      ['1'.repeat(61), 0, CaesarAmountErrorCode.TOO_LARGE, /more than 60 digits/],
    ];
    for (const [text, decimals, code, pattern] of bad) {
      assert.throws(() => parseTokenAmount(text, decimals), refused(code, pattern), text);
    }
    assert.throws(
      () => parseBaseUnits('1.5'),
      refused(CaesarAmountErrorCode.TOO_PRECISE, /base units are whole numbers/),
    );
    assert.throws(() => parseBaseUnits('-3'), refused(CaesarAmountErrorCode.NEGATIVE, /negative/));
    assert.throws(
      () => parseBaseUnits((MAX_AMOUNT + 1n).toString()),
      refused(CaesarAmountErrorCode.TOO_LARGE, /2\^128 - 1/),
    );
    assert.throws(
      () => parseBaseUnits('12abc'),
      refused(CaesarAmountErrorCode.SYNTAX, /not a whole number of base units/),
    );
    assert.throws(() => parseTokenAmount('1', 19), RangeError);
  });

  it('refuses a text longer than MAX_AMOUNT_TEXT_LENGTH before parsing it', () => {
    assert.equal(MAX_AMOUNT_TEXT_LENGTH, 100);
    // At the bound: zeros on both sides of the digits that count are still accepted.
    const zeros = MAX_AMOUNT_TEXT_LENGTH - '1.5'.length;
    const leading = `${'0'.repeat(zeros)}1.5`;
    const trailing = `1.5${'0'.repeat(zeros)}`;
    assert.equal(trailing.length, MAX_AMOUNT_TEXT_LENGTH);
    assert.equal(parseTokenAmount(leading, 6), 1_500_000n);
    assert.equal(parseTokenAmount(trailing, 6), 1_500_000n);
    assert.equal(parseTokenAmount(`0.${'0'.repeat(zeros)}`, 0), 0n);
    assert.equal(parseBaseUnits('0'.repeat(MAX_AMOUNT_TEXT_LENGTH - 1) + '7'), 7n);
    // One character more, and the reviewer's 64k-character fraction (2 s to 5 s with a
    // backtracking /0+$/): refused as TOO_LONG, naming the length.
    const tooLong: string[] = [
      `${trailing}0`,
      `1.${'0'.repeat(64_000)}1`,
      `-${'1'.repeat(MAX_AMOUNT_TEXT_LENGTH)}`,
      '1'.repeat(200),
    ];
    for (const text of tooLong) {
      const pattern = new RegExp(`has ${text.length} characters; an amount has at most 100$`);
      assert.throws(
        () => parseTokenAmount(text, 6),
        refused(CaesarAmountErrorCode.TOO_LONG, pattern),
        `${text.length} characters`,
      );
      assert.throws(
        () => parseBaseUnits(text),
        refused(CaesarAmountErrorCode.TOO_LONG, pattern),
        `${text.length} characters in base units`,
      );
    }
  });

  it('drops any number of trailing zeros, and only zeros, from a fraction', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 18 }),
        fc.bigInt({ min: 0n, max: 10n ** 18n - 1n }),
        fc.integer({ min: 0, max: 40 }),
        (decimals, units, zeros) => {
          const scaled = units % 10n ** BigInt(decimals);
          const fraction = scaled.toString().padStart(decimals, '0');
          const text =
            decimals === 0 ? `3.${'0'.repeat(zeros + 1)}` : `3.${fraction}${'0'.repeat(zeros)}`;
          assert.equal(parseTokenAmount(text, decimals), 3n * 10n ** BigInt(decimals) + scaled);
          // A digit other than 0 past the decimals is never dropped.
          assert.throws(
            () => parseTokenAmount(`3.${'0'.repeat(decimals)}${'0'.repeat(zeros)}1`, decimals),
            refused(CaesarAmountErrorCode.TOO_PRECISE, /decimal places|no decimals/),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('formats base units as token amounts', () => {
    assert.equal(formatTokenAmount(1_500_000n, 6), '1.5');
    assert.equal(formatTokenAmount(1n, 6), '0.000001');
    assert.equal(formatTokenAmount(0n, 6), '0');
    assert.equal(formatTokenAmount(12_000_000n, 6), '12');
    assert.equal(formatTokenAmount(7n, 0), '7');
    assert.equal(smallestUnit(6), '0.000001');
    assert.equal(smallestUnit(0), '1');
  });

  it('round-trips every amount below 2^128 at every number of decimals', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: MAX_AMOUNT }),
        fc.integer({ min: 0, max: 18 }),
        (units, decimals) => {
          const text = formatTokenAmount(units, decimals);
          assert.equal(parseTokenAmount(text, decimals), units);
          assert.equal(parseBaseUnits(units.toString()), units);
        },
      ),
      { numRuns: 500 },
    );
  });
});
