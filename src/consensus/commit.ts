import { bytesEqual } from '../crypto/bytes.js';
import { ConsensusError, ConsensusErrorCode } from './errors.js';
import { BLOCK_HASH_BYTES } from './messages.js';
import type { QuorumCertificate, Vote } from './types.js';
import { isQuorum, type ValidatorSet } from './validator-set.js';
import { checkVote, type VerificationContext } from './verify.js';

/**
 * Quorum certificates (commits): the 2f + 1 precommits of paper line 49 that justify a
 * decision. A commit is what PoStake checks and what a syncing node verifies block by block.
 */

/**
 * Why a commit was refused, as `detail.reason` of its `INVALID_COMMIT` error, so callers (the
 * PoStake verdict) switch on it instead of parsing messages. `precommit-rejected` also carries
 * the `MessageRejection` of the vote as `detail.rejection`.
 */
export type CommitRejection =
  | 'malformed'
  | 'wrong-height'
  | 'wrong-block'
  | 'precommit-not-for-block'
  | 'signers-out-of-order'
  | 'precommit-rejected'
  | 'insufficient-power';

function invalid(
  reason: CommitRejection,
  message: string,
  detail: Record<string, unknown> = {},
): ConsensusError {
  return new ConsensusError(ConsensusErrorCode.INVALID_COMMIT, message, { reason, ...detail });
}

/**
 * Checks that `commit` holds valid precommits for `blockHash` at `height`, one per validator, in
 * address order, from more than 2/3 of `context.validators`' power. Returns the reason it does
 * not, or undefined.
 */
export function checkQuorumCertificate(
  context: VerificationContext,
  commit: QuorumCertificate,
  expected: { readonly height: number; readonly blockHash: Uint8Array },
): ConsensusError | undefined {
  if (typeof commit !== 'object' || commit === null) {
    return invalid('malformed', 'commit is not a record');
  }
  const { height, round, blockHash, precommits } = commit;
  if (height !== expected.height) {
    return invalid('wrong-height', 'commit is for another height', {
      height,
      expected: expected.height,
    });
  }
  if (!(blockHash instanceof Uint8Array) || blockHash.length !== BLOCK_HASH_BYTES) {
    return invalid('malformed', 'commit block hash must be 32 bytes');
  }
  if (!bytesEqual(blockHash, expected.blockHash)) {
    return invalid('wrong-block', 'commit is for another block');
  }
  if (!Number.isSafeInteger(round) || round < 0) {
    return invalid('malformed', 'commit round is not a round');
  }
  if (!Array.isArray(precommits)) return invalid('malformed', 'commit precommits are not a list');
  let power = 0;
  let previous = '';
  for (const [position, vote] of (precommits as readonly Vote[]).entries()) {
    if (typeof vote !== 'object' || vote === null) {
      return invalid('malformed', `precommit ${position} is not a vote`, { position });
    }
    if (
      vote.type !== 'precommit' ||
      vote.height !== height ||
      vote.round !== round ||
      vote.blockHash === null ||
      !(vote.blockHash instanceof Uint8Array) ||
      !bytesEqual(vote.blockHash, blockHash)
    ) {
      return invalid(
        'precommit-not-for-block',
        `precommit ${position} is not for the committed block and round`,
        {
          position,
        },
      );
    }
    if (typeof vote.validator !== 'string' || vote.validator <= previous) {
      return invalid(
        'signers-out-of-order',
        `precommit ${position} is out of address order or repeats a validator`,
        {
          position,
        },
      );
    }
    previous = vote.validator;
    const rejection = checkVote(context, vote);
    if (rejection !== undefined) {
      return invalid('precommit-rejected', `precommit ${position} rejected: ${rejection}`, {
        position,
        validator: vote.validator,
        rejection,
      });
    }
    power += context.validators.validators[context.validators.indexOf.get(vote.validator) as number]
      ?.power as number;
  }
  if (!isQuorum(power, context.validators.totalPower)) {
    return invalid('insufficient-power', 'precommits hold no more than 2/3 of the voting power', {
      power,
      totalPower: context.validators.totalPower,
    });
  }
  return undefined;
}

/**
 * BFT time of the block after the one `commit` certifies: the power-weighted median of the
 * precommit timestamps — the earliest timestamp such that precommits holding more than half of
 * the commit's power are at or before it — and at least one millisecond after `parentTime`.
 * Correct validators hold more than half of a commit's power (it has more than 2/3, faulty
 * validators less than 1/3), so the median lies between correct validators' timestamps:
 * faulty ones can neither pull it below all of them nor push it above.
 */
export function bftTime(
  commit: QuorumCertificate,
  validators: ValidatorSet,
  parentTime: number,
): number {
  const weighted = commit.precommits
    .map((vote) => ({
      time: vote.timestamp,
      power: validators.validators[validators.indexOf.get(vote.validator) ?? -1]?.power ?? 0,
    }))
    .sort((a, b) => a.time - b.time);
  const total = weighted.reduce((sum, entry) => sum + entry.power, 0);
  let cumulative = 0;
  let median = parentTime + 1;
  for (const entry of weighted) {
    cumulative += entry.power;
    if (2 * cumulative > total) {
      median = entry.time;
      break;
    }
  }
  return Math.max(median, parentTime + 1);
}
