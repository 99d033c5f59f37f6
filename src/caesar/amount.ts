import { CaesarStateError, CaesarStateErrorCode } from './errors.js';

/**
 * Token amounts are integers in base units (the smallest unit; `decimals` only says where a
 * wallet puts the decimal point), held as `bigint` end to end and never as floats.
 *
 * Every amount — a balance, the fee pool, the supply, a transfer's amount or fee — is below
 * 2^128. Nothing can overflow: the genesis allocations sum exactly to the supply, which is below
 * 2^128, and a transfer only moves value (sender −(amount + fee), recipient +amount, fee pool
 * +fee), so the balances and the fee pool always sum to the supply and each of them is at most
 * the supply. `amount + fee` of one transfer may reach 2^129 − 2, but it is only compared with
 * the sender's balance (in bigint arithmetic), never stored.
 */
export const AMOUNT_LIMIT = 1n << 128n;
/** The largest amount: 2^128 − 1. */
export const MAX_AMOUNT = AMOUNT_LIMIT - 1n;
/** Bytes of the largest amount in big-endian form. */
export const MAX_AMOUNT_BYTES = 16;

export function isAmount(value: unknown): value is bigint {
  return typeof value === 'bigint' && value >= 0n && value < AMOUNT_LIMIT;
}

/** The minimal big-endian bytes of a non-negative bigint (0 is the empty string). */
export function bigintToBytes(value: bigint): Uint8Array {
  const hex = value === 0n ? '' : value.toString(16);
  const padded = hex.length % 2 === 0 ? hex : `0${hex}`;
  const out = new Uint8Array(padded.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = Number.parseInt(padded.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

/** The non-negative integer whose big-endian bytes these are. */
export function bytesToBigint(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

function corrupt(message: string): never {
  throw new CaesarStateError(CaesarStateErrorCode.CORRUPT_VALUE, message);
}

/**
 * The stored form of a balance or of the fee pool: 1 to 16 bytes, big-endian, no leading zero
 * byte, so each amount has exactly one encoding. Zero is never stored: the key is deleted
 * instead, and an absent key reads as zero. Throws `CaesarStateError` for 0 or an amount of
 * 2^128 or more, which the supply bound makes impossible (see above).
 */
export function encodeStoredAmount(value: bigint): Uint8Array {
  if (!isAmount(value) || value === 0n) {
    corrupt(`a stored amount must be in [1, 2^128), got ${String(value)}`);
  }
  return bigintToBytes(value);
}

/** Reads a stored amount; `null` (an absent key) is zero. Throws `CaesarStateError`. */
export function decodeStoredAmount(stored: Uint8Array | null): bigint {
  if (stored === null) return 0n;
  if (stored.length < 1 || stored.length > MAX_AMOUNT_BYTES) {
    corrupt(`a stored amount is 1 to ${MAX_AMOUNT_BYTES} bytes, got ${stored.length}`);
  }
  if (stored[0] === 0) corrupt('a stored amount has no leading zero byte');
  return bytesToBigint(stored);
}
