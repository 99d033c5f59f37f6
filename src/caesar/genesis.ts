import { z } from 'zod';
import { SchemaError, bytes, parseInput } from '../codec/schema.js';
import type { InitialStateEntry } from '../consensus/application/index.js';
import type { GenesisAppState } from '../consensus/genesis.js';
import { ADDRESS_BYTES, formatAddress, parseAddress } from './address.js';
import { MAX_AMOUNT, encodeStoredAmount } from './amount.js';
import { CaesarGenesisError, CaesarGenesisErrorCode } from './errors.js';
import { decimalsSchema, encodeTokenParams, tokenNameSchema, tokenSymbolSchema } from './params.js';
import type { TokenParams } from './params.js';
import { CAESAR_MODULE_NAME, PARAMS_KEY, balanceKey, caesarStateKey } from './state.js';

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

export interface CaesarGenesis {
  readonly token: TokenParams;
  readonly allocations: readonly GenesisAllocation[];
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
};

/** More allocations than this belong in a snapshot, not a genesis file. */
export const MAX_GENESIS_ALLOCATIONS = 100_000;

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

const jsonSchema = z.strictObject({
  token: z.strictObject({
    name: tokenNameSchema,
    symbol: tokenSymbolSchema,
    decimals: decimalsSchema,
    supply: decimalAmount,
  }),
  allocations: allocations(z.strictObject({ address: hexAddress, amount: decimalAmount })),
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
  const sorted = genesis.allocations
    .map((allocation, index) => ({ ...allocation, index }))
    .sort((a, b) => compareBytes(a.address, b.address));
  let total = 0n;
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
    throw new CaesarGenesisError(
      CaesarGenesisErrorCode.SUPPLY_MISMATCH,
      `caesarGenesis: the allocations sum to ${total} base units, ${gap} the total supply of ${supply}`,
      { allocated: total.toString(), supply: supply.toString() },
    );
  }
  return sorted.map(({ address, amount }) => ({ address, amount }));
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
  return { token: parsed.token, allocations: checkAllocations(parsed) };
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
  return { token: { ...parsed.token }, allocations: checkAllocations(parsed) };
}

/** The JSON form of a genesis (for writing a genesis file); the inverse of `parseCaesarGenesis`. */
export function caesarGenesisToJson(genesis: CaesarGenesis): CaesarGenesisJson {
  const checked = checkCaesarGenesis(genesis);
  const { name, symbol, decimals, supply } = checked.token;
  return {
    token: { name, symbol, decimals, supply: supply.toString() },
    allocations: checked.allocations.map(({ address, amount }) => ({
      address: formatAddress(address),
      amount: amount.toString(),
    })),
  };
}

/**
 * The router's `initialState` for a Caesar genesis: `caesar/params` and one `caesar/bal/…` entry
 * per allocation, in key order. Checks the genesis first (`checkCaesarGenesis`).
 */
export function caesarInitialState(genesis: CaesarGenesis): InitialStateEntry[] {
  const checked = checkCaesarGenesis(genesis);
  return [
    { key: caesarStateKey(PARAMS_KEY), value: encodeTokenParams(checked.token) },
    ...checked.allocations.map(({ address, amount }) => ({
      key: caesarStateKey(balanceKey(address)),
      value: encodeStoredAmount(amount),
    })),
  ].sort((a, b) => compareBytes(a.key, b.key));
}

/**
 * The Caesar section of a genesis document's `app` data (`app.caesar`), parsed and checked; or
 * undefined when the genesis has none (the chain then has no ledger). Throws
 * `CaesarGenesisError` like `parseCaesarGenesis`, with paths under `caesarGenesis`.
 */
export function caesarGenesisFromApp(app: GenesisAppState | undefined): CaesarGenesis | undefined {
  const section = app?.[CAESAR_MODULE_NAME];
  return section === undefined ? undefined : parseCaesarGenesis(section);
}
