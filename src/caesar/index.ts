/**
 * Caesar, the ledger (layer 5): accounts addressed by the hash of their key, token parameters
 * and allocations from genesis, transfers with fees, and proven balance queries. See
 * docs/caesar.md.
 */
export {
  ADDRESS_BYTES,
  ED25519_PUBLIC_KEY_BYTES,
  accountAddress,
  ed25519Address,
  formatAddress,
  parseAddress,
} from './address.js';
export type { AccountKey, AccountKeyKind, Ed25519AccountKey } from './address.js';
export {
  AMOUNT_LIMIT,
  MAX_AMOUNT,
  MAX_AMOUNT_BYTES,
  decodeStoredAmount,
  encodeStoredAmount,
  isAmount,
} from './amount.js';
export {
  caesarBalanceQuery,
  caesarFeePoolQuery,
  caesarParamsQuery,
  verifyCaesarBalance,
  verifyCaesarFeePool,
  verifyCaesarParams,
} from './client.js';
export {
  CAESAR_RESULT_CODES,
  CaesarAmountError,
  CaesarAmountErrorCode,
  CaesarError,
  CaesarErrorCode,
  CaesarGenesisError,
  CaesarGenesisErrorCode,
  CaesarStateError,
  CaesarStateErrorCode,
} from './errors.js';
export {
  MAX_GENESIS_ALLOCATIONS,
  caesarGenesisFromApp,
  caesarGenesisToJson,
  caesarInitialState,
  checkCaesarGenesis,
  parseCaesarGenesis,
} from './genesis.js';
export type { CaesarGenesis, CaesarGenesisJson, GenesisAllocation } from './genesis.js';
export { BALANCE_QUERY, FEE_POOL_QUERY, PARAMS_QUERY, createCaesarModule } from './module.js';
export {
  MAX_DECIMALS,
  MAX_TOKEN_NAME_LENGTH,
  MAX_TOKEN_SYMBOL_LENGTH,
  TOKEN_NAME_PATTERN,
  TOKEN_SYMBOL_PATTERN,
  decodeTokenParams,
  encodeTokenParams,
} from './params.js';
export type { TokenParams } from './params.js';
export {
  CAESAR_MODULE_NAME,
  FEE_POOL_KEY,
  PARAMS_KEY,
  balanceKey,
  caesarStateKey,
} from './state.js';
export { MAX_MEMO_BYTES, TRANSFER_OP, decodeCaesarBody, encodeTransfer } from './transfer.js';
export { formatTokenAmount, parseBaseUnits, parseTokenAmount, smallestUnit } from './units.js';
export type { CaesarTx, Transfer, TransferInput } from './transfer.js';
