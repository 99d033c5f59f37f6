import { ConsensusError, ConsensusErrorCode } from './errors.js';
import { checkHeightContext, type HeightContext } from './height-context.js';
import type { TimeoutConfig } from './timeouts.js';
import type {
  Block,
  Proposal,
  ProposalRequest,
  QuorumCertificate,
  RoundStep,
  ValidatorAddress,
  Vote,
  VoteRequest,
  VoteType,
} from './types.js';
import type { SignatureVerifier } from './verify.js';
import type { VoteSet } from './vote-set.js';

/** Default `ConsensusConfig.maxFutureRounds`, as CometBFT's per-peer catch-up rounds. */
export const DEFAULT_MAX_FUTURE_ROUNDS = 2;

/**
 * Default `ConsensusConfig.maxProposalRoundLead`. Checking a proposal of round r computes
 * proposer(h, r), which costs an election per round not computed yet (proposer.ts); 50 of them
 * take about 8 ms at 10,000 validators, the largest set, on the project machine.
 */
export const DEFAULT_MAX_PROPOSAL_ROUND_LEAD = 50;

/** Fixed for the life of a validator. */
export interface ConsensusConfig {
  readonly chainId: string;
  /** This node's validator address, or null for a node that follows without voting. */
  readonly self: ValidatorAddress | null;
  readonly timeouts: TimeoutConfig;
  readonly verifier: SignatureVerifier;
  /** Precommits for a block must carry a FALCON-1024 signature (needs `verifier.falcon`). */
  readonly requirePq: boolean;
  /**
   * How many rounds above the current one a validator's messages may occupy. Bounds the memory a
   * faulty validator can claim with far-future rounds; a correct validator's later messages are
   * gossiped again once this node catches up. Default 2, as CometBFT's per-peer catch-up rounds.
   */
  readonly maxFutureRounds?: number;
  /**
   * How far above round_p a proposal's round may be. A farther one is refused
   * (`PROPOSAL_ROUND_TOO_FAR`) before its proposer is computed or its signature checked, so an
   * unsigned proposal for round 2^31 - 1 costs nothing; a correct proposer's is gossiped again
   * once this node's round gets there (votes make it skip rounds, paper line 55). Default
   * `DEFAULT_MAX_PROPOSAL_ROUND_LEAD`.
   */
  readonly maxProposalRoundLead?: number;
}

/** A proposal from proposer(h, r), with its block hash. */
export interface ReceivedProposal {
  readonly proposal: Proposal;
  readonly hash: Uint8Array;
  /** Hex of `hash`: the value's key in vote tallies. */
  readonly key: string;
}

/** valid(v): pending until the application answers. */
export type Validity = 'pending' | 'valid' | 'invalid';

/** A vote this validator decided to cast; `signed` once the signer answered. */
export interface OwnVote {
  readonly request: VoteRequest;
  readonly signed: Vote | null;
}

export interface OwnProposal {
  readonly request: ProposalRequest;
  readonly blockHash: Uint8Array;
  readonly signed: Proposal | null;
}

export interface Decision {
  readonly block: Block;
  readonly commit: QuorumCertificate;
  readonly proposal: Proposal;
}

/**
 * The variables of Algorithm 1 for the current height h_p, plus the message log the upon-rules
 * read. Immutable: `step` returns a new state and never changes the one it was given.
 */
export interface TendermintState {
  readonly config: ConsensusConfig;
  readonly context: HeightContext;
  /** h_p (line 2). */
  readonly height: number;
  /** round_p (line 3). */
  readonly round: number;
  /** step_p (line 4); `commit` once decision_p[h_p] is set (line 51). */
  readonly step: RoundStep;
  /** lockedValue_p, lockedRound_p (lines 6-7). */
  readonly lockedValue: Block | null;
  readonly lockedRound: number;
  /** validValue_p, validRound_p (lines 8-9). */
  readonly validValue: Block | null;
  readonly validRound: number;
  /** Proposals from proposer(h_p, r) by round, in arrival order. */
  readonly proposals: ReadonlyMap<number, readonly ReceivedProposal[]>;
  /** valid(v) by block hash (hex). */
  readonly validity: ReadonlyMap<string, Validity>;
  readonly prevotes: ReadonlyMap<number, VoteSet>;
  readonly precommits: ReadonlyMap<number, VoteSet>;
  /** Upon-rules that run "for the first time" only (lines 34, 36, 47), as `line/round`. */
  readonly fired: ReadonlySet<string>;
  /** decision_p[h_p] (line 5). */
  readonly decision: Decision | null;
  /** Votes this validator cast at this height, by `round/type`: never two for one key. */
  readonly ownVotes: ReadonlyMap<string, OwnVote>;
  /** Proposals this validator made at this height, by round: never two for one round. */
  readonly ownProposals: ReadonlyMap<number, OwnProposal>;
  /** Rounds in which getValue() was requested. */
  readonly valueRequests: ReadonlySet<number>;
  /** Offences already reported in `evidence-found`. */
  readonly reportedEvidence: ReadonlySet<string>;
}

export function ownVoteKey(round: number, type: VoteType): string {
  return `${round}/${type}`;
}

/** Lines 2-9 and 53: the variables of a fresh height, before StartRound(0). */
export function initialState(config: ConsensusConfig, context: HeightContext): TendermintState {
  const contextError = checkHeightContext(context);
  if (contextError !== undefined) throw contextError;
  proposalRoundLead(config);
  return {
    config,
    context,
    height: context.height,
    round: 0,
    step: 'propose',
    lockedValue: null,
    lockedRound: -1,
    validValue: null,
    validRound: -1,
    proposals: new Map(),
    validity: new Map(),
    prevotes: new Map(),
    precommits: new Map(),
    fired: new Set(),
    decision: null,
    ownVotes: new Map(),
    ownProposals: new Map(),
    valueRequests: new Set(),
    reportedEvidence: new Set(),
  };
}

/**
 * `config.maxProposalRoundLead` or its default. Throws `ConsensusError(INVALID_CONFIG)` unless it
 * is a positive integer.
 */
export function proposalRoundLead(config: ConsensusConfig): number {
  const lead = config.maxProposalRoundLead ?? DEFAULT_MAX_PROPOSAL_ROUND_LEAD;
  if (!Number.isSafeInteger(lead) || lead < 1) {
    throw new ConsensusError(
      ConsensusErrorCode.INVALID_CONFIG,
      'maxProposalRoundLead must be a positive integer',
      { maxProposalRoundLead: lead },
    );
  }
  return lead;
}
