import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AuthFailureReason } from '../../src/stoq/auth/reasons.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import type { Session } from '../../src/stoq/identity.js';

/** Shared checks of the authentication tests: how a refused handshake must look. */

/** For `assert.throws`/`assert.rejects`: an UNAUTHENTICATED StoqError with `reason`. */
export function rejectsWith(reason: AuthFailureReason) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof StoqError, `expected StoqError, got ${String(error)}`);
    assert.equal(error.code, StoqErrorCode.UNAUTHENTICATED);
    assert.equal(error.detail.reason, reason, error.message);
    return true;
  };
}

/**
 * A settled `authenticate()` that was refused for `reason`, detected by this side (`local`) or
 * reported by the other (`peer`).
 */
export function assertRejected(
  settled: PromiseSettledResult<Session>,
  reason: AuthFailureReason,
  origin: 'local' | 'peer',
): void {
  assert.equal(settled.status, 'rejected', `expected a ${reason} rejection`);
  const error = (settled as PromiseRejectedResult).reason as unknown;
  rejectsWith(reason)(error);
  assert.equal((error as StoqError).detail.origin, origin, (error as StoqError).message);
}

/** A fresh 32-byte handshake nonce. */
export const nonce = (): Uint8Array => new Uint8Array(randomBytes(32));
