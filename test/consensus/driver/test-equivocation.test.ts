import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DriverError, DriverErrorCode } from '../../../src/consensus/driver/errors.js';
import { GuardedSigner } from '../../../src/consensus/driver/guarded-signer.js';
import {
  TEST_BUILD_ENV,
  TEST_EQUIVOCATE_ENV,
  conflictingPrevote,
  testEquivocationFromEnv,
} from '../../../src/consensus/driver/test-equivocation.js';
import {
  checkDuplicateVoteEvidence,
  duplicateVoteEvidence,
} from '../../../src/consensus/evidence.js';
import { ed25519SignatureVerifier } from '../../../src/consensus/verify.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { CHAIN_ID, makeValidators, makeVote } from '../sim/fixtures.js';
import { falcon, tempDir } from './fixtures.js';

/**
 * The test-only equivocation switch (src/consensus/driver/test-equivocation.ts): honoured only
 * with both variables, refused with one, and never a way around the double-sign guard — the
 * guard reads no environment, so with the variables set it still refuses a conflicting vote.
 */

const dir = tempDir();
after(() => rmSync(dir, { recursive: true, force: true }));

function refused(error: unknown): boolean {
  assert.ok(error instanceof DriverError);
  assert.equal(error.code, DriverErrorCode.INVALID_OPTIONS);
  return true;
}

describe('test equivocation', () => {
  it('is off without the variable, refused without the test build flag, on only with both', () => {
    assert.equal(testEquivocationFromEnv({}), null);
    assert.equal(testEquivocationFromEnv({ [TEST_BUILD_ENV]: '1' }), null);
    assert.equal(testEquivocationFromEnv({ [TEST_EQUIVOCATE_ENV]: '' }), null);
    // The variable alone: the node refuses to start rather than run with it or ignore it.
    assert.throws(() => testEquivocationFromEnv({ [TEST_EQUIVOCATE_ENV]: 'prevote' }), refused);
    assert.throws(
      () => testEquivocationFromEnv({ [TEST_EQUIVOCATE_ENV]: 'prevote', [TEST_BUILD_ENV]: '0' }),
      refused,
    );
    assert.throws(
      () => testEquivocationFromEnv({ [TEST_EQUIVOCATE_ENV]: 'prevote', [TEST_BUILD_ENV]: 'yes' }),
      refused,
    );
    assert.throws(
      () => testEquivocationFromEnv({ [TEST_EQUIVOCATE_ENV]: 'precommit', [TEST_BUILD_ENV]: '1' }),
      refused,
    );
    assert.equal(
      testEquivocationFromEnv({ [TEST_EQUIVOCATE_ENV]: 'prevote', [TEST_BUILD_ENV]: '1' }),
      'prevote',
    );
  });

  it('leaves the double-sign guard active even with both variables set in the environment', async () => {
    const { validators } = makeValidators([10], 7);
    const validator = validators[0];
    assert.ok(validator);
    const saved = { build: process.env[TEST_BUILD_ENV], mode: process.env[TEST_EQUIVOCATE_ENV] };
    process.env[TEST_EQUIVOCATE_ENV] = 'prevote';
    process.env[TEST_BUILD_ENV] = '1';
    try {
      const signer = await GuardedSigner.open({
        chainId: CHAIN_ID,
        address: validator.address,
        keys: { privateKey: validator.privateKey, falconSecretKey: new Uint8Array(0), falcon },
        path: join(dir, 'signer.json'),
        now: () => 1_000,
      });
      const base = {
        type: 'prevote' as const,
        height: 3,
        round: 0,
        validator: validator.address,
        notBefore: 0,
        pq: false,
      };
      const first = await signer.signVote({ ...base, blockHash: sha256(Uint8Array.of(1)) });
      assert.equal(first.kind, 'signed');
      const second = await signer.signVote({ ...base, blockHash: null });
      assert.deepEqual(second, { kind: 'refused', reason: 'conflict' });
      signer.close();
    } finally {
      for (const [name, value] of [
        [TEST_BUILD_ENV, saved.build],
        [TEST_EQUIVOCATE_ENV, saved.mode],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('signs a conflicting prevote that other validators turn into valid evidence', () => {
    const { validators, set } = makeValidators([10, 10, 10, 10], 3);
    const validator = validators[1];
    assert.ok(validator);
    const context = {
      chainId: CHAIN_ID,
      validators: set,
      verifier: ed25519SignatureVerifier,
      requirePq: false,
    };
    for (const blockHash of [sha256(Uint8Array.of(2)), null]) {
      const vote = makeVote(validator, 'prevote', 4, 1, blockHash);
      const other = conflictingPrevote(CHAIN_ID, vote, validator.privateKey);
      assert.equal(other.height, 4);
      assert.equal(other.round, 1);
      assert.equal(other.type, 'prevote');
      assert.notDeepEqual(other.blockHash, vote.blockHash);
      assert.equal(blockHash === null ? other.blockHash !== null : other.blockHash === null, true);
      const evidence = duplicateVoteEvidence(vote, other);
      assert.equal(checkDuplicateVoteEvidence(context, evidence, 5), undefined);
    }
  });
});
