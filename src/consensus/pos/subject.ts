import type { GenesisDocument } from '../genesis.js';
import type { HeightContext } from '../height-context.js';
import type { ProofAnchor } from '../proof/anchor.js';
import { ProofError } from '../proof/errors.js';
import { BLOCK_HASH_BYTES } from '../messages.js';
import type { Block, BlockHeader } from '../types.js';
import { findValidator, type Validator } from '../validator-set.js';
import { isEncodableText } from '../verify.js';
import { blockAnchor } from './anchor.js';
import { blockProofLimits, decodeBlockProof, type BlockProof } from './encoding.js';

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

const HEADER_HASHES = [
  'parentHash',
  'transactionsRoot',
  'evidenceRoot',
  'lastCommitHash',
  'appStateRoot',
  'validatorsHash',
] as const;

function isHash(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length === BLOCK_HASH_BYTES;
}

/**
 * Why `block` is not a well-formed engine block — the types and lengths that the block hash, the
 * anchor, the proof decoding and the roots rely on (the same shape rules `checkBlock` applies) —
 * or undefined. A caller may hand in any object, and the part checks would throw on one of
 * another shape instead of reporting it.
 */
export function malformedBlock(block: Block): string | undefined {
  if (typeof block !== 'object' || block === null) return 'block is not a record';
  const header: unknown = block.header;
  if (typeof header !== 'object' || header === null) return 'block has no header';
  const fields = header as Partial<Record<keyof BlockHeader, unknown>>;
  // A lone surrogate has no UTF-8 form: the header could not be hashed.
  if (!isEncodableText(fields.chainId)) return 'header chainId must be a well-formed string';
  const { height, time } = fields;
  if (!Number.isSafeInteger(height) || (height as number) < 1) {
    return 'header height must be a positive integer';
  }
  if (!Number.isSafeInteger(time)) return 'header time must be an integer';
  for (const field of HEADER_HASHES) {
    if (!isHash(fields[field])) return `header ${field} must be 32 bytes`;
  }
  if (!isEncodableText(fields.proposer)) return 'header proposer must be a well-formed string';
  if (!(fields.consensusProof instanceof Uint8Array)) {
    return 'header consensus proof must be bytes';
  }
  const { transactions, evidence, lastCommit } = block as Partial<Record<keyof Block, unknown>>;
  if (!Array.isArray(transactions) || !transactions.every((tx) => tx instanceof Uint8Array)) {
    return 'transactions must be byte strings';
  }
  if (!Array.isArray(evidence)) return 'evidence must be a list';
  if (lastCommit !== null && typeof lastCommit !== 'object') {
    return 'last commit must be a record or null';
  }
  return undefined;
}

/** The subject of a well-formed block (`malformedBlock` returned undefined for it). */
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
  // One stamp per transaction; beyond the genesis maximum the block is invalid anyway, and the
  // proof need not be read at a size the transactions did not pay for.
  const stamps = Math.min(block.transactions.length, genesis.consensus.maxBlockTxs);
  let proof: BlockProof | ProofError;
  try {
    proof = decodeBlockProof(header.consensusProof, blockProofLimits(genesis.proof, stamps));
  } catch (error) {
    if (!(error instanceof ProofError)) throw error;
    proof = error;
  }
  return { genesis, context, block, proposer, anchor, proof };
}
