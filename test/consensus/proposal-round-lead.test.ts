import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import type { ConsensusAction } from '../../src/consensus/events.js';
import type { HeightContext } from '../../src/consensus/height-context.js';
import { proposerAt, proposerElections } from '../../src/consensus/proposer.js';
import {
  DEFAULT_MAX_PROPOSAL_ROUND_LEAD,
  type ConsensusConfig,
  type TendermintState,
} from '../../src/consensus/state.js';
import { startTendermint, step } from '../../src/consensus/tendermint.js';
import type { Proposal } from '../../src/consensus/types.js';
import { MAX_ROUND, MessageRejection } from '../../src/consensus/verify.js';
import {
  actionsOf,
  makeBlock,
  makeConfig,
  makeGenesis,
  makeProposal,
  makeValidators,
  makeVote,
  type TestValidator,
} from './sim/fixtures.js';

/**
 * Issue 3, F1: checking a proposal computes proposer(h, r), one election per round, so a
 * proposal for round 2^31 - 1 (the largest the wire accepts) used to cost hours of CPU before
 * its signature was even looked at. The engine now refuses a proposal more than
 * `maxProposalRoundLead` rounds above its own before computing anything.
 */
function setup(overrides: Partial<ConsensusConfig> = {}, self: 'none' | 'validator' = 'none') {
  const { validators, set } = makeValidators([1, 1, 1, 1], 23);
  const context: HeightContext = makeGenesis(set);
  const me = self === 'none' ? null : validators[0]!.address;
  const result = startTendermint(makeConfig(me, overrides), context);
  return { validators, context, state: result.state };
}

function validatorAt(
  validators: readonly TestValidator[],
  context: HeightContext,
  round: number,
): TestValidator {
  const address = proposerAt(context.schedule, round).address;
  return validators.find((v) => v.address === address)!;
}

/** An unsigned proposal: no signature check should ever be reached for it. */
function unsignedProposal(context: HeightContext, proposer: string, round: number): Proposal {
  return {
    height: 1,
    round,
    block: makeBlock(context, proposer, round % 256),
    validRound: -1,
    proposer,
    signature: new Uint8Array(64),
  };
}

function rejections(actions: readonly ConsensusAction[]): MessageRejection[] {
  return actionsOf(actions, 'message-rejected').map((action) => action.reason);
}

describe('proposals far above round_p (issue 3, F1)', () => {
  it('refuses one for round 2^31 - 1 without computing its proposer or storing it', () => {
    const { validators, context, state } = setup();
    // Round 10^6 first: without the bound it costs a second and fails here instead of hanging.
    for (const round of [1_000_000, MAX_ROUND]) {
      const proposal = unsignedProposal(context, validators[1]!.address, round);
      const result = step(state, { type: 'proposal-received', proposal });
      assert.deepEqual(rejections(result.actions), [MessageRejection.PROPOSAL_ROUND_TOO_FAR]);
      assert.equal(proposerElections(context.schedule), 0);
      assert.equal(result.state.proposals.size, 0);
      assert.equal(actionsOf(result.actions, 'validate-value').length, 0);
    }
  });

  it('refuses one just past the lead, even correctly signed, and accepts one at the lead', () => {
    const lead = 3;
    const { validators, context, state } = setup({ maxProposalRoundLead: lead });
    const far = makeProposal(
      validatorAt(validators, context, lead + 1),
      makeBlock(context, validatorAt(validators, context, lead + 1).address, 1),
      lead + 1,
    );
    // Computing the test's expected proposer above ran elections; the engine must add none.
    const before = proposerElections(context.schedule);
    const refused = step(state, { type: 'proposal-received', proposal: far });
    assert.deepEqual(rejections(refused.actions), [MessageRejection.PROPOSAL_ROUND_TOO_FAR]);
    assert.equal(refused.state.proposals.size, 0);
    assert.equal(proposerElections(context.schedule), before);

    const proposer = validatorAt(validators, context, lead);
    const near = makeProposal(proposer, makeBlock(context, proposer.address, 2), lead);
    const accepted = step(refused.state, { type: 'proposal-received', proposal: near });
    assert.deepEqual(rejections(accepted.actions), []);
    assert.equal(accepted.state.proposals.get(lead)?.length, 1);
    assert.equal(actionsOf(accepted.actions, 'validate-value').length, 1);
  });

  it('measures the lead from round_p, which votes can move (line 55)', () => {
    const lead = 2;
    const { validators, context, state } = setup({ maxProposalRoundLead: lead });
    const target = 40;
    // Over 1/3 of the power in round 40 makes the node start it.
    let current: TendermintState = state;
    for (const validator of validators.slice(0, 2)) {
      current = step(current, {
        type: 'vote-received',
        vote: makeVote(validator, 'prevote', 1, target, null),
      }).state;
    }
    assert.equal(current.round, target);
    const proposer = validatorAt(validators, context, target + lead);
    const proposal = makeProposal(proposer, makeBlock(context, proposer.address, 3), target + lead);
    const result = step(current, { type: 'proposal-received', proposal });
    assert.deepEqual(rejections(result.actions), []);
    assert.equal(result.state.proposals.get(target + lead)?.length, 1);
    const beyond = unsignedProposal(context, proposer.address, target + lead + 1);
    const refused = step(result.state, { type: 'proposal-received', proposal: beyond });
    assert.deepEqual(rejections(refused.actions), [MessageRejection.PROPOSAL_ROUND_TOO_FAR]);
  });

  it('refuses a far proposal at the default lead before any election, for a validator too', () => {
    const { validators, context, state } = setup({}, 'validator');
    // A validator computed round 0's proposer when it started the round: no elections.
    const start = proposerElections(context.schedule);
    for (const round of [DEFAULT_MAX_PROPOSAL_ROUND_LEAD + 1, 1_000_000, MAX_ROUND]) {
      const proposal = unsignedProposal(context, validators[2]!.address, round);
      const result = step(state, { type: 'proposal-received', proposal });
      assert.deepEqual(rejections(result.actions), [MessageRejection.PROPOSAL_ROUND_TOO_FAR]);
    }
    assert.equal(proposerElections(context.schedule), start);
    // Within the lead the proposal reaches the proposer and signature checks.
    const inside = unsignedProposal(
      context,
      validators[2]!.address,
      DEFAULT_MAX_PROPOSAL_ROUND_LEAD,
    );
    const result = step(state, { type: 'proposal-received', proposal: inside });
    const [reason] = rejections(result.actions);
    assert.ok(
      reason === MessageRejection.NOT_PROPOSER || reason === MessageRejection.BAD_SIGNATURE,
      `got ${reason}`,
    );
    assert.equal(proposerElections(context.schedule), DEFAULT_MAX_PROPOSAL_ROUND_LEAD);
  });

  it('leaves far-round votes as they were: no proposer is computed for them', () => {
    const { validators, context, state } = setup();
    const result = step(state, {
      type: 'vote-received',
      vote: makeVote(validators[1]!, 'prevote', 1, MAX_ROUND, null),
    });
    // One validator may hold a vote in a far round (maxFutureRounds); it is kept, unread.
    assert.deepEqual(rejections(result.actions), []);
    assert.equal(result.state.prevotes.get(MAX_ROUND)?.votes.size, 1);
    assert.equal(result.state.round, 0);
    assert.equal(proposerElections(context.schedule), 0);
  });

  it('refuses a lead that is not a positive integer', () => {
    for (const maxProposalRoundLead of [0, -1, 1.5, Number.NaN]) {
      assert.throws(
        () => setup({ maxProposalRoundLead }),
        (error: unknown) =>
          error instanceof ConsensusError &&
          error.code === ConsensusErrorCode.INVALID_CONFIG &&
          /maxProposalRoundLead/.test(error.message),
      );
    }
  });
});
