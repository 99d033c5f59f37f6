import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CAESAR_RESULT_CODES,
  CaesarErrorCode,
  CaesarStateError,
  JailReason,
  ProposalStatus,
  VoteOption,
  caesarInitialState,
  caesarStateKey,
  createCaesarModule,
  decodeStoredAmount,
  delegationKey,
  sharesValue,
  validatorKey,
} from '../../src/caesar/index.js';
import type { CaesarGenesis, ParamChange } from '../../src/caesar/index.js';
import { bigintToBytes } from '../../src/caesar/amount.js';
import {
  backingAt,
  decodeValidatorRecord,
  encodeValidatorRecord,
  withBacking,
} from '../../src/caesar/staking-state.js';
import type { ValidatorRecord } from '../../src/caesar/staking-state.js';
import { decodeCanonical, encodeCanonical } from '../../src/codec/cbor.js';
import { bytesEqual } from '../../src/crypto/bytes.js';
import { makeSender, openNode } from '../consensus/application/fixture.js';
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
 * A slash burns `slashFraction` of the stake behind the power the offender voted with at the
 * offence (power × the powerUnit it was computed with, as Cosmos SDK x/staking `Slash`), not of
 * its tokens when the evidence arrives: stake delegated after the offence does not raise the
 * burn. TEST_PARAMS: epochBlocks 4, powerUnit 100, slashFractionBps 1,000 (10%), blockReward 0.
 */

interface Chain {
  readonly node: TestNode;
  readonly v: readonly [TestValidator, TestValidator, TestValidator];
  readonly delegator: Sender;
  readonly d: Uint8Array;
}

/** Three validators with 10,000 each (power 100); the delegator holds 6,000 unless told. */
async function openChain(
  governance?: Partial<typeof TEST_GOV>,
  delegatorBalance = 6_000n,
): Promise<Chain> {
  const v = [makeValidator(), makeValidator(), makeValidator()] as const;
  const delegator = makeSender();
  const d = addressOf(delegator);
  const staking = stakingGenesis({
    params: { unbondingBlocks: 10 },
    validators: v.map((validator) => ({ validator, selfBond: 10_000n })),
    balances: [
      { address: d, amount: delegatorBalance },
      ...v.map((validator) => ({ address: validator.account, amount: 300n })),
    ],
  });
  const genesis: CaesarGenesis =
    governance === undefined ? staking : { ...staking, governance: { ...TEST_GOV, ...governance } };
  return { node: await openStakingNode(genesis), v, delegator, d };
}

/** Σ balances + bonded + unbonding + fee pool + deposits held = supply. */
function assertSupply({ node, v, d }: Chain): void {
  const balances = [d, ...v.map((x) => x.account)].reduce(
    (sum, address) => sum + balanceOf(node, address),
    0n,
  );
  assert.equal(
    balances + bondedOf(node) + unbondingTotalOf(node) + feePoolOf(node) + depositsOf(node),
    supplyOf(node),
  );
}

/** What `account`'s delegation to `validator` is worth now. */
function worth(node: TestNode, validator: TestValidator, account: Uint8Array): bigint {
  const shares = decodeStoredAmount(
    node.store.state.get(caesarStateKey(delegationKey(validator.address, account))),
  );
  return sharesValue(recordOf(node, validator)!, shares);
}

describe('caesar slashing: the burn is measured on the stake at the offence', () => {
  /**
   * Offence at 5 (genesis power 100: 10,000 behind it); with `late`, 5,000 is delegated at 6,
   * the epoch at 8 raises v1's power to 150 (voting from 10), and the evidence comes at 10.
   */
  async function run(late: boolean) {
    const chain = await openChain();
    const { node, v, delegator, d } = chain;
    const [v1] = v;
    for (let height = 1; height <= 5; height++) runBlock(node);
    runBlock(
      node,
      late
        ? [stakingTx(delegator, { op: 'delegate', fee: 0n, amount: 5_000n, validator: v1.address })]
        : [],
    ); // 6
    runBlock(node); // 7
    runBlock(node); // 8: epoch
    runBlock(node); // 9
    const before = recordOf(node, v1)!;
    const supplyBefore = supplyOf(node);
    const bondedBefore = bondedOf(node);
    const lateWorthBefore = late ? worth(node, v1, d) : 0n;
    runBlock(node, [], { evidence: [equivocation(v1, 5)] }); // 10
    const after = recordOf(node, v1)!;
    assertSupply(chain);
    return {
      node,
      before,
      after,
      burnt: supplyBefore - supplyOf(node),
      bondedDrop: bondedBefore - bondedOf(node),
      operatorWorth: worth(node, v1, v1.account),
      lateWorthBefore,
      lateWorth: late ? worth(node, v1, d) : 0n,
    };
  }

  it('a delegation made between the offence and the evidence does not raise the burn', async () => {
    const alone = await run(false);
    const joined = await run(true);
    try {
      assert.equal(alone.before.power, 100);
      assert.equal(joined.before.power, 150, 'the power now counts the late delegation');
      assert.equal(joined.before.tokens, 15_000n);
      // 10% of the 10,000 behind the power of height 5, in both runs (the former rule burnt
      // 10% of the tokens at the evidence: 1,500 with the late delegation).
      assert.equal(alone.burnt, 1_000n);
      assert.equal(joined.burnt, alone.burnt, 'the late delegation burns nothing more');
      assert.equal(joined.bondedDrop, joined.burnt, 'the supply falls by exactly the burn');
      assert.equal(alone.after.tokens, 9_000n);
      assert.equal(joined.after.tokens, 14_000n);
      assert.equal(joined.after.jailed, JailReason.EQUIVOCATION);
      // The bonded cut falls on every share alike (as in Cosmos): the late 5,000 bears its
      // third of the same 1,000, floor(5,000 × 14,000 / 15,000), not 10% of itself.
      assert.equal(joined.lateWorthBefore, 5_000n);
      assert.equal(joined.lateWorth, (5_000n * 14_000n) / 15_000n);
      assert.ok(5_000n - joined.lateWorth < 500n);
      assert.equal(alone.operatorWorth, 9_000n);
      assert.equal(joined.operatorWorth, (10_000n * 14_000n) / 15_000n);
    } finally {
      await alone.node.close();
      await joined.node.close();
    }
  });

  it('a validator removed for downtime before the evidence is slashed on the power it had', async () => {
    const chain = await openChain();
    const { node, v } = chain;
    const [v1, v2, v3] = v;
    try {
      runBlock(node); // 1
      // 2–4: v1 misses the commits of 1, 2 and 3 (maxMissed 2): jailed at 4, power 0 from 6.
      for (let height = 2; height <= 4; height++) {
        runBlock(node, [], {
          lastCommit: {
            signed: [
              { validator: v2, power: 100 },
              { validator: v3, power: 100 },
            ],
            missed: [{ validator: v1, power: 100 }],
          },
        });
      }
      assert.equal(recordOf(node, v1)!.jailed, JailReason.DOWNTIME);
      assert.equal(recordOf(node, v1)!.power, 0);
      const supplyBefore = supplyOf(node);
      runBlock(node, [], { evidence: [equivocation(v1, 3)] }); // 5: it voted with 100 at 3
      assert.equal(supplyBefore - supplyOf(node), 1_000n);
      assert.equal(recordOf(node, v1)!.tokens, 9_000n);
      assert.equal(recordOf(node, v1)!.jailed, JailReason.EQUIVOCATION);
      assertSupply(chain);
    } finally {
      await node.close();
    }
  });

  it('a power computed before governance changed powerUnit is measured with the unit it was computed with', async () => {
    const chain = await openChain({ timelock: 0 });
    const { node, v, delegator } = chain;
    const [v1, v2] = v;
    try {
      runBlock(node, [
        govTx(delegator, {
          op: 'gov/submit-proposal',
          fee: 0n,
          title: 'double powerUnit',
          changes: [{ name: 'powerUnit', value: 200n }] as ParamChange[],
          deposit: 100n,
        }),
      ]); // 1: voting ends at 4, applies at the end of 4
      runBlock(
        node,
        v.map((x) =>
          govTx(x.sender, { op: 'gov/vote', fee: 0n, proposal: 1, option: VoteOption.YES }),
        ),
      ); // 2
      runBlock(node); // 3
      runBlock(node); // 4: epoch under powerUnit 100 (powers stay 100), then the change applies
      assert.equal(proposalOf(node, 1)!.status, ProposalStatus.APPLIED);
      assert.equal(stakingParamsOf(node).powerUnit, 200n);
      const held = recordOf(node, v1)!;
      assert.equal(held.power, 100);
      assert.deepEqual(held.backing, [{ from: 0, stake: 10_000n }], 'the old unit is recorded');
      runBlock(node); // 5
      runBlock(node); // 6
      runBlock(node); // 7
      const supplyBefore = supplyOf(node);
      // The offence at 7 voted with 100, computed as 10,000 / 100: 1,000 is due, not 2,000.
      runBlock(node, [], { evidence: [equivocation(v1, 7)] }); // 8: epoch, powers 10,000 / 200
      assert.equal(supplyBefore - supplyOf(node), 1_000n);
      assert.equal(recordOf(node, v1)!.tokens, 9_000n);
      assert.equal(recordOf(node, v2)!.power, 50);
      runBlock(node); // 9
      runBlock(node); // 10
      // v2 voted with 50 at 10, computed as 10,000 / 200: 1,000 is due again.
      runBlock(node, [], { evidence: [equivocation(v2, 10)] }); // 11
      assert.equal(recordOf(node, v2)!.tokens, 9_000n);
      assertSupply(chain);
    } finally {
      await node.close();
    }
  });
});

describe('caesar slashing: never more than due, never the last token', () => {
  const unbond = (sender: Sender, validator: TestValidator, amount: bigint) =>
    stakingTx(sender, { op: 'unbond', fee: 0n, amount, validator: validator.address });
  const delegate = (sender: Sender, validator: TestValidator, amount: bigint) =>
    stakingTx(sender, { op: 'delegate', fee: 0n, amount, validator: validator.address });

  /**
   * Offence by v1 at 5 (10,000 behind its power: 1,000 due); block 6 and 7 carry `at6` and
   * `at7`, the evidence comes at 10 (its entries, created after the genesis set the power, are
   * all still waiting: unbondingBlocks 10).
   */
  async function slashAfter(
    chain: Chain,
    at6: (v1: TestValidator) => Uint8Array[],
    at7: (v1: TestValidator) => Uint8Array[],
  ) {
    const { node, v } = chain;
    const [v1] = v;
    for (let height = 1; height <= 5; height++) runBlock(node);
    for (const result of [runBlock(node, at6(v1)), runBlock(node, at7(v1))]) {
      for (const r of result.txResults) assert.equal(r.code, 0, r.log);
    }
    runBlock(node); // 8: epoch
    runBlock(node); // 9
    const supplyBefore = supplyOf(node);
    const bondedBefore = bondedOf(node);
    const unbondingBefore = unbondingTotalOf(node);
    runBlock(node, [], { evidence: [equivocation(v1, 5)] }); // 10
    assertSupply(chain);
    const burnt = supplyBefore - supplyOf(node);
    assert.equal(
      bondedBefore - bondedOf(node) + (unbondingBefore - unbondingTotalOf(node)),
      burnt,
      'the supply falls by exactly what left the bonded and unbonding totals',
    );
    return {
      burnt,
      bondedCut: bondedBefore - bondedOf(node),
      unbondingCut: unbondingBefore - unbondingTotalOf(node),
      after: recordOf(node, v1)!,
    };
  }

  it('keeps the last token while shares remain, and the validator still takes delegations', async () => {
    const chain = await openChain();
    const { node, v, delegator } = chain;
    const [v1] = v;
    try {
      // The operator unbonds 9,989 at 6 and 10 at 7: 1 token and 1 share stay. The entries
      // lose 998 + 1 of the 1,000 due; the 1 left is not taken from the last token.
      const { burnt, bondedCut, unbondingCut, after } = await slashAfter(
        chain,
        (x) => [unbond(x.sender, x, 9_989n)],
        (x) => [unbond(x.sender, x, 10n)],
      );
      assert.equal(unbondingCut, 999n);
      assert.deepEqual(
        unbondingOf(node, v1.account).map((entry) => entry.amount),
        [9_989n - 998n, 10n - 1n],
      );
      assert.equal(bondedCut, 0n);
      assert.equal(burnt, 999n, 'one short of due: the last token stays');
      assert.equal(after.tokens, 1n);
      assert.equal(after.shares, 1n);
      assert.equal(after.jailed, JailReason.EQUIVOCATION);
      // A delegation prices its shares by tokens / shares: admitted and executed.
      const transaction = delegate(delegator, v1, 100n);
      const admission = node.app.checkTx(transaction);
      assert.ok(admission.ok, admission.ok ? '' : `${admission.code}: ${admission.message}`);
      const result = runBlock(node, [transaction]); // 11
      assert.equal(result.txResults[0]!.code, 0, result.txResults[0]!.log);
      assert.equal(recordOf(node, v1)!.tokens, 101n);
      assert.equal(recordOf(node, v1)!.shares, 101n);
      assertSupply(chain);
    } finally {
      await node.close();
    }
  });

  it('refuses a delegation to a validator with shares and no tokens with a typed code', async () => {
    const v1 = makeValidator();
    const delegator = makeSender();
    const genesis = stakingGenesis({
      params: { unbondingBlocks: 10 },
      validators: [{ validator: v1, selfBond: 10_000n }],
      balances: [{ address: addressOf(delegator), amount: 1_000n }],
    });
    // A record as the former rule could leave it: its last token burnt, a share left.
    const key = caesarStateKey(validatorKey(v1.address));
    const initialState = caesarInitialState(genesis).map((entry) =>
      bytesEqual(entry.key, key)
        ? {
            key,
            value: encodeValidatorRecord({ ...decodeValidatorRecord(entry.value), tokens: 0n }),
          }
        : entry,
    );
    const node = await openNode({ modules: [createCaesarModule()], initialState });
    try {
      runBlock(node); // 1: writes the initial state
      assert.equal(recordOf(node, v1)!.tokens, 0n);
      assert.equal(recordOf(node, v1)!.shares, 10_000n);
      const transaction = delegate(delegator, v1, 100n);
      const admission = node.app.checkTx(transaction);
      assert.equal(admission.ok, false);
      if (!admission.ok) assert.equal(admission.code, CaesarErrorCode.INVALID_DELEGATION);
      const result = runBlock(node, [transaction]);
      assert.equal(
        result.txResults[0]!.code,
        CAESAR_RESULT_CODES[CaesarErrorCode.INVALID_DELEGATION],
      );
      assert.match(result.txResults[0]!.log, /no tokens/);
      assert.equal(balanceOf(node, addressOf(delegator)), 1_000n, 'nothing written');
    } finally {
      await node.close();
    }
  });

  it('a delegation made after the offence and unbonded before the evidence does not raise the burn', async () => {
    const alone = await openChain(undefined, 20_000n);
    const late = await openChain(undefined, 20_000n);
    try {
      const quiet = await slashAfter(
        alone,
        () => [],
        () => [],
      );
      assert.equal(quiet.burnt, 1_000n);
      assert.equal(quiet.after.tokens, 9_000n);
      // 20,000 delegated at 6 (after the offence) and unbonded at 7: its entry's own cut,
      // 2,000, is scaled to the 1,000 due, which it then bears in full.
      const joined = await slashAfter(
        late,
        (x) => [delegate(late.delegator, x, 20_000n)],
        (x) => [unbond(late.delegator, x, 20_000n)],
      );
      assert.equal(joined.burnt, 1_000n, 'the late delegate-then-unbond burns nothing more');
      assert.equal(joined.unbondingCut, 1_000n);
      assert.equal(joined.bondedCut, 0n);
      assert.deepEqual(
        unbondingOf(late.node, late.d).map((entry) => entry.amount),
        [19_000n],
      );
      assert.equal(joined.after.tokens, 10_000n);
      assert.equal(worth(late.node, late.v[0], late.v[0].account), 10_000n);
    } finally {
      await alone.node.close();
      await late.node.close();
    }
  });

  it('scales the entries in proportion to their cuts and takes the rounding from the tokens', async () => {
    const chain = await openChain(undefined, 20_000n);
    const { node, v, delegator, d } = chain;
    const [v1] = v;
    try {
      // A backer's 3,000 (cut 300) and a late 20,000 (cut 2,000): 2,300 against 1,000 due.
      const { burnt, bondedCut, unbondingCut, after } = await slashAfter(
        chain,
        (x) => [unbond(x.sender, x, 3_000n), delegate(delegator, x, 20_000n)],
        (x) => [unbond(delegator, x, 20_000n)],
      );
      const operatorCut = (300n * 1_000n) / 2_300n;
      const lateCut = (2_000n * 1_000n) / 2_300n;
      assert.equal(operatorCut + lateCut, 999n);
      assert.deepEqual(
        unbondingOf(node, v1.account).map((entry) => entry.amount),
        [3_000n - operatorCut],
      );
      assert.deepEqual(
        unbondingOf(node, d).map((entry) => entry.amount),
        [20_000n - lateCut],
      );
      assert.equal(unbondingCut, 999n);
      assert.equal(bondedCut, 1n, 'the rounding remainder of due comes from the tokens');
      assert.equal(burnt, 1_000n);
      assert.equal(after.tokens, 7_000n - 1n);
    } finally {
      await node.close();
    }
  });
});

describe('caesar slashing: the backing of a record', () => {
  const v1 = makeValidator();
  const record: ValidatorRecord = {
    publicKey: v1.sender.publicKey,
    pqPublicKey: v1.pqKey,
    storageRoot: v1.storageRoot,
    commissionBps: 0,
    tokens: 10_000n,
    shares: 10_000n,
    power: 100,
    jailed: JailReason.NONE,
    jailedUntil: 0,
  };

  it('answers the stake at a height and keeps what evidence can still name', () => {
    assert.equal(backingAt(record, 5, 100n), 10_000n, 'no backing: power × powerUnit');
    const first = withBacking(record, 10, 15_000n, 100n, 8);
    assert.deepEqual(first.backing, [
      { from: 0, stake: 10_000n },
      { from: 10, stake: 15_000n },
    ]);
    assert.equal(backingAt(first, 9, 100n), 10_000n);
    assert.equal(backingAt(first, 10, 100n), 15_000n);
    assert.equal(backingAt(first, 9, 999n), 10_000n, 'the unit at the change, not now');
    // At the end of 298, later evidence names heights from 199 on: the entry from 10 covers
    // them, the one from 0 is dropped.
    const removed = withBacking(first, 300, 0n, 100n, 298);
    assert.deepEqual(removed.backing, [
      { from: 10, stake: 15_000n },
      { from: 300, stake: 0n },
    ]);
    assert.equal(backingAt(removed, 199, 100n), 15_000n);
    assert.equal(backingAt(removed, 300, 100n), 0n);
  });

  it('is a record field only once set, and a corrupt one is refused', () => {
    const plain = encodeValidatorRecord(record);
    assert.equal(Object.hasOwn(decodeValidatorRecord(plain), 'backing'), false);
    const backed = withBacking(record, 10, 15_000n, 100n, 8);
    assert.deepEqual(decodeValidatorRecord(encodeValidatorRecord(backed)), backed);
    const map = decodeCanonical(encodeValidatorRecord(backed)) as Record<string, unknown>;
    const stake = bigintToBytes(5n);
    for (const bad of [
      [],
      'x',
      [[5]],
      [[5, stake, 1]],
      [
        [5, stake],
        [5, stake],
      ],
      [
        [6, stake],
        [5, stake],
      ],
      [[-1, stake]],
      [[5, Uint8Array.of(0, 1)]],
    ]) {
      assert.throws(
        () => decodeValidatorRecord(encodeCanonical({ ...map, backing: bad })),
        CaesarStateError,
        JSON.stringify(bad, (_, value: unknown) => (value instanceof Uint8Array ? 'bytes' : value)),
      );
    }
  });
});
