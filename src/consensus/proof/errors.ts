import { HyperMeshError } from '../../codec/error.js';

/**
 * Errors of the consensus-proof code that are not verdicts: bad parameters or arguments handed to
 * a builder or verifier by the local caller, and bytes that do not decode as a proof. A proof
 * that decodes but does not verify is a `ProofFailure` verdict (verdict.ts), never an exception.
 */
export enum ProofErrorCode {
  /** Consensus-proof parameters out of their documented ranges. */
  INVALID_PARAMS = 'PROOF_INVALID_PARAMS',
  /** A builder or verifier argument (header, validator set, key, context) is malformed. */
  INVALID_INPUT = 'PROOF_INVALID_INPUT',
  /** Bytes that are not CBOR, or CBOR that is not a proof of the declared version. */
  MALFORMED = 'PROOF_MALFORMED',
  /** CBOR that is not in RFC 8949 §4.2.1 deterministic form. */
  NOT_CANONICAL = 'PROOF_NOT_CANONICAL',
  /** A version tag this code does not know. */
  UNSUPPORTED_VERSION = 'PROOF_UNSUPPORTED_VERSION',
  /** The signatures handed to the quorum-certificate builder hold ≤ 2/3 of the voting power. */
  NO_QUORUM = 'PROOF_NO_QUORUM',
  /** No nonce in the whole nonce space meets the difficulty (negligible for allowed ones). */
  NONCE_SPACE_EXHAUSTED = 'PROOF_NONCE_SPACE_EXHAUSTED',
}

export class ProofError extends HyperMeshError<ProofErrorCode> {}

export function invalidInput(message: string, detail: Record<string, unknown> = {}): ProofError {
  return new ProofError(ProofErrorCode.INVALID_INPUT, message, detail);
}
