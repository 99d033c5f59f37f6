import { X509ErrorCode } from '../../crypto/x509.js';
import { StoqError, StoqErrorCode } from '../errors.js';

/**
 * Why a STOQ authentication exchange failed. Each value is sent to the peer in the `Result`
 * message, carried as `detail.reason` of the `UNAUTHENTICATED` StoqError, and counted under its
 * own `outcome` label in `hypermesh_stoq_handshakes_total`.
 */
export enum AuthFailureReason {
  /** The peer presented no certificate chain, or its transport proved no key. */
  NO_CERTIFICATE = 'no_certificate',
  /** A certificate does not parse, or lacks the identity URI / FALCON key / Ed25519 key. */
  MALFORMED_CERTIFICATE = 'malformed_certificate',
  /** The chain does not lead to a configured trust root. */
  UNKNOWN_CA = 'unknown_ca',
  EXPIRED = 'expired',
  NOT_YET_VALID = 'not_yet_valid',
  /** Key usage, extended key usage or basic constraints forbid this use of the certificate. */
  WRONG_KEY_USAGE = 'wrong_key_usage',
  REVOKED = 'revoked',
  /** The revocation check could not say "good" (answered `unknown` or failed): fail closed. */
  REVOCATION_UNKNOWN = 'revocation_unknown',
  /** The certificate names a different key than the one the transport handshake proved. */
  KEY_MISMATCH = 'key_mismatch',
  /** The certificate belongs to another cluster. */
  WRONG_CLUSTER = 'wrong_cluster',
  /** The strict-mode FALCON signature does not verify with the certified FALCON key. */
  FALCON_PROOF_INVALID = 'falcon_proof_invalid',
  /** The message echoes another connection's nonce: a proof replayed from elsewhere. */
  FALCON_PROOF_REPLAYED = 'falcon_proof_replayed',
  /** The delegation is missing, badly signed, or names another transport key or identity. */
  DELEGATION_INVALID = 'delegation_invalid',
  DELEGATION_EXPIRED = 'delegation_expired',
  /** The two sides are configured for different modes (strict vs delegated). */
  MODE_MISMATCH = 'mode_mismatch',
  /** The peer speaks another version of the exchange (messages.ts `AUTH_PROTOCOL_VERSION`). */
  VERSION_MISMATCH = 'version_mismatch',
  /** A malformed, oversized or unexpected message, or the peer ended the exchange early. */
  PROTOCOL_ERROR = 'protocol_error',
  /** The exchange did not finish within the handshake timeout. */
  TIMEOUT = 'timeout',
  /** A local failure (e.g. the FALCON library failed to sign); not the peer's fault. */
  INTERNAL_ERROR = 'internal_error',
  /**
   * The listener holds as many connections as it allows: in all, or from this identity
   * (`StoqEndpoint` `maxInboundConnections`, `maxInboundSessionsPerPeer`). Not a fault of the
   * credentials; callers see it as `RESOURCE_EXHAUSTED` (`limitRefusal`).
   */
  CONNECTION_LIMIT = 'connection_limit',
}

export const AUTH_FAILURE_REASONS: readonly AuthFailureReason[] = Object.values(AuthFailureReason);

/** Who decided the exchange failed: this side, or the peer (reported in its `Result`). */
export type FailureOrigin = 'local' | 'peer';

export function authFailure(
  reason: AuthFailureReason,
  message: string,
  detail: Record<string, unknown> = {},
  options?: ErrorOptions,
): StoqError {
  return new StoqError(
    StoqErrorCode.UNAUTHENTICATED,
    message,
    { origin: 'local', ...detail, reason },
    options,
  );
}

/** The reason carried by an authentication failure, or `null` for any other error. */
export function failureReason(error: unknown): AuthFailureReason | null {
  if (!(error instanceof StoqError) || error.code !== StoqErrorCode.UNAUTHENTICATED) return null;
  const reason = error.detail.reason;
  return AUTH_FAILURE_REASONS.includes(reason as AuthFailureReason)
    ? (reason as AuthFailureReason)
    : null;
}

export function failureOrigin(error: StoqError): FailureOrigin {
  return error.detail.origin === 'peer' ? 'peer' : 'local';
}

const X509_REASONS: Readonly<Record<X509ErrorCode, AuthFailureReason>> = {
  [X509ErrorCode.NO_CERTIFICATE]: AuthFailureReason.NO_CERTIFICATE,
  [X509ErrorCode.MALFORMED_CERTIFICATE]: AuthFailureReason.MALFORMED_CERTIFICATE,
  [X509ErrorCode.MISSING_EXTENSION]: AuthFailureReason.MALFORMED_CERTIFICATE,
  [X509ErrorCode.UNSUPPORTED_KEY_TYPE]: AuthFailureReason.MALFORMED_CERTIFICATE,
  [X509ErrorCode.MALFORMED_PEM]: AuthFailureReason.MALFORMED_CERTIFICATE,
  [X509ErrorCode.INVALID_ARGUMENT]: AuthFailureReason.MALFORMED_CERTIFICATE,
  [X509ErrorCode.UNKNOWN_CA]: AuthFailureReason.UNKNOWN_CA,
  [X509ErrorCode.EXPIRED]: AuthFailureReason.EXPIRED,
  [X509ErrorCode.NOT_YET_VALID]: AuthFailureReason.NOT_YET_VALID,
  [X509ErrorCode.WRONG_KEY_USAGE]: AuthFailureReason.WRONG_KEY_USAGE,
};

export function reasonForX509Error(code: X509ErrorCode): AuthFailureReason {
  return X509_REASONS[code];
}

/**
 * A `connection_limit` failure as `authenticate()` reports it: `RESOURCE_EXHAUSTED` (the
 * credentials were fine; the listener is full), keeping `reason` and `origin` in the detail.
 * Any other error is returned unchanged.
 */
export function limitRefusal(error: StoqError): StoqError {
  if (failureReason(error) !== AuthFailureReason.CONNECTION_LIMIT) return error;
  return new StoqError(StoqErrorCode.RESOURCE_EXHAUSTED, error.message, error.detail, {
    cause: error,
  });
}
