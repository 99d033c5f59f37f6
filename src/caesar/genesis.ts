import { z } from 'zod';
import { SchemaError, bytes, hexString, parseInput } from '../codec/schema.js';
import type { InitialStateEntry } from '../consensus/application/index.js';
import type { GenesisAppState } from '../consensus/genesis.js';
import { ADDRESS_BYTES, formatAddress, parseAddress } from './address.js';
import { MAX_AMOUNT, encodeStoredAmount } from './amount.js';
import { CaesarGenesisError, CaesarGenesisErrorCode } from './errors.js';
import { decimalsSchema, encodeTokenParams, tokenNameSchema, tokenSymbolSchema } from './params.js';
import type { TokenParams } from './params.js';
import { CAESAR_MODULE_NAME, PARAMS_KEY, balanceKey, caesarStateKey } from './state.js';
import { CA_MODULE_NAME } from '../trustchain/ca-module/state.js';
import { fromHex, toHex } from '../crypto/bytes.js';
import { FALCON1024_PUBLIC_KEY_BYTES } from '../crypto/falcon.js';
import { MAX_TOTAL_VOTING_POWER, STORAGE_ROOT_BYTES } from '../consensus/validator-set.js';
import { ED25519_PUBLIC_KEY_BYTES, ed25519Address } from './address.js';
import {
  BASIS_POINTS,
  DEFAULT_STAKING_PARAMS,
  encodeStakingParams,
  stakingParamsSchema,
} from './staking-params.js';
import type { StakingParams } from './staking-params.js';
import {
  DEFAULT_GOV_PARAMS,
  GOV_PARAMS_KEY,
  encodeGovParams,
  govParamsSchema,
} from './gov-params.js';
import type { GovParams } from './gov-params.js';
import {
  ACTIVE_SET_KEY,
  BONDED_KEY,
  JailReason,
  STAKING_PARAMS_KEY,
  VALIDATORS_KEY,
  compareAddresses,
  consensusAddress,
  delegationKey,
  delegatorIndexKey,
  encodeDelegatorIndex,
  encodeValidatorList,
  encodeValidatorRecord,
  validatorKey,
} from './staking-state.js';

/**
 * The Caesar part of a chain's genesis: the token's parameters and who holds the supply at
 * height 1. The allocations must add up to the supply exactly; nothing else is minted at
 * genesis. In a JSON file amounts are decimal strings of base units (a JSON number is a float
 * in most parsers and cannot carry 2^128 − 1 exactly) and addresses 64 lowercase hex digits:
 *
 *   {
 *     "token": { "name": "Caesar", "symbol": "CSR", "decimals": 6, "supply": "1000000000000" },
 *     "allocations": [
 *       { "address": "5f0c…64 hex digits", "amount": "600000000000" },
 *       { "address": "9a41…64 hex digits", "amount": "400000000000" }
 *     ]
 *   }
 */
export interface GenesisAllocation {
  readonly address: Uint8Array;
  /** Base units, in [1, 2^128). */
  readonly amount: bigint;
}

/**
 * A validator of the consensus genesis as staking knows it: the keys and storage root consensus
 * holds for it (so a later update can remove and re-add it) and the self-bond its operator (the
 * account of its Ed25519 key) has at height 1. Its power is selfBond / powerUnit.
 */
export interface GenesisStakingValidator {
  readonly publicKey: Uint8Array;
  readonly pqPublicKey: Uint8Array;
  readonly storageRoot: Uint8Array;
  /** Base units bonded by the operator, at least `minValidatorStake` and `powerUnit`. */
  readonly selfBond: bigint;
  /** Basis points, 0 to 10,000. */
  readonly commission: number;
}

export interface StakingGenesis {
  readonly params: StakingParams;
  readonly validators: readonly GenesisStakingValidator[];
}

export interface CaesarGenesis {
  readonly token: TokenParams;
  readonly allocations: readonly GenesisAllocation[];
  /** Staking; absent: no staking transactions, rewards or validator updates. */
  readonly staking?: StakingGenesis;
  /**
   * Governance parameters (needs staking); absent: the defaults, stored nowhere, so a genesis
   * without them has the initial state it had before governance existed.
   */
  readonly governance?: GovParams;
}

/**
 * The JSON form (what a genesis file holds). A type rather than an interface, so it is
 * assignable to the genesis document's JSON data (`GenesisAppValue`).
 */
export type CaesarGenesisJson = {
  readonly token: {
    readonly name: string;
    readonly symbol: string;
    readonly decimals: number;
    readonly supply: string;
  };
  readonly allocations: readonly { readonly address: string; readonly amount: string }[];
  readonly staking?: StakingGenesisJson;
  readonly governance?: { readonly [name: string]: number | string };
};

/** The staking section of the JSON form: amounts as decimal strings, bytes as hex. */
export type StakingGenesisJson = {
  readonly params?: { readonly [name: string]: number | string };
  readonly validators: readonly {
    readonly publicKey: string;
    readonly pqPublicKey: string;
    readonly storageRoot: string;
    readonly selfBond: string;
    readonly commission: number;
  }[];
};

/** More allocations than this belong in a snapshot, not a genesis file. */
export const MAX_GENESIS_ALLOCATIONS = 100_000;
/** The consensus genesis holds at most this many validators (consensus/genesis.ts). */
const MAX_VALIDATORS_IN_GENESIS = 10_000;

const DECIMAL = /^(0|[1-9][0-9]*)$/;

/** A decimal string of base units, as a bigint in [0, 2^128). */
const decimalAmount = z
  .string({ error: 'expected a decimal string of base units (amounts are never JSON numbers)' })
  .transform((text, ctx) => {
    if (!DECIMAL.test(text)) {
      ctx.addIssue({
        code: 'custom',
        message:
          'expected only the digits 0-9: no sign, exponent, fraction, spaces or leading zeros',
      });
      return z.NEVER;
    }
    // 2^128 has 39 digits.
    const value = text.length > 39 ? undefined : BigInt(text);
    if (value === undefined || value > MAX_AMOUNT) {
      ctx.addIssue({ code: 'custom', message: 'must be below 2^128' });
      return z.NEVER;
    }
    return value;
  });

const hexAddress = z
  .string({ error: 'expected an address as 64 lowercase hex digits' })
  .transform((text, ctx) => {
    const address = parseAddress(text);
    if (address === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected an address as 64 lowercase hex digits' });
      return z.NEVER;
    }
    return address;
  });

const allocations = <T extends z.ZodType>(item: T) => z.array(item).max(MAX_GENESIS_ALLOCATIONS);

const hexBytes = (length: number) => hexString(length).transform((text) => fromHex(text));
const commission = z.int().min(0).max(BASIS_POINTS);

/** Every parameter optional (the defaults fill in); amounts as decimal strings. */
const jsonParamsSchema = z
  .strictObject({
    epochBlocks: z.int(),
    maxValidators: z.int(),
    minValidatorStake: decimalAmount,
    powerUnit: decimalAmount,
    unbondingBlocks: z.int(),
    blockReward: decimalAmount,
    proposerBonusBps: z.int(),
    slashFractionBps: z.int(),
    signedWindow: z.int(),
    maxMissed: z.int(),
    jailBlocks: z.int(),
    maxCommissionChangeBps: z.int(),
  })
  .partial()
  .transform((given) => ({ ...DEFAULT_STAKING_PARAMS, ...given }))
  .pipe(stakingParamsSchema);

/** Every governance parameter optional (the defaults fill in); `minDeposit` a decimal string. */
const jsonGovSchema = z
  .strictObject({
    minDeposit: decimalAmount,
    votingPeriod: z.int(),
    quorumBps: z.int(),
    thresholdBps: z.int(),
    timelock: z.int(),
  })
  .partial()
  .transform((given) => ({ ...DEFAULT_GOV_PARAMS, ...given }))
  .pipe(govParamsSchema);

const jsonStakingSchema = z.strictObject({
  params: jsonParamsSchema.optional().transform((params) => params ?? DEFAULT_STAKING_PARAMS),
  validators: z
    .array(
      z.strictObject({
        publicKey: hexBytes(ED25519_PUBLIC_KEY_BYTES),
        pqPublicKey: hexBytes(FALCON1024_PUBLIC_KEY_BYTES),
        storageRoot: hexBytes(STORAGE_ROOT_BYTES),
        selfBond: decimalAmount,
        commission,
      }),
    )
    .max(MAX_VALIDATORS_IN_GENESIS),
});

const jsonSchema = z.strictObject({
  token: z.strictObject({
    name: tokenNameSchema,
    symbol: tokenSymbolSchema,
    decimals: decimalsSchema,
    supply: decimalAmount,
  }),
  allocations: allocations(z.strictObject({ address: hexAddress, amount: decimalAmount })),
  staking: jsonStakingSchema.optional(),
  governance: jsonGovSchema.optional(),
});

const amount = z.bigint().min(0n).max(MAX_AMOUNT);

const typedSchema = z.strictObject({
  token: z.strictObject({
    name: tokenNameSchema,
    symbol: tokenSymbolSchema,
    decimals: decimalsSchema,
    supply: amount,
  }),
  allocations: allocations(
    z.strictObject({ address: bytes({ length: ADDRESS_BYTES }), amount: amount }),
  ),
  staking: z
    .strictObject({
      params: stakingParamsSchema,
      validators: z
        .array(
          z.strictObject({
            publicKey: bytes({ length: ED25519_PUBLIC_KEY_BYTES }),
            pqPublicKey: bytes({ length: FALCON1024_PUBLIC_KEY_BYTES }),
            storageRoot: bytes({ length: STORAGE_ROOT_BYTES }),
            selfBond: amount,
            commission,
          }),
        )
        .max(MAX_VALIDATORS_IN_GENESIS),
    })
    .optional(),
  governance: govParamsSchema.optional(),
});

/** Bytewise order (shorter first on a common prefix), as the state store orders keys. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

function invalid(error: unknown): never {
  if (error instanceof SchemaError) {
    throw new CaesarGenesisError(
      CaesarGenesisErrorCode.INVALID,
      error.message,
      { issues: error.issues },
      { cause: error },
    );
  }
  throw error;
}

/**
 * Checks what no schema can: every allocation is above zero, no address is allocated twice, and
 * the allocations sum to the supply exactly. Returns the allocations sorted by address.
 */
function checkAllocations(genesis: CaesarGenesis): GenesisAllocation[] {
  const bonded = (genesis.staking?.validators ?? []).reduce((sum, v) => sum + v.selfBond, 0n);
  const sorted = genesis.allocations
    .map((allocation, index) => ({ ...allocation, index }))
    .sort((a, b) => compareBytes(a.address, b.address));
  let total = bonded;
  for (const [i, allocation] of sorted.entries()) {
    if (allocation.amount === 0n) {
      throw new CaesarGenesisError(
        CaesarGenesisErrorCode.INVALID,
        `caesarGenesis.allocations[${allocation.index}].amount: an allocation is at least one base unit (leave out an empty one)`,
        { index: allocation.index },
      );
    }
    const before = sorted[i - 1];
    if (before !== undefined && compareBytes(before.address, allocation.address) === 0) {
      const address = formatAddress(allocation.address);
      throw new CaesarGenesisError(
        CaesarGenesisErrorCode.DUPLICATE_ALLOCATION,
        `caesarGenesis.allocations: address ${address} is allocated twice (entries ${before.index} and ${allocation.index})`,
        { address, indexes: [before.index, allocation.index] },
      );
    }
    total += allocation.amount;
  }
  const { supply } = genesis.token;
  if (total !== supply) {
    const gap = total < supply ? `${supply - total} short of` : `${total - supply} over`;
    const what = bonded === 0n ? 'the allocations sum' : 'the allocations and self-bonds sum';
    throw new CaesarGenesisError(
      CaesarGenesisErrorCode.SUPPLY_MISMATCH,
      `caesarGenesis: ${what} to ${total} base units, ${gap} the total supply of ${supply}`,
      { allocated: total.toString(), supply: supply.toString() },
    );
  }
  return sorted.map(({ address, amount }) => ({ address, amount }));
}

function stakingInvalid(message: string, detail: Record<string, unknown> = {}): never {
  throw new CaesarGenesisError(
    CaesarGenesisErrorCode.INVALID,
    `caesarGenesis.staking.${message}`,
    detail,
  );
}

/**
 * Checks the staking section beyond its schema — each key once; every self-bond at least
 * `minValidatorStake` and `powerUnit` (so every genesis validator is in the first set, with a
 * power of at least 1); no more validators than `maxValidators`; total power within
 * `MAX_TOTAL_VOTING_POWER` — and adds it, validators sorted by consensus address.
 */
function withStaking(parsed: CaesarGenesis, result: CaesarGenesis): CaesarGenesis {
  const staking = parsed.staking;
  if (staking === undefined) return result;
  const { params } = staking;
  if (staking.validators.length > params.maxValidators) {
    stakingInvalid(
      `validators: ${staking.validators.length} validators, above maxValidators ${params.maxValidators}`,
    );
  }
  const seen = new Map<string, number>();
  let totalPower = 0n;
  for (const [i, validator] of staking.validators.entries()) {
    const id = toHex(validator.publicKey);
    const earlier = seen.get(id);
    if (earlier !== undefined) {
      stakingInvalid(`validators[${i}].publicKey: the same key as validators[${earlier}]`);
    }
    seen.set(id, i);
    if (validator.selfBond < params.minValidatorStake || validator.selfBond < params.powerUnit) {
      stakingInvalid(
        `validators[${i}].selfBond: ${validator.selfBond} is below minValidatorStake ${params.minValidatorStake} or powerUnit ${params.powerUnit}`,
      );
    }
    totalPower += validator.selfBond / params.powerUnit;
  }
  if (totalPower > BigInt(MAX_TOTAL_VOTING_POWER)) {
    stakingInvalid(
      `validators: a total power of ${totalPower} (self-bonds / powerUnit) is above ${MAX_TOTAL_VOTING_POWER}; raise powerUnit`,
    );
  }
  const validators = staking.validators
    .map((validator) => ({ ...validator }))
    .sort((a, b) => compareAddresses(consensusAddress(a.publicKey), consensusAddress(b.publicKey)));
  return { ...result, staking: { params: { ...params }, validators } };
}

/** Adds the governance parameters; they need staking, which weighs the votes. */
function withGovernance(parsed: CaesarGenesis, result: CaesarGenesis): CaesarGenesis {
  if (parsed.governance === undefined) return result;
  if (parsed.staking === undefined) {
    throw new CaesarGenesisError(
      CaesarGenesisErrorCode.INVALID,
      'caesarGenesis.governance: governance weighs votes by bonded stake and needs the staking section',
    );
  }
  return { ...result, governance: { ...parsed.governance } };
}

/**
 * Checks that a Caesar genesis's staking validators are exactly the consensus genesis
 * validators: the same Ed25519 keys, FALCON keys and storage roots, and each consensus power
 * equal to selfBond / powerUnit. Staking hands consensus updates computed from its own view of
 * the set; if that view differed from the real genesis set, its first updates could name a
 * validator consensus does not have and halt the chain. A Caesar genesis without staking
 * passes (the validator set then stays the consensus genesis set). Throws
 * `CaesarGenesisError VALIDATOR_MISMATCH`.
 */
export function checkStakingMatchesValidators(
  genesis: CaesarGenesis,
  validators: readonly {
    readonly publicKey: Uint8Array;
    readonly pqPublicKey?: Uint8Array;
    readonly storageRoot?: Uint8Array;
    readonly power: number;
  }[],
): void {
  const staking = genesis.staking;
  if (staking === undefined) return;
  const mismatch = (message: string): never => {
    throw new CaesarGenesisError(
      CaesarGenesisErrorCode.VALIDATOR_MISMATCH,
      `caesarGenesis.staking.validators: ${message}`,
    );
  };
  const byKey = new Map(staking.validators.map((v) => [toHex(v.publicKey), v]));
  if (byKey.size !== validators.length) {
    mismatch(
      `${byKey.size} staking validator(s), but the consensus genesis has ${validators.length}`,
    );
  }
  for (const validator of validators) {
    const id = toHex(validator.publicKey);
    const staked = byKey.get(id) ?? mismatch(`consensus validator ${id} has no self-bond`);
    const sameBytes = (a: Uint8Array | undefined, b: Uint8Array) =>
      a !== undefined && compareBytes(a, b) === 0;
    if (!sameBytes(validator.pqPublicKey, staked.pqPublicKey)) {
      mismatch(`validator ${id} has another FALCON-1024 key than the consensus genesis`);
    }
    if (!sameBytes(validator.storageRoot, staked.storageRoot)) {
      mismatch(`validator ${id} has another storage root than the consensus genesis`);
    }
    const power = staked.selfBond / staking.params.powerUnit;
    if (power !== BigInt(validator.power)) {
      mismatch(
        `validator ${id}: self-bond ${staked.selfBond} / powerUnit ${staking.params.powerUnit} = power ${power}, but the consensus genesis gives it ${validator.power}`,
      );
    }
  }
}

/**
 * Parses the Caesar section of a genesis file (JSON, already `JSON.parse`d). Throws
 * `CaesarGenesisError`: `INVALID` (with `detail.issues` naming each bad field),
 * `DUPLICATE_ALLOCATION` or `SUPPLY_MISMATCH`.
 */
export function parseCaesarGenesis(input: unknown): CaesarGenesis {
  let parsed: CaesarGenesis;
  try {
    parsed = parseInput(jsonSchema, input, 'caesarGenesis');
  } catch (error) {
    invalid(error);
  }
  // Staking first: a repeated validator is reported as such, not as a supply mismatch.
  const staked = withStaking(parsed, { token: parsed.token, allocations: [] });
  return { ...withGovernance(parsed, staked), allocations: checkAllocations(parsed) };
}

/**
 * Checks a genesis built in code (bigints and byte addresses) the way `parseCaesarGenesis`
 * checks a file. Returns it with the allocations sorted by address.
 */
export function checkCaesarGenesis(genesis: CaesarGenesis): CaesarGenesis {
  let parsed: CaesarGenesis;
  try {
    parsed = parseInput(typedSchema, genesis, 'caesarGenesis');
  } catch (error) {
    invalid(error);
  }
  const staked = withStaking(parsed, { token: { ...parsed.token }, allocations: [] });
  return { ...withGovernance(parsed, staked), allocations: checkAllocations(parsed) };
}

function paramsToJson(params: StakingParams | GovParams): Record<string, number | string> {
  const json: Record<string, number | string> = {};
  for (const [name, value] of Object.entries(params)) {
    json[name] = typeof value === 'bigint' ? value.toString() : (value as number);
  }
  return json;
}

/** The JSON form of a genesis (for writing a genesis file); the inverse of `parseCaesarGenesis`. */
export function caesarGenesisToJson(genesis: CaesarGenesis): CaesarGenesisJson {
  const checked = checkCaesarGenesis(genesis);
  const { name, symbol, decimals, supply } = checked.token;
  const json: CaesarGenesisJson = {
    token: { name, symbol, decimals, supply: supply.toString() },
    allocations: checked.allocations.map(({ address, amount }) => ({
      address: formatAddress(address),
      amount: amount.toString(),
    })),
  };
  if (checked.staking === undefined) return json;
  const params = paramsToJson(checked.staking.params);
  return {
    ...json,
    ...(checked.governance === undefined ? {} : { governance: paramsToJson(checked.governance) }),
    staking: {
      params,
      validators: checked.staking.validators.map((v) => ({
        publicKey: toHex(v.publicKey),
        pqPublicKey: toHex(v.pqPublicKey),
        storageRoot: toHex(v.storageRoot),
        selfBond: v.selfBond.toString(),
        commission: v.commission,
      })),
    },
  };
}

/** The staking entries of the initial state (see docs/caesar.md, "Genesis validators"). */
function stakingInitialState(staking: StakingGenesis): InitialStateEntry[] {
  const { params } = staking;
  const entries: InitialStateEntry[] = [
    { key: STAKING_PARAMS_KEY, value: encodeStakingParams(params) },
  ];
  const addresses: Uint8Array[] = [];
  let bonded = 0n;
  for (const validator of staking.validators) {
    const address = consensusAddress(validator.publicKey);
    addresses.push(address);
    bonded += validator.selfBond;
    entries.push(
      {
        key: validatorKey(address),
        value: encodeValidatorRecord({
          publicKey: validator.publicKey,
          pqPublicKey: validator.pqPublicKey,
          storageRoot: validator.storageRoot,
          commissionBps: validator.commission,
          tokens: validator.selfBond,
          shares: validator.selfBond,
          power: Number(validator.selfBond / params.powerUnit),
          jailed: JailReason.NONE,
          jailedUntil: 0,
        }),
      },
      {
        key: delegationKey(address, ed25519Address(validator.publicKey)),
        value: encodeStoredAmount(validator.selfBond),
      },
      // Each genesis key is its own operator, so its index holds its own validator alone.
      {
        key: delegatorIndexKey(ed25519Address(validator.publicKey)),
        value: encodeDelegatorIndex([address]),
      },
    );
  }
  if (addresses.length > 0) {
    entries.push(
      { key: VALIDATORS_KEY, value: encodeValidatorList(addresses) },
      { key: ACTIVE_SET_KEY, value: encodeValidatorList(addresses) },
      { key: BONDED_KEY, value: encodeStoredAmount(bonded) },
    );
  }
  return entries;
}

/**
 * The router's `initialState` for a Caesar genesis: `caesar/params`, one `caesar/bal/…` entry
 * per allocation and, with a staking section, the staking parameters, each genesis validator's
 * record, self-bond delegation and delegator index, the validator lists and the bonded total, and the governance
 * parameters when the genesis gives them; in key order.
 * Checks the genesis first (`checkCaesarGenesis`).
 */
export function caesarInitialState(genesis: CaesarGenesis): InitialStateEntry[] {
  const checked = checkCaesarGenesis(genesis);
  const staking: InitialStateEntry[] =
    checked.staking === undefined ? [] : stakingInitialState(checked.staking);
  if (checked.governance !== undefined) {
    staking.push({ key: GOV_PARAMS_KEY, value: encodeGovParams(checked.governance) });
  }
  return [
    { key: caesarStateKey(PARAMS_KEY), value: encodeTokenParams(checked.token) },
    ...checked.allocations.map(({ address, amount }) => ({
      key: caesarStateKey(balanceKey(address)),
      value: encodeStoredAmount(amount),
    })),
    ...staking.map(({ key, value }) => ({ key: caesarStateKey(key), value })),
  ].sort((a, b) => compareBytes(a.key, b.key));
}

/**
 * The Caesar section of a genesis document's `app` data (`app.caesar`), parsed and checked; or
 * undefined when the genesis has none (the chain then has no ledger). Throws
 * `CaesarGenesisError` like `parseCaesarGenesis`, with paths under `caesarGenesis`, and
 * `STAKING_WITHOUT_CA` for a staking section in an `app` without the `ca` section: on such a
 * chain `create-validator` would need no TrustChain intermediate, so any funded key could make
 * itself a validator (issue 6: a new validator gets an intermediate through the governed
 * procedure first). The node reads its genesis through here, so it refuses to start one.
 */
export function caesarGenesisFromApp(app: GenesisAppState | undefined): CaesarGenesis | undefined {
  const section = app?.[CAESAR_MODULE_NAME];
  if (section === undefined) return undefined;
  const parsed = parseCaesarGenesis(section);
  if (parsed.staking !== undefined && app?.[CA_MODULE_NAME] === undefined) {
    throw new CaesarGenesisError(
      CaesarGenesisErrorCode.STAKING_WITHOUT_CA,
      `genesis app.${CAESAR_MODULE_NAME}.staking needs an app.${CA_MODULE_NAME} section: without the TrustChain CA any funded key could register a validator, which must first get an intermediate through the governed procedure (docs/ca.md)`,
      { path: `app.${CAESAR_MODULE_NAME}.staking` },
    );
  }
  return parsed;
}
