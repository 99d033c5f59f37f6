import type { KeyObject } from 'node:crypto';
import { bytesEqual } from '../../crypto/bytes.js';
import { defaultFalcon, FALCON_ALGORITHM_ID, type FalconBackend } from '../../crypto/falcon.js';
import { sha256, taggedHash } from '../../crypto/hash.js';
import {
  KeyUsage,
  X509Error,
  certificateFalconKey,
  encodeFalconKeyExtension,
  FALCON_PUBLIC_KEY_EXTENSION_OID,
  parseCertificate,
} from '../../crypto/x509.js';
import {
  CertificateBatch,
  signBatch,
  verifyBatchSignature,
  type BatchSignature,
  type BatchStatement,
} from './batch.js';
import {
  assembleCertificate,
  authorityKeyIdentifier,
  basicConstraints,
  buildTbs,
  ECDSA_WITH_SHA256,
  extendedKeyUsage,
  isLowS,
  keyIdentifier,
  keyUsage,
  OIDS,
  encodeName,
  readNameAttribute,
  readTbs,
  splitCertificate,
  subjectAltName,
  subjectKeyIdentifier,
  verifyEcdsaSha256,
  withExtensionAppended,
  type CertificateSigner,
  type Extension,
} from './certificate.js';
import { DerError, TAG, compareBytes, contentOf, expect, readWhole } from './der.js';
import { CaError, CaErrorCode, caError } from './errors.js';
import {
  BATCH_INCLUSION_OID,
  ISSUANCE_REFERENCE_OID,
  encodeBatchInclusion,
  encodeIssuanceReference,
  type BatchInclusion,
} from './extensions.js';
import { ipAddressBytes } from './names.js';
import { PROFILES, leafKeyUsageBits } from './profiles.js';
import type { CertificateRequest } from './request.js';

/**
 * Deterministic issuance. Everything in a leaf certificate except its ECDSA signature value is
 * a pure function of the committed request, the block (chain id, height, time), the transaction
 * hash and the proposer's intermediate certificate, so every validator rebuilds the same
 * TBSCertificate and checks the proposer's certificate byte for byte.
 *
 * Leaf definition (the "pre-certificate" of RFC 6962 §3.1, here without a poison extension):
 * the Merkle leaf of a certificate is the DER TBSCertificate built from those inputs without the
 * batch-inclusion extension; the leaf hash is SHA-256(0x00 || leaf TBS) (RFC 9162 §2.1.1). The
 * issued certificate is that TBS with the batch-inclusion extension appended as the last
 * extension — which is why the inclusion path can prove the leaf it does not belong to.
 */

/** The proposer's intermediate, with what issuance reads from it. */
export interface Issuer {
  readonly certificate: Uint8Array;
  /** SHA-256 of the DER: bound into the batch statement. */
  readonly fingerprint: Uint8Array;
  readonly subjectName: Uint8Array;
  /** The cluster (SPIFFE trust domain) named by the intermediate's O attribute. */
  readonly cluster: string;
  readonly keyIdentifier: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly publicKey: KeyObject;
  /** The validator's FALCON-1024 key, carried in the intermediate: it signs the block's batches. */
  readonly falconPublicKey: Uint8Array;
}

function invalidIssuer(message: string, cause?: unknown): never {
  throw caError(CaErrorCode.INVALID_ISSUER, message, {}, cause);
}

/** Reads an intermediate CA certificate for issuance; throws `INVALID_ISSUER`. */
export function parseIssuer(certificate: Uint8Array): Issuer {
  try {
    const parsed = parseCertificate(certificate);
    if (
      !parsed.basicConstraints?.ca ||
      parsed.keyUsage === null ||
      !(parsed.keyUsage & KeyUsage.keyCertSign)
    ) {
      invalidIssuer('issuer is not a CA certificate with keyCertSign');
    }
    if (parsed.publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      invalidIssuer('issuer key is not ECDSA P-256');
    }
    const fields = readTbs(splitCertificate(certificate).tbs);
    const ski = fields.extensions.find((extension) => extension.oid === OIDS.subjectKeyIdentifier);
    if (ski === undefined) invalidIssuer('issuer has no subjectKeyIdentifier');
    const cluster = readNameAttribute(fields.subjectName, 'O');
    if (cluster === null) invalidIssuer('issuer subject has no organization (cluster)');
    const keyId = contentOf(
      ski.value,
      expect(readWhole(ski.value), TAG.octetString, 'KeyIdentifier'),
    );
    return {
      certificate: certificate.slice(),
      fingerprint: sha256(certificate),
      subjectName: fields.subjectName.slice(),
      cluster,
      keyIdentifier: keyId.slice(),
      notBefore: parsed.notBefore,
      notAfter: parsed.notAfter,
      publicKey: parsed.publicKey,
      falconPublicKey: certificateFalconKey(parsed),
    };
  } catch (error) {
    if (error instanceof X509Error || error instanceof DerError) {
      invalidIssuer(`issuer certificate is unusable: ${error.message}`, error);
    }
    throw error;
  }
}

export interface IssuanceInputs {
  readonly request: CertificateRequest;
  /** The lifetime `checkRequest` decided. */
  readonly lifetimeSeconds: number;
  readonly chainId: string;
  readonly blockHeight: number;
  /** BFT block time, ms since the Unix epoch (`BlockExecutionInput.time`). */
  readonly blockTime: number;
  /** The committed transaction's 32-byte hash. */
  readonly txHash: Uint8Array;
  readonly issuer: Issuer;
}

const MAX_LIFETIME_SECONDS = 398 * 24 * 3600;

function requireInputs(inputs: IssuanceInputs): void {
  const { chainId, blockHeight, blockTime, txHash, lifetimeSeconds } = inputs;
  const problems: string[] = [];
  if (typeof chainId !== 'string' || chainId.length < 1 || chainId.length > 64)
    problems.push('chainId');
  if (!Number.isSafeInteger(blockHeight) || blockHeight < 1) problems.push('blockHeight');
  if (!Number.isSafeInteger(blockTime) || blockTime < 0) problems.push('blockTime');
  if (!(txHash instanceof Uint8Array) || txHash.length !== 32) problems.push('txHash');
  if (
    !Number.isSafeInteger(lifetimeSeconds) ||
    lifetimeSeconds < 1 ||
    lifetimeSeconds > MAX_LIFETIME_SECONDS
  ) {
    problems.push('lifetimeSeconds');
  }
  if (problems.length > 0) {
    throw caError(
      CaErrorCode.INVALID_ISSUANCE_INPUT,
      `invalid issuance inputs: ${problems.join(', ')}`,
      {
        fields: problems,
      },
    );
  }
}

const u64 = (n: number): Uint8Array => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
};

/**
 * The serial number: the first 16 bytes of a tagged SHA-256 of (chain id, height, transaction
 * hash), with the top two bits set to 01 — positive, always exactly 16 octets (RFC 5280
 * §4.1.2.2 allows up to 20), unique per transaction.
 */
export function certificateSerial(chainId: string, height: number, txHash: Uint8Array): Uint8Array {
  const serial = taggedHash(
    'hypermesh/trustchain-ca/serial/v1',
    chainId,
    u64(height),
    txHash,
  ).slice(0, 16);
  serial[0] = ((serial[0] as number) & 0x3f) | 0x40;
  return serial;
}

/** notBefore (block time, whole seconds) and notAfter = notBefore + lifetime. */
export function validityOf(inputs: Pick<IssuanceInputs, 'blockTime' | 'lifetimeSeconds'>): {
  notBefore: Date;
  notAfter: Date;
} {
  const start = Math.floor(inputs.blockTime / 1000) * 1000;
  return { notBefore: new Date(start), notAfter: new Date(start + inputs.lifetimeSeconds * 1000) };
}

function sortedNames(request: CertificateRequest): {
  dnsNames: string[];
  ipAddresses: string[];
  uris: string[];
} {
  const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  const byAddress = (a: string, b: string): number => {
    const x = ipAddressBytes(a);
    const y = ipAddressBytes(b);
    return x.length - y.length || compareBytes(x, y);
  };
  return {
    dnsNames: [...request.dnsNames].sort(byString),
    ipAddresses: [...request.ipAddresses].sort(byAddress),
    uris: [...request.uris].sort(byString),
  };
}

function leafExtensions(inputs: IssuanceInputs): Extension[] {
  const { request, issuer } = inputs;
  const profile = PROFILES[request.profile];
  const spki = request.csr.subjectPublicKeyInfo;
  const extensions: Extension[] = [
    basicConstraints(false),
    keyUsage(leafKeyUsageBits(profile, request.csr.keyType)),
    extendedKeyUsage(profile.extendedKeyUsage),
    subjectAltName(sortedNames(request), false),
    subjectKeyIdentifier(keyIdentifier(spki)),
    authorityKeyIdentifier(issuer.keyIdentifier),
  ];
  if (request.falcon !== null) {
    extensions.push({
      oid: FALCON_PUBLIC_KEY_EXTENSION_OID,
      critical: false,
      value: encodeFalconKeyExtension(request.falcon.publicKey),
    });
  }
  extensions.push({
    oid: ISSUANCE_REFERENCE_OID,
    critical: false,
    value: encodeIssuanceReference({
      chainId: inputs.chainId,
      height: inputs.blockHeight,
      txHash: inputs.txHash,
    }),
  });
  return extensions;
}

function batchInclusionExtension(inclusion: BatchInclusion): Extension {
  return { oid: BATCH_INCLUSION_OID, critical: false, value: encodeBatchInclusion(inclusion) };
}

function buildLeafOrCertificateTbs(
  inputs: IssuanceInputs,
  inclusion: BatchInclusion | null,
): Uint8Array {
  requireInputs(inputs);
  const { notBefore, notAfter } = validityOf(inputs);
  const { issuer } = inputs;
  if (notBefore < issuer.notBefore || notAfter > issuer.notAfter) {
    throw caError(CaErrorCode.INVALID_ISSUER, "the leaf's validity is not within the issuer's", {
      notBefore: notBefore.toISOString(),
      notAfter: notAfter.toISOString(),
      issuerNotBefore: issuer.notBefore.toISOString(),
      issuerNotAfter: issuer.notAfter.toISOString(),
    });
  }
  const extensions = leafExtensions(inputs);
  if (inclusion !== null) extensions.push(batchInclusionExtension(inclusion));
  return buildTbs({
    serial: certificateSerial(inputs.chainId, inputs.blockHeight, inputs.txHash),
    issuerName: issuer.subjectName,
    notBefore,
    notAfter,
    // The names live in subjectAltName; the subject only says which cluster and profile.
    subjectName: encodeName([
      ['OU', inputs.request.profile],
      ['O', issuer.cluster],
    ]),
    subjectPublicKeyInfo: inputs.request.csr.subjectPublicKeyInfo,
    extensions,
  });
}

/** The Merkle leaf: the TBSCertificate without the batch-inclusion extension. Pure. */
export function leafTbs(inputs: IssuanceInputs): Uint8Array {
  return buildLeafOrCertificateTbs(inputs, null);
}

/** The issued TBSCertificate: the leaf TBS plus the batch-inclusion extension. Pure. */
export function certificateTbs(inputs: IssuanceInputs, inclusion: BatchInclusion): Uint8Array {
  return buildLeafOrCertificateTbs(inputs, inclusion);
}

// ---------------------------------------------------------------------------------------------
// Blocks

export interface BlockIssuanceItem {
  readonly txHash: Uint8Array;
  readonly request: CertificateRequest;
  readonly lifetimeSeconds: number;
}

export interface BlockIssuance {
  readonly chainId: string;
  readonly height: number;
  readonly blockTime: number;
  readonly issuer: Issuer;
  /** The block's issuance transactions that passed `checkRequest`, in block order. */
  readonly items: readonly BlockIssuanceItem[];
}

export interface PreparedBlock {
  readonly block: BlockIssuance;
  readonly inputs: readonly IssuanceInputs[];
  readonly leaves: readonly Uint8Array[];
  readonly batch: CertificateBatch;
  /** What the proposer's FALCON key signs. */
  readonly statement: BatchStatement;
}

/** Leaves, Merkle tree and batch statement of a block. Pure; every validator runs it. */
export function prepareBlock(block: BlockIssuance): PreparedBlock {
  if (block.items.length === 0) {
    throw caError(CaErrorCode.INVALID_ISSUANCE_INPUT, 'a batch needs at least one certificate');
  }
  const inputs = block.items.map((item) => ({
    request: item.request,
    lifetimeSeconds: item.lifetimeSeconds,
    txHash: item.txHash,
    chainId: block.chainId,
    blockHeight: block.height,
    blockTime: block.blockTime,
    issuer: block.issuer,
  }));
  const leaves = inputs.map(leafTbs);
  const batch = CertificateBatch.fromLeaves(leaves);
  return {
    block,
    inputs,
    leaves,
    batch,
    statement: {
      chainId: block.chainId,
      height: block.height,
      rootHash: batch.rootHash,
      treeSize: batch.size,
      issuerFingerprint: block.issuer.fingerprint,
    },
  };
}

function requireMatchingBatch(prepared: PreparedBlock, batchSignature: BatchSignature): void {
  const s = prepared.statement;
  if (
    batchSignature.chainId !== s.chainId ||
    batchSignature.height !== s.height ||
    batchSignature.treeSize !== s.treeSize ||
    !bytesEqual(batchSignature.rootHash, s.rootHash) ||
    !bytesEqual(batchSignature.issuerFingerprint, s.issuerFingerprint)
  ) {
    throw caError(CaErrorCode.BATCH_SIGNATURE_INVALID, 'the batch signature is for another batch', {
      height: batchSignature.height,
      treeSize: batchSignature.treeSize,
    });
  }
}

/** The batch-inclusion extension of leaf `index`. */
export function inclusionOf(
  prepared: PreparedBlock,
  batchSignature: BatchSignature,
  index: number,
): BatchInclusion {
  return {
    leafIndex: index,
    treeSize: prepared.batch.size,
    rootHash: prepared.batch.rootHash,
    path: prepared.batch.inclusionPath(index),
    signature: { algorithm: batchSignature.algorithm, value: batchSignature.signature },
  };
}

/**
 * The issued TBSCertificate of leaf `index` of a prepared block: `certificateTbs` of its inputs,
 * built from the leaf the block already holds (the leaf TBS is the issued TBS without the
 * batch-inclusion extension, which comes last) instead of encoding every field again.
 */
export function preparedCertificateTbs(
  prepared: PreparedBlock,
  batchSignature: BatchSignature,
  index: number,
): Uint8Array {
  const leaf = prepared.leaves[index];
  if (leaf === undefined) throw new RangeError(`the block has no leaf ${index}`);
  return withExtensionAppended(
    leaf,
    batchInclusionExtension(inclusionOf(prepared, batchSignature, index)),
  );
}

/** Signs every certificate of a prepared block (the proposer, after the batch signature). */
export function signBlockCertificates(
  prepared: PreparedBlock,
  batchSignature: BatchSignature,
  signer: CertificateSigner,
): Uint8Array[] {
  requireMatchingBatch(prepared, batchSignature);
  if (!signer.publicKey.equals(prepared.block.issuer.publicKey)) {
    throw caError(
      CaErrorCode.INVALID_ISSUER,
      "the signer's key is not the issuer certificate's key",
    );
  }
  return prepared.inputs.map((_, index) => {
    const tbs = preparedCertificateTbs(prepared, batchSignature, index);
    return assembleCertificate(tbs, signer.sign(tbs));
  });
}

export interface IssuedBlock {
  readonly certificates: readonly Uint8Array[];
  readonly batchSignature: BatchSignature;
}

/** The proposer's whole step: prepare, one FALCON batch signature, then every X.509 signature. */
export async function issueBlock(
  block: BlockIssuance,
  keys: {
    readonly signer: CertificateSigner;
    readonly falconSecretKey: Uint8Array;
    readonly falcon?: FalconBackend;
  },
): Promise<IssuedBlock> {
  const prepared = prepareBlock(block);
  const batchSignature = await signBatch(prepared.statement, keys.falconSecretKey, keys.falcon);
  return {
    certificates: signBlockCertificates(prepared, batchSignature, keys.signer),
    batchSignature,
  };
}

export interface ExpectedCertificate {
  readonly inputs: IssuanceInputs;
  readonly inclusion: BatchInclusion;
}

function mismatch(part: string, message: string, detail: Record<string, unknown> = {}): never {
  throw caError(CaErrorCode.CERTIFICATE_MISMATCH, message, { part, ...detail });
}

/**
 * Checks a proposer's certificate against the inputs that determine it: the TBSCertificate and
 * the signature algorithm must equal the rebuilt ones byte for byte, and the signature must be
 * a low-S ECDSA signature by the issuer's key. (With the deterministic signer the whole
 * certificate is reproducible by its issuer; other validators do not hold the key, so the
 * signature value is checked, not rebuilt.) Throws `CERTIFICATE_MISMATCH` with `detail.part`.
 */
export function checkIssuedCertificate(
  certificate: Uint8Array,
  expected: ExpectedCertificate,
): void {
  checkCertificateAgainst(
    certificate,
    () => certificateTbs(expected.inputs, expected.inclusion),
    expected.inputs.issuer.publicKey,
  );
}

/** `checkIssuedCertificate` with the expected TBS computed by `expectedTbs`. */
function checkCertificateAgainst(
  certificate: Uint8Array,
  expectedTbs: () => Uint8Array,
  issuerKey: KeyObject,
): void {
  let parts: ReturnType<typeof splitCertificate>;
  try {
    parts = splitCertificate(certificate);
  } catch (error) {
    return mismatch('malformed', `certificate does not decode: ${(error as Error).message}`);
  }
  const tbs = expectedTbs();
  if (!bytesEqual(parts.tbs, tbs))
    mismatch('tbs', 'TBSCertificate differs from the one the inputs determine');
  if (!bytesEqual(parts.signatureAlgorithm, ECDSA_WITH_SHA256)) {
    mismatch('signature_algorithm', 'signatureAlgorithm is not ecdsa-with-SHA256');
  }
  if (!isLowS(parts.signature))
    mismatch('signature', 'signature is not a low-S DER ECDSA signature');
  if (!verifyEcdsaSha256(parts.tbs, parts.signature, issuerKey)) {
    mismatch('signature', "signature does not verify with the issuer's key");
  }
}

/**
 * A validator's check of a whole block's issuance: the batch signature covers this block's
 * statement and verifies with the issuer's FALCON key, and certificate i is exactly the one
 * item i determines. Throws `BATCH_SIGNATURE_INVALID` or `CERTIFICATE_MISMATCH` (with the index).
 */
export function checkBlockCertificates(
  prepared: PreparedBlock,
  batchSignature: BatchSignature,
  certificates: readonly Uint8Array[],
  falcon: FalconBackend = defaultFalcon(),
): void {
  requireMatchingBatch(prepared, batchSignature);
  if (
    batchSignature.algorithm !== FALCON_ALGORITHM_ID ||
    !verifyBatchSignature(batchSignature, prepared.block.issuer.falconPublicKey, falcon)
  ) {
    throw caError(
      CaErrorCode.BATCH_SIGNATURE_INVALID,
      "the batch signature does not verify with the issuer's FALCON key",
    );
  }
  if (certificates.length !== prepared.inputs.length) {
    mismatch('count', 'the number of certificates differs from the number of requests', {
      expected: prepared.inputs.length,
      got: certificates.length,
    });
  }
  prepared.inputs.forEach((inputs, index) => {
    try {
      checkCertificateAgainst(
        certificates[index] as Uint8Array,
        () => preparedCertificateTbs(prepared, batchSignature, index),
        inputs.issuer.publicKey,
      );
    } catch (error) {
      if (error instanceof CaError && error.code === CaErrorCode.CERTIFICATE_MISMATCH) {
        mismatch(String(error.detail.part), `certificate ${index}: ${error.message}`, { index });
      }
      throw error;
    }
  });
}
