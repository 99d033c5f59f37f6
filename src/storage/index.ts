/** The storage layer (layer 2): the node store in SQLite and the consensus WAL. */
export { openStore } from './store.js';
export type { NodeStore, SavedBlock, StoreFileSizes, StoreOptions } from './store.js';
export { openStoreFromSnapshot } from './snapshot.js';
export type { RestoreOptions } from './snapshot.js';
export type {
  AccountTx,
  BlockReader,
  CommittedBlock,
  StoredBlock,
  StoredEvidence,
  StoredReceipt,
  StoredValidatorUpdates,
  TxPosition,
} from './block-store.js';
export { DEFAULT_RANGE_LIMIT, MAX_HISTORY_PAGE, MAX_RANGE_LIMIT } from './block-store.js';
export type { StateQueryResult, StateReader } from './state-store.js';
export type { PendingEvidence, PendingEvidenceStore } from './pending-evidence.js';
export { MAX_PENDING_EVIDENCE_BYTES } from './pending-evidence.js';
export type { HeaderStateRoot, IntegrityOptions, IntegrityReport } from './integrity.js';
export type {
  BlockInput,
  EvidenceInput,
  ReceiptInput,
  SaveBlockInput,
  StateChange,
} from './inputs.js';
export {
  MAX_ACCOUNT_BYTES,
  MAX_RECEIPT_ACCOUNTS,
  MAX_STATE_KEY_BYTES,
  MAX_STATE_VALUE_BYTES,
} from './inputs.js';
export { StorageError, StorageErrorCode } from './errors.js';
export { STORE_SCHEMA_VERSION } from './store-migrations.js';
export {
  EMPTY_STATE_ROOT,
  StateProofError,
  StateProofErrorCode,
  decodeStateProof,
  encodeStateProof,
  verifyStateProof,
} from './state-proof.js';
export type { StateLeaf, StateProof } from './state-proof.js';
export { consensusWalPathFor, openConsensusWal } from './consensus-wal.js';
export type { ConsensusWal, ConsensusWalOptions, WalReplay } from './consensus-wal.js';
export { ConsensusWalError, ConsensusWalErrorCode } from './wal-format.js';
export type { WalRecord } from './wal-format.js';
export {
  MAX_STATE_WITNESS_BYTES,
  StateWitnessError,
  StateWitnessErrorCode,
  WitnessState,
  decodeStateWitness,
  encodeStateWitness,
} from './state-witness.js';
export type { StateWitness, WitnessValue } from './state-witness.js';
