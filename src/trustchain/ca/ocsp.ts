import { createHash } from 'node:crypto';
import { concatBytes } from '../../crypto/bytes.js';
import {
  DerError,
  TAG,
  children,
  constructed,
  contentOf,
  contextConstructed,
  contextPrimitive,
  encodingOf,
  expect,
  octetString,
  oid,
  readOctetAlignedBitString,
  readOid,
  readWhole,
  sequence,
  tlv,
  type Tlv,
} from './der.js';
import {
  ECDSA_WITH_SHA256,
  readTbs,
  splitCertificate,
  type CertificateSigner,
} from './certificate.js';
import { CaErrorCode, caError } from './errors.js';
import type { Issuer } from './issue.js';

/**
 * OCSP (RFC 6960) for the TrustChain CA: a strict reader of `OCSPRequest` and a writer of
 * `BasicOCSPResponse`s signed (ecdsa-with-SHA256) by an intermediate — the CA itself is the
 * responder (§2.6, no delegated signing certificate), so only the validator holding an
 * intermediate answers for that intermediate's certificates.
 */

export const OCSP_NONCE_OID = '1.3.6.1.5.5.7.48.1.2';
const OCSP_BASIC_OID = '1.3.6.1.5.5.7.48.1.1';
const ENUMERATED = 0x0a;
/** Single requests one OCSPRequest may carry. */
export const MAX_OCSP_REQUESTS = 32;
/** Largest request accepted (DER). */
export const MAX_OCSP_REQUEST_BYTES = 8_192;
/** Largest nonce extension value (RFC 8954 asks for 1..32 octets; some clients send more). */
export const MAX_OCSP_NONCE_BYTES = 128;

export type OcspHashAlgorithm = 'sha1' | 'sha256' | 'sha384' | 'sha512';

const HASH_OIDS: Record<string, OcspHashAlgorithm> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** RFC 6960 §4.2.1 OCSPResponseStatus (4 is not used). */
export const OcspResponseStatus = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;
export type OcspResponseStatus = (typeof OcspResponseStatus)[keyof typeof OcspResponseStatus];

export interface OcspCertId {
  /** The CertID exactly as the client encoded it (echoed in the response). */
  readonly encoding: Uint8Array;
  readonly hashAlgorithm: OcspHashAlgorithm;
  readonly issuerNameHash: Uint8Array;
  readonly issuerKeyHash: Uint8Array;
  /** Unsigned big-endian magnitude, without leading zero bytes. */
  readonly serial: Uint8Array;
}

export interface OcspRequest {
  readonly certIds: readonly OcspCertId[];
  /** The nonce Extension (its whole encoding), echoed in the response; null without one. */
  readonly nonce: Uint8Array | null;
}

function malformed(message: string, cause?: unknown): never {
  throw caError(CaErrorCode.OCSP_MALFORMED, message, {}, cause);
}

function readCertId(der: Uint8Array, element: Tlv): OcspCertId {
  const parts = children(der, expect(element, TAG.sequence, 'CertID'));
  if (parts.length !== 4) throw new DerError('CertID has four elements');
  const algorithm = children(der, expect(parts[0], TAG.sequence, 'hashAlgorithm'));
  const hashOid = readOid(der, algorithm[0] as Tlv);
  const hashAlgorithm = HASH_OIDS[hashOid];
  if (hashAlgorithm === undefined) throw new DerError(`unsupported CertID hash ${hashOid}`);
  if (algorithm.length > 2 || (algorithm.length === 2 && algorithm[1]?.tag !== TAG.null)) {
    throw new DerError('CertID hash parameters must be absent or NULL');
  }
  const serialTlv = expect(parts[3], TAG.integer, 'serialNumber');
  const value = contentOf(der, serialTlv);
  if (value.length === 0 || value.length > 21 || ((value[0] as number) & 0x80) !== 0) {
    throw new DerError('serialNumber must be a positive INTEGER of at most 20 octets');
  }
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  return {
    encoding: encodingOf(der, element),
    hashAlgorithm,
    issuerNameHash: contentOf(der, expect(parts[1], TAG.octetString, 'issuerNameHash')),
    issuerKeyHash: contentOf(der, expect(parts[2], TAG.octetString, 'issuerKeyHash')),
    serial: value.subarray(start),
  };
}

/** Reads an OCSPRequest (RFC 6960 §4.1.1); throws `OCSP_MALFORMED`. A request signature is ignored. */
export function parseOcspRequest(der: Uint8Array): OcspRequest {
  if (der.length > MAX_OCSP_REQUEST_BYTES) malformed('OCSP request too large');
  try {
    const top = children(der, expect(readWhole(der), TAG.sequence, 'OCSPRequest'));
    if (top.length < 1 || top.length > 2) throw new DerError('OCSPRequest shape');
    if (top.length === 2) expect(top[1], contextConstructed(0), 'optionalSignature');
    const tbs = children(der, expect(top[0], TAG.sequence, 'TBSRequest'));
    let index = 0;
    if (tbs[index]?.tag === contextConstructed(0)) {
      const [version, ...rest] = children(der, tbs[index] as Tlv);
      const content = contentOf(der, expect(version, TAG.integer, 'version'));
      // DEFAULT v1(0) must be omitted in DER, but OpenSSL and others write it: accept v1 only.
      if (rest.length > 0 || content.length !== 1 || content[0] !== 0) {
        throw new DerError('only OCSP request version 1');
      }
      index++;
    }
    if (tbs[index]?.tag === contextConstructed(1)) index++;
    const list = children(der, expect(tbs[index], TAG.sequence, 'requestList'));
    index++;
    if (list.length === 0 || list.length > MAX_OCSP_REQUESTS) {
      throw new DerError(`requestList must hold 1..${MAX_OCSP_REQUESTS} requests`);
    }
    const certIds = list.map((request) => {
      const parts = children(der, expect(request, TAG.sequence, 'Request'));
      if (parts.length < 1 || parts.length > 2) throw new DerError('Request shape');
      if (parts.length === 2) expect(parts[1], contextConstructed(0), 'singleRequestExtensions');
      return readCertId(der, parts[0] as Tlv);
    });
    let nonce: Uint8Array | null = null;
    if (tbs[index] !== undefined) {
      const [extensions, ...rest] = children(
        der,
        expect(tbs[index], contextConstructed(2), 'requestExtensions'),
      );
      if (rest.length > 0) throw new DerError('requestExtensions holds one element');
      for (const extension of children(der, expect(extensions, TAG.sequence, 'Extensions'))) {
        const parts = children(der, expect(extension, TAG.sequence, 'Extension'));
        if (readOid(der, parts[0] as Tlv) !== OCSP_NONCE_OID) continue;
        const value = contentOf(der, expect(parts.at(-1), TAG.octetString, 'extnValue'));
        if (value.length === 0 || value.length > MAX_OCSP_NONCE_BYTES) {
          throw new DerError(`nonce must be 1..${MAX_OCSP_NONCE_BYTES} octets`);
        }
        if (nonce !== null) throw new DerError('two nonce extensions');
        nonce = encodingOf(der, extension);
      }
      index++;
    }
    if (index !== tbs.length) throw new DerError('unexpected element in TBSRequest');
    return { certIds, nonce };
  } catch (error) {
    if (error instanceof DerError) malformed(`malformed OCSP request: ${error.message}`, error);
    throw error;
  }
}

/** An issuer's name and key hashes under one algorithm, as a CertID carries them. */
export interface IssuerHashes {
  readonly nameHash: Uint8Array;
  readonly keyHash: Uint8Array;
}

/**
 * Hashes already computed, by issuer and algorithm: every CertID of every request is compared
 * with them before any limit applies, and computing them parses the issuer's certificate.
 */
const computedHashes = new WeakMap<Issuer, Map<OcspHashAlgorithm, IssuerHashes>>();

/**
 * The issuer's name and key hashes, as a CertID with `algorithm` carries them (RFC 6960 §4.1.1):
 * computed once per issuer object and algorithm (an `Issuer` is immutable), then shared, so the
 * arrays must not be written.
 */
export function issuerHashes(issuer: Issuer, algorithm: OcspHashAlgorithm): IssuerHashes {
  let byAlgorithm = computedHashes.get(issuer);
  if (byAlgorithm === undefined) {
    byAlgorithm = new Map();
    computedHashes.set(issuer, byAlgorithm);
  }
  const known = byAlgorithm.get(algorithm);
  if (known !== undefined) return known;
  const spki = readTbs(splitCertificate(issuer.certificate).tbs).subjectPublicKeyInfo;
  const [, key] = children(spki, readWhole(spki));
  const publicKey = readOctetAlignedBitString(spki, key as Tlv);
  const digest = (data: Uint8Array): Uint8Array =>
    new Uint8Array(createHash(algorithm).update(data).digest());
  const hashes = { nameHash: digest(issuer.subjectName), keyHash: digest(publicKey) };
  byAlgorithm.set(algorithm, hashes);
  return hashes;
}

/** Whether `certId` names `issuer` (name and key hash under the CertID's algorithm). */
export function certIdMatchesIssuer(certId: OcspCertId, issuer: Issuer): boolean {
  const { nameHash, keyHash } = issuerHashes(issuer, certId.hashAlgorithm);
  return (
    Buffer.from(nameHash).equals(certId.issuerNameHash) &&
    Buffer.from(keyHash).equals(certId.issuerKeyHash)
  );
}

export type OcspCertStatus =
  | { readonly status: 'good' }
  | { readonly status: 'revoked'; readonly time: Date; readonly reason: number }
  | { readonly status: 'unknown' };

export interface OcspSingleResponse {
  readonly certId: OcspCertId;
  readonly status: OcspCertStatus;
  /** Whole seconds. */
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
}

export interface OcspResponseInput {
  readonly issuer: Issuer;
  readonly signer: CertificateSigner;
  /** Whole seconds. */
  readonly producedAt: Date;
  readonly responses: readonly OcspSingleResponse[];
  readonly nonce: Uint8Array | null;
}

/** GeneralizedTime `YYYYMMDDHHMMSSZ` (RFC 5280 §4.1.2.5.2; OCSP uses it for every time). */
function generalizedTime(date: Date): Uint8Array {
  const ms = date.getTime();
  if (!Number.isFinite(ms) || ms % 1000 !== 0) throw new DerError('time needs whole seconds');
  const text = date.toISOString().replace(/[-:T]/g, '').replace('.000Z', 'Z');
  return tlv(TAG.generalizedTime, new TextEncoder().encode(text));
}

function certStatus(status: OcspCertStatus): Uint8Array {
  switch (status.status) {
    case 'good':
      return tlv(contextPrimitive(0), new Uint8Array());
    case 'unknown':
      return tlv(contextPrimitive(2), new Uint8Array());
    case 'revoked':
      return constructed(
        contextConstructed(1),
        generalizedTime(status.time),
        ...(status.reason === 0
          ? []
          : [constructed(contextConstructed(0), tlv(ENUMERATED, Uint8Array.of(status.reason)))]),
      );
  }
}

/** An OCSPResponse without responseBytes: any status but `successful`. */
export function ocspErrorResponse(
  status: Exclude<OcspResponseStatus, typeof OcspResponseStatus.successful>,
): Uint8Array {
  return sequence(tlv(ENUMERATED, Uint8Array.of(status)));
}

/**
 * A successful OCSPResponse carrying a BasicOCSPResponse signed by the issuer, responderID
 * byKey, each CertID echoed as received, the nonce extension echoed, and the issuer's
 * certificate in `certs` (so a client holding only the root can build the signer's chain).
 */
export function buildOcspResponse(input: OcspResponseInput): Uint8Array {
  if (!input.signer.publicKey.equals(input.issuer.publicKey)) {
    throw caError(CaErrorCode.INVALID_ISSUER, "the signer's key is not the issuer's key");
  }
  const keyHash = issuerHashes(input.issuer, 'sha1').keyHash;
  const responses = input.responses.map((single) => {
    if (
      single.status.status === 'revoked' &&
      (!Number.isInteger(single.status.reason) ||
        single.status.reason < 0 ||
        single.status.reason > 10 ||
        single.status.reason === 7)
    ) {
      throw caError(CaErrorCode.INVALID_ISSUANCE_INPUT, 'not an RFC 5280 CRLReason');
    }
    return sequence(
      single.certId.encoding,
      certStatus(single.status),
      generalizedTime(single.thisUpdate),
      constructed(contextConstructed(0), generalizedTime(single.nextUpdate)),
    );
  });
  const tbs = sequence(
    constructed(contextConstructed(2), octetString(keyHash)),
    generalizedTime(input.producedAt),
    sequence(...responses),
    ...(input.nonce === null ? [] : [constructed(contextConstructed(1), sequence(input.nonce))]),
  );
  const basic = sequence(
    tbs,
    ECDSA_WITH_SHA256,
    tlv(TAG.bitString, concatBytes(Uint8Array.of(0), input.signer.sign(tbs))),
    constructed(contextConstructed(0), sequence(input.issuer.certificate)),
  );
  return sequence(
    tlv(ENUMERATED, Uint8Array.of(OcspResponseStatus.successful)),
    constructed(contextConstructed(0), sequence(oid(OCSP_BASIC_OID), octetString(basic))),
  );
}

/** A serial as the unsigned magnitude CertIDs carry (for comparing with a 16-byte stored serial). */
export function serialMagnitude(serial: Uint8Array): Uint8Array {
  let start = 0;
  while (start < serial.length - 1 && serial[start] === 0) start++;
  return serial.subarray(start);
}
