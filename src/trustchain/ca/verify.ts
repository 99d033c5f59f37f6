import { X509Certificate } from 'node:crypto';
import { bytesEqual } from '../../crypto/bytes.js';
import { defaultFalcon, type FalconBackend } from '../../crypto/falcon.js';
import { sha256 } from '../../crypto/hash.js';
import { leafHash, verifyInclusion } from '../../crypto/merkle.js';
import {
  X509Error,
  X509ErrorCode,
  parseCertificate,
  verifyChain,
  type CertificatePurpose,
  type ParsedCertificate,
} from '../../crypto/x509.js';
import { verifyBatchSignature, type BatchSignature, type BatchStatement } from './batch.js';
import { readTbs, splitCertificate, withoutExtension } from './certificate.js';
import type { TrustBundle, TrustBundleValidator } from './bundle.js';
import { CaErrorCode, caError } from './errors.js';
import {
  BATCH_INCLUSION_OID,
  ISSUANCE_REFERENCE_OID,
  decodeBatchInclusion,
  decodeIssuanceReference,
  type BatchInclusion,
  type IssuanceReference,
} from './extensions.js';

/**
 * Offline verification of a TrustChain certificate from the cluster trust bundle alone: the
 * X.509 chain to the root (src/crypto/x509.ts `verifyChain`), the intermediate's name
 * constraint, the issuance reference, the Merkle inclusion of the certificate's leaf in its
 * block's batch, and the batch's FALCON-1024 signature by the issuing validator's key (which the
 * bundle ties to the root FALCON key). The bundle cannot show that consensus published the
 * certificate (the block's commit), its CT log inclusion or its revocation: a certificate proof
 * with the genesis does the first two offline (ca-module/certificate-proof.ts,
 * `cert verify --proof`), a node's `validate` all three.
 */

export type VerifyFailure =
  | 'malformed_certificate'
  | 'unknown_issuer'
  | 'chain_invalid'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_key_usage'
  | 'name_constraint_violation'
  | 'missing_issuance_reference'
  | 'malformed_issuance_reference'
  | 'wrong_chain'
  | 'missing_batch_inclusion'
  | 'malformed_batch_inclusion'
  | 'inclusion_invalid'
  | 'batch_signature_invalid'
  | 'batch_mismatch'
  /**
   * The serial is not the 16 bytes every TrustChain serial has (issue.ts `certificateSerial`):
   * consensus cannot have published the certificate, whoever signed it.
   */
  | 'not_published';

export interface VerifyOptions {
  /** Validity is checked at this time; default: now. */
  readonly now?: Date;
  /** Extended key usage the leaf must allow; default `any`. */
  readonly purpose?: CertificatePurpose;
  /** The block's published batch signature, if the verifier has it: it must cover this certificate's batch. */
  readonly batchSignature?: BatchSignature;
  readonly falcon?: FalconBackend;
}

export interface VerifiedIssuedCertificate {
  readonly leaf: ParsedCertificate;
  readonly validator: string;
  readonly reference: IssuanceReference;
  readonly inclusion: BatchInclusion;
  /** SHA-256(0x00 || leaf TBS): the certificate's leaf in its block's batch. */
  readonly leafHash: Uint8Array;
}

/** The length of every TrustChain serial (issue.ts `certificateSerial`). */
const SERIAL_BYTES = 16;

function fail(
  reason: VerifyFailure,
  message: string,
  detail: Record<string, unknown> = {},
  cause?: unknown,
): never {
  throw caError(CaErrorCode.VERIFY_FAILED, message, { reason, ...detail }, cause);
}

const CHAIN_FAILURES: Partial<Record<X509ErrorCode, VerifyFailure>> = {
  [X509ErrorCode.EXPIRED]: 'expired',
  [X509ErrorCode.NOT_YET_VALID]: 'not_yet_valid',
  [X509ErrorCode.WRONG_KEY_USAGE]: 'wrong_key_usage',
  [X509ErrorCode.MALFORMED_CERTIFICATE]: 'malformed_certificate',
};

function findIssuer(leaf: ParsedCertificate, bundle: TrustBundle): TrustBundleValidator {
  const node = new X509Certificate(leaf.der);
  const issuer = bundle.validators.find((validator) =>
    node.checkIssued(new X509Certificate(validator.certificate)),
  );
  if (issuer === undefined)
    fail('unknown_issuer', 'no intermediate in the bundle issued this certificate', {
      issuer: leaf.issuer,
    });
  return issuer;
}

function single(leaf: ParsedCertificate, oid: string): Uint8Array | null {
  const matches = leaf.extensions.filter((extension) => extension.oid === oid);
  if (matches.length > 1) fail('malformed_certificate', `extension ${oid} appears more than once`);
  return matches[0]?.value ?? null;
}

/**
 * Verifies `certificate` (DER) against `bundle`; returns what it proved or throws `CaError`
 * `VERIFY_FAILED` with `detail.reason` a `VerifyFailure`, for the first check that fails, in
 * the order: parse, issuer, chain and validity, name constraint, serial length, issuance
 * reference, batch inclusion, FALCON batch signature, the supplied batch signature.
 */
export function verifyIssuedCertificate(
  certificate: Uint8Array,
  bundle: TrustBundle,
  options: VerifyOptions = {},
): VerifiedIssuedCertificate {
  const falcon = options.falcon ?? defaultFalcon();
  let leaf: ParsedCertificate;
  try {
    leaf = parseCertificate(certificate);
  } catch (error) {
    return fail(
      'malformed_certificate',
      `certificate does not parse: ${(error as Error).message}`,
      {},
      error,
    );
  }
  const validator = findIssuer(leaf, bundle);
  try {
    verifyChain({
      chain: [leaf, validator.parsed],
      roots: [bundle.root.parsed],
      now: options.now ?? new Date(),
      purpose: options.purpose ?? 'any',
    });
  } catch (error) {
    if (error instanceof X509Error) {
      fail(
        CHAIN_FAILURES[error.code] ?? 'chain_invalid',
        `chain does not verify: ${error.message}`,
        { x509: error.code },
        error,
      );
    }
    throw error;
  }
  // src/crypto/x509.ts does not evaluate nameConstraints; the intermediates permit only this cluster's URIs.
  const prefix = `spiffe://${bundle.cluster}/`;
  const outside = leaf.uris.find((uri) => !uri.startsWith(prefix));
  if (outside !== undefined) {
    fail('name_constraint_violation', `URI ${outside} is outside the cluster's trust domain`, {
      uri: outside,
    });
  }

  let serialLength: number;
  try {
    serialLength = readTbs(splitCertificate(certificate).tbs).serial.length;
  } catch (error) {
    return fail(
      'malformed_certificate',
      `certificate does not parse: ${(error as Error).message}`,
      {},
      error,
    );
  }
  if (serialLength !== SERIAL_BYTES) {
    fail(
      'not_published',
      `the serial is ${serialLength} bytes, not the ${SERIAL_BYTES} of a TrustChain serial`,
      { serialLength },
    );
  }

  const referenceValue = single(leaf, ISSUANCE_REFERENCE_OID);
  if (referenceValue === null)
    fail('missing_issuance_reference', 'certificate carries no issuance reference');
  let reference: IssuanceReference;
  try {
    reference = decodeIssuanceReference(referenceValue);
  } catch (error) {
    return fail(
      'malformed_issuance_reference',
      `issuance reference does not decode: ${(error as Error).message}`,
      {},
      error,
    );
  }
  if (reference.chainId !== bundle.chainId) {
    fail(
      'wrong_chain',
      `certificate was issued on chain ${reference.chainId}, not ${bundle.chainId}`,
      {
        chainId: reference.chainId,
      },
    );
  }

  const inclusionValue = single(leaf, BATCH_INCLUSION_OID);
  if (inclusionValue === null)
    fail('missing_batch_inclusion', 'certificate carries no batch inclusion proof');
  let inclusion: BatchInclusion;
  let leafTbs: Uint8Array;
  try {
    inclusion = decodeBatchInclusion(inclusionValue);
    if (leaf.extensions[leaf.extensions.length - 1]?.oid !== BATCH_INCLUSION_OID) {
      throw new Error('the batch inclusion extension is not the last extension');
    }
    leafTbs = withoutExtension(splitCertificate(leaf.der).tbs, BATCH_INCLUSION_OID);
  } catch (error) {
    return fail(
      'malformed_batch_inclusion',
      `batch inclusion does not decode: ${(error as Error).message}`,
      {},
      error,
    );
  }
  const hash = leafHash(leafTbs);
  if (
    !verifyInclusion(
      hash,
      inclusion.leafIndex,
      inclusion.treeSize,
      inclusion.path,
      inclusion.rootHash,
    )
  ) {
    fail(
      'inclusion_invalid',
      "the inclusion path does not lead from this certificate's leaf to the batch root",
      {
        leafIndex: inclusion.leafIndex,
        treeSize: inclusion.treeSize,
      },
    );
  }

  const statement: BatchStatement = {
    chainId: reference.chainId,
    height: reference.height,
    rootHash: inclusion.rootHash,
    treeSize: inclusion.treeSize,
    issuerFingerprint: sha256(validator.certificate),
  };
  const embedded: BatchSignature = {
    ...statement,
    algorithm: 'falcon-1024-r3',
    signature: inclusion.signature.value,
  };
  if (!verifyBatchSignature(embedded, validator.falconPublicKey, falcon)) {
    fail(
      'batch_signature_invalid',
      `the FALCON batch signature does not verify with ${validator.name}'s key`,
      {
        validator: validator.name,
        height: reference.height,
      },
    );
  }
  const supplied = options.batchSignature;
  if (supplied !== undefined) {
    const covers =
      supplied.chainId === statement.chainId &&
      supplied.height === statement.height &&
      supplied.treeSize === statement.treeSize &&
      bytesEqual(supplied.rootHash, statement.rootHash) &&
      bytesEqual(supplied.issuerFingerprint, statement.issuerFingerprint);
    if (!covers)
      fail('batch_mismatch', 'the supplied batch signature is for another batch', {
        height: supplied.height,
      });
    if (!verifyBatchSignature(supplied, validator.falconPublicKey, falcon)) {
      fail('batch_signature_invalid', 'the supplied batch signature does not verify', {
        validator: validator.name,
      });
    }
  }
  return { leaf, validator: validator.name, reference, inclusion, leafHash: hash };
}
