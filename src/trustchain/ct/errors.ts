import { HyperMeshError } from '../../codec/error.js';

/** Everything the transparency log refuses, as codes callers (and the HTTP face) switch on. */
export enum CtErrorCode {
  /** A leaf that is not a well-formed RFC 6962 §3.4 MerkleTreeLeaf, or is too large. */
  INVALID_ENTRY = 'CT_INVALID_ENTRY',
  /** A batch with more entries than `MAX_BATCH_ENTRIES`. */
  BATCH_TOO_LARGE = 'CT_BATCH_TOO_LARGE',
  /** A tree head timestamp that is not a safe integer or goes back in time. */
  INVALID_TIMESTAMP = 'CT_INVALID_TIMESTAMP',
  /** A tree size, leaf index or range outside the log (or not a non-negative integer). */
  OUT_OF_RANGE = 'CT_OUT_OF_RANGE',
  /** A hash that is not 32 bytes. */
  INVALID_HASH = 'CT_INVALID_HASH',
  /** No leaf with this hash in the requested tree. */
  UNKNOWN_LEAF = 'CT_UNKNOWN_LEAF',
  /** No tree head was recorded at this size (sizes between batches have roots, not heads). */
  UNKNOWN_TREE_HEAD = 'CT_UNKNOWN_TREE_HEAD',
  /** The origin (log identity) is malformed, or differs from the one the log was created with. */
  INVALID_ORIGIN = 'CT_INVALID_ORIGIN',
  /** A signed note that does not parse (C2SP signed-note), or a checkpoint body that does not. */
  MALFORMED_NOTE = 'CT_MALFORMED_NOTE',
  /** A checkpoint whose body is not the log's body for that size. */
  CHECKPOINT_MISMATCH = 'CT_CHECKPOINT_MISMATCH',
  /** A signature line from a key the verifier set does not know. */
  UNKNOWN_SIGNER = 'CT_UNKNOWN_SIGNER',
  /** A signature line from a known key that does not verify. */
  INVALID_SIGNATURE = 'CT_INVALID_SIGNATURE',
  /** Verified signatures carry no more than 2/3 of the cosigners' weight. */
  NO_QUORUM = 'CT_NO_QUORUM',
  /** The verifier set requires a FALCON-1024 signature and none verified. */
  FALCON_SIGNATURE_MISSING = 'CT_FALCON_SIGNATURE_MISSING',
  /** More signature lines than `MAX_NOTE_SIGNATURES`. */
  TOO_MANY_SIGNATURES = 'CT_TOO_MANY_SIGNATURES',
  /** Two checkpoints that do not show a split view (other origin, size, or equal roots). */
  NOT_A_SPLIT_VIEW = 'CT_NOT_A_SPLIT_VIEW',
  /** The SQLite tables hold something this code did not write, or a newer schema. */
  CORRUPT_STORE = 'CT_CORRUPT_STORE',
  /** The log was used after `close()`. */
  CLOSED = 'CT_CLOSED',
}

export class CtError extends HyperMeshError<CtErrorCode> {}
