import type { ConsensusEvent, StepResult } from './events.js';
import { ConsensusError, ConsensusErrorCode } from './errors.js';
import type { HeightContext } from './height-context.js';
import {
  DEFAULT_MAX_FUTURE_ROUNDS,
  initialState,
  type ConsensusConfig,
  type TendermintState,
} from './state.js';
import { checkTimeoutConfig } from './timeouts.js';
import { Transition } from './transition.js';
import { MessageRejection } from './verify.js';

/**
 * Tendermint consensus, Algorithm 1 of Buchman, Kwon, Milosevic, "The latest gossip on BFT
 * consensus" (arXiv:1807.04938v3), as a pure state machine: `step(state, event)` returns the
 * next state and the actions for the driver, and reads no clock, randomness or I/O.
 *
 * Line numbers in comments refer to Algorithm 1. Differences from the pseudo-code, none of which
 * touch the safety argument (which depends only on what is signed, never on timing):
 * - getValue(), valid(v) and signing are asynchronous: they are actions answered by events.
 *   An upon-rule that needs valid(v) waits while the application has not answered.
 * - The proposer schedules timeoutPropose too (as CometBFT does), so a slow getValue() cannot
 *   stall it in the propose step.
 * - After a decision the driver executes the block and sends `start-height`; lines 52-54 run
 *   then, with the next validator set and parent.
 * - "2f + 1" and "f + 1" are by voting power: more than 2/3 and more than 1/3 of the total.
 */

/** Line 10, "upon start do StartRound(0)", for the height in `context`. */
export function startTendermint(
  config: ConsensusConfig,
  context: HeightContext,
): StepResult<TendermintState> {
  checkConfig(config);
  const transition = new Transition(initialState(config, context));
  transition.startRound(0);
  transition.applyRules();
  return transition.finish();
}

/** One event in, the next state and the actions out. Never mutates `state`. */
export function step(state: TendermintState, event: ConsensusEvent): StepResult<TendermintState> {
  const transition = new Transition(state);
  switch (event.type) {
    case 'start-height':
      transition.startHeight(event.context);
      break;
    case 'proposal-received':
      transition.receiveProposal(event.proposal);
      break;
    case 'vote-received':
      transition.receiveVote(event.vote);
      break;
    case 'timeout-fired':
      transition.timeout(event.height, event.round, event.step);
      break;
    case 'value-proposed':
      transition.valueProposed(event.height, event.round, event.block);
      break;
    case 'value-validated':
      transition.valueValidated(event.height, event.blockHash, event.valid);
      break;
    case 'vote-signed':
      transition.voteSigned(event.vote);
      break;
    case 'proposal-signed':
      transition.proposalSigned(event.proposal);
      break;
    default:
      transition.reject(MessageRejection.MALFORMED);
  }
  transition.applyRules();
  return transition.finish();
}

function checkConfig(config: ConsensusConfig): void {
  const invalid = (message: string) =>
    new ConsensusError(ConsensusErrorCode.INVALID_CONFIG, message);
  if (typeof config.chainId !== 'string' || config.chainId.length === 0) {
    throw invalid('chain id must be a non-empty string');
  }
  const timeoutError = checkTimeoutConfig(config.timeouts);
  if (timeoutError !== undefined) throw timeoutError;
  if (config.requirePq && config.verifier.falcon === undefined) {
    throw invalid('requirePq needs a verifier with FALCON-1024');
  }
  const maxFuture = config.maxFutureRounds ?? DEFAULT_MAX_FUTURE_ROUNDS;
  if (!Number.isSafeInteger(maxFuture) || maxFuture < 1) {
    throw invalid('maxFutureRounds must be a positive integer');
  }
}
