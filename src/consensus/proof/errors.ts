import { HyperMeshError } from '../../codec/error.js';

/**
 * Errors of the consensus-proof code that are not verdicts: bad parameters or arguments handed to
 * a builder by the local caller, bytes that do not decode as a proof, and the storage-plot file.
 * A proof that decodes but does not verify is a failure verdict (verdict.ts), never an exception.
 */
export enum ProofErrorCode {
  /** Consensus-proof parameters out of their documented ranges. */
  INVALID_PARAMS = 'PROOF_INVALID_PARAMS',
  /** A builder argument (key, plot, address, transaction stamp, context) is malformed. */
  INVALID_INPUT = 'PROOF_INVALID_INPUT',
  /** This node cannot build the proof asked for: it is not a validator or not the proposer. */
  NOT_THE_PROPOSER = 'PROOF_NOT_THE_PROPOSER',
  /** Bytes that are not CBOR, or CBOR that is not a proof of the declared version. */
  MALFORMED = 'PROOF_MALFORMED',
  /** CBOR that is not in RFC 8949 §4.2.1 deterministic form. */
  NOT_CANONICAL = 'PROOF_NOT_CANONICAL',
  /** A version tag this code does not know. */
  UNSUPPORTED_VERSION = 'PROOF_UNSUPPORTED_VERSION',
  /** No nonce in the whole nonce space meets the difficulty (negligible for allowed ones). */
  NONCE_SPACE_EXHAUSTED = 'PROOF_NONCE_SPACE_EXHAUSTED',
  /** The storage-plot file could not be read or written (missing, permissions, disk). */
  PLOT_FILE_IO = 'PROOF_PLOT_FILE_IO',
  /** The storage-plot file is not a plot file, or its blocks do not belong to its key. */
  PLOT_FILE_CORRUPT = 'PROOF_PLOT_FILE_CORRUPT',
  /** The storage-plot file is valid but for other space parameters or another root. */
  PLOT_FILE_MISMATCH = 'PROOF_PLOT_FILE_MISMATCH',
}

export class ProofError extends HyperMeshError<ProofErrorCode> {}

export function invalidInput(message: string, detail: Record<string, unknown> = {}): ProofError {
  return new ProofError(ProofErrorCode.INVALID_INPUT, message, detail);
}
