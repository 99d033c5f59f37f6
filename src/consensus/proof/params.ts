import { z } from 'zod';
import { parseInput, SchemaError } from '../../codec/schema.js';
import { ProofError, ProofErrorCode } from './errors.js';

/**
 * Consensus-proof parameters. They are chain-wide (fixed in the genesis file) because every
 * validator must reach the same verdict on every proof. docs/consensus-proof.md gives the cost
 * of each knob as measured on the project machine.
 */
export interface SpaceParams {
  /** N: data blocks (Merkle leaves) in each validator's storage commitment. */
  readonly blockCount: number;
  /** S: nonce slots per block; a block is S × 4 bytes. */
  readonly slotsPerBlock: number;
  /** d_s: leading zero bits each slot's hash must have (expected 2^d_s hashes per slot). */
  readonly slotDifficulty: number;
  /** k: challenges answered in each block's proof. */
  readonly challengeCount: number;
}

export interface WorkParams {
  /** d: leading zero bits every client transaction's hashcash stamp must have. */
  readonly stampDifficulty: number;
}

export interface TimeParams {
  /** T: HMAC-SHA-256 iterations of the sequential hash chain per block. */
  readonly iterations: number;
  /** C: iterations between checkpoints; T must be a multiple of C. */
  readonly checkpointInterval: number;
}

/**
 * PoStake has no knob here: it is the block's commit, checked by the engine's rules, with
 * FALCON-1024 precommit signatures required by the genesis `consensus.requirePq`.
 */
export interface ConsensusProofParams {
  readonly space: SpaceParams;
  readonly work: WorkParams;
  readonly time: TimeParams;
}

export const MAX_BLOCK_COUNT = 2 ** 20;
export const MAX_SLOTS_PER_BLOCK = 1024;
/** With 32-bit slot nonces, P(no nonce meets d_s = 24) = (1 - 2^-24)^(2^32) ≈ e^-256. */
export const MAX_SLOT_DIFFICULTY = 24;
export const MAX_CHALLENGE_COUNT = 64;
/** With 64-bit stamp nonces and safe-integer nonces (< 2^53) exhaustion is negligible here. */
export const MAX_STAMP_DIFFICULTY = 40;
export const MAX_ITERATIONS = 2 ** 30;
export const MAX_CHECKPOINTS = 4096;

const count = (max: number) => z.int().min(1).max(max);

const spaceSchema = z.strictObject({
  blockCount: count(MAX_BLOCK_COUNT),
  slotsPerBlock: count(MAX_SLOTS_PER_BLOCK),
  slotDifficulty: z.int().min(0).max(MAX_SLOT_DIFFICULTY),
  challengeCount: count(MAX_CHALLENGE_COUNT),
});

const timeSchema = z
  .strictObject({
    iterations: count(MAX_ITERATIONS),
    checkpointInterval: count(MAX_ITERATIONS),
  })
  .refine((time) => time.iterations % time.checkpointInterval === 0, {
    message: 'iterations must be a multiple of checkpointInterval',
  })
  .refine((time) => time.iterations / time.checkpointInterval <= MAX_CHECKPOINTS, {
    message: `at most ${MAX_CHECKPOINTS} checkpoints (iterations / checkpointInterval)`,
  });

/** The parameters' schema, for documents that embed them (the genesis file). */
export const proofParamsSchema = z.strictObject({
  space: spaceSchema,
  work: z.strictObject({ stampDifficulty: z.int().min(0).max(MAX_STAMP_DIFFICULTY) }),
  time: timeSchema,
});

function check(schema: z.ZodType, value: unknown, context: string): void {
  try {
    parseInput(schema, value, context);
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error;
    throw new ProofError(ProofErrorCode.INVALID_PARAMS, error.message, {
      issues: error.issues,
    });
  }
}

export function assertSpaceParams(params: unknown): asserts params is SpaceParams {
  check(spaceSchema, params, 'params.space');
}

export function assertTimeParams(params: unknown): asserts params is TimeParams {
  check(timeSchema, params, 'params.time');
}

/** Number of checkpoints (segments) of the sequential hash chain: T / C. */
export function checkpointCount(time: TimeParams): number {
  return time.iterations / time.checkpointInterval;
}

/**
 * Parameters for a production chain (docs/consensus-proof.md, "Parameters"). A plot is 1024
 * blocks of 32 bytes and costs 2^25 hashes to build, once; a proposer that keeps no plot redoes
 * k·S·2^d_s = 2^18 hashes per proposal, a verifier k·S = 64. The hash chain is 2^17 HMAC
 * iterations; a stamp costs 2^16 hashes to mint.
 */
export const DEFAULT_PROOF_PARAMS: ConsensusProofParams = Object.freeze({
  space: Object.freeze({
    blockCount: 1024,
    slotsPerBlock: 8,
    slotDifficulty: 12,
    challengeCount: 8,
  }),
  work: Object.freeze({ stampDifficulty: 16 }),
  time: Object.freeze({ iterations: 2 ** 17, checkpointInterval: 2 ** 11 }),
});

/**
 * Cheap parameters for local development clusters (`hypermesh cluster init`) and tests: a plot
 * builds in a fraction of a second and the hash chain costs a few milliseconds per block, so a
 * 4-node cluster on 2 cores is bounded by its timeouts, not by the proof. They exercise every
 * check but protect little (docs/consensus-proof.md gives the measured costs).
 */
export const DEV_PROOF_PARAMS: ConsensusProofParams = Object.freeze({
  space: Object.freeze({
    blockCount: 64,
    slotsPerBlock: 8,
    slotDifficulty: 8,
    challengeCount: 4,
  }),
  work: Object.freeze({ stampDifficulty: 8 }),
  time: Object.freeze({ iterations: 2 ** 14, checkpointInterval: 2 ** 10 }),
});
