import type { KeyObject } from 'node:crypto';
import { constants, createPublicKey, sign, verify } from 'node:crypto';
import { fromBase64 } from '../../crypto/bytes.js';
import { isSmallOrderEd25519Key } from '../../crypto/ed25519.js';
import {
  DerError,
  TAG,
  bitString,
  children,
  constructed,
  contentOf,
  contextConstructed,
  derNull,
  encodingOf,
  expect,
  octetString,
  oid,
  readOctetAlignedBitString,
  readOid,
  readPrintableAscii,
  readSmallUnsigned,
  readUtf8,
  readWhole,
  sequence,
  setOf,
  tlv,
  unsignedInteger,
  utf8String,
  type Tlv,
} from './der.js';
import { CaErrorCode, caError } from './errors.js';
import { ipAddressBytes } from './names.js';

/**
 * PKCS#10 certificate signing requests (RFC 2986): a strict parser that verifies the
 * self-signature and refuses every key and algorithm outside the supported set with a precise
 * code, and a builder (for validators' intermediate requests and for tests).
 *
 * Supported subject keys: ECDSA P-256 (uncompressed point), Ed25519, RSA 2048–8192 bits with an
 * odd public exponent in [65537, 2^256 - 1] (CA/Browser Forum BR §6.1.5–6.1.6). Supported signatures:
 * ECDSA with SHA-256/384/512, Ed25519, RSASSA-PKCS1-v1_5 with SHA-256/384/512.
 */

export type CsrKeyType = 'p256' | 'ed25519' | 'rsa';

/** Largest DER CSR accepted: an RSA-8192 request with a hundred names fits easily. */
export const MAX_CSR_BYTES = 16 * 1024;
/** Largest PEM text accepted. */
export const MAX_CSR_PEM_LENGTH = 24 * 1024;
export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 8192;
/** Largest RSA public exponent accepted: 2^256 - 1 (CA/Browser Forum BR §6.1.6). */
export const MAX_RSA_EXPONENT = 2n ** 256n - 1n;

export interface CsrNames {
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly uris: readonly string[];
  /** GeneralName forms other than dNSName, iPAddress and URI (e.g. rfc822Name). */
  readonly otherNames: number;
}

export interface ParsedCsr {
  readonly der: Uint8Array;
  readonly keyType: CsrKeyType;
  /** RSA modulus length in bits; `null` for other keys. */
  readonly rsaBits: number | null;
  /** The exact DER SubjectPublicKeyInfo, copied into the certificate. */
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly publicKey: KeyObject;
  /** The subject's commonName, or `null` when it has none. */
  readonly commonName: string | null;
  /** The subjectAltName of the extensionRequest attribute (RFC 2985 §5.4.2), or `null`. */
  readonly requestedNames: CsrNames | null;
  readonly signatureAlgorithm: CsrSignatureAlgorithm;
}

export type CsrSignatureAlgorithm =
  | 'ecdsa-with-SHA256'
  | 'ecdsa-with-SHA384'
  | 'ecdsa-with-SHA512'
  | 'ed25519'
  | 'sha256WithRSAEncryption'
  | 'sha384WithRSAEncryption'
  | 'sha512WithRSAEncryption';

const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  ed25519: '1.3.101.112',
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsaPss: '1.2.840.113549.1.1.10',
  commonName: '2.5.4.3',
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectAltName: '2.5.29.17',
} as const;

const SIGNATURE_ALGORITHMS: Record<
  string,
  { name: CsrSignatureAlgorithm; key: CsrKeyType; hash: string | null }
> = {
  '1.2.840.10045.4.3.2': { name: 'ecdsa-with-SHA256', key: 'p256', hash: 'sha256' },
  '1.2.840.10045.4.3.3': { name: 'ecdsa-with-SHA384', key: 'p256', hash: 'sha384' },
  '1.2.840.10045.4.3.4': { name: 'ecdsa-with-SHA512', key: 'p256', hash: 'sha512' },
  '1.3.101.112': { name: 'ed25519', key: 'ed25519', hash: null },
  '1.2.840.113549.1.1.11': { name: 'sha256WithRSAEncryption', key: 'rsa', hash: 'sha256' },
  '1.2.840.113549.1.1.12': { name: 'sha384WithRSAEncryption', key: 'rsa', hash: 'sha384' },
  '1.2.840.113549.1.1.13': { name: 'sha512WithRSAEncryption', key: 'rsa', hash: 'sha512' },
};

/** SHA-1 and MD5 based signature algorithms: refused as weak, not as unknown. */
const WEAK_SIGNATURE_ALGORITHMS: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1',
};

const CURVE_NAMES: Record<string, string> = {
  '1.3.132.0.34': 'P-384',
  '1.3.132.0.35': 'P-521',
  '1.3.132.0.10': 'secp256k1',
};

function malformed(message: string, cause?: unknown): never {
  throw caError(CaErrorCode.CSR_MALFORMED, `CSR is malformed: ${message}`, {}, cause);
}

/** Strict PEM: exactly one `CERTIFICATE REQUEST` block and nothing but whitespace around it. */
function pemToDer(text: string): Uint8Array {
  if (text.length > MAX_CSR_PEM_LENGTH) {
    throw caError(CaErrorCode.CSR_TOO_LARGE, 'CSR PEM is too large', {
      length: text.length,
      max: MAX_CSR_PEM_LENGTH,
    });
  }
  const match =
    /^\s*-----BEGIN CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE REQUEST-----\s*$/.exec(
      text,
    );
  if (!match) malformed('expected exactly one PEM "CERTIFICATE REQUEST" block');
  try {
    return fromBase64((match[1] as string).replace(/\s+/g, ''));
  } catch (error) {
    return malformed('PEM body is not base64', error);
  }
}

/**
 * Parses and checks a PKCS#10 request (DER bytes or PEM text): strict DER, version 1, a
 * supported subject key, a supported signature algorithm matching the key, and a valid
 * self-signature. Throws `CaError` with a `CSR_*` code.
 */
export function parseCsr(input: Uint8Array | string): ParsedCsr {
  const der = typeof input === 'string' ? pemToDer(input) : input;
  if (!(der instanceof Uint8Array) || der.length === 0) malformed('empty');
  if (der.length > MAX_CSR_BYTES) {
    throw caError(CaErrorCode.CSR_TOO_LARGE, 'CSR is too large', {
      length: der.length,
      max: MAX_CSR_BYTES,
    });
  }
  let structure: CsrStructure;
  try {
    structure = readStructure(der);
  } catch (error) {
    if (error instanceof DerError) malformed(error.message, error);
    throw error;
  }
  const key = readSubjectKey(structure.spki);
  const algorithm = signatureAlgorithm(structure.signatureAlgorithm);
  if (algorithm.key !== key.keyType) {
    throw caError(
      CaErrorCode.CSR_SIGNATURE_ALGORITHM_MISMATCH,
      `a ${key.keyType} key cannot make a ${algorithm.name} signature`,
      { keyType: key.keyType, signatureAlgorithm: algorithm.name },
    );
  }
  let valid: boolean;
  try {
    valid = verify(
      algorithm.hash,
      structure.info,
      key.keyType === 'rsa'
        ? { key: key.publicKey, padding: constants.RSA_PKCS1_PADDING }
        : key.keyType === 'p256'
          ? { key: key.publicKey, dsaEncoding: 'der' }
          : key.publicKey,
      structure.signature,
    );
  } catch {
    valid = false;
  }
  if (!valid) {
    throw caError(CaErrorCode.CSR_BAD_SIGNATURE, 'CSR signature does not verify with its key', {
      signatureAlgorithm: algorithm.name,
    });
  }
  return {
    der: der.slice(),
    keyType: key.keyType,
    rsaBits: key.rsaBits,
    subjectPublicKeyInfo: structure.spki.slice(),
    publicKey: key.publicKey,
    commonName: structure.commonName,
    requestedNames: structure.requestedNames,
    signatureAlgorithm: algorithm.name,
  };
}

interface CsrStructure {
  readonly info: Uint8Array;
  readonly spki: Uint8Array;
  readonly commonName: string | null;
  readonly requestedNames: CsrNames | null;
  readonly signatureAlgorithm: { readonly oid: string; readonly parameters: Uint8Array | null };
  readonly signature: Uint8Array;
}

function readAlgorithmIdentifier(
  bytes: Uint8Array,
  element: Tlv | undefined,
): { oid: string; parameters: Uint8Array | null } {
  const parts = children(bytes, expect(element, TAG.sequence, 'AlgorithmIdentifier'));
  if (parts.length < 1 || parts.length > 2) throw new DerError('AlgorithmIdentifier shape');
  return {
    oid: readOid(bytes, parts[0] as Tlv),
    parameters: parts[1] === undefined ? null : encodingOf(bytes, parts[1]),
  };
}

/** RFC 2986 §4: CertificationRequest and CertificationRequestInfo. */
function readStructure(der: Uint8Array): CsrStructure {
  const top = children(der, expect(readWhole(der), TAG.sequence, 'CertificationRequest'));
  if (top.length !== 3) throw new DerError('CertificationRequest must have three elements');
  const infoTlv = expect(top[0], TAG.sequence, 'CertificationRequestInfo');
  const fields = children(der, infoTlv);
  if (fields.length !== 4) throw new DerError('CertificationRequestInfo must have four elements');
  if (readSmallUnsigned(der, fields[0] as Tlv) !== 0) throw new DerError('version must be v1 (0)');
  const subject = expect(fields[1], TAG.sequence, 'subject Name');
  const spki = expect(fields[2], TAG.sequence, 'SubjectPublicKeyInfo');
  const attributes = expect(fields[3], contextConstructed(0), 'attributes [0]');
  const signatureAlgorithm = readAlgorithmIdentifier(der, top[1]);
  const signature = readOctetAlignedBitString(der, top[2] as Tlv);
  return {
    info: encodingOf(der, infoTlv),
    spki: encodingOf(der, spki),
    commonName: readCommonName(der, subject),
    requestedNames: readRequestedNames(der, attributes),
    signatureAlgorithm,
    signature,
  };
}

function readCommonName(der: Uint8Array, subject: Tlv): string | null {
  const names: string[] = [];
  for (const rdn of children(der, subject)) {
    for (const attribute of children(der, expect(rdn, TAG.set, 'RelativeDistinguishedName'))) {
      const [type, value, ...rest] = children(
        der,
        expect(attribute, TAG.sequence, 'AttributeTypeAndValue'),
      );
      if (type === undefined || value === undefined || rest.length > 0) {
        throw new DerError('AttributeTypeAndValue shape');
      }
      if (readOid(der, type) !== OID.commonName) continue;
      if (value.tag === TAG.utf8String) names.push(readUtf8(der, value));
      else if (value.tag === TAG.printableString || value.tag === TAG.ia5String) {
        names.push(readPrintableAscii(der, value));
      } else throw new DerError('commonName is not a UTF8String, PrintableString or IA5String');
    }
  }
  if (names.length > 1) throw new DerError('subject has more than one commonName');
  return names[0] ?? null;
}

function readRequestedNames(der: Uint8Array, attributes: Tlv): CsrNames | null {
  let names: CsrNames | null = null;
  for (const attribute of children(der, attributes)) {
    const [type, values, ...rest] = children(der, expect(attribute, TAG.sequence, 'Attribute'));
    if (type === undefined || values === undefined || rest.length > 0) {
      throw new DerError('Attribute shape');
    }
    if (readOid(der, type) !== OID.extensionRequest) continue;
    if (names !== null) throw new DerError('extensionRequest appears twice');
    const [extensions, ...more] = children(der, expect(values, TAG.set, 'attribute values'));
    if (more.length > 0) throw new DerError('extensionRequest has more than one value');
    let found: CsrNames | null = null;
    for (const extension of children(der, expect(extensions, TAG.sequence, 'Extensions'))) {
      const parts = children(der, expect(extension, TAG.sequence, 'Extension'));
      const id = readOid(der, parts[0] as Tlv);
      const value = expect(parts[parts.length - 1], TAG.octetString, 'extnValue');
      if (id !== OID.subjectAltName) continue;
      if (found !== null) throw new DerError('subjectAltName requested twice');
      found = readGeneralNames(contentOf(der, value));
    }
    names = found ?? { dnsNames: [], ipAddresses: [], uris: [], otherNames: 0 };
  }
  return names;
}

function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.length !== 16) throw new DerError('iPAddress must be 4 or 16 bytes');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) {
    groups.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
  }
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

export function readGeneralNames(value: Uint8Array): CsrNames {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  const uris: string[] = [];
  let otherNames = 0;
  for (const name of children(value, expect(readWhole(value), TAG.sequence, 'GeneralNames'))) {
    if (name.tag === 0x82) dnsNames.push(readPrintableAscii(value, name));
    else if (name.tag === 0x86) uris.push(readPrintableAscii(value, name));
    else if (name.tag === 0x87) ipAddresses.push(formatIp(contentOf(value, name)));
    else otherNames++;
  }
  return { dnsNames, ipAddresses, uris, otherNames };
}

const ED25519_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
]);

function readSubjectKey(spki: Uint8Array): {
  keyType: CsrKeyType;
  rsaBits: number | null;
  publicKey: KeyObject;
} {
  let algorithm: { oid: string; parameters: Uint8Array | null };
  let keyBits: Uint8Array;
  try {
    const parts = children(spki, readWhole(spki));
    if (parts.length !== 2) throw new DerError('SubjectPublicKeyInfo shape');
    algorithm = readAlgorithmIdentifier(spki, parts[0]);
    keyBits = readOctetAlignedBitString(spki, parts[1] as Tlv);
  } catch (error) {
    if (error instanceof DerError) malformed(error.message, error);
    throw error;
  }
  const unsupported = (message: string, detail: Record<string, unknown>): never => {
    throw caError(CaErrorCode.CSR_UNSUPPORTED_KEY, message, detail);
  };
  let keyType: CsrKeyType;
  if (algorithm.oid === OID.ecPublicKey) {
    let curve = '';
    try {
      curve =
        algorithm.parameters === null
          ? ''
          : readOid(algorithm.parameters, readWhole(algorithm.parameters));
    } catch (error) {
      if (!(error instanceof DerError)) throw error;
    }
    if (curve !== OID.prime256v1) {
      unsupported(
        `EC keys must be on P-256, not ${CURVE_NAMES[curve] ?? (curve || 'implicit/explicit parameters')}`,
        {
          curve: CURVE_NAMES[curve] ?? curve,
        },
      );
    }
    if (keyBits.length !== 65 || keyBits[0] !== 0x04) {
      unsupported('P-256 keys must be uncompressed points', { pointLength: keyBits.length });
    }
    keyType = 'p256';
  } else if (algorithm.oid === OID.ed25519) {
    if (algorithm.parameters !== null || spki.length !== 44) {
      throw caError(CaErrorCode.CSR_INVALID_KEY, 'Ed25519 key is not in RFC 8410 form');
    }
    if (!ED25519_SPKI_PREFIX.every((byte, i) => spki[i] === byte)) {
      throw caError(CaErrorCode.CSR_INVALID_KEY, 'Ed25519 key is not in RFC 8410 form');
    }
    // A small-order key has no secret: OpenSSL accepts R = identity, s = 0 under it for any
    // message, so the CSR's signature would prove nothing and anyone could sign as the subject.
    if (isSmallOrderEd25519Key(spki.subarray(ED25519_SPKI_PREFIX.length))) {
      throw caError(CaErrorCode.CSR_INVALID_KEY, 'Ed25519 key is a point of small order');
    }
    keyType = 'ed25519';
  } else if (algorithm.oid === OID.rsaEncryption) {
    // RFC 3279 §2.3.1: the parameters field MUST be NULL.
    if (
      algorithm.parameters === null ||
      algorithm.parameters.length !== 2 ||
      algorithm.parameters[0] !== TAG.null
    ) {
      throw caError(CaErrorCode.CSR_INVALID_KEY, 'rsaEncryption parameters must be NULL');
    }
    keyType = 'rsa';
  } else {
    return unsupported(`unsupported key algorithm ${algorithm.oid}`, { algorithm: algorithm.oid });
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (error) {
    throw caError(
      CaErrorCode.CSR_INVALID_KEY,
      `subject key does not decode: ${(error as Error).message}`,
      {
        keyType,
      },
      error,
    );
  }
  if (keyType !== 'rsa') return { keyType, rsaBits: null, publicKey };
  // The strict parse above stops at the BIT STRING; OpenSSL reads the RSAPublicKey inside it
  // leniently (bytes after the key, a long-form length on its SEQUENCE). The key is named by
  // the hash of these exact bytes (compromised-key block) and copied into the certificate, so a
  // second spelling of one key would escape a keyCompromise mark and yield non-DER certificates.
  // P-256 and Ed25519 need no such check: their whole encoding is fixed above.
  const canonical = publicKey.export({ format: 'der', type: 'spki' });
  if (!canonical.equals(spki)) {
    throw caError(
      CaErrorCode.CSR_INVALID_KEY,
      'RSA key is not DER-encoded: the RSAPublicKey inside the SubjectPublicKeyInfo must be canonical DER with nothing after it',
      { keyType, length: spki.length, canonicalLength: canonical.length },
    );
  }
  const details = publicKey.asymmetricKeyDetails ?? {};
  const bits = details.modulusLength ?? 0;
  const exponent = details.publicExponent ?? 0n;
  if (bits < MIN_RSA_BITS) {
    throw caError(
      CaErrorCode.CSR_WEAK_KEY,
      `RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required`,
      {
        bits,
        min: MIN_RSA_BITS,
      },
    );
  }
  if (bits > MAX_RSA_BITS || bits % 8 !== 0) {
    unsupported(`RSA modulus must be a multiple of 8 bits up to ${MAX_RSA_BITS}`, { bits });
  }
  if (exponent % 2n === 0n || exponent < 65537n || exponent > MAX_RSA_EXPONENT) {
    // The upper bound (BR §6.1.6) also bounds the cost of verifying: a 3072-bit exponent makes
    // RSA verification ~60 times slower, and the key is checked before the CSR's signature.
    throw caError(
      CaErrorCode.CSR_WEAK_KEY,
      'RSA public exponent must be odd, at least 65537 and less than 2^256',
      exponent > MAX_RSA_EXPONENT
        ? { exponentBits: exponent.toString(2).length, maxBits: 256 }
        : { exponent: exponent.toString() },
    );
  }
  return { keyType, rsaBits: bits, publicKey };
}

function signatureAlgorithm(algorithm: { oid: string; parameters: Uint8Array | null }): {
  name: CsrSignatureAlgorithm;
  key: CsrKeyType;
  hash: string | null;
} {
  const weak = WEAK_SIGNATURE_ALGORITHMS[algorithm.oid];
  if (weak !== undefined) {
    throw caError(CaErrorCode.CSR_WEAK_SIGNATURE_ALGORITHM, `CSR is signed with ${weak}`, {
      signatureAlgorithm: weak,
    });
  }
  const known = SIGNATURE_ALGORITHMS[algorithm.oid];
  if (known === undefined) {
    throw caError(
      CaErrorCode.CSR_UNSUPPORTED_SIGNATURE_ALGORITHM,
      algorithm.oid === OID.rsaPss
        ? 'RSASSA-PSS CSR signatures are not supported; sign with PKCS#1 v1.5'
        : `unsupported CSR signature algorithm ${algorithm.oid}`,
      { signatureAlgorithm: algorithm.oid },
    );
  }
  // RFC 5758 §3.2 / RFC 8410 §3: no parameters; RFC 4055 §5: NULL (absent is common too).
  const parametersOk =
    algorithm.parameters === null ||
    (known.key === 'rsa' &&
      algorithm.parameters.length === 2 &&
      algorithm.parameters[0] === TAG.null);
  if (!parametersOk) malformed(`${known.name} must not carry parameters`);
  return known;
}

// ---------------------------------------------------------------------------------------------
// Building

export interface CreateCsrOptions {
  /** P-256, Ed25519 or RSA private key. */
  readonly privateKey: KeyObject;
  readonly commonName?: string;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly uris?: readonly string[];
}

const ascii = new TextEncoder();

/** A DER PKCS#10 request signed with SHA-256 (ECDSA, RSA PKCS#1 v1.5) or Ed25519. */
export function createCsr(options: CreateCsrOptions): Uint8Array {
  const { privateKey } = options;
  const spki = new Uint8Array(createPublicKey(privateKey).export({ format: 'der', type: 'spki' }));
  const subject =
    options.commonName === undefined
      ? sequence()
      : sequence(setOf(sequence(oid(OID.commonName), utf8String(options.commonName))));
  const names = [
    ...(options.dnsNames ?? []).map((name) => tlv(0x82, ascii.encode(name))),
    ...(options.ipAddresses ?? []).map((ip) => tlv(0x87, ipAddressBytes(ip))),
    ...(options.uris ?? []).map((uri) => tlv(0x86, ascii.encode(uri))),
  ];
  const attributes =
    names.length === 0
      ? constructed(contextConstructed(0))
      : constructed(
          contextConstructed(0),
          sequence(
            oid(OID.extensionRequest),
            setOf(sequence(sequence(oid(OID.subjectAltName), octetString(sequence(...names))))),
          ),
        );
  const info = sequence(unsignedInteger(0), subject, spki, attributes);
  const type = privateKey.asymmetricKeyType;
  let algorithm: Uint8Array;
  let signature: Buffer;
  if (type === 'ec') {
    algorithm = sequence(oid('1.2.840.10045.4.3.2'));
    signature = sign('sha256', info, { key: privateKey, dsaEncoding: 'der' });
  } else if (type === 'ed25519') {
    algorithm = sequence(oid(OID.ed25519));
    signature = sign(null, info, privateKey);
  } else if (type === 'rsa') {
    algorithm = sequence(oid('1.2.840.113549.1.1.11'), derNull());
    signature = sign('sha256', info, { key: privateKey, padding: constants.RSA_PKCS1_PADDING });
  } else {
    throw caError(CaErrorCode.CSR_UNSUPPORTED_KEY, `cannot build a CSR for a ${type} key`, {
      keyType: type ?? null,
    });
  }
  return sequence(info, algorithm, bitString(new Uint8Array(signature)));
}
