import { ConsensusError, ConsensusErrorCode } from './errors.js';
import { BLOCK_HASH_BYTES } from './messages.js';
import {
  genesisProposerSchedule,
  nextHeightProposerSchedule,
  type ProposerSchedule,
} from './proposer.js';
import type { Block, QuorumCertificate } from './types.js';
import type { ValidatorSet } from './validator-set.js';

/**
 * What the engine needs to know about the chain to decide one height: who votes (with proposer
 * priorities) and what the block must build on. The driver supplies it at start and after each
 * commit, once the application has executed the block.
 */
export interface GenesisParent {
  readonly kind: 'genesis';
  /** Hash of the genesis document; the first block's parent hash. */
  readonly hash: Uint8Array;
  /** Genesis time: the first block's time. */
  readonly time: number;
}

export interface BlockParent {
  readonly kind: 'block';
  readonly height: number;
  readonly hash: Uint8Array;
  readonly time: number;
  /** This node's commit of the parent; a proposer puts it in its block as `lastCommit`. */
  readonly commit: QuorumCertificate;
  /** The validators that decided the parent, who sign any `lastCommit`. */
  readonly validators: ValidatorSet;
}

export interface HeightContext {
  readonly height: number;
  readonly schedule: ProposerSchedule;
  readonly parent: GenesisParent | BlockParent;
}

export function genesisContext(
  validators: ValidatorSet,
  genesis: { readonly hash: Uint8Array; readonly time: number },
): HeightContext {
  return {
    height: 1,
    schedule: genesisProposerSchedule(validators),
    parent: { kind: 'genesis', hash: genesis.hash, time: genesis.time },
  };
}

/**
 * The context after `block` was committed at `context.height` with `commit` (which certifies
 * it: `commit.blockHash` is the block's hash). The validator set stays the same; validator
 * updates from the application are not applied yet.
 */
export function nextHeightContext(
  context: HeightContext,
  block: Block,
  commit: QuorumCertificate,
): HeightContext {
  return {
    height: context.height + 1,
    schedule: nextHeightProposerSchedule(context.schedule),
    parent: {
      kind: 'block',
      height: context.height,
      hash: commit.blockHash,
      time: block.header.time,
      commit,
      validators: context.schedule.validators,
    },
  };
}

/** Checks that a context is coherent. Returns the reason it is not, or undefined. */
export function checkHeightContext(context: HeightContext): ConsensusError | undefined {
  const invalid = (message: string) =>
    new ConsensusError(ConsensusErrorCode.INVALID_CONFIG, message, {
      height: context?.height,
    });
  if (typeof context !== 'object' || context === null) return invalid('no height context');
  if (!Number.isSafeInteger(context.height) || context.height < 1) {
    return invalid('height must be a positive integer');
  }
  const { parent } = context;
  if (!(parent.hash instanceof Uint8Array) || parent.hash.length !== BLOCK_HASH_BYTES) {
    return invalid('parent hash must be 32 bytes');
  }
  if (!Number.isSafeInteger(parent.time) || parent.time < 0) {
    return invalid('parent time must be a non-negative integer of milliseconds');
  }
  if (parent.kind === 'genesis' ? context.height !== 1 : parent.height !== context.height - 1) {
    return invalid('parent is not the previous height');
  }
  return undefined;
}
