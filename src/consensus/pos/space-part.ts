import { ProofError } from '../proof/errors.js';
import { verifySpaceProof } from '../proof/space.js';
import { failure, SpaceFailure, type PartVerdict } from '../proof/verdict.js';
import type { ProofSubject } from './subject.js';

/**
 * PoSpace of a block: the proposer is a validator with a registered storage root, and the proof
 * answers the challenges of this chain position from that plot and signs the proposer's address
 * for this height (proof/space.ts). Costs k·S hashes and k Merkle paths.
 */
export function checkSpacePart(subject: ProofSubject): PartVerdict<'space'> {
  const { proof, proposer, anchor, genesis, block } = subject;
  if (proof instanceof ProofError) {
    return failure('space', SpaceFailure.UNDECODABLE_PROOF, proof.message, { code: proof.code });
  }
  if (proposer === undefined || anchor === undefined) {
    return failure('space', SpaceFailure.PROPOSER_NOT_A_VALIDATOR, 'proposer is not a validator', {
      proposer: block.header.proposer,
    });
  }
  return verifySpaceProof(proof.space, {
    anchor,
    registeredRoot: proposer.storageRoot,
    params: genesis.proof.space,
  });
}
