import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  JailReason,
  decodeDelegatorIndex,
  decodeStoredAmount,
  delegationKey,
  delegatorIndexKey,
  sharesValue,
  caesarStateKey,
} from '../../src/caesar/index.js';
import type { StakingParams, ValidatorRecord } from '../../src/caesar/index.js';
import {
  applyValidatorUpdates,
  createValidatorSet,
  MAX_TOTAL_VOTING_POWER,
} from '../../src/consensus/validator-set.js';
import type { ValidatorSet } from '../../src/consensus/validator-set.js';
import { bytesEqual, toHex } from '../../src/crypto/bytes.js';
import { makeSender } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';
import { addressOf, transfer } from './caesar-fixture.js';
import {
  TEST_PARAMS,
  balanceOf,
  blockInput,
  bondedOf,
  equivocation,
  feePoolOf,
  makeValidator,
  openStakingNode,
  recordOf,
  stakingGenesis,
  stakingTx,
  supplyOf,
  unbondingOf,
  unbondingTotalOf,
  validatorListOf,
} from './staking-fixture.js';
import type { BlockExtras, TestValidator } from './staking-fixture.js';

/**
 * Random blocks of transfers, delegations, unbondings, a validator's creation, unjails,
 * commission changes, equivocation evidence and commits with and without `lastCommit`, executed by two independent
 * routers (one proposing, one re-executing). After every block: the same state root and
 * validator updates on both; balances + bonded + unbonding + fee pool = supply; the supply moved
 * by exactly the reward minted minus what the slashes burnt (predicted here from the state
 * before the block); the bonded and unbonding totals match the records; a validator's tokens and
 * shares are zero together, and it is marked vacant exactly when it also has no power; `vals`
 * lists exactly the validators with a record; each account's delegator index names exactly the
 * validators it has shares of; the validator updates
 * are what a reference selection predicts, and consensus accepts every one of them; a
 * commission moves at most `maxCommissionChangeBps` per block and, when it moves, records the
 * block's height (so at most once per `epochBlocks`).
 */

const PARAMS: StakingParams = {
  ...TEST_PARAMS,
  epochBlocks: 3,
  maxValidators: 3,
  unbondingBlocks: 3,
  blockReward: 37n,
  signedWindow: 4,
  maxMissed: 1,
  jailBlocks: 2,
};

const validators = Array.from({ length: 4 }, () => makeValidator());
const delegatorKeys = Array.from({ length: 3 }, () => makeSender());

type Op =
  | { kind: 'transfer'; from: number; to: number; amount: bigint; fee: bigint }
  | { kind: 'delegate'; from: number; validator: number; amount: bigint; fee: bigint }
  | { kind: 'unbond'; from: number; validator: number; amount: bigint }
  /** The delegation's whole worth as the state before the block has it. */
  | { kind: 'unbond-all'; from: number; validator: number }
  | { kind: 'create' }
  | { kind: 'unjail'; validator: number }
  | { kind: 'edit'; validator: number; step: number };

const amount = fc.oneof(fc.bigInt({ min: 1n, max: 300n }), fc.bigInt({ min: 1n, max: 5_000n }));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('transfer' as const),
    from: fc.nat(2),
    to: fc.nat(3),
    amount,
    fee: fc.bigInt({ min: 0n, max: 20n }),
  }),
  fc.record({
    kind: fc.constant('delegate' as const),
    from: fc.nat(2),
    validator: fc.nat(3),
    amount,
    fee: fc.bigInt({ min: 0n, max: 5n }),
  }),
  fc.record({
    kind: fc.constant('unbond' as const),
    from: fc.nat(2),
    validator: fc.nat(3),
    amount,
  }),
  fc.record({ kind: fc.constant('unbond-all' as const), from: fc.nat(2), validator: fc.nat(3) }),
  fc.record({ kind: fc.constant('create' as const) }),
  fc.record({ kind: fc.constant('unjail' as const), validator: fc.nat(3) }),
  fc.record({
    kind: fc.constant('edit' as const),
    validator: fc.nat(3),
    step: fc.integer({ min: -150, max: 150 }),
  }),
);
const blockArb = fc.record({
  ops: fc.array(opArb, { maxLength: 5 }),
  proposer: fc.option(fc.nat(3)),
  withCommit: fc.boolean(),
  missing: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
  evidence: fc.option(fc.record({ validator: fc.nat(3), age: fc.nat(2) }), { freq: 4 }),
});
const scenarioArb = fc.record({
  selfBonds: fc.array(fc.bigInt({ min: 1_000n, max: 6_000n }), { minLength: 3, maxLength: 3 }),
  blocks: fc.array(blockArb, { minLength: 4, maxLength: 12 }),
});

const quietBlock = {
  ops: [] as Op[],
  proposer: null,
  withCommit: true,
  missing: [false, false, false, false],
  evidence: null,
};
const maturingScenario: typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never = {
  selfBonds: [3_000n, 3_000n, 3_000n],
  blocks: [
    {
      ...quietBlock,
      ops: [
        { kind: 'delegate', from: 0, validator: 0, amount: 500n, fee: 0n },
        { kind: 'delegate', from: 0, validator: 1, amount: 300n, fee: 0n },
      ],
    },
    {
      ...quietBlock,
      ops: [
        { kind: 'unbond', from: 0, validator: 0, amount: 200n },
        { kind: 'unbond-all', from: 0, validator: 1 },
      ],
    },
    ...Array.from({ length: PARAMS.unbondingBlocks + 2 }, () => quietBlock),
  ],
};
/**
 * 5,000 delegated to validator 0 at 1 and unbonded at 2, evidence of its offence at 2 at 3:
 * the entry's own cut, 500, is more than the 300 due on the genesis power of 30.
 */
const lateUnbondScenario: typeof maturingScenario = {
  selfBonds: [3_000n, 3_000n, 3_000n],
  blocks: [
    { ...quietBlock, ops: [{ kind: 'delegate', from: 0, validator: 0, amount: 5_000n, fee: 0n }] },
    { ...quietBlock, ops: [{ kind: 'unbond-all', from: 0, validator: 0 }] },
    { ...quietBlock, evidence: { validator: 0, age: 0 } },
    quietBlock,
  ],
};
/**
 * Jailed members that stay, because removing them would empty the set, and leave later: 0 is
 * slashed at 1 and leaves; 1 (downtime) and 2 (evidence) are jailed together at the epoch 3 and
 * both stay; 2's offence at 4 (its slashedAt + 1) is not slashed again; 1's unjail at 5 lets 2
 * leave there (voting until 6), not at the next epoch; 2's offence at 5, with power, is slashed
 * again at 6, and its offence at 8, without power, is not.
 */
const jailedMembersScenario: typeof maturingScenario = {
  selfBonds: [3_000n, 3_000n, 3_000n],
  blocks: [
    { ...quietBlock, evidence: { validator: 0, age: 0 } },
    { ...quietBlock, missing: [false, true, false, false] },
    { ...quietBlock, missing: [false, true, false, false], evidence: { validator: 2, age: 0 } },
    quietBlock,
    {
      ...quietBlock,
      ops: [{ kind: 'unjail', validator: 1 }],
      evidence: { validator: 2, age: 0 },
    },
    { ...quietBlock, evidence: { validator: 2, age: 0 } },
    { ...quietBlock, evidence: { validator: 2, age: 0 } },
    quietBlock,
    { ...quietBlock, evidence: { validator: 2, age: 0 } },
  ],
};

const BPS = 10_000n;
const slashCut = (value: bigint) => (value * BigInt(PARAMS.slashFractionBps)) / BPS;

/** The reference selection (docs/caesar.md, "Epochs"), written independently of end-block.ts. */
function expectedPowers(records: Map<string, ValidatorRecord>): Map<string, number> {
  const ranked = [...records.entries()]
    .filter(([, r]) => r.jailed === JailReason.NONE && r.tokens >= PARAMS.minValidatorStake)
    .filter(([, r]) => r.tokens >= PARAMS.powerUnit)
    .sort(([a, ra], [b, rb]) =>
      ra.tokens === rb.tokens ? (a < b ? -1 : 1) : ra.tokens > rb.tokens ? -1 : 1,
    );
  const chosen = ranked
    .slice(0, PARAMS.maxValidators)
    .map(([id, record]) => [id, record.tokens / PARAMS.powerUnit] as const);
  // Above the cap every power is scaled down, to at least 1.
  const total = chosen.reduce((sum, [, power]) => sum + power, 0n);
  const cap = BigInt(MAX_TOTAL_VOTING_POWER);
  const scale = (power: bigint) => {
    if (total <= cap) return power;
    const scaled = (power * (cap - BigInt(chosen.length))) / total;
    return scaled === 0n ? 1n : scaled;
  };
  return new Map(chosen.map(([id, power]) => [id, Number(scale(power))]));
}

function snapshot(node: TestNode): Map<string, ValidatorRecord> {
  const map = new Map<string, ValidatorRecord>();
  for (const v of validators) {
    const record = recordOf(node, v);
    if (record !== undefined) map.set(v.id, record);
  }
  return map;
}

describe('caesar staking properties over random sequences', () => {
  it('conserves supply, agrees on two nodes, and hands consensus the modelled updates', async () => {
    // What the runs exercised, so that a generator that stopped reaching a path fails the test.
    const seen = {
      applied: new Set<string>(),
      burns: 0,
      /** Burns below the fraction of the tokens now: stake came after the power was set. */
      burnsBelowStakeNow: 0,
      /** Burns whose unbonding entries owed more than was due (stake came and left late). */
      unbondingsScaled: 0,
      downtimeJails: 0,
      joins: 0,
      removals: 0,
      maturities: 0,
      /** Blocks after which an account had shares of fewer validators (its index shrank). */
      emptied: 0,
    };
    await fc.assert(
      fc.asyncProperty(scenarioArb, async ({ selfBonds, blocks }) => {
        const delegators: Sender[] = delegatorKeys.map((key) => ({ ...key, sequence: 0 }));
        const candidate = validators[3]!;
        const operators: Sender[] = validators.map((v) => ({ ...v.sender, sequence: 0 }));
        const genesis = stakingGenesis({
          params: PARAMS,
          validators: selfBonds.map((selfBond, i) => ({
            validator: validators[i]!,
            selfBond,
            commission: 1_500 * i,
          })),
          balances: [
            ...delegators.map((d) => ({ address: addressOf(d), amount: 20_000n })),
            { address: candidate.account, amount: 8_000n },
          ],
        });
        const proposer = await openStakingNode(genesis);
        const follower = await openStakingNode(genesis);
        try {
          let consensusSet: ValidatorSet = createValidatorSet(
            selfBonds.map((bond, i) => ({
              publicKey: validators[i]!.sender.publicKey,
              power: Number(bond / PARAMS.powerUnit),
              pqPublicKey: validators[i]!.pqKey,
              storageRoot: validators[i]!.storageRoot,
            })),
          );
          const accounts = [...delegators.map(addressOf), ...validators.map((v) => v.account)];
          let supply = genesis.token.supply;
          const genesisRecords = new Map<string, ValidatorRecord>(
            selfBonds.map((bond, i) => [
              validators[i]!.id,
              {
                publicKey: validators[i]!.sender.publicKey,
                pqPublicKey: validators[i]!.pqKey,
                storageRoot: validators[i]!.storageRoot,
                commissionBps: 1_500 * i,
                tokens: bond,
                shares: bond,
                power: Number(bond / PARAMS.powerUnit),
                jailed: JailReason.NONE,
                jailedUntil: 0,
              },
            ]),
          );
          // Heights whose end recomputed the set (an epoch with a non-empty selection); 0: genesis.
          const recomputes = [0];
          // The powers each validator voted with, from the updates handed to consensus: an
          // update returned by block h votes from h + 2.
          const powers = new Map<string, { from: number; power: number }[]>(
            selfBonds.map((bond, i) => [
              validators[i]!.id,
              [{ from: 0, power: Number(bond / PARAMS.powerUnit) }],
            ]),
          );
          const powerAt = (id: string, at: number): number =>
            (powers.get(id) ?? []).filter((entry) => entry.from <= at).at(-1)?.power ?? 0;
          const heldBefore = new Map<string, string[]>();
          for (const [index, block] of blocks.entries()) {
            const height = index + 1;
            const before = height === 1 ? genesisRecords : snapshot(proposer);
            const slashed =
              block.evidence === null ? undefined : validators[block.evidence.validator]!;
            const transactions = block.ops.flatMap((op): Uint8Array[] => {
              // Leave the slashed validator's stake and jail alone in the block that slashes it,
              // so the burn is predictable from the state before the block.
              const target =
                op.kind === 'create'
                  ? candidate
                  : op.kind === 'transfer'
                    ? undefined
                    : validators[op.validator];
              if (slashed !== undefined && target === slashed) return [];
              switch (op.kind) {
                case 'transfer':
                  return [
                    transfer(delegators[op.from]!, {
                      to: accounts[op.to === op.from ? (op.to + 1) % 3 : op.to]!,
                      amount: op.amount,
                      fee: op.fee,
                    }),
                  ];
                case 'delegate':
                  return [
                    stakingTx(delegators[op.from]!, {
                      op: 'delegate',
                      fee: op.fee,
                      amount: op.amount,
                      validator: validators[op.validator]!.address,
                    }),
                  ];
                case 'unbond-all': {
                  const v = validators[op.validator]!;
                  const record = before.get(v.id);
                  const shares = decodeStoredAmount(
                    proposer.store.state.get(
                      caesarStateKey(delegationKey(v.address, addressOf(delegators[op.from]!))),
                    ),
                  );
                  const worth = record === undefined ? 0n : sharesValue(record, shares);
                  return [
                    stakingTx(delegators[op.from]!, {
                      op: 'unbond',
                      fee: 0n,
                      amount: worth === 0n ? 1n : worth,
                      validator: v.address,
                    }),
                  ];
                }
                case 'unbond':
                  return [
                    stakingTx(delegators[op.from]!, {
                      op: 'unbond',
                      fee: 0n,
                      amount: op.amount,
                      validator: validators[op.validator]!.address,
                    }),
                  ];
                case 'create':
                  return [
                    stakingTx(operators[3]!, {
                      op: 'create-validator',
                      fee: 1n,
                      bond: 2_500n,
                      pqKey: candidate.pqKey,
                      commission: 700,
                      storageRoot: candidate.storageRoot,
                    }),
                  ];
                case 'unjail':
                  return [stakingTx(operators[op.validator]!, { op: 'unjail', fee: 0n })];
                case 'edit': {
                  const current = before.get(validators[op.validator]!.id)?.commissionBps ?? 0;
                  const commission = Math.min(10_000, Math.max(0, current + op.step));
                  return [
                    stakingTx(operators[op.validator]!, {
                      op: 'edit-validator',
                      fee: op.step < 0 ? 0n : 1n,
                      commission,
                    }),
                  ];
                }
              }
            });
            const members = consensusSet.validators;
            const extras: BlockExtras = {
              ...(block.proposer === null ? {} : { proposer: validators[block.proposer]! }),
              ...(block.withCommit && height > 1
                ? {
                    lastCommit: {
                      signed: validators
                        .filter(
                          (v, i) => !block.missing[i] && members.some((m) => m.address === v.id),
                        )
                        .map((v) => ({
                          validator: v,
                          power: consensusSet.validators.find((m) => m.address === v.id)!.power,
                        })),
                      missed: validators
                        .filter(
                          (v, i) => block.missing[i] && members.some((m) => m.address === v.id),
                        )
                        .map((v) => ({
                          validator: v,
                          power: consensusSet.validators.find((m) => m.address === v.id)!.power,
                        })),
                    },
                  }
                : {}),
              ...(slashed === undefined
                ? {}
                : {
                    evidence: [
                      equivocation(slashed, Math.max(1, height - 1 - block.evidence!.age)),
                    ],
                  }),
            };
            const input = blockInput(height, [], extras);
            // Predicted burn: the fraction of the stake behind the power it voted with at the
            // offence (power × powerUnit), from its unbondings begun after the epoch block
            // whose set it voted with (updates of block e count from e + 2) first — each entry
            // its own fraction, all of them scaled down to at most what is due — the rest from
            // its tokens (at most all of them but the last while it has shares), unless that
            // offence was slashed already (at or before slashedAt + 1) or it is jailed for
            // equivocation and had no power at the offence.
            let burn = 0n;
            const offender = slashed === undefined ? undefined : before.get(slashed.id);
            const offence = slashed === undefined ? 0 : input.evidence[0]!.voteA.height;
            if (
              slashed !== undefined &&
              offender !== undefined &&
              (offender.jailed !== JailReason.EQUIVOCATION ||
                (offender.slashedAt !== undefined && powerAt(slashed.id, offence) > 0)) &&
              (offender.slashedAt === undefined || offence > offender.slashedAt + 1)
            ) {
              const votedWith = offence - 2;
              // An epoch whose selection was empty set no power: the one before it did.
              const powerSetAt = recomputes.filter((h) => h <= votedWith).at(-1) ?? 0;
              const due = slashCut(BigInt(powerAt(slashed.id, offence)) * PARAMS.powerUnit);
              const cuts: bigint[] = [];
              for (const d of accounts) {
                for (const entry of height === 1 ? [] : unbondingOf(proposer, d)) {
                  if (toHex(entry.validator) === slashed.id && entry.creationHeight > powerSetAt) {
                    cuts.push(slashCut(entry.amount));
                  }
                }
              }
              const owed = cuts.reduce((sum, cut) => sum + cut, 0n);
              const fromUnbondings =
                owed > due ? cuts.reduce((sum, cut) => sum + (cut * due) / owed, 0n) : owed;
              if (owed > due) seen.unbondingsScaled++;
              const rest = due - fromUnbondings;
              const room =
                offender.shares > 0n && offender.tokens > 0n
                  ? offender.tokens - 1n
                  : offender.tokens;
              burn += fromUnbondings + (rest < room ? rest : room);
              if (due < slashCut(offender.tokens)) seen.burnsBelowStakeNow++;
            }

            if (
              height > 1 &&
              accounts.some((a) =>
                unbondingOf(proposer, a).some((e) => e.completionHeight === height),
              )
            ) {
              seen.maturities++;
            }
            const prepared = proposer.app.prepareProposal(input, transactions, 1 << 22);
            const executed = follower.app.executeBlock({
              ...input,
              transactions: prepared.transactions,
            });
            assert.deepEqual(
              executed.stateRoot,
              prepared.result.stateRoot,
              `same root at ${height}`,
            );
            assert.deepEqual(executed.validatorUpdates, prepared.result.validatorUpdates);
            assert.equal(
              prepared.transactions.length,
              transactions.length,
              'every transaction is admissible',
            );
            proposer.commit(prepared.result);
            follower.commit(executed);
            for (const [i, result] of prepared.result.txResults.entries()) {
              if (result.code === 0) {
                const op = block.ops.filter((o) => {
                  const target =
                    o.kind === 'create'
                      ? candidate
                      : o.kind === 'transfer'
                        ? undefined
                        : validators[o.validator];
                  return slashed === undefined || target !== slashed;
                })[i]!;
                seen.applied.add(op.kind);
              }
            }
            if (burn > 0n) seen.burns++;
            for (const u of prepared.result.validatorUpdates) {
              if (u.pqPublicKey !== undefined) seen.joins++;
              if (u.power === 0) seen.removals++;
            }

            const after = snapshot(proposer);
            // Minted iff a staking validator that is not jailed proposed or signed.
            const eligible = (v: TestValidator | undefined) =>
              v !== undefined && after.get(v.id)?.jailed === JailReason.NONE;
            const paid =
              eligible(block.proposer === null ? undefined : validators[block.proposer]) ||
              (extras.lastCommit?.signed ?? []).some(
                ({ validator, power }) => power > 0 && eligible(validator),
              );
            const minted = paid ? PARAMS.blockReward : 0n;
            supply += minted - burn;
            assert.equal(supplyOf(proposer), supply, `supply at ${height}: +${minted} -${burn}`);

            // Conservation, and the totals agree with the records.
            let tokens = 0n;
            for (const record of after.values()) {
              tokens += record.tokens;
              assert.equal(
                record.tokens === 0n,
                record.shares === 0n,
                'tokens and shares are zero together',
              );
              assert.equal(
                record.vacantSince !== undefined,
                record.tokens === 0n && record.power === 0,
                'vacant exactly when it has no tokens, no shares and no power',
              );
            }
            // `vals` lists exactly the validators with a record.
            assert.deepEqual(validatorListOf(proposer), [...after.keys()].sort());
            let waiting = 0n;
            let balances = 0n;
            for (const [id, record] of after) {
              if (
                record.jailed === JailReason.DOWNTIME &&
                before.get(id)?.jailed === JailReason.NONE
              ) {
                seen.downtimeJails++;
              }
            }
            for (const address of accounts) {
              balances += balanceOf(proposer, address);
              for (const entry of unbondingOf(proposer, address)) {
                assert.ok(entry.completionHeight > height, 'no overdue unbonding');
                waiting += entry.amount;
              }
            }
            assert.equal(bondedOf(proposer), tokens);
            assert.equal(unbondingTotalOf(proposer), waiting);
            assert.equal(
              balances + tokens + waiting + feePoolOf(proposer),
              supply,
              `conservation at ${height}`,
            );
            // A commission moves by at most the bound, and only with its change height.
            for (const [id, record] of after) {
              const previous = before.get(id);
              if (previous === undefined) continue;
              if (record.commissionBps === previous.commissionBps) continue;
              assert.ok(
                Math.abs(record.commissionBps - previous.commissionBps) <=
                  PARAMS.maxCommissionChangeBps,
                `commission step at ${height}`,
              );
              assert.equal(record.commissionChangedAt, height);
              assert.ok(
                previous.commissionChangedAt === undefined ||
                  height - previous.commissionChangedAt >= PARAMS.epochBlocks,
                `one change per ${PARAMS.epochBlocks} blocks`,
              );
            }
            // A delegation's shares never exceed its validator's.
            for (const [id, record] of after) {
              for (const d of delegators) {
                const v = validators.find((x) => x.id === id)!;
                const shares = decodeStoredAmount(
                  proposer.store.state.get(caesarStateKey(delegationKey(v.address, addressOf(d)))),
                );
                assert.ok(shares <= record.shares);
              }
            }
            // Each account's delegator index names exactly the validators it has shares of.
            for (const address of accounts) {
              const held = validators
                .filter(
                  (v) =>
                    decodeStoredAmount(
                      proposer.store.state.get(caesarStateKey(delegationKey(v.address, address))),
                    ) > 0n,
                )
                .map((v) => v.id)
                .sort();
              const index = proposer.store.state.get(caesarStateKey(delegatorIndexKey(address)));
              assert.deepEqual(
                index === null ? [] : decodeDelegatorIndex(index).map(toHex),
                held,
                `delegator index at ${height}`,
              );
              const id = toHex(address);
              if ((heldBefore.get(id) ?? []).some((v) => !held.includes(v))) seen.emptied++;
              heldBefore.set(id, held);
            }

            // The updates: the reference selection at an epoch; otherwise, and at an epoch that
            // selects nobody, every jailed member leaves (jailed here or before); never empty.
            const announcedBefore = new Map([...before].map(([id, r]) => [id, r.power]));
            let expected = new Map<string, number>();
            if (height % PARAMS.epochBlocks === 0) {
              expected = expectedPowers(after);
              if (expected.size > 0) recomputes.push(height);
            }
            if (expected.size === 0) {
              for (const [id, power] of announcedBefore) {
                if (power > 0 && after.get(id)!.jailed === JailReason.NONE) expected.set(id, power);
              }
            }
            if (expected.size === 0) {
              expected = new Map([...announcedBefore].filter(([, p]) => p > 0));
            }
            const predicted = [...after.keys()]
              .filter((id) => (expected.get(id) ?? 0) !== (announcedBefore.get(id) ?? 0))
              .map((id) => [id, expected.get(id) ?? 0]);
            const actual = prepared.result.validatorUpdates.map((u) => [
              validators.find((v) => toHex(v.sender.publicKey) === toHex(u.publicKey))!.id,
              u.power,
            ]);
            const order = (a: (string | number)[], b: (string | number)[]) =>
              a[0]! < b[0]! ? -1 : 1;
            assert.deepEqual(actual.sort(order), predicted.sort(order), `updates at ${height}`);
            for (const [id, power] of after) assert.equal(power.power, expected.get(id) ?? 0);
            // Consensus accepts them (no refusal: keys, FALCON keys, roots, never an empty set).
            for (const u of prepared.result.validatorUpdates) {
              const id = validators.find((v) => bytesEqual(v.sender.publicKey, u.publicKey))!.id;
              powers.set(id, [...(powers.get(id) ?? []), { from: height + 2, power: u.power }]);
            }
            consensusSet = applyValidatorUpdates(
              consensusSet,
              prepared.result.validatorUpdates,
            ).validators;
          }
        } finally {
          await proposer.close();
          await follower.close();
        }
      }),
      // The examples run first whatever the seed (a delegation, its unbonding and enough empty
      // blocks for it to mature; a delegation unbonded before the evidence of an offence before
      // it), so the coverage check below does not depend on the seed.
      {
        numRuns: 40,
        examples: [[maturingScenario], [lateUnbondScenario], [jailedMembersScenario]],
      },
    );
    assert.deepEqual([...seen.applied].sort(), [
      'create',
      'delegate',
      'edit',
      'transfer',
      'unbond',
      'unbond-all',
      'unjail',
    ]);
    for (const [what, count] of Object.entries(seen)) {
      if (typeof count === 'number') assert.ok(count > 0, `no run exercised ${what}`);
    }
  });
});
