import { bftTimeOf } from './bft-time.js';
import type { TimeParams } from './params.js';
import type { QuorumCertificate } from './quorum-certificate.js';
import type { SequentialWork, SequentialWorkCheck } from './sequential-work.js';
import { verifySequentialWork } from './sequential-work.js';
import type { PartVerdict } from './verdict.js';
import { failure, TimeFailure } from './verdict.js';
import type { ValidatorSet } from './validators.js';

/**
 * PoTime ("when"): the block's BFT time — the voting-power-weighted median of its quorum
 * certificate's precommit timestamps, later than the parent's — and the sequential hash chain
 * that could only start once the parent was committed.
 */
export interface TimeProof {
  /** Milliseconds since the Unix epoch: `bftTimeOf(stake, validators)`. */
  readonly bftTime: number;
  readonly sequentialWork: SequentialWork;
}

export interface TimeVerification {
  /** The block's quorum certificate, already verified (PoStake). */
  readonly qc: QuorumCertificate;
  readonly validators: ValidatorSet;
  /** BFT time of the parent block (genesis time at height 1). */
  readonly parentTime: number;
  readonly expectedSeed: Uint8Array;
  readonly params: TimeParams;
  readonly check: SequentialWorkCheck;
  /** Bytes the prover did not control, for sampled chain checks (the encoded certificate). */
  readonly sampleBinding: Uint8Array;
}

export function verifyTimeProof(
  time: TimeProof,
  verification: TimeVerification,
): PartVerdict<'time'> {
  const median = bftTimeOf(verification.qc, verification.validators);
  if (time.bftTime !== median) {
    return failure(
      'time',
      TimeFailure.BFT_TIME_NOT_WEIGHTED_MEDIAN,
      `BFT time ${time.bftTime} is not the weighted median ${median} of the precommit timestamps`,
      { expected: median, actual: time.bftTime },
    );
  }
  if (!(time.bftTime > verification.parentTime)) {
    return failure(
      'time',
      TimeFailure.BFT_TIME_NOT_AFTER_PARENT,
      `BFT time ${time.bftTime} is not after the parent's ${verification.parentTime}`,
      { bftTime: time.bftTime, parentTime: verification.parentTime },
    );
  }
  return verifySequentialWork(time.sequentialWork, verification);
}
