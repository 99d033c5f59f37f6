import { toHex } from '../../crypto/bytes.js';
import { invalidInput } from './errors.js';
import type { QuorumCertificate } from './quorum-certificate.js';
import type { ValidatorSet } from './validators.js';
import { validatorPositions } from './validators.js';

/**
 * BFT time (Tendermint spec, consensus/bft-time.md; `MedianTime` / `weightedMedian` in
 * tendermint/state): the median of the precommit timestamps, each weighted by its signer's
 * voting power. With the signers holding more than 2/3 of the power and faulty validators less
 * than 1/3, more than half of the weight in the certificate is honest, so the median lies
 * between two honest timestamps: faulty validators can neither push it past every honest clock
 * nor hold it below them.
 */
export interface WeightedTimestamp {
  readonly timestamp: number;
  readonly votingPower: number;
}

/**
 * Tendermint's rule exactly: sort by time; walk with `median = floor(total / 2)`, returning the
 * first timestamp whose weight is ≥ the remaining `median`, subtracting otherwise.
 */
export function weightedMedianTime(votes: readonly WeightedTimestamp[]): number {
  if (votes.length === 0) throw invalidInput('the weighted median of no votes is undefined');
  const sorted = [...votes].sort((a, b) => a.timestamp - b.timestamp);
  let median = Math.floor(sorted.reduce((sum, vote) => sum + vote.votingPower, 0) / 2);
  // The weights sum to more than `median`, so the walk stops at the last vote at the latest.
  let i = 0;
  for (; i < sorted.length - 1; i++) {
    const weight = (sorted[i] as WeightedTimestamp).votingPower;
    if (median <= weight) break;
    median -= weight;
  }
  return (sorted[i] as WeightedTimestamp).timestamp;
}

/** The BFT time of a quorum certificate under `validators` (its signers must be members). */
export function bftTimeOf(qc: QuorumCertificate, validators: ValidatorSet): number {
  const positions = validatorPositions(validators);
  return weightedMedianTime(
    qc.signatures.map((signature) => {
      const position = positions.get(toHex(signature.validator));
      if (position === undefined) {
        throw invalidInput('a certificate signer is not in the validator set', {
          validator: toHex(signature.validator),
        });
      }
      const validator = validators[position] as ValidatorSet[number];
      return { timestamp: signature.timestamp, votingPower: validator.votingPower };
    }),
  );
}
