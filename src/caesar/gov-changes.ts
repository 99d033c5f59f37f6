import { EVIDENCE_MAX_AGE } from '../consensus/height-context.js';
import { CaesarError, CaesarErrorCode } from './errors.js';
import { GOV_PARAM_NAMES, govParamsSchema } from './gov-params.js';
import type { GovParams } from './gov-params.js';
import { epochBlocksChangeFits, stakingParamsSchema } from './staking-params.js';
import type { StakingParams } from './staking-params.js';

/**
 * The parameters governance can change (docs/caesar.md, "Governable parameters") and how a
 * proposal's changes are checked: merged over the parameters in force and checked with the same
 * schemas (bounds and cross-field rules) as the genesis.
 *
 * Not governable: the token's name, symbol, decimals and supply (the supply is accounting, not a
 * setting), and `unbondingBlocks`: a slash finds the unbonding entries begun after the epoch that
 * set the offender's power by their completion height, creation + unbondingBlocks, so changing it
 * would hide the entries begun before the change from the slash.
 */
export const GOVERNABLE_STAKING_PARAMS = [
  'epochBlocks',
  'maxValidators',
  'minValidatorStake',
  'powerUnit',
  'blockReward',
  'proposerBonusBps',
  'slashFractionBps',
  'signedWindow',
  'maxMissed',
  'jailBlocks',
  'maxCommissionChangeBps',
] as const satisfies readonly (keyof StakingParams)[];

export type GovernableParam =
  (typeof GOVERNABLE_STAKING_PARAMS)[number] | (typeof GOV_PARAM_NAMES)[number];

/** Every governable name, in canonical CBOR key order (shorter first, then bytewise). */
export const GOVERNABLE_PARAMS: readonly GovernableParam[] = [
  ...GOVERNABLE_STAKING_PARAMS,
  ...GOV_PARAM_NAMES,
].sort((a, b) => (a.length !== b.length ? a.length - b.length : a < b ? -1 : 1));

/** Parameters whose values are amounts of base units (the rest are small integers). */
export const AMOUNT_PARAMS: ReadonlySet<GovernableParam> = new Set<GovernableParam>([
  'minValidatorStake',
  'powerUnit',
  'blockReward',
  'minDeposit',
]);

/** Why a known parameter cannot be governed, for the refusal's message. */
export const NOT_GOVERNABLE: Readonly<Record<string, string>> = Object.freeze({
  unbondingBlocks:
    'unbondingBlocks is fixed for the chain: slashing finds waiting unbondings by it',
  name: 'the token parameters are fixed at genesis',
  symbol: 'the token parameters are fixed at genesis',
  decimals: 'the token parameters are fixed at genesis',
  supply: 'the supply changes only by issuance, slashing and burnt deposits',
});

const STAKING_NAMES: ReadonlySet<string> = new Set(GOVERNABLE_STAKING_PARAMS);

export function isGovernableParam(name: string): name is GovernableParam {
  return (GOVERNABLE_PARAMS as readonly string[]).includes(name);
}

/** One change: a governable parameter and its new value (integers as bigints too). */
export interface ParamChange {
  readonly name: GovernableParam;
  readonly value: bigint;
}

/** At most one change per parameter; a proposal changes 1 to this many. */
export const MAX_PARAM_CHANGES = GOVERNABLE_PARAMS.length;

function invalid(message: string, detail: Record<string, unknown> = {}): never {
  throw new CaesarError(CaesarErrorCode.GOV_INVALID_PARAM, message, detail);
}

/** The refusal of an unknown or fixed parameter name. */
export function unknownParam(name: string): never {
  // An own property only: `constructor` or `__proto__` must not read Object.prototype's.
  const why = Object.hasOwn(NOT_GOVERNABLE, name) ? NOT_GOVERNABLE[name] : undefined;
  throw new CaesarError(
    CaesarErrorCode.GOV_UNKNOWN_PARAM,
    why === undefined
      ? `proposal: ${JSON.stringify(name)} is not a governable parameter (governable: ${GOVERNABLE_PARAMS.join(', ')})`
      : `proposal: ${JSON.stringify(name)} is not governable: ${why}`,
    { param: name },
  );
}

/**
 * The parameters after `changes`: merged over `staking` and `gov` and checked with the genesis
 * schemas. Throws `CaesarError GOV_INVALID_PARAM` naming the first bad parameter, and
 * `GOV_UNKNOWN_PARAM` for a name that is not governable.
 */
export function applyParamChanges(
  staking: StakingParams,
  gov: GovParams,
  changes: readonly ParamChange[],
): { readonly staking: StakingParams; readonly gov: GovParams } {
  const stakingChanges: Record<string, number | bigint> = {};
  const govChanges: Record<string, number | bigint> = {};
  for (const { name, value } of changes) {
    if (!isGovernableParam(name)) unknownParam(name);
    let typed: number | bigint = value;
    if (!AMOUNT_PARAMS.has(name)) {
      if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
        invalid(`proposal: ${name}: ${value} is far above its bound`, { param: name });
      }
      typed = Number(value);
    }
    if (STAKING_NAMES.has(name)) stakingChanges[name] = typed;
    else govChanges[name] = typed;
  }
  const nextStaking = stakingParamsSchema.safeParse({ ...staking, ...stakingChanges });
  if (!nextStaking.success) {
    const issue = nextStaking.error.issues[0];
    const param = String(issue?.path[0] ?? '');
    invalid(`proposal: ${param}: ${issue?.message ?? 'out of range'}`, { param });
  }
  const { epochBlocks, unbondingBlocks } = nextStaking.data;
  if (!epochBlocksChangeFits(staking.epochBlocks, epochBlocks, unbondingBlocks)) {
    invalid(
      `proposal: epochBlocks: raising it from ${staking.epochBlocks} to ${epochBlocks} needs unbondingBlocks (${unbondingBlocks}) of at least ${epochBlocks + EVIDENCE_MAX_AGE}: else stake behind a power could be paid out before evidence of an offence is included`,
      { param: 'epochBlocks', before: staking.epochBlocks, after: epochBlocks, unbondingBlocks },
    );
  }
  const nextGov = govParamsSchema.safeParse({ ...gov, ...govChanges });
  if (!nextGov.success) {
    const issue = nextGov.error.issues[0];
    const param = String(issue?.path[0] ?? '');
    invalid(`proposal: ${param}: ${issue?.message ?? 'out of range'}`, { param });
  }
  return { staking: nextStaking.data, gov: nextGov.data };
}

/** Whether `changes` touch a staking parameter / a governance parameter. */
export function changesScopes(changes: readonly ParamChange[]): {
  readonly staking: boolean;
  readonly gov: boolean;
} {
  return {
    staking: changes.some(({ name }) => STAKING_NAMES.has(name)),
    gov: changes.some(({ name }) => !STAKING_NAMES.has(name)),
  };
}
