import type { KeyObject } from 'node:crypto';
import { createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { p256RawPrivateKey } from '../../crypto/p256.js';
import { sha256 } from '../../crypto/hash.js';
import {
  DerError,
  TAG,
  bitString,
  booleanTrue,
  children,
  constructed,
  contentOf,
  contextConstructed,
  contextPrimitive,
  encodingOf,
  expect,
  integerFromMagnitude,
  octetString,
  oid,
  readBoolean,
  readOctetAlignedBitString,
  readOid,
  readUtf8,
  readWhole,
  sequence,
  setOf,
  time,
  tlv,
  unsignedInteger,
  utf8String,
  type Tlv,
} from './der.js';
import { ipAddressBytes } from './names.js';

/**
 * X.509 v3 certificates written byte by byte (RFC 5280 §4.1), so that a TBSCertificate is a
 * pure function of its inputs, and ECDSA P-256 signers over them. Every certificate the CA
 * makes (root, intermediates, leaves) is signed with ecdsa-with-SHA256.
 */

export const OIDS = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organizationalUnit: '2.5.4.11',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extendedKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  nameConstraints: '2.5.29.30',
} as const;

/** AlgorithmIdentifier for ecdsa-with-SHA256: parameters absent (RFC 5758 §3.2). */
export const ECDSA_WITH_SHA256 = sequence(oid(OIDS.ecdsaWithSha256));

export interface Extension {
  readonly oid: string;
  readonly critical: boolean;
  /** The DER value inside extnValue's OCTET STRING. */
  readonly value: Uint8Array;
}

/** RFC 5280 §4.1: critical is DEFAULT FALSE, so DER omits it when false. */
export function encodeExtension(extension: Extension): Uint8Array {
  return extension.critical
    ? sequence(oid(extension.oid), booleanTrue(), octetString(extension.value))
    : sequence(oid(extension.oid), octetString(extension.value));
}

export type NamePart = readonly ['CN' | 'OU' | 'O', string];

const NAME_OIDS = { CN: OIDS.commonName, OU: OIDS.organizationalUnit, O: OIDS.organization };

/** An RDNSequence with one UTF8String attribute per RDN, in the given order. */
export function encodeName(parts: readonly NamePart[]): Uint8Array {
  return sequence(
    ...parts.map(([type, value]) => setOf(sequence(oid(NAME_OIDS[type]), utf8String(value)))),
  );
}

/** The UTF8String value of the first attribute `type` in a DER Name, or `null`. */
export function readNameAttribute(name: Uint8Array, type: NamePart[0]): string | null {
  for (const rdn of children(name, expect(readWhole(name), TAG.sequence, 'Name'))) {
    for (const attribute of children(name, expect(rdn, TAG.set, 'RelativeDistinguishedName'))) {
      const [id, value] = children(name, expect(attribute, TAG.sequence, 'AttributeTypeAndValue'));
      if (
        id !== undefined &&
        readOid(name, id) === NAME_OIDS[type] &&
        value?.tag === TAG.utf8String
      ) {
        return readUtf8(name, value);
      }
    }
  }
  return null;
}

export function basicConstraints(ca: boolean, pathLength?: number): Extension {
  const parts: Uint8Array[] = [];
  if (ca) parts.push(booleanTrue());
  if (pathLength !== undefined) parts.push(unsignedInteger(pathLength));
  return { oid: OIDS.basicConstraints, critical: true, value: sequence(...parts) };
}

/** RFC 5280 §4.2.1.3 KeyUsage; X.690 §11.2.2 drops trailing zero bits of a named bit list. */
export function keyUsage(bits: readonly number[]): Extension {
  const highest = Math.max(...bits);
  const bytes = new Uint8Array((highest >> 3) + 1);
  for (const bit of bits) bytes[bit >> 3] = (bytes[bit >> 3] as number) | (0x80 >> (bit & 7));
  const unused = 7 - (highest & 7);
  return { oid: OIDS.keyUsage, critical: true, value: bitString(bytes, unused) };
}

export function extendedKeyUsage(purposes: readonly string[]): Extension {
  return { oid: OIDS.extendedKeyUsage, critical: false, value: sequence(...purposes.map(oid)) };
}

const ascii = new TextEncoder();

export interface SubjectNames {
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly uris: readonly string[];
}

/**
 * subjectAltName with dNSName [2], iPAddress [7] and URI [6] entries in that order. It must be
 * critical when the subject is empty (RFC 5280 §4.2.1.6).
 */
export function subjectAltName(names: SubjectNames, critical: boolean): Extension {
  return {
    oid: OIDS.subjectAltName,
    critical,
    value: sequence(
      ...names.dnsNames.map((name) => tlv(contextPrimitive(2), ascii.encode(name))),
      ...names.ipAddresses.map((ip) => tlv(contextPrimitive(7), ipAddressBytes(ip))),
      ...names.uris.map((uri) => tlv(contextPrimitive(6), ascii.encode(uri))),
    ),
  };
}

/** RFC 7093 §2 method 1: the leftmost 160 bits of SHA-256 of the subjectPublicKey bits. */
export function keyIdentifier(subjectPublicKeyInfo: Uint8Array): Uint8Array {
  const parts = children(subjectPublicKeyInfo, readWhole(subjectPublicKeyInfo));
  const keyBits = readOctetAlignedBitString(subjectPublicKeyInfo, parts[1] as Tlv);
  return sha256(keyBits).slice(0, 20);
}

export function subjectKeyIdentifier(keyId: Uint8Array): Extension {
  return { oid: OIDS.subjectKeyIdentifier, critical: false, value: octetString(keyId) };
}

/** AuthorityKeyIdentifier with only keyIdentifier [0] (RFC 5280 §4.2.1.1). */
export function authorityKeyIdentifier(keyId: Uint8Array): Extension {
  return {
    oid: OIDS.authorityKeyIdentifier,
    critical: false,
    value: sequence(tlv(contextPrimitive(0), keyId)),
  };
}

/**
 * nameConstraints permitting only URIs whose host is `host` (RFC 5280 §4.2.1.10). Non-critical
 * (see docs/ca.md: src/crypto/x509.ts refuses unknown critical extensions; OpenSSL enforces name
 * constraints whatever their criticality).
 */
export function permittedUriHost(host: string): Extension {
  const subtree = sequence(tlv(contextPrimitive(6), ascii.encode(host)));
  return {
    oid: OIDS.nameConstraints,
    critical: false,
    value: sequence(constructed(contextConstructed(0), subtree)),
  };
}

export interface TbsInput {
  /** Unsigned big-endian serial number magnitude (RFC 5280 §4.1.2.2: positive, ≤ 20 octets). */
  readonly serial: Uint8Array;
  readonly issuerName: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectName: Uint8Array;
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly extensions: readonly Extension[];
}

/** TBSCertificate (RFC 5280 §4.1.1.1) of a v3 certificate signed with ecdsa-with-SHA256. */
export function buildTbs(input: TbsInput): Uint8Array {
  return sequence(
    constructed(contextConstructed(0), unsignedInteger(2)),
    integerFromMagnitude(input.serial),
    ECDSA_WITH_SHA256,
    input.issuerName,
    sequence(time(input.notBefore), time(input.notAfter)),
    input.subjectName,
    input.subjectPublicKeyInfo,
    constructed(contextConstructed(3), sequence(...input.extensions.map(encodeExtension))),
  );
}

export function assembleCertificate(tbs: Uint8Array, signature: Uint8Array): Uint8Array {
  return sequence(tbs, ECDSA_WITH_SHA256, bitString(signature));
}

export interface CertificateParts {
  readonly tbs: Uint8Array;
  readonly signatureAlgorithm: Uint8Array;
  /** DER ECDSA-Sig-Value (or whatever the BIT STRING holds). */
  readonly signature: Uint8Array;
}

/** Splits a certificate into TBS, signature algorithm and signature (strict DER). */
export function splitCertificate(der: Uint8Array): CertificateParts {
  const parts = children(der, expect(readWhole(der), TAG.sequence, 'Certificate'));
  if (parts.length !== 3) throw new DerError('Certificate must have three elements');
  return {
    tbs: encodingOf(der, expect(parts[0], TAG.sequence, 'TBSCertificate')),
    signatureAlgorithm: encodingOf(der, expect(parts[1], TAG.sequence, 'signatureAlgorithm')),
    signature: readOctetAlignedBitString(der, parts[2] as Tlv),
  };
}

export interface TbsFields {
  readonly serial: Uint8Array;
  readonly issuerName: Uint8Array;
  readonly subjectName: Uint8Array;
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly extensions: readonly (Extension & { readonly encoding: Uint8Array })[];
}

/** The fields of a v3 TBSCertificate the CA needs (its own and its intermediates'). */
export function readTbs(tbs: Uint8Array): TbsFields {
  const fields = children(tbs, expect(readWhole(tbs), TAG.sequence, 'TBSCertificate'));
  if (fields.length !== 8) throw new DerError('expected a v3 TBSCertificate with extensions');
  expect(fields[0], contextConstructed(0), 'version');
  const serial = contentOf(tbs, expect(fields[1], TAG.integer, 'serialNumber'));
  const extensionsWrapper = expect(fields[7], contextConstructed(3), 'extensions');
  const [list, ...more] = children(tbs, extensionsWrapper);
  if (more.length > 0) throw new DerError('extensions [3] holds more than one element');
  const extensions = children(tbs, expect(list, TAG.sequence, 'Extensions')).map((element) => {
    const parts = children(tbs, expect(element, TAG.sequence, 'Extension'));
    const id = readOid(tbs, parts[0] as Tlv);
    const critical = parts.length === 3 ? readBoolean(tbs, parts[1] as Tlv) : false;
    if (parts.length === 3 && !critical) throw new DerError('critical FALSE must be omitted');
    if (parts.length < 2 || parts.length > 3) throw new DerError('Extension shape');
    const value = contentOf(tbs, expect(parts[parts.length - 1], TAG.octetString, 'extnValue'));
    return { oid: id, critical, value, encoding: encodingOf(tbs, element) };
  });
  return {
    serial,
    issuerName: encodingOf(tbs, expect(fields[3], TAG.sequence, 'issuer')),
    subjectName: encodingOf(tbs, expect(fields[5], TAG.sequence, 'subject')),
    subjectPublicKeyInfo: encodingOf(tbs, expect(fields[6], TAG.sequence, 'subjectPublicKeyInfo')),
    extensions,
  };
}

/**
 * The TBSCertificate with the extension `extensionOid` removed and every enclosing length
 * re-encoded; all other bytes are kept as they are. Throws when the extension is absent.
 */
export function withoutExtension(tbs: Uint8Array, extensionOid: string): Uint8Array {
  const fields = children(tbs, readWhole(tbs));
  const wrapper = fields[7] as Tlv;
  const list = children(tbs, wrapper)[0] as Tlv;
  const kept: Uint8Array[] = [];
  let removed = 0;
  for (const element of children(tbs, list)) {
    const first = children(tbs, element)[0] as Tlv;
    if (readOid(tbs, first) === extensionOid) removed++;
    else kept.push(encodingOf(tbs, element));
  }
  if (removed !== 1) throw new DerError(`extension ${extensionOid} must appear exactly once`);
  return sequence(
    ...fields.slice(0, 7).map((field) => encodingOf(tbs, field)),
    constructed(contextConstructed(3), sequence(...kept)),
  );
}

/**
 * The TBSCertificate with `extension` appended as its last extension and every enclosing length
 * re-encoded; all other bytes are kept as they are. For a TBS that `buildTbs` wrote with
 * extensions `e`, this is byte for byte `buildTbs` with `[...e, extension]`, without encoding
 * the names, keys and other extensions again (issue.ts builds each issued certificate's TBS
 * from its Merkle leaf this way).
 */
export function withExtensionAppended(tbs: Uint8Array, extension: Extension): Uint8Array {
  const fields = children(tbs, expect(readWhole(tbs), TAG.sequence, 'TBSCertificate'));
  if (fields.length !== 8) throw new DerError('expected a v3 TBSCertificate with extensions');
  const [list, ...more] = children(tbs, expect(fields[7], contextConstructed(3), 'extensions'));
  if (more.length > 0) throw new DerError('extensions [3] holds more than one element');
  const extensions = contentOf(tbs, expect(list, TAG.sequence, 'Extensions'));
  return sequence(
    ...fields.slice(0, 7).map((field) => encodingOf(tbs, field)),
    constructed(contextConstructed(3), sequence(extensions, encodeExtension(extension))),
  );
}

// ---------------------------------------------------------------------------------------------
// Signing

/** Order n of the P-256 group (SEC 2 v2 §2.4.2). */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

export interface CertificateSigner {
  /** The issuer's P-256 public key. */
  readonly publicKey: KeyObject;
  /** True when equal inputs always give equal signatures (RFC 6979). */
  readonly deterministic: boolean;
  /** ECDSA-with-SHA256 over `tbs`: a DER ECDSA-Sig-Value with s ≤ n/2. */
  sign(tbs: Uint8Array): Uint8Array;
}

function requireP256PrivateKey(privateKey: KeyObject): void {
  if (
    privateKey.type !== 'private' ||
    privateKey.asymmetricKeyType !== 'ec' ||
    privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
  ) {
    throw new TypeError('certificate signers need a P-256 private key');
  }
}

/**
 * RFC 6979 deterministic ECDSA (@noble/curves), low-S: re-signing the same TBS with the same key
 * gives the same certificate bytes, so a restarted proposer re-issues identical certificates.
 * About 1 ms per signature here (pure JS), against ~0.05 ms for `createRandomizedSigner`.
 */
export function createDeterministicSigner(privateKey: KeyObject): CertificateSigner {
  requireP256PrivateKey(privateKey);
  const scalar = p256RawPrivateKey(privateKey);
  return {
    publicKey: createPublicKey(privateKey),
    deterministic: true,
    sign: (tbs) => p256.sign(tbs, scalar, { format: 'der', lowS: true, prehash: true }),
  };
}

/** OpenSSL's randomized ECDSA (node:crypto), normalized to low S. */
export function createRandomizedSigner(privateKey: KeyObject): CertificateSigner {
  requireP256PrivateKey(privateKey);
  return {
    publicKey: createPublicKey(privateKey),
    deterministic: false,
    sign: (tbs) =>
      normalizeLowS(
        new Uint8Array(nodeSign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' })),
      ),
  };
}

function readSignature(signature: Uint8Array): { r: bigint; s: bigint } {
  const parts = children(signature, expect(readWhole(signature), TAG.sequence, 'ECDSA-Sig-Value'));
  if (parts.length !== 2) throw new DerError('ECDSA-Sig-Value shape');
  const read = (element: Tlv): bigint => {
    const value = contentOf(signature, expect(element, TAG.integer, 'INTEGER'));
    let n = 0n;
    for (const byte of value) n = (n << 8n) | BigInt(byte);
    return n;
  };
  return { r: read(parts[0] as Tlv), s: read(parts[1] as Tlv) };
}

function normalizeLowS(signature: Uint8Array): Uint8Array {
  const { r, s } = readSignature(signature);
  return s <= P256_N / 2n ? signature : sequence(unsignedInteger(r), unsignedInteger(P256_N - s));
}

/** Whether a DER ECDSA signature has s ≤ n/2 (the form every signer here produces). */
export function isLowS(signature: Uint8Array): boolean {
  try {
    return readSignature(signature).s <= P256_N / 2n;
  } catch {
    return false;
  }
}

export function verifyEcdsaSha256(
  data: Uint8Array,
  signature: Uint8Array,
  publicKey: KeyObject,
): boolean {
  try {
    return nodeVerify('sha256', data, { key: publicKey, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}
