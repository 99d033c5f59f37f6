import { HyperMeshError } from '../../codec/error.js';

/** Typed errors of the consensus driver; `code` is stable (logs, metrics labels). */
export enum DriverErrorCode {
  /** Options the driver cannot run with (missing key, key not matching genesis, bad numbers). */
  INVALID_OPTIONS = 'DRIVER_INVALID_OPTIONS',
  /** The store holds a chain that does not start at this genesis document. */
  GENESIS_MISMATCH = 'DRIVER_GENESIS_MISMATCH',
  /** The stored chain cannot be read back (missing commit, undecodable block). */
  STORE_INCONSISTENT = 'DRIVER_STORE_INCONSISTENT',
  /** The persisted last-signed record is unreadable: refusing to sign rather than risk equivocation. */
  SIGNER_STATE_CORRUPT = 'DRIVER_SIGNER_STATE_CORRUPT',
  /** The last-signed record could not be made durable: the signature is not released. */
  SIGNER_STATE_WRITE_FAILED = 'DRIVER_SIGNER_STATE_WRITE_FAILED',
  /**
   * A validator with a chain behind it (stored blocks, or WAL records) has no signer-state file:
   * what its key signed before is unknown (signer-state-missing.ts).
   */
  SIGNER_STATE_MISSING = 'DRIVER_SIGNER_STATE_MISSING',
  /** The persisted last-signed record belongs to another validator key. */
  SIGNER_STATE_FOREIGN = 'DRIVER_SIGNER_STATE_FOREIGN',
  /** A consensus WAL record that cannot be decoded. */
  WAL_RECORD_CORRUPT = 'DRIVER_WAL_RECORD_CORRUPT',
  /** `start` twice, or a call that needs a started driver. */
  WRONG_LIFECYCLE = 'DRIVER_WRONG_LIFECYCLE',
  /** A block from a syncing peer failed verification. */
  SYNC_INVALID_BLOCK = 'DRIVER_SYNC_INVALID_BLOCK',
  /** A syncing peer sent blocks out of order or not the ones asked for. */
  SYNC_OUT_OF_ORDER = 'DRIVER_SYNC_OUT_OF_ORDER',
  /** Executing a decided block did not give the state root its header claims. */
  STATE_ROOT_MISMATCH = 'DRIVER_STATE_ROOT_MISMATCH',
  /** A decided block could not be stored; the driver halts rather than continue without it. */
  COMMIT_FAILED = 'DRIVER_COMMIT_FAILED',
}

export class DriverError extends HyperMeshError<DriverErrorCode> {}
