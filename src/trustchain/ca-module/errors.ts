import { HyperMeshError } from '../../codec/error.js';
import { ModuleError } from '../../consensus/application/errors.js';

/** Why the `ca` module refuses a transaction or a query (docs/ca.md, "The ca module"). */
export enum CaModuleErrorCode {
  /** The body is not a canonical CBOR `ca` body (body.ts) of the right shape. */
  MALFORMED_BODY = 'CA_MALFORMED_BODY',
  /** The request fails a stateless check (CSR, names, FALCON proof); `detail.reason` is the core's code. */
  INVALID_REQUEST = 'CA_REQUEST_INVALID',
  /** The policy refuses the request for this account; `detail.refusals` lists every refusal. */
  POLICY_REFUSED = 'CA_POLICY_REFUSED',
  /** The certificate would outlive (or predate) an intermediate that may have to sign it. */
  OUTSIDE_ISSUER_VALIDITY = 'CA_OUTSIDE_ISSUER_VALIDITY',
  /**
   * The account's issuance window is used up: at admission against the latest committed block's
   * window, at execution at the block's time; `detail.retryAt` (the window's end, Unix seconds),
   * at execution also `detail.retryAfterSeconds`.
   */
  RATE_LIMITED = 'CA_RATE_LIMITED',
  /** The block already holds `MAX_BATCH_CERTIFICATES` issuance transactions. */
  BLOCK_FULL = 'CA_BLOCK_FULL',
  /** `MAX_PENDING_BATCHES` blocks' certificates are waiting for publication. */
  BACKLOG = 'CA_BACKLOG',
  /** No certificate (or request) with this serial number. */
  UNKNOWN_SERIAL = 'CA_UNKNOWN_SERIAL',
  /** The certificate is not published yet (renew/revoke need a published one). */
  NOT_PUBLISHED = 'CA_NOT_PUBLISHED',
  /** The certificate is revoked. */
  REVOKED = 'CA_REVOKED',
  /** Neither the requesting account nor a holder of the subject key asks for this. */
  NOT_AUTHORIZED = 'CA_NOT_AUTHORIZED',
  /** A revocation reason outside the accepted RFC 5280 codes. */
  BAD_REASON = 'CA_BAD_REASON',
  /** `publish` for a block whose certificates are not waiting (unknown or already published). */
  NOT_PENDING = 'CA_NOT_PENDING',
  /** `publish` from an account that is not an issuer whose turn has come for that block. */
  NOT_ISSUER = 'CA_NOT_ISSUER',
  /** Query data of the wrong form (never in a block). */
  INVALID_QUERY = 'CA_INVALID_QUERY',
  /** `add-intermediate`: not an intermediate of this cluster's root with the intermediate profile and root FALCON endorsement; `detail.reason` is the core's code. */
  INTERMEDIATE_INVALID = 'CA_INTERMEDIATE_INVALID',
  /** `add-intermediate`/`approve-intermediate`: the name or the node key already has an intermediate. */
  INTERMEDIATE_EXISTS = 'CA_INTERMEDIATE_EXISTS',
  /** `add-intermediate`: the same certificate, or another for the same name, is already proposed. */
  DUPLICATE_PROPOSAL = 'CA_DUPLICATE_PROPOSAL',
  /** `add-intermediate`: `MAX_INTERMEDIATE_PROPOSALS` proposals are open. */
  TOO_MANY_PROPOSALS = 'CA_TOO_MANY_PROPOSALS',
  /** `approve-intermediate`: no proposal with this certificate hash. */
  UNKNOWN_PROPOSAL = 'CA_UNKNOWN_PROPOSAL',
  /** `approve-intermediate`: the proposal's approval window has passed. */
  PROPOSAL_EXPIRED = 'CA_PROPOSAL_EXPIRED',
  /** `approve-intermediate`: the sender holds no intermediate. */
  NOT_APPROVER = 'CA_NOT_APPROVER',
  /** `approve-intermediate`: the sender has approved this proposal already. */
  DUPLICATE_APPROVAL = 'CA_DUPLICATE_APPROVAL',
  /**
   * A DNS name or IP address of a `requireDcv` account lacks DCV attestations from validators
   * with more than 2/3 of the voting power (dcv.ts `dcvQuorum`); `detail` {name, corroborated,
   * corroboratedPower, totalPower, holders}.
   */
  DCV_QUORUM = 'CA_DCV_QUORUM',
  /** A DCV attestation (dcv.ts) that does not decode: malformed, not canonical or oversized. */
  DCV_INVALID = 'CA_DCV_INVALID',
  /**
   * A `renew`'s request (`req`) does not fit the certificate: a genesis bootstrap certificate's
   * renewal has none, or its lifetime, key, profile, names or FALCON key are not the
   * certificate's (genesis-renewal.ts); or a consensus-issued certificate's renewal, which
   * re-issues its committed request, carries one. `detail.field` says which.
   */
  RENEWAL_MISMATCH = 'CA_RENEWAL_MISMATCH',
  /**
   * A DNS name in one of the `dns` module's zones whose CAA records (RFC 8659) do not authorise
   * the cluster CA (cluster-dns.ts); `detail` {name, domain (where the Relevant RRset is),
   * reason, tag?}.
   */
  CAA_REFUSED = 'CA_CAA_REFUSED',
  /** `renew` of a certificate whose notAfter is not after the block's time (at execution). */
  EXPIRED = 'CA_EXPIRED',
  /**
   * `renew` for a `requireDcv` account whose names were last validated (the DCV quorum of the
   * original request) more than `DCV_REUSE_MAX_MS` before the block's time: request it anew with
   * fresh attestations. `detail` {validatedAt, reusableUntil} (ISO times).
   */
  DCV_STALE = 'CA_DCV_STALE',
  /**
   * The subject key is marked compromised: a certificate for it was revoked with reason
   * keyCompromise (compromised-keys.ts; CA/B Forum BR §4.9.1.1). `detail` {keyHash (hex SHA-256
   * of the SubjectPublicKeyInfo), revokedSerial}. Checked at admission and at execution.
   */
  KEY_COMPROMISED = 'CA_KEY_COMPROMISED',
}

/** The `TxResult.code` recorded for each refusal (0 is "applied"). */
export const CA_RESULT_CODES: Readonly<Record<CaModuleErrorCode, number>> = Object.freeze({
  [CaModuleErrorCode.MALFORMED_BODY]: 1,
  [CaModuleErrorCode.INVALID_REQUEST]: 2,
  [CaModuleErrorCode.POLICY_REFUSED]: 3,
  [CaModuleErrorCode.OUTSIDE_ISSUER_VALIDITY]: 4,
  [CaModuleErrorCode.RATE_LIMITED]: 5,
  [CaModuleErrorCode.BLOCK_FULL]: 6,
  [CaModuleErrorCode.BACKLOG]: 7,
  [CaModuleErrorCode.UNKNOWN_SERIAL]: 8,
  [CaModuleErrorCode.NOT_PUBLISHED]: 9,
  [CaModuleErrorCode.REVOKED]: 10,
  [CaModuleErrorCode.NOT_AUTHORIZED]: 11,
  [CaModuleErrorCode.BAD_REASON]: 12,
  [CaModuleErrorCode.NOT_PENDING]: 13,
  [CaModuleErrorCode.NOT_ISSUER]: 14,
  [CaModuleErrorCode.INVALID_QUERY]: 15,
  [CaModuleErrorCode.INTERMEDIATE_INVALID]: 16,
  [CaModuleErrorCode.INTERMEDIATE_EXISTS]: 17,
  [CaModuleErrorCode.DUPLICATE_PROPOSAL]: 18,
  [CaModuleErrorCode.TOO_MANY_PROPOSALS]: 19,
  [CaModuleErrorCode.UNKNOWN_PROPOSAL]: 20,
  [CaModuleErrorCode.PROPOSAL_EXPIRED]: 21,
  [CaModuleErrorCode.NOT_APPROVER]: 22,
  [CaModuleErrorCode.DUPLICATE_APPROVAL]: 23,
  [CaModuleErrorCode.DCV_QUORUM]: 24,
  [CaModuleErrorCode.DCV_INVALID]: 25,
  [CaModuleErrorCode.RENEWAL_MISMATCH]: 26,
  [CaModuleErrorCode.CAA_REFUSED]: 27,
  [CaModuleErrorCode.EXPIRED]: 28,
  [CaModuleErrorCode.DCV_STALE]: 29,
  [CaModuleErrorCode.KEY_COMPROMISED]: 30,
});

/**
 * The capacity refusals: they depend on what else is in the block or waiting for publication,
 * not on the transaction, so they are deferrable — a proposer leaves the transaction in the
 * mempool for a later block instead of recording the refusal (consensus/application/errors.ts).
 */
export const CA_DEFERRABLE_CODES: ReadonlySet<CaModuleErrorCode> = new Set([
  CaModuleErrorCode.BLOCK_FULL,
  CaModuleErrorCode.BACKLOG,
]);

export class CaModuleError extends ModuleError<CaModuleErrorCode> {
  constructor(code: CaModuleErrorCode, message: string, detail: Record<string, unknown> = {}) {
    super(code, CA_RESULT_CODES[code], message, detail, {
      deferrable: CA_DEFERRABLE_CODES.has(code),
    });
  }
}

/**
 * A publication whose batch signature or certificates are not the ones the committed requests
 * determine. Deliberately not a `ModuleError`: the router treats it as a module fault, so a
 * proposer leaves the transaction out, the mempool refuses it (`APP_INTERNAL`), and a block
 * that includes it is invalid.
 */
export class CaPublicationError extends HyperMeshError<'CA_PUBLICATION_INVALID'> {}

/** Stored module state that does not decode: the store is damaged (never a client's doing). */
export class CaStateError extends HyperMeshError<'CA_CORRUPT_STATE'> {}

/** Genesis `app.ca` section or module configuration errors. */
export class CaGenesisError extends HyperMeshError<'CA_INVALID_GENESIS'> {}
