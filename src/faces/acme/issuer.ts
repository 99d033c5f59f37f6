import { HyperMeshError } from '../../codec/error.js';
import type { AcmeIdentifier } from './problems.js';

/**
 * What the ACME server needs from a certificate authority. The server has already checked the
 * account, the authorizations (domain control) and the CSR's names and key; the issuer decides
 * the rest (its own policy, lifetime, serial) and signs. Two implementations: the in-process
 * `LocalIssuer` over the CA core (local-issuer.ts, for tests and single-node development) and,
 * in the node, the consensus `ca` module (src/node/acme-issuer.ts).
 */
export interface AcmeIssueRequest {
  /**
   * The ACME order. An issuer may see the same order twice (the server retries orders that were
   * processing when it stopped) and should then return the same certificate or a new one; the
   * server keeps the first it stores.
   */
  readonly orderId: string;
  readonly accountId: string;
  /** The PKCS#10 CSR from `finalize`, DER. */
  readonly csrDer: Uint8Array;
  /** The order's identifiers; the CSR names exactly these. */
  readonly identifiers: readonly AcmeIdentifier[];
  /**
   * The multi-perspective validation attestations of the order's authorizations (encoded,
   * docs/acme.md "Multi-perspective validation"); empty when the server runs without
   * corroboration (or absent). The consensus issuer puts them in its `ca request`.
   */
  readonly dcv?: readonly Uint8Array[];
}

export interface AcmeIssuedCertificate {
  /** The leaf certificate, one PEM block. */
  readonly certificatePem: string;
  /** The intermediates above it, leaf side first, PEM (the root is not included). */
  readonly chainPem: string;
}

export interface AcmeRevokeRequest {
  /** The certificate's serial number, lowercase hex without a leading zero byte (as `parseCertificate`). */
  readonly serialHex: string;
  readonly certDer: Uint8Array;
  /** RFC 5280 §5.3.1 CRLReason code. */
  readonly reason: number;
}

export interface AcmeIssuer {
  issue(request: AcmeIssueRequest): Promise<AcmeIssuedCertificate>;
  revoke(request: AcmeRevokeRequest): Promise<void>;
  /**
   * Optional: whether the CA records the certificate with this serial (lowercase hex, as
   * `AcmeRevokeRequest.serialHex`) as revoked, by any route — not only this server's
   * `revokeCert`. Renewal information (RFC 9773) asks it, beside the server's own record.
   */
  isRevoked?(serialHex: string): boolean;
}

export enum AcmeIssuerErrorCode {
  /** The issuer refuses the CSR (key or signature policy); the order becomes `badCSR`. */
  BAD_CSR = 'ACME_ISSUER_BAD_CSR',
  /** The issuer's policy refuses a name; the order becomes `rejectedIdentifier`. */
  REJECTED_IDENTIFIER = 'ACME_ISSUER_REJECTED_IDENTIFIER',
  /**
   * The CA refuses for lack of proof of control (e.g. too few multi-perspective attestations);
   * the order becomes `unauthorized`.
   */
  UNAUTHORIZED = 'ACME_ISSUER_UNAUTHORIZED',
  /**
   * The CA's issuance rate limit for the server's account is used up (RFC 8555 §6.7); the order
   * becomes `rateLimited`.
   */
  RATE_LIMITED = 'ACME_ISSUER_RATE_LIMITED',
  /**
   * The CA already records the certificate as revoked (a revocation by another route, or a
   * concurrent one); `revokeCert` answers `alreadyRevoked` (RFC 8555 §7.6).
   */
  ALREADY_REVOKED = 'ACME_ISSUER_ALREADY_REVOKED',
  /** The issuer cannot issue now (no quorum, no key); the order becomes `serverInternal`. */
  UNAVAILABLE = 'ACME_ISSUER_UNAVAILABLE',
}

export class AcmeIssuerError extends HyperMeshError<AcmeIssuerErrorCode> {}
