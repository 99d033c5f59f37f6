import { HyperMeshError } from '../codec/error.js';
import { ModuleError } from '../consensus/application/errors.js';

/**
 * Why the Caesar module refuses a transaction or a query. The string code is what the mempool
 * returns (`TxCheckResult.code`) and what prefixes a refused transaction's `TxResult.log`; the
 * number in `CAESAR_RESULT_CODES` is its `TxResult.code`. Both are stable: clients switch on
 * them, so a code is never renumbered or reused.
 */
export enum CaesarErrorCode {
  /** Not a canonical CBOR transfer: bad CBOR, wrong types, missing or repeated fields, bad address. */
  MALFORMED_BODY = 'CAESAR_MALFORMED_BODY',
  /** A map key the transfer does not define. */
  UNKNOWN_FIELD = 'CAESAR_UNKNOWN_FIELD',
  /** An amount or fee that is not a non-negative integer: negative, a float, a fraction, text. */
  INVALID_AMOUNT = 'CAESAR_INVALID_AMOUNT',
  /** An amount or fee of 2^128 or more. */
  AMOUNT_TOO_LARGE = 'CAESAR_AMOUNT_TOO_LARGE',
  /** A transfer of nothing. */
  ZERO_AMOUNT = 'CAESAR_ZERO_AMOUNT',
  /** A memo above `MAX_MEMO_BYTES`. */
  MEMO_TOO_LONG = 'CAESAR_MEMO_TOO_LONG',
  /** A transfer whose recipient is the sender's own address. */
  SELF_TRANSFER = 'CAESAR_SELF_TRANSFER',
  /** The sender's balance is below amount + fee. */
  INSUFFICIENT_FUNDS = 'CAESAR_INSUFFICIENT_FUNDS',
  /** Query data that does not have the form the query needs. */
  INVALID_QUERY = 'CAESAR_INVALID_QUERY',
}

/** The `TxResult.code` recorded for each refusal (0 is "applied"). */
export const CAESAR_RESULT_CODES: Readonly<Record<CaesarErrorCode, number>> = Object.freeze({
  [CaesarErrorCode.MALFORMED_BODY]: 1,
  [CaesarErrorCode.UNKNOWN_FIELD]: 2,
  [CaesarErrorCode.INVALID_AMOUNT]: 3,
  [CaesarErrorCode.AMOUNT_TOO_LARGE]: 4,
  [CaesarErrorCode.ZERO_AMOUNT]: 5,
  [CaesarErrorCode.MEMO_TOO_LONG]: 6,
  [CaesarErrorCode.SELF_TRANSFER]: 7,
  [CaesarErrorCode.INSUFFICIENT_FUNDS]: 8,
  [CaesarErrorCode.INVALID_QUERY]: 9,
});

export class CaesarError extends ModuleError<CaesarErrorCode> {
  constructor(code: CaesarErrorCode, message: string, detail: Record<string, unknown> = {}) {
    super(code, CAESAR_RESULT_CODES[code], message, detail);
  }
}

/** Why a Caesar genesis (token parameters and allocations) is refused. */
export enum CaesarGenesisErrorCode {
  /** A field of the wrong type, form or range, or an unknown field. */
  INVALID = 'CAESAR_GENESIS_INVALID',
  /** The same address is allocated twice. */
  DUPLICATE_ALLOCATION = 'CAESAR_GENESIS_DUPLICATE_ALLOCATION',
  /** The allocations do not add up to the total supply. */
  SUPPLY_MISMATCH = 'CAESAR_GENESIS_SUPPLY_MISMATCH',
}

export class CaesarGenesisError extends HyperMeshError<CaesarGenesisErrorCode> {}

/** Why a written amount (`1.5`, `--base-units 1500000`) is refused (units.ts). */
export enum CaesarAmountErrorCode {
  /** Not digits with at most one decimal point: a sign, exponent, spaces, separators, empty. */
  SYNTAX = 'CAESAR_AMOUNT_SYNTAX',
  /** A minus sign: amounts are never negative. */
  NEGATIVE = 'CAESAR_AMOUNT_NEGATIVE',
  /** Non-zero digits beyond the token's decimals, or any fraction in base units. */
  TOO_PRECISE = 'CAESAR_AMOUNT_TOO_PRECISE',
  /** 2^128 base units or more. */
  TOO_LARGE = 'CAESAR_AMOUNT_TOO_LARGE',
}

export class CaesarAmountError extends HyperMeshError<CaesarAmountErrorCode> {}

/**
 * A stored value or a query answer that does not decode or does not verify: the store is damaged
 * or the answer was tampered with (never a sender's doing, so not a `ModuleError`).
 */
export enum CaesarStateErrorCode {
  CORRUPT_VALUE = 'CAESAR_CORRUPT_VALUE',
  PROOF_INVALID = 'CAESAR_PROOF_INVALID',
}

export class CaesarStateError extends HyperMeshError<CaesarStateErrorCode> {}
