import { z } from 'zod';
import { CaesarReader, amountItem, mapItem, textItem, uintItem } from './cbor.js';
import { CaesarError, CaesarStateError, CaesarStateErrorCode } from './errors.js';

/**
 * The token's parameters, fixed in the genesis file and stored at `caesar/params` as canonical
 * CBOR `{ name: text, supply: amount, symbol: text, decimals: uint }` (amount as in cbor.ts).
 * One key holds them all, so one `caesar/params` query proves the name, decimals and total
 * supply together against a state root.
 */
export interface TokenParams {
  /** Printable ASCII, 1–64 characters, e.g. "Caesar". */
  readonly name: string;
  /** An upper-case ticker, 1–12 characters of A–Z and 0–9 starting with a letter, e.g. "CSR". */
  readonly symbol: string;
  /** Where wallets put the decimal point: 1 token = 10^decimals base units; 0 to 18. */
  readonly decimals: number;
  /** Total supply in base units, in [0, 2^128). */
  readonly supply: bigint;
}

export const MAX_TOKEN_NAME_LENGTH = 64;
export const MAX_TOKEN_SYMBOL_LENGTH = 12;
export const MAX_DECIMALS = 18;

export const TOKEN_NAME_PATTERN = /^[\x20-\x7e]{1,64}$/;
export const TOKEN_SYMBOL_PATTERN = /^[A-Z][A-Z0-9]{0,11}$/;

export const tokenNameSchema = z.string().regex(TOKEN_NAME_PATTERN, {
  error: `expected 1 to ${MAX_TOKEN_NAME_LENGTH} printable ASCII characters`,
});
export const tokenSymbolSchema = z.string().regex(TOKEN_SYMBOL_PATTERN, {
  error: `expected 1 to ${MAX_TOKEN_SYMBOL_LENGTH} characters of A-Z and 0-9, starting with a letter`,
});
export const decimalsSchema = z.int().min(0).max(MAX_DECIMALS);

/** Fields in canonical order. */
const PARAMS_FIELDS = ['name', 'supply', 'symbol', 'decimals'] as const;

/** The stored form of the parameters (assumed checked by the genesis schema). */
export function encodeTokenParams(params: TokenParams): Uint8Array {
  return mapItem({
    name: textItem(params.name),
    symbol: textItem(params.symbol),
    decimals: uintItem(params.decimals),
    supply: amountItem(params.supply),
  });
}

/**
 * Decodes the value of `caesar/params` (what a `caesar/params` query returns). Throws
 * `CaesarStateError CORRUPT_VALUE` for bytes that are not token parameters.
 */
export function decodeTokenParams(value: Uint8Array): TokenParams {
  try {
    const reader: CaesarReader = new CaesarReader(value, 'params');
    if (reader.readMapLength() !== PARAMS_FIELDS.length) {
      reader.malformed(`expected the ${PARAMS_FIELDS.length} fields ${PARAMS_FIELDS.join(', ')}`);
    }
    const read: Record<string, unknown> = {};
    let previous: string | undefined;
    for (const expected of PARAMS_FIELDS) {
      const key = reader.readKey(PARAMS_FIELDS, previous);
      if (key !== expected) reader.malformed(`missing field ${JSON.stringify(expected)}`);
      previous = key;
      switch (key) {
        case 'name':
          read[key] = reader.readAsciiText(key, MAX_TOKEN_NAME_LENGTH);
          break;
        case 'symbol':
          read[key] = reader.readAsciiText(key, MAX_TOKEN_SYMBOL_LENGTH);
          break;
        case 'decimals':
          read[key] = reader.readSmallUint(key, MAX_DECIMALS);
          break;
        case 'supply':
          read[key] = reader.readAmount(key);
          break;
        default:
          reader.malformed(`field ${JSON.stringify(key)} out of place`);
      }
    }
    reader.end();
    const params = read as unknown as TokenParams;
    if (!TOKEN_SYMBOL_PATTERN.test(params.symbol)) reader.malformed('symbol has a bad form');
    return params;
  } catch (error) {
    if (!(error instanceof CaesarError)) throw error;
    throw new CaesarStateError(
      CaesarStateErrorCode.CORRUPT_VALUE,
      `not Caesar token parameters: ${error.message}`,
      {},
      { cause: error },
    );
  }
}
