import { z } from 'zod';
import { decodeCanonical, encodeCanonical } from '../../codec/cbor.js';
import { bytes, parseInput } from '../../codec/schema.js';
import {
  FALCON1024_MAX_SIGNATURE_BYTES,
  FALCON_ALGORITHM_ID,
  defaultFalcon,
  type FalconBackend,
} from '../../crypto/falcon.js';
import { HASH_SIZE, MerkleTree, leafHash } from '../../crypto/merkle.js';
import { CaErrorCode, caError } from './errors.js';

/**
 * One FALCON-1024 signature per block (ARCHITECTURE.md "Post-quantum": FALCON signing costs
 * ~8 ms, so it signs batches): the block's certificate leaves form an RFC 9162 Merkle tree, and
 * the proposer's validator FALCON key — the one its intermediate certificate carries and the
 * root FALCON key endorsed — signs a domain-separated, version-tagged statement about the root.
 *
 * Signed message (deterministic CBOR, RFC 8949 §4.2):
 *
 *   ["hypermesh/trustchain-ca/certificate-batch", 1, "falcon-1024-r3",
 *    chainId, height, rootHash, treeSize, issuerFingerprint]
 *
 * `issuerFingerprint` is SHA-256 of the issuing intermediate's DER: the statement says which
 * intermediate signed the batch's certificates, so a batch cannot be attributed to another.
 */
export const BATCH_SIGNATURE_CONTEXT = 'hypermesh/trustchain-ca/certificate-batch';
export const BATCH_SIGNATURE_VERSION = 1;

export interface BatchStatement {
  readonly chainId: string;
  readonly height: number;
  readonly rootHash: Uint8Array;
  readonly treeSize: number;
  readonly issuerFingerprint: Uint8Array;
}

export interface BatchSignature extends BatchStatement {
  readonly algorithm: typeof FALCON_ALGORITHM_ID;
  readonly signature: Uint8Array;
}

function requireStatement(statement: BatchStatement): void {
  const ok =
    typeof statement.chainId === 'string' &&
    statement.chainId.length >= 1 &&
    statement.chainId.length <= 64 &&
    Number.isSafeInteger(statement.height) &&
    statement.height >= 1 &&
    Number.isSafeInteger(statement.treeSize) &&
    statement.treeSize >= 1 &&
    statement.rootHash instanceof Uint8Array &&
    statement.rootHash.length === HASH_SIZE &&
    statement.issuerFingerprint instanceof Uint8Array &&
    statement.issuerFingerprint.length === HASH_SIZE;
  if (!ok) {
    throw caError(CaErrorCode.BATCH_SIGNATURE_INVALID, 'malformed batch statement', {
      chainId: String(statement.chainId),
      height: statement.height,
      treeSize: statement.treeSize,
    });
  }
}

export function batchSignatureMessage(statement: BatchStatement): Uint8Array {
  requireStatement(statement);
  return encodeCanonical([
    BATCH_SIGNATURE_CONTEXT,
    BATCH_SIGNATURE_VERSION,
    FALCON_ALGORITHM_ID,
    statement.chainId,
    statement.height,
    statement.rootHash,
    statement.treeSize,
    statement.issuerFingerprint,
  ]);
}

/** The Merkle tree over a block's certificate leaves (leaf hash = SHA-256(0x00 || leaf TBS)). */
export class CertificateBatch {
  private constructor(private readonly tree: MerkleTree) {}

  static fromLeaves(leaves: readonly Uint8Array[]): CertificateBatch {
    return new CertificateBatch(MerkleTree.fromLeafHashes(leaves.map(leafHash)));
  }

  get size(): number {
    return this.tree.size;
  }

  get rootHash(): Uint8Array {
    return this.tree.root();
  }

  /** RFC 9162 §2.1.3.1 PATH(index, D[size]). */
  inclusionPath(index: number): Uint8Array[] {
    return this.tree.inclusionProof(index);
  }
}

export async function signBatch(
  statement: BatchStatement,
  falconSecretKey: Uint8Array,
  falcon: FalconBackend = defaultFalcon(),
): Promise<BatchSignature> {
  const signature = await falcon.sign(batchSignatureMessage(statement), falconSecretKey);
  return {
    chainId: statement.chainId,
    height: statement.height,
    rootHash: statement.rootHash.slice(),
    treeSize: statement.treeSize,
    issuerFingerprint: statement.issuerFingerprint.slice(),
    algorithm: FALCON_ALGORITHM_ID,
    signature,
  };
}

/** False for a wrong key, a forged or altered statement, or malformed input; never throws. */
export function verifyBatchSignature(
  batch: BatchSignature,
  falconPublicKey: Uint8Array,
  falcon: FalconBackend = defaultFalcon(),
): boolean {
  if (batch.algorithm !== FALCON_ALGORITHM_ID) return false;
  let message: Uint8Array;
  try {
    message = batchSignatureMessage(batch);
  } catch {
    return false;
  }
  return falcon.verify(batch.signature, message, falconPublicKey);
}

const wireSchema = z.strictObject({
  v: z.literal(BATCH_SIGNATURE_VERSION),
  alg: z.literal(FALCON_ALGORITHM_ID),
  chain: z.string().min(1).max(64),
  height: z.int().min(1),
  root: bytes({ length: HASH_SIZE }),
  size: z.int().min(1),
  issuer: bytes({ length: HASH_SIZE }),
  sig: bytes({ min: 1, max: FALCON1024_MAX_SIGNATURE_BYTES }),
});

/**
 * The decoder's item budget (RFC 8949 §2 data items): `wireSchema`'s strict map of 8 keys and
 * their values, 1 + 2 × 8 = 17. No batch signature accepted before holds more.
 */
const MAX_BATCH_SIGNATURE_ITEMS = 1 + 2 * 8;

/** Deterministic CBOR of a batch signature, for publishing it in a transaction or a file. */
export function encodeBatchSignature(batch: BatchSignature): Uint8Array {
  return encodeCanonical({
    v: BATCH_SIGNATURE_VERSION,
    alg: batch.algorithm,
    chain: batch.chainId,
    height: batch.height,
    root: batch.rootHash,
    size: batch.treeSize,
    issuer: batch.issuerFingerprint,
    sig: batch.signature,
  });
}

export function decodeBatchSignature(encoded: Uint8Array): BatchSignature {
  let wire: z.infer<typeof wireSchema>;
  try {
    wire = parseInput(
      wireSchema,
      decodeCanonical(encoded, { maxItems: MAX_BATCH_SIGNATURE_ITEMS }),
      'batchSignature',
    );
  } catch (error) {
    throw caError(
      CaErrorCode.BATCH_SIGNATURE_INVALID,
      `not a canonical batch signature: ${(error as Error).message}`,
      {},
      error,
    );
  }
  return {
    algorithm: wire.alg,
    chainId: wire.chain,
    height: wire.height,
    rootHash: wire.root,
    treeSize: wire.size,
    issuerFingerprint: wire.issuer,
    signature: wire.sig,
  };
}
