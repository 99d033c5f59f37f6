/**
 * The application side of the ABCI-like interface (../app.ts): the signed, stamped transaction
 * envelope, the module contract, and the router that checks envelopes, keeps sender sequences
 * and dispatches to modules. See docs/application.md.
 */
export * from './envelope.js';
export * from './errors.js';
export type * from './module.js';
export { EVENT_LIMITS } from '../app.js';
export {
  ACCOUNT_SEQUENCE_QUERY_PREFIX,
  DEFAULT_MAX_SEQUENCE_LEAD,
  INITIAL_HEIGHT,
  RESERVED_MODULE_NAMES,
  SEQUENCE_QUERY,
  TX_RESULT_QUERY,
  accountSequenceQuery,
  createApplication,
} from './router.js';
export type { ApplicationOptions, InitialStateEntry } from './router.js';
export {
  MAX_SEQUENCE_ACCOUNT_BYTES,
  accountSequenceKey,
  decodeSequence,
  sequenceKey,
  sequenceOwner,
} from './accounts.js';
export { DEFAULT_RECENT_RESULTS, decodeRecordedTxResult } from './tx-results.js';
export type { RecordedTxResult } from './tx-results.js';
export { VerificationCache } from './verification-cache.js';
export type { VerificationCacheOptions } from './verification-cache.js';
