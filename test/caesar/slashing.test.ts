import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CAESAR_RESULT_CODES,
  CaesarErrorCode,
  CaesarStateError,
  JailReason,
  ProposalStatus,
  VoteOption,
  caesarStateKey,
} from '../../src/caesar/index.js';
import type { CaesarGenesis, ParamChange, StakingParams } from '../../src/caesar/index.js';
import { lastEpochHeight, nextEpochHistory } from '../../src/caesar/end-block.js';
import {
  EPOCH_HISTORY_KEY,
  decodeEpochHistory,
  decodeValidatorRecord,
  encodeEpochHistory,
  encodeValidatorRecord,
} from '../../src/caesar/staking-state.js';
import { encodeCanonical } from '../../src/codec/cbor.js';
import type { DuplicateVoteEvidence } from '../../src/consensus/types.js';
import { makeSender } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';
import { addressOf } from './caesar-fixture.js';
import { TEST_GOV, depositsOf, govTx, proposalOf, stakingParamsOf } from './gov-fixture.js';
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
  unbondingOf,
  unbondingTotalOf,
} from './staking-fixture.js';
import type { TestValidator } from './staking-fixture.js';

/**
 * Slashing the stake behind the power (issue 6): a validator votes at height o with
 * the power computed at the end of the last epoch block E ≤ o − 2, so the unbondings from it
 * begun after E are slashed with it (unbonding before equivocating evades nothing), those begun
 * at E or before are not; and one offence is slashed once, also after an unjail.
 * TEST_PARAMS: epochBlocks 4, slashFractionBps 1,000 (10%), jailBlocks 3, powerUnit 100.
 */

const code = (error: CaesarErrorCode): number => CAESAR_RESULT_CODES[error];

interface Chain {
  readonly node: TestNode;
  readonly v: readonly [TestValidator, TestValidator, TestValidator];
  readonly delegator: Sender;
  readonly d: Uint8Array;
}

/** Three validators with 10,000 each (300 spendable each); the delegator holds 5,000. */
async function openChain(
  params: Partial<StakingParams> = {},
  governance?: Partial<typeof TEST_GOV>,
): Promise<Chain> {
  const v = [makeValidator(), makeValidator(), makeValidator()] as const;
  const delegator = makeSender();
  const d = addressOf(delegator);
  const staking = stakingGenesis({
    params: { unbondingBlocks: 10, ...params },
    validators: v.map((validator) => ({ validator, selfBond: 10_000n })),
    balances: [
      { address: d, amount: 5_000n },
      ...v.map((validator) => ({ address: validator.account, amount: 300n })),
    ],
  });
  const genesis: CaesarGenesis =
    governance === undefined ? staking : { ...staking, governance: { ...TEST_GOV, ...governance } };
  return { node: await openStakingNode(genesis), v, delegator, d };
}

/** Σ balances + bonded + unbonding + fee pool + deposits held = supply. */
function assertSupply(chain: Chain): void {
  const { node, v, d } = chain;
  const balances = [d, ...v.map((x) => x.account)].reduce(
    (sum, address) => sum + balanceOf(node, address),
    0n,
  );
  assert.equal(
    balances + bondedOf(node) + unbondingTotalOf(node) + feePoolOf(node) + depositsOf(node),
    supplyOf(node),
    'balances + bonded + unbonding + fee pool + deposits = supply',
  );
}

const entries = (node: TestNode, account: Uint8Array) =>
  unbondingOf(node, account).map((e) => [e.creationHeight, e.amount]);

const unbond = (sender: Sender, validator: TestValidator, amount: bigint) =>
  stakingTx(sender, { op: 'unbond', fee: 0n, amount, validator: validator.address });

/** Another pair of votes for the offence of `equivocation(validator, height)` (round 1). */
function otherPair(validator: TestValidator, height: number): DuplicateVoteEvidence {
  const { voteA, voteB } = equivocation(validator, height);
  return { voteA: { ...voteA, round: 1 }, voteB: { ...voteB, round: 1 } };
}

describe('caesar slashing: the stake behind the power at the offence', () => {
  // Block 4 (an epoch) sets v1's power from its tokens after the block's unbond; that power
  // votes from height 6 (updates of block h take effect at h + 2), so at height 5 v1 still votes
  // with the genesis power (set at "height 0").
  for (const { offence, slashedFromBlock4 } of [
    { offence: 6, slashedFromBlock4: false },
    { offence: 5, slashedFromBlock4: true },
  ]) {
    it(`an operator that unbonds and then equivocates at height ${offence} loses the fraction of its unbonding (block-4 unbond ${slashedFromBlock4 ? 'slashed' : 'not slashed'})`, async () => {
      const chain = await openChain();
      const { node, v, delegator, d } = chain;
      const [v1] = v;
      try {
        runBlock(node, [
          stakingTx(delegator, { op: 'delegate', fee: 0n, amount: 2_000n, validator: v1.address }),
        ]); // 1: v1 holds 12,000
        runBlock(node); // 2
        runBlock(node); // 3
        const epoch = runBlock(node, [unbond(delegator, v1, 500n)]); // 4: epoch, after the unbond
        assert.deepEqual(
          epoch.validatorUpdates.map((u) => u.power),
          [115],
          'the power of block 4 counts 11,500',
        );
        runBlock(node, [unbond(v1.sender, v1, 9_000n)]); // 5: the operator leaves, power stays 115
        runBlock(node, [unbond(delegator, v1, 100n)]); // 6: an unbond in the offence block
        assert.equal(recordOf(node, v1)!.tokens, 2_400n);
        assert.equal(recordOf(node, v1)!.power, 115, 'still voting with 11,500');
        const supplyBefore = supplyOf(node);
        const slashed = runBlock(node, [], { evidence: [equivocation(v1, offence)] }); // 7
        assert.deepEqual(
          slashed.validatorUpdates.map((u) => u.power),
          [0],
          'removed in the same block',
        );
        // Due: 10% of the stake behind the power at the offence (115 × 100 at 6, the genesis
        // 100 × 100 at 5), from the unbondings first, the rest from the 2,400 still bonded.
        const due = slashedFromBlock4 ? 1_000n : 1_150n;
        const fromUnbondings = 900n + 10n + (slashedFromBlock4 ? 50n : 0n);
        const record = recordOf(node, v1)!;
        assert.equal(record.tokens, 2_400n - (due - fromUnbondings), 'the rest of what is due');
        assert.equal(record.jailed, JailReason.EQUIVOCATION);
        assert.equal(record.slashedAt, 7);
        assert.deepEqual(entries(node, v1.account), [[5, 8_100n]], 'the operator loses 900');
        const block4 = slashedFromBlock4 ? 450n : 500n;
        assert.deepEqual(
          entries(node, d),
          [
            [4, block4],
            [6, 90n],
          ],
          'the offence-block unbond loses 10',
        );
        assert.equal(supplyOf(node), supplyBefore - due, 'burnt = what was due');
        assert.equal(bondedOf(node), 20_000n + record.tokens);
        assert.equal(unbondingTotalOf(node), 8_100n + block4 + 90n);
        assertSupply(chain);

        // Paid out as slashed: block 4's entry at 14, the operator's at 15, block 6's at 16.
        for (let height = 8; height <= 16; height++) runBlock(node);
        assert.equal(balanceOf(node, v1.account), 300n + 8_100n);
        assert.equal(balanceOf(node, d), 5_000n - 2_000n + block4 + 90n);
        assert.equal(unbondingTotalOf(node), 0n);
        assert.equal(supplyOf(node), supplyBefore - due);
        assertSupply(chain);
      } finally {
        await node.close();
      }
    });
  }

  it('an entry paid out before the evidence is not touched; one completing in its block is slashed first', async () => {
    const chain = await openChain({ unbondingBlocks: 3 });
    const { node, v, delegator, d } = chain;
    const [v1] = v;
    try {
      runBlock(node, [
        stakingTx(delegator, { op: 'delegate', fee: 0n, amount: 1_000n, validator: v1.address }),
      ]); // 1
      runBlock(node, [unbond(delegator, v1, 300n)]); // 2: completes at 5
      runBlock(node, [unbond(delegator, v1, 100n)]); // 3: completes at 6
      runBlock(node); // 4
      runBlock(node); // 5: the first entry is paid
      assert.equal(balanceOf(node, d), 4_000n + 300n);
      const supplyBefore = supplyOf(node);
      // The offence at 5 voted with the genesis power (100 × 100): 1,000 is due, 10 of it from
      // the entry still waiting, the rest from the tokens (the paid-out entry's share too).
      runBlock(node, [], { evidence: [equivocation(v1, 5)] }); // 6
      assert.equal(recordOf(node, v1)!.tokens, 10_600n - 990n);
      assert.equal(balanceOf(node, d), 4_300n + 90n, 'paid whole, then 90% of the second');
      assert.deepEqual(entries(node, d), []);
      assert.equal(supplyOf(node), supplyBefore - 1_000n);
      assertSupply(chain);
    } finally {
      await node.close();
    }
  });
});

describe('caesar slashing: one offence is slashed once', () => {
  it('more evidence of an offence already slashed is ignored after the unjail; a new offence is slashed', async () => {
    const chain = await openChain();
    const { node, v } = chain;
    const [v1] = v;
    try {
      for (let i = 0; i < 4; i++) runBlock(node); // 1–4
      runBlock(node, [], { evidence: [equivocation(v1, 3)] }); // 5
      assert.equal(recordOf(node, v1)!.tokens, 9_000n);
      assert.equal(recordOf(node, v1)!.slashedAt, 5);
      runBlock(node); // 6
      runBlock(node); // 7
      const back = runBlock(node, [stakingTx(v1.sender, { op: 'unjail', fee: 0n })]); // 8: epoch
      assert.equal(back.txResults[0]!.code, 0, back.txResults[0]!.log);
      assert.deepEqual(
        back.validatorUpdates.map((u) => u.power),
        [90],
        'rejoins, votes from 10',
      );
      const supplyBefore = supplyOf(node);

      // Another pair of votes for the offence at 3, and an offence at 6 (slashedAt + 1: it still
      // voted with the power it was slashed for): nothing happens.
      const again = runBlock(node, [], { evidence: [otherPair(v1, 3), equivocation(v1, 6)] }); // 9
      assert.deepEqual(again.validatorUpdates, []);
      const record = recordOf(node, v1)!;
      assert.equal(record.tokens, 9_000n, 'slashed once');
      assert.equal(record.jailed, JailReason.NONE);
      assert.equal(supplyOf(node), supplyBefore);

      // An offence with the power it got back (from height 10) is a new one.
      runBlock(node); // 10
      const second = runBlock(node, [], { evidence: [equivocation(v1, 10)] }); // 11
      assert.deepEqual(
        second.validatorUpdates.map((u) => u.power),
        [0],
      );
      assert.equal(recordOf(node, v1)!.tokens, 8_100n);
      assert.equal(recordOf(node, v1)!.slashedAt, 11);
      assert.equal(supplyOf(node), supplyBefore - 900n);
      assertSupply(chain);
      const early = runBlock(node, [stakingTx(v1.sender, { op: 'unjail', fee: 0n })]); // 12
      assert.equal(early.txResults[0]!.code, code(CaesarErrorCode.JAIL_NOT_OVER));
    } finally {
      await node.close();
    }
  });

  it('the watermark is a record field only once set: records never slashed keep their bytes', () => {
    const v1 = makeValidator();
    const record = {
      publicKey: v1.sender.publicKey,
      pqPublicKey: v1.pqKey,
      storageRoot: v1.storageRoot,
      commissionBps: 0,
      tokens: 10n,
      shares: 10n,
      power: 0,
      jailed: JailReason.NONE,
      jailedUntil: 0,
    };
    const plain = encodeValidatorRecord(record);
    const decoded = decodeValidatorRecord(plain);
    assert.equal(decoded.slashedAt, undefined);
    assert.equal(Object.hasOwn(decoded, 'slashedAt'), false);
    const marked = { ...record, commissionChangedAt: 3, slashedAt: 7 };
    assert.deepEqual(decodeValidatorRecord(encodeValidatorRecord(marked)), marked);
    assert.ok(encodeValidatorRecord(marked).length > plain.length);
  });
});

describe('caesar slashing: the epoch that set the power under a governed epochBlocks', () => {
  it('lastEpochHeight follows each regime; nextEpochHistory keeps what evidence can reach', () => {
    assert.equal(lastEpochHeight(4, [], -1), 0);
    assert.equal(lastEpochHeight(4, [], 3), 0);
    assert.equal(lastEpochHeight(4, [], 7), 4);
    assert.equal(lastEpochHeight(4, [], 8), 8);
    // 4 → 6 at the end of block 9: 8 was the last epoch of the old regime, block 10 (the first
    // after the change) recomputes whatever its height, then the multiples of 6 from 12.
    const history = nextEpochHistory([], 4, 6, 9);
    assert.deepEqual(history, [
      { from: 1, epochBlocks: 4, lastBefore: 0 },
      { from: 11, epochBlocks: 6, lastBefore: 10 },
    ]);
    assert.equal(lastEpochHeight(6, history, 7), 4);
    assert.equal(lastEpochHeight(6, history, 9), 8);
    assert.equal(lastEpochHeight(6, history, 10), 10, 'the block after the change');
    assert.equal(lastEpochHeight(6, history, 11), 10, 'not 6: block 6 was no epoch');
    assert.equal(lastEpochHeight(6, history, 12), 12);
    assert.equal(lastEpochHeight(6, history, 17), 12);
    // At 300 the regime from 11 still covers the oldest height evidence may name (199).
    const later = nextEpochHistory(history, 6, 5, 300);
    assert.deepEqual(later, [
      { from: 11, epochBlocks: 6, lastBefore: 10 },
      { from: 302, epochBlocks: 5, lastBefore: 301 },
    ]);
    assert.equal(lastEpochHeight(5, later, 300), 300);
    assert.equal(lastEpochHeight(5, later, 301), 301);
    assert.equal(lastEpochHeight(5, later, 304), 301);
    assert.equal(lastEpochHeight(5, later, 305), 305);
    // A multiple that recomputed nothing (an empty selection at 315): a regime from 316 whose
    // lastBefore answers 315 and the heights up to the next multiple.
    const frozen = [...later, { from: 316, epochBlocks: 5, lastBefore: 310 }];
    assert.equal(lastEpochHeight(5, frozen, 314), 310);
    assert.equal(lastEpochHeight(5, frozen, 315), 310, 'not 315: it set no power');
    assert.equal(lastEpochHeight(5, frozen, 319), 310);
    assert.equal(lastEpochHeight(5, frozen, 320), 320);
    assert.deepEqual(decodeEpochHistory(encodeEpochHistory(later)), later);
    for (const bad of [
      [],
      [[10, 6]],
      [[10, 0, 8]],
      [[10, 6, 10]],
      [
        [10, 6, 8],
        [10, 5, 9],
      ],
    ]) {
      assert.throws(
        () => decodeEpochHistory(encodeCanonical(bad)),
        CaesarStateError,
        JSON.stringify(bad),
      );
    }
  });

  it('after governance changes epochBlocks, the next block recomputes the set and the window starts there', async () => {
    // unbondingBlocks 110: raising epochBlocks to 6 needs at least 6 + 100.
    const chain = await openChain({ unbondingBlocks: 110 }, { votingPeriod: 1, timelock: 1 });
    const { node, v, delegator, d } = chain;
    const [v1] = v;
    try {
      runBlock(node, [
        stakingTx(delegator, { op: 'delegate', fee: 0n, amount: 2_000n, validator: v1.address }),
      ]); // 1
      for (let i = 0; i < 5; i++) runBlock(node); // 2–6
      const change: ParamChange[] = [{ name: 'epochBlocks', value: 6n }];
      runBlock(node, [
        govTx(delegator, {
          op: 'gov/submit-proposal',
          fee: 0n,
          title: 'longer epochs',
          changes: change,
          deposit: 100n,
        }),
      ]); // 7: voting up to 8, applied at the end of 9
      const epoch8 = runBlock(node, [
        unbond(delegator, v1, 300n),
        ...v.map((x) =>
          govTx(x.sender, { op: 'gov/vote', fee: 0n, proposal: 1, option: VoteOption.YES }),
        ),
      ]); // 8: the last epoch under epochBlocks 4, after this unbond
      assert.deepEqual(
        epoch8.validatorUpdates.map((u) => u.power),
        [117],
      );
      runBlock(node, [unbond(delegator, v1, 200n)]); // 9
      assert.equal(proposalOf(node, 1)!.status, ProposalStatus.APPLIED);
      assert.equal(stakingParamsOf(node).epochBlocks, 6);
      const stored = node.store.state.get(caesarStateKey(EPOCH_HISTORY_KEY));
      assert.deepEqual(decodeEpochHistory(stored!), [
        { from: 1, epochBlocks: 4, lastBefore: 0 },
        { from: 11, epochBlocks: 6, lastBefore: 10 },
      ]);
      // 10 is no multiple of 4 or 6, but it is the first block after the change.
      const first = runBlock(node);
      assert.deepEqual(
        first.validatorUpdates.map((u) => u.power),
        [115],
        'recomputed at 10',
      );
      runBlock(node, [unbond(delegator, v1, 100n)]); // 11
      runBlock(node); // 12
      runBlock(node); // 13
      // The offence at 13 voted with the power of block 10 (block 12's takes effect at 14):
      // the unbonds of 8 and 9 came before it and did not back it, the one of 11 did.
      runBlock(node, [], { evidence: [equivocation(v1, 13)] }); // 14
      assert.equal(recordOf(node, v1)!.tokens, 11_400n - 1_140n);
      assert.deepEqual(entries(node, d), [
        [8, 300n],
        [9, 200n],
        [11, 90n],
      ]);
      assertSupply(chain);
    } finally {
      await node.close();
    }
  });
});

/**
 * Submits `changes` at the next height and has every validator vote yes in the one after
 * (votingPeriod 1, timelock 1): applied at the end of the block after the votes.
 */
function passChanges(chain: Chain, title: string, changes: ParamChange[]): void {
  const { node, v, delegator } = chain;
  runBlock(node, [
    govTx(delegator, { op: 'gov/submit-proposal', fee: 0n, title, changes, deposit: 100n }),
  ]);
  runBlock(node, [
    ...v.map((x) =>
      govTx(x.sender, { op: 'gov/vote', fee: 0n, proposal: 1, option: VoteOption.YES }),
    ),
  ]);
}

describe('caesar slashing: every power in force has its stake within reach', () => {
  it('a change of epochBlocks from 500 to 899 recomputes the set at once: the power at the offence is backed by what the slash reaches', async () => {
    const chain = await openChain(
      { epochBlocks: 500, unbondingBlocks: 5_000 },
      { votingPeriod: 1, timelock: 1 },
    );
    const { node, v, delegator, d } = chain;
    const [v1] = v;
    const key = (u: { publicKey: Uint8Array }) =>
      Buffer.from(u.publicKey).equals(Buffer.from(v1.sender.publicKey));
    // v1's power by the height from which it votes with it (updates of block h: from h + 2).
    const powers: { from: number; power: number }[] = [{ from: 1, power: 100 }];
    const run = (txs: Uint8Array[] = []) => {
      const height = node.nextHeight();
      const result = runBlock(node, txs);
      for (const update of result.validatorUpdates) {
        if (key(update)) powers.push({ from: height + 2, power: update.power });
      }
      return result;
    };
    try {
      run([
        stakingTx(delegator, { op: 'delegate', fee: 0n, amount: 2_000n, validator: v1.address }),
      ]); // 1: 12,000
      while (node.nextHeight() < 600) run(); // 500: power 120
      run([unbond(delegator, v1, 1_000n)]); // 600: 11,000 bonded, the power stays 120
      while (node.nextHeight() < 997) run();
      passChanges(chain, 'long epochs', [{ name: 'epochBlocks', value: 899n }]); // 997, 998
      const applied = run(); // 999: the change is applied at its end
      assert.equal(stakingParamsOf(node).epochBlocks, 899);
      assert.deepEqual(applied.validatorUpdates, []);
      const first = run(); // 1000: the first block of the new regime recomputes the set
      while (node.nextHeight() < 1100) run();
      run([unbond(delegator, v1, 500n)]); // 1100: backs the power of block 1000
      while (node.nextHeight() < 1800) run();
      const votedWith = powers.filter((p) => p.from <= 1799).at(-1)!.power;
      const tokens = recordOf(node, v1)!.tokens;
      const waiting = entries(node, d);
      const supplyBefore = supplyOf(node);
      runBlock(node, [], { evidence: [equivocation(v1, 1799)] }); // 1800
      const burnt = supplyBefore - supplyOf(node);
      // The stake behind the power v1 voted with at 1799 lost 10%.
      assert.ok(
        burnt * 10n >= BigInt(votedWith) * 100n,
        `burnt ${burnt} covers 10% of the ${votedWith * 100} behind power ${votedWith}`,
      );
      assert.deepEqual(
        first.validatorUpdates.filter(key).map((u) => u.power),
        [110],
        'recomputed at 1000, not only at 1798: no gap above max(500, 899)',
      );
      assert.equal(votedWith, 110);
      assert.equal(recordOf(node, v1)!.tokens, tokens - tokens / 10n);
      assert.deepEqual(waiting, [
        [600, 1_000n],
        [1100, 500n],
      ]);
      assert.deepEqual(
        entries(node, d),
        [
          [600, 1_000n],
          [1100, 450n],
        ],
        'the entry from before block 1000 did not back its power; the later one loses 10%',
      );
      assertSupply(chain);
    } finally {
      await node.close();
    }
  });

  it('governance may not raise epochBlocks above unbondingBlocks − 100: refused at admission and at execution', async () => {
    // A genesis may choose epochBlocks 150 with unbondingBlocks 200; lowering is always allowed.
    const chain = await openChain(
      { epochBlocks: 150, unbondingBlocks: 200 },
      { votingPeriod: 1, timelock: 1 },
    );
    const { node, v, delegator } = chain;
    const propose = (value: bigint) =>
      govTx(delegator, {
        op: 'gov/submit-proposal',
        fee: 0n,
        title: `epochBlocks ${value}`,
        changes: [{ name: 'epochBlocks', value }],
        deposit: 100n,
      });
    try {
      const submitted = runBlock(node, [propose(50n), propose(140n), propose(151n)]); // 1
      assert.deepEqual(
        submitted.txResults.map((r) => r.code),
        [0, 0, code(CaesarErrorCode.GOV_INVALID_PARAM)],
        '140 lowers 150; 151 raises it above 200 − 100',
      );
      assert.match(submitted.txResults[2]!.log, /needs unbondingBlocks \(200\) of at least 251/);
      runBlock(node, [
        ...v.map((x) =>
          govTx(x.sender, { op: 'gov/vote', fee: 0n, proposal: 1, option: VoteOption.YES }),
        ),
        ...v.map((x) =>
          govTx(x.sender, { op: 'gov/vote', fee: 0n, proposal: 2, option: VoteOption.YES }),
        ),
      ]); // 2
      runBlock(node); // 3: proposal 1 applies 50, then proposal 2 would raise 50 to 140
      assert.equal(proposalOf(node, 1)!.status, ProposalStatus.APPLIED);
      assert.equal(proposalOf(node, 2)!.status, ProposalStatus.FAILED);
      assert.equal(stakingParamsOf(node).epochBlocks, 50);
      assertSupply(chain);
    } finally {
      await node.close();
    }
  });

  it('an epoch whose selection is empty sets no power: slashing measures from the epoch that did', async () => {
    const chain = await openChain({}, { votingPeriod: 1, timelock: 1 });
    const { node, v, delegator, d } = chain;
    const [v1] = v;
    try {
      runBlock(node, [
        stakingTx(delegator, { op: 'delegate', fee: 0n, amount: 2_000n, validator: v1.address }),
      ]); // 1: 12,000
      runBlock(node); // 2
      // 3, 4 (epoch: power 120); applied at the end of 5: nobody qualifies any more.
      passChanges(chain, 'too high', [{ name: 'minValidatorStake', value: 1_000_000n }]);
      runBlock(node); // 5
      assert.equal(stakingParamsOf(node).minValidatorStake, 1_000_000n);
      runBlock(node, [unbond(delegator, v1, 1_000n)]); // 6
      runBlock(node); // 7
      const empty = runBlock(node); // 8: epoch, empty selection, the set stays
      assert.deepEqual(empty.validatorUpdates, []);
      assert.equal(recordOf(node, v1)!.power, 120, 'still voting with 12,000');
      const stored = node.store.state.get(caesarStateKey(EPOCH_HISTORY_KEY));
      assert.deepEqual(
        decodeEpochHistory(stored!),
        [
          { from: 1, epochBlocks: 4, lastBefore: 0 },
          { from: 9, epochBlocks: 4, lastBefore: 4 },
        ],
        'block 8 set no power: heights 8 on are answered by block 4',
      );
      runBlock(node); // 9
      runBlock(node); // 10
      runBlock(node); // 11
      // The offence at 11 voted with the power of block 4, which the unbond at 6 backed.
      runBlock(node, [], { evidence: [equivocation(v1, 11)] }); // 12
      assert.equal(recordOf(node, v1)!.tokens, 11_000n - 1_100n);
      assert.deepEqual(entries(node, d), [[6, 900n]], 'the unbond at 6 loses 10%');
      assertSupply(chain);
    } finally {
      await node.close();
    }
  });
});
