import { AMOUNT_LIMIT, MAX_AMOUNT } from './amount.js';
import { CaesarAmountError, CaesarAmountErrorCode } from './errors.js';
import { MAX_DECIMALS } from './params.js';

/**
 * Amounts as people write them. A token amount such as `1.5` means 1.5 × 10^decimals base
 * units; it is converted exactly, in bigint arithmetic, and refused unless the result is a whole
 * number of base units below 2^128. Trailing zeros beyond the token's decimals are accepted
 * (`1.5000000` with 6 decimals is exactly 1,500,000 base units); any other digit there is
 * refused, never rounded.
 */

/** Whole-number digits beyond which an amount is too large without converting it (2^128 has 39). */
const MAX_WHOLE_DIGITS = 60;
/**
 * Characters of the longest text parsed as an amount. The largest amount written in full with
 * the most decimals has 39 + 1 + 18 = 58; the rest leaves room for leading and trailing zeros.
 * A longer text is refused before any pattern runs over it, so the cost of a refusal does not
 * grow with what the caller sent (a command-line option, a field of a request).
 */
export const MAX_AMOUNT_TEXT_LENGTH = 100;
/** Characters of a refused text quoted in a message. */
const QUOTED_LENGTH = 48;
const TOKEN_AMOUNT = /^([0-9]+)(?:\.([0-9]+))?$/;
const BASE_UNITS = /^[0-9]+$/;

function quote(text: string): string {
  return JSON.stringify(text.length > QUOTED_LENGTH ? `${text.slice(0, QUOTED_LENGTH)}…` : text);
}

function fail(code: CaesarAmountErrorCode, message: string, text: string): never {
  throw new CaesarAmountError(code, message, { text: text.slice(0, QUOTED_LENGTH) });
}

function checkDecimals(decimals: number): void {
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > MAX_DECIMALS) {
    throw new RangeError(`decimals must be an integer from 0 to ${MAX_DECIMALS}, got ${decimals}`);
  }
}

function checkLength(text: string): void {
  if (text.length > MAX_AMOUNT_TEXT_LENGTH) {
    fail(
      CaesarAmountErrorCode.TOO_LONG,
      `amount ${quote(text)} has ${text.length} characters; an amount has at most ${MAX_AMOUNT_TEXT_LENGTH}`,
      text,
    );
  }
}

/** `digits` without its trailing zeros, by a scan from the end (no backtracking pattern). */
function withoutTrailingZeros(digits: string): string {
  let end = digits.length;
  while (end > 0 && digits.charCodeAt(end - 1) === 0x30) end--;
  return digits.slice(0, end);
}

function syntax(text: string, expected: string): never {
  if (text.trim().startsWith('-')) {
    fail(CaesarAmountErrorCode.NEGATIVE, `amount ${quote(text)} is negative`, text);
  }
  let why = '';
  if (text === '') why = ' (it is empty)';
  else if (/\s/.test(text)) why = ' (it contains a space)';
  else if (/^[0-9.]*[eE][+-]?[0-9]+$/.test(text)) why = ' (write it without an exponent)';
  else if (text.startsWith('+')) why = ' (leave out the "+")';
  else if (/[,_']/.test(text)) why = ' (leave out digit separators)';
  else if (text.startsWith('.') || text.endsWith('.'))
    why = ' (write a digit on both sides of the ".")';
  fail(CaesarAmountErrorCode.SYNTAX, `amount ${quote(text)} is not ${expected}${why}`, text);
}

function tooLarge(text: string, units: string): never {
  fail(
    CaesarAmountErrorCode.TOO_LARGE,
    `amount ${quote(text)} is too large: ${units}; the largest amount is 2^128 - 1 = ${MAX_AMOUNT} base units`,
    text,
  );
}

/** The smallest unit of a token with `decimals`, written as a token amount (`0.000001`). */
export function smallestUnit(decimals: number): string {
  checkDecimals(decimals);
  return decimals === 0 ? '1' : `0.${'0'.repeat(decimals - 1)}1`;
}

/**
 * Parses a token amount (`12`, `1.5`, `0.000001`) into base units for a token with `decimals`.
 * Throws `CaesarAmountError`: `TOO_LONG` (more than `MAX_AMOUNT_TEXT_LENGTH` characters),
 * `SYNTAX`, `NEGATIVE`, `TOO_PRECISE` (more decimal places than the token has, other than
 * zeros), `TOO_LARGE` (2^128 base units or more). Zero is a valid amount (a fee may be zero);
 * callers that need more check it themselves.
 */
export function parseTokenAmount(text: string, decimals: number): bigint {
  checkDecimals(decimals);
  checkLength(text);
  const match = TOKEN_AMOUNT.exec(text);
  if (match === null) syntax(text, 'a number of tokens such as 12 or 1.5');
  const whole = match[1] as string;
  if (whole.replace(/^0+/, '').length > MAX_WHOLE_DIGITS)
    tooLarge(text, `more than ${MAX_WHOLE_DIGITS} digits`);
  const fraction = withoutTrailingZeros(match[2] ?? '');
  if (fraction.length > decimals) {
    fail(
      CaesarAmountErrorCode.TOO_PRECISE,
      decimals === 0
        ? `amount ${quote(text)} has a fraction, but the token has no decimals (its smallest unit is 1)`
        : `amount ${quote(text)} has ${fraction.length} decimal places, but the token has ${decimals} (its smallest unit is ${smallestUnit(decimals)})`,
      text,
    );
  }
  const value =
    BigInt(whole) * 10n ** BigInt(decimals) + BigInt(fraction.padEnd(decimals, '0') || '0');
  if (value >= AMOUNT_LIMIT) tooLarge(text, `${value} base units`);
  return value;
}

/**
 * Parses a whole number of base units (`1500000`). Throws `CaesarAmountError` like
 * `parseTokenAmount`; a decimal point is `TOO_PRECISE` (base units are indivisible).
 */
export function parseBaseUnits(text: string): bigint {
  checkLength(text);
  if (!BASE_UNITS.test(text)) {
    if (TOKEN_AMOUNT.test(text)) {
      fail(
        CaesarAmountErrorCode.TOO_PRECISE,
        `amount ${quote(text)} has a fraction, but base units are whole numbers`,
        text,
      );
    }
    syntax(text, 'a whole number of base units');
  }
  if (text.replace(/^0+/, '').length > MAX_WHOLE_DIGITS)
    tooLarge(text, `more than ${MAX_WHOLE_DIGITS} digits`);
  const value = BigInt(text);
  if (value >= AMOUNT_LIMIT) tooLarge(text, `${value} base units`);
  return value;
}

/** Base units as a token amount: `1500000` with 6 decimals is `1.5`; no trailing zeros. */
export function formatTokenAmount(baseUnits: bigint, decimals: number): string {
  checkDecimals(decimals);
  if (baseUnits < 0n) throw new RangeError('amounts are never negative');
  if (decimals === 0) return baseUnits.toString();
  const scale = 10n ** BigInt(decimals);
  const whole = baseUnits / scale;
  const fraction = withoutTrailingZeros((baseUnits % scale).toString().padStart(decimals, '0'));
  return fraction === '' ? whole.toString() : `${whole}.${fraction}`;
}
