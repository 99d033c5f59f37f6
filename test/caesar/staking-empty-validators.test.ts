import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JailReason, vacantRecordLifetime } from '../../src/caesar/index.js';
import { makeSender } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';
import { addressOf } from './caesar-fixture.js';
import {
  TEST_PARAMS,
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
  unbondingOf,
  unbondingTotalOf,
  validatorListOf,
} from './staking-fixture.js';
import type { TestValidator } from './staking-fixture.js';

/**
 * A validator's tokens and shares are zero together (docs/caesar.md, "Staking transactions":
 * an unbond whose rounded-up shares are all the delegator's is a full unbond), and a validator
 * left with neither is removed from `vals` once nothing can refer to it any more (docs/caesar.md,
 * "Epochs"), so fully unbonded validators cannot fill `MAX_VALIDATOR_CANDIDATES` for good.
 */

/** Balances + bonded + unbonding + fee pool = supply, over `accounts`. */
function assertConserved(node: TestNode, accounts: readonly Uint8Array[], what: string): void {
  const balances = accounts.reduce((sum, account) => sum + balanceOf(node, account), 0n);
  assert.equal(
    balances + bondedOf(node) + unbondingTotalOf(node) + feePoolOf(node),
    supplyOf(node),
    what,
  );
}

function assertTokensAndSharesZeroTogether(node: TestNode, validators: TestValidator[]): void {
  for (const validator of validators) {
    const record = recordOf(node, validator);
    if (record === undefined) continue;
    assert.equal(record.tokens === 0n, record.shares === 0n, `${validator.id}: ${record.tokens}`);
  }
}

const unbond = (sender: Sender, validator: TestValidator, amount: bigint) =>
  stakingTx(sender, { op: 'unbond', fee: 0n, amount, validator: validator.address });

describe('caesar staking: an unbond that rounds up to every share', () => {
  it('the holder of every share, unbonding less than its worth, takes all the tokens', async () => {
    const v1 = makeValidator();
    const v2 = makeValidator();
    const late = makeSender();
    const genesis = stakingGenesis({
      params: { blockReward: 1n },
      validators: [
        { validator: v1, selfBond: 1_000_000n },
        { validator: v2, selfBond: 10_000_000n },
      ],
      balances: [{ address: addressOf(late), amount: 10n }],
    });
    const node = await openStakingNode(genesis);
    const accounts = [v1.account, v2.account, addressOf(late)];
    try {
      runBlock(node);
      // v1 proposes alone: the block's reward of 1 raises its tokens, not its shares.
      runBlock(node, [], { proposer: v1 });
      assert.deepEqual(
        [recordOf(node, v1)?.tokens, recordOf(node, v1)?.shares],
        [1_000_001n, 1_000_000n],
      );
      // 1,000,000 of its 1,000,001 rounds up to ceil(10^12 / 1,000,001) = every share.
      const result = runBlock(node, [unbond(v1.sender, v1, 1_000_000n)]);
      assert.equal(result.txResults[0]!.code, 0, result.txResults[0]!.log);
      const after = recordOf(node, v1)!;
      assert.deepEqual([after.tokens, after.shares], [0n, 0n]);
      assert.equal(unbondingOf(node, v1.account)[0]?.amount, 1_000_001n);
      assertTokensAndSharesZeroTogether(node, [v1, v2]);
      assertConserved(node, accounts, 'after the unbond');
      // The next delegator buys at one share per base unit: nothing was left for it to take.
      const delegated = runBlock(node, [
        stakingTx(late, { op: 'delegate', fee: 0n, amount: 5n, validator: v1.address }),
      ]);
      assert.equal(delegated.txResults[0]!.code, 0, delegated.txResults[0]!.log);
      assert.deepEqual([recordOf(node, v1)?.tokens, recordOf(node, v1)?.shares], [5n, 5n]);
      assertConserved(node, accounts, 'after the delegation');
    } finally {
      await node.close();
    }
  });

  it('a delegator whose rounded-up shares are all of its own takes its whole worth', async () => {
    const v1 = makeValidator();
    const v2 = makeValidator();
    const delegator = makeSender();
    const genesis = stakingGenesis({
      params: { blockReward: 1n },
      validators: [
        { validator: v1, selfBond: 1_000n },
        { validator: v2, selfBond: 10_000n },
      ],
      balances: [{ address: addressOf(delegator), amount: 2_000n }],
    });
    const node = await openStakingNode(genesis);
    const accounts = [v1.account, v2.account, addressOf(delegator)];
    try {
      runBlock(node);
      runBlock(node, [], { proposer: v1 }); // tokens 1,001 for 1,000 shares
      // 1,001 buys floor(1,001 × 1,000 / 1,001) = 1,000 shares: tokens 2,002, shares 2,000.
      runBlock(node, [
        stakingTx(delegator, { op: 'delegate', fee: 0n, amount: 1_001n, validator: v1.address }),
      ]);
      assert.deepEqual([recordOf(node, v1)?.tokens, recordOf(node, v1)?.shares], [2_002n, 2_000n]);
      // Worth 1,001; unbonding 1,000 rounds up to ceil(1,000 × 2,000 / 2,002) = all 1,000.
      const result = runBlock(node, [unbond(delegator, v1, 1_000n)]);
      assert.equal(result.txResults[0]!.code, 0, result.txResults[0]!.log);
      assert.equal(unbondingOf(node, addressOf(delegator))[0]?.amount, 1_001n);
      assert.deepEqual([recordOf(node, v1)?.tokens, recordOf(node, v1)?.shares], [1_001n, 1_000n]);
      assertConserved(node, accounts, 'after the unbond');
    } finally {
      await node.close();
    }
  });
});

describe('caesar staking: vacant validators leave the list', () => {
  it('removes a validator with no tokens, shares or power once nothing can refer to it', async () => {
    const genesisValidators = [makeValidator(), makeValidator()];
    const [early, member, revived] = [makeValidator(), makeValidator(), makeValidator()];
    const delegator = makeSender();
    const newcomers = [early, member, revived];
    const genesis = stakingGenesis({
      validators: genesisValidators.map((validator) => ({ validator, selfBond: 10_000n })),
      balances: [
        ...newcomers.map((v) => ({ address: v.account, amount: 5_000n })),
        { address: addressOf(delegator), amount: 5_000n },
      ],
    });
    const node = await openStakingNode(genesis);
    const all = [...genesisValidators, ...newcomers];
    const accounts = [...all.map((v) => v.account), addressOf(delegator)];
    const sorted = (validators: TestValidator[]) => validators.map((v) => v.id).sort();
    const bond = TEST_PARAMS.minValidatorStake;
    const create = (v: TestValidator) =>
      stakingTx(v.sender, {
        op: 'create-validator',
        fee: 0n,
        bond,
        pqKey: v.pqKey,
        commission: 0,
        storageRoot: v.storageRoot,
      });
    const lifetime = vacantRecordLifetime(TEST_PARAMS.unbondingBlocks);
    const epoch = TEST_PARAMS.epochBlocks;
    const runUntil = (height: number) => {
      while (node.nextHeight() <= height) runBlock(node);
    };
    const applied = (result: ReturnType<typeof runBlock>) => {
      for (const r of result.txResults) assert.equal(r.code, 0, r.log);
    };
    try {
      runBlock(node); // 1
      applied(runBlock(node, newcomers.map(create))); // 2
      assert.deepEqual(validatorListOf(node), sorted(all));
      // 3: `early` and `revived` unbond everything before any epoch: vacant from here.
      applied(
        runBlock(node, [unbond(early.sender, early, bond), unbond(revived.sender, revived, bond)]),
      );
      assert.equal(recordOf(node, early)?.vacantSince, 3);
      runUntil(4); // epoch: `member` joins the set
      assert.ok(recordOf(node, member)!.power > 0);
      // 5: `member` unbonds everything but keeps its power until the next epoch: not vacant.
      applied(runBlock(node, [unbond(member.sender, member, bond)]));
      assert.equal(recordOf(node, member)?.vacantSince, undefined);
      // 6: a delegation to `revived` makes it a validator with stake again.
      applied(
        runBlock(node, [
          stakingTx(delegator, {
            op: 'delegate',
            fee: 0n,
            amount: bond,
            validator: revived.address,
          }),
        ]),
      );
      assert.equal(recordOf(node, revived)?.vacantSince, undefined);
      runUntil(8); // epoch: `member` leaves the set (power 0 from the end of block 8)
      assert.equal(recordOf(node, member)?.power, 0);
      assert.equal(recordOf(node, member)?.vacantSince, 8);

      // Kept through every epoch before vacantSince + lifetime (its unbondings are paid, and
      // evidence of its last votes with power could still come).
      const earlyGone = Math.ceil((3 + lifetime) / epoch) * epoch;
      runUntil(earlyGone - 1);
      assert.deepEqual(validatorListOf(node), sorted(all));
      assert.equal(unbondingOf(node, early.account).length, 0, 'its unbonding was paid long ago');
      runUntil(earlyGone);
      assert.deepEqual(validatorListOf(node), sorted([...genesisValidators, member, revived]));
      assert.equal(recordOf(node, early), undefined);

      // Evidence of `member`'s vote at height 9 (its power from block 8's end counts from 10)
      // can come up to 100 heights later: its record is still there to jail.
      const evidenceAt = 9 + 100;
      assert.ok(evidenceAt < 8 + lifetime);
      runUntil(evidenceAt - 1);
      runBlock(node, [], { evidence: [equivocation(member, 9)] });
      const jailed = recordOf(node, member)!;
      assert.equal(jailed.jailed, JailReason.EQUIVOCATION);
      const memberGone = Math.ceil(Math.max(8 + lifetime, jailed.jailedUntil) / epoch) * epoch;
      runUntil(memberGone - 1);
      assert.ok(validatorListOf(node).includes(member.id));
      runUntil(memberGone);
      assert.deepEqual(validatorListOf(node), sorted([...genesisValidators, revived]));
      assert.equal(recordOf(node, member), undefined);

      // The key may register again, as a new validator.
      applied(runBlock(node, [create(early)]));
      const again = recordOf(node, early)!;
      assert.deepEqual([again.tokens, again.shares, again.vacantSince], [bond, bond, undefined]);
      assert.deepEqual(validatorListOf(node), sorted([...genesisValidators, revived, early]));
      assertTokensAndSharesZeroTogether(node, all);
      assertConserved(node, accounts, 'at the end');
      assert.equal(supplyOf(node), genesis.token.supply, 'nothing was minted or burnt');
    } finally {
      await node.close();
    }
  });
});
