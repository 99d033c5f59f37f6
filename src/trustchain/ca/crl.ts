import {
  compareBytes,
  constructed,
  contextConstructed,
  integerFromMagnitude,
  sequence,
  time,
  tlv,
  unsignedInteger,
} from './der.js';
import {
  ECDSA_WITH_SHA256,
  authorityKeyIdentifier,
  encodeExtension,
  assembleCertificate,
  type CertificateSigner,
  type Extension,
} from './certificate.js';
import { CaErrorCode, caError } from './errors.js';
import type { Issuer } from './issue.js';

/**
 * Certificate revocation lists (RFC 5280 §5): one per intermediate, signed by that
 * intermediate's key, so only the validator that holds it can produce it. Deterministic for its
 * inputs: entries sorted by serial, a reasonCode entry extension except for "unspecified"
 * (§5.3.1: SHOULD be absent then), and the CRL extensions authorityKeyIdentifier and cRLNumber.
 */

const CRL_NUMBER_OID = '2.5.29.20';
const REASON_CODE_OID = '2.5.29.21';
const ENUMERATED = 0x0a;

export interface RevokedCertificate {
  /** The 16-byte serial (unsigned big-endian magnitude). */
  readonly serial: Uint8Array;
  /** Whole seconds. */
  readonly revocationDate: Date;
  /** RFC 5280 CRLReason. */
  readonly reason: number;
}

export interface CrlInput {
  readonly issuer: Issuer;
  readonly signer: CertificateSigner;
  /** Whole seconds. */
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /** Grows with every new CRL (RFC 5280 §5.2.3), e.g. the block time (ms) the list was read at. */
  readonly crlNumber: number;
  readonly revoked: readonly RevokedCertificate[];
}

function entry(revoked: RevokedCertificate): Uint8Array {
  const parts = [integerFromMagnitude(revoked.serial), time(revoked.revocationDate)];
  if (revoked.reason !== 0) {
    const reason: Extension = {
      oid: REASON_CODE_OID,
      critical: false,
      value: tlv(ENUMERATED, Uint8Array.of(revoked.reason)),
    };
    parts.push(sequence(encodeExtension(reason)));
  }
  return sequence(...parts);
}

/** The DER CertificateList, signed with ecdsa-with-SHA256 by the issuer's key. */
export function buildCrl(input: CrlInput): Uint8Array {
  if (!input.signer.publicKey.equals(input.issuer.publicKey)) {
    throw caError(
      CaErrorCode.INVALID_ISSUER,
      "the signer's key is not the issuer certificate's key",
    );
  }
  if (
    !(input.nextUpdate > input.thisUpdate) ||
    !Number.isSafeInteger(input.crlNumber) ||
    input.crlNumber < 0
  ) {
    throw caError(
      CaErrorCode.INVALID_ISSUANCE_INPUT,
      'a CRL needs nextUpdate after thisUpdate and a crlNumber >= 0',
    );
  }
  if (
    input.revoked.some(
      (r) => !Number.isInteger(r.reason) || r.reason < 0 || r.reason > 10 || r.reason === 7,
    )
  ) {
    throw caError(
      CaErrorCode.INVALID_ISSUANCE_INPUT,
      'a revocation reason is not an RFC 5280 CRLReason',
    );
  }
  const revoked = [...input.revoked].sort((a, b) => compareBytes(a.serial, b.serial));
  const crlNumber: Extension = {
    oid: CRL_NUMBER_OID,
    critical: false,
    value: unsignedInteger(input.crlNumber),
  };
  const tbs = sequence(
    unsignedInteger(1),
    ECDSA_WITH_SHA256,
    input.issuer.subjectName,
    time(input.thisUpdate),
    time(input.nextUpdate),
    ...(revoked.length === 0 ? [] : [sequence(...revoked.map(entry))]),
    constructed(
      contextConstructed(0),
      sequence(
        encodeExtension(authorityKeyIdentifier(input.issuer.keyIdentifier)),
        encodeExtension(crlNumber),
      ),
    ),
  );
  // CertificateList has the shape of Certificate: TBS, algorithm, BIT STRING signature.
  return assembleCertificate(tbs, input.signer.sign(tbs));
}
