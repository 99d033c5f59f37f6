import type { KeyObject } from 'node:crypto';
import { sha256 } from '../../crypto/hash.js';
import { signVote } from '../signer.js';
import type { Vote } from '../types.js';
import { DriverError, DriverErrorCode } from './errors.js';

/**
 * TEST BUILDS ONLY: a validator that equivocates on purpose, so that multi-process tests can
 * watch evidence, slashing and jailing happen (docs/caesar.md, "Tests"). It is honoured only
 * when both variables are set — `HYPERMESH_TEST_EQUIVOCATE=prevote` and `HYPERMESH_TEST_BUILD=1`
 * — and a node given the first without the second refuses to start, so a stray variable can never
 * make a production validator sign conflicting votes.
 *
 * The double-sign guard is not involved: every vote the engine asks for still goes through
 * `GuardedSigner` (`checkSigning`, its last-signed record persisted first). The conflicting vote
 * is signed beside it, by `conflictingPrevote`, and only ever broadcast; the engine never sees it.
 */
export const TEST_BUILD_ENV = 'HYPERMESH_TEST_BUILD';
export const TEST_EQUIVOCATE_ENV = 'HYPERMESH_TEST_EQUIVOCATE';

/** What a test-build validator equivocates on: `prevote` — two prevotes per height and round. */
export type TestEquivocation = 'prevote';

/**
 * Reads the pair of variables: null when `HYPERMESH_TEST_EQUIVOCATE` is unset (whatever
 * `HYPERMESH_TEST_BUILD` says); `prevote` when it is `prevote` and `HYPERMESH_TEST_BUILD=1`.
 * Throws `DRIVER_INVALID_OPTIONS` when it is set without the test build flag, or to another
 * value.
 */
export function testEquivocationFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): TestEquivocation | null {
  const mode = env[TEST_EQUIVOCATE_ENV];
  if (mode === undefined || mode === '') return null;
  if (env[TEST_BUILD_ENV] !== '1') {
    throw new DriverError(
      DriverErrorCode.INVALID_OPTIONS,
      `${TEST_EQUIVOCATE_ENV} is honoured only in a test build (${TEST_BUILD_ENV}=1); refusing to start a validator with it`,
      { variable: TEST_EQUIVOCATE_ENV },
    );
  }
  if (mode !== 'prevote') {
    throw new DriverError(
      DriverErrorCode.INVALID_OPTIONS,
      `${TEST_EQUIVOCATE_ENV} must be "prevote", got ${JSON.stringify(mode)}`,
      { variable: TEST_EQUIVOCATE_ENV, value: mode },
    );
  }
  return mode;
}

/**
 * A second prevote of `vote`'s height and round for another value: nil for a block prevote, and
 * for a nil prevote a block hash that names no block. Signed with the validator's Ed25519 key
 * directly, outside the double-sign guard (prevotes carry no FALCON signature).
 */
export function conflictingPrevote(chainId: string, vote: Vote, privateKey: KeyObject): Vote {
  const other =
    vote.blockHash === null
      ? sha256(new TextEncoder().encode(`hypermesh-test-equivocation/${vote.height}/${vote.round}`))
      : null;
  return signVote(
    chainId,
    {
      type: 'prevote',
      height: vote.height,
      round: vote.round,
      blockHash: other,
      validator: vote.validator,
      notBefore: vote.timestamp,
      pq: false,
    },
    vote.timestamp,
    privateKey,
  );
}
