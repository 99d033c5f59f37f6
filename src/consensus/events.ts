import type { BlockTemplate } from './block.js';
import type { ConsensusError } from './errors.js';
import type { HeightContext } from './height-context.js';
import type {
  Block,
  DuplicateVoteEvidence,
  Proposal,
  ProposalRequest,
  QuorumCertificate,
  TimeoutStep,
  Vote,
  VoteRequest,
} from './types.js';
import type { MessageRejection } from './verify.js';

/**
 * The inputs and outputs of the pure state machine. A driver turns network messages, timers and
 * application answers into events, and executes the actions: it owns the clock, the sockets,
 * the keys, the write-ahead log and the application.
 */
export type ConsensusEvent =
  /** Begin the next height once the previous decision was executed (paper lines 52-54). */
  | { readonly type: 'start-height'; readonly context: HeightContext }
  | { readonly type: 'proposal-received'; readonly proposal: Proposal }
  | { readonly type: 'vote-received'; readonly vote: Vote }
  /** A timer scheduled by `schedule-timeout` expired (paper lines 57, 61, 65). */
  | {
      readonly type: 'timeout-fired';
      readonly height: number;
      readonly round: number;
      readonly step: TimeoutStep;
    }
  /** The application's answer to `request-value`: getValue() of paper line 18. */
  | {
      readonly type: 'value-proposed';
      readonly height: number;
      readonly round: number;
      readonly block: Block;
    }
  /** The application's answer to `validate-value`: valid(v) of the paper. */
  | {
      readonly type: 'value-validated';
      readonly height: number;
      readonly blockHash: Uint8Array;
      readonly valid: boolean;
    }
  /** The signer's answer to `sign-vote`. */
  | { readonly type: 'vote-signed'; readonly vote: Vote }
  /** The signer's answer to `sign-proposal`. */
  | { readonly type: 'proposal-signed'; readonly proposal: Proposal };

export type ConsensusAction =
  | { readonly type: 'broadcast-proposal'; readonly proposal: Proposal }
  | { readonly type: 'broadcast-vote'; readonly vote: Vote }
  | {
      readonly type: 'schedule-timeout';
      readonly height: number;
      readonly round: number;
      readonly step: TimeoutStep;
      readonly durationMs: number;
    }
  /** getValue(): build a block on `template` and answer with `value-proposed`. */
  | {
      readonly type: 'request-value';
      readonly height: number;
      readonly round: number;
      readonly template: BlockTemplate;
    }
  /** valid(v): check the block's application rules and answer with `value-validated`. */
  | {
      readonly type: 'validate-value';
      readonly height: number;
      readonly round: number;
      readonly blockHash: Uint8Array;
      readonly block: Block;
    }
  | { readonly type: 'sign-vote'; readonly request: VoteRequest }
  | {
      readonly type: 'sign-proposal';
      readonly request: ProposalRequest;
      /** Hash of `request.block`'s header, which the signature covers. */
      readonly blockHash: Uint8Array;
    }
  /**
   * decision_p[h_p] = v (paper line 51): persist and execute the block, then send
   * `start-height` for the next height. `proposal` is the signed proposal of the deciding round,
   * which together with `commit` lets a lagging peer decide too.
   */
  | {
      readonly type: 'commit-block';
      readonly block: Block;
      readonly commit: QuorumCertificate;
      readonly proposal: Proposal;
    }
  | { readonly type: 'evidence-found'; readonly evidence: DuplicateVoteEvidence }
  | {
      readonly type: 'message-rejected';
      readonly reason: MessageRejection;
      /** Height of the rejected message, so a driver can buffer or answer a lagging peer. */
      readonly height?: number;
      readonly error?: ConsensusError;
    };

export interface StepResult<State> {
  readonly state: State;
  readonly actions: readonly ConsensusAction[];
}
