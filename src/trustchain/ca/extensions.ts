import { FALCON1024_MAX_SIGNATURE_BYTES, FALCON_ALGORITHM_ID } from '../../crypto/falcon.js';
import { HASH_SIZE } from '../../crypto/merkle.js';
import { HYPERMESH_OID_ARC } from '../../crypto/x509.js';
import {
  DerError,
  TAG,
  children,
  contentOf,
  expect,
  octetString,
  readSmallUnsigned,
  readUtf8,
  readWhole,
  sequence,
  unsignedInteger,
  utf8String,
  type Tlv,
} from './der.js';

/**
 * The TrustChain CA's non-critical X.509 extensions, under `<HYPERMESH_OID_ARC>.2`:
 *
 *   <arc>.2.1  issuance reference — which transaction in which block of which chain
 *   <arc>.2.2  batch inclusion    — the certificate's Merkle inclusion proof in its block's batch
 *                                  and the batch's FALCON-1024 signature
 *
 * ASN.1 (DER):
 *
 *   IssuanceReference ::= SEQUENCE {
 *     version   INTEGER (1),
 *     chainId   UTF8String (SIZE (1..64)),
 *     height    INTEGER (1..MAX),
 *     txHash    OCTET STRING (SIZE (32)) }
 *
 *   BatchInclusion ::= SEQUENCE {
 *     version    INTEGER (1),
 *     leafIndex  INTEGER (0..MAX),
 *     treeSize   INTEGER (1..MAX),
 *     rootHash   OCTET STRING (SIZE (32)),
 *     path       SEQUENCE SIZE (0..64) OF OCTET STRING (SIZE (32)),
 *     batchSignature SEQUENCE {
 *       algorithm UTF8String,            -- "falcon-1024-r3"
 *       value     OCTET STRING } }
 *
 * The batch-inclusion extension is always the last extension, and the Merkle leaf of a
 * certificate is its TBSCertificate without it (see `leafTbs` in issue.ts).
 */
export const TRUSTCHAIN_CA_OID_ARC = `${HYPERMESH_OID_ARC}.2`;
export const ISSUANCE_REFERENCE_OID = `${TRUSTCHAIN_CA_OID_ARC}.1`;
export const BATCH_INCLUSION_OID = `${TRUSTCHAIN_CA_OID_ARC}.2`;
export const EXTENSION_VERSION = 1;
/** A path longer than 64 hashes would need a tree of more than 2^64 leaves. */
export const MAX_PATH_LENGTH = 64;

export interface IssuanceReference {
  readonly chainId: string;
  readonly height: number;
  readonly txHash: Uint8Array;
}

export interface BatchInclusion {
  readonly leafIndex: number;
  readonly treeSize: number;
  readonly rootHash: Uint8Array;
  readonly path: readonly Uint8Array[];
  readonly signature: { readonly algorithm: string; readonly value: Uint8Array };
}

export function encodeIssuanceReference(reference: IssuanceReference): Uint8Array {
  return sequence(
    unsignedInteger(EXTENSION_VERSION),
    utf8String(reference.chainId),
    unsignedInteger(reference.height),
    octetString(reference.txHash),
  );
}

function readVersion(bytes: Uint8Array, element: Tlv | undefined): void {
  if (element === undefined || readSmallUnsigned(bytes, element) !== EXTENSION_VERSION) {
    throw new DerError(`unsupported extension version (expected ${EXTENSION_VERSION})`);
  }
}

function readHash(bytes: Uint8Array, element: Tlv | undefined, what: string): Uint8Array {
  const value = contentOf(bytes, expect(element, TAG.octetString, what));
  if (value.length !== HASH_SIZE) throw new DerError(`${what} must be ${HASH_SIZE} bytes`);
  return value.slice();
}

/** Throws `DerError` unless `value` is exactly one v1 IssuanceReference. */
export function decodeIssuanceReference(value: Uint8Array): IssuanceReference {
  const parts = children(value, expect(readWhole(value), TAG.sequence, 'IssuanceReference'));
  if (parts.length !== 4) throw new DerError('IssuanceReference must have four elements');
  readVersion(value, parts[0]);
  const chainId = readUtf8(value, expect(parts[1], TAG.utf8String, 'chainId'));
  if (chainId.length === 0 || chainId.length > 64) throw new DerError('chainId length');
  const height = readSmallUnsigned(value, parts[2] as Tlv);
  if (height < 1) throw new DerError('height must be at least 1');
  return { chainId, height, txHash: readHash(value, parts[3], 'txHash') };
}

export function encodeBatchInclusion(inclusion: BatchInclusion): Uint8Array {
  return sequence(
    unsignedInteger(EXTENSION_VERSION),
    unsignedInteger(inclusion.leafIndex),
    unsignedInteger(inclusion.treeSize),
    octetString(inclusion.rootHash),
    sequence(...inclusion.path.map(octetString)),
    sequence(utf8String(inclusion.signature.algorithm), octetString(inclusion.signature.value)),
  );
}

/** Throws `DerError` unless `value` is exactly one v1 BatchInclusion. */
export function decodeBatchInclusion(value: Uint8Array): BatchInclusion {
  const parts = children(value, expect(readWhole(value), TAG.sequence, 'BatchInclusion'));
  if (parts.length !== 6) throw new DerError('BatchInclusion must have six elements');
  readVersion(value, parts[0]);
  const leafIndex = readSmallUnsigned(value, parts[1] as Tlv);
  const treeSize = readSmallUnsigned(value, parts[2] as Tlv);
  if (treeSize < 1 || leafIndex >= treeSize) throw new DerError('leafIndex must be below treeSize');
  const rootHash = readHash(value, parts[3], 'rootHash');
  const pathElements = children(value, expect(parts[4], TAG.sequence, 'path'));
  if (pathElements.length > MAX_PATH_LENGTH) throw new DerError('path is too long');
  const path = pathElements.map((element) => readHash(value, element, 'path hash'));
  const signatureParts = children(value, expect(parts[5], TAG.sequence, 'batchSignature'));
  if (signatureParts.length !== 2) throw new DerError('batchSignature must have two elements');
  const algorithm = readUtf8(value, expect(signatureParts[0], TAG.utf8String, 'algorithm'));
  if (algorithm !== FALCON_ALGORITHM_ID) {
    throw new DerError(`unsupported batch signature algorithm ${algorithm}`);
  }
  const signature = contentOf(value, expect(signatureParts[1], TAG.octetString, 'signature'));
  if (signature.length === 0 || signature.length > FALCON1024_MAX_SIGNATURE_BYTES) {
    throw new DerError('batch signature length');
  }
  return {
    leafIndex,
    treeSize,
    rootHash,
    path,
    signature: { algorithm, value: signature.slice() },
  };
}
