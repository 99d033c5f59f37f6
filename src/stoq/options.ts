import { StoqError, StoqErrorCode } from './errors.js';

/**
 * A whole-number option: `value`, or `fallback` when it is not given. Anything outside
 * [1, max] is `INVALID_ARGUMENT` naming the option, rather than a timer or buffer size that
 * misbehaves later.
 */
export function positiveIntegerOption(
  value: number | undefined,
  fallback: number,
  name: string,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const result = value ?? fallback;
  if (!Number.isSafeInteger(result) || result <= 0 || result > max) {
    const range =
      max === Number.MAX_SAFE_INTEGER ? 'a positive integer' : `an integer in [1, ${max}]`;
    throw new StoqError(StoqErrorCode.INVALID_ARGUMENT, `${name} must be ${range}`, {
      [name]: value,
    });
  }
  return result;
}
