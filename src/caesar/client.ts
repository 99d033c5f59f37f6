import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import { decodeStateProof, verifyStateProof } from '../storage/index.js';
import { ADDRESS_BYTES } from './address.js';
import { decodeStoredAmount } from './amount.js';
import { CaesarError, CaesarErrorCode, CaesarStateError, CaesarStateErrorCode } from './errors.js';
import { BALANCE_QUERY, FEE_POOL_QUERY, PARAMS_QUERY } from './module.js';
import { decodeTokenParams } from './params.js';
import type { TokenParams } from './params.js';
import {
  CAESAR_MODULE_NAME,
  FEE_POOL_KEY,
  PARAMS_KEY,
  balanceKey,
  caesarStateKey,
} from './state.js';

function request(path: string, data: Uint8Array, height?: number): QueryRequest {
  const full = `${CAESAR_MODULE_NAME}/${path}`;
  return height === undefined ? { path: full, data } : { path: full, data, height };
}

/** The `caesar/balance` query for an address (optionally at an earlier height). */
export function caesarBalanceQuery(address: Uint8Array, height?: number): QueryRequest {
  if (!(address instanceof Uint8Array) || address.length !== ADDRESS_BYTES) {
    throw new CaesarError(
      CaesarErrorCode.INVALID_QUERY,
      `caesar/balance takes a ${ADDRESS_BYTES}-byte address`,
    );
  }
  return request(BALANCE_QUERY, address, height);
}

export function caesarFeePoolQuery(height?: number): QueryRequest {
  return request(FEE_POOL_QUERY, new Uint8Array(0), height);
}

export function caesarParamsQuery(height?: number): QueryRequest {
  return request(PARAMS_QUERY, new Uint8Array(0), height);
}

/**
 * Checks an answer's proof for `key` (module-relative) against the answer's state root. The
 * caller must also trust `response.stateRoot`, e.g. by finding it in a committed block header.
 * Throws `CaesarStateError PROOF_INVALID`, or `StateProofError` if the proof does not decode.
 */
export function verifiedValue(key: Uint8Array, response: QueryResponse): Uint8Array | null {
  if (response.proof === undefined) {
    throw new CaesarStateError(CaesarStateErrorCode.PROOF_INVALID, 'the answer carries no proof');
  }
  const proof = decodeStateProof(response.proof);
  if (!verifyStateProof(response.stateRoot, caesarStateKey(key), response.value, proof)) {
    throw new CaesarStateError(
      CaesarStateErrorCode.PROOF_INVALID,
      "the answer's proof does not verify against its state root",
    );
  }
  return response.value;
}

/** The proven balance of `address` in base units (an absent account, proven absent, is 0). */
export function verifyCaesarBalance(address: Uint8Array, response: QueryResponse): bigint {
  return decodeStoredAmount(verifiedValue(balanceKey(address), response));
}

/** The proven fee pool in base units. */
export function verifyCaesarFeePool(response: QueryResponse): bigint {
  return decodeStoredAmount(verifiedValue(FEE_POOL_KEY, response));
}

/** The proven token parameters; null if the chain has no Caesar genesis (proven absent). */
export function verifyCaesarParams(response: QueryResponse): TokenParams | null {
  const value = verifiedValue(PARAMS_KEY, response);
  return value === null ? null : decodeTokenParams(value);
}
