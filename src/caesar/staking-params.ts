import { z } from 'zod';
import { EVIDENCE_MAX_AGE } from '../consensus/height-context.js';
import { MAX_VALIDATORS } from '../consensus/validator-set.js';
import { MAX_AMOUNT } from './amount.js';
import { paramMapCodec } from './param-map.js';

/**
 * The staking parameters (docs/caesar.md, "Staking parameters"), fixed in the genesis file and
 * stored at `caesar/stk/params`. Amounts are base units; rates are basis points (1/10,000).
 */
export interface StakingParams {
  /** The validator set is recomputed at the end of every block whose height is a multiple. */
  readonly epochBlocks: number;
  /** Most validators the set holds. */
  readonly maxValidators: number;
  /** Least bonded stake (base units) that qualifies a validator for the set. */
  readonly minValidatorStake: bigint;
  /**
   * Voting power = floor(bonded stake / powerUnit), all of the selected set's powers scaled down
   * together when their total would pass 2^50 (end-block.ts, `selectValidatorSet`).
   */
  readonly powerUnit: bigint;
  /** Blocks an unbonding waits before the tokens return to the delegator's balance. */
  readonly unbondingBlocks: number;
  /** Base units minted at the end of every block in which rewards are paid. */
  readonly blockReward: bigint;
  /** Share of each block's rewards the proposer takes first, in basis points. */
  readonly proposerBonusBps: number;
  /** Share of bonded stake burnt for an equivocation, in basis points. */
  readonly slashFractionBps: number;
  /** Blocks over which missed commits are counted. */
  readonly signedWindow: number;
  /** A validator missing more than this many of the last `signedWindow` commits is jailed. */
  readonly maxMissed: number;
  /** Blocks a jailed validator waits before `unjail` is accepted. */
  readonly jailBlocks: number;
  /**
   * Most basis points one `edit-validator` may move a validator's commission, up or down (at
   * most one change per `epochBlocks` blocks). 0 freezes every commission.
   */
  readonly maxCommissionChangeBps: number;
}

export const BASIS_POINTS = 10_000;
/** Height-like parameters stay far below 2^53 so that `height + parameter` stays exact. */
export const MAX_BLOCK_PARAM = 100_000_000;
export const MAX_SIGNED_WINDOW = 100_000;
/**
 * Creation heights of unbonding entries one slash looks back over, a bound on its state reads
 * (end-block.ts). The heights it must search span at most G + EVIDENCE_MAX_AGE + 1, G being the
 * gap from the recomputation that set the offender's power to the next (from just after it, at
 * most G − 1 + 2 heights before the offence, which is at most EVIDENCE_MAX_AGE before the
 * evidence block). G is at most the larger `epochBlocks` in force on either side, since the block
 * after a change of `epochBlocks` recomputes the set — except while every epoch's selection is
 * empty and the set stays as it was (docs/caesar.md, "Slashing and jailing").
 */
export const MAX_SLASH_LOOKBACK = 1_000;
/**
 * Highest `epochBlocks` (899): above it, a slash would not reach every unbonding entry that
 * backed the offender's power, so unbonding before an equivocation could evade part of the slash.
 */
export const MAX_EPOCH_BLOCKS = MAX_SLASH_LOOKBACK - EVIDENCE_MAX_AGE - 1;

/**
 * Whether governance may take `epochBlocks` from `before` to `after` under `unbondingBlocks`
 * (fixed for the chain). Two recomputations of the set are at most max(before, after) heights
 * apart (end-block.ts, `nextEpochHistory`), so evidence of an offence can be included up to
 * that + EVIDENCE_MAX_AGE + 1 heights after the epoch that set the power, and an unbonding begun
 * just after that epoch must still wait then: `epochBlocks` + EVIDENCE_MAX_AGE ≤
 * `unbondingBlocks`. A change that lowers `epochBlocks`, or keeps it, makes nothing worse and
 * is always allowed (a genesis may have chosen a short `unbondingBlocks`); one that raises it
 * must keep that bound.
 */
export function epochBlocksChangeFits(
  before: number,
  after: number,
  unbondingBlocks: number,
): boolean {
  return after <= before || after + EVIDENCE_MAX_AGE <= unbondingBlocks;
}

export const DEFAULT_STAKING_PARAMS: StakingParams = Object.freeze({
  epochBlocks: 100,
  maxValidators: 100,
  minValidatorStake: 1_000_000n,
  powerUnit: 1_000_000n,
  unbondingBlocks: 1_000,
  blockReward: 1_000_000n,
  proposerBonusBps: 500,
  slashFractionBps: 500,
  signedWindow: 100,
  maxMissed: 50,
  jailBlocks: 100,
  maxCommissionChangeBps: 100,
});

const blocks = (min: number) => z.int().min(min).max(MAX_BLOCK_PARAM);
const positiveAmount = z.bigint().min(1n).max(MAX_AMOUNT);

/** The typed schema (bigints); the genesis file's JSON form wraps amounts as decimal strings. */
export const stakingParamsSchema = z
  .strictObject({
    epochBlocks: z.int().min(1).max(MAX_EPOCH_BLOCKS),
    maxValidators: z.int().min(1).max(MAX_VALIDATORS),
    minValidatorStake: positiveAmount,
    powerUnit: positiveAmount,
    unbondingBlocks: blocks(1),
    blockReward: z.bigint().min(0n).max(MAX_AMOUNT),
    proposerBonusBps: z.int().min(0).max(BASIS_POINTS),
    // Below 100%: a slash always leaves a validator with stake some of its shares, so its
    // tokens and shares are zero together (staking-state.ts).
    slashFractionBps: z
      .int()
      .min(0)
      .max(BASIS_POINTS - 1),
    signedWindow: z.int().min(1).max(MAX_SIGNED_WINDOW),
    maxMissed: z
      .int()
      .min(0)
      .max(MAX_SIGNED_WINDOW - 1),
    jailBlocks: blocks(0),
    maxCommissionChangeBps: z.int().min(0).max(BASIS_POINTS),
  })
  .refine((params) => params.maxMissed < params.signedWindow, {
    message: 'maxMissed must be below signedWindow',
    path: ['maxMissed'],
  });

const PARAM_NAMES = [
  'epochBlocks',
  'maxValidators',
  'minValidatorStake',
  'powerUnit',
  'unbondingBlocks',
  'blockReward',
  'proposerBonusBps',
  'slashFractionBps',
  'signedWindow',
  'maxMissed',
  'jailBlocks',
  'maxCommissionChangeBps',
] as const satisfies readonly (keyof StakingParams)[];

const codec = paramMapCodec<StakingParams>({
  names: PARAM_NAMES,
  amounts: new Set(['powerUnit', 'blockReward', 'minValidatorStake']),
  maxUint: MAX_BLOCK_PARAM,
  schema: stakingParamsSchema,
  context: 'stakingParams',
  what: 'staking parameters',
  // Added after chains existed: stored only when it differs from the default, so the stored
  // parameters of a chain (and a genesis) from before it keep their bytes and their meaning.
  omittedAtDefault: { maxCommissionChangeBps: DEFAULT_STAKING_PARAMS.maxCommissionChangeBps },
});

/** The stored form (canonical CBOR map; amounts as in cbor.ts). Assumes checked params. */
export function encodeStakingParams(params: StakingParams): Uint8Array {
  return codec.encode(params);
}

/** Decodes `caesar/stk/params`. Throws `CaesarStateError CORRUPT_VALUE`. */
export function decodeStakingParams(value: Uint8Array): StakingParams {
  return codec.decode(value);
}
