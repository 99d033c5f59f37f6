import { z } from 'zod';
import { encodeCanonical } from '../../codec/cbor.js';
import { bytes, parseInput, SchemaError } from '../../codec/schema.js';
import { toHex } from '../../crypto/bytes.js';
import { FALCON1024_PUBLIC_KEY_BYTES } from '../../crypto/falcon.js';
import { taggedHash } from '../../crypto/hash.js';
import { ProofError, ProofErrorCode } from './errors.js';

/**
 * The validator set as the proof sees it: who may sign, with what weight, and which storage
 * commitment each validator registered at genesis. Order matters: it is the order in which a
 * quorum certificate lists its signers, and it is hashed into `validatorSetHash`.
 */
export interface ProofValidator {
  /** Raw Ed25519 public key (32 bytes); signs precommits and the proposer's address. */
  readonly publicKey: Uint8Array;
  /** Voting power (stake), a positive integer. */
  readonly votingPower: number;
  /** Root of the validator's registered storage commitment (PoSpace). */
  readonly storageRoot: Uint8Array;
  /** FALCON-1024 Round-3 public key for post-quantum precommit attestations. */
  readonly falconPublicKey?: Uint8Array;
}

export type ValidatorSet = readonly ProofValidator[];

/**
 * Bound on the total voting power, so that `3 · signed` and `2 · total` stay exact in doubles
 * (Tendermint bounds it too: MaxTotalVotingPower = 2^60 / 8 for int64 arithmetic).
 */
export const MAX_TOTAL_VOTING_POWER = 2 ** 50;
export const MAX_VALIDATORS = 10_000;

const validatorSchema = z.strictObject({
  publicKey: bytes({ length: 32 }),
  votingPower: z.int().min(1).max(MAX_TOTAL_VOTING_POWER),
  storageRoot: bytes({ length: 32 }),
  falconPublicKey: bytes({ length: FALCON1024_PUBLIC_KEY_BYTES }).optional(),
});

const validatorSetSchema = z
  .array(validatorSchema)
  .min(1)
  .max(MAX_VALIDATORS)
  .refine((set) => new Set(set.map((v) => toHex(v.publicKey))).size === set.length, {
    message: 'duplicate validator public key',
  })
  .refine((set) => set.reduce((sum, v) => sum + v.votingPower, 0) <= MAX_TOTAL_VOTING_POWER, {
    message: `total voting power exceeds ${MAX_TOTAL_VOTING_POWER}`,
  });

/** Throws `PROOF_INVALID_INPUT` unless `set` is a well-formed, duplicate-free validator set. */
export function assertValidatorSet(set: unknown): asserts set is ValidatorSet {
  try {
    parseInput(validatorSetSchema, set, 'validators');
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error;
    throw new ProofError(ProofErrorCode.INVALID_INPUT, error.message, { issues: error.issues });
  }
}

/** Canonical-CBOR hash of the set, in order; absent FALCON keys are omitted, not null. */
export function hashValidatorSet(set: ValidatorSet): Uint8Array {
  const entries = set.map((validator) => ({
    publicKey: validator.publicKey,
    votingPower: validator.votingPower,
    storageRoot: validator.storageRoot,
    ...(validator.falconPublicKey === undefined
      ? {}
      : { falconPublicKey: validator.falconPublicKey }),
  }));
  return taggedHash('hypermesh/validator-set', encodeCanonical({ v: 1, validators: entries }));
}

export function totalVotingPower(set: ValidatorSet): number {
  return set.reduce((sum, validator) => sum + validator.votingPower, 0);
}

/**
 * Strictly more than two thirds (Tendermint spec, "Consensus": +2/3 of the voting power).
 * Exact in doubles because the total is at most 2^50.
 */
export function isQuorum(signedPower: number, totalPower: number): boolean {
  return signedPower * 3 > totalPower * 2;
}

/** Position of each validator, by hex public key. */
export function validatorPositions(set: ValidatorSet): Map<string, number> {
  return new Map(set.map((validator, index) => [toHex(validator.publicKey), index]));
}
