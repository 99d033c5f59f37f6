import { HyperMeshError } from '../codec/error.js';

/**
 * Typed consensus errors. Verification helpers (`checkQuorumCertificate`, `checkBlock`,
 * `checkDuplicateVoteEvidence`) return a `ConsensusError` instead of throwing, so the state
 * machine can reject a bad message without unwinding; API entry points that take configuration
 * (`createValidatorSet`, `createTendermintState`, `restoreTendermintState`) throw it.
 */
export enum ConsensusErrorCode {
  /** Empty set, duplicate or malformed validator, voting power out of range. */
  INVALID_VALIDATOR_SET = 'CONSENSUS_INVALID_VALIDATOR_SET',
  /** Configuration or height context that the state machine cannot run with. */
  INVALID_CONFIG = 'CONSENSUS_INVALID_CONFIG',
  /** A quorum certificate (commit) that does not prove >2/3 of the voting power. */
  INVALID_COMMIT = 'CONSENSUS_INVALID_COMMIT',
  /** Duplicate-vote evidence that does not prove an equivocation. */
  INVALID_EVIDENCE = 'CONSENSUS_INVALID_EVIDENCE',
  /** A block that breaks a consensus-level rule (height, parent, time, roots, last commit). */
  INVALID_BLOCK = 'CONSENSUS_INVALID_BLOCK',
  /** A write-ahead-log record that does not belong to this validator or height. */
  INVALID_WAL_RECORD = 'CONSENSUS_INVALID_WAL_RECORD',
  /** A genesis document (or its JSON) that breaks the schema or the chain's rules. */
  INVALID_GENESIS = 'CONSENSUS_INVALID_GENESIS',
  /** Wire bytes (wire.ts) that do not decode to a well-formed message; the message names the field. */
  MALFORMED_MESSAGE = 'CONSENSUS_MALFORMED_MESSAGE',
}

export class ConsensusError extends HyperMeshError<ConsensusErrorCode> {}
