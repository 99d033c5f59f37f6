/**
 * Verification results. Each of the four parts is checked on its own and yields either success
 * or a failure naming the part and a precise reason, so callers (the driver, `hypermesh block
 * verify`, tests) switch on `reason` instead of parsing messages.
 */
export type ProofPart = 'space' | 'stake' | 'work' | 'time';

/** PoSpace: where — the proposer's storage plot and its signed network address. */
export enum SpaceFailure {
  /** The header's proof bytes do not decode (reported for each part they carry). */
  UNDECODABLE_PROOF = 'undecodable-proof',
  PROPOSER_NOT_A_VALIDATOR = 'proposer-not-a-validator',
  /** The proposer's validator entry has no storage root. */
  NO_REGISTERED_COMMITMENT = 'no-registered-commitment',
  /** The proof names a plot root other than the proposer's registered one. */
  UNREGISTERED_COMMITMENT = 'unregistered-commitment',
  INVALID_ADDRESS_SIGNATURE = 'invalid-address-signature',
  WRONG_CHALLENGE_COUNT = 'wrong-challenge-count',
  WRONG_CHALLENGE_INDEX = 'wrong-challenge-index',
  MALFORMED_BLOCK = 'malformed-block',
  BLOCK_NOT_DERIVED_FROM_KEY = 'block-not-derived-from-key',
  INVALID_MERKLE_PATH = 'invalid-merkle-path',
}

/** PoStake: who — the block's commit (quorum certificate). */
export enum StakeFailure {
  /** The header names a validator set other than the one deciding its height. */
  VALIDATOR_SET_MISMATCH = 'validator-set-mismatch',
  MALFORMED_COMMIT = 'malformed-commit',
  WRONG_HEIGHT = 'wrong-height',
  /** The commit certifies another block hash. */
  WRONG_BLOCK = 'wrong-block',
  /** A precommit in the commit is for another block or round than the commit's. */
  PRECOMMIT_FOR_ANOTHER_BLOCK = 'precommit-for-another-block',
  SIGNERS_OUT_OF_ORDER = 'signers-out-of-order',
  UNKNOWN_VALIDATOR = 'unknown-validator',
  INVALID_SIGNATURE = 'invalid-signature',
  MISSING_FALCON_SIGNATURE = 'missing-falcon-signature',
  INVALID_FALCON_SIGNATURE = 'invalid-falcon-signature',
  INSUFFICIENT_VOTING_POWER = 'insufficient-voting-power',
}

/** PoWork: what — the client stamps of the transactions and the state transition. */
export enum WorkFailure {
  UNDECODABLE_PROOF = 'undecodable-proof',
  TRANSACTIONS_ROOT_MISMATCH = 'transactions-root-mismatch',
  /** The proof lists another number of stamps than the block has transactions. */
  STAMP_COUNT_MISMATCH = 'stamp-count-mismatch',
  /** A transaction has no valid envelope, hence no stamp. */
  TRANSACTION_WITHOUT_STAMP = 'transaction-without-stamp',
  /** A stamp of the proof is not the stamp of the transaction at its position. */
  STAMP_MISMATCH = 'stamp-mismatch',
  INSUFFICIENT_STAMP_WORK = 'insufficient-stamp-work',
  REEXECUTION_FAILED = 'reexecution-failed',
  STATE_ROOT_MISMATCH = 'state-root-mismatch',
}

/** PoTime: when — BFT time of the last commit and the sequential hash chain. */
export enum TimeFailure {
  UNDECODABLE_PROOF = 'undecodable-proof',
  /** The block's last commit is not a valid commit of the parent, or not the one it hashes. */
  INVALID_LAST_COMMIT = 'invalid-last-commit',
  BFT_TIME_NOT_WEIGHTED_MEDIAN = 'bft-time-not-weighted-median',
  /** Without a proposer key there is no chain position to seed the chain from. */
  PROPOSER_NOT_A_VALIDATOR = 'proposer-not-a-validator',
  WRONG_CHAIN_SEED = 'wrong-chain-seed',
  WRONG_CHECKPOINT_COUNT = 'wrong-checkpoint-count',
  CHECKPOINT_MISMATCH = 'checkpoint-mismatch',
}

export interface ReasonByPart {
  space: SpaceFailure;
  stake: StakeFailure;
  work: WorkFailure;
  time: TimeFailure;
}

export interface PartFailure<P extends ProofPart> {
  readonly ok: false;
  readonly part: P;
  readonly reason: ReasonByPart[P];
  readonly message: string;
  /** Machine-readable specifics: the failing index, the expected and actual values, ... */
  readonly detail: Readonly<Record<string, unknown>>;
}

export type ProofFailure =
  PartFailure<'space'> | PartFailure<'stake'> | PartFailure<'work'> | PartFailure<'time'>;

export interface Valid {
  readonly ok: true;
}

export const VALID: Valid = Object.freeze({ ok: true });

export type PartVerdict<P extends ProofPart> = Valid | PartFailure<P>;

export function failure<P extends ProofPart>(
  part: P,
  reason: ReasonByPart[P],
  message: string,
  detail: Record<string, unknown> = {},
): PartFailure<P> {
  return { ok: false, part, reason, message, detail };
}
