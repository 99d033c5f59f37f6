import { z } from 'zod';
import type { ModuleStateReader } from '../consensus/application/module.js';
import { MAX_AMOUNT } from './amount.js';
import { paramMapCodec } from './param-map.js';
import { BASIS_POINTS, MAX_BLOCK_PARAM } from './staking-params.js';

/**
 * Highest `quorumBps` and `thresholdBps`: a vote weight above 2/3 of the bonded stake is above
 * 6,666 basis points of it, so the holders of more than 2/3 of the stake always reach the quorum
 * and the threshold together, whatever the others vote. Higher values could leave governance
 * unable to pass anything again, its own parameters included: vote weights are rounded down and
 * at most `MAX_PROPOSAL_VOTERS` accounts vote, so a quorum near 100% may be out of reach.
 */
export const MAX_GOV_RATE_BPS = 6_666;
/**
 * Highest `votingPeriod` and `timelock` (about 11.6 days at one block a second): at 10^8 blocks
 * one proposal could hold governance's answer, or a change, away for years.
 */
export const MAX_GOV_PERIOD = 1_000_000;

/**
 * Highest share of the total supply, in basis points (1 %), that a proposal may set `minDeposit`
 * to. A deposit is paid from one account's balance, so governance stays open as long as holders
 * can gather `minDeposit` in one account: at 1 % of the supply that needs a small fraction of
 * the holders (unbonding first if need be), and the supply would have to fall by 99 % (slashes,
 * burnt deposits) before no account could pay at all. At the whole supply (the former bound) no
 * account can ever pay while anything is staked, unspent or held elsewhere.
 */
export const MAX_MIN_DEPOSIT_BPS = 100;

/** The highest `minDeposit` a proposal may set when the total supply is `supply` (floor). */
export function maxMinDeposit(supply: bigint): bigint {
  return (supply * BigInt(MAX_MIN_DEPOSIT_BPS)) / BigInt(BASIS_POINTS);
}

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
  votingPeriod: z.int().min(1).max(MAX_GOV_PERIOD),
  quorumBps: z.int().min(0).max(MAX_GOV_RATE_BPS),
  thresholdBps: z.int().min(0).max(MAX_GOV_RATE_BPS),
  timelock: z.int().min(0).max(MAX_GOV_PERIOD),
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
