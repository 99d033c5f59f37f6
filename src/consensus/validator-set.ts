import type { KeyObject } from 'node:crypto';
import { encodeCanonical } from '../codec/cbor.js';
import { toHex } from '../crypto/bytes.js';
import { ED25519_PUBLIC_KEY_BYTES, ed25519PublicKeyFromRaw } from '../crypto/ed25519.js';
import { FALCON1024_PUBLIC_KEY_BYTES } from '../crypto/falcon.js';
import { sha256 } from '../crypto/hash.js';
import { ConsensusError, ConsensusErrorCode } from './errors.js';
import type { ValidatorAddress } from './types.js';

/**
 * The validators of one height and their voting power. Quorums are fractions of voting power,
 * not of validators: the paper's "2f + 1" is "more than 2/3 of the total power" and "f + 1" is
 * "more than 1/3" (Buchman et al. §2, weighted as in Tendermint).
 *
 * Total power is capped at 2^50 so that `3 * power` stays an exact JavaScript integer.
 */
export const MAX_TOTAL_VOTING_POWER = 2 ** 50;

/** Bytes of a validator address (Tendermint's truncated SHA-256 of the public key). */
export const VALIDATOR_ADDRESS_BYTES = 20;

const VALIDATOR_SET_DOMAIN = 'hypermesh/consensus/validator-set/v1';

export interface Validator {
  readonly address: ValidatorAddress;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  readonly power: number;
  /** FALCON-1024 public key for the post-quantum precommit signature. */
  readonly pqPublicKey?: Uint8Array;
  /**
   * Root of the validator's PoSpace storage plot (32 bytes), fixed when it joins; a validator
   * without one cannot make a valid consensus proof as proposer (docs/consensus-proof.md).
   */
  readonly storageRoot?: Uint8Array;
}

export interface ValidatorInit {
  readonly publicKey: Uint8Array;
  readonly power: number;
  readonly pqPublicKey?: Uint8Array;
  readonly storageRoot?: Uint8Array;
}

/** Bytes of a PoSpace storage root (a SHA-256 Merkle tree hash). */
export const STORAGE_ROOT_BYTES = 32;

export interface ValidatorSet {
  /** Sorted by address, so every node derives the same order, hash and proposer tie-break. */
  readonly validators: readonly Validator[];
  readonly totalPower: number;
  /** SHA-256 of the canonical encoding of the validators (addresses, keys, powers, roots). */
  readonly hash: Uint8Array;
  /** Position of each address in `validators`. */
  readonly indexOf: ReadonlyMap<ValidatorAddress, number>;
  /** Imported Ed25519 keys, aligned with `validators` (import once, verify many times). */
  readonly verificationKeys: readonly KeyObject[];
}

/** The address of an Ed25519 public key: hex of the first 20 bytes of its SHA-256. */
export function validatorAddress(publicKey: Uint8Array): ValidatorAddress {
  return toHex(sha256(publicKey).subarray(0, VALIDATOR_ADDRESS_BYTES));
}

function invalid(message: string, detail: Record<string, unknown> = {}): ConsensusError {
  return new ConsensusError(ConsensusErrorCode.INVALID_VALIDATOR_SET, message, detail);
}

/**
 * Builds a validator set. Throws `INVALID_VALIDATOR_SET` for an empty list, a key of the wrong
 * length, a power that is not a positive safe integer, a total above `MAX_TOTAL_VOTING_POWER`,
 * or two entries with one key.
 */
export function createValidatorSet(entries: readonly ValidatorInit[]): ValidatorSet {
  if (!Array.isArray(entries) || entries.length === 0) {
    throw invalid('a validator set needs at least one validator');
  }
  const validators: Validator[] = [];
  let totalPower = 0;
  for (const [position, entry] of entries.entries()) {
    const { publicKey, power, pqPublicKey, storageRoot } = entry;
    if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_KEY_BYTES) {
      throw invalid(`validator ${position}: Ed25519 public key must be 32 bytes`, { position });
    }
    if (!Number.isSafeInteger(power) || power < 1) {
      throw invalid(`validator ${position}: voting power must be a positive integer`, {
        position,
        power,
      });
    }
    if (
      pqPublicKey !== undefined &&
      (!(pqPublicKey instanceof Uint8Array) || pqPublicKey.length !== FALCON1024_PUBLIC_KEY_BYTES)
    ) {
      throw invalid(`validator ${position}: FALCON-1024 public key must be 1793 bytes`, {
        position,
      });
    }
    if (
      storageRoot !== undefined &&
      (!(storageRoot instanceof Uint8Array) || storageRoot.length !== STORAGE_ROOT_BYTES)
    ) {
      throw invalid(`validator ${position}: storage root must be ${STORAGE_ROOT_BYTES} bytes`, {
        position,
      });
    }
    totalPower += power;
    if (totalPower > MAX_TOTAL_VOTING_POWER) {
      throw invalid(`total voting power exceeds ${MAX_TOTAL_VOTING_POWER}`, { position });
    }
    const validator: Validator = {
      address: validatorAddress(publicKey),
      publicKey: publicKey.slice(),
      power,
      ...(pqPublicKey === undefined ? {} : { pqPublicKey: pqPublicKey.slice() }),
      ...(storageRoot === undefined ? {} : { storageRoot: storageRoot.slice() }),
    };
    validators.push(validator);
  }
  validators.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  const indexOf = new Map<ValidatorAddress, number>();
  for (const [index, validator] of validators.entries()) {
    if (indexOf.has(validator.address)) {
      throw invalid('two validators share one public key', { address: validator.address });
    }
    indexOf.set(validator.address, index);
  }
  const verificationKeys = validators.map((validator) =>
    ed25519PublicKeyFromRaw(validator.publicKey),
  );
  return { validators, totalPower, hash: validatorSetHash(validators), indexOf, verificationKeys };
}

function validatorSetHash(validators: readonly Validator[]): Uint8Array {
  return sha256(
    encodeCanonical({
      domain: VALIDATOR_SET_DOMAIN,
      validators: validators.map((validator) => ({
        address: validator.address,
        publicKey: validator.publicKey,
        power: validator.power,
        ...(validator.pqPublicKey === undefined ? {} : { pqPublicKey: validator.pqPublicKey }),
        ...(validator.storageRoot === undefined ? {} : { storageRoot: validator.storageRoot }),
      })),
    }),
  );
}

export function findValidator(set: ValidatorSet, address: ValidatorAddress): Validator | undefined {
  const index = set.indexOf.get(address);
  return index === undefined ? undefined : set.validators[index];
}

/** Voting power of `address`, 0 when it is not a validator of this set. */
export function votingPower(set: ValidatorSet, address: ValidatorAddress): number {
  return findValidator(set, address)?.power ?? 0;
}

/** "2f + 1": strictly more than 2/3 of `total`. */
export function isQuorum(power: number, total: number): boolean {
  return 3 * power > 2 * total;
}

/** "f + 1": strictly more than 1/3 of `total` — at least one correct validator among them. */
export function exceedsOneThird(power: number, total: number): boolean {
  return 3 * power > total;
}

/** The largest Byzantine power the set tolerates: the most power with 3 * power < total. */
export function maxFaultyPower(total: number): number {
  return Math.ceil(total / 3) - 1;
}
