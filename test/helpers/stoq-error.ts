import assert from 'node:assert/strict';
import { StoqError, type StoqErrorCode } from '../../src/stoq/errors.js';

/**
 * For `assert.throws`/`assert.rejects`: a StoqError with `code` (or one of `code`, where the
 * outcome may legitimately be either, as a race between a reset and a close).
 */
export function isStoqError(code: StoqErrorCode | readonly StoqErrorCode[]) {
  const codes: readonly StoqErrorCode[] = Array.isArray(code) ? code : [code];
  return (error: unknown): boolean => {
    assert.ok(error instanceof StoqError, `expected a StoqError, got ${String(error)}`);
    assert.ok(
      codes.includes(error.code),
      `expected ${codes.join(' or ')}, got ${error.code}: ${error.message}`,
    );
    return true;
  };
}
