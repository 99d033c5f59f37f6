import { taggedHash } from '../../crypto/hash.js';
import type { ProofAnchor } from '../proof/anchor.js';
import { invalidInput } from '../proof/errors.js';

/**
 * How a block's proof is chained to its parent. The previous proof output is derived from the
 * parent block hash, which commits to the parent header and so to the parent's proof bytes
 * (`header.consensusProof`): one hash per block links the proofs, and a node that has the
 * parent header — every node does — derives it without keeping any proof state.
 *
 *   previousProofOutput(h) = taggedHash("hypermesh/pos/output", hash(block h - 1))   h ≥ 2
 *   previousProofOutput(1) = taggedHash("hypermesh/pos/genesis", chainId, genesisHash)
 */
export function blockProofOutput(blockHash: Uint8Array): Uint8Array {
  if (!(blockHash instanceof Uint8Array) || blockHash.length !== 32) {
    throw invalidInput('a block hash must be 32 bytes');
  }
  return taggedHash('hypermesh/pos/output', blockHash);
}

/** The `previousProofOutput` of height 1. */
export function genesisProofOutput(chainId: string, genesisHash: Uint8Array): Uint8Array {
  if (!(genesisHash instanceof Uint8Array) || genesisHash.length !== 32) {
    throw invalidInput('the genesis hash must be 32 bytes');
  }
  return taggedHash('hypermesh/pos/genesis', chainId, genesisHash);
}

export interface BlockPosition {
  readonly chainId: string;
  readonly height: number;
  /** The header's parent hash: the previous block's hash, the genesis hash at height 1. */
  readonly parentHash: Uint8Array;
  readonly genesisHash: Uint8Array;
  /** The proposer's raw Ed25519 public key. */
  readonly proposer: Uint8Array;
}

/** The anchor of the proof of the block at `position`. */
export function blockAnchor(position: BlockPosition): ProofAnchor {
  const { chainId, height, parentHash, genesisHash, proposer } = position;
  return {
    chainId,
    height,
    parentHash,
    previousProofOutput:
      height === 1 ? genesisProofOutput(chainId, genesisHash) : blockProofOutput(parentHash),
    proposer,
  };
}
