import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { checkQuorumCertificate, type CommitRejection } from '../commit.js';
import { blockHash } from '../messages.js';
import { failure, StakeFailure, VALID, type PartVerdict } from '../proof/verdict.js';
import type { QuorumCertificate } from '../types.js';
import { MessageRejection, type SignatureVerifier } from '../verify.js';
import type { ProofSubject } from './subject.js';

const BY_COMMIT_REJECTION: Readonly<Record<CommitRejection, StakeFailure>> = {
  malformed: StakeFailure.MALFORMED_COMMIT,
  'wrong-height': StakeFailure.WRONG_HEIGHT,
  'wrong-block': StakeFailure.WRONG_BLOCK,
  'precommit-not-for-block': StakeFailure.PRECOMMIT_FOR_ANOTHER_BLOCK,
  'signers-out-of-order': StakeFailure.SIGNERS_OUT_OF_ORDER,
  // Refined by the vote's own rejection below.
  'precommit-rejected': StakeFailure.INVALID_SIGNATURE,
  'insufficient-power': StakeFailure.INSUFFICIENT_VOTING_POWER,
};

const BY_VOTE_REJECTION: Partial<Readonly<Record<MessageRejection, StakeFailure>>> = {
  [MessageRejection.MALFORMED]: StakeFailure.MALFORMED_COMMIT,
  [MessageRejection.UNKNOWN_VALIDATOR]: StakeFailure.UNKNOWN_VALIDATOR,
  [MessageRejection.BAD_SIGNATURE]: StakeFailure.INVALID_SIGNATURE,
  [MessageRejection.MISSING_PQ_SIGNATURE]: StakeFailure.MISSING_FALCON_SIGNATURE,
  [MessageRejection.BAD_PQ_SIGNATURE]: StakeFailure.INVALID_FALCON_SIGNATURE,
};

/**
 * PoStake of a block: the header names the validator set of its height, and `commit` is a
 * valid commit of exactly this block — precommits for its hash in one round, Ed25519-signed and
 * (with `requirePq`) FALCON-1024-signed, from more than 2/3 of that set's voting power — checked
 * by the engine's own `checkQuorumCertificate`, the rule every validator applies.
 */
export function checkStakePart(
  subject: ProofSubject,
  commit: QuorumCertificate,
  verifier: SignatureVerifier,
): PartVerdict<'stake'> {
  const { context, block, genesis } = subject;
  const validators = context.schedule.validators;
  if (!bytesEqual(block.header.validatorsHash, validators.hash)) {
    return failure(
      'stake',
      StakeFailure.VALIDATOR_SET_MISMATCH,
      "the header's validatorsHash is not the hash of the validator set of its height",
      { expected: toHex(validators.hash), claimed: toHex(block.header.validatorsHash) },
    );
  }
  const error = checkQuorumCertificate(
    {
      chainId: genesis.chainId,
      validators,
      verifier,
      requirePq: genesis.consensus.requirePq,
    },
    commit,
    { height: context.height, blockHash: blockHash(block.header) },
  );
  if (error === undefined) return VALID;
  const rejection = error.detail.reason as CommitRejection;
  const voteRejection = error.detail.rejection as MessageRejection | undefined;
  const reason =
    (voteRejection === undefined ? undefined : BY_VOTE_REJECTION[voteRejection]) ??
    BY_COMMIT_REJECTION[rejection] ??
    StakeFailure.MALFORMED_COMMIT;
  return failure('stake', reason, error.message, { ...error.detail });
}
