import { z } from 'zod';
import type { ModuleStateReader } from '../consensus/application/module.js';
import { MAX_AMOUNT } from './amount.js';
import { paramMapCodec } from './param-map.js';
import { BASIS_POINTS, MAX_BLOCK_PARAM } from './staking-params.js';

/**
 * The governance parameters (docs/caesar.md, "Governance"): what a parameter-change proposal
 * costs, how long it is voted on, what it needs to pass and how long a passed change waits.
 * Stored at `caesar/gov/params` when the genesis gives them (`app.caesar.governance`) or a
 * proposal changed them; an absent key means the defaults below, so a genesis written before
 * governance existed keeps its hash and its initial state.
 */
export interface GovParams {
  /** Least deposit (base units) a proposal locks, taken from the proposer's balance. */
  readonly minDeposit: bigint;
  /** Blocks a proposal is voted on: votes are accepted up to height submit + votingPeriod. */
  readonly votingPeriod: number;
  /** Share of the total bonded stake that must have voted (yes, no or abstain), basis points. */
  readonly quorumBps: number;
  /** A proposal passes when yes / (yes + no) is above this, basis points. */
  readonly thresholdBps: number;
  /** Blocks between the end of voting and the change taking effect. */
  readonly timelock: number;
}

export const DEFAULT_GOV_PARAMS: GovParams = Object.freeze({
  minDeposit: 10_000_000n,
  votingPeriod: 1_000,
  quorumBps: 3_340,
  thresholdBps: 5_000,
  timelock: 100,
});

/** The typed schema; the genesis file's JSON form writes `minDeposit` as a decimal string. */
export const govParamsSchema = z.strictObject({
  minDeposit: z.bigint().min(1n).max(MAX_AMOUNT),
  votingPeriod: z.int().min(1).max(MAX_BLOCK_PARAM),
  quorumBps: z.int().min(0).max(BASIS_POINTS),
  // Below 100%: "yes / (yes + no) above the threshold" could never hold at 100%, and governance
  // would have lost the means to change anything again, its own parameters included.
  thresholdBps: z
    .int()
    .min(0)
    .max(BASIS_POINTS - 1),
  timelock: z.int().min(0).max(MAX_BLOCK_PARAM),
});

export const GOV_PARAM_NAMES = [
  'minDeposit',
  'votingPeriod',
  'quorumBps',
  'thresholdBps',
  'timelock',
] as const satisfies readonly (keyof GovParams)[];

const encoder = new TextEncoder();
export const GOV_PARAMS_KEY = encoder.encode('gov/params');

const codec = paramMapCodec<GovParams>({
  names: GOV_PARAM_NAMES,
  amounts: new Set(['minDeposit']),
  maxUint: MAX_BLOCK_PARAM,
  schema: govParamsSchema,
  context: 'govParams',
  what: 'governance parameters',
});

/** The stored form (canonical CBOR map). Assumes checked params. */
export function encodeGovParams(params: GovParams): Uint8Array {
  return codec.encode(params);
}

/** Decodes `caesar/gov/params`. Throws `CaesarStateError CORRUPT_VALUE`. */
export function decodeGovParams(value: Uint8Array): GovParams {
  return codec.decode(value);
}

/** The governance parameters in force: the stored ones, or the defaults when none are stored. */
export function readGovParams(state: ModuleStateReader): GovParams {
  const value = state.get(GOV_PARAMS_KEY);
  return value === null ? DEFAULT_GOV_PARAMS : decodeGovParams(value);
}
