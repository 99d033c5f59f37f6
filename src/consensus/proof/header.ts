import { z } from 'zod';
import { encodeCanonical } from '../../codec/cbor.js';
import { bytes, parseInput, SchemaError } from '../../codec/schema.js';
import { taggedHash } from '../../crypto/hash.js';
import { leafHash, MerkleTree } from '../../crypto/merkle.js';
import { ProofError, ProofErrorCode } from './errors.js';

/**
 * The block header fields a consensus proof binds. Precommits sign `hashProofHeader(header)`,
 * so every field here is attested by the quorum. Header fields the consensus engine adds and the
 * proof does not interpret (BFT time of the proposal, last-commit and evidence hashes, ...) are
 * committed through `extensionHash`.
 */
export interface ProofHeader {
  readonly chainId: string;
  /** ≥ 1; height 0 is genesis, which has no proof. */
  readonly height: number;
  readonly parentHash: Uint8Array;
  /** `transactionsRoot(txHashes)` of the block's transactions, in block order. */
  readonly transactionsRoot: Uint8Array;
  /** Application state root after executing this block. */
  readonly stateRoot: Uint8Array;
  /** `hashValidatorSet` of the set that votes on this height. */
  readonly validatorSetHash: Uint8Array;
  /** The proposer's raw Ed25519 public key. */
  readonly proposer: Uint8Array;
  /** `proposerProofHash` of the parts the proposer built before proposing. */
  readonly proposerProofHash: Uint8Array;
  /** Commits to header fields defined by the consensus engine; opaque to the proof. */
  readonly extensionHash: Uint8Array;
}

export const HEADER_VERSION = 1;
export const MAX_CHAIN_ID_LENGTH = 64;

const hash32 = bytes({ length: 32 });

export const proofHeaderSchema = z.strictObject({
  chainId: z.string().min(1).max(MAX_CHAIN_ID_LENGTH),
  height: z.int().min(1),
  parentHash: hash32,
  transactionsRoot: hash32,
  stateRoot: hash32,
  validatorSetHash: hash32,
  proposer: hash32,
  proposerProofHash: hash32,
  extensionHash: hash32,
});

/** Throws `PROOF_INVALID_INPUT` unless `header` is a well-formed `ProofHeader`. */
export function assertProofHeader(header: unknown): asserts header is ProofHeader {
  try {
    parseInput(proofHeaderSchema, header, 'header');
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error;
    throw new ProofError(ProofErrorCode.INVALID_INPUT, error.message, { issues: error.issues });
  }
}

/** Canonical CBOR of the header (RFC 8949 §4.2.1), version-tagged. */
export function encodeProofHeader(header: ProofHeader): Uint8Array {
  return encodeCanonical({
    v: HEADER_VERSION,
    chainId: header.chainId,
    height: header.height,
    parentHash: header.parentHash,
    transactionsRoot: header.transactionsRoot,
    stateRoot: header.stateRoot,
    validatorSetHash: header.validatorSetHash,
    proposer: header.proposer,
    proposerProofHash: header.proposerProofHash,
    extensionHash: header.extensionHash,
  });
}

/** The block hash precommits sign. */
export function hashProofHeader(header: ProofHeader): Uint8Array {
  return taggedHash('hypermesh/block-header', encodeProofHeader(header));
}

/**
 * RFC 9162 §2.1.1 Merkle Tree Hash whose leaves are the transactions' 32-byte hashes, so a
 * client can prove its transaction is in a block with an ordinary inclusion proof.
 */
export function transactionsRoot(txHashes: readonly Uint8Array[]): Uint8Array {
  return MerkleTree.fromLeafHashes(txHashes.map((txHash) => leafHash(txHash))).root();
}
