import { taggedHash } from '../../crypto/hash.js';
import type { ProofHeader } from './header.js';
import { u64 } from './hashing.js';

/**
 * Where in the chain a proof is made: everything the proposer's challenges and hash-chain seed
 * are derived from. `previousProofOutput` is `consensusProofOutput` of the canonical parent
 * proof — the one whose quorum certificate is the last commit carried by this block — so it
 * exists only once more than 2/3 of the voting power has precommitted the parent.
 */
export interface ProofAnchor {
  readonly chainId: string;
  readonly height: number;
  readonly parentHash: Uint8Array;
  readonly previousProofOutput: Uint8Array;
  /** The proposer's raw Ed25519 public key. */
  readonly proposer: Uint8Array;
}

export function anchorOf(header: ProofHeader, previousProofOutput: Uint8Array): ProofAnchor {
  return {
    chainId: header.chainId,
    height: header.height,
    parentHash: header.parentHash,
    previousProofOutput,
    proposer: header.proposer,
  };
}

/** Domain-separated digest of the anchor plus extra fields. */
export function anchorDigest(
  tag: string,
  anchor: ProofAnchor,
  ...extra: readonly Uint8Array[]
): Uint8Array {
  return taggedHash(
    tag,
    anchor.chainId,
    u64(anchor.height),
    anchor.parentHash,
    anchor.previousProofOutput,
    anchor.proposer,
    ...extra,
  );
}
