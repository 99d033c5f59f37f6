import { ConsensusError, ConsensusErrorCode } from './errors.js';
import type { TimeoutStep } from './types.js';

/**
 * timeoutPropose(r), timeoutPrevote(r) and timeoutPrecommit(r) of the paper (lines 21, 35, 48):
 * each grows linearly with the round, so after the network stabilises some round is long enough
 * for correct validators to hear each other (paper §4, liveness).
 */
export interface TimeoutConfig {
  readonly proposeMs: number;
  readonly proposeDeltaMs: number;
  readonly prevoteMs: number;
  readonly prevoteDeltaMs: number;
  readonly precommitMs: number;
  readonly precommitDeltaMs: number;
}

/** CometBFT's defaults. */
export const DEFAULT_TIMEOUTS: TimeoutConfig = {
  proposeMs: 3000,
  proposeDeltaMs: 500,
  prevoteMs: 1000,
  prevoteDeltaMs: 500,
  precommitMs: 1000,
  precommitDeltaMs: 500,
};

export function timeoutDuration(config: TimeoutConfig, step: TimeoutStep, round: number): number {
  switch (step) {
    case 'propose':
      return config.proposeMs + config.proposeDeltaMs * round;
    case 'prevote':
      return config.prevoteMs + config.prevoteDeltaMs * round;
    case 'precommit':
      return config.precommitMs + config.precommitDeltaMs * round;
  }
}

export function checkTimeoutConfig(config: TimeoutConfig): ConsensusError | undefined {
  for (const [name, value] of Object.entries(config)) {
    if (!Number.isSafeInteger(value) || value < 0) {
      return new ConsensusError(
        ConsensusErrorCode.INVALID_CONFIG,
        `timeout ${name} must be a non-negative integer of milliseconds`,
        { name, value },
      );
    }
  }
  if (config.proposeMs + config.prevoteMs + config.precommitMs === 0) {
    return new ConsensusError(ConsensusErrorCode.INVALID_CONFIG, 'timeouts must not all be zero');
  }
  return undefined;
}
