import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CAESAR_RESULT_CODES,
  CaesarError,
  CaesarErrorCode,
  DEFAULT_GOV_PARAMS,
  DEFAULT_STAKING_PARAMS,
  GOV_PARAM_NAMES,
  MAX_EPOCH_BLOCKS,
  applyParamChanges,
  tallyOutcome,
  ProposalStatus,
  VoteOption,
  caesarStateKey,
  decodeStoredAmount,
  delegationKey,
  sharesValue,
} from '../../src/caesar/index.js';
import type {
  GovParams,
  GovernableParam,
  ParamChange,
  StakingParams,
} from '../../src/caesar/index.js';
import { govParamsSchema } from '../../src/caesar/gov-params.js';
import { stakingParamsSchema } from '../../src/caesar/staking-params.js';
import { toHex } from '../../src/crypto/bytes.js';
import { makeSender } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';
import { addressOf } from './caesar-fixture.js';
import {
  TEST_GOV,
  depositsOf,
  govParamsOf,
  govTx,
  proposalOf,
  stakingParamsOf,
  votesOf,
} from './gov-fixture.js';
import {
  TEST_PARAMS,
  balanceOf,
  blockInput,
  bondedOf,
  feePoolOf,
  makeValidator,
  openStakingNode,
  recordOf,
  stakingGenesis,
  stakingTx,
  supplyOf,
  unbondingTotalOf,
} from './staking-fixture.js';

/**
 * Random blocks of proposals (valid and invalid changes, deposits around minDeposit), votes by
 * validators, delegators and an account that never stakes, changed votes, delegations and
 * unbondings, executed by two independent routers. After every block: the same state root;
 * balances + bonded + unbonding + fee pool + deposits held = supply, and the supply fell by
 * exactly the deposits of proposals that missed quorum; the recorded votes are one per voter
 * with the last option each chose; a proposal is refused for invalid parameters exactly when its
 * changes do not fit; each tally equals the voters' bonded stake recomputed here, and its
 * outcome follows quorum and threshold; the parameters change only at the end of a passed
 * proposal's execute height, and then to exactly the proposal's changes.
 */

const validators = Array.from({ length: 3 }, () => makeValidator());
const delegatorCount = 2;

// unbondingBlocks 107: governance may raise epochBlocks (4) up to 7, not to 8 or 9.
const STAKING: StakingParams = {
  ...TEST_PARAMS,
  powerUnit: 1_000n,
  minValidatorStake: 1_000n,
  unbondingBlocks: 107,
};
const GOV: GovParams = { ...TEST_GOV, minDeposit: 50n, votingPeriod: 3, timelock: 1 };

const changeArb: fc.Arbitrary<ParamChange> = fc.oneof(
  fc.record({
    name: fc.constant<GovernableParam>('epochBlocks'),
    value: fc.bigInt({ min: 0n, max: 9n }),
  }),
  fc.record({
    name: fc.constant<GovernableParam>('maxMissed'),
    value: fc.bigInt({ min: 0n, max: 6n }),
  }),
  fc.record({
    name: fc.constant<GovernableParam>('signedWindow'),
    value: fc.bigInt({ min: 1n, max: 6n }),
  }),
  fc.record({
    name: fc.constant<GovernableParam>('blockReward'),
    value: fc.bigInt({ min: 0n, max: 100n }),
  }),
  fc.record({
    name: fc.constant<GovernableParam>('quorumBps'),
    value: fc.constantFrom(0n, 2_000n, 5_000n, 6_666n, 6_667n, 10_001n),
  }),
  fc.record({
    name: fc.constant<GovernableParam>('thresholdBps'),
    value: fc.constantFrom(0n, 5_000n, 6_666n, 6_667n, 9_999n, 10_000n),
  }),
  fc.record({
    name: fc.constant<GovernableParam>('votingPeriod'),
    value: fc.bigInt({ min: 0n, max: 4n }),
  }),
  fc.record({
    name: fc.constant<GovernableParam>('timelock'),
    value: fc.bigInt({ min: 0n, max: 3n }),
  }),
  fc.record({
    name: fc.constant<GovernableParam>('minDeposit'),
    value: fc.bigInt({ min: 0n, max: 80n }),
  }),
);

type Op =
  | {
      kind: 'submit';
      proposer: number;
      changes: ParamChange[];
      deposit: bigint;
    }
  | { kind: 'vote'; voter: number; proposal: number; option: VoteOption }
  | { kind: 'delegate' | 'unbond'; delegator: number; validator: number; amount: bigint };

/**
 * Accounts: 0–2 the validators' operators, 3–4 delegators, 5 an account that never stakes.
 * Proposers are the delegators and the outsider.
 */
const OUTSIDER = 5;
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant<'submit'>('submit'),
      proposer: fc.constantFrom(3, 4, OUTSIDER),
      changes: fc.uniqueArray(changeArb, { minLength: 1, maxLength: 2, selector: (c) => c.name }),
      deposit: fc.bigInt({ min: 40n, max: 120n }),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant<'vote'>('vote'),
      // Mostly validators, who hold most of the stake.
      voter: fc.constantFrom(0, 1, 2, 0, 1, 2, 3, 4, OUTSIDER),
      proposal: fc.integer({ min: 1, max: 4 }),
      option: fc.constantFrom(VoteOption.YES, VoteOption.YES, VoteOption.NO, VoteOption.ABSTAIN),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constantFrom<'delegate' | 'unbond'>('delegate', 'unbond'),
      delegator: fc.integer({ min: 3, max: 3 + delegatorCount - 1 }),
      validator: fc.integer({ min: 0, max: validators.length - 1 }),
      amount: fc.bigInt({ min: 1n, max: 2_000n }),
    }),
  },
);

const blockArb = fc.array(opArb, { maxLength: 5 });

function merged(
  staking: StakingParams,
  gov: GovParams,
  changes: readonly ParamChange[],
): { staking: StakingParams; gov: GovParams } | undefined {
  const next: Record<string, number | bigint> = { ...staking, ...gov };
  for (const { name, value } of changes) {
    next[name] = typeof next[name] === 'bigint' ? value : Number(value);
  }
  const s = stakingParamsSchema.safeParse(
    Object.fromEntries(Object.keys(staking).map((k) => [k, next[k]])),
  );
  const g = govParamsSchema.safeParse(
    Object.fromEntries(Object.keys(gov).map((k) => [k, next[k]])),
  );
  if (!s.success || !g.success) return undefined;
  // Raising epochBlocks needs epochBlocks + 100 (the evidence age) ≤ unbondingBlocks.
  const raised = s.data.epochBlocks > staking.epochBlocks;
  if (raised && s.data.epochBlocks + 100 > s.data.unbondingBlocks) return undefined;
  return { staking: s.data, gov: g.data };
}

function stakeOf(node: TestNode, account: Uint8Array): bigint {
  let stake = 0n;
  for (const v of validators) {
    const record = recordOf(node, v)!;
    const shares = decodeStoredAmount(
      node.store.state.get(caesarStateKey(delegationKey(v.address, account))),
    );
    stake += sharesValue(record, shares);
  }
  return stake;
}

describe('caesar governance: properties', () => {
  it('random proposals, votes and stake changes keep supply, tallies and parameters exact on two nodes', async () => {
    const seen = { applied: 0, failed: 0, rejected: 0, noQuorum: 0, replaced: 0, noStake: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(blockArb, { minLength: 8, maxLength: 16 }), async (blocks) => {
        const senders: Sender[] = [
          ...validators.map((v) => v.sender),
          ...Array.from({ length: delegatorCount + 1 }, () => makeSender()),
        ];
        for (const sender of senders) sender.sequence = 0;
        const accounts = senders.map((s) => addressOf(s));
        const genesis = {
          ...stakingGenesis({
            params: STAKING,
            validators: validators.map((validator) => ({ validator, selfBond: 10_000n })),
            balances: accounts.map((address, i) => ({
              address,
              amount: i < validators.length ? 200n : 3_000n,
            })),
          }),
          governance: GOV,
        };
        const a = await openStakingNode(genesis);
        const b = await openStakingNode(genesis);
        try {
          const empty = blockInput(1, [], {});
          for (const node of [a, b]) node.commit(node.app.executeBlock(empty));
          const initialSupply = supplyOf(a);
          let burnt = 0n;
          /** Applied votes, by proposal id, then voter hex: the last option. */
          const votes = new Map<number, Map<string, VoteOption>>();
          let count = 0;
          for (const [index, ops] of [...blocks, [], [], [], [], [], []].entries()) {
            const height = index + 2;
            const stakingBefore = stakingParamsOf(a);
            const govBefore = govParamsOf(a);
            const transactions = ops.map((op) => {
              switch (op.kind) {
                case 'submit':
                  return govTx(senders[op.proposer]!, {
                    op: 'gov/submit-proposal',
                    fee: 1n,
                    title: `proposal at ${height}`,
                    changes: op.changes,
                    deposit: op.deposit,
                  });
                case 'vote':
                  return govTx(senders[op.voter]!, {
                    op: 'gov/vote',
                    fee: 0n,
                    proposal: op.proposal,
                    option: op.option,
                  });
                default:
                  return stakingTx(senders[op.delegator]!, {
                    op: op.kind,
                    fee: 0n,
                    amount: op.amount,
                    validator: validators[op.validator]!.address,
                  });
              }
            });
            const input = blockInput(height, transactions, {});
            const ra = a.app.executeBlock(input);
            const rb = b.app.executeBlock(input);
            assert.deepEqual(ra.stateRoot, rb.stateRoot, `same root at ${height}`);
            a.commit(ra);
            b.commit(rb);

            for (const [i, op] of ops.entries()) {
              const { code } = ra.txResults[i]!;
              if (op.kind === 'submit') {
                const fits = merged(stakingBefore, govBefore, op.changes) !== undefined;
                if (!fits) {
                  assert.equal(code, CAESAR_RESULT_CODES[CaesarErrorCode.GOV_INVALID_PARAM]);
                } else if (op.deposit < govBefore.minDeposit) {
                  assert.equal(code, CAESAR_RESULT_CODES[CaesarErrorCode.GOV_DEPOSIT_TOO_SMALL]);
                }
                if (code === 0) {
                  count++;
                  const record = proposalOf(a, count)!;
                  assert.equal(record.submitHeight, height);
                  assert.equal(record.votingEnd, height + govBefore.votingPeriod);
                  assert.equal(record.executeHeight, record.votingEnd + govBefore.timelock);
                  assert.equal(record.deposit, op.deposit);
                }
              } else if (op.kind === 'vote') {
                if (op.voter === OUTSIDER) {
                  assert.notEqual(code, 0, 'an account without stake never votes');
                  if (code === CAESAR_RESULT_CODES[CaesarErrorCode.GOV_NO_STAKE]) seen.noStake++;
                }
                if (code === 0) {
                  const byVoter = votes.get(op.proposal) ?? new Map<string, VoteOption>();
                  const id = toHex(accounts[op.voter]!);
                  if (byVoter.has(id)) seen.replaced++;
                  byVoter.set(id, op.option);
                  votes.set(op.proposal, byVoter);
                }
              }
            }

            // Tallies, outcomes and parameter changes at this height.
            let expectedStaking = stakingBefore;
            let expectedGov = govBefore;
            for (let id = 1; id <= count; id++) {
              const record = proposalOf(a, id)!;
              const recorded = votesOf(a, id);
              const model = votes.get(id) ?? new Map<string, VoteOption>();
              assert.deepEqual(
                recorded.map((v) => [toHex(v.voter), v.option]),
                [...model.entries()].sort(([x], [y]) => (x < y ? -1 : 1)),
                `votes on ${id}`,
              );
              if (record.votingEnd === height) {
                const sum = { yes: 0n, no: 0n, abstain: 0n };
                for (const [voter, option] of model) {
                  const weight = stakeOf(a, Uint8Array.from(Buffer.from(voter, 'hex')));
                  if (option === VoteOption.YES) sum.yes += weight;
                  else if (option === VoteOption.NO) sum.no += weight;
                  else sum.abstain += weight;
                }
                const tally = { ...sum, bonded: bondedOf(a) };
                assert.deepEqual(record.tally, tally, `tally of ${id}`);
                const quorum =
                  (tally.yes + tally.no + tally.abstain) * 10_000n >=
                  BigInt(govBefore.quorumBps) * tally.bonded;
                const passes =
                  tally.yes * 10_000n > BigInt(govBefore.thresholdBps) * (tally.yes + tally.no);
                if (!quorum) {
                  burnt += record.deposit;
                  seen.noQuorum++;
                  assert.equal(record.status, ProposalStatus.REJECTED_NO_QUORUM);
                } else if (!passes) {
                  seen.rejected++;
                  assert.equal(record.status, ProposalStatus.REJECTED);
                } else {
                  assert.ok(
                    [ProposalStatus.PASSED, ProposalStatus.APPLIED, ProposalStatus.FAILED].includes(
                      record.status,
                    ),
                    `proposal ${id} passed`,
                  );
                }
              }
              if (record.executeHeight === height && record.tally !== undefined) {
                const wasPassed =
                  record.status === ProposalStatus.APPLIED ||
                  record.status === ProposalStatus.FAILED;
                if (!wasPassed) continue;
                const next = merged(expectedStaking, expectedGov, record.changes);
                if (next === undefined) {
                  seen.failed++;
                  assert.equal(
                    record.status,
                    ProposalStatus.FAILED,
                    `proposal ${id} no longer fits`,
                  );
                } else {
                  seen.applied++;
                  assert.equal(record.status, ProposalStatus.APPLIED);
                  expectedStaking = next.staking;
                  expectedGov = next.gov;
                }
              }
            }
            assert.deepEqual(stakingParamsOf(a), expectedStaking, `staking params at ${height}`);
            assert.deepEqual(govParamsOf(a), expectedGov, `governance params at ${height}`);

            // Supply: only burnt deposits change it here (no validator takes part in rewards).
            assert.equal(supplyOf(a), initialSupply - burnt, `supply at ${height}`);
            const balances = accounts.reduce((sum, address) => sum + balanceOf(a, address), 0n);
            assert.equal(
              balances + bondedOf(a) + unbondingTotalOf(a) + feePoolOf(a) + depositsOf(a),
              supplyOf(a),
              `accounting at ${height}`,
            );
          }
        } finally {
          await a.close();
          await b.close();
        }
      }),
      { numRuns: 30 },
    );
    // A passed proposal that no longer fits (FAILED) needs two conflicting ones passing
    // together; gov.test.ts covers it, so it is counted but not required here.
    for (const what of ['applied', 'rejected', 'noQuorum', 'replaced', 'noStake'] as const) {
      assert.ok(seen[what] > 0, `the runs exercised ${what}: ${JSON.stringify(seen)}`);
    }
  });
});

describe('caesar governance: it cannot lock itself out', () => {
  /** Any value, mostly near the bounds that matter, for a governance parameter or epochBlocks. */
  const anyChange: fc.Arbitrary<ParamChange> = fc.record({
    name: fc.constantFrom<GovernableParam>(...GOV_PARAM_NAMES, 'epochBlocks'),
    value: fc.oneof(
      fc.constantFrom(0n, 1n, 899n, 900n, 6_666n, 6_667n, 9_999n, 10_000n, 1_000_000n),
      fc.constantFrom(1_000_001n, 100_000_000n, 1n << 64n),
      fc.bigInt({ min: 0n, max: 2_000_000n }),
    ),
  });
  const proposalArb = fc.uniqueArray(anyChange, {
    minLength: 1,
    maxLength: 4,
    selector: (c) => c.name,
  });

  it('after any sequence of accepted changes, votes of more than 2/3 of the stake pass', () => {
    const seen = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(
        fc.array(proposalArb, { minLength: 1, maxLength: 6 }),
        fc.bigInt({ min: 1n, max: (1n << 128n) - 1n }),
        fc.bigInt({ min: 0n, max: 1n << 64n }),
        fc.bigInt({ min: 0n, max: 1n << 64n }),
        fc.bigInt({ min: 0n, max: 1n << 64n }),
        (proposals, bonded, pickYes, pickNo, pickAbstain) => {
          let params = { staking: DEFAULT_STAKING_PARAMS, gov: DEFAULT_GOV_PARAMS };
          for (const changes of proposals) {
            try {
              params = applyParamChanges(params.staking, params.gov, changes);
              seen.accepted++;
            } catch (error) {
              if (!(error instanceof CaesarError)) throw error;
              assert.ok(
                error.code === CaesarErrorCode.GOV_INVALID_PARAM,
                `${error.code}: ${error.message}`,
              );
              seen.refused++;
            }
          }
          assert.ok(params.staking.epochBlocks <= MAX_EPOCH_BLOCKS);
          // From the defaults (unbondingBlocks 1,000), every unbonding behind a power waits out
          // the evidence age: epochBlocks + 100 ≤ unbondingBlocks.
          assert.ok(params.staking.epochBlocks + 100 <= params.staking.unbondingBlocks);
          // yes > 2/3 of bonded (the least such weight up to all of it); the rest vote no or
          // abstain in any split, or stay away.
          const least = (2n * bonded) / 3n + 1n;
          const yes = least + (pickYes % (bonded - least + 1n));
          const no = pickNo % (bonded - yes + 1n);
          const abstain = pickAbstain % (bonded - yes - no + 1n);
          const outcome = tallyOutcome({ yes, no, abstain, bonded }, params.gov);
          const { quorumBps, thresholdBps } = params.gov;
          assert.equal(
            outcome,
            'passed',
            `quorum ${quorumBps}, threshold ${thresholdBps}: yes ${yes}, no ${no} of ${bonded}`,
          );
        },
      ),
      { numRuns: 2_000 },
    );
    assert.ok(seen.accepted > 0 && seen.refused > 0, JSON.stringify(seen));
  });
});
