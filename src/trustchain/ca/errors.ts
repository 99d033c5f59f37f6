import { HyperMeshError } from '../../codec/error.js';

/**
 * Error codes of the certificate authority. Parse and build failures throw `CaError`; policy
 * decisions (`checkRequest`) return refusals as data instead, because refusing is a normal outcome.
 */
export enum CaErrorCode {
  /** The CSR is larger than `MAX_CSR_BYTES` (DER) or `MAX_CSR_PEM_LENGTH` (PEM). */
  CSR_TOO_LARGE = 'CA_CSR_TOO_LARGE',
  /** Not one strict-DER PKCS#10 CertificationRequest (RFC 2986), or not one PEM block of it. */
  CSR_MALFORMED = 'CA_CSR_MALFORMED',
  /** The subject key is not P-256, Ed25519 or RSA (e.g. P-384, X25519, DSA, a compressed point). */
  CSR_UNSUPPORTED_KEY = 'CA_CSR_UNSUPPORTED_KEY',
  /** RSA modulus below 2048 bits, or a public exponent that is even or below 65537. */
  CSR_WEAK_KEY = 'CA_CSR_WEAK_KEY',
  /** The key bytes do not decode (e.g. a point not on the curve). */
  CSR_INVALID_KEY = 'CA_CSR_INVALID_KEY',
  /** The CSR is signed with SHA-1 or MD5. */
  CSR_WEAK_SIGNATURE_ALGORITHM = 'CA_CSR_WEAK_SIGNATURE_ALGORITHM',
  /** The CSR is signed with an algorithm outside the supported set (e.g. RSASSA-PSS). */
  CSR_UNSUPPORTED_SIGNATURE_ALGORITHM = 'CA_CSR_UNSUPPORTED_SIGNATURE_ALGORITHM',
  /** The signature algorithm does not belong to the subject key's type. */
  CSR_SIGNATURE_ALGORITHM_MISMATCH = 'CA_CSR_SIGNATURE_ALGORITHM_MISMATCH',
  /** The CSR's self-signature does not verify with its subject key. */
  CSR_BAD_SIGNATURE = 'CA_CSR_BAD_SIGNATURE',
  /** A requested DNS name, IP address or URI is not syntactically acceptable. */
  INVALID_NAME = 'CA_INVALID_NAME',
  /** The request document does not match its schema (fields, types, bounds, duplicates). */
  INVALID_REQUEST = 'CA_INVALID_REQUEST',
  /** The FALCON-1024 key or its proof of possession is malformed or does not verify. */
  INVALID_FALCON_PROOF = 'CA_INVALID_FALCON_PROOF',
  /** Issuance inputs are out of range (height, time, lifetime, transaction hash). */
  INVALID_ISSUANCE_INPUT = 'CA_INVALID_ISSUANCE_INPUT',
  /** The issuing intermediate is unusable: not a CA, no key identifier, or its validity does not cover the leaf. */
  INVALID_ISSUER = 'CA_INVALID_ISSUER',
  /** A certificate differs from the one the committed inputs determine (TBS, signature algorithm, signature). */
  CERTIFICATE_MISMATCH = 'CA_CERTIFICATE_MISMATCH',
  /** The batch signature is malformed or does not verify. */
  BATCH_SIGNATURE_INVALID = 'CA_BATCH_SIGNATURE_INVALID',
  /** Trust bundle text or contents are malformed or inconsistent. */
  INVALID_BUNDLE = 'CA_INVALID_BUNDLE',
  /** Genesis-ceremony or governed-procedure input is invalid (names, keys, passphrase). */
  INVALID_CEREMONY_INPUT = 'CA_INVALID_CEREMONY_INPUT',
  /** Root key files do not decrypt or do not match the bundle's root. */
  ROOT_KEY_MISMATCH = 'CA_ROOT_KEY_MISMATCH',
  /** Offline verification failed; `detail.reason` is a `VerifyFailure`. */
  VERIFY_FAILED = 'CA_VERIFY_FAILED',
  /** An OCSP request is not a strict-DER RFC 6960 OCSPRequest within the limits. */
  OCSP_MALFORMED = 'CA_OCSP_MALFORMED',
}

export class CaError extends HyperMeshError<CaErrorCode> {}

export function caError(
  code: CaErrorCode,
  message: string,
  detail: Record<string, unknown> = {},
  cause?: unknown,
): CaError {
  return new CaError(code, message, detail, cause === undefined ? undefined : { cause });
}
