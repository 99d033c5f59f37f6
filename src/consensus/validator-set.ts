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

/**
 * Most validators in one set. A commit carries one precommit per signer and the wire format
 * holds at most `MAX_PRECOMMITS` (10,000, wire.ts) of them, so a larger set could not be
 * committed. Genesis sets are bounded by the genesis schema; updates by this.
 */
export const MAX_VALIDATORS = 10_000;

/** Most updates one block may return (every validator removed and as many added). */
export const MAX_VALIDATOR_UPDATES = 2 * MAX_VALIDATORS;

/**
 * A change of one validator, returned by a block's execution (the application's
 * `ValidatorUpdate`, app.ts): power 0 removes the validator; a positive power adds it or sets
 * its power. A new validator must bring its FALCON-1024 key and its PoSpace storage root; an
 * existing one keeps its own (an update may repeat them, not change them).
 */
export interface ValidatorSetUpdate {
  readonly publicKey: Uint8Array;
  readonly power: number;
  readonly pqPublicKey?: Uint8Array;
  readonly storageRoot?: Uint8Array;
}

/** Why a block's validator updates were refused: `detail.reason` of the error. */
export enum ValidatorUpdateRejection {
  /** Not a list, or an entry with a key, power or field of the wrong type or size. */
  MALFORMED = 'malformed-update',
  TOO_MANY_UPDATES = 'too-many-updates',
  /** Two updates of one block name one key (their order would decide the outcome). */
  DUPLICATE_KEY = 'duplicate-key',
  /** A new validator without its FALCON-1024 public key. */
  MISSING_PQ_KEY = 'missing-pq-key',
  /** A new validator without its PoSpace storage root. */
  MISSING_STORAGE_ROOT = 'missing-storage-root',
  /** An update of an existing validator with another FALCON key or storage root. */
  FIXED_FIELD_CHANGED = 'fixed-field-changed',
  /** Power 0 for a key that is not a validator. */
  REMOVES_UNKNOWN = 'removes-unknown-validator',
  /** The total power (or one update's power) would exceed `MAX_TOTAL_VOTING_POWER`. */
  TOTAL_POWER_TOO_HIGH = 'total-power-too-high',
  /** Every validator would be removed. */
  EMPTY_SET = 'empty-set',
  /** More than `MAX_VALIDATORS` validators would remain. */
  TOO_MANY_VALIDATORS = 'too-many-validators',
}

/** A validator set after updates, with what the proposer priorities of the change need. */
export interface ValidatorSetChange {
  readonly validators: ValidatorSet;
  /**
   * The total power after the updates and before the removals (CometBFT `verifyUpdates`):
   * a new validator's priority starts at −1.125 times this (proposer.ts).
   */
  readonly totalBeforeRemovals: number;
}

function refused(
  reason: ValidatorUpdateRejection,
  message: string,
  detail: Record<string, unknown> = {},
): ConsensusError {
  return new ConsensusError(ConsensusErrorCode.INVALID_VALIDATOR_SET, message, {
    reason,
    ...detail,
  });
}

function isBytesOf(value: unknown, length: number): value is Uint8Array {
  return value instanceof Uint8Array && value.length === length;
}

function sameOptionalBytes(given: Uint8Array | undefined, held: Uint8Array | undefined): boolean {
  if (given === undefined) return true;
  if (held === undefined || given.length !== held.length) return false;
  for (let i = 0; i < given.length; i++) if (given[i] !== held[i]) return false;
  return true;
}

/**
 * Applies one block's validator updates to `set` with CometBFT's rules
 * (`ValidatorSet.UpdateWithChangeSet`): every update is checked first and the whole list is
 * refused — a `ConsensusError(INVALID_VALIDATOR_SET)` whose `detail.reason` is a
 * `ValidatorUpdateRejection` and `detail.position` the offending entry — if any entry is
 * malformed, repeats a key, removes a non-validator, adds a validator without its FALCON key or
 * storage root, changes an existing validator's FALCON key or storage root, or if the result
 * would be empty, hold more than `MAX_VALIDATORS` validators or more than
 * `MAX_TOTAL_VOTING_POWER`. Pure and deterministic; `set` is not changed.
 */
export function applyValidatorUpdates(
  set: ValidatorSet,
  updates: readonly ValidatorSetUpdate[],
): ValidatorSetChange {
  if (!Array.isArray(updates)) {
    throw refused(ValidatorUpdateRejection.MALFORMED, 'validator updates are not a list');
  }
  if (updates.length > MAX_VALIDATOR_UPDATES) {
    throw refused(
      ValidatorUpdateRejection.TOO_MANY_UPDATES,
      `${updates.length} validator updates; at most ${MAX_VALIDATOR_UPDATES} per block`,
      { count: updates.length },
    );
  }
  const changed = new Map<ValidatorAddress, ValidatorInit | null>();
  let total = BigInt(set.totalPower);
  let removed = 0n;
  for (const [position, update] of updates.entries()) {
    const malformed = (message: string) =>
      refused(ValidatorUpdateRejection.MALFORMED, `validator update ${position}: ${message}`, {
        position,
      });
    if (typeof update !== 'object' || update === null) throw malformed('not a record');
    const { publicKey, power, pqPublicKey, storageRoot } = update;
    if (!isBytesOf(publicKey, ED25519_PUBLIC_KEY_BYTES)) {
      throw malformed('Ed25519 public key must be 32 bytes');
    }
    if (!Number.isSafeInteger(power) || power < 0) {
      throw malformed('voting power must be a non-negative integer');
    }
    if (pqPublicKey !== undefined && !isBytesOf(pqPublicKey, FALCON1024_PUBLIC_KEY_BYTES)) {
      throw malformed(`FALCON-1024 public key must be ${FALCON1024_PUBLIC_KEY_BYTES} bytes`);
    }
    if (storageRoot !== undefined && !isBytesOf(storageRoot, STORAGE_ROOT_BYTES)) {
      throw malformed(`storage root must be ${STORAGE_ROOT_BYTES} bytes`);
    }
    if (power > MAX_TOTAL_VOTING_POWER) {
      throw refused(
        ValidatorUpdateRejection.TOTAL_POWER_TOO_HIGH,
        `validator update ${position}: power ${power} exceeds ${MAX_TOTAL_VOTING_POWER}`,
        { position, power },
      );
    }
    const address = validatorAddress(publicKey);
    if (changed.has(address)) {
      throw refused(
        ValidatorUpdateRejection.DUPLICATE_KEY,
        `validator update ${position} repeats the key of an earlier update`,
        { position, address },
      );
    }
    const existing = findValidator(set, address);
    if (existing === undefined) {
      if (power === 0) {
        throw refused(
          ValidatorUpdateRejection.REMOVES_UNKNOWN,
          `validator update ${position} removes ${address}, which is not a validator`,
          { position, address },
        );
      }
      if (pqPublicKey === undefined) {
        throw refused(
          ValidatorUpdateRejection.MISSING_PQ_KEY,
          `validator update ${position} adds ${address} without its FALCON-1024 public key`,
          { position, address },
        );
      }
      if (storageRoot === undefined) {
        throw refused(
          ValidatorUpdateRejection.MISSING_STORAGE_ROOT,
          `validator update ${position} adds ${address} without its storage root`,
          { position, address },
        );
      }
      changed.set(address, { publicKey, power, pqPublicKey, storageRoot });
      total += BigInt(power);
      continue;
    }
    if (
      !sameOptionalBytes(pqPublicKey, existing.pqPublicKey) ||
      !sameOptionalBytes(storageRoot, existing.storageRoot)
    ) {
      throw refused(
        ValidatorUpdateRejection.FIXED_FIELD_CHANGED,
        `validator update ${position} changes the FALCON key or storage root of ${address}`,
        { position, address },
      );
    }
    if (power === 0) {
      changed.set(address, null);
      removed += BigInt(existing.power);
    } else {
      changed.set(address, { ...existing, power });
      total += BigInt(power - existing.power);
    }
  }
  // The total after updates and before removals; removals then lower it (CometBFT checks the
  // running total with updates sorted by their change, whose maximum is this final value).
  if (total - removed > BigInt(MAX_TOTAL_VOTING_POWER)) {
    throw refused(
      ValidatorUpdateRejection.TOTAL_POWER_TOO_HIGH,
      `the validator updates would raise the total voting power above ${MAX_TOTAL_VOTING_POWER}`,
      { total: (total - removed).toString() },
    );
  }
  const entries: ValidatorInit[] = [];
  for (const validator of set.validators) {
    const update = changed.get(validator.address);
    if (update === undefined) entries.push(validator);
    else if (update !== null) entries.push(update);
  }
  for (const [address, update] of changed) {
    if (update !== null && !set.indexOf.has(address)) entries.push(update);
  }
  if (entries.length === 0) {
    throw refused(
      ValidatorUpdateRejection.EMPTY_SET,
      'the validator updates remove every validator',
    );
  }
  if (entries.length > MAX_VALIDATORS) {
    throw refused(
      ValidatorUpdateRejection.TOO_MANY_VALIDATORS,
      `the validator updates leave ${entries.length} validators; at most ${MAX_VALIDATORS}`,
      { count: entries.length },
    );
  }
  return {
    validators: createValidatorSet(
      entries.map(({ publicKey, power, pqPublicKey, storageRoot }) => ({
        publicKey,
        power,
        ...(pqPublicKey === undefined ? {} : { pqPublicKey }),
        ...(storageRoot === undefined ? {} : { storageRoot }),
      })),
    ),
    totalBeforeRemovals: Number(total),
  };
}
