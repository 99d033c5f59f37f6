import { bytesEqual } from '../../crypto/bytes.js';
import { expectedBlockTime } from '../block.js';
import { checkQuorumCertificate } from '../commit.js';
import { commitHash } from '../messages.js';
import { ProofError } from '../proof/errors.js';
import {
  sequentialWorkSeed,
  verifySequentialWork,
  type SequentialWorkCheck,
} from '../proof/sequential-work.js';
import { failure, TimeFailure, VALID, type PartVerdict } from '../proof/verdict.js';
import type { SignatureVerifier } from '../verify.js';
import type { ProofSubject } from './subject.js';

/**
 * PoTime of a block, part one: its time is the BFT time of the commit of its parent that it
 * carries (`lastCommit`) — the power-weighted median of the precommit timestamps, after the
 * parent's time (commit.ts `bftTime`); at height 1, the genesis time. The last commit must be a
 * valid commit of the parent by the parent's validators, and the one the header hashes, or its
 * timestamps would prove nothing.
 */
export function checkBftTime(
  subject: ProofSubject,
  verifier: SignatureVerifier,
): PartVerdict<'time'> {
  const { context, block, genesis } = subject;
  const { header, lastCommit } = block;
  const { parent } = context;
  if (parent.kind === 'genesis') {
    if (lastCommit !== null) {
      return failure('time', TimeFailure.INVALID_LAST_COMMIT, 'the first block has no last commit');
    }
  } else {
    if (lastCommit === null) {
      return failure(
        'time',
        TimeFailure.INVALID_LAST_COMMIT,
        'the block lacks the commit of its parent',
      );
    }
    const error = checkQuorumCertificate(
      {
        chainId: genesis.chainId,
        validators: parent.validators,
        verifier,
        requirePq: genesis.consensus.requirePq,
      },
      lastCommit,
      { height: parent.height, blockHash: parent.hash },
    );
    if (error !== undefined) {
      return failure(
        'time',
        TimeFailure.INVALID_LAST_COMMIT,
        `the last commit is not a valid commit of the parent: ${error.message}`,
        { cause: error.detail },
      );
    }
  }
  if (!bytesEqual(commitHash(lastCommit), header.lastCommitHash)) {
    return failure(
      'time',
      TimeFailure.INVALID_LAST_COMMIT,
      "the last commit is not the one the header's lastCommitHash names",
    );
  }
  const expected = expectedBlockTime(context, lastCommit);
  if (header.time !== expected) {
    return failure(
      'time',
      TimeFailure.BFT_TIME_NOT_WEIGHTED_MEDIAN,
      parent.kind === 'genesis'
        ? `the first block's time ${header.time} is not the genesis time ${expected}`
        : `header time ${header.time} is not the weighted median ${expected} of the last commit's precommit timestamps`,
      { expected, actual: header.time },
    );
  }
  return VALID;
}

/**
 * PoTime, part two: the sequential hash chain starts from the seed of this block's position and
 * every checkpoint is C iterations after the previous one (proof/sequential-work.ts). `binding`
 * is the Fiat–Shamir input of sampled checks: bytes the proposer did not control (the commit).
 */
export function checkSequentialChain(
  subject: ProofSubject,
  check: SequentialWorkCheck,
  binding: Uint8Array,
): PartVerdict<'time'> {
  const { proof, anchor, genesis, block } = subject;
  if (proof instanceof ProofError) {
    return failure('time', TimeFailure.UNDECODABLE_PROOF, proof.message, { code: proof.code });
  }
  if (anchor === undefined) {
    return failure(
      'time',
      TimeFailure.PROPOSER_NOT_A_VALIDATOR,
      'proposer is not a validator, so the block has no chain position to seed from',
      { proposer: block.header.proposer },
    );
  }
  return verifySequentialWork(proof.sequentialWork, {
    expectedSeed: sequentialWorkSeed(anchor),
    params: genesis.proof.time,
    check,
    sampleBinding: binding,
  });
}
