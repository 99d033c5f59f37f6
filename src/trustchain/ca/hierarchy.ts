import { X509Certificate, createPublicKey, randomBytes } from 'node:crypto';
import { bytesEqual } from '../../crypto/bytes.js';
import { defaultFalcon, type FalconBackend, type FalconKeyPair } from '../../crypto/falcon.js';
import {
  decodeKeyFile,
  encodeKeyFile,
  KeyFileError,
  type ScryptParameters,
} from '../../crypto/keyfile.js';
import { generateP256KeyPair, type P256KeyPair } from '../../crypto/p256.js';
import { encodeFalconKeyExtension, FALCON_PUBLIC_KEY_EXTENSION_OID } from '../../crypto/x509.js';
import {
  ACCOUNT_KEY_BYTES,
  buildTrustBundle,
  endorsementMessage,
  intermediateName,
  isClusterName,
  isValidatorName,
  rootName,
  type TrustBundle,
} from './bundle.js';
import {
  assembleCertificate,
  authorityKeyIdentifier,
  basicConstraints,
  buildTbs,
  createDeterministicSigner,
  extendedKeyUsage,
  keyIdentifier,
  keyUsage,
  permittedUriHost,
  readTbs,
  splitCertificate,
  subjectKeyIdentifier,
} from './certificate.js';
import { createCsr, parseCsr } from './csr.js';
import { CaError, CaErrorCode, caError } from './errors.js';
import { EKU, KeyUsageBit } from './profiles.js';
import { falconPossessionMessage, proveFalconPossession } from './request.js';

/**
 * The trust hierarchy. The genesis ceremony creates the cluster root — an ECDSA P-256
 * certificate and a FALCON-1024 root key — and one intermediate per validator, issued from the
 * validator's own CSR (its intermediate key never leaves the validator). Each intermediate:
 *
 *   subject  CN=<validator>, OU=validator, O=<cluster>
 *   basicConstraints CA, pathLength 0 (critical) · keyUsage keyCertSign, cRLSign (critical)
 *   extendedKeyUsage serverAuth, clientAuth · SKI/AKI
 *   nameConstraints: permitted URI host <cluster> (non-critical, see docs/ca.md)
 *   the validator's FALCON-1024 key (STOQ's FALCON key extension)
 *
 * The root private keys leave the ceremony only as passphrase-encrypted key files; running nodes
 * never need them. A validator added later gets its intermediate through `addValidator`, run
 * offline by the root key holders.
 */

export const DEFAULT_ROOT_VALIDITY_DAYS = 3650;
export const DEFAULT_INTERMEDIATE_VALIDITY_DAYS = 1095;
/** Passphrases shorter than this are refused for root keys. */
export const MIN_ROOT_PASSPHRASE_LENGTH = 12;
const DAY_MS = 86_400_000;

/** What a validator hands to the ceremony (or to `addValidator`). */
export interface ValidatorCaRequest {
  readonly name: string;
  /** PKCS#10 for the validator's ECDSA P-256 intermediate key (DER or PEM). */
  readonly csr: Uint8Array | string;
  readonly falconPublicKey: Uint8Array;
  /** `proveFalconPossession(csr subjectPublicKeyInfo, falcon secret key)`. */
  readonly falconProof: Uint8Array;
}

export interface ValidatorCaKeys {
  readonly ecdsa: P256KeyPair;
  readonly falcon: FalconKeyPair;
}

/** The validator's side: a fresh P-256 issuing key, its CSR, and the FALCON proof. */
export async function createValidatorCaRequest(options: {
  readonly name: string;
  /** The validator's FALCON key pair; a fresh one when omitted. */
  readonly falconKeys?: FalconKeyPair;
  readonly falcon?: FalconBackend;
}): Promise<{ readonly request: ValidatorCaRequest; readonly keys: ValidatorCaKeys }> {
  if (!isValidatorName(options.name)) {
    throw caError(CaErrorCode.INVALID_CEREMONY_INPUT, 'invalid validator name', {
      name: String(options.name),
    });
  }
  const falcon = options.falcon ?? defaultFalcon();
  const ecdsa = generateP256KeyPair();
  const falconKeys = options.falconKeys ?? (await falcon.generateKeyPair());
  const csr = createCsr({ privateKey: ecdsa.privateKey, commonName: options.name });
  const spki = new Uint8Array(
    createPublicKey(ecdsa.privateKey).export({ format: 'der', type: 'spki' }),
  );
  const falconProof = await proveFalconPossession(spki, falconKeys.secretKey, falcon);
  return {
    request: { name: options.name, csr, falconPublicKey: falconKeys.publicKey, falconProof },
    keys: { ecdsa, falcon: falconKeys },
  };
}

/** The root signing keys, held only during the ceremony and governed procedures. */
export interface RootSigningKeys {
  readonly certificate: Uint8Array;
  readonly ecdsa: P256KeyPair;
  readonly falcon: FalconKeyPair;
}

function ceremonyInput(
  message: string,
  detail: Record<string, unknown> = {},
  cause?: unknown,
): never {
  throw caError(CaErrorCode.INVALID_CEREMONY_INPUT, message, detail, cause);
}

function wholeSeconds(date: Date, what: string): Date {
  if (!(date instanceof Date) || Number.isNaN(date.getTime()))
    ceremonyInput(`${what} is not a date`);
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

function randomSerial(): Uint8Array {
  const serial = new Uint8Array(randomBytes(16));
  serial[0] = ((serial[0] as number) & 0x3f) | 0x40;
  return serial;
}

function spkiOf(keys: P256KeyPair): Uint8Array {
  return new Uint8Array(keys.publicKey.export({ format: 'der', type: 'spki' }));
}

/** The self-signed ECDSA P-256 root: CA with path length 1, keyCertSign + cRLSign, SKI. */
export function createRootCertificate(options: {
  readonly cluster: string;
  readonly keys: P256KeyPair;
  readonly notBefore: Date;
  readonly validityDays?: number;
}): Uint8Array {
  if (!isClusterName(options.cluster))
    ceremonyInput('cluster is not a SPIFFE trust domain', { cluster: options.cluster });
  const notBefore = wholeSeconds(options.notBefore, 'notBefore');
  const days = options.validityDays ?? DEFAULT_ROOT_VALIDITY_DAYS;
  if (!Number.isInteger(days) || days < 1) ceremonyInput('validityDays must be a positive integer');
  const spki = spkiOf(options.keys);
  const name = rootName(options.cluster);
  const tbs = buildTbs({
    serial: randomSerial(),
    issuerName: name,
    notBefore,
    notAfter: new Date(notBefore.getTime() + days * DAY_MS),
    subjectName: name,
    subjectPublicKeyInfo: spki,
    extensions: [
      basicConstraints(true, 1),
      keyUsage([KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign]),
      subjectKeyIdentifier(keyIdentifier(spki)),
    ],
  });
  return assembleCertificate(tbs, createDeterministicSigner(options.keys.privateKey).sign(tbs));
}

/**
 * The TBSCertificate of a validator intermediate (the profile in the comment at the top of this
 * file): issued by the root, for `name` in `cluster`, carrying the validator's FALCON key. Used
 * to issue one, and to check that a certificate has exactly this profile
 * (`checkValidatorIntermediate`).
 */
export function intermediateTbs(input: {
  readonly cluster: string;
  readonly name: string;
  readonly rootCertificate: Uint8Array;
  readonly serial: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly falconPublicKey: Uint8Array;
}): Uint8Array {
  const rootParts = readTbs(splitCertificate(input.rootCertificate).tbs);
  const spki = input.subjectPublicKeyInfo;
  return buildTbs({
    serial: input.serial,
    issuerName: rootParts.subjectName,
    notBefore: input.notBefore,
    notAfter: input.notAfter,
    subjectName: intermediateName(input.cluster, input.name),
    subjectPublicKeyInfo: spki,
    extensions: [
      basicConstraints(true, 0),
      keyUsage([KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign]),
      extendedKeyUsage([EKU.serverAuth, EKU.clientAuth]),
      subjectKeyIdentifier(keyIdentifier(spki)),
      authorityKeyIdentifier(keyIdentifier(rootParts.subjectPublicKeyInfo)),
      permittedUriHost(input.cluster),
      {
        oid: FALCON_PUBLIC_KEY_EXTENSION_OID,
        critical: false,
        value: encodeFalconKeyExtension(input.falconPublicKey),
      },
    ],
  });
}

export interface IssuedIntermediate {
  readonly name: string;
  readonly certificate: Uint8Array;
  /** Root FALCON signature over `endorsementMessage(cluster, name, certificate, account)`. */
  readonly endorsement: Uint8Array;
  /** The node key the endorsement binds (an intermediate added after genesis), else null. */
  readonly account: Uint8Array | null;
}

/**
 * Issues one validator intermediate from its CSR (which must be a P-256 key whose commonName,
 * if any, is the validator name) after checking the FALCON proof of possession, and endorses
 * it with the root FALCON key. Used by the ceremony (no `account`: version 1 endorsement) and
 * for an intermediate added after genesis, whose endorsement also covers the node key that will
 * hold it (`account`, version 2), so the proposal cannot be replayed with another key.
 */
export async function issueValidatorIntermediate(options: {
  readonly cluster: string;
  readonly root: RootSigningKeys;
  readonly request: ValidatorCaRequest;
  /** The node (Ed25519) key of a validator added after genesis. */
  readonly account?: Uint8Array;
  readonly notBefore: Date;
  readonly validityDays?: number;
  readonly falcon?: FalconBackend;
}): Promise<IssuedIntermediate> {
  const { cluster, root, request } = options;
  const account = options.account ?? null;
  const falcon = options.falcon ?? defaultFalcon();
  if (!isValidatorName(request.name))
    ceremonyInput('invalid validator name', { name: String(request.name) });
  if (account !== null && account.length !== ACCOUNT_KEY_BYTES) {
    ceremonyInput(`validator ${request.name}: the node key must be ${ACCOUNT_KEY_BYTES} bytes`);
  }
  let csr: ReturnType<typeof parseCsr>;
  try {
    csr = parseCsr(request.csr);
  } catch (error) {
    if (error instanceof CaError)
      ceremonyInput(`validator ${request.name}: ${error.message}`, { code: error.code }, error);
    throw error;
  }
  if (csr.keyType !== 'p256')
    ceremonyInput(`validator ${request.name}: an intermediate key must be ECDSA P-256`);
  if (csr.commonName !== null && csr.commonName !== request.name) {
    ceremonyInput(`validator ${request.name}: the CSR names ${csr.commonName}`);
  }
  if (
    !falcon.verify(
      request.falconProof,
      falconPossessionMessage(csr.subjectPublicKeyInfo),
      request.falconPublicKey,
    )
  ) {
    ceremonyInput(`validator ${request.name}: the FALCON proof of possession does not verify`);
  }
  const rootCert = new X509Certificate(root.certificate);
  const notBefore = wholeSeconds(options.notBefore, 'notBefore');
  const days = options.validityDays ?? DEFAULT_INTERMEDIATE_VALIDITY_DAYS;
  if (!Number.isInteger(days) || days < 1) ceremonyInput('validityDays must be a positive integer');
  const notAfter = new Date(notBefore.getTime() + days * DAY_MS);
  if (notBefore < new Date(rootCert.validFrom) || notAfter > new Date(rootCert.validTo)) {
    ceremonyInput(
      `validator ${request.name}: the intermediate's validity must lie within the root's`,
    );
  }
  const tbs = intermediateTbs({
    cluster,
    name: request.name,
    rootCertificate: root.certificate,
    serial: randomSerial(),
    notBefore,
    notAfter,
    subjectPublicKeyInfo: csr.subjectPublicKeyInfo,
    falconPublicKey: request.falconPublicKey,
  });
  const certificate = assembleCertificate(
    tbs,
    createDeterministicSigner(root.ecdsa.privateKey).sign(tbs),
  );
  const endorsement = await falcon.sign(
    endorsementMessage(cluster, request.name, certificate, account),
    root.falcon.secretKey,
  );
  return {
    name: request.name,
    certificate,
    endorsement,
    account: account === null ? null : account.slice(),
  };
}

export interface GenesisCeremonyOptions {
  readonly cluster: string;
  readonly chainId: string;
  /** The ceremony time: notBefore of the root and of every intermediate. */
  readonly time: Date;
  /** Encrypts both root key files (scrypt + AES-256-GCM, src/crypto/keyfile.ts). */
  readonly passphrase: string;
  readonly validators: readonly ValidatorCaRequest[];
  readonly rootValidityDays?: number;
  readonly intermediateValidityDays?: number;
  readonly scrypt?: ScryptParameters;
  readonly falcon?: FalconBackend;
}

export interface GenesisCeremonyResult {
  readonly bundle: TrustBundle;
  /** Encrypted key-file texts; the only form in which the root private keys leave the ceremony. */
  readonly rootKeyFiles: { readonly ecdsa: string; readonly falcon: string };
}

/**
 * The genesis ceremony: root keys and certificate, one intermediate per validator, the trust
 * bundle, and the root keys as encrypted key files. Nothing unencrypted is returned.
 */
export async function runGenesisCeremony(
  options: GenesisCeremonyOptions,
): Promise<GenesisCeremonyResult> {
  const falcon = options.falcon ?? defaultFalcon();
  if (
    typeof options.passphrase !== 'string' ||
    options.passphrase.length < MIN_ROOT_PASSPHRASE_LENGTH
  ) {
    ceremonyInput(
      `the root key passphrase must have at least ${MIN_ROOT_PASSPHRASE_LENGTH} characters`,
    );
  }
  if (options.validators.length === 0) ceremonyInput('the ceremony needs at least one validator');
  const names = options.validators.map((validator) => validator.name);
  if (new Set(names).size !== names.length) ceremonyInput('validator names must be unique');
  const root: RootSigningKeys = await (async () => {
    const ecdsa = generateP256KeyPair();
    const certificate = createRootCertificate({
      cluster: options.cluster,
      keys: ecdsa,
      notBefore: options.time,
      ...(options.rootValidityDays === undefined ? {} : { validityDays: options.rootValidityDays }),
    });
    return { certificate, ecdsa, falcon: await falcon.generateKeyPair() };
  })();
  const sorted = [...options.validators].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  const intermediates: IssuedIntermediate[] = [];
  for (const request of sorted) {
    intermediates.push(
      await issueValidatorIntermediate({
        cluster: options.cluster,
        root,
        request,
        notBefore: options.time,
        falcon,
        ...(options.intermediateValidityDays === undefined
          ? {}
          : { validityDays: options.intermediateValidityDays }),
      }),
    );
  }
  const bundle = buildTrustBundle(
    {
      cluster: options.cluster,
      chainId: options.chainId,
      rootCertificate: root.certificate,
      rootFalconPublicKey: root.falcon.publicKey,
      validators: intermediates,
    },
    falcon,
  );
  const encryption = {
    passphrase: options.passphrase,
    ...(options.scrypt === undefined ? {} : { scrypt: options.scrypt }),
  };
  return {
    bundle,
    rootKeyFiles: {
      ecdsa: await encodeKeyFile({ kind: 'p256', keys: root.ecdsa }, encryption),
      falcon: await encodeKeyFile({ kind: 'falcon-1024-r3', keys: root.falcon }, encryption),
    },
  };
}

/**
 * Decrypts the root key files for a governed procedure and checks they belong to `bundle`'s
 * root. Throws `ROOT_KEY_MISMATCH` (wrong passphrase, wrong files, other cluster's keys).
 */
export async function loadRootSigningKeys(options: {
  readonly bundle: TrustBundle;
  readonly ecdsaKeyFile: string;
  readonly falconKeyFile: string;
  readonly passphrase: string;
}): Promise<RootSigningKeys> {
  let ecdsa: P256KeyPair;
  let falconKeys: FalconKeyPair;
  try {
    ecdsa = (
      await decodeKeyFile(options.ecdsaKeyFile, { kind: 'p256', passphrase: options.passphrase })
    ).keys;
    falconKeys = (
      await decodeKeyFile(options.falconKeyFile, {
        kind: 'falcon-1024-r3',
        passphrase: options.passphrase,
      })
    ).keys;
  } catch (error) {
    if (error instanceof KeyFileError) {
      throw caError(
        CaErrorCode.ROOT_KEY_MISMATCH,
        `root key files do not open: ${error.message}`,
        { keyFile: error.code },
        error,
      );
    }
    throw error;
  }
  const rootKey = options.bundle.root.parsed.publicKey;
  if (!ecdsa.publicKey.equals(rootKey)) {
    throw caError(
      CaErrorCode.ROOT_KEY_MISMATCH,
      "the ECDSA key file is not this bundle's root key",
    );
  }
  if (!bytesEqual(falconKeys.publicKey, options.bundle.root.falconPublicKey)) {
    throw caError(
      CaErrorCode.ROOT_KEY_MISMATCH,
      "the FALCON key file is not this bundle's root FALCON key",
    );
  }
  return { certificate: options.bundle.root.certificate, ecdsa, falcon: falconKeys };
}

/**
 * The governed procedure for a new validator (docs/ca.md): once governance has approved the
 * validator, the root key holders load the root keys offline, issue its intermediate from its
 * CSR, and publish the new bundle. Refuses a name already in the bundle.
 */
export async function addValidator(options: {
  readonly bundle: TrustBundle;
  readonly root: RootSigningKeys;
  readonly request: ValidatorCaRequest;
  /** The node key that will hold it (see `issueValidatorIntermediate`). */
  readonly account?: Uint8Array;
  readonly time: Date;
  readonly validityDays?: number;
  readonly falcon?: FalconBackend;
}): Promise<{ readonly bundle: TrustBundle; readonly intermediate: IssuedIntermediate }> {
  const { bundle } = options;
  if (bundle.validators.some((validator) => validator.name === options.request.name)) {
    ceremonyInput(`validator ${options.request.name} already has an intermediate`);
  }
  const intermediate = await issueValidatorIntermediate({
    cluster: bundle.cluster,
    root: options.root,
    request: options.request,
    ...(options.account === undefined ? {} : { account: options.account }),
    notBefore: options.time,
    ...(options.validityDays === undefined ? {} : { validityDays: options.validityDays }),
    ...(options.falcon === undefined ? {} : { falcon: options.falcon }),
  });
  const validators = [
    ...bundle.validators.map(({ name, certificate, endorsement, account }) => ({
      name,
      certificate,
      endorsement,
      account,
    })),
    intermediate,
  ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    bundle: buildTrustBundle(
      {
        cluster: bundle.cluster,
        chainId: bundle.chainId,
        rootCertificate: bundle.root.certificate,
        rootFalconPublicKey: bundle.root.falconPublicKey,
        validators,
      },
      options.falcon,
    ),
    intermediate,
  };
}

/** An intermediate issued after genesis, as the governed procedure hands it to consensus. */
export interface AddedIntermediate {
  readonly name: string;
  /** DER. */
  readonly certificate: Uint8Array;
  /** Root FALCON signature over `endorsementMessage(cluster, name, certificate, account)`. */
  readonly endorsement: Uint8Array;
  /** The node key that will hold it: the version 2 endorsement must cover it. */
  readonly account: Uint8Array;
}

/**
 * Checks an intermediate issued after genesis against `bundle` (the genesis bundle plus the
 * intermediates added so far) and returns the bundle with it: everything `buildTrustBundle`
 * checks (issued and signed by the bundle's root, CA with path length 0 and keyCertSign, the
 * validator's subject name, validity inside the root's, a FALCON-1024 key, the root FALCON
 * endorsement — version 2, covering `added.account`), an ECDSA P-256 key, and byte for byte the intermediate profile
 * (`intermediateTbs`: key usage, extended key usage, key identifiers, name constraint). Throws
 * `INVALID_BUNDLE` (`INVALID_CEREMONY_INPUT` for a name already in the bundle).
 */
export function checkValidatorIntermediate(
  bundle: TrustBundle,
  added: AddedIntermediate,
  falcon: FalconBackend = defaultFalcon(),
): TrustBundle {
  if (bundle.validators.some((validator) => validator.name === added.name)) {
    ceremonyInput(`validator ${added.name} already has an intermediate`, { name: added.name });
  }
  const validators = [
    ...bundle.validators.map(({ name, certificate, endorsement, account }) => ({
      name,
      certificate,
      endorsement,
      account,
    })),
    {
      name: added.name,
      certificate: added.certificate,
      endorsement: added.endorsement,
      account: added.account,
    },
  ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const extended = buildTrustBundle(
    {
      cluster: bundle.cluster,
      chainId: bundle.chainId,
      rootCertificate: bundle.root.certificate,
      rootFalconPublicKey: bundle.root.falconPublicKey,
      validators,
    },
    falcon,
  );
  const entry = extended.validators.find((validator) => validator.name === added.name);
  if (entry === undefined) throw new RangeError('the added intermediate vanished from the bundle');
  const profileError = (message: string): never => {
    throw caError(CaErrorCode.INVALID_BUNDLE, `intermediate ${added.name}: ${message}`, {
      name: added.name,
    });
  };
  if (entry.parsed.publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    profileError('the key is not ECDSA P-256');
  }
  const { tbs } = splitCertificate(entry.certificate);
  const fields = readTbs(tbs);
  const expected = intermediateTbs({
    cluster: bundle.cluster,
    name: added.name,
    rootCertificate: bundle.root.certificate,
    serial: fields.serial,
    notBefore: entry.parsed.notBefore,
    notAfter: entry.parsed.notAfter,
    subjectPublicKeyInfo: fields.subjectPublicKeyInfo,
    falconPublicKey: entry.falconPublicKey,
  });
  if (!bytesEqual(expected, tbs)) profileError('it does not have the intermediate profile');
  return extended;
}
