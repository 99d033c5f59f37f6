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
  /** A staking transaction on a chain whose Caesar genesis has no `staking` section. */
  STAKING_DISABLED = 'CAESAR_STAKING_DISABLED',
  /** `create-validator` for a consensus key that already has a validator. */
  VALIDATOR_EXISTS = 'CAESAR_VALIDATOR_EXISTS',
  /**
   * A delegation, unbond, unjail or edit-validator naming a validator that does not exist (for
   * unjail and edit-validator: the sender's key has no validator).
   */
  UNKNOWN_VALIDATOR = 'CAESAR_UNKNOWN_VALIDATOR',
  /** A commission rate above 10,000 basis points (100%), in create- or edit-validator. */
  INVALID_COMMISSION = 'CAESAR_INVALID_COMMISSION',
  /** An unbond of more than the delegation is worth. */
  INSUFFICIENT_BOND = 'CAESAR_INSUFFICIENT_BOND',
  /** A delegator already has `MAX_UNBONDING_ENTRIES` unbondings waiting. */
  TOO_MANY_UNBONDING = 'CAESAR_TOO_MANY_UNBONDING',
  /** A delegation too small to buy one share of the validator, or one that would overflow. */
  INVALID_DELEGATION = 'CAESAR_INVALID_DELEGATION',
  /** `unjail` for a validator that is not jailed. */
  NOT_JAILED = 'CAESAR_NOT_JAILED',
  /** `unjail` before the validator's jail time is over. */
  JAIL_NOT_OVER = 'CAESAR_JAIL_NOT_OVER',
  /** `create-validator` when `MAX_VALIDATOR_CANDIDATES` validators exist. */
  TOO_MANY_VALIDATORS = 'CAESAR_TOO_MANY_VALIDATORS',
  /** A proposal naming a parameter that governance cannot change. */
  GOV_UNKNOWN_PARAM = 'CAESAR_GOV_UNKNOWN_PARAM',
  /** A proposal whose values are out of bounds, or would make the parameters invalid together. */
  GOV_INVALID_PARAM = 'CAESAR_GOV_INVALID_PARAM',
  /** A proposal's deposit below `minDeposit`. */
  GOV_DEPOSIT_TOO_SMALL = 'CAESAR_GOV_DEPOSIT_TOO_SMALL',
  /** A vote on a proposal that does not exist. */
  GOV_UNKNOWN_PROPOSAL = 'CAESAR_GOV_UNKNOWN_PROPOSAL',
  /** A vote on a proposal whose voting period is over. */
  GOV_VOTING_CLOSED = 'CAESAR_GOV_VOTING_CLOSED',
  /** A vote by an account without bonded stake. */
  GOV_NO_STAKE = 'CAESAR_GOV_NO_STAKE',
  /** A proposal when `MAX_ACTIVE_PROPOSALS` are in voting or waiting for their timelock. */
  GOV_TOO_MANY_PROPOSALS = 'CAESAR_GOV_TOO_MANY_PROPOSALS',
  /** A new voter on a proposal that already has `MAX_PROPOSAL_VOTERS` voters. */
  GOV_TOO_MANY_VOTERS = 'CAESAR_GOV_TOO_MANY_VOTERS',
  /** A hybrid-account transaction without its FALCON signature (only the Ed25519 one). */
  HYBRID_SIGNATURE_MISSING = 'CAESAR_HYBRID_SIGNATURE_MISSING',
  /** A hybrid-account transaction whose FALCON signature does not verify. */
  HYBRID_BAD_SIGNATURE = 'CAESAR_HYBRID_BAD_SIGNATURE',
  /** A hybrid-account transaction whose `pqKey` is not a FALCON-1024 public key. */
  HYBRID_INVALID_KEY = 'CAESAR_HYBRID_INVALID_KEY',
  /**
   * A hybrid-account transaction wrapping an op a hybrid account cannot send (another hybrid
   * body: it sends transfers, delegations, unbonds, proposals and votes).
   */
  HYBRID_UNSUPPORTED_OP = 'CAESAR_HYBRID_UNSUPPORTED_OP',
  /** A hybrid-account transaction whose `seq` is not its envelope's sequence number. */
  HYBRID_SEQUENCE_MISMATCH = 'CAESAR_HYBRID_SEQUENCE_MISMATCH',
  /**
   * A hybrid-account transaction wrapping `create-validator`, `unjail` or `edit-validator`,
   * which act for a validator's Ed25519 consensus key and are sent from that key alone.
   */
  HYBRID_VALIDATOR_OP = 'CAESAR_HYBRID_VALIDATOR_OP',
  /**
   * `create-validator` on a chain with the `ca` module by a consensus key that holds no
   * TrustChain intermediate in effect (genesis, or added through the governed procedure).
   */
  VALIDATOR_NO_INTERMEDIATE = 'CAESAR_VALIDATOR_NO_INTERMEDIATE',
  /** `edit-validator` less than `epochBlocks` blocks after the validator's last change. */
  COMMISSION_CHANGE_TOO_SOON = 'CAESAR_COMMISSION_CHANGE_TOO_SOON',
  /** `edit-validator` moving the commission by more than `maxCommissionChangeBps`. */
  COMMISSION_CHANGE_TOO_LARGE = 'CAESAR_COMMISSION_CHANGE_TOO_LARGE',
  /** `create-validator` whose self-bond is below `minValidatorStake`. */
  SELF_BOND_TOO_SMALL = 'CAESAR_SELF_BOND_TOO_SMALL',
  /**
   * A `delegate` or `create-validator` that would give an account shares of more than
   * `MAX_DELEGATIONS_PER_ACCOUNT` validators.
   */
  TOO_MANY_DELEGATIONS = 'CAESAR_TOO_MANY_DELEGATIONS',
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
  [CaesarErrorCode.STAKING_DISABLED]: 10,
  [CaesarErrorCode.VALIDATOR_EXISTS]: 11,
  [CaesarErrorCode.UNKNOWN_VALIDATOR]: 12,
  [CaesarErrorCode.INVALID_COMMISSION]: 13,
  [CaesarErrorCode.INSUFFICIENT_BOND]: 14,
  [CaesarErrorCode.TOO_MANY_UNBONDING]: 15,
  [CaesarErrorCode.INVALID_DELEGATION]: 16,
  [CaesarErrorCode.NOT_JAILED]: 17,
  [CaesarErrorCode.JAIL_NOT_OVER]: 18,
  [CaesarErrorCode.TOO_MANY_VALIDATORS]: 19,
  [CaesarErrorCode.GOV_UNKNOWN_PARAM]: 20,
  [CaesarErrorCode.GOV_INVALID_PARAM]: 21,
  [CaesarErrorCode.GOV_DEPOSIT_TOO_SMALL]: 22,
  [CaesarErrorCode.GOV_UNKNOWN_PROPOSAL]: 23,
  [CaesarErrorCode.GOV_VOTING_CLOSED]: 24,
  [CaesarErrorCode.GOV_NO_STAKE]: 25,
  [CaesarErrorCode.GOV_TOO_MANY_PROPOSALS]: 26,
  [CaesarErrorCode.GOV_TOO_MANY_VOTERS]: 27,
  [CaesarErrorCode.HYBRID_SIGNATURE_MISSING]: 28,
  [CaesarErrorCode.HYBRID_BAD_SIGNATURE]: 29,
  [CaesarErrorCode.HYBRID_INVALID_KEY]: 30,
  [CaesarErrorCode.HYBRID_UNSUPPORTED_OP]: 31,
  [CaesarErrorCode.HYBRID_SEQUENCE_MISMATCH]: 32,
  [CaesarErrorCode.HYBRID_VALIDATOR_OP]: 33,
  [CaesarErrorCode.VALIDATOR_NO_INTERMEDIATE]: 34,
  [CaesarErrorCode.COMMISSION_CHANGE_TOO_SOON]: 35,
  [CaesarErrorCode.COMMISSION_CHANGE_TOO_LARGE]: 36,
  [CaesarErrorCode.SELF_BOND_TOO_SMALL]: 37,
  [CaesarErrorCode.TOO_MANY_DELEGATIONS]: 38,
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
  /** The staking section's validators do not match the consensus genesis validators. */
  VALIDATOR_MISMATCH = 'CAESAR_GENESIS_VALIDATOR_MISMATCH',
  /**
   * A staking section in a genesis without the `ca` module: a new validator needs a TrustChain
   * intermediate (validator-intermediate.ts), which only the ca module can grant.
   */
  STAKING_WITHOUT_CA = 'CAESAR_GENESIS_STAKING_WITHOUT_CA',
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
  /** More characters than any amount needs (`MAX_AMOUNT_TEXT_LENGTH`), refused before parsing. */
  TOO_LONG = 'CAESAR_AMOUNT_TOO_LONG',
}

export class CaesarAmountError extends HyperMeshError<CaesarAmountErrorCode> {}

/**
 * A stored value or a query answer that does not decode or does not verify: the store is damaged
 * or the answer was tampered with (never a sender's doing, so not a `ModuleError`).
 */
export enum CaesarStateErrorCode {
  CORRUPT_VALUE = 'CAESAR_CORRUPT_VALUE',
  PROOF_INVALID = 'CAESAR_PROOF_INVALID',
  /**
   * An answer read at another height than the one asked for (its proofs may verify: they prove
   * the state of the wrong block). `detail`: `requested`, `answered`.
   */
  HEIGHT_MISMATCH = 'CAESAR_HEIGHT_MISMATCH',
}

export class CaesarStateError extends HyperMeshError<CaesarStateErrorCode> {}
