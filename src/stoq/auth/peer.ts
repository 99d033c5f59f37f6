import { bytesEqual } from '../../crypto/bytes.js';
import {
  X509Error,
  certificateEd25519Key,
  certificateFalconKey,
  certificateIdentity,
  parseCertificate,
  verifyChain,
  type CertificateIdentity,
  type CertificatePurpose,
  type ParsedCertificate,
} from '../../crypto/x509.js';
import type { PeerIdentity } from '../identity.js';
import type { ProvenKey } from '../transport.js';
import { AuthFailureReason, authFailure, reasonForX509Error } from './reasons.js';

/**
 * Checks of the peer's certificate chain against what the transport proved (issue §3: "verify
 * to the configured trust roots, be within validity, pass a pluggable revocation check, and
 * certify exactly the key the transport handshake proved").
 */

export type RevocationStatus = 'good' | 'revoked' | 'unknown';
/** A check's answer: a status, or `revoked` with the revocation reason (logged in `detail`). */
export type RevocationAnswer =
  RevocationStatus | { readonly status: 'revoked'; readonly reason: string };

export interface RevocationQuery {
  /** The certificate in question: the leaf (depth 0) or an intermediate CA. */
  readonly certificate: ParsedCertificate;
  /** Its issuer on the verified path (for OCSP: issuer name and key hashes, RFC 6960 §4.1.1). */
  readonly issuer: ParsedCertificate;
  readonly depth: number;
}

/**
 * The pluggable revocation check. Called for every certificate on the verified path below the
 * trust root, leaf first, after the chain, cluster and key checks passed. Anything but `good`
 * rejects the peer: `revoked` as `revoked`, `unknown` or a thrown error as `revocation_unknown`
 * (fail closed). May be async (a CRL fetch, an OCSP query, a TrustChain lookup); the handshake
 * timeout bounds it.
 */
export type RevocationCheck = (
  query: RevocationQuery,
) => RevocationAnswer | Promise<RevocationAnswer>;

/**
 * What an identity check sees: the peer's identity as its leaf names it, the leaf, and the
 * leaf's issuer on the verified path.
 */
export interface IdentityQuery {
  readonly identity: CertificateIdentity;
  readonly leaf: ParsedCertificate;
  readonly issuer: ParsedCertificate;
}

/**
 * An optional policy on which identities a CA may vouch for (e.g. a CA whose client-profile
 * certificates must not claim the `validator` or `node` role). Answers null to accept, or why
 * the certificate may not be used for this identity; refused as `wrong_key_usage`.
 */
export type IdentityCheck = (query: IdentityQuery) => string | null;

export interface TrustPolicy {
  readonly roots: readonly ParsedCertificate[];
  /** The only cluster whose certificates are accepted. */
  readonly cluster: string;
  readonly revocation: RevocationCheck;
  readonly identityCheck?: IdentityCheck;
}

export interface CertifiedPeer {
  readonly identity: PeerIdentity;
  readonly leaf: ParsedCertificate;
  /** The verified path, leaf first, ending at the trust anchor (for later revocation rechecks). */
  readonly path: readonly ParsedCertificate[];
}

export interface VerifyPeerOptions {
  /** DER certificates, leaf first. */
  readonly chain: readonly Uint8Array[];
  /** Parses one certificate, e.g. through a cache; default `parseCertificate`. */
  readonly parse?: (der: Uint8Array) => ParsedCertificate;
  readonly provenKey: ProvenKey | null;
  readonly trust: TrustPolicy;
  readonly now: Date;
  /** `serverAuth` when the peer is the listener, `clientAuth` when it dialed. */
  readonly purpose: CertificatePurpose;
}

/**
 * Verifies the chain, then (in this order) identity URI, cluster, key binding, FALCON key and
 * revocation. Throws an `UNAUTHENTICATED` StoqError with the first failing reason.
 */
export async function verifyPeerCertificate(options: VerifyPeerOptions): Promise<CertifiedPeer> {
  const { provenKey, trust, now } = options;
  if (provenKey === null || options.chain.length === 0) {
    throw authFailure(AuthFailureReason.NO_CERTIFICATE, 'the peer presented no certificate', {
      transportKey: provenKey !== null,
      chainLength: options.chain.length,
    });
  }
  const parse = options.parse ?? parseCertificate;
  const verified = withX509Reasons(() =>
    verifyChain({
      chain: options.chain.map((der) => parse(der)),
      roots: trust.roots,
      now,
      purpose: options.purpose,
    }),
  );
  const leaf = verified.leaf;
  const identity = withX509Reasons(() => certificateIdentity(leaf));
  if (identity.cluster !== trust.cluster) {
    throw authFailure(
      AuthFailureReason.WRONG_CLUSTER,
      'the peer certificate belongs to another cluster',
      {
        cluster: identity.cluster,
        expected: trust.cluster,
      },
    );
  }
  const certifiedKey = withX509Reasons(() => certificateEd25519Key(leaf));
  if (provenKey.algorithm !== 'ed25519' || !bytesEqual(certifiedKey, provenKey.publicKey)) {
    throw authFailure(
      AuthFailureReason.KEY_MISMATCH,
      'the certificate names a different key than the transport proved',
      {
        uri: identity.uri,
      },
    );
  }
  const falconPublicKey = withX509Reasons(() => certificateFalconKey(leaf));
  const refusal =
    trust.identityCheck?.({ identity, leaf, issuer: verified.path[1] ?? leaf }) ?? null;
  if (refusal !== null) {
    throw authFailure(AuthFailureReason.WRONG_KEY_USAGE, refusal, { uri: identity.uri });
  }
  await checkRevocation(verified.path, trust.revocation);
  return {
    leaf,
    path: verified.path,
    identity: {
      ...identity,
      certificateFingerprint: leaf.fingerprint,
      transportKey: provenKey.publicKey.slice(),
      falconPublicKey,
      notAfter: leaf.notAfter,
    },
  };
}

function withX509Reasons<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof X509Error) {
      throw authFailure(
        reasonForX509Error(error.code),
        error.message,
        { x509: error.code, ...error.detail },
        { cause: error },
      );
    }
    throw error;
  }
}

/**
 * Runs `revocation` on every certificate of a verified `path` below its trust anchor, leaf
 * first; throws an `UNAUTHENTICATED` StoqError (`revoked` or `revocation_unknown`) at the first
 * that is not `good`.
 */
export async function checkRevocation(
  path: readonly ParsedCertificate[],
  revocation: RevocationCheck,
): Promise<void> {
  // The last certificate on the path is the trust anchor: trusted by configuration, not revocable here.
  for (let depth = 0; depth < path.length - 1; depth++) {
    const certificate = path[depth] as ParsedCertificate;
    let status: RevocationAnswer;
    try {
      status = await revocation({
        certificate,
        issuer: path[depth + 1] as ParsedCertificate,
        depth,
      });
    } catch (error) {
      throw authFailure(
        AuthFailureReason.REVOCATION_UNKNOWN,
        'the revocation check failed',
        { depth },
        { cause: error },
      );
    }
    if (typeof status === 'object' && status.status === 'revoked') {
      throw authFailure(
        AuthFailureReason.REVOKED,
        `a certificate on the peer chain is revoked (${status.reason})`,
        {
          depth,
          serialNumber: certificate.serialNumber,
          subject: certificate.subject,
          revocationReason: status.reason,
        },
      );
    }
    if (status === 'revoked') {
      throw authFailure(AuthFailureReason.REVOKED, 'a certificate on the peer chain is revoked', {
        depth,
        serialNumber: certificate.serialNumber,
        subject: certificate.subject,
      });
    }
    if (status !== 'good') {
      throw authFailure(AuthFailureReason.REVOCATION_UNKNOWN, 'the revocation status is unknown', {
        depth,
        status: String(status),
      });
    }
  }
}
