import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import { VALIDATOR_ADDRESS_BYTES } from '../consensus/validator-set.js';
import { concatBytes } from '../crypto/bytes.js';
import { ADDRESS_BYTES } from './address.js';
import { decodeStoredAmount } from './amount.js';
import { verifiedValue } from './client.js';
import { CaesarError, CaesarErrorCode } from './errors.js';
import {
  BONDED_QUERY,
  DELEGATION_QUERY,
  DELEGATOR_INDEX_QUERY,
  STAKING_PARAMS_QUERY,
  UNBONDING_QUERY,
  UNBONDING_TOTAL_QUERY,
  VALIDATOR_QUERY,
  VALIDATOR_SET_QUERY,
  VALIDATORS_QUERY,
} from './module.js';
import { decodeStakingParams } from './staking-params.js';
import type { StakingParams } from './staking-params.js';
import {
  ACTIVE_SET_KEY,
  BONDED_KEY,
  STAKING_PARAMS_KEY,
  UNBONDING_TOTAL_KEY,
  VALIDATORS_KEY,
  decodeDelegatorIndex,
  decodeUnbondingEntries,
  decodeValidatorList,
  decodeValidatorRecord,
  delegationKey,
  delegatorIndexKey,
  unbondingKey,
  validatorKey,
} from './staking-state.js';
import type { UnbondingEntry, ValidatorRecord } from './staking-state.js';
import { CAESAR_MODULE_NAME } from './state.js';

/**
 * Staking queries and their client-side readers. Each query names one state key; each reader
 * checks the answer's proof against its state root (which the caller must trust, e.g. from a
 * committed header) and throws `CaesarStateError PROOF_INVALID` if it does not verify.
 */

function request(path: string, data: Uint8Array, height?: number): QueryRequest {
  const full = `${CAESAR_MODULE_NAME}/${path}`;
  return height === undefined ? { path: full, data } : { path: full, data, height };
}

function sized(value: Uint8Array, length: number, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new CaesarError(CaesarErrorCode.INVALID_QUERY, `${what} must be ${length} bytes`);
  }
  return value;
}

const none = new Uint8Array(0);

export const caesarValidatorQuery = (validator: Uint8Array, height?: number): QueryRequest =>
  request(
    VALIDATOR_QUERY,
    sized(validator, VALIDATOR_ADDRESS_BYTES, 'a validator address'),
    height,
  );
export const caesarValidatorsQuery = (height?: number): QueryRequest =>
  request(VALIDATORS_QUERY, none, height);
export const caesarValidatorSetQuery = (height?: number): QueryRequest =>
  request(VALIDATOR_SET_QUERY, none, height);
export const caesarDelegationQuery = (
  validator: Uint8Array,
  delegator: Uint8Array,
  height?: number,
): QueryRequest =>
  request(
    DELEGATION_QUERY,
    concatBytes(
      sized(validator, VALIDATOR_ADDRESS_BYTES, 'a validator address'),
      sized(delegator, ADDRESS_BYTES, 'a delegator address'),
    ),
    height,
  );
/** The delegator index of an account: the validators it has shares of. */
export const caesarDelegatorIndexQuery = (delegator: Uint8Array, height?: number): QueryRequest =>
  request(DELEGATOR_INDEX_QUERY, sized(delegator, ADDRESS_BYTES, 'a delegator address'), height);
export const caesarUnbondingQuery = (delegator: Uint8Array, height?: number): QueryRequest =>
  request(UNBONDING_QUERY, sized(delegator, ADDRESS_BYTES, 'a delegator address'), height);
export const caesarStakingParamsQuery = (height?: number): QueryRequest =>
  request(STAKING_PARAMS_QUERY, none, height);
export const caesarBondedQuery = (height?: number): QueryRequest =>
  request(BONDED_QUERY, none, height);
export const caesarUnbondingTotalQuery = (height?: number): QueryRequest =>
  request(UNBONDING_TOTAL_QUERY, none, height);

/** The proven validator record; null when there is no such validator (proven absent). */
export function verifyCaesarValidator(
  validator: Uint8Array,
  response: QueryResponse,
): ValidatorRecord | null {
  const value = verifiedValue(validatorKey(validator), response);
  return value === null ? null : decodeValidatorRecord(value);
}

/** The proven list of every validator's 20-byte address. */
export function verifyCaesarValidators(response: QueryResponse): Uint8Array[] {
  const value = verifiedValue(VALIDATORS_KEY, response);
  return value === null ? [] : decodeValidatorList(value);
}

/** The proven addresses of the validators staking last handed to consensus with power. */
export function verifyCaesarValidatorSet(response: QueryResponse): Uint8Array[] {
  const value = verifiedValue(ACTIVE_SET_KEY, response);
  return value === null ? [] : decodeValidatorList(value);
}

/** The proven shares of a delegation (0: none); its worth is shares × tokens / shares. */
export function verifyCaesarDelegation(
  validator: Uint8Array,
  delegator: Uint8Array,
  response: QueryResponse,
): bigint {
  return decodeStoredAmount(verifiedValue(delegationKey(validator, delegator), response));
}

/**
 * The proven validators `delegator` has shares of, ascending (empty: none, proven absent).
 * Exactly these have a `caesar/delegation` above zero for it, so with one proven delegation per
 * entry an account's delegations are proven complete.
 */
export function verifyCaesarDelegatorIndex(
  delegator: Uint8Array,
  response: QueryResponse,
): Uint8Array[] {
  const value = verifiedValue(delegatorIndexKey(delegator), response);
  return value === null ? [] : decodeDelegatorIndex(value);
}

export function verifyCaesarUnbonding(
  delegator: Uint8Array,
  response: QueryResponse,
): UnbondingEntry[] {
  const value = verifiedValue(unbondingKey(delegator), response);
  return value === null ? [] : decodeUnbondingEntries(value);
}

/** The proven staking parameters; null when the chain has no staking (proven absent). */
export function verifyCaesarStakingParams(response: QueryResponse): StakingParams | null {
  const value = verifiedValue(STAKING_PARAMS_KEY, response);
  return value === null ? null : decodeStakingParams(value);
}

export function verifyCaesarBonded(response: QueryResponse): bigint {
  return decodeStoredAmount(verifiedValue(BONDED_KEY, response));
}

export function verifyCaesarUnbondingTotal(response: QueryResponse): bigint {
  return decodeStoredAmount(verifiedValue(UNBONDING_TOTAL_KEY, response));
}
