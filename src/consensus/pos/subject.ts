import type { GenesisDocument } from '../genesis.js';
import type { HeightContext } from '../height-context.js';
import type { ProofAnchor } from '../proof/anchor.js';
import { ProofError } from '../proof/errors.js';
import type { Block } from '../types.js';
import { findValidator, type Validator } from '../validator-set.js';
import { blockAnchor } from './anchor.js';
import { decodeBlockProof, type BlockProof } from './encoding.js';

/**
 * A block as the proof checks see it: its proposer resolved in the validator set of its height,
 * its chain position (anchor) and its decoded proof bytes, computed once for all four parts.
 */
export interface ProofSubject {
  readonly genesis: GenesisDocument;
  readonly context: HeightContext;
  readonly block: Block;
  /** The proposer's validator entry; undefined if `header.proposer` is not in the set. */
  readonly proposer: Validator | undefined;
  /** Undefined exactly when `proposer` is. */
  readonly anchor: ProofAnchor | undefined;
  /** The decoded `header.consensusProof`, or why it does not decode. */
  readonly proof: BlockProof | ProofError;
}

export function proofSubject(
  genesis: GenesisDocument,
  genesisHash: Uint8Array,
  context: HeightContext,
  block: Block,
): ProofSubject {
  const { header } = block;
  const proposer = findValidator(context.schedule.validators, header.proposer);
  const anchor =
    proposer === undefined
      ? undefined
      : blockAnchor({
          chainId: genesis.chainId,
          height: header.height,
          parentHash: header.parentHash,
          genesisHash,
          proposer: proposer.publicKey,
        });
  let proof: BlockProof | ProofError;
  try {
    proof = decodeBlockProof(header.consensusProof);
  } catch (error) {
    if (!(error instanceof ProofError)) throw error;
    proof = error;
  }
  return { genesis, context, block, proposer, anchor, proof };
}
