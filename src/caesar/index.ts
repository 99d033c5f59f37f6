/**
 * Caesar, the ledger (layer 5): accounts addressed by the hash of their key, token parameters
 * and allocations from genesis, transfers with fees, and proven balance queries. See
 * docs/caesar.md.
 */
export {
  ADDRESS_BYTES,
  ED25519_PUBLIC_KEY_BYTES,
  HYBRID_ADDRESS_TAG,
  accountAddress,
  ed25519Address,
  formatAddress,
  hybridAddress,
  parseAddress,
} from './address.js';
export type { AccountKey, AccountKeyKind, Ed25519AccountKey, HybridAccountKey } from './address.js';
export {
  HYBRID_FIELDS,
  HYBRID_OP,
  HYBRID_SIGNATURE_TAG,
  checkHybridTx,
  encodeHybridTx,
  HYBRID_INNER_OPS,
  hybridSigningMessage,
  signHybridTransfer,
  signHybridTx,
} from './hybrid.js';
export type {
  HybridCheckContext,
  HybridInnerTx,
  HybridSignInput,
  HybridTx,
  HybridTxSignInput,
} from './hybrid.js';
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
  CAESAR_EVENT_NAMES,
  createValidatorEvent,
  delegateEvent,
  editValidatorEvent,
  emitCaesarEvents,
  feeEvents,
  submitProposalEvent,
  transferEvent,
  unbondEvent,
  unjailEvent,
  voteEvent,
} from './events.js';
export type { CaesarEmit, CaesarEvent, CaesarEventName } from './events.js';
export {
  MAX_GENESIS_ALLOCATIONS,
  caesarGenesisFromApp,
  checkStakingMatchesValidators,
  caesarGenesisToJson,
  caesarInitialState,
  checkCaesarGenesis,
  parseCaesarGenesis,
} from './genesis.js';
export type {
  CaesarGenesis,
  CaesarGenesisJson,
  GenesisAllocation,
  GenesisStakingValidator,
  StakingGenesis,
  StakingGenesisJson,
} from './genesis.js';
export {
  BALANCE_QUERY,
  BONDED_QUERY,
  DELEGATION_QUERY,
  DELEGATOR_INDEX_QUERY,
  FEE_POOL_QUERY,
  PARAMS_QUERY,
  STAKING_PARAMS_QUERY,
  UNBONDING_QUERY,
  UNBONDING_TOTAL_QUERY,
  VALIDATOR_QUERY,
  VALIDATOR_SET_QUERY,
  VALIDATORS_QUERY,
  DEFAULT_VERIFIED_HYBRID_ENTRIES,
  createCaesarModule,
} from './module.js';
export type { CaesarModuleOptions } from './module.js';
export { holdsIntermediate, requireIntermediate } from './validator-intermediate.js';
export type { ValidatorIntermediates } from './validator-intermediate.js';
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
export { MAX_MEMO_BYTES, TRANSFER_OP, encodeTransfer } from './transfer.js';
export { CAESAR_OPS, decodeCaesarBody, encodeCaesarBody } from './body.js';
export type { CaesarTx } from './body.js';
export {
  MAX_AMOUNT_TEXT_LENGTH,
  formatTokenAmount,
  parseBaseUnits,
  parseTokenAmount,
  smallestUnit,
} from './units.js';
export type { Transfer, TransferInput } from './transfer.js';
export {
  BASIS_POINTS,
  DEFAULT_STAKING_PARAMS,
  MAX_BLOCK_PARAM,
  MAX_EPOCH_BLOCKS,
  MAX_SIGNED_WINDOW,
  decodeStakingParams,
  encodeStakingParams,
} from './staking-params.js';
export type { StakingParams } from './staking-params.js';
export {
  CREATE_VALIDATOR_OP,
  DELEGATE_OP,
  EDIT_VALIDATOR_OP,
  UNBOND_OP,
  UNJAIL_OP,
  encodeStakingTx,
} from './staking-tx.js';
export type {
  CreateValidator,
  Delegate,
  EditValidator,
  StakingTx,
  Unbond,
  Unjail,
} from './staking-tx.js';
export {
  ACTIVE_SET_KEY,
  BONDED_KEY,
  JailReason,
  MAX_DELEGATIONS_PER_ACCOUNT,
  MAX_UNBONDING_ENTRIES,
  MAX_VALIDATOR_CANDIDATES,
  STAKING_PARAMS_KEY,
  UNBONDING_TOTAL_KEY,
  VALIDATORS_KEY,
  compareAddresses,
  consensusAddress,
  decodeDelegatorIndex,
  decodeUnbondingEntries,
  decodeValidatorList,
  decodeValidatorRecord,
  delegationKey,
  delegatorIndexKey,
  formatConsensusAddress,
  missedKey,
  parseConsensusAddress,
  sharesValue,
  unbondingKey,
  unbondingQueueKey,
  vacantRecordLifetime,
  validatorKey,
} from './staking-state.js';
export type { UnbondingEntry, ValidatorRecord } from './staking-state.js';
export { MAX_SLASH_LOOKBACK, caesarEndBlock, selectValidatorSet } from './end-block.js';
export {
  caesarBondedQuery,
  caesarDelegationQuery,
  caesarDelegatorIndexQuery,
  caesarStakingParamsQuery,
  caesarUnbondingQuery,
  caesarUnbondingTotalQuery,
  caesarValidatorQuery,
  caesarValidatorSetQuery,
  caesarValidatorsQuery,
  verifyCaesarBonded,
  verifyCaesarDelegation,
  verifyCaesarDelegatorIndex,
  verifyCaesarStakingParams,
  verifyCaesarUnbonding,
  verifyCaesarUnbondingTotal,
  verifyCaesarValidator,
  verifyCaesarValidatorSet,
  verifyCaesarValidators,
} from './staking-client.js';
export {
  DEFAULT_GOV_PARAMS,
  GOV_PARAMS_KEY,
  GOV_PARAM_NAMES,
  MAX_GOV_PERIOD,
  MAX_GOV_RATE_BPS,
  decodeGovParams,
  encodeGovParams,
  readGovParams,
} from './gov-params.js';
export type { GovParams } from './gov-params.js';
export {
  AMOUNT_PARAMS,
  GOVERNABLE_PARAMS,
  GOVERNABLE_STAKING_PARAMS,
  MAX_PARAM_CHANGES,
  NOT_GOVERNABLE,
  applyParamChanges,
  isGovernableParam,
} from './gov-changes.js';
export type { GovernableParam, ParamChange } from './gov-changes.js';
export {
  MAX_TITLE_LENGTH,
  SUBMIT_PROPOSAL_OP,
  VOTE_OP,
  VoteOption,
  encodeGovTx,
  normalizeChanges,
  parseVoteOption,
  voteOptionName,
} from './gov-tx.js';
export type { GovTx, SubmitProposal, Vote } from './gov-tx.js';
export {
  GOV_ACTIVE_KEY,
  GOV_COUNT_KEY,
  GOV_DEPOSITS_KEY,
  MAX_ACTIVE_PROPOSALS,
  MAX_PROPOSAL_VOTERS,
  ProposalStatus,
  decodeProposal,
  decodeVotes,
  proposalIdBytes,
  proposalKey,
  votesKey,
} from './gov-state.js';
export type { ProposalRecord, Tally, VoteRecord } from './gov-state.js';
export { countVotes, tallyOutcome } from './gov.js';
export type { TallyOutcome } from './gov.js';
export { governanceEndBlock } from './gov-end-block.js';
export {
  GOV_ACTIVE_QUERY,
  GOV_COUNT_QUERY,
  GOV_DEPOSITS_QUERY,
  GOV_PARAMS_QUERY,
  GOV_PROPOSAL_QUERY,
  GOV_VOTES_QUERY,
} from './gov-query.js';
export {
  caesarGovActiveQuery,
  caesarGovCountQuery,
  caesarGovDepositsQuery,
  caesarGovParamsQuery,
  caesarProposalQuery,
  caesarVotesQuery,
  verifyCaesarGovActive,
  verifyCaesarGovCount,
  verifyCaesarGovDeposits,
  verifyCaesarGovParams,
  verifyCaesarProposal,
  verifyCaesarVotes,
} from './gov-client.js';
