/**
 * Verification results. Each of the four parts has its own verifier that returns either
 * `{ ok: true }` or a failure naming the part and a precise reason, so callers (the consensus
 * engine, `hypermesh block verify`, tests) switch on `reason` instead of parsing messages.
 */
export type ProofPart = 'space' | 'stake' | 'work' | 'time';

/** PoSpace: where — the proposer's storage commitment and certified address. */
export enum SpaceFailure {
  PROPOSER_NOT_A_VALIDATOR = 'proposer-not-a-validator',
  UNREGISTERED_COMMITMENT = 'unregistered-commitment',
  INVALID_ADDRESS_SIGNATURE = 'invalid-address-signature',
  WRONG_CHALLENGE_COUNT = 'wrong-challenge-count',
  WRONG_CHALLENGE_INDEX = 'wrong-challenge-index',
  MALFORMED_BLOCK = 'malformed-block',
  BLOCK_NOT_DERIVED_FROM_KEY = 'block-not-derived-from-key',
  INVALID_MERKLE_PATH = 'invalid-merkle-path',
}

/** PoStake: who — the quorum certificate. */
export enum StakeFailure {
  VALIDATOR_SET_MISMATCH = 'validator-set-mismatch',
  WRONG_HEIGHT = 'wrong-height',
  WRONG_BLOCK = 'wrong-block',
  UNKNOWN_VALIDATOR = 'unknown-validator',
  DUPLICATE_SIGNER = 'duplicate-signer',
  SIGNERS_OUT_OF_ORDER = 'signers-out-of-order',
  INVALID_SIGNATURE = 'invalid-signature',
  MISSING_FALCON_ATTESTATION = 'missing-falcon-attestation',
  INVALID_FALCON_ATTESTATION = 'invalid-falcon-attestation',
  INSUFFICIENT_VOTING_POWER = 'insufficient-voting-power',
  /** The header the quorum signs (or will sign) does not commit to the proposer's proof parts. */
  PROOF_NOT_ATTESTED = 'proof-not-attested',
}

/** PoWork: what — the state transition and the client stamps. */
export enum WorkFailure {
  TRANSACTIONS_ROOT_MISMATCH = 'transactions-root-mismatch',
  INSUFFICIENT_STAMP_WORK = 'insufficient-stamp-work',
  REEXECUTION_FAILED = 'reexecution-failed',
  STATE_ROOT_MISMATCH = 'state-root-mismatch',
}

/** PoTime: when — BFT time and the sequential hash chain. */
export enum TimeFailure {
  BFT_TIME_NOT_WEIGHTED_MEDIAN = 'bft-time-not-weighted-median',
  BFT_TIME_NOT_AFTER_PARENT = 'bft-time-not-after-parent',
  WRONG_CHAIN_SEED = 'wrong-chain-seed',
  WRONG_CHECKPOINT_COUNT = 'wrong-checkpoint-count',
  CHECKPOINT_MISMATCH = 'checkpoint-mismatch',
}

interface ReasonByPart {
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

export type ConsensusProofVerdict = Valid | ProofFailure;

export function failure<P extends ProofPart>(
  part: P,
  reason: ReasonByPart[P],
  message: string,
  detail: Record<string, unknown> = {},
): PartFailure<P> {
  return { ok: false, part, reason, message, detail };
}
