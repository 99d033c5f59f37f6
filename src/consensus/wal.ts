import { toHex } from '../crypto/bytes.js';
import { ConsensusError, ConsensusErrorCode } from './errors.js';
import type { StepResult } from './events.js';
import type { HeightContext } from './height-context.js';
import { blockHash } from './messages.js';
import {
  initialState,
  ownVoteKey,
  type ConsensusConfig,
  type OwnProposal,
  type OwnVote,
  type TendermintState,
} from './state.js';
import { Transition } from './transition.js';
import type { Block, RoundStep } from './types.js';

/**
 * What the consensus write-ahead log must hold so that a validator restarted at any point never
 * signs a vote or proposal that conflicts with one it signed before, and keeps its lock
 * (lockedValue/lockedRound carry safety across rounds, paper §4, Lemma 2). The driver writes
 * `walRecord(state)` durably after every step and before it executes the step's actions.
 */
export interface ConsensusWalRecord {
  readonly height: number;
  readonly round: number;
  readonly step: RoundStep;
  readonly lockedValue: Block | null;
  readonly lockedRound: number;
  readonly validValue: Block | null;
  readonly validRound: number;
  /** Every vote this validator decided to cast at this height, signed or still requested. */
  readonly ownVotes: readonly OwnVote[];
  readonly ownProposals: readonly OwnProposal[];
  readonly valueRequests: readonly number[];
}

export function walRecord(state: TendermintState): ConsensusWalRecord {
  return {
    height: state.height,
    round: state.round,
    step: state.step,
    lockedValue: state.lockedValue,
    lockedRound: state.lockedRound,
    validValue: state.validValue,
    validRound: state.validRound,
    ownVotes: [...state.ownVotes.values()],
    ownProposals: [...state.ownProposals.values()],
    valueRequests: [...state.valueRequests],
  };
}

function invalid(message: string, detail: Record<string, unknown> = {}): ConsensusError {
  return new ConsensusError(ConsensusErrorCode.INVALID_WAL_RECORD, message, detail);
}

/**
 * Rebuilds the state of `context.height` from a WAL record of that height: round, step, locks
 * and this validator's own messages. Signed own messages are counted and broadcast again;
 * requested ones are requested again (the signer returns the same signature or refuses); the
 * propose step's work is redone. Messages from others were not logged: peers gossip them again.
 * A record of an earlier height (its block was committed before the crash) does not apply —
 * start the height with `startTendermint` instead.
 */
export function restoreTendermint(
  config: ConsensusConfig,
  context: HeightContext,
  record: ConsensusWalRecord,
): StepResult<TendermintState> {
  if (record.height !== context.height) {
    throw invalid('WAL record is for another height', {
      record: record.height,
      height: context.height,
    });
  }
  if (!Number.isSafeInteger(record.round) || record.round < 0) {
    throw invalid('WAL round is not a round', { round: record.round });
  }
  const ownVotes = new Map<string, OwnVote>();
  for (const vote of record.ownVotes) {
    if (vote.request.height !== record.height || vote.request.validator !== config.self) {
      throw invalid('WAL vote is not this validator’s at this height');
    }
    ownVotes.set(ownVoteKey(vote.request.round, vote.request.type), vote);
  }
  const ownProposals = new Map<number, OwnProposal>();
  for (const proposal of record.ownProposals) {
    if (proposal.request.height !== record.height || proposal.request.proposer !== config.self) {
      throw invalid('WAL proposal is not this validator’s at this height');
    }
    ownProposals.set(proposal.request.round, proposal);
  }
  const fresh = initialState(config, context);
  const validity = new Map(fresh.validity);
  for (const value of [record.lockedValue, record.validValue]) {
    if (value !== null) validity.set(toHex(blockHash(value.header)), 'valid');
  }
  const transition = new Transition({
    ...fresh,
    round: record.round,
    // A decision whose block did not reach the store is decided again from peers' messages.
    step: record.step === 'commit' ? 'precommit' : record.step,
    lockedValue: record.lockedValue,
    lockedRound: record.lockedRound,
    validValue: record.validValue,
    validRound: record.validRound,
    validity,
    ownVotes,
    ownProposals,
    valueRequests: new Set(record.valueRequests),
  });
  for (const proposal of ownProposals.values()) {
    if (proposal.signed === null) {
      transition.emit({
        type: 'sign-proposal',
        request: proposal.request,
        blockHash: proposal.blockHash,
      });
    } else if (transition.receiveProposal(proposal.signed)) {
      transition.emit({ type: 'broadcast-proposal', proposal: proposal.signed });
    }
  }
  for (const vote of ownVotes.values()) {
    if (vote.signed === null) {
      transition.emit({ type: 'sign-vote', request: vote.request });
    } else if (transition.receiveVote(vote.signed)) {
      transition.emit({ type: 'broadcast-vote', vote: vote.signed });
    }
  }
  transition.resumeRound();
  transition.applyRules();
  return transition.finish();
}
