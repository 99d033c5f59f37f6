import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JailReason } from '../../src/caesar/index.js';
import type { DuplicateVoteEvidence } from '../../src/consensus/types.js';
import type { TestNode } from '../consensus/application/fixture.js';
import {
  balanceOf,
  bondedOf,
  equivocation,
  feePoolOf,
  makeValidator,
  openStakingNode,
  recordOf,
  runBlock,
  stakingGenesis,
  stakingTx,
  supplyOf,
  unbondingTotalOf,
} from './staking-fixture.js';
import type { TestValidator } from './staking-fixture.js';

/**
 * A jailed validator leaves the set in the block that jails it unless that would empty the set,
 * and then in the first block that can remove it, an epoch whose selection is empty included
 * (docs/caesar.md, "Epochs" and "Slashing and jailing"); while it keeps its power, a new offence
 * is slashed again. TEST_PARAMS: epochBlocks 4, minValidatorStake 1,000, powerUnit 100,
 * slashFractionBps 1,000 (10%), jailBlocks 3, signedWindow 4, maxMissed 2.
 */

/** Powers of a block's updates by validator id, e.g. `{ [a.id]: 0 }`. */
function updatesOf(
  result: { validatorUpdates: readonly { publicKey: Uint8Array; power: number }[] },
  validators: readonly TestValidator[],
): Record<string, number> {
  const powers: Record<string, number> = {};
  for (const update of result.validatorUpdates) {
    const validator = validators.find((v) =>
      Buffer.from(v.sender.publicKey).equals(Buffer.from(update.publicKey)),
    );
    assert.ok(validator !== undefined, 'an update names a known validator');
    powers[validator.id] = update.power;
  }
  return powers;
}

/** Another pair of votes for the offence of `equivocation(validator, height)` (round 1). */
function otherPair(validator: TestValidator, height: number): DuplicateVoteEvidence {
  const { voteA, voteB } = equivocation(validator, height);
  return { voteA: { ...voteA, round: 1 }, voteB: { ...voteB, round: 1 } };
}

/** Σ balances + bonded + unbonding + fee pool = supply. */
function assertSupply(node: TestNode, validators: readonly TestValidator[]): void {
  const balances = validators.reduce((sum, v) => sum + balanceOf(node, v.account), 0n);
  assert.equal(
    balances + bondedOf(node) + unbondingTotalOf(node) + feePoolOf(node),
    supplyOf(node),
    'balances + bonded + unbonding + fee pool = supply',
  );
}

const unbondOne = (validator: TestValidator) =>
  stakingTx(validator.sender, { op: 'unbond', fee: 0n, amount: 1n, validator: validator.address });

describe('caesar staking: jailed members leave the set as soon as they can', () => {
  it('an equivocator jailed at an epoch whose selection is empty leaves in that block', async () => {
    const a = makeValidator();
    const b = makeValidator();
    const node = await openStakingNode(
      stakingGenesis({
        params: { unbondingBlocks: 10 },
        validators: [
          { validator: a, selfBond: 2_000n },
          { validator: b, selfBond: 1_000n },
        ],
        balances: [],
      }),
    );
    try {
      // 1: b drops below minValidatorStake; a does not qualify once jailed: 4 selects nobody.
      assert.equal(runBlock(node, [unbondOne(b)]).txResults[0]!.code, 0);
      runBlock(node); // 2
      runBlock(node); // 3
      const epoch = runBlock(node, [], { evidence: [equivocation(a, 3)] }); // 4
      const record = recordOf(node, a)!;
      assert.equal(record.jailed, JailReason.EQUIVOCATION);
      assert.equal(record.tokens, 1_800n);
      assert.deepEqual(updatesOf(epoch, [a, b]), { [a.id]: 0 }, 'a leaves, b stays');
      assert.equal(record.power, 0);
      assert.equal(recordOf(node, b)!.power, 10);
      // a votes until 5: an offence at 5 is the one slashed (slashedAt + 1), one at 6 had no
      // power: neither is slashed, and its jail is not extended.
      runBlock(node, [], { evidence: [equivocation(a, 4)] }); // 5
      runBlock(node); // 6
      runBlock(node, [], { evidence: [equivocation(a, 5), equivocation(a, 6)] }); // 7
      assert.deepEqual(recordOf(node, a), record);
      assertSupply(node, [a, b]);
    } finally {
      await node.close();
    }
  });

  it('with epochBlocks 1 and an empty selection, a validator jailed for downtime leaves at once', async () => {
    const v = [makeValidator(), makeValidator(), makeValidator()] as const;
    const [a, b, c] = v;
    const node = await openStakingNode(
      stakingGenesis({
        params: { unbondingBlocks: 10, epochBlocks: 1 },
        validators: v.map((validator) => ({ validator, selfBond: 1_000n })),
        balances: [],
      }),
    );
    try {
      // 1: all three drop below minValidatorStake: every block selects nobody from here on.
      runBlock(node, [unbondOne(a), unbondOne(b), unbondOne(c)]);
      const commit = {
        signed: [
          { validator: a, power: 10 },
          { validator: b, power: 10 },
        ],
        missed: [{ validator: c, power: 10 }],
      };
      runBlock(node, [], { lastCommit: commit }); // 2: c missed 1
      runBlock(node, [], { lastCommit: commit }); // 3: 2, at maxMissed
      const jailing = runBlock(node, [], { lastCommit: commit }); // 4: 3, jailed
      assert.equal(recordOf(node, c)!.jailed, JailReason.DOWNTIME);
      assert.deepEqual(updatesOf(jailing, v), { [c.id]: 0 });
      assert.equal(recordOf(node, c)!.power, 0);
      assert.deepEqual(runBlock(node).validatorUpdates, [], '5: nothing more to remove');
      assert.deepEqual(
        [a, b].map((x) => recordOf(node, x)!.power),
        [10, 10],
      );
    } finally {
      await node.close();
    }
  });

  it('members jailed together stay while nobody else can vote, leave at the first unjail, and are slashed for offences while they kept their power', async () => {
    const v = [makeValidator(), makeValidator()] as const;
    const [a, b] = v;
    const genesis = stakingGenesis({
      params: { unbondingBlocks: 10 },
      validators: v.map((validator) => ({ validator, selfBond: 10_000n })),
      balances: [],
    });
    const node = await openStakingNode(genesis);
    try {
      // 1: both equivocated at 1: both slashed and jailed until 4, both stay (power 100 each).
      const both = runBlock(node, [], { evidence: [equivocation(a, 1), equivocation(b, 1)] });
      assert.deepEqual(both.validatorUpdates, []);
      assert.deepEqual(
        v.map((x) => [recordOf(node, x)!.tokens, recordOf(node, x)!.power]),
        [
          [9_000n, 100],
          [9_000n, 100],
        ],
      );
      runBlock(node); // 2
      // 3: the same offence again, and one at slashedAt + 1: the watermark slashes neither.
      const again = runBlock(node, [], { evidence: [otherPair(b, 1), equivocation(b, 2)] });
      assert.deepEqual(again.validatorUpdates, []);
      assert.equal(recordOf(node, b)!.tokens, 9_000n, 'slashed once for the offence at 1');
      assert.equal(recordOf(node, b)!.jailedUntil, 4);
      // 4 (epoch, selects nobody): b equivocated at 3 with its power: slashed again, 10% of
      // the 10,000 behind its power, and jailed anew; the set stays (both are jailed).
      const epoch = runBlock(node, [], { evidence: [equivocation(b, 3)] });
      assert.deepEqual(epoch.validatorUpdates, []);
      let record = recordOf(node, b)!;
      assert.deepEqual(
        [record.tokens, record.slashedAt, record.jailedUntil, record.power],
        [8_000n, 4, 7, 100],
      );
      // 5: a unjails; b, jailed since 1, leaves in this block (power 0 from 7), not at 8.
      const back = runBlock(node, [stakingTx(a.sender, { op: 'unjail', fee: 0n })]);
      assert.equal(back.txResults[0]!.code, 0, back.txResults[0]!.log);
      assert.deepEqual(updatesOf(back, v), { [b.id]: 0 });
      assert.equal(recordOf(node, a)!.power, 100);
      runBlock(node); // 6
      // 7: b's offence at 6 was with its power (it voted until 6): slashed, though its record
      // has power 0 now.
      runBlock(node, [], { evidence: [equivocation(b, 6)] });
      record = recordOf(node, b)!;
      assert.deepEqual(
        [record.tokens, record.slashedAt, record.jailedUntil, record.power],
        [7_000n, 7, 10, 0],
      );
      runBlock(node); // 8
      // 9: an offence at 8, after it left: nothing to slash, the jail is not extended.
      runBlock(node, [], { evidence: [equivocation(b, 8)] });
      assert.deepEqual(recordOf(node, b), record);
      assert.equal(supplyOf(node), genesis.token.supply - 1_000n - 1_000n - 1_000n - 1_000n);
      assertSupply(node, v);
    } finally {
      await node.close();
    }
  });
});
