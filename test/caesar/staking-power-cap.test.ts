import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  JailReason,
  VoteOption,
  formatConsensusAddress,
  selectValidatorSet,
} from '../../src/caesar/index.js';
import type { StakingParams, ValidatorRecord } from '../../src/caesar/index.js';
import {
  MAX_TOTAL_VOTING_POWER,
  applyValidatorUpdates,
  createValidatorSet,
} from '../../src/consensus/validator-set.js';
import { makeSender } from '../consensus/application/fixture.js';
import { addressOf } from './caesar-fixture.js';
import { TEST_GOV, govTx, stakingParamsOf } from './gov-fixture.js';
import {
  TEST_PARAMS,
  equivocation,
  makeValidator,
  openStakingNode,
  recordOf,
  runBlock,
  stakingGenesis,
} from './staking-fixture.js';

/**
 * The powers handed to consensus never sum above MAX_TOTAL_VOTING_POWER (2^50): when the chosen
 * validators' floor(tokens / powerUnit) do, every one is scaled down in proportion, none is
 * passed over (docs/caesar.md, "Epochs"). Passing over the ones that did not fit handed the power
 * to the smaller stakes, down to one validator with all of it.
 */

const CAP = BigInt(MAX_TOTAL_VOTING_POWER);

function record(tokens: bigint, jailed = JailReason.NONE): ValidatorRecord {
  return {
    publicKey: new Uint8Array(32),
    pqPublicKey: new Uint8Array(1793),
    storageRoot: new Uint8Array(32),
    commissionBps: 0,
    tokens,
    shares: tokens,
    power: 0,
    jailed,
    jailedUntil: 0,
  };
}

const address = (byte: number) => new Uint8Array(20).fill(byte);
const id = (byte: number) => formatConsensusAddress(address(byte));
const unitParams: StakingParams = { ...TEST_PARAMS, powerUnit: 1n, minValidatorStake: 1n };

describe('caesar staking: total power above 2^50', () => {
  it('scales every chosen power down instead of passing over the largest', () => {
    // A stake whose share of the cap is below 1 (3 × (C − 2) / (4C + 3)) keeps a power of 1.
    const tiny = selectValidatorSet(unitParams, [
      { address: address(1), record: record(4n * CAP) },
      { address: address(2), record: record(3n) },
    ]);
    assert.deepEqual(
      tiny,
      new Map([
        [id(1), Number((4n * CAP * (CAP - 2n)) / (4n * CAP + 3n))],
        [id(2), 1],
      ]),
    );
    // The largest stake exactly at the cap, three just below: all four stay, in proportion.
    const atCap = selectValidatorSet({ ...unitParams, maxValidators: 4 }, [
      { address: address(1), record: record(CAP) },
      { address: address(2), record: record(CAP - 1n) },
      { address: address(3), record: record(CAP - 1n) },
      { address: address(4), record: record(CAP - 1n) },
    ]);
    const room = CAP - 4n;
    const total = 4n * CAP - 3n;
    assert.deepEqual(
      atCap,
      new Map([
        [id(1), Number((CAP * room) / total)],
        [id(2), Number(((CAP - 1n) * room) / total)],
        [id(3), Number(((CAP - 1n) * room) / total)],
        [id(4), Number(((CAP - 1n) * room) / total)],
      ]),
    );
    // One stake above the cap beside a small one: both scaled by (C − 2) / (C + 2,000,001);
    // before, the large one was passed over and the small one held all the power.
    const above = selectValidatorSet(unitParams, [
      { address: address(1), record: record(CAP + 1n) },
      { address: address(2), record: record(2_000_000n) },
    ]);
    assert.deepEqual(
      above,
      new Map([
        [id(1), Number(((CAP + 1n) * (CAP - 2n)) / (CAP + 2_000_001n))],
        [id(2), Number((2_000_000n * (CAP - 2n)) / (CAP + 2_000_001n))],
      ]),
    );
    // Within the cap nothing is scaled: power = floor(tokens / powerUnit).
    const within = selectValidatorSet({ ...unitParams, powerUnit: 100n }, [
      { address: address(1), record: record(CAP * 50n) },
      { address: address(2), record: record(CAP * 50n - 1n) },
    ]);
    assert.deepEqual(
      within,
      new Map([
        [id(1), Number(CAP / 2n)],
        [id(2), Number((CAP * 50n - 1n) / 100n)],
      ]),
    );
  });

  it('chooses the first maxValidators by stake, with powers in their order, each at least 1, summing to at most 2^50', () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: 0n, max: (1n << 124n) - 1n }), { minLength: 1, maxLength: 12 }),
        fc.bigInt({ min: 1n, max: 1n << 40n }),
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
        (stakes, powerUnit, maxValidators, jailed) => {
          const params = { ...unitParams, powerUnit, maxValidators, minValidatorStake: 1_000n };
          const records = stakes.map((tokens, i) => ({
            address: address(i + 1),
            record: record(tokens, jailed[i] ? JailReason.DOWNTIME : JailReason.NONE),
          }));
          const powers = selectValidatorSet(params, records);
          const ranked = records
            .filter((_, i) => !jailed[i])
            .filter(({ record: r }) => r.tokens >= 1_000n && r.tokens >= powerUnit)
            .sort((a, b) =>
              a.record.tokens === b.record.tokens
                ? a.address[0]! - b.address[0]!
                : a.record.tokens > b.record.tokens
                  ? -1
                  : 1,
            )
            .slice(0, maxValidators);
          assert.deepEqual(
            [...powers.keys()],
            ranked.map(({ address: a }) => formatConsensusAddress(a)),
          );
          const values = [...powers.values()];
          const sum = values.reduce((a, b) => a + BigInt(b), 0n);
          assert.ok(sum <= CAP, `total ${sum}`);
          const unscaled = ranked.map(({ record: r }) => r.tokens / powerUnit);
          const unscaledSum = unscaled.reduce((a, b) => a + b, 0n);
          for (const [i, power] of values.entries()) {
            assert.ok(Number.isSafeInteger(power) && power >= 1);
            if (i > 0) assert.ok(power <= values[i - 1]!, 'a larger stake never has less power');
            if (unscaledSum <= CAP) assert.equal(BigInt(power), unscaled[i]);
            else {
              // Scaled: at most 1 above the exact share p × C / T (a floor raised to 1), at most
              // n + 1 below it (the floor of p × (C − n) / T).
              const n = BigInt(values.length);
              assert.ok(BigInt(power) * unscaledSum <= unscaled[i]! * CAP + unscaledSum);
              assert.ok(BigInt(power) * unscaledSum >= unscaled[i]! * CAP - (n + 1n) * unscaledSum);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('after governance sets powerUnit to 1, the next epoch hands consensus every validator, scaled, and a slash measures the stake behind the power', async () => {
    const [a, b, c] = [makeValidator(), makeValidator(), makeValidator()];
    const proposer = makeSender();
    // powerUnit 4: powers 2^49, 2^48, 2^48, exactly 2^50 in all.
    const genesis = {
      ...stakingGenesis({
        params: { powerUnit: 4n, unbondingBlocks: 10 },
        validators: [
          { validator: a, selfBond: 2n * CAP },
          { validator: b, selfBond: CAP },
          { validator: c, selfBond: CAP },
        ],
        balances: [{ address: addressOf(proposer), amount: 1_000n }],
      }),
      governance: { ...TEST_GOV, votingPeriod: 1, timelock: 1 },
    };
    const node = await openStakingNode(genesis);
    const keys = [a, b, c].map((v) => ({
      publicKey: v.sender.publicKey,
      pqPublicKey: v.pqKey,
      storageRoot: v.storageRoot,
    }));
    let consensusSet = createValidatorSet(
      [2n * CAP, CAP, CAP].map((bond, i) => ({ ...keys[i]!, power: Number(bond / 4n) })),
    );
    try {
      const changes = [{ name: 'powerUnit' as const, value: 1n }];
      runBlock(node, [
        govTx(proposer, {
          op: 'gov/submit-proposal',
          fee: 0n,
          title: 'unit',
          changes,
          deposit: 100n,
        }),
      ]); // 1
      runBlock(
        node,
        [a, b, c].map((v) =>
          govTx(v.sender, { op: 'gov/vote', fee: 0n, proposal: 1, option: VoteOption.YES }),
        ),
      ); // 2
      runBlock(node); // 3: applied at its end
      assert.equal(stakingParamsOf(node).powerUnit, 1n);
      // 4 (epoch): stakes 2^51, 2^50, 2^50 sum to 2^52; each scaled by (2^50 − 3) / 2^52.
      const epoch = runBlock(node);
      const expected = [(CAP - 3n) / 2n, (CAP - 3n) / 4n, (CAP - 3n) / 4n].map(Number);
      assert.deepEqual(
        [a, b, c].map((v) => recordOf(node, v)!.power),
        expected,
      );
      assert.equal(epoch.validatorUpdates.length, 3);
      consensusSet = applyValidatorUpdates(consensusSet, epoch.validatorUpdates).validators;
      assert.deepEqual(
        [a, b, c].map((v) => consensusSet.validators.find((m) => m.address === v.id)?.power),
        expected,
        'consensus accepts the scaled set',
      );
      assert.ok(consensusSet.totalPower <= MAX_TOTAL_VOTING_POWER);
      runBlock(node); // 5
      runBlock(node); // 6: a votes with its scaled power
      // 7: a's offence at 6 burns 10% of the 2^51 behind its power, not of power × powerUnit.
      runBlock(node, [], { evidence: [equivocation(a, 6)] });
      assert.equal(recordOf(node, a)!.tokens, 2n * CAP - (2n * CAP) / 10n);
    } finally {
      await node.close();
    }
  });
});
