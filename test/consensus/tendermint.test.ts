import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bytesEqual, toHex } from '../../src/crypto/bytes.js';
import { blockTemplate, buildBlock, MAX_BLOCK_EVIDENCE } from '../../src/consensus/block.js';
import { duplicateVoteEvidence } from '../../src/consensus/evidence.js';
import type { ConsensusAction, ConsensusEvent } from '../../src/consensus/events.js';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import { nextHeightContext, type HeightContext } from '../../src/consensus/height-context.js';
import { blockHash } from '../../src/consensus/messages.js';
import { proposerAt } from '../../src/consensus/proposer.js';
import { signVote } from '../../src/consensus/signer.js';
import type { TendermintState } from '../../src/consensus/state.js';
import { startTendermint, step } from '../../src/consensus/tendermint.js';
import type { Block, Proposal, Vote, VoteType } from '../../src/consensus/types.js';
import { MessageRejection } from '../../src/consensus/verify.js';
import {
  actionsOf,
  CHAIN_ID,
  makeBlock,
  makeConfig,
  makeGenesis,
  makeProposal,
  makeValidators,
  makeVote,
  type TestValidator,
} from './sim/fixtures.js';

/**
 * One validator's engine driven by hand: each test feeds the events an upon-rule of
 * Algorithm 1 (Buchman, Kwon, Milosevic 2018) needs and checks the actions it takes.
 */
class Harness {
  state: TendermintState;
  actions: readonly ConsensusAction[];
  readonly validators: TestValidator[];
  readonly context: HeightContext;
  readonly self: TestValidator | undefined;

  constructor(
    powers: readonly number[],
    /** This node: round 0's proposer, another validator, none, or an index in address order. */
    options: { self?: 'proposer' | 'other' | 'none' | number; seed?: number } = {},
  ) {
    const { validators, set } = makeValidators(powers, options.seed ?? 7);
    this.validators = validators;
    this.context = makeGenesis(set);
    const proposer = proposerAt(this.context.schedule, 0).address;
    const role = options.self ?? 'other';
    this.self =
      role === 'none'
        ? undefined
        : typeof role === 'number'
          ? validators[role]
          : validators.find((v) => (role === 'proposer') === (v.address === proposer));
    const result = startTendermint(makeConfig(this.self?.address ?? null), this.context);
    this.state = result.state;
    this.actions = result.actions;
  }

  /** Validators other than this node, in address order. */
  get others(): TestValidator[] {
    return this.validators.filter((v) => v.address !== this.self?.address);
  }

  proposer(round: number): TestValidator {
    const address = proposerAt(this.context.schedule, round).address;
    return this.validators.find((v) => v.address === address) as TestValidator;
  }

  send(event: ConsensusEvent): readonly ConsensusAction[] {
    const result = step(this.state, event);
    this.state = result.state;
    this.actions = result.actions;
    return result.actions;
  }

  /** A valid block of this height, different per tag. */
  block(tag = 0, proposer = this.proposer(0)): Block {
    return makeBlock(this.context, proposer.address, tag);
  }

  /** The proposal of `round` for `block` arrives, and the application finds it valid. */
  propose(round: number, block: Block, validRound = -1, valid = true): Proposal {
    const proposal = makeProposal(this.proposer(round), block, round, validRound);
    this.send({ type: 'proposal-received', proposal });
    const request = actionsOf(this.actions, 'validate-value')[0];
    if (request !== undefined) {
      this.send({ type: 'value-validated', height: 1, blockHash: request.blockHash, valid });
    }
    return proposal;
  }

  /** Votes arrive from `from`; returns every action they caused. */
  votes(
    type: VoteType,
    round: number,
    value: Block | null,
    from: readonly TestValidator[],
  ): ConsensusAction[] {
    const all: ConsensusAction[] = [];
    for (const validator of from) {
      const vote = makeVote(
        validator,
        type,
        1,
        round,
        value === null ? null : blockHash(value.header),
      );
      all.push(...this.send({ type: 'vote-received', vote }));
    }
    return all;
  }

  /** Answers the sign-vote requests in `actions` with this node's key. */
  signRequested(actions: readonly ConsensusAction[]): ConsensusAction[] {
    const all: ConsensusAction[] = [];
    for (const request of actionsOf(actions, 'sign-vote')) {
      const vote = signVote(
        CHAIN_ID,
        request.request,
        request.request.notBefore,
        this.self!.privateKey,
      );
      all.push(...this.send({ type: 'vote-signed', vote }));
    }
    return all;
  }
}

function requestedVotes(actions: readonly ConsensusAction[]): { type: VoteType; value: string }[] {
  return actionsOf(actions, 'sign-vote').map(({ request }) => ({
    type: request.type,
    value: request.blockHash === null ? 'nil' : toHex(request.blockHash),
  }));
}

function hex(block: Block): string {
  return toHex(blockHash(block.header));
}

describe('Tendermint state machine (Algorithm 1)', () => {
  describe('StartRound (lines 10-21)', () => {
    it('asks the application for a value when it is the proposer (line 18)', () => {
      const node = new Harness([1, 1, 1, 1], { self: 'proposer' });
      const [request] = actionsOf(node.actions, 'request-value');
      assert.ok(request, 'expected request-value');
      assert.equal(request.height, 1);
      assert.equal(request.round, 0);
      assert.equal(request.template.proposer, node.self!.address);
      assert.equal(request.template.lastCommit, null);
      const block = node.block(0, node.self);
      const actions = node.send({ type: 'value-proposed', height: 1, round: 0, block });
      const [sign] = actionsOf(actions, 'sign-proposal');
      assert.ok(sign);
      assert.equal(sign.request.validRound, -1);
      assert.ok(bytesEqual(sign.blockHash, blockHash(block.header)));
    });

    it('schedules timeoutPropose(0) when it is not the proposer (line 21)', () => {
      const node = new Harness([1, 1, 1, 1]);
      assert.deepEqual(actionsOf(node.actions, 'request-value'), []);
      const [timeout] = actionsOf(node.actions, 'schedule-timeout');
      assert.deepEqual(
        { step: timeout?.step, round: timeout?.round, duration: timeout?.durationMs },
        { step: 'propose', round: 0, duration: 1000 },
      );
    });

    it('re-proposes validValue with validRound instead of asking for a value (lines 15-16)', () => {
      const node = new Harness([1, 1, 1, 1]);
      const block = node.block(3);
      node.propose(0, block);
      node.signRequested(node.actions);
      node.signRequested(node.votes('prevote', 0, block, node.others));
      assert.equal(node.state.validRound, 0);
      // Round 0 ends without a decision; find a round in which this node proposes.
      let round = 0;
      while (node.proposer(round + 1).address !== node.self!.address) {
        node.send({ type: 'timeout-fired', height: 1, round, step: 'precommit' });
        round++;
      }
      const actions = node.send({ type: 'timeout-fired', height: 1, round, step: 'precommit' });
      assert.deepEqual(actionsOf(actions, 'request-value'), []);
      const [sign] = actionsOf(actions, 'sign-proposal');
      assert.ok(sign, 'expected the valid value to be proposed again');
      assert.equal(sign.request.validRound, 0);
      assert.equal(hex(sign.request.block), hex(block));
    });
  });

  describe('line 22: proposal with vr = -1', () => {
    it('prevotes id(v) for a valid value when not locked', () => {
      const node = new Harness([1, 1, 1, 1]);
      const block = node.block();
      node.propose(0, block);
      assert.deepEqual(requestedVotes(node.actions), [{ type: 'prevote', value: hex(block) }]);
      assert.equal(node.state.step, 'prevote');
    });

    it('prevotes nil for a value the application rejects', () => {
      const node = new Harness([1, 1, 1, 1]);
      node.propose(0, node.block(), -1, false);
      assert.deepEqual(requestedVotes(node.actions), [{ type: 'prevote', value: 'nil' }]);
    });

    it('prevotes nil for a block that breaks a consensus rule, without asking the application', () => {
      const node = new Harness([1, 1, 1, 1]);
      const good = node.block();
      const bad: Block = { ...good, header: { ...good.header, time: good.header.time + 1 } };
      const actions = node.send({
        type: 'proposal-received',
        proposal: makeProposal(node.proposer(0), bad, 0),
      });
      assert.deepEqual(actionsOf(actions, 'validate-value'), []);
      assert.equal(
        actionsOf(actions, 'message-rejected')[0]?.reason,
        MessageRejection.INVALID_BLOCK,
      );
      assert.deepEqual(requestedVotes(actions), [{ type: 'prevote', value: 'nil' }]);
    });

    it('refuses a copy of a proposal with another body without a trace, then takes the genuine one', () => {
      // The proposer signs the header hash only: anyone relaying the proposal can swap its body
      // and keep a valid signature. Recorded under the header hash, the copy would stand in for
      // the genuine block for the whole height (prevote nil, never lock, never decide).
      const node = new Harness([1, 1, 1, 1]);
      const block = node.block(3);
      const genuine = makeProposal(node.proposer(0), block, 0);
      for (const body of [
        { transactions: [...block.transactions, new Uint8Array([1, 2, 3])] },
        { evidence: [] as Block['evidence'], transactions: [new Uint8Array(40)] },
        { lastCommit: { height: 0 } as unknown as Block['lastCommit'] },
      ]) {
        const tampered: Proposal = { ...genuine, block: { ...block, ...body } };
        const refused = node.send({ type: 'proposal-received', proposal: tampered });
        assert.equal(actionsOf(refused, 'message-rejected')[0]?.reason, MessageRejection.MALFORMED);
        assert.deepEqual(actionsOf(refused, 'validate-value'), []);
        assert.deepEqual(requestedVotes(refused), []);
      }
      node.send({ type: 'proposal-received', proposal: genuine });
      const [request] = actionsOf(node.actions, 'validate-value');
      assert.ok(request, 'the genuine proposal is checked');
      node.send({ type: 'value-validated', height: 1, blockHash: request.blockHash, valid: true });
      assert.deepEqual(requestedVotes(node.actions), [{ type: 'prevote', value: hex(block) }]);
      node.votes('prevote', 0, block, node.others);
      const [commit] = actionsOf(node.votes('precommit', 0, block, node.others), 'commit-block');
      assert.ok(commit, 'the genuine block is decided');
      assert.equal(hex(commit.block), hex(block));
      assert.deepEqual(commit.block.transactions, block.transactions);
    });

    it('waits for valid(v) before prevoting', () => {
      const node = new Harness([1, 1, 1, 1]);
      const block = node.block();
      const actions = node.send({
        type: 'proposal-received',
        proposal: makeProposal(node.proposer(0), block, 0),
      });
      assert.deepEqual(requestedVotes(actions), []);
      assert.equal(node.state.step, 'propose');
      const answered = node.send({
        type: 'value-validated',
        height: 1,
        blockHash: blockHash(block.header),
        valid: true,
      });
      assert.deepEqual(requestedVotes(answered), [{ type: 'prevote', value: hex(block) }]);
    });

    it('prevotes nil for another value while locked (line 23)', () => {
      const node = new Harness([1, 1, 1, 1], { self: 3 });
      const locked = node.block(1);
      node.propose(0, locked);
      node.signRequested(node.actions);
      node.signRequested(node.votes('prevote', 0, locked, node.others));
      assert.equal(node.state.lockedRound, 0);
      node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'precommit' });
      node.propose(1, node.block(2, node.proposer(1)));
      assert.deepEqual(requestedVotes(node.actions), [{ type: 'prevote', value: 'nil' }]);
      // Its locked value proposed afresh (vr = -1) by the validator that built it, proposer
      // again in round 4 (equal powers rotate every 4 rounds), gets its prevote.
      for (const round of [1, 2, 3]) {
        if (round > 1) node.send({ type: 'timeout-fired', height: 1, round, step: 'propose' });
        node.send({ type: 'timeout-fired', height: 1, round, step: 'prevote' });
        node.send({ type: 'timeout-fired', height: 1, round, step: 'precommit' });
      }
      assert.equal(node.state.round, 4);
      assert.equal(node.proposer(4).address, node.proposer(0).address);
      node.propose(4, locked);
      assert.deepEqual(requestedVotes(node.actions), [{ type: 'prevote', value: hex(locked) }]);
    });

    it('ignores a proposal from a validator that is not proposer(h, r)', () => {
      const node = new Harness([1, 1, 1, 1]);
      const impostor = node.validators.find(
        (v) => v.address !== node.proposer(0).address,
      ) as TestValidator;
      const block = node.block(0, impostor);
      const actions = node.send({
        type: 'proposal-received',
        proposal: makeProposal(impostor, block, 0),
      });
      assert.equal(
        actionsOf(actions, 'message-rejected')[0]?.reason,
        MessageRejection.NOT_PROPOSER,
      );
      assert.equal(node.state.step, 'propose');
    });
    it("ignores a fresh proposal (vr = -1) of a block that names another proposer, so round 1's proposer cannot reuse round 0's proofs", () => {
      const node = new Harness([1, 1, 1, 1], { self: 3 });
      // Round 0's proposer built a block; round 0 fails.
      const earlier = node.block(1, node.proposer(0));
      node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'propose' });
      node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'prevote' });
      node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'precommit' });
      assert.equal(node.state.round, 1);
      assert.notEqual(node.proposer(1).address, node.proposer(0).address);
      // Round 1's proposer signs that block as its own fresh proposal.
      const actions = node.send({
        type: 'proposal-received',
        proposal: makeProposal(node.proposer(1), earlier, 1, -1),
      });
      assert.equal(
        actionsOf(actions, 'message-rejected')[0]?.reason,
        MessageRejection.NOT_BLOCK_PROPOSER,
      );
      assert.deepEqual(actionsOf(actions, 'validate-value'), []);
      assert.equal(node.state.proposals.get(1), undefined);
    });
  });

  describe('line 28: proposal with a valid round vr', () => {
    /** Locks on `locked` in round 0, then moves to round 1 without a decision. */
    function lockedAtRoundZero(node: Harness, locked: Block): void {
      node.propose(0, locked);
      node.signRequested(node.actions);
      node.signRequested(node.votes('prevote', 0, locked, node.others));
      node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'precommit' });
    }

    // With equal powers the proposers rotate in address order, so validator 3 proposes round 3
    // and receives the proposals of rounds 0-2.
    it('prevotes id(v) when 2f+1 prevoted v in vr ≥ lockedRound, even if locked on another value', () => {
      const node = new Harness([1, 1, 1, 1], { self: 3 });
      assert.equal(node.proposer(3).address, node.self!.address);
      const locked = node.block(1);
      lockedAtRoundZero(node, locked);
      assert.equal(node.state.lockedRound, 0);
      // Round 1: 2f+1 prevote another value v; round 2 re-proposes v with vr = 1.
      const other = node.block(2, node.proposer(1));
      node.votes('prevote', 1, other, node.others);
      node.send({ type: 'timeout-fired', height: 1, round: 1, step: 'propose' });
      node.send({ type: 'timeout-fired', height: 1, round: 1, step: 'prevote' });
      node.send({ type: 'timeout-fired', height: 1, round: 1, step: 'precommit' });
      assert.equal(node.state.round, 2);
      node.propose(2, other, 1);
      assert.deepEqual(requestedVotes(node.actions), [{ type: 'prevote', value: hex(other) }]);
    });

    it('prevotes nil when vr is older than its lock and the value differs (line 32)', () => {
      const node = new Harness([1, 1, 1, 1], { self: 3 });
      const early = node.block(1);
      // Round 0: 2f+1 prevote `early`, but this node misses the proposal and locks nothing.
      node.votes('prevote', 0, early, node.others);
      node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'propose' });
      node.signRequested(node.actions);
      node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'precommit' });
      // Round 1: it locks on `late`.
      const late = node.block(2, node.proposer(1));
      node.propose(1, late);
      node.signRequested(node.actions);
      node.signRequested(node.votes('prevote', 1, late, node.others));
      assert.equal(node.state.lockedRound, 1);
      node.send({ type: 'timeout-fired', height: 1, round: 1, step: 'precommit' });
      // Round 2 re-proposes `early` with vr = 0 < lockedRound = 1.
      node.propose(2, early, 0);
      assert.deepEqual(requestedVotes(node.actions), [{ type: 'prevote', value: 'nil' }]);
    });

    it('prevotes id(v) for its locked value whatever vr (lockedValue = v)', () => {
      const node = new Harness([1, 1, 1, 1], { self: 3 });
      const locked = node.block(1);
      node.votes('prevote', 0, locked, node.others);
      lockedAtRoundZero(node, locked);
      node.send({ type: 'timeout-fired', height: 1, round: 1, step: 'propose' });
      node.send({ type: 'timeout-fired', height: 1, round: 1, step: 'prevote' });
      node.send({ type: 'timeout-fired', height: 1, round: 1, step: 'precommit' });
      node.propose(2, locked, 0);
      assert.deepEqual(requestedVotes(node.actions), [{ type: 'prevote', value: hex(locked) }]);
    });

    it('waits while the prevotes of vr are missing', () => {
      const node = new Harness([1, 1, 1, 1]);
      node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'propose' });
      node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'prevote' });
      node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'precommit' });
      if (node.proposer(1).address === node.self!.address) return;
      node.propose(1, node.block(5, node.proposer(1)), 0);
      assert.deepEqual(requestedVotes(node.actions), []);
      assert.equal(node.state.step, 'propose');
    });
  });

  describe('line 34: 2f+1 prevotes for anything', () => {
    it('schedules timeoutPrevote once', () => {
      const node = new Harness([1, 1, 1, 1]);
      const block = node.block();
      node.propose(0, block);
      const [a, b, c] = node.others as [TestValidator, TestValidator, TestValidator];
      // Its own prevote is requested but not signed yet, so it does not count.
      let actions = node.votes('prevote', 0, null, [a]);
      actions = actions.concat(node.votes('prevote', 0, node.block(9), [b]));
      assert.deepEqual(actionsOf(actions, 'schedule-timeout'), [], '2 of 4 is not 2f+1');
      actions = node.votes('prevote', 0, null, [c]);
      assert.deepEqual(
        actionsOf(actions, 'schedule-timeout').map((t) => [t.step, t.round, t.durationMs]),
        [['prevote', 0, 500]],
        'three different values from 3 of 4 validators',
      );
      actions = node.signRequested(requestedVotesActions(node));
      assert.equal(actionsOf(actions, 'broadcast-vote').length, 1);
      assert.deepEqual(actionsOf(actions, 'schedule-timeout'), []);
      void block;
    });
  });

  describe('line 36: proposal and 2f+1 prevotes for it', () => {
    it('locks, precommits id(v) and sets validValue in step prevote', () => {
      const node = new Harness([1, 1, 1, 1]);
      const block = node.block();
      node.propose(0, block);
      node.signRequested(node.actions);
      const actions = node.votes('prevote', 0, block, node.others.slice(0, 2));
      assert.deepEqual(requestedVotes(actions), [{ type: 'precommit', value: hex(block) }]);
      assert.equal(node.state.lockedRound, 0);
      assert.equal(hex(node.state.lockedValue!), hex(block));
      assert.equal(node.state.validRound, 0);
      assert.equal(node.state.step, 'precommit');
    });

    it('only updates validValue when already in step precommit (lines 42-43)', () => {
      const node = new Harness([1, 1, 1, 1]);
      const block = node.block();
      node.propose(0, block);
      node.signRequested(node.actions);
      node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'prevote' });
      assert.equal(node.state.step, 'precommit', 'OnTimeoutPrevote precommitted nil');
      const actions = node.votes('prevote', 0, block, node.others.slice(0, 2));
      assert.deepEqual(requestedVotes(actions), []);
      assert.equal(node.state.lockedRound, -1, 'no lock: step was precommit');
      assert.equal(node.state.validRound, 0);
      assert.equal(hex(node.state.validValue!), hex(block));
    });

    it('does not lock on a value the application rejected', () => {
      const node = new Harness([1, 1, 1, 1]);
      const block = node.block();
      node.propose(0, block, -1, false);
      node.signRequested(node.actions);
      const actions = node.votes('prevote', 0, block, node.others);
      assert.deepEqual(requestedVotes(actions), []);
      assert.equal(node.state.lockedRound, -1);
    });
  });

  describe('line 44: 2f+1 prevotes for nil', () => {
    it('precommits nil', () => {
      const node = new Harness([1, 1, 1, 1]);
      node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'propose' });
      node.signRequested(node.actions);
      const actions = node.votes('prevote', 0, null, node.others.slice(0, 2));
      assert.deepEqual(requestedVotes(actions), [{ type: 'precommit', value: 'nil' }]);
      assert.equal(node.state.step, 'precommit');
    });
  });

  describe('line 47: 2f+1 precommits for anything', () => {
    it('schedules timeoutPrecommit once, in any step', () => {
      const node = new Harness([1, 1, 1, 1]);
      const [a, b, c] = node.others as [TestValidator, TestValidator, TestValidator];
      node.votes('precommit', 0, null, [a, b]);
      const actions = node.votes('precommit', 0, node.block(4), [c]);
      assert.deepEqual(
        actionsOf(actions, 'schedule-timeout').map((t) => [t.step, t.round]),
        [['precommit', 0]],
      );
      assert.equal(node.state.step, 'propose');
      assert.deepEqual(actionsOf(node.votes('precommit', 0, null, [c]), 'schedule-timeout'), []);
    });
  });

  describe('line 49: proposal and 2f+1 precommits for it, in any round', () => {
    it('decides, with the precommits as the quorum certificate', () => {
      const node = new Harness([1, 1, 1, 1]);
      node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'propose' });
      node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'prevote' });
      node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'precommit' });
      assert.equal(node.state.round, 1);
      // Round 0's value gets committed by the others while this node is in round 1.
      const block = node.block(6);
      node.propose(0, block);
      const actions = node.votes('precommit', 0, block, node.others);
      const [commit] = actionsOf(actions, 'commit-block');
      assert.ok(commit, 'expected a decision');
      assert.equal(hex(commit.block), hex(block));
      assert.equal(commit.commit.round, 0);
      assert.equal(commit.commit.precommits.length, 3);
      const addresses = commit.commit.precommits.map((v) => v.validator);
      assert.deepEqual(addresses, [...addresses].sort());
      assert.equal(node.state.step, 'commit');
      assert.ok(node.state.decision);
    });

    it('does not decide a value the application rejected (line 50)', () => {
      const node = new Harness([1, 1, 1, 1]);
      const block = node.block(6);
      node.propose(0, block, -1, false);
      const actions = node.votes('precommit', 0, block, node.others);
      assert.deepEqual(actionsOf(actions, 'commit-block'), []);
      assert.equal(node.state.decision, null);
    });

    it('does not decide without the proposal, and decides once it arrives', () => {
      const node = new Harness([1, 1, 1, 1]);
      const block = node.block(6);
      assert.deepEqual(
        actionsOf(node.votes('precommit', 0, block, node.others), 'commit-block'),
        [],
      );
      const proposal = makeProposal(node.proposer(0), block, 0);
      assert.deepEqual(
        actionsOf(node.send({ type: 'proposal-received', proposal }), 'commit-block'),
        [],
        'valid(v) is not known yet',
      );
      const actions = node.send({
        type: 'value-validated',
        height: 1,
        blockHash: blockHash(block.header),
        valid: true,
      });
      assert.equal(actionsOf(actions, 'commit-block').length, 1);
    });

    it('starts the next height from start-height (lines 52-54)', () => {
      const node = new Harness([1, 1, 1, 1]);
      const block = node.block();
      node.propose(0, block);
      const [commit] = actionsOf(node.votes('precommit', 0, block, node.others), 'commit-block');
      assert.ok(commit);
      const next = nextHeightContext(node.context, commit.block, commit.commit);
      const actions = node.send({ type: 'start-height', context: next });
      assert.equal(node.state.height, 2);
      assert.equal(node.state.round, 0);
      assert.equal(node.state.lockedRound, -1);
      assert.equal(node.state.validRound, -1);
      assert.equal(node.state.prevotes.size, 0);
      assert.ok(actionsOf(actions, 'schedule-timeout').length > 0);
      assert.throws(
        () => step(node.state, { type: 'start-height', context: next }),
        (error: unknown) =>
          error instanceof ConsensusError && error.code === ConsensusErrorCode.INVALID_CONFIG,
      );
    });
  });

  describe('line 55: f+1 messages of a later round', () => {
    it('skips to the highest such round', () => {
      const node = new Harness([1, 1, 1, 1]);
      const [a, b] = node.others as [TestValidator, TestValidator];
      node.votes('prevote', 3, null, [a]);
      assert.equal(node.state.round, 0, 'f messages do not move it');
      node.votes('precommit', 3, null, [b]);
      assert.equal(node.state.round, 3);
      assert.equal(node.state.step, 'propose');
    });

    it('counts voting power, not validators', () => {
      // Total 8: f+1 needs more than 8/3, so one validator of power 3 is enough, and two of
      // power 1 are not.
      const node = new Harness([3, 1, 1, 3]);
      const small = node.others.filter((v) => v.power === 1);
      const big = node.others.find((v) => v.power === 3)!;
      if (small.length >= 2) {
        node.votes('prevote', 2, null, small.slice(0, 2));
        assert.equal(node.state.round, 0);
      }
      node.votes('prevote', 5, null, [big]);
      assert.equal(node.state.round, 5);
    });

    it('bounds how many future rounds one validator occupies', () => {
      const node = new Harness([1, 1, 1, 1]);
      const [a] = node.others as [TestValidator];
      node.votes('prevote', 10, null, [a]);
      node.votes('prevote', 11, null, [a]);
      const actions = node.votes('prevote', 12, null, [a]);
      assert.equal(
        actionsOf(actions, 'message-rejected')[0]?.reason,
        MessageRejection.FUTURE_ROUND_LIMIT,
      );
    });
  });

  describe('timeouts (lines 57-67)', () => {
    it('OnTimeoutPropose prevotes nil, OnTimeoutPrevote precommits nil, OnTimeoutPrecommit starts the next round', () => {
      const node = new Harness([1, 1, 1, 1]);
      let actions = node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'propose' });
      assert.deepEqual(requestedVotes(actions), [{ type: 'prevote', value: 'nil' }]);
      actions = node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'prevote' });
      assert.deepEqual(requestedVotes(actions), [{ type: 'precommit', value: 'nil' }]);
      actions = node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'precommit' });
      assert.equal(node.state.round, 1);
      const [timeout] = actionsOf(actions, 'schedule-timeout');
      assert.equal(timeout?.durationMs, 1100, 'timeoutPropose grows with the round');
    });

    it('ignores timeouts of another height, round or step', () => {
      const node = new Harness([1, 1, 1, 1]);
      const before = node.state;
      for (const event of [
        { height: 2, round: 0, step: 'propose' },
        { height: 1, round: 1, step: 'propose' },
        { height: 1, round: 0, step: 'prevote' },
      ] as const) {
        const actions = node.send({ type: 'timeout-fired', ...event });
        assert.deepEqual(actions, []);
      }
      assert.equal(node.state.step, before.step);
      assert.equal(node.state.round, before.round);
    });
  });

  describe('weighted voting power', () => {
    it('needs more than 2/3 of the power, not of the validators', () => {
      // Powers 5, 1, 1, 1 (total 8): quorum needs 6. The three small validators (3) cannot
      // lock this node; the big one plus one small can.
      const node = new Harness([5, 1, 1, 1], { self: 'none' });
      const big = node.validators.find((v) => v.power === 5)!;
      const small = node.validators.filter((v) => v.power === 1);
      const block = node.block();
      node.propose(0, block);
      node.votes('precommit', 0, block, small);
      assert.equal(node.state.decision, null);
      node.votes('precommit', 0, block, [big]);
      assert.ok(node.state.decision, '5 + 3 = 8 > 16/3');
    });
  });

  describe('own votes', () => {
    it('broadcasts a vote once the signer returns it, and never asks twice for one step', () => {
      const node = new Harness([1, 1, 1, 1]);
      const block = node.block();
      node.propose(0, block);
      const requests = actionsOf(node.actions, 'sign-vote');
      assert.equal(requests.length, 1);
      const broadcast = actionsOf(node.signRequested(node.actions), 'broadcast-vote');
      assert.equal(broadcast.length, 1);
      assert.equal(broadcast[0]?.vote.validator, node.self!.address);
      assert.deepEqual(
        requestedVotes(node.send({ type: 'timeout-fired', height: 1, round: 0, step: 'propose' })),
        [],
      );
    });

    it('rejects a signed vote it did not ask for', () => {
      const node = new Harness([1, 1, 1, 1]);
      const vote = makeVote(node.self!, 'prevote', 1, 0, null);
      const actions = node.send({ type: 'vote-signed', vote });
      assert.equal(actionsOf(actions, 'message-rejected')[0]?.reason, MessageRejection.UNREQUESTED);
      assert.deepEqual(actionsOf(actions, 'broadcast-vote'), []);
    });

    it('a node without a validator key follows without voting', () => {
      const node = new Harness([1, 1, 1, 1], { self: 'none' });
      const block = node.block();
      node.propose(0, block);
      assert.deepEqual(requestedVotes(node.actions), []);
      assert.equal(node.state.step, 'prevote');
    });
  });

  describe('messages it refuses', () => {
    it('rejects forged, foreign and malformed votes with a reason', () => {
      const node = new Harness([1, 1, 1, 1]);
      const [a, b] = node.others as [TestValidator, TestValidator];
      const good = makeVote(a, 'prevote', 1, 0, null);
      const cases: [Vote, MessageRejection][] = [
        [{ ...good, validator: b.address }, MessageRejection.BAD_SIGNATURE],
        [{ ...good, signature: new Uint8Array(64) }, MessageRejection.BAD_SIGNATURE],
        [{ ...good, validator: 'ff'.repeat(20) }, MessageRejection.UNKNOWN_VALIDATOR],
        [makeVote(a, 'prevote', 2, 0, null), MessageRejection.WRONG_HEIGHT],
        [{ ...good, round: -1 }, MessageRejection.MALFORMED],
        [{ ...good, blockHash: new Uint8Array(5) }, MessageRejection.MALFORMED],
        [{ ...good, pqSignature: new Uint8Array(10) }, MessageRejection.MALFORMED],
      ];
      for (const [vote, reason] of cases) {
        const actions = node.send({ type: 'vote-received', vote });
        assert.equal(actionsOf(actions, 'message-rejected')[0]?.reason, reason, reason);
      }
      assert.equal(node.state.prevotes.get(0)?.power ?? 0, 0);
    });

    it('rejects a proposal with vr ≥ r and a second proposal of an equivocating proposer', () => {
      const node = new Harness([1, 1, 1, 1]);
      const proposer = node.proposer(0);
      const bad = makeProposal(proposer, node.block(1), 0, 0);
      assert.equal(
        actionsOf(node.send({ type: 'proposal-received', proposal: bad }), 'message-rejected')[0]
          ?.reason,
        MessageRejection.INVALID_VALID_ROUND,
      );
      node.send({ type: 'proposal-received', proposal: makeProposal(proposer, node.block(1), 0) });
      const second = makeProposal(proposer, node.block(2), 0);
      assert.equal(
        actionsOf(node.send({ type: 'proposal-received', proposal: second }), 'message-rejected')[0]
          ?.reason,
        MessageRejection.CONFLICTING_PROPOSAL,
      );
      // Once more than 1/3 of the power prevoted the second block, it is kept.
      node.votes('prevote', 0, second.block, node.others.slice(0, 2));
      node.send({ type: 'proposal-received', proposal: second });
      assert.equal(node.state.proposals.get(0)?.length, 2);
    });
  });

  describe('refusals before the body is hashed', () => {
    /** `block` with its body behind getters that count reads (hashing it reads them). */
    function counted(block: Block): { block: Block; reads: () => number } {
      let reads = 0;
      const copy = { header: block.header } as Block;
      for (const field of ['transactions', 'evidence', 'lastCommit'] as const) {
        Object.defineProperty(copy, field, {
          enumerable: true,
          get: () => {
            reads++;
            return block[field];
          },
        });
      }
      return { block: copy, reads: () => reads };
    }

    it('refuses a conflicting proposal without reading its body', () => {
      // An equivocating proposer signs as many of these as it likes: each must cost no more
      // than its signature, whatever the size of its body.
      const node = new Harness([1, 1, 1, 1]);
      const proposer = node.proposer(0);
      node.propose(0, node.block(1));
      for (const tag of [2, 3]) {
        const second = makeProposal(proposer, node.block(tag), 0);
        const body = counted(second.block);
        const actions = node.send({
          type: 'proposal-received',
          proposal: { ...second, block: body.block },
        });
        assert.equal(
          actionsOf(actions, 'message-rejected')[0]?.reason,
          MessageRejection.CONFLICTING_PROPOSAL,
        );
        assert.equal(body.reads(), 0);
      }
      assert.equal(node.state.proposals.get(0)?.length, 1);
    });

    it('refuses a proposal over the future-round limit without reading its body', () => {
      const node = new Harness([1, 1, 1, 1]);
      const round = [1, 2, 3].find((r) => node.proposer(r).address !== node.self?.address)!;
      const proposer = node.proposer(round);
      node.votes('prevote', 10, null, [proposer]);
      node.votes('prevote', 11, null, [proposer]);
      const proposal = makeProposal(proposer, node.block(4, proposer), round);
      const body = counted(proposal.block);
      const actions = node.send({
        type: 'proposal-received',
        proposal: { ...proposal, block: body.block },
      });
      assert.equal(
        actionsOf(actions, 'message-rejected')[0]?.reason,
        MessageRejection.FUTURE_ROUND_LIMIT,
      );
      assert.equal(body.reads(), 0);
    });

    it(`refuses a proposal with more than ${MAX_BLOCK_EVIDENCE} evidence items before their root is computed, recording nothing`, () => {
      const node = new Harness([1, 1, 1, 1]);
      const proposer = node.proposer(0);
      const offender = node.others[0]!;
      const items = Array.from({ length: MAX_BLOCK_EVIDENCE + 1 }, (_, round) =>
        duplicateVoteEvidence(
          makeVote(offender, 'prevote', 1, round, null),
          makeVote(offender, 'prevote', 1, round, new Uint8Array(32).fill(1)),
        ),
      );
      const block = buildBlock(blockTemplate(CHAIN_ID, node.context, proposer.address), {
        transactions: [],
        evidence: items,
        appStateRoot: new Uint8Array(32),
        consensusProof: new Uint8Array(0),
      });
      let itemReads = 0;
      const evidence = new Proxy(items, {
        get(target, property, receiver) {
          if (typeof property === 'string' && /^\d+$/.test(property)) itemReads++;
          return Reflect.get(target, property, receiver) as unknown;
        },
      });
      const proposal = makeProposal(proposer, { ...block, evidence }, 0);
      const actions = node.send({ type: 'proposal-received', proposal });
      const [rejected] = actionsOf(actions, 'message-rejected');
      assert.equal(rejected?.reason, MessageRejection.MALFORMED);
      assert.match(rejected.error?.message ?? '', /more than 64 evidence items/);
      assert.equal(itemReads, 0, 'the evidence root is not computed');
      assert.deepEqual(actionsOf(actions, 'validate-value'), []);
      assert.equal(node.state.proposals.get(0), undefined);
      assert.equal(node.state.validity.size, 0);
    });
  });

  describe('equivocation', () => {
    it('reports duplicate-vote evidence once, with both votes', () => {
      const node = new Harness([1, 1, 1, 1]);
      const [a] = node.others as [TestValidator];
      const first = makeVote(a, 'precommit', 1, 0, null);
      const second = makeVote(a, 'precommit', 1, 0, blockHash(node.block().header));
      node.send({ type: 'vote-received', vote: first });
      const actions = node.send({ type: 'vote-received', vote: second });
      const [found] = actionsOf(actions, 'evidence-found');
      assert.ok(found);
      const pair = [found.evidence.voteA, found.evidence.voteB];
      assert.ok(pair.includes(first) && pair.includes(second));
      const third = makeVote(a, 'precommit', 1, 0, blockHash(node.block(8).header));
      assert.deepEqual(
        actionsOf(node.send({ type: 'vote-received', vote: third }), 'evidence-found'),
        [],
      );
    });

    it('counts an equivocator once towards "any value" and once per admissible value', () => {
      const node = new Harness([1, 1, 1, 1]);
      const block = node.block();
      node.propose(0, block);
      const [a] = node.others as [TestValidator];
      node.votes('precommit', 0, null, [a]);
      node.votes('precommit', 0, block, [a]);
      const set = node.state.precommits.get(0)!;
      assert.equal(set.power, 1);
      assert.equal(set.powerByValue.get('nil'), 1);
      assert.equal(set.powerByValue.get(hex(block)), 1);
      // A made-up value nobody proposed is not counted.
      node.votes('precommit', 0, node.block(42), [a]);
      assert.equal(node.state.precommits.get(0)!.powerByValue.get(hex(node.block(42))), undefined);
    });
  });

  describe('purity', () => {
    it('never changes the state it is given', () => {
      const node = new Harness([1, 1, 1, 1]);
      const block = node.block();
      node.propose(0, block);
      const before = node.state;
      const snapshot = {
        round: before.round,
        step: before.step,
        prevotes: before.prevotes,
        prevoteCount: before.prevotes.get(0)?.votes.size ?? 0,
        ownVotes: before.ownVotes.size,
        fired: before.fired.size,
      };
      node.signRequested(node.actions);
      node.votes('prevote', 0, block, node.others);
      assert.notEqual(node.state, before);
      assert.equal(before.round, snapshot.round);
      assert.equal(before.step, snapshot.step);
      assert.equal(before.prevotes, snapshot.prevotes);
      assert.equal(before.prevotes.get(0)?.votes.size ?? 0, snapshot.prevoteCount);
      assert.equal(before.ownVotes.size, snapshot.ownVotes);
      assert.equal(before.fired.size, snapshot.fired);
      // Replaying the same events from the snapshot gives the same result.
      const again = step(before, {
        type: 'vote-received',
        vote: makeVote(node.others[0]!, 'prevote', 1, 0, blockHash(block.header)),
      });
      assert.equal(again.state.prevotes.get(0)?.votes.size, snapshot.prevoteCount + 1);
    });
  });
});

function requestedVotesActions(node: Harness): ConsensusAction[] {
  return node.state.ownVotes.size > 0
    ? [...node.state.ownVotes.values()]
        .filter((own) => own.signed === null)
        .map((own) => ({ type: 'sign-vote', request: own.request }) as ConsensusAction)
    : [];
}
