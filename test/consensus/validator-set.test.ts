import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import {
  createValidatorSet,
  exceedsOneThird,
  findValidator,
  isQuorum,
  MAX_TOTAL_VOTING_POWER,
  maxFaultyPower,
  validatorAddress,
  votingPower,
} from '../../src/consensus/validator-set.js';
import { toHex } from '../../src/crypto/bytes.js';
import { makeValidators } from './sim/fixtures.js';

function assertInvalidSet(run: () => unknown, fragment: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ConsensusError, String(error));
    assert.equal(error.code, ConsensusErrorCode.INVALID_VALIDATOR_SET);
    assert.match(error.message, new RegExp(fragment));
    return true;
  });
}

describe('validator set', () => {
  const { validators } = makeValidators([1, 2, 3, 4]);
  const keys = validators.map((v) => v.publicKey);

  it('sorts validators by address and indexes them', () => {
    const set = createValidatorSet(
      keys.map((publicKey, i) => ({ publicKey, power: i + 1 })).reverse(),
    );
    const addresses = set.validators.map((v) => v.address);
    assert.deepEqual(addresses, [...addresses].sort());
    assert.equal(set.totalPower, 10);
    for (const [index, validator] of set.validators.entries()) {
      assert.equal(set.indexOf.get(validator.address), index);
      assert.equal(findValidator(set, validator.address), validator);
      assert.equal(validator.address, validatorAddress(validator.publicKey));
    }
    assert.equal(votingPower(set, 'ff'.repeat(20)), 0);
  });

  it('hashes the same validators to the same hash in any input order, and a power change to another', () => {
    const entries = keys.map((publicKey, i) => ({ publicKey, power: i + 1 }));
    const a = createValidatorSet(entries);
    const b = createValidatorSet([...entries].reverse());
    assert.equal(toHex(a.hash), toHex(b.hash));
    const c = createValidatorSet(
      entries.map((entry, i) => (i === 0 ? { ...entry, power: 9 } : entry)),
    );
    assert.notEqual(toHex(a.hash), toHex(c.hash));
  });

  it('rejects bad sets with a typed error', () => {
    const key = keys[0] as Uint8Array;
    assertInvalidSet(() => createValidatorSet([]), 'at least one');
    assertInvalidSet(() => createValidatorSet([{ publicKey: key.slice(1), power: 1 }]), '32 bytes');
    for (const power of [0, -1, 1.5, Number.NaN]) {
      assertInvalidSet(() => createValidatorSet([{ publicKey: key, power }]), 'positive integer');
    }
    assertInvalidSet(
      () =>
        createValidatorSet([
          { publicKey: key, power: 1 },
          { publicKey: key, power: 2 },
        ]),
      'share one public key',
    );
    assertInvalidSet(
      () =>
        createValidatorSet([
          { publicKey: key, power: MAX_TOTAL_VOTING_POWER },
          { publicKey: keys[1] as Uint8Array, power: 1 },
        ]),
      'exceeds',
    );
    assertInvalidSet(
      () => createValidatorSet([{ publicKey: key, power: 1, pqPublicKey: new Uint8Array(10) }]),
      'FALCON',
    );
    assertInvalidSet(
      () => createValidatorSet([{ publicKey: key, power: 1, storageRoot: new Uint8Array(31) }]),
      'storage root must be 32 bytes',
    );
  });

  it('keeps each storage root and hashes it', () => {
    const entries = keys.map((publicKey, i) => ({ publicKey, power: i + 1 }));
    const root = new Uint8Array(32).fill(3);
    const plain = createValidatorSet(entries);
    const rooted = createValidatorSet(
      entries.map((entry, i) => (i === 0 ? { ...entry, storageRoot: root } : entry)),
    );
    const first = findValidator(rooted, validatorAddress(keys[0] as Uint8Array));
    assert.deepEqual(first?.storageRoot, root);
    assert.notEqual(toHex(plain.hash), toHex(rooted.hash));
    const otherRoot = createValidatorSet(
      entries.map((entry, i) =>
        i === 0 ? { ...entry, storageRoot: new Uint8Array(32).fill(4) } : entry,
      ),
    );
    assert.notEqual(toHex(rooted.hash), toHex(otherRoot.hash));
  });

  it('quorum is more than 2/3 of the power and f+1 more than 1/3, by power', () => {
    // Powers 5, 1, 1, 1: total 8.
    assert.equal(isQuorum(5, 8), false);
    assert.equal(isQuorum(6, 8), true);
    assert.equal(exceedsOneThird(2, 8), false);
    assert.equal(exceedsOneThird(3, 8), true);
    // 3f + 1 equal validators: 2f + 1 is a quorum, 2f is not; f + 1 exceeds 1/3, f does not.
    for (let f = 1; f < 50; f++) {
      const total = 3 * f + 1;
      assert.equal(isQuorum(2 * f + 1, total), true);
      assert.equal(isQuorum(2 * f, total), false);
      assert.equal(exceedsOneThird(f + 1, total), true);
      assert.equal(exceedsOneThird(f, total), false);
      assert.equal(maxFaultyPower(total), f);
    }
  });

  it('two quorums always share more than 1/3 of the power (so a correct validator)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.double({ min: 0, max: 1 }),
        (total, share) => {
          const a = Math.floor(share * total);
          for (const power of [a, total - a]) {
            if (isQuorum(power, total)) {
              // Any two quorums q1, q2 overlap in q1 + q2 - total > 1/3 of total.
              assert.ok(exceedsOneThird(2 * power - total, total));
            }
          }
          const faulty = maxFaultyPower(total);
          assert.ok(3 * faulty < total && 3 * (faulty + 1) >= total);
        },
      ),
    );
  });
});
