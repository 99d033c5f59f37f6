import { taggedHash } from '../../crypto/hash.js';
import { u64 } from './hashing.js';

/**
 * Where in the chain a proof is made: everything the proposer's storage challenges and its
 * hash-chain seed are derived from, so that neither can be prepared before the parent block
 * exists, nor reused at another height, on another chain or by another proposer. How
 * `previousProofOutput` is obtained from the parent block is src/consensus/pos/anchor.ts.
 */
export interface ProofAnchor {
  readonly chainId: string;
  readonly height: number;
  readonly parentHash: Uint8Array;
  readonly previousProofOutput: Uint8Array;
  /** The proposer's raw Ed25519 public key. */
  readonly proposer: Uint8Array;
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
