import { ConsensusError, ConsensusErrorCode } from './errors.js';
import { BLOCK_HASH_BYTES } from './messages.js';
import {
  genesisProposerSchedule,
  nextHeightProposerSchedule,
  type ProposerSchedule,
} from './proposer.js';
import type { Block, QuorumCertificate } from './types.js';
import type { ValidatorSet, ValidatorSetUpdate } from './validator-set.js';

/**
 * What the engine needs to know about the chain to decide one height: who votes (with proposer
 * priorities), who votes next, and what the block must build on. The driver supplies it at
 * start and after each commit, once the application has executed the block.
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
  /** The validators of this height with their proposer priorities. */
  readonly schedule: ProposerSchedule;
  /**
   * The schedule of height + 1, already fixed (CometBFT `NextValidators`): the updates of block
   * height − 1 are in it. Absent in a context built by hand: then height + 1 keeps this set.
   */
  readonly nextSchedule?: ProposerSchedule;
  readonly parent: GenesisParent | BlockParent;
  /**
   * The validator sets of the last `EVIDENCE_MAX_AGE` heights up to this one, oldest first,
   * one entry per set (`fromHeight` = the first height it decided): evidence of an earlier
   * height is checked against the set of that height. Absent in a context built by hand: then
   * evidence is checked against this height's set.
   */
  readonly history?: readonly ValidatorSetEpoch[];
}

/** A validator set and the first height it decides (until the next entry's height). */
export interface ValidatorSetEpoch {
  readonly fromHeight: number;
  readonly validators: ValidatorSet;
}

/**
 * How many heights back evidence may reach: a block at height h includes only equivocations
 * of heights h − EVIDENCE_MAX_AGE … h − 1, each checked against the set of its own height.
 */
export const EVIDENCE_MAX_AGE = 100;

/**
 * Validator-set changes follow CometBFT: the updates block h's execution returns take effect
 * at height h + 2. When h commits, the set of h + 1 is already fixed (it signed nothing yet but
 * every correct node derived it when h − 1 committed), so:
 *
 *   set(1) = set(2) = genesis
 *   set(h + 2) = set(h + 1) with updates(h) applied          (h ≥ 1)
 *   schedule(h + 2) = one election on set(h + 2) with the priorities of schedule(h + 1)
 *                     carried over (proposer.ts `nextHeightProposerSchedule`)
 *
 * Block h's header names set(h); its commit is by set(h); block h + 1 carries that commit as
 * its `lastCommit`, checked against set(h) (`parent.validators`).
 */
export function genesisContext(
  validators: ValidatorSet,
  genesis: { readonly hash: Uint8Array; readonly time: number },
): HeightContext {
  const schedule = genesisProposerSchedule(validators);
  return {
    height: 1,
    schedule,
    nextSchedule: nextHeightProposerSchedule(schedule),
    parent: { kind: 'genesis', hash: genesis.hash, time: genesis.time },
    history: [{ fromHeight: 1, validators }],
  };
}

/** The validator schedules and history of one height, without its parent. */
export type HeightSchedules = Pick<
  HeightContext,
  'height' | 'schedule' | 'nextSchedule' | 'history'
>;

/**
 * The schedules of `context.height + 1` once block `context.height` returned `updates`: its
 * schedule is `context.nextSchedule`, and the one after it gets the updates. Throws
 * `ConsensusError(INVALID_VALIDATOR_SET)` when the updates are refused (validator-set.ts
 * `applyValidatorUpdates`); a block with such updates is invalid, so the driver checks them
 * (`checkValidatorUpdates`) before it votes for or stores a block.
 */
export function nextHeightSchedules(
  context: HeightSchedules,
  updates: readonly ValidatorSetUpdate[] = [],
): Required<HeightSchedules> {
  const height = context.height + 1;
  const schedule = context.nextSchedule ?? nextHeightProposerSchedule(context.schedule);
  const nextSchedule = nextHeightProposerSchedule(schedule, updates);
  const earlier = context.history ?? [{ fromHeight: 1, validators: context.schedule.validators }];
  const history = [...earlier];
  if (history.at(-1)?.validators !== schedule.validators) {
    history.push({ fromHeight: height, validators: schedule.validators });
  }
  // Keep the entry that covers the oldest height evidence may still name, and those after it.
  while (
    history.length > 1 &&
    (history[1] as ValidatorSetEpoch).fromHeight <= height - EVIDENCE_MAX_AGE
  ) {
    history.shift();
  }
  return { height, schedule, nextSchedule, history };
}

/**
 * Checks that `updates` (returned by executing block `context.height`) can be applied to the
 * set of height + 1; returns the refusal, or undefined. The block is invalid when they cannot.
 */
export function checkValidatorUpdates(
  context: HeightSchedules,
  updates: readonly ValidatorSetUpdate[],
): ConsensusError | undefined {
  if (Array.isArray(updates) && updates.length === 0) return undefined;
  try {
    nextHeightProposerSchedule(
      context.nextSchedule ?? nextHeightProposerSchedule(context.schedule),
      updates,
    );
    return undefined;
  } catch (error) {
    if (error instanceof ConsensusError) return error;
    throw error;
  }
}

/**
 * The context after `block` was committed at `context.height` with `commit` (which certifies
 * it: `commit.blockHash` is the block's hash) and its execution returned `updates`, which take
 * effect at height + 2. Throws like `nextHeightSchedules` for refused updates.
 */
export function nextHeightContext(
  context: HeightContext,
  block: Block,
  commit: QuorumCertificate,
  updates: readonly ValidatorSetUpdate[] = [],
): HeightContext {
  return {
    ...nextHeightSchedules(context, updates),
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

/**
 * The validator set of an earlier `height` as `context` knows it, for checking evidence of that
 * height: undefined when it is older than `EVIDENCE_MAX_AGE` heights (or not earlier at all).
 */
export function validatorsAt(context: HeightContext, height: number): ValidatorSet | undefined {
  if (!Number.isSafeInteger(height) || height < 1 || height > context.height) return undefined;
  if (context.history === undefined) return context.schedule.validators;
  if (height < context.height - EVIDENCE_MAX_AGE) return undefined;
  let found: ValidatorSet | undefined;
  for (const epoch of context.history) {
    if (epoch.fromHeight > height) break;
    found = epoch.validators;
  }
  return found;
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
