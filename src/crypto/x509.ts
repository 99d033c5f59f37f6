import {
  X509Certificate as NodeX509Certificate,
  randomBytes,
  webcrypto,
  type KeyObject,
} from 'node:crypto';
import { isIP } from 'node:net';
import type * as PeculiarX509 from '@peculiar/x509';
import { HyperMeshError } from '../codec/error.js';
import { decodeCanonical, encodeCanonical } from '../codec/cbor.js';
import { bytesEqual, fromBase64, toBase64, toHex } from './bytes.js';
import {
  DerError,
  TAG as DER_TAG,
  children,
  contentOf,
  expect,
  octetString,
  readBoolean,
  readOid,
  readWhole,
  type Tlv,
} from './der.js';
import { sha256 } from './hash.js';
import {
  FALCON1024_PUBLIC_KEY_BYTES,
  FALCON1024_PUBLIC_KEY_HEADER,
  FALCON_ALGORITHM_ID,
} from './falcon.js';

/**
 * X.509 certificates for STOQ identities (ARCHITECTURE.md "Certificates are real X.509"): a
 * development CA (ECDSA P-256 root and intermediates), node certificates whose subject key is the
 * node's Ed25519 transport key, with the FALCON-1024 public key in a non-critical extension, and
 * RFC 5280 §6 path validation. Certificates are built with `@peculiar/x509` and verified with
 * Node's OpenSSL-backed `X509Certificate`, and pass `openssl verify` (tested).
 */

/*
 * `@peculiar/x509` 2.x registers its algorithm providers with tsyringe, which needs the Reflect
 * Metadata API; `reflect-metadata` must be evaluated first, hence the dynamic import below. Only
 * this module imports `@peculiar/x509`.
 */
await import('reflect-metadata');
const x509: typeof PeculiarX509 = await import('@peculiar/x509');
const webCrypto = webcrypto;
x509.cryptoProvider.set(webCrypto);
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export enum X509ErrorCode {
  /** Issuance parameters are invalid (bad key length, name, validity window). */
  INVALID_ARGUMENT = 'X509_INVALID_ARGUMENT',
  /** The peer presented an empty chain. */
  NO_CERTIFICATE = 'X509_NO_CERTIFICATE',
  /** Bytes are not one DER X.509 certificate, or a known extension does not parse. */
  MALFORMED_CERTIFICATE = 'X509_MALFORMED_CERTIFICATE',
  /** A required extension (identity URI, FALCON key) is absent. */
  MISSING_EXTENSION = 'X509_MISSING_EXTENSION',
  /** The subject key is not the expected algorithm (node certificates carry Ed25519 keys). */
  UNSUPPORTED_KEY_TYPE = 'X509_UNSUPPORTED_KEY_TYPE',
  /** The chain does not lead to a configured root through CA certificates with valid signatures. */
  UNKNOWN_CA = 'X509_UNKNOWN_CA',
  EXPIRED = 'X509_EXPIRED',
  NOT_YET_VALID = 'X509_NOT_YET_VALID',
  /** Key usage, extended key usage or basic constraints forbid this use. */
  WRONG_KEY_USAGE = 'X509_WRONG_KEY_USAGE',
  MALFORMED_PEM = 'X509_MALFORMED_PEM',
}

export class X509Error extends HyperMeshError<X509ErrorCode> {}

/**
 * Private OID arc for HyperMesh extensions: 1.3.6.1.4.1.1747732396. This is NOT an IANA-assigned
 * Private Enterprise Number; it was drawn at random far above the range IANA assigns PENs from
 * (sequentially; still five-digit numbers), so it will not collide with a real enterprise soon.
 * Replace it with a registered PEN before certificates leave development clusters.
 * (A UUID-derived `2.25.<uuid>` arc was tried first; @peculiar/x509 truncates arcs above 2^53.)
 *
 *   <arc>.1        STOQ
 *   <arc>.1.1      FALCON-1024 public key of the certificate subject (non-critical)
 */
export const HYPERMESH_OID_ARC = '1.3.6.1.4.1.1747732396';
export const FALCON_PUBLIC_KEY_EXTENSION_OID = `${HYPERMESH_OID_ARC}.1.1`;

export type CertificateRole = 'validator' | 'node' | 'client';
const CERTIFICATE_ROLES: readonly CertificateRole[] = ['validator', 'node', 'client'];
export type CertificatePurpose = 'serverAuth' | 'clientAuth' | 'any';

/** Certificates are small; anything larger is rejected before parsing. */
export const MAX_CERTIFICATE_BYTES = 64 * 1024;
/** Leaf, at most six intermediates and the root. */
export const MAX_CHAIN_LENGTH = 8;

const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extendedKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  anyExtendedKeyUsage: '2.5.29.37.0',
} as const;

/** Extensions whose semantics this validator implements; any other critical one is refused. */
const UNDERSTOOD_EXTENSIONS = new Set<string>([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extendedKeyUsage,
  OID.subjectAltName,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  FALCON_PUBLIC_KEY_EXTENSION_OID,
]);

/** RFC 5280 §4.2.1.3 KeyUsage as flags: bit i of the BIT STRING is `1 << i` (as in @peculiar/x509). */
export const KeyUsage = {
  digitalSignature: 1,
  keyCertSign: 32,
  cRLSign: 64,
} as const;

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface ParsedCertificate {
  readonly der: Uint8Array;
  /** SHA-256 of the DER, lowercase hex. */
  readonly fingerprint: string;
  /** Lowercase hex, without leading zero byte. */
  readonly serialNumber: string;
  readonly subject: string;
  readonly issuer: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** RFC 5280 §4.2.1.9; `null` when the extension is absent. */
  readonly basicConstraints: { readonly ca: boolean; readonly pathLength?: number } | null;
  /** RFC 5280 §4.2.1.3 bit mask (see `KeyUsage`); `null` when absent. */
  readonly keyUsage: number | null;
  /** RFC 5280 §4.2.1.12 purpose OIDs; `null` when absent. */
  readonly extendedKeyUsage: readonly string[] | null;
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly extensions: readonly CertificateExtension[];
  /** DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7). */
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly publicKey: KeyObject;
}

export interface CertificateExtension {
  readonly oid: string;
  readonly critical: boolean;
  /** Contents of `extnValue` (the DER inside the OCTET STRING). */
  readonly value: Uint8Array;
}

const nodeCertificates = new WeakMap<ParsedCertificate, NodeX509Certificate>();

/** SHA-256 of a certificate's DER encoding, lowercase hex. */
export function fingerprint(der: Uint8Array): string {
  return toHex(sha256(der));
}

/**
 * Parses one DER certificate (RFC 5280 §4.1). Node's OpenSSL binding parses and later verifies
 * it (and must re-encode it to exactly the input: no trailing bytes, no BER); the extensions are
 * read by the small strict DER reader below (definite minimal lengths, exact nesting). A general
 * ASN.1 library (@peculiar/x509) took ~1.5 ms per node certificate here, several times the cost
 * of the whole parse, which runs on every handshake.
 */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  if (!(der instanceof Uint8Array) || der.length === 0) {
    throw malformed('certificate is empty');
  }
  if (der.length > MAX_CERTIFICATE_BYTES) {
    throw malformed('certificate is too large', undefined, {
      length: der.length,
      max: MAX_CERTIFICATE_BYTES,
    });
  }
  // OpenSSL parses lazily: the getters can fail on input the constructor accepted.
  let node: NodeX509Certificate;
  let publicKey: KeyObject;
  let raw: Uint8Array;
  let serialNumber: string;
  let subject: string;
  let issuer: string;
  try {
    node = new NodeX509Certificate(der);
    raw = new Uint8Array(node.raw);
    publicKey = node.publicKey;
    serialNumber = node.serialNumber.toLowerCase().replace(/^(?:00)+(?=.)/, '');
    // An empty name (allowed for a subject whose identity is in a critical subjectAltName,
    // RFC 5280 §4.1.2.6) reads as undefined rather than "".
    subject = (node.subject ?? '').replace(/\n/g, ', ');
    issuer = (node.issuer ?? '').replace(/\n/g, ', ');
  } catch (error) {
    throw malformed(`not a DER X.509 certificate: ${(error as Error).message}`, error);
  }
  if (!bytesEqual(raw, der)) {
    throw malformed('certificate has trailing bytes or is not DER');
  }
  try {
    const fields = readCertificateFields(der);
    const extensions = fields.extensions;
    const byOid = new Map<string, CertificateExtension>();
    for (const extension of extensions) {
      if (byOid.has(extension.oid)) throw new DerError(`extension ${extension.oid} appears twice`);
      byOid.set(extension.oid, extension);
    }
    const basic = byOid.get(OID.basicConstraints);
    const keyUsage = byOid.get(OID.keyUsage);
    const eku = byOid.get(OID.extendedKeyUsage);
    const san = byOid.get(OID.subjectAltName);
    const names = san ? readGeneralNames(san.value) : { uris: [], dnsNames: [], ipAddresses: [] };
    const parsed: ParsedCertificate = {
      der: der.slice(),
      fingerprint: fingerprint(der),
      serialNumber,
      subject,
      issuer,
      notBefore: fields.notBefore,
      notAfter: fields.notAfter,
      basicConstraints: basic ? readBasicConstraints(basic.value) : null,
      keyUsage: keyUsage ? readKeyUsage(keyUsage.value) : null,
      extendedKeyUsage: eku ? readObjectIdentifiers(eku.value) : null,
      ...names,
      extensions,
      subjectPublicKeyInfo: fields.subjectPublicKeyInfo,
      publicKey,
    };
    nodeCertificates.set(parsed, node);
    return parsed;
  } catch (error) {
    if (error instanceof DerError)
      throw malformed(`certificate does not decode: ${error.message}`, error);
    throw error;
  }
}

// The strict DER reader (der.ts) reads the parts of a certificate Node does not expose.

const TAG = {
  ...DER_TAG,
  version: 0xa0,
  extensions: 0xa3,
  dnsName: 0x82,
  uri: 0x86,
  ipAddress: 0x87,
} as const;

interface CertificateFields {
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: readonly CertificateExtension[];
}

/** RFC 5280 §4.1: Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }. */
function readCertificateFields(der: Uint8Array): CertificateFields {
  const certificate = readWhole(der);
  const [tbs] = children(der, expect(certificate, TAG.sequence, 'Certificate'));
  const fields = children(der, expect(tbs, TAG.sequence, 'TBSCertificate'));
  let index = fields[0]?.tag === TAG.version ? 1 : 0;
  expect(fields[index++], TAG.integer, 'serialNumber');
  expect(fields[index++], TAG.sequence, 'signature');
  expect(fields[index++], TAG.sequence, 'issuer');
  const validity = children(der, expect(fields[index++], TAG.sequence, 'validity'));
  expect(fields[index++], TAG.sequence, 'subject');
  const spki = expect(fields[index++], TAG.sequence, 'subjectPublicKeyInfo');
  if (validity.length !== 2) throw new DerError('validity must hold two times');
  const extensions: CertificateExtension[] = [];
  for (const field of fields.slice(index)) {
    if (field.tag !== TAG.extensions) continue; // issuerUniqueID / subjectUniqueID
    const [list, ...rest] = children(der, field);
    if (rest.length > 0) throw new DerError('extensions field holds more than one element');
    for (const extension of children(der, expect(list, TAG.sequence, 'Extensions'))) {
      const parts = children(der, expect(extension, TAG.sequence, 'Extension'));
      const oid = readOid(der, expect(parts[0], TAG.oid, 'extnID'));
      let critical = false;
      let next = 1;
      if (parts[1]?.tag === TAG.boolean) {
        critical = readBoolean(der, parts[1]);
        next = 2;
      }
      const value = expect(parts[next], TAG.octetString, 'extnValue');
      if (parts.length !== next + 1) throw new DerError('extension has extra elements');
      extensions.push({ oid, critical, value: contentOf(der, value).slice() });
    }
  }
  return {
    subjectPublicKeyInfo: der.slice(spki.start, spki.end),
    notBefore: readTime(der, validity[0] as Tlv),
    notAfter: readTime(der, validity[1] as Tlv),
    extensions,
  };
}

/**
 * RFC 5280 §4.1.2.5: a validity time is UTCTime YYMMDDHHMMSSZ for 1950 through 2049 (YY >= 50
 * means 19YY) and GeneralizedTime YYYYMMDDHHMMSSZ from 2050 on, so each instant has exactly
 * one encoding. Every field must be in range (month 1-12, a day the month has, hour 0-23,
 * minute and second 0-59): OpenSSL refuses anything else as "Bad time value", leap second 60
 * included, and a lenient reader would turn 126099 into 13:01:39.
 */
function readTime(bytes: Uint8Array, tlv: Tlv): Date {
  const text = Buffer.from(contentOf(bytes, tlv)).toString('latin1');
  let match: RegExpExecArray | null;
  let year: number;
  if (
    tlv.tag === TAG.utcTime &&
    (match = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text))
  ) {
    const yy = Number(match[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (
    tlv.tag === TAG.generalizedTime &&
    (match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text))
  ) {
    year = Number(match[1]);
    if (year < 2050) {
      throw new DerError(`validity time in ${year} must be UTCTime, not GeneralizedTime`);
    }
  } else {
    throw new DerError('validity time is not UTCTime or GeneralizedTime in Z form');
  }
  const [month, day, hour, minute, second] = match.slice(2).map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    throw new DerError(`validity time ${text} is not a calendar date`);
  }
  if (hour > 23 || minute > 59 || second > 59) {
    throw new DerError(`validity time ${text} is not a time of day`);
  }
  // Date.UTC would read years 0-99 as 1900-1999; setUTCFullYear takes the year as given.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  return date;
}

/** Days in `month` (1-12) of the proleptic Gregorian `year`. */
function daysInMonth(year: number, month: number): number {
  if (month === 2) {
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    return leap ? 29 : 28;
  }
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** RFC 5280 §4.2.1.9 BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL } */
function readBasicConstraints(value: Uint8Array): { ca: boolean; pathLength?: number } {
  const parts = children(value, expect(readWhole(value), TAG.sequence, 'BasicConstraints'));
  let index = 0;
  let ca = false;
  if (parts[index]?.tag === TAG.boolean) ca = readBoolean(value, parts[index++] as Tlv);
  let pathLength: number | undefined;
  if (parts[index]?.tag === TAG.integer) {
    const digits = contentOf(value, parts[index++] as Tlv);
    if (digits.length === 0 || digits.length > 2 || (digits[0] as number) & 0x80) {
      throw new DerError('pathLenConstraint out of range');
    }
    pathLength = digits.reduce((sum, byte) => sum * 256 + byte, 0);
  }
  if (index !== parts.length) throw new DerError('BasicConstraints has extra elements');
  return pathLength === undefined ? { ca } : { ca, pathLength };
}

/** RFC 5280 §4.2.1.3: a BIT STRING whose bit i (from the most significant) maps to flag 1 << i. */
function readKeyUsage(value: Uint8Array): number {
  const bits = contentOf(value, expect(readWhole(value), TAG.bitString, 'KeyUsage'));
  const unused = bits[0];
  if (unused === undefined || unused > 7 || bits.length > 3) throw new DerError('bad KeyUsage');
  // X.690 §11.2.1: the unused bits of the last octet are zero in DER (OpenSSL masks them off;
  // reading them would grant usages OpenSSL does not see).
  if (
    bits.length === 1
      ? unused !== 0
      : ((bits[bits.length - 1] as number) & ((1 << unused) - 1)) !== 0
  ) {
    throw new DerError('KeyUsage has bits set in its unused bits');
  }
  let flags = 0;
  for (let i = 0; i < (bits.length - 1) * 8; i++) {
    if (((bits[1 + (i >> 3)] as number) >> (7 - (i & 7))) & 1) flags |= 1 << i;
  }
  return flags;
}

function readObjectIdentifiers(value: Uint8Array): string[] {
  const list = children(value, expect(readWhole(value), TAG.sequence, 'SEQUENCE OF OID'));
  return list.map((oid) => readOid(value, oid));
}

/** RFC 5280 §4.2.1.6 GeneralNames: URIs, DNS names and IP addresses; other name forms are skipped. */
function readGeneralNames(value: Uint8Array): {
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
} {
  const names = { uris: [] as string[], dnsNames: [] as string[], ipAddresses: [] as string[] };
  for (const name of children(value, expect(readWhole(value), TAG.sequence, 'GeneralNames'))) {
    const bytes = contentOf(value, name);
    if (name.tag === TAG.uri || name.tag === TAG.dnsName) {
      // IA5String: 7-bit ASCII; control characters are never valid in a name.
      if (bytes.some((byte) => byte < 0x21 || byte > 0x7e))
        throw new DerError('name is not printable IA5String');
      (name.tag === TAG.uri ? names.uris : names.dnsNames).push(
        Buffer.from(bytes).toString('latin1'),
      );
    } else if (name.tag === TAG.ipAddress) {
      names.ipAddresses.push(formatIpAddress(bytes));
    }
  }
  return names;
}

function formatIpAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2)
      groups.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
    // The WHATWG URL parser prints the RFC 5952 canonical (compressed) form.
    return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
  }
  throw new DerError('iPAddress must be 4 or 16 bytes');
}

function malformed(
  message: string,
  cause?: unknown,
  detail: Record<string, unknown> = {},
): X509Error {
  return new X509Error(
    X509ErrorCode.MALFORMED_CERTIFICATE,
    message,
    detail,
    cause === undefined ? {} : { cause },
  );
}

function asParsed(certificate: Uint8Array | ParsedCertificate): ParsedCertificate {
  return certificate instanceof Uint8Array ? parseCertificate(certificate) : certificate;
}

function nodeCertificate(certificate: ParsedCertificate): NodeX509Certificate {
  let node = nodeCertificates.get(certificate);
  if (!node) {
    node = new NodeX509Certificate(certificate.der);
    nodeCertificates.set(certificate, node);
  }
  return node;
}

export interface CertificateIdentity {
  readonly cluster: string;
  readonly role: CertificateRole;
  readonly name: string;
  /** `spiffe://<cluster>/<role>/<name>` */
  readonly uri: string;
}

/** SPIFFE trust-domain characters (SPIFFE ID spec §2.1), bounded by X.520 ub-organization-name. */
const CLUSTER_PATTERN = /^[a-z0-9._-]{1,64}$/;
/** SPIFFE path-segment characters (§2.2), bounded by X.520 ub-common-name (64). */
const NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

function checkIdentityPart(kind: 'cluster' | 'name', value: string): boolean {
  const pattern = kind === 'cluster' ? CLUSTER_PATTERN : NAME_PATTERN;
  // "." and ".." are forbidden path segments (SPIFFE ID spec §2.2).
  return typeof value === 'string' && pattern.test(value) && value !== '.' && value !== '..';
}

export function identityUri(cluster: string, role: CertificateRole, name: string): string {
  return `spiffe://${cluster}/${role}/${name}`;
}

/**
 * The identity named by the certificate's single URI SAN (SPIFFE X.509-SVID spec §2: exactly
 * one URI SAN), `spiffe://<cluster>/<role>/<name>`.
 */
export function certificateIdentity(
  certificate: Uint8Array | ParsedCertificate,
): CertificateIdentity {
  const parsed = asParsed(certificate);
  if (parsed.uris.length === 0) {
    throw new X509Error(X509ErrorCode.MISSING_EXTENSION, 'certificate has no identity URI', {
      extension: 'subjectAltName URI',
    });
  }
  if (parsed.uris.length > 1) {
    throw malformed('certificate must carry exactly one URI SAN', undefined, {
      uris: parsed.uris.length,
    });
  }
  const uri = parsed.uris[0] as string;
  const match = /^spiffe:\/\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(uri);
  const [, cluster = '', role = '', name = ''] = match ?? [];
  if (
    !match ||
    !checkIdentityPart('cluster', cluster) ||
    !checkIdentityPart('name', name) ||
    !(CERTIFICATE_ROLES as readonly string[]).includes(role)
  ) {
    throw malformed('identity URI is not spiffe://<cluster>/<role>/<name>', undefined, { uri });
  }
  return { cluster, role: role as CertificateRole, name, uri };
}

/** RFC 8410 §4: SubjectPublicKeyInfo of an Ed25519 key is this fixed prefix plus the raw key. */
const ED25519_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
]);

/** The raw 32-byte Ed25519 subject key. */
export function certificateEd25519Key(certificate: Uint8Array | ParsedCertificate): Uint8Array {
  const parsed = asParsed(certificate);
  if (parsed.publicKey.asymmetricKeyType !== 'ed25519') {
    throw new X509Error(
      X509ErrorCode.UNSUPPORTED_KEY_TYPE,
      'certificate subject key is not Ed25519',
      {
        keyType: parsed.publicKey.asymmetricKeyType ?? null,
      },
    );
  }
  const spki = parsed.subjectPublicKeyInfo;
  if (
    spki.length !== ED25519_SPKI_PREFIX.length + 32 ||
    !bytesEqual(spki.subarray(0, 12), ED25519_SPKI_PREFIX)
  ) {
    throw malformed('Ed25519 SubjectPublicKeyInfo is not in RFC 8410 form');
  }
  return spki.slice(ED25519_SPKI_PREFIX.length);
}

/**
 * Extension value: DER OCTET STRING wrapping deterministic CBOR `{alg: 'falcon-1024-r3', pk}`.
 * The algorithm tag lets FIPS 206 keys be told apart later (ARCHITECTURE.md "Post-quantum").
 */
export function encodeFalconKeyExtension(falconPublicKey: Uint8Array): Uint8Array {
  return octetString(encodeCanonical({ alg: FALCON_ALGORITHM_ID, pk: falconPublicKey }));
}

/** The FALCON-1024 public key certified in the HyperMesh extension. */
export function certificateFalconKey(certificate: Uint8Array | ParsedCertificate): Uint8Array {
  const parsed = asParsed(certificate);
  const matches = parsed.extensions.filter(
    (extension) => extension.oid === FALCON_PUBLIC_KEY_EXTENSION_OID,
  );
  if (matches.length === 0) {
    throw new X509Error(X509ErrorCode.MISSING_EXTENSION, 'certificate carries no FALCON-1024 key', {
      extension: FALCON_PUBLIC_KEY_EXTENSION_OID,
    });
  }
  if (matches.length > 1) throw malformed('FALCON key extension appears more than once');
  const content = readDerOctetString((matches[0] as CertificateExtension).value);
  if (content === null) throw malformed('FALCON key extension is not a DER OCTET STRING');
  let value: unknown;
  try {
    value = decodeCanonical(content);
  } catch (error) {
    throw malformed('FALCON key extension is not deterministic CBOR', error);
  }
  if (!isFalconKeyRecord(value)) {
    throw malformed(`FALCON key extension is not {alg: '${FALCON_ALGORITHM_ID}', pk}`, undefined, {
      extension: FALCON_PUBLIC_KEY_EXTENSION_OID,
    });
  }
  return value.pk.slice();
}

function isFalconKeyRecord(value: unknown): value is { alg: string; pk: Uint8Array } {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    Object.keys(record).length === 2 &&
    record.alg === FALCON_ALGORITHM_ID &&
    isFalconPublicKey(record.pk)
  );
}

function isFalconPublicKey(value: unknown): value is Uint8Array {
  return (
    value instanceof Uint8Array &&
    value.length === FALCON1024_PUBLIC_KEY_BYTES &&
    value[0] === FALCON1024_PUBLIC_KEY_HEADER
  );
}

/** Content of a DER OCTET STRING that spans all of `bytes`, or `null`. */
function readDerOctetString(bytes: Uint8Array): Uint8Array | null {
  try {
    const tlv = readWhole(bytes);
    return tlv.tag === TAG.octetString ? contentOf(bytes, tlv) : null;
  } catch (error) {
    if (error instanceof DerError) return null;
    throw error;
  }
}

export function derToPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const lines = toBase64(der).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Every `label` block in `pem`, in order (a bundle: leaf first, then intermediates). */
export function pemToDerList(pem: string, label = 'CERTIFICATE'): Uint8Array[] {
  const blocks: Uint8Array[] = [];
  const pattern = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
  for (const match of pem.matchAll(pattern)) {
    const [, begin, body = '', end] = match;
    if (begin !== end)
      throw new X509Error(X509ErrorCode.MALFORMED_PEM, 'PEM BEGIN and END labels differ');
    if (begin !== label) continue;
    try {
      blocks.push(fromBase64(body.replace(/\s+/g, '')));
    } catch (error) {
      throw new X509Error(
        X509ErrorCode.MALFORMED_PEM,
        `PEM ${label} block is not base64`,
        {},
        { cause: error },
      );
    }
  }
  if (blocks.length === 0) {
    throw new X509Error(X509ErrorCode.MALFORMED_PEM, `no PEM ${label} block found`, { label });
  }
  return blocks;
}

/** The single `label` block in `pem`. */
export function pemToDer(pem: string, label = 'CERTIFICATE'): Uint8Array {
  const blocks = pemToDerList(pem, label);
  if (blocks.length !== 1) {
    throw new X509Error(X509ErrorCode.MALFORMED_PEM, `expected one PEM ${label} block`, {
      count: blocks.length,
    });
  }
  return blocks[0] as Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Issuance (development CA; the TrustChain CA issue replaces the root with a consensus CA)

export interface CertificateAuthority {
  /** This CA's certificate, DER. */
  readonly certificate: Uint8Array;
  /** ECDSA P-256 signing key (WebCrypto). */
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /**
   * Certificates a peer needs between a leaf issued by this CA and the root: this CA's certificate
   * followed by its issuers', excluding the self-signed root (empty for the root itself).
   */
  readonly issuingChain: readonly Uint8Array[];
}

export interface CreateRootCaOptions {
  readonly cluster: string;
  /** Default 3650. */
  readonly validityDays?: number;
  /** Default `now` minus five minutes, tolerating clock skew between nodes. */
  readonly notBefore?: Date;
  readonly commonName?: string;
  /** Maximum intermediates below the root (RFC 5280 §4.2.1.9); unlimited when omitted. */
  readonly pathLength?: number;
  readonly now?: Date;
}

const DAY_MS = 86_400_000;
const CLOCK_SKEW_MS = 5 * 60_000;

/** A self-signed ECDSA P-256 root: basicConstraints CA (critical), keyCertSign + cRLSign, SKI. */
export async function createRootCa(options: CreateRootCaOptions): Promise<CertificateAuthority> {
  requireIdentityPart('cluster', options.cluster);
  const { notBefore, notAfter } = validityWindow(options);
  const keys = (await webCrypto.subtle.generateKey(ECDSA_P256, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const name: PeculiarX509.JsonName = [
    { CN: [options.commonName ?? `HyperMesh ${options.cluster} root CA`] },
    { O: [options.cluster] },
  ];
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialNumber(),
    name,
    keys,
    notBefore,
    notAfter,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(true, options.pathLength, true),
      new x509.KeyUsagesExtension(KeyUsage.keyCertSign | KeyUsage.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certificate: new Uint8Array(certificate.rawData),
    privateKey: keys.privateKey,
    publicKey: keys.publicKey,
    issuingChain: [],
  };
}

export interface IssueIntermediateOptions {
  readonly issuer: CertificateAuthority;
  readonly commonName: string;
  readonly organization?: string;
  /** Default 1825. */
  readonly validityDays?: number;
  readonly notBefore?: Date;
  readonly pathLength?: number;
  readonly now?: Date;
}

/** An ECDSA P-256 intermediate CA (e.g. one per validator, ARCHITECTURE.md). */
export async function issueIntermediate(
  options: IssueIntermediateOptions,
): Promise<CertificateAuthority> {
  if (
    typeof options.commonName !== 'string' ||
    options.commonName.length === 0 ||
    options.commonName.length > 64
  ) {
    throw new X509Error(
      X509ErrorCode.INVALID_ARGUMENT,
      'intermediate commonName must be 1..64 characters',
    );
  }
  const { notBefore, notAfter } = validityWindow({
    ...options,
    validityDays: options.validityDays ?? 1825,
  });
  const keys = (await webCrypto.subtle.generateKey(ECDSA_P256, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const subject: PeculiarX509.JsonName = [
    { CN: [options.commonName] },
    ...(options.organization === undefined ? [] : [{ O: [options.organization] }]),
  ];
  const der = await signCertificate(options.issuer, {
    subject,
    publicKey: keys.publicKey,
    notBefore,
    notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(true, options.pathLength ?? 0, true),
      new x509.KeyUsagesExtension(KeyUsage.keyCertSign | KeyUsage.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certificate: der,
    privateKey: keys.privateKey,
    publicKey: keys.publicKey,
    issuingChain: [der, ...options.issuer.issuingChain],
  };
}

export interface IssueNodeCertificateOptions {
  readonly issuer: CertificateAuthority;
  /** Raw 32-byte Ed25519 transport key: the certificate's subject key. */
  readonly subjectEd25519PublicKey: Uint8Array;
  /** 1793-byte FALCON-1024 public key, carried in the HyperMesh extension. */
  readonly falconPublicKey: Uint8Array;
  readonly cluster: string;
  readonly role: CertificateRole;
  readonly name: string;
  /** X.509 times have whole-second precision; milliseconds are truncated. */
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

export interface IssuedCertificate {
  readonly certificate: Uint8Array;
  /** Leaf first, then the issuer's `issuingChain`: what the node presents to peers. */
  readonly chain: readonly Uint8Array[];
}

/** A lowercase host name as certificates here carry it (labels of 1–63, at most 253 in all). */
export const DNS_NAME_PATTERN =
  /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A node (or validator, or client) certificate: subject key = Ed25519 transport key, SAN URI
 * `spiffe://<cluster>/<role>/<name>` (plus optional DNS/IP names), EKU serverAuth + clientAuth,
 * keyUsage digitalSignature (critical), the FALCON-1024 key extension, SKI/AKI, and a random
 * positive 128-bit serial (CA/Browser Forum BR §7.1: at least 64 bits of CSPRNG output).
 */
export async function issueNodeCertificate(
  options: IssueNodeCertificateOptions,
): Promise<IssuedCertificate> {
  const { subjectEd25519PublicKey, falconPublicKey, cluster, role, name } = options;
  if (!(subjectEd25519PublicKey instanceof Uint8Array) || subjectEd25519PublicKey.length !== 32) {
    throw new X509Error(X509ErrorCode.INVALID_ARGUMENT, 'Ed25519 public key must be 32 raw bytes');
  }
  if (!isFalconPublicKey(falconPublicKey)) {
    throw new X509Error(X509ErrorCode.INVALID_ARGUMENT, 'not a FALCON-1024 public key', {
      length:
        (falconPublicKey as unknown) instanceof Uint8Array
          ? (falconPublicKey as Uint8Array).length
          : null,
    });
  }
  requireIdentityPart('cluster', cluster);
  requireIdentityPart('name', name);
  if (!CERTIFICATE_ROLES.includes(role)) {
    throw new X509Error(
      X509ErrorCode.INVALID_ARGUMENT,
      `role must be one of ${CERTIFICATE_ROLES.join(', ')}`,
    );
  }
  requireWindow(options.notBefore, options.notAfter);
  const dnsNames = options.dnsNames ?? [];
  const ipAddresses = options.ipAddresses ?? [];
  for (const dnsName of dnsNames) {
    if (!DNS_NAME_PATTERN.test(dnsName)) {
      throw new X509Error(X509ErrorCode.INVALID_ARGUMENT, 'DNS name is not a lowercase hostname', {
        dnsName,
      });
    }
  }
  for (const ip of ipAddresses) {
    if (isIP(ip) === 0)
      throw new X509Error(X509ErrorCode.INVALID_ARGUMENT, 'not an IP address', { ip });
  }
  const spki = new Uint8Array(ED25519_SPKI_PREFIX.length + 32);
  spki.set(ED25519_SPKI_PREFIX);
  spki.set(subjectEd25519PublicKey, ED25519_SPKI_PREFIX.length);
  const der = await signCertificate(options.issuer, {
    subject: [{ CN: [name] }, { OU: [role] }, { O: [cluster] }],
    publicKey: spki,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(KeyUsage.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([OID.serverAuth, OID.clientAuth], false),
      new x509.SubjectAlternativeNameExtension(
        [
          { type: 'url', value: identityUri(cluster, role, name) },
          ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
          ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
        ],
        false,
      ),
      await x509.SubjectKeyIdentifierExtension.create(spki),
      new x509.Extension(
        FALCON_PUBLIC_KEY_EXTENSION_OID,
        false,
        encodeFalconKeyExtension(falconPublicKey),
      ),
    ],
  });
  return { certificate: der, chain: [der, ...options.issuer.issuingChain] };
}

interface CertificateBody {
  readonly subject: PeculiarX509.JsonName;
  readonly publicKey: CryptoKey | Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: PeculiarX509.Extension[];
}

async function signCertificate(
  issuer: CertificateAuthority,
  body: CertificateBody,
): Promise<Uint8Array> {
  const issuerCertificate = new x509.X509Certificate(issuer.certificate);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: body.subject,
    issuer: issuerCertificate.subjectName,
    notBefore: body.notBefore,
    notAfter: body.notAfter,
    publicKey: body.publicKey,
    signingKey: issuer.privateKey,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      ...body.extensions,
      await x509.AuthorityKeyIdentifierExtension.create(issuer.publicKey),
    ],
  });
  return new Uint8Array(certificate.rawData);
}

/**
 * 16 random bytes as a positive DER INTEGER: top bit cleared (RFC 5280 §4.1.2.2 serials are
 * positive) and a non-zero first byte so the encoding stays 16 bytes and minimal.
 */
function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f;
  if (bytes[0] === 0) bytes[0] = 0x01;
  return bytes.toString('hex');
}

function requireIdentityPart(kind: 'cluster' | 'name', value: string): void {
  if (!checkIdentityPart(kind, value)) {
    throw new X509Error(
      X509ErrorCode.INVALID_ARGUMENT,
      kind === 'cluster'
        ? 'cluster must be 1..64 of [a-z0-9._-] (a SPIFFE trust domain)'
        : 'name must be 1..64 of [A-Za-z0-9._-] (a SPIFFE path segment)',
      { [kind]: value },
    );
  }
}

function requireWindow(notBefore: Date, notAfter: Date): void {
  if (
    !(notBefore instanceof Date) ||
    !(notAfter instanceof Date) ||
    Number.isNaN(notBefore.getTime()) ||
    Number.isNaN(notAfter.getTime()) ||
    notAfter.getTime() <= notBefore.getTime()
  ) {
    throw new X509Error(
      X509ErrorCode.INVALID_ARGUMENT,
      'validity needs valid dates with notBefore < notAfter',
    );
  }
  // RFC 5280 §4.1.2.5: UTCTime covers 1950-2049 and GeneralizedTime has four year digits, so a
  // time outside 1950..9999 has no encoding this module (or any verifier) reads back.
  for (const [name, date] of [
    ['notBefore', notBefore],
    ['notAfter', notAfter],
  ] as const) {
    const year = date.getUTCFullYear();
    if (year < 1950 || year > 9999) {
      throw new X509Error(
        X509ErrorCode.INVALID_ARGUMENT,
        `${name} falls in year ${year}; X.509 validity times must lie in 1950..9999`,
        { [name]: year },
      );
    }
  }
}

function validityWindow(options: { validityDays?: number; notBefore?: Date; now?: Date }): {
  notBefore: Date;
  notAfter: Date;
} {
  const days = options.validityDays ?? 3650;
  if (!Number.isFinite(days) || days <= 0) {
    throw new X509Error(X509ErrorCode.INVALID_ARGUMENT, 'validityDays must be positive');
  }
  const now = options.now ?? new Date();
  const notBefore = options.notBefore ?? new Date(now.getTime() - CLOCK_SKEW_MS);
  const notAfter = new Date(notBefore.getTime() + days * DAY_MS);
  requireWindow(notBefore, notAfter);
  return { notBefore, notAfter };
}

export interface ExportedCertificateAuthority {
  readonly certificate: Uint8Array;
  /** PKCS#8 DER of the ECDSA P-256 signing key. Keep it offline (ARCHITECTURE.md). */
  readonly privateKeyPkcs8: Uint8Array;
  readonly issuingChain: readonly Uint8Array[];
}

export async function exportCertificateAuthority(
  ca: CertificateAuthority,
): Promise<ExportedCertificateAuthority> {
  const pkcs8 = await webCrypto.subtle.exportKey('pkcs8', ca.privateKey);
  return {
    certificate: ca.certificate,
    privateKeyPkcs8: new Uint8Array(pkcs8),
    issuingChain: ca.issuingChain,
  };
}

/** Loads a CA saved by `exportCertificateAuthority`; the key must match the certificate. */
export async function importCertificateAuthority(
  exported: ExportedCertificateAuthority,
): Promise<CertificateAuthority> {
  const parsed = parseCertificate(exported.certificate);
  if (!parsed.basicConstraints?.ca) {
    throw new X509Error(X509ErrorCode.INVALID_ARGUMENT, 'certificate is not a CA certificate');
  }
  let privateKey: CryptoKey;
  try {
    privateKey = await webCrypto.subtle.importKey(
      'pkcs8',
      exported.privateKeyPkcs8,
      ECDSA_P256,
      true,
      ['sign'],
    );
  } catch (error) {
    throw new X509Error(
      X509ErrorCode.INVALID_ARGUMENT,
      'CA private key is not ECDSA P-256 PKCS#8',
      {},
      { cause: error },
    );
  }
  const publicKey = await new x509.X509Certificate(exported.certificate).publicKey.export(
    ECDSA_P256,
    ['verify'],
  );
  const probe = new Uint8Array(32);
  const signature = await webCrypto.subtle.sign(ECDSA_SHA256, privateKey, probe);
  if (!(await webCrypto.subtle.verify(ECDSA_SHA256, publicKey, signature, probe))) {
    throw new X509Error(
      X509ErrorCode.INVALID_ARGUMENT,
      'CA private key does not match its certificate',
    );
  }
  return {
    certificate: exported.certificate,
    privateKey,
    publicKey,
    issuingChain: exported.issuingChain,
  };
}

// ---------------------------------------------------------------------------------------------
// Path validation (RFC 5280 §6.1, restricted to what STOQ needs: no policies, no name constraints)

export interface VerifyChainOptions {
  /** Leaf first, then intermediates, DER or parsed. Certificates after the one a root signed (e.g. a copy of the root) are ignored. */
  readonly chain: readonly (Uint8Array | ParsedCertificate)[];
  readonly roots: readonly (Uint8Array | ParsedCertificate)[];
  readonly now: Date;
  /** Extended key usage the leaf must allow; default `any`. */
  readonly purpose?: CertificatePurpose;
}

export interface VerifiedChain {
  readonly leaf: ParsedCertificate;
  /** Leaf, intermediates, then the trust root that anchored the path. */
  readonly path: readonly ParsedCertificate[];
  readonly root: ParsedCertificate;
}

/** Parses trust roots once, e.g. at configuration time; they must be CA certificates. */
export function parseTrustRoots(
  roots: readonly (Uint8Array | ParsedCertificate)[],
): ParsedCertificate[] {
  return roots.map((root, index) => {
    let parsed: ParsedCertificate;
    try {
      parsed = asParsed(root);
    } catch (error) {
      throw new X509Error(
        X509ErrorCode.INVALID_ARGUMENT,
        `trust root ${index} does not parse`,
        { index },
        { cause: error },
      );
    }
    if (!parsed.basicConstraints?.ca) {
      throw new X509Error(
        X509ErrorCode.INVALID_ARGUMENT,
        `trust root ${index} is not a CA certificate`,
        { index },
      );
    }
    return parsed;
  });
}

/**
 * Verifies `chain` to one of `roots` at time `now`. Order of checks: parse every certificate,
 * then build the path (issuer name and key identifiers via OpenSSL's `X509_check_issued`,
 * signature with the issuer's key, CA basic constraints and path length on every issuer), then
 * validity of every certificate on the path including the root, then the leaf's key usage.
 * Throws `X509Error` with the code of the first failure.
 */
export function verifyChain(options: VerifyChainOptions): VerifiedChain {
  const { chain, now } = options;
  if (chain.length === 0)
    throw new X509Error(X509ErrorCode.NO_CERTIFICATE, 'no certificate presented');
  if (chain.length > MAX_CHAIN_LENGTH) {
    throw malformed('certificate chain is too long', undefined, {
      length: chain.length,
      max: MAX_CHAIN_LENGTH,
    });
  }
  const roots = parseTrustRoots(options.roots);
  const presented = chain.map((certificate, index) => {
    try {
      return asParsed(certificate);
    } catch (error) {
      if (error instanceof X509Error) {
        throw new X509Error(
          error.code,
          `certificate ${index}: ${error.message}`,
          { ...error.detail, index },
          { cause: error },
        );
      }
      throw error;
    }
  });
  for (const [index, certificate] of presented.entries()) {
    const unknown = certificate.extensions.find(
      (ext) => ext.critical && !UNDERSTOOD_EXTENSIONS.has(ext.oid),
    );
    if (unknown) {
      throw malformed(`certificate ${index} has an unsupported critical extension`, undefined, {
        index,
        oid: unknown.oid,
      });
    }
  }

  const leaf = presented[0] as ParsedCertificate;
  const path: ParsedCertificate[] = [leaf];
  let root: ParsedCertificate | null = null;
  for (let depth = 0; root === null; depth++) {
    const current = path[depth] as ParsedCertificate;
    const anchor = roots.find((candidate) => issuedBy(current, candidate));
    if (anchor) {
      path.push(anchor);
      root = anchor;
      break;
    }
    const next = presented[depth + 1];
    if (next === undefined || !issuedBy(current, next)) {
      throw new X509Error(
        X509ErrorCode.UNKNOWN_CA,
        'certificate chain does not lead to a trusted root',
        {
          depth,
          issuer: current.issuer,
        },
      );
    }
    path.push(next);
  }

  for (let depth = 1; depth < path.length; depth++) {
    const issuer = path[depth] as ParsedCertificate;
    if (
      !issuer.basicConstraints?.ca ||
      (issuer.keyUsage !== null && !(issuer.keyUsage & KeyUsage.keyCertSign))
    ) {
      throw new X509Error(
        X509ErrorCode.UNKNOWN_CA,
        'an issuer on the path is not a CA certificate',
        {
          depth,
          subject: issuer.subject,
        },
      );
    }
    // RFC 5280 §4.2.1.9: pathLenConstraint counts the non-self-issued intermediates below it.
    const pathLength = issuer.basicConstraints.pathLength;
    if (pathLength !== undefined && depth - 1 > pathLength) {
      throw new X509Error(X509ErrorCode.UNKNOWN_CA, 'path length constraint exceeded', {
        depth,
        pathLength,
      });
    }
  }

  for (const [depth, certificate] of path.entries()) {
    if (now.getTime() < certificate.notBefore.getTime()) {
      throw new X509Error(X509ErrorCode.NOT_YET_VALID, 'certificate is not yet valid', {
        depth,
        subject: certificate.subject,
        notBefore: certificate.notBefore.toISOString(),
      });
    }
    if (now.getTime() > certificate.notAfter.getTime()) {
      throw new X509Error(X509ErrorCode.EXPIRED, 'certificate has expired', {
        depth,
        subject: certificate.subject,
        notAfter: certificate.notAfter.toISOString(),
      });
    }
  }

  checkLeafUsage(leaf, options.purpose ?? 'any');
  return { leaf, path, root: root as ParsedCertificate };
}

/**
 * Issuers whose signature on a certificate already verified, by certificate. A signature over
 * fixed bytes by a fixed key verifies once or never, so a positive answer holds as long as the
 * parsed certificate lives (callers that cache parsed certificates skip the ECDSA verification
 * on later handshakes). Failures are not remembered: that would let a peer grow the set.
 */
const verifiedIssuers = new WeakMap<ParsedCertificate, Set<string>>();

function issuedBy(child: ParsedCertificate, issuer: ParsedCertificate): boolean {
  const known = verifiedIssuers.get(child);
  if (known?.has(issuer.fingerprint)) return true;
  try {
    const childNode = nodeCertificate(child);
    const issuerNode = nodeCertificate(issuer);
    if (!childNode.checkIssued(issuerNode) || !childNode.verify(issuerNode.publicKey)) return false;
  } catch {
    return false;
  }
  if (known) known.add(issuer.fingerprint);
  else verifiedIssuers.set(child, new Set([issuer.fingerprint]));
  return true;
}

function checkLeafUsage(leaf: ParsedCertificate, purpose: CertificatePurpose): void {
  if (leaf.basicConstraints?.ca) {
    throw new X509Error(
      X509ErrorCode.WRONG_KEY_USAGE,
      'a CA certificate cannot be an end-entity certificate',
    );
  }
  if (leaf.keyUsage !== null && !(leaf.keyUsage & KeyUsage.digitalSignature)) {
    throw new X509Error(X509ErrorCode.WRONG_KEY_USAGE, 'leaf key usage lacks digitalSignature', {
      keyUsage: leaf.keyUsage,
    });
  }
  if (purpose !== 'any' && leaf.extendedKeyUsage !== null) {
    const wanted = OID[purpose];
    if (
      !leaf.extendedKeyUsage.includes(wanted) &&
      !leaf.extendedKeyUsage.includes(OID.anyExtendedKeyUsage)
    ) {
      throw new X509Error(
        X509ErrorCode.WRONG_KEY_USAGE,
        `leaf extended key usage does not allow ${purpose}`,
        {
          extendedKeyUsage: leaf.extendedKeyUsage,
        },
      );
    }
  }
}
