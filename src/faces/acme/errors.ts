import { HyperMeshError } from '../../codec/error.js';

/** Failures of the ACME face itself (configuration, storage, lookups), as codes to switch on. */
export enum AcmeErrorCode {
  /** Server options are out of range or inconsistent. */
  INVALID_OPTIONS = 'ACME_INVALID_OPTIONS',
  /** The file's acme_ schema history is not the one this code knows. */
  STORE_SCHEMA_MISMATCH = 'ACME_STORE_SCHEMA_MISMATCH',
  /** A dns-01 TXT lookup failed; `detail.reason` says how (timeout, rcode, malformed answer). */
  DNS_LOOKUP_FAILED = 'ACME_DNS_LOOKUP_FAILED',
}

export class AcmeError extends HyperMeshError<AcmeErrorCode> {}
