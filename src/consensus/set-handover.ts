import { bytesEqual, toHex } from '../crypto/bytes.js';
import { checkQuorumCertificate } from './commit.js';
import { ConsensusError, ConsensusErrorCode } from './errors.js';
import { blockHash } from './messages.js';
import type { Block, QuorumCertificate } from './types.js';
import { exceedsOneThird, type ValidatorSet } from './validator-set.js';
import type { SignatureVerifier } from './verify.js';

/**
 * A verifier without application state (`hypermesh block verify`, a light client) learns the
 * validator updates of earlier blocks from a node, so it must not take the resulting set on the
 * node's word. At each height where the set changes it applies the light-client rule of
 * Tendermint (Kwon, Buchman, "Tendermint light client", skipping verification): the new set is
 * accepted when the first block it decides
 *
 *   1. names it in its header (`validatorsHash`),
 *   2. carries a valid commit by more than 2/3 of its power, and
 *   3. was also signed by validators holding more than 1/3 of the power of the set trusted so
 *      far (the previous one) — at least one correct validator of the trusted set vouches for
 *      the block, and with it for the set its header names.
 *
 * With fewer than 1/3 of every set's power faulty, a node that lies about updates cannot make
 * a verifier accept a wrong set: the derived set's hash would not be the one a commit by the
 * trusted validators signed. A change after which the previous set holds no more than 1/3 of
 * its power among the signers cannot be verified this way (`trusted-power-too-low`), and the
 * verifier says so instead of guessing.
 */
export interface SetHandover {
  readonly chainId: string;
  readonly requirePq: boolean;
  readonly verifier: SignatureVerifier;
  /** The set trusted so far: the one that decided the height before `block`. */
  readonly trusted: ValidatorSet;
  /** The set derived (from the node's updates) for `block`'s height. */
  readonly next: ValidatorSet;
  readonly block: Block;
  readonly commit: QuorumCertificate;
}

/** Why a handover was refused: `detail.reason` of its `INVALID_VALIDATOR_SET` error. */
export type SetHandoverRejection =
  'header-names-another-set' | 'commit-invalid' | 'trusted-power-too-low';

function refused(
  reason: SetHandoverRejection,
  message: string,
  detail: Record<string, unknown>,
): ConsensusError {
  return new ConsensusError(ConsensusErrorCode.INVALID_VALIDATOR_SET, message, {
    reason,
    ...detail,
  });
}

/** Checks one handover (see `SetHandover`); returns the refusal, or undefined when accepted. */
export function checkSetHandover(handover: SetHandover): ConsensusError | undefined {
  const { block, commit, next, trusted } = handover;
  const height = block.header.height;
  if (!bytesEqual(block.header.validatorsHash, next.hash)) {
    return refused(
      'header-names-another-set',
      `block ${height} names validator set ${toHex(block.header.validatorsHash)}, the updates the node reported give ${toHex(next.hash)}`,
      { height },
    );
  }
  const invalid = checkQuorumCertificate(
    {
      chainId: handover.chainId,
      validators: next,
      verifier: handover.verifier,
      requirePq: handover.requirePq,
    },
    commit,
    { height, blockHash: blockHash(block.header) },
  );
  if (invalid !== undefined) {
    return refused('commit-invalid', `the commit of block ${height}: ${invalid.message}`, {
      height,
      commit: invalid.detail,
    });
  }
  // Signatures were checked above with the new set's keys; an address is the hash of its key,
  // so a signer found in the trusted set signed with the key the trusted set knows.
  let vouching = 0;
  for (const vote of commit.precommits) {
    const index = trusted.indexOf.get(vote.validator);
    if (index !== undefined) vouching += trusted.validators[index]?.power ?? 0;
  }
  if (!exceedsOneThird(vouching, trusted.totalPower)) {
    // The least power more than a third of the total.
    const needed = Math.floor(trusted.totalPower / 3) + 1;
    return refused(
      'trusted-power-too-low',
      `block ${height} was signed by ${vouching} of the ${trusted.totalPower} voting power of the previous set; more than 1/3 (at least ${needed}) is needed: the change cannot be verified without application state`,
      { height, vouching, needed, totalPower: trusted.totalPower },
    );
  }
  return undefined;
}
