import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CAESAR_RESULT_CODES,
  CaesarErrorCode,
  DELEGATE_OP,
  MAX_DELEGATIONS_PER_ACCOUNT,
  ProposalStatus,
  VOTE_OP,
  VoteOption,
  caesarStateKey,
  decodeProposal,
  delegatorIndexKey,
  governanceEndBlock,
  proposalKey,
} from '../../src/caesar/index.js';
import { checkGovTx } from '../../src/caesar/gov.js';
import { applyStakingTx } from '../../src/caesar/staking.js';
import type { StakingTx } from '../../src/caesar/staking-tx.js';
import {
  readDelegatorIndex,
  readShares,
  readValidator,
  writeValidator,
} from '../../src/caesar/staking-state.js';
import { isHyperMeshError } from '../../src/codec/error.js';
import type { ModuleState } from '../../src/consensus/application/module.js';
import { toHex } from '../../src/crypto/bytes.js';
import { makeSender } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';
import { addressOf } from './caesar-fixture.js';
import { TEST_GOV, govTx } from './gov-fixture.js';
import {
  balanceOf,
  makeValidator,
  openStakingNode,
  runBlock,
  stakingGenesis,
  stakingTx,
} from './staking-fixture.js';
import type { TestValidator } from './staking-fixture.js';

/**
 * The work of one vote and of one tally does not grow with the number of validators: an
 * account's stake is read through its delegator index (at most `MAX_DELEGATIONS_PER_ACCOUNT`
 * validators, refused beyond with `CAESAR_TOO_MANY_DELEGATIONS` at admission and at execution),
 * and an end of block tallying several proposals weighs each voter once. Measured by counting
 * the state reads of `governanceEndBlock` and of a vote's check over the committed state, on
 * chains alike but for how many validators exist (3 or 40).
 */

const code = (error: CaesarErrorCode): number => CAESAR_RESULT_CODES[error];

/** The committed Caesar state of `node`, counting reads, with writes kept aside. */
function countingState(node: TestNode): { state: ModuleState; reads: string[] } {
  const written = new Map<string, Uint8Array | null>();
  const reads: string[] = [];
  const state: ModuleState = {
    get(key) {
      const id = toHex(key);
      reads.push(id);
      const own = written.get(id);
      return own !== undefined ? own : node.store.state.get(caesarStateKey(key));
    },
    set(key, value) {
      written.set(toHex(key), value);
    },
    delete(key) {
      written.set(toHex(key), null);
    },
  };
  return { state, reads };
}

interface Chain {
  readonly node: TestNode;
  readonly validators: readonly TestValidator[];
  readonly voters: readonly Sender[];
}

/**
 * `count` validators of 10,000 each; four voters, each delegating 100 and 200 to the first two
 * validators in block 2; in block 3 the first voter submits two proposals (voting ends at 6); in
 * block 4 every voter votes yes on both.
 */
async function votedChain(count: number): Promise<Chain> {
  const validators = Array.from({ length: count }, () => makeValidator());
  const voters = Array.from({ length: 4 }, () => makeSender());
  const node = await openStakingNode({
    ...stakingGenesis({
      params: { maxValidators: 40 },
      validators: validators.map((validator) => ({ validator, selfBond: 10_000n })),
      balances: voters.map((voter) => ({ address: addressOf(voter), amount: 2_000n })),
    }),
    governance: TEST_GOV,
  });
  runBlock(node);
  const delegate = (voter: Sender, validator: TestValidator, amount: bigint) =>
    stakingTx(voter, { op: DELEGATE_OP, fee: 0n, amount, validator: validator.address });
  const delegated = runBlock(
    node,
    voters.flatMap((voter) => [
      delegate(voter, validators[0]!, 100n),
      delegate(voter, validators[1]!, 200n),
    ]),
  );
  assert.ok(delegated.txResults.every((r) => r.code === 0));
  const propose = (title: string) =>
    govTx(voters[0]!, {
      op: 'gov/submit-proposal',
      fee: 0n,
      title,
      deposit: 100n,
      changes: [{ name: 'quorumBps', value: 3_000n }],
    });
  const proposed = runBlock(node, [propose('first'), propose('second')]);
  assert.ok(proposed.txResults.every((r) => r.code === 0));
  const voted = runBlock(
    node,
    voters.flatMap((voter) =>
      [1, 2].map((proposal) =>
        govTx(voter, { op: VOTE_OP, fee: 0n, proposal, option: VoteOption.YES }),
      ),
    ),
  );
  assert.ok(voted.txResults.every((r) => r.code === 0));
  runBlock(node); // block 5: voting ends with block 6
  return { node, validators, voters };
}

/** The reads of the end of block 6 (both tallies), and the tally of proposal 1 it wrote. */
function tallyReads(chain: Chain): { reads: string[]; yes: bigint } {
  const { state, reads } = countingState(chain.node);
  governanceEndBlock(state, 6);
  const record = decodeProposal(state.get(proposalKey(1))!);
  // 1,200 of 30,000 or more bonded: counted, and short of the quorum.
  assert.equal(record.status, ProposalStatus.REJECTED_NO_QUORUM);
  return { reads: reads.slice(0, -1), yes: record.tally!.yes };
}

function voteCheckReads(chain: Chain): number {
  const { state, reads } = countingState(chain.node);
  const voter = addressOf(chain.voters[1]!);
  checkGovTx(
    state,
    { op: VOTE_OP, fee: 0n, proposal: 1, option: VoteOption.NO },
    voter,
    chain.node.nextHeight(),
  );
  return reads.length;
}

describe('caesar governance: the cost of votes and tallies', () => {
  it('reads as many keys with 40 validators as with 3, and weighs each voter once', async () => {
    const small = await votedChain(3);
    const large = await votedChain(40);
    try {
      const few = tallyReads(small);
      const many = tallyReads(large);
      // Every voter's 300 counted, on each chain.
      assert.equal(few.yes, 4n * 300n);
      assert.equal(many.yes, 4n * 300n);
      assert.equal(many.reads.length, few.reads.length, 'tally reads independent of validators');
      // Two proposals end together; each voter's index is read once, not once per proposal.
      for (const voter of large.voters) {
        const index = toHex(delegatorIndexKey(addressOf(voter)));
        assert.equal(many.reads.filter((key) => key === index).length, 1);
      }
      assert.equal(voteCheckReads(large), voteCheckReads(small), 'vote check reads');
    } finally {
      await small.node.close();
      await large.node.close();
    }
  });
});

describe('caesar staking: delegations per account are bounded', () => {
  it('refuses shares of one validator more than the bound, at admission and execution', async () => {
    const validators = Array.from({ length: MAX_DELEGATIONS_PER_ACCOUNT + 1 }, () =>
      makeValidator(),
    );
    const candidate = makeValidator();
    const dave = makeSender();
    const node = await openStakingNode(
      stakingGenesis({
        params: { maxValidators: 40 },
        validators: validators.map((validator) => ({ validator, selfBond: 10_000n })),
        balances: [
          { address: addressOf(dave), amount: 10_000n },
          { address: candidate.account, amount: 10_000n },
        ],
      }),
    );
    try {
      runBlock(node);
      const delegate = (from: Sender, validator: TestValidator, amount = 10n) =>
        stakingTx(from, { op: DELEGATE_OP, fee: 0n, amount, validator: validator.address });
      const bound = validators.slice(0, MAX_DELEGATIONS_PER_ACCOUNT);
      const filled = runBlock(node, [
        ...bound.map((validator) => delegate(dave, validator)),
        ...bound.map((validator) => delegate(candidate.sender, validator)),
      ]);
      assert.ok(filled.txResults.every((r) => r.code === 0));
      const last = validators[MAX_DELEGATIONS_PER_ACCOUNT]!;

      // One more validator: refused when admitted and when executed, nothing but the sequence.
      const over = delegate(dave, last);
      const admission = node.app.checkTx(over);
      assert.equal(admission.ok, false);
      if (!admission.ok) assert.equal(admission.code, CaesarErrorCode.TOO_MANY_DELEGATIONS);
      const before = balanceOf(node, addressOf(dave));
      const refused = runBlock(node, [over]);
      assert.equal(refused.txResults[0]!.code, code(CaesarErrorCode.TOO_MANY_DELEGATIONS));
      assert.equal(balanceOf(node, addressOf(dave)), before);
      // Its own validator's self-bond counts too: create-validator is refused the same way.
      const create = stakingTx(candidate.sender, {
        op: 'create-validator',
        fee: 0n,
        bond: 1_000n,
        pqKey: candidate.pqKey,
        commission: 0,
        storageRoot: candidate.storageRoot,
      });
      const created = runBlock(node, [create]);
      assert.equal(created.txResults[0]!.code, code(CaesarErrorCode.TOO_MANY_DELEGATIONS));

      // More to a validator it has shares of is fine; a full unbond frees a place.
      const more = runBlock(node, [delegate(dave, bound[0]!, 5n)]);
      assert.equal(more.txResults[0]!.code, 0);
      const out = runBlock(node, [
        stakingTx(dave, { op: 'unbond', fee: 0n, amount: 15n, validator: bound[0]!.address }),
      ]);
      assert.equal(out.txResults[0]!.code, 0);
      const room = delegate(dave, last);
      assert.ok(node.app.checkTx(room).ok);
      const admitted = runBlock(node, [room]);
      assert.equal(admitted.txResults[0]!.code, 0);
    } finally {
      await node.close();
    }
  });
});

describe('caesar staking: no delegation worth nothing holds a place in the index', () => {
  it('refuses shares worth nothing, and an unbond never leaves such a remainder', async () => {
    const validator = makeValidator();
    const dave = makeSender();
    const node = await openStakingNode(
      stakingGenesis({
        validators: [{ validator, selfBond: 10_000n }],
        balances: [{ address: addressOf(dave), amount: 10_000n }],
      }),
    );
    try {
      runBlock(node);
      // A slashed validator (tokens below shares, as an equivocation leaves it), on a copy of
      // the committed state: 9,500 tokens for 10,000 shares.
      const { state } = countingState(node);
      const record = readValidator(state, validator.address)!;
      writeValidator(state, { ...record, tokens: 9_500n, shares: 10_000n });
      const account = addressOf(dave);
      const apply = (body: StakingTx) => applyStakingTx(state, body, dave.publicKey, account, 3);
      const delegate = (amount: bigint): StakingTx => ({
        op: DELEGATE_OP,
        fee: 0n,
        amount,
        validator: validator.address,
      });
      const unbond = (amount: bigint): StakingTx => ({
        op: 'unbond',
        fee: 0n,
        amount,
        validator: validator.address,
      });
      // 1 base unit buys 1 share worth ⌊9,501/10,001⌋ = 0: refused, nothing written.
      assert.throws(
        () => apply(delegate(1n)),
        (error: unknown) => isHyperMeshError(error, CaesarErrorCode.INVALID_DELEGATION),
      );
      assert.deepEqual(readDelegatorIndex(state, account), []);
      // 3 buy 3 shares worth 2; unbonding 1 would leave 1 share worth 0: all of it leaves.
      apply(delegate(3n));
      assert.equal(readDelegatorIndex(state, account).length, 1);
      apply(unbond(1n));
      assert.equal(readShares(state, validator.address, account), 0n);
      assert.deepEqual(readDelegatorIndex(state, account), []);
      // Shares a later slash made worth nothing are closed by any unbond, paying nothing.
      apply(delegate(50n));
      const slashed = readValidator(state, validator.address)!;
      writeValidator(state, { ...slashed, tokens: 1n });
      apply(unbond(7n));
      assert.equal(readShares(state, validator.address, account), 0n);
      assert.deepEqual(readDelegatorIndex(state, account), []);
    } finally {
      await node.close();
    }
  });
});
