import type { ModuleState, ModuleStateReader } from '../consensus/application/module.js';
import { concatBytes } from '../crypto/bytes.js';
import { ADDRESS_BYTES } from './address.js';
import { decodeStoredAmount, encodeStoredAmount } from './amount.js';

/**
 * Caesar's state, under the router's `caesar/` prefix (docs/caesar.md, "State"):
 *
 *   caesar/bal/<address>   balance: 1–16 bytes big-endian, no leading zero; absent = 0
 *   caesar/pool/fees       fees collected, same encoding; absent = 0
 *   caesar/params          token parameters, canonical CBOR (params.ts), written at genesis
 *
 * `<address>` is the raw 32-byte address. The keys below are module-relative (what a module's
 * state view takes); `caesarStateKey` gives the full state key that a proof proves.
 */
export const CAESAR_MODULE_NAME = 'caesar';

const encoder = new TextEncoder();
const BALANCE_PREFIX = encoder.encode('bal/');
export const FEE_POOL_KEY = encoder.encode('pool/fees');
export const PARAMS_KEY = encoder.encode('params');
const MODULE_PREFIX = encoder.encode(`${CAESAR_MODULE_NAME}/`);

/** The module-relative key of an address's balance. */
export function balanceKey(address: Uint8Array): Uint8Array {
  if (address.length !== ADDRESS_BYTES) {
    throw new RangeError(`an address is ${ADDRESS_BYTES} bytes, got ${address.length}`);
  }
  return concatBytes(BALANCE_PREFIX, address);
}

/** The full state key (`caesar/` + key) of a module-relative key. */
export function caesarStateKey(key: Uint8Array): Uint8Array {
  return concatBytes(MODULE_PREFIX, key);
}

export function readAmount(state: ModuleStateReader, key: Uint8Array): bigint {
  return decodeStoredAmount(state.get(key));
}

/** Stores an amount; zero deletes the key, so an emptied account leaves nothing behind. */
export function writeAmount(state: ModuleState, key: Uint8Array, value: bigint): void {
  if (value === 0n) state.delete(key);
  else state.set(key, encodeStoredAmount(value));
}
