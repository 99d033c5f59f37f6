import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  addVote,
  classifyVote,
  emptyVoteSet,
  hasOneThirdFor,
  hasQuorumAny,
  hasQuorumFor,
  NIL_KEY,
  quorumBlockKey,
  valueKey,
  votesFor,
} from '../../src/consensus/vote-set.js';
import { makeValidators, makeVote } from './sim/fixtures.js';

const HASH_A = new Uint8Array(32).fill(0xaa);
const HASH_B = new Uint8Array(32).fill(0xbb);

describe('vote set', () => {
  // Powers 5, 2, 1, 1: total 9, so a quorum needs more than 6 and f+1 more than 3.
  const { validators, set: validatorSet } = makeValidators([5, 2, 1, 1], 3);
  const total = validatorSet.totalPower;
  const byPower = (power: number) => validators.filter((v) => v.power === power);
  const [big] = byPower(5);
  const [middle] = byPower(2);
  const [small1, small2] = byPower(1);

  it('tallies unequal powers per value and in total', () => {
    let set = emptyVoteSet('prevote', 1, 0);
    set = addVote(set, makeVote(big!, 'prevote', 1, 0, HASH_A), 5);
    assert.equal(hasQuorumFor(set, valueKey(HASH_A), total), false, '5 of 9');
    assert.equal(hasOneThirdFor(set, valueKey(HASH_A), total), true);
    set = addVote(set, makeVote(small1!, 'prevote', 1, 0, null), 1);
    assert.equal(hasQuorumAny(set, total), false, '6 of 9 is exactly 2/3, not more');
    assert.equal(hasOneThirdFor(set, NIL_KEY, total), false);
    set = addVote(set, makeVote(small2!, 'prevote', 1, 0, HASH_B), 1);
    assert.equal(hasQuorumAny(set, total), true, '7 of 9');
    assert.equal(set.power, 7);
    assert.equal(quorumBlockKey(set, total), undefined);
    set = addVote(set, makeVote(middle!, 'prevote', 1, 0, HASH_A), 2);
    assert.equal(hasQuorumFor(set, valueKey(HASH_A), total), true, '7 of 9 for A');
    assert.equal(quorumBlockKey(set, total), valueKey(HASH_A));
    assert.equal(hasQuorumFor(set, NIL_KEY, total), false);
    const forA = votesFor(set, valueKey(HASH_A));
    assert.deepEqual(
      forA.map((vote) => vote.validator),
      [big!.address, middle!.address].sort(),
    );
  });

  it('classifies duplicates and conflicts, and leaves the set unchanged on a duplicate', () => {
    let set = emptyVoteSet('precommit', 1, 2);
    const first = makeVote(big!, 'precommit', 1, 2, HASH_A);
    assert.equal(classifyVote(set, first), 'new');
    set = addVote(set, first, 5);
    const again = makeVote(big!, 'precommit', 1, 2, HASH_A, 123);
    assert.equal(classifyVote(set, again), 'duplicate');
    assert.equal(addVote(set, again, 5), set);
    const other = makeVote(big!, 'precommit', 1, 2, null);
    assert.equal(classifyVote(set, other), 'conflict');
    const after = addVote(set, other, 5);
    assert.equal(after.power, 5, 'an equivocator counts once towards any value');
    assert.equal(after.powerByValue.get(NIL_KEY), 5);
    assert.equal(after.powerByValue.get(valueKey(HASH_A)), 5);
    assert.equal(set.powerByValue.get(NIL_KEY), undefined, 'the earlier set is unchanged');
  });

  it('refuses a vote of another height, round or type', () => {
    const set = emptyVoteSet('prevote', 1, 0);
    for (const vote of [
      makeVote(big!, 'precommit', 1, 0, null),
      makeVote(big!, 'prevote', 2, 0, null),
      makeVote(big!, 'prevote', 1, 1, null),
    ]) {
      assert.throws(() => addVote(set, vote, 5), RangeError);
    }
  });

  it('property: power per value is the sum of its voters, total counts each validator once', () => {
    const all = [big!, middle!, small1!, small2!];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 })), {
          maxLength: 12,
        }),
        (entries) => {
          let set = emptyVoteSet('prevote', 1, 0);
          const values = [null, HASH_A, HASH_B];
          const expected = new Map<string, Set<number>>();
          const voters = new Set<number>();
          for (const [who, which] of entries) {
            const validator = all[who]!;
            const value = values[which]!;
            set = addVote(set, makeVote(validator, 'prevote', 1, 0, value), validator.power);
            const key = valueKey(value);
            expected.set(key, (expected.get(key) ?? new Set()).add(who));
            voters.add(who);
          }
          for (const [key, who] of expected) {
            const power = [...who].reduce((sum, i) => sum + all[i]!.power, 0);
            assert.equal(set.powerByValue.get(key), power);
          }
          assert.equal(
            set.power,
            [...voters].reduce((sum, i) => sum + all[i]!.power, 0),
          );
        },
      ),
      { numRuns: 60 },
    );
  });
});
