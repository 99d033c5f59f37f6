import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { ed25519Verify } from '../../crypto/ed25519.js';
import type { FalconBackend } from '../../crypto/falcon.js';
import { FALCON_ALGORITHM_ID } from '../../crypto/falcon.js';
import { invalidInput, ProofError, ProofErrorCode } from './errors.js';
import type { ProofHeader } from './header.js';
import { hashProofHeader } from './header.js';
import type { StakeParams } from './params.js';
import type { CommitSignature } from './precommit.js';
import { precommitAttestationBytes, precommitSignBytes } from './precommit.js';
import type { PartFailure, PartVerdict } from './verdict.js';
import { failure, StakeFailure, VALID } from './verdict.js';
import type { ValidatorSet } from './validators.js';
import { hashValidatorSet, isQuorum, totalVotingPower, validatorPositions } from './validators.js';

/**
 * PoStake ("who"): precommits for one block in one round by validators holding more than 2/3
 * of the voting power of the set that votes on this height (Tendermint's Commit). Signatures are
 * listed in validator-set order, each signer at most once, so a certificate has one encoding for
 * a given set of signers.
 */
export interface QuorumCertificate {
  readonly height: number;
  readonly round: number;
  readonly blockHash: Uint8Array;
  readonly signatures: readonly CommitSignature[];
}

export interface StakeVerification {
  readonly header: ProofHeader;
  /** The validator set that votes on `header.height`. */
  readonly validators: ValidatorSet;
  readonly params: StakeParams;
  /** Needed when any signature carries a FALCON attestation. */
  readonly falcon?: FalconBackend;
}

/**
 * Checks the set is the header's, the certificate is for this height and block, every signature
 * (Ed25519, and FALCON where present or required) from a distinct known validator in set order,
 * and that the signers hold more than 2/3 of the voting power.
 */
export function verifyQuorumCertificate(
  qc: QuorumCertificate,
  verification: StakeVerification,
): PartVerdict<'stake'> {
  const { header, validators } = verification;
  if (!bytesEqual(hashValidatorSet(validators), header.validatorSetHash)) {
    return failure(
      'stake',
      StakeFailure.VALIDATOR_SET_MISMATCH,
      "the validator set does not hash to the header's validatorSetHash",
    );
  }
  if (qc.height !== header.height) {
    return failure(
      'stake',
      StakeFailure.WRONG_HEIGHT,
      `the certificate is for height ${qc.height}, the block is at height ${header.height}`,
      { expected: header.height, actual: qc.height },
    );
  }
  const blockHash = hashProofHeader(header);
  if (!bytesEqual(qc.blockHash, blockHash)) {
    return failure('stake', StakeFailure.WRONG_BLOCK, 'the certificate is for another block', {
      expected: toHex(blockHash),
      actual: toHex(qc.blockHash),
    });
  }
  const positions = validatorPositions(validators);
  const seen = new Set<number>();
  let previous = -1;
  let signedPower = 0;
  for (const [i, signature] of qc.signatures.entries()) {
    const position = positions.get(toHex(signature.validator));
    if (position === undefined) {
      return failure(
        'stake',
        StakeFailure.UNKNOWN_VALIDATOR,
        `signature ${i} is by a key that is not in the validator set`,
        { signature: i, validator: toHex(signature.validator) },
      );
    }
    if (seen.has(position)) {
      return failure(
        'stake',
        StakeFailure.DUPLICATE_SIGNER,
        `signature ${i}: validator ${position} signed twice`,
        { signature: i, validator: position },
      );
    }
    if (position < previous) {
      return failure(
        'stake',
        StakeFailure.SIGNERS_OUT_OF_ORDER,
        `signature ${i}: validator ${position} is listed after validator ${previous}`,
        { signature: i, validator: position },
      );
    }
    seen.add(position);
    previous = position;
    const problem = checkSignature(qc, signature, i, position, verification);
    if (problem !== undefined) return problem;
    signedPower += (validators[position] as ValidatorSet[number]).votingPower;
  }
  const total = totalVotingPower(validators);
  if (!isQuorum(signedPower, total)) {
    return failure(
      'stake',
      StakeFailure.INSUFFICIENT_VOTING_POWER,
      `signers hold ${signedPower} of ${total} voting power; more than 2/3 is needed`,
      { signed: signedPower, total },
    );
  }
  return VALID;
}

function checkSignature(
  qc: QuorumCertificate,
  signature: CommitSignature,
  i: number,
  position: number,
  verification: StakeVerification,
): PartFailure<'stake'> | undefined {
  const { header, validators, params, falcon } = verification;
  const signed = precommitSignBytes({
    chainId: header.chainId,
    height: qc.height,
    round: qc.round,
    blockHash: qc.blockHash,
    timestamp: signature.timestamp,
  });
  if (!ed25519Verify(signature.signature, signed, signature.validator)) {
    return failure(
      'stake',
      StakeFailure.INVALID_SIGNATURE,
      `signature ${i} by validator ${position} does not verify for this block, height and round`,
      { signature: i, validator: position },
    );
  }
  const attestation = signature.falcon;
  if (attestation === undefined) {
    if (!params.requireFalconAttestations) return undefined;
    return failure(
      'stake',
      StakeFailure.MISSING_FALCON_ATTESTATION,
      `signature ${i} by validator ${position} has no FALCON-1024 attestation`,
      { signature: i, validator: position },
    );
  }
  if (falcon === undefined) {
    throw invalidInput('a FALCON backend is needed to verify precommit attestations');
  }
  const key = (validators[position] as ValidatorSet[number]).falconPublicKey;
  const attested = precommitAttestationBytes(header, qc.round, signature.timestamp);
  if (
    attestation.alg !== FALCON_ALGORITHM_ID ||
    key === undefined ||
    !falcon.verify(attestation.signature, attested, key)
  ) {
    return failure(
      'stake',
      StakeFailure.INVALID_FALCON_ATTESTATION,
      key === undefined
        ? `signature ${i}: validator ${position} has no registered FALCON-1024 key`
        : `signature ${i}: the FALCON-1024 attestation of validator ${position} does not verify`,
      { signature: i, validator: position },
    );
  }
  return undefined;
}

export interface QuorumCertificateInput {
  readonly header: ProofHeader;
  readonly round: number;
  readonly validators: ValidatorSet;
  /** Collected precommits for this block and round, in any order; repeats of a signer are dropped. */
  readonly signatures: readonly CommitSignature[];
  readonly params: StakeParams;
  readonly falcon?: FalconBackend;
}

/**
 * Assembles a certificate from collected precommits: one per signer, in validator-set order,
 * each verified. Throws `PROOF_INVALID_INPUT` for a bad or unknown signature and
 * `PROOF_NO_QUORUM` when the signers hold ≤ 2/3 of the voting power.
 */
export function buildQuorumCertificate(input: QuorumCertificateInput): QuorumCertificate {
  const positions = validatorPositions(input.validators);
  const bySigner = new Map<number, CommitSignature>();
  for (const signature of input.signatures) {
    const position = positions.get(toHex(signature.validator));
    if (position === undefined) {
      throw invalidInput('a precommit is signed by a key that is not in the validator set', {
        validator: toHex(signature.validator),
      });
    }
    if (!bySigner.has(position)) bySigner.set(position, signature);
  }
  const qc: QuorumCertificate = {
    height: input.header.height,
    round: input.round,
    blockHash: hashProofHeader(input.header),
    signatures: [...bySigner.entries()].sort(([a], [b]) => a - b).map(([, signature]) => signature),
  };
  const verdict = verifyQuorumCertificate(qc, input);
  if (verdict.ok) return qc;
  const code =
    verdict.reason === StakeFailure.INSUFFICIENT_VOTING_POWER
      ? ProofErrorCode.NO_QUORUM
      : ProofErrorCode.INVALID_INPUT;
  throw new ProofError(code, verdict.message, { reason: verdict.reason, ...verdict.detail });
}
