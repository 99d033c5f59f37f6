import { decodeCanonical, encodeCanonical } from '../codec/cbor.js';
import type { ModuleState, ModuleStateReader } from '../consensus/application/module.js';
import { STORAGE_ROOT_BYTES, VALIDATOR_ADDRESS_BYTES } from '../consensus/validator-set.js';
import { EVIDENCE_MAX_AGE } from '../consensus/height-context.js';
import { concatBytes, fromHex, toHex } from '../crypto/bytes.js';
import { FALCON1024_PUBLIC_KEY_BYTES } from '../crypto/falcon.js';
import { sha256 } from '../crypto/hash.js';
import { ADDRESS_BYTES, ED25519_PUBLIC_KEY_BYTES } from './address.js';
import { MAX_AMOUNT_BYTES, bigintToBytes, bytesToBigint } from './amount.js';
import { CaesarStateError, CaesarStateErrorCode } from './errors.js';
import { readAmount, writeAmount } from './state.js';

/**
 * Caesar's staking state, under `caesar/` (docs/caesar.md, "Staking state"). The module state
 * has no range scans, so every collection is reachable from a known key:
 *
 *   stk/params                 staking parameters (staking-params.ts); absent: staking is off
 *   stk/bonded                 total bonded stake (sum of every validator's tokens)
 *   stk/unbonding              total stake waiting in unbonding entries
 *   stk/set                    CBOR array of the addresses this module last handed to
 *                              consensus with a power above zero (its view of the set), sorted
 *   stk/epochs                 the epoch regimes slashing needs (below): written when
 *                              governance changes `epochBlocks` and when an epoch's selection
 *                              is empty; absent until then
 *   vals                       CBOR array of every validator's 20-byte address, sorted
 *   val/<validator 20>         the validator record (below; `changed`, the height of its last
 *                              commission change, only once one happened; `slashed`, the height
 *                              of its last equivocation slash, only once one happened;
 *                              `vacant`, the height from which it has had no tokens, no shares
 *                              and no power, only while that holds; `backing`, the stake behind
 *                              its recent powers, only once its power changed)
 *   del/<validator 20><delegator 32>   the delegator's shares of that validator
 *   dlg/<delegator 32>         CBOR array of the validators the delegator has shares of, sorted
 *                              (the delegator index: exactly the `del/` keys above zero);
 *                              absent: none
 *   ubd/<delegator 32>         CBOR array of the delegator's unbonding entries
 *   unq/<height u64 BE>        CBOR array of the delegators whose entries complete at height
 *   miss/<validator 20>        bitmap of missed commits over the signed window; absent: none
 *
 * `<validator 20>` is the consensus address: the first 20 bytes of SHA-256 of the validator's
 * Ed25519 key (consensus/validator-set.ts), whose hex form is what blocks, commits and
 * evidence name. Amounts and shares are stored like balances (amount.ts), zero as no key.
 */

const encoder = new TextEncoder();
export const STAKING_PARAMS_KEY = encoder.encode('stk/params');
export const BONDED_KEY = encoder.encode('stk/bonded');
export const UNBONDING_TOTAL_KEY = encoder.encode('stk/unbonding');
export const VALIDATORS_KEY = encoder.encode('vals');
export const ACTIVE_SET_KEY = encoder.encode('stk/set');
export const EPOCH_HISTORY_KEY = encoder.encode('stk/epochs');
const VALIDATOR_PREFIX = encoder.encode('val/');
const DELEGATION_PREFIX = encoder.encode('del/');
const DELEGATOR_INDEX_PREFIX = encoder.encode('dlg/');
const UNBONDING_PREFIX = encoder.encode('ubd/');
const QUEUE_PREFIX = encoder.encode('unq/');
const MISSED_PREFIX = encoder.encode('miss/');

/** Most unbonding entries one delegator may have waiting (Cosmos keeps 7). */
export const MAX_UNBONDING_ENTRIES = 32;
/** Most validators that can exist (in the set or not); `vals` is one value. */
export const MAX_VALIDATOR_CANDIDATES = 10_000;
/**
 * Most validators one account may have shares of at once (its delegator index, self-bond
 * included). Weighing an account's vote, and proving its delegations complete, reads its index
 * and each delegation in it, so this bounds the work per voter however many validators exist.
 */
export const MAX_DELEGATIONS_PER_ACCOUNT = 32;

/** Why a validator is jailed. */
export enum JailReason {
  NONE = 0,
  /** Missed more than `maxMissed` of the last `signedWindow` commits. */
  DOWNTIME = 1,
  /** Signed two different votes at one height, round and type (evidence in a block). */
  EQUIVOCATION = 2,
}

export interface ValidatorRecord {
  /** Raw Ed25519 consensus key; also the operator's account key (address = SHA-256 of it). */
  readonly publicKey: Uint8Array;
  readonly pqPublicKey: Uint8Array;
  readonly storageRoot: Uint8Array;
  /** Share of the validator's rewards paid to its operator first, in basis points. */
  readonly commissionBps: number;
  /** Bonded stake, base units: every delegation's worth, self-bond included. */
  readonly tokens: bigint;
  /** Shares issued to its delegators; a delegation is worth shares × tokens / this. */
  readonly shares: bigint;
  /** The power this module last handed to consensus for it; 0 = not in that set. */
  readonly power: number;
  readonly jailed: JailReason;
  /** First height at which `unjail` is accepted (meaningful while jailed). */
  readonly jailedUntil: number;
  /**
   * Height of the block that last applied an `edit-validator`; absent when the commission never
   * changed (genesis and `create-validator` records, and every record from before the op).
   */
  readonly commissionChangedAt?: number;
  /**
   * Height of the block whose end last slashed it for equivocation; absent when it never was
   * (every record from before the rule). Evidence of an offence at or before `slashedAt + 1`,
   * the last height it still voted with the power it was slashed for, is not slashed again.
   */
  readonly slashedAt?: number;
  /**
   * Height from which it has had no tokens, no shares (so no delegations) and no power in this
   * module's set; absent while it has any (`withVacancy`). From `vacantSince +
   * vacantRecordLifetime(unbondingBlocks)` on, an epoch's end removes it (end-block.ts).
   */
  readonly vacantSince?: number;
  /**
   * The stake behind the powers it voted with lately, oldest first (`backingAt`): written at
   * each change of that stake (end-block.ts), kept while evidence can still name a height it
   * was in force; absent while its power never changed (genesis and older records), and then
   * its power × `powerUnit`. Slashing burns a fraction of the stake in force at the offence.
   */
  readonly backing?: readonly PowerBacking[];
}

/**
 * The stake behind a power: from height `from` on (the first height the power votes, two
 * heights after the block that handed it over) the validator voted with `stake / powerUnit`,
 * and `stake` is that power × the `powerUnit` it was computed with (0: out of the set).
 */
export interface PowerBacking {
  readonly from: number;
  readonly stake: bigint;
}

/**
 * The stake behind the power `record` voted with at `height`: the last `backing` entry from
 * at or before it; without one, its power × `powerUnit` (the power never changed since the
 * genesis, or since before the oldest entry, which holds the one before it: `from` 0).
 */
export function backingAt(record: ValidatorRecord, height: number, powerUnit: bigint): bigint {
  let stake: bigint | undefined;
  for (const entry of record.backing ?? []) if (entry.from <= height) stake = entry.stake;
  return stake ?? BigInt(record.power) * powerUnit;
}

/**
 * `record` whose power, from height `from` on, is backed by `stake`: the entry is appended
 * (replacing any from `from` on), and entries that no evidence in a block after `height` can
 * reach are dropped: such evidence names heights of at least height + 1 − EVIDENCE_MAX_AGE, so
 * the last entry in force then and those after it are kept. The first entry of a record records
 * the stake it had before (`from` 0, its power × `powerUnit`), so a height before the change
 * still finds it. At most one entry per block: fewer than EVIDENCE_MAX_AGE + 3 entries.
 */
export function withBacking(
  record: ValidatorRecord,
  from: number,
  stake: bigint,
  powerUnit: bigint,
  height: number,
): ValidatorRecord {
  const known = record.backing ?? [{ from: 0, stake: BigInt(record.power) * powerUnit }];
  const earlier = known.filter((entry) => entry.from < from);
  const oldest = height + 1 - EVIDENCE_MAX_AGE;
  let keep = 0;
  for (const [index, entry] of earlier.entries()) if (entry.from <= oldest) keep = index;
  return { ...record, backing: [...earlier.slice(keep), { from, stake }] };
}

/**
 * Blocks a vacant validator record is kept before an epoch's end may remove it: until every
 * unbonding entry from it has been paid out (each completes at most `unbondingBlocks` after it
 * was created, and the last was created at or before `vacantSince`), and until evidence of an
 * offence from when it still had power can no longer be included (its last vote with power is at
 * most at `vacantSince + 1`, since updates take effect two heights after the block that returns
 * them, and evidence is at most `EVIDENCE_MAX_AGE` heights old). Slashing finds a validator by
 * its record, so a removed record could no longer be slashed: the wait makes sure nothing could.
 */
export function vacantRecordLifetime(unbondingBlocks: number): number {
  return Math.max(unbondingBlocks, EVIDENCE_MAX_AGE + 2);
}

/**
 * The record with `vacantSince` kept up to date: set to `height` when it becomes vacant (no
 * tokens, no shares, power 0), kept while it stays vacant, dropped when it is not.
 */
export function withVacancy(record: ValidatorRecord, height: number): ValidatorRecord {
  const vacant = record.tokens === 0n && record.shares === 0n && record.power === 0;
  if (vacant) return record.vacantSince === undefined ? { ...record, vacantSince: height } : record;
  if (record.vacantSince === undefined) return record;
  const { vacantSince: _dropped, ...occupied } = record;
  return occupied;
}

export interface UnbondingEntry {
  readonly validator: Uint8Array;
  readonly amount: bigint;
  /** Height of the block that executed the unbond. */
  readonly creationHeight: number;
  /** Height at whose end the amount returns to the balance. */
  readonly completionHeight: number;
}

function corrupt(what: string, why: string): never {
  throw new CaesarStateError(CaesarStateErrorCode.CORRUPT_VALUE, `${what}: ${why}`);
}

/** The 20-byte consensus address of an Ed25519 key. */
export function consensusAddress(publicKey: Uint8Array): Uint8Array {
  return sha256(publicKey).subarray(0, VALIDATOR_ADDRESS_BYTES);
}

/** The bytes of a consensus address as blocks name it (40 lowercase hex digits), or undefined. */
export function parseConsensusAddress(address: string): Uint8Array | undefined {
  if (!/^[0-9a-f]{40}$/.test(address)) return undefined;
  return fromHex(address);
}

export const formatConsensusAddress = (address: Uint8Array): string => toHex(address);

export function validatorKey(validator: Uint8Array): Uint8Array {
  return concatBytes(VALIDATOR_PREFIX, validator);
}

export function delegationKey(validator: Uint8Array, delegator: Uint8Array): Uint8Array {
  return concatBytes(DELEGATION_PREFIX, validator, delegator);
}

export function delegatorIndexKey(delegator: Uint8Array): Uint8Array {
  return concatBytes(DELEGATOR_INDEX_PREFIX, delegator);
}

export function unbondingKey(delegator: Uint8Array): Uint8Array {
  return concatBytes(UNBONDING_PREFIX, delegator);
}

export function unbondingQueueKey(height: number): Uint8Array {
  const key = new Uint8Array(QUEUE_PREFIX.length + 8);
  key.set(QUEUE_PREFIX, 0);
  const view = new DataView(key.buffer);
  view.setUint32(QUEUE_PREFIX.length, Math.floor(height / 2 ** 32));
  view.setUint32(QUEUE_PREFIX.length + 4, height >>> 0);
  return key;
}

export function missedKey(validator: Uint8Array): Uint8Array {
  return concatBytes(MISSED_PREFIX, validator);
}

const amountBytes = (value: bigint): Uint8Array => bigintToBytes(value);

function readStoredBigint(value: unknown, what: string): bigint {
  if (!(value instanceof Uint8Array) || value.length > MAX_AMOUNT_BYTES || value[0] === 0) {
    corrupt(what, 'an amount is at most 16 big-endian bytes without a leading zero');
  }
  return bytesToBigint(value);
}

function isBytes(value: unknown, length: number): value is Uint8Array {
  return value instanceof Uint8Array && value.length === length;
}

function isHeight(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function decode(value: Uint8Array, what: string): unknown {
  try {
    return decodeCanonical(value);
  } catch (error) {
    return corrupt(what, error instanceof Error ? error.message : String(error));
  }
}

/**
 * The record as a canonical CBOR map of 9 fields, plus `changed` (the last commission change's
 * height), `slashed` (the last equivocation slash's height), `vacant` (`vacantSince`) and
 * `backing` (array of `[from, stake]`), each written only when it applies: records from before
 * `edit-validator`, the slash watermark, vacancy and backing keep their bytes.
 */
export function encodeValidatorRecord(record: ValidatorRecord): Uint8Array {
  return encodeCanonical({
    key: record.publicKey,
    pq: record.pqPublicKey,
    root: record.storageRoot,
    commission: record.commissionBps,
    tokens: amountBytes(record.tokens),
    shares: amountBytes(record.shares),
    power: record.power,
    jailed: record.jailed,
    until: record.jailedUntil,
    ...(record.commissionChangedAt === undefined ? {} : { changed: record.commissionChangedAt }),
    ...(record.slashedAt === undefined ? {} : { slashed: record.slashedAt }),
    ...(record.vacantSince === undefined ? {} : { vacant: record.vacantSince }),
    ...(record.backing === undefined
      ? {}
      : { backing: record.backing.map((entry) => [entry.from, amountBytes(entry.stake)]) }),
  });
}

function decodeBacking(value: unknown, what: string): PowerBacking[] {
  if (!Array.isArray(value) || value.length === 0) corrupt(what, 'backing: not a non-empty array');
  let previous = -1;
  return value.map((item: unknown): PowerBacking => {
    if (!Array.isArray(item) || item.length !== 2)
      corrupt(what, 'backing: an entry is not 2 fields');
    const [from, stake] = item as unknown[];
    if (!isHeight(from) || from <= previous) corrupt(what, 'backing: heights out of order');
    previous = from;
    return { from, stake: readStoredBigint(stake, what) };
  });
}

export function decodeValidatorRecord(value: Uint8Array): ValidatorRecord {
  const what = 'validator record';
  const map = decode(value, what) as Record<string, unknown> | null;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) corrupt(what, 'not a map');
  const { key, pq, root, commission, tokens, shares, power, jailed, until } = map;
  const { changed, slashed, vacant, backing } = map;
  const hasChanged = Object.hasOwn(map, 'changed');
  const hasSlashed = Object.hasOwn(map, 'slashed');
  const hasVacant = Object.hasOwn(map, 'vacant');
  const hasBacking = Object.hasOwn(map, 'backing');
  const optional = Number(hasChanged) + Number(hasSlashed) + Number(hasVacant) + Number(hasBacking);
  if (Object.keys(map).length !== 9 + optional) {
    corrupt(
      what,
      'expected 9 fields, plus "changed", "slashed", "vacant" and "backing" when present',
    );
  }
  if (hasChanged && !isHeight(changed)) corrupt(what, 'bad commission change height');
  if (hasSlashed && !isHeight(slashed)) corrupt(what, 'bad slash height');
  if (hasVacant && !isHeight(vacant)) corrupt(what, 'bad vacancy height');
  if (!isBytes(key, ED25519_PUBLIC_KEY_BYTES)) corrupt(what, 'bad key');
  if (!isBytes(pq, FALCON1024_PUBLIC_KEY_BYTES)) corrupt(what, 'bad FALCON key');
  if (!isBytes(root, STORAGE_ROOT_BYTES)) corrupt(what, 'bad storage root');
  if (!isHeight(commission) || commission > 10_000) corrupt(what, 'bad commission');
  if (!isHeight(power) || !isHeight(until)) corrupt(what, 'bad power or jail height');
  if (jailed !== 0 && jailed !== 1 && jailed !== 2) corrupt(what, 'bad jail reason');
  return {
    publicKey: key,
    pqPublicKey: pq,
    storageRoot: root,
    commissionBps: commission,
    tokens: readStoredBigint(tokens, what),
    shares: readStoredBigint(shares, what),
    power,
    jailed: jailed as JailReason,
    jailedUntil: until,
    ...(hasChanged ? { commissionChangedAt: changed as number } : {}),
    ...(hasSlashed ? { slashedAt: slashed as number } : {}),
    ...(hasVacant ? { vacantSince: vacant as number } : {}),
    ...(hasBacking ? { backing: decodeBacking(backing, what) } : {}),
  };
}

export function readValidator(
  state: ModuleStateReader,
  validator: Uint8Array,
): ValidatorRecord | undefined {
  const value = state.get(validatorKey(validator));
  return value === null ? undefined : decodeValidatorRecord(value);
}

export function writeValidator(state: ModuleState, record: ValidatorRecord): void {
  state.set(validatorKey(consensusAddress(record.publicKey)), encodeValidatorRecord(record));
}

/** Removes a validator's record and its missed-commit bitmap (not its place in `vals`). */
export function deleteValidator(state: ModuleState, validator: Uint8Array): void {
  state.delete(validatorKey(validator));
  state.delete(missedKey(validator));
}

/** Every validator's address, sorted (bytewise, which is also hex order). */
export function readValidatorList(
  state: ModuleStateReader,
  key: Uint8Array = VALIDATORS_KEY,
): Uint8Array[] {
  const value = state.get(key);
  if (value === null) return [];
  return decodeValidatorList(value);
}

export function decodeValidatorList(value: Uint8Array): Uint8Array[] {
  const list = decode(value, 'validator list');
  if (!Array.isArray(list) || !list.every((item) => isBytes(item, VALIDATOR_ADDRESS_BYTES))) {
    corrupt('validator list', 'expected an array of 20-byte addresses');
  }
  return list as Uint8Array[];
}

export function encodeValidatorList(list: readonly Uint8Array[]): Uint8Array {
  return encodeCanonical(list);
}

/** The validators `delegator` has shares of, sorted; empty when none. */
export function readDelegatorIndex(state: ModuleStateReader, delegator: Uint8Array): Uint8Array[] {
  const value = state.get(delegatorIndexKey(delegator));
  return value === null ? [] : decodeDelegatorIndex(value);
}

/** A delegator index: a non-empty, strictly ascending array of 20-byte validator addresses. */
export function decodeDelegatorIndex(value: Uint8Array): Uint8Array[] {
  const what = 'delegator index';
  const list = decode(value, what);
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    list.length > MAX_DELEGATIONS_PER_ACCOUNT ||
    !list.every((item) => isBytes(item, VALIDATOR_ADDRESS_BYTES))
  ) {
    corrupt(what, `expected 1 to ${MAX_DELEGATIONS_PER_ACCOUNT} 20-byte addresses`);
  }
  const validators = list as Uint8Array[];
  for (let i = 1; i < validators.length; i++) {
    if (compareAddresses(validators[i - 1]!, validators[i]!) >= 0) {
      corrupt(what, 'addresses out of order or repeated');
    }
  }
  return validators;
}

export function encodeDelegatorIndex(validators: readonly Uint8Array[]): Uint8Array {
  return encodeCanonical([...validators].sort(compareAddresses));
}

/**
 * Keeps `delegator`'s index equal to the validators it has shares of, after its shares of
 * `validator` became `shares`: adds the validator when it holds shares, removes it at zero.
 */
function updateDelegatorIndex(
  state: ModuleState,
  delegator: Uint8Array,
  validator: Uint8Array,
  shares: bigint,
): void {
  const before = readDelegatorIndex(state, delegator);
  const others = before.filter((item) => compareAddresses(item, validator) !== 0);
  const after = shares > 0n ? [...others, validator] : others;
  if (after.length === before.length && shares > 0n) return;
  if (after.length === 0) state.delete(delegatorIndexKey(delegator));
  else state.set(delegatorIndexKey(delegator), encodeDelegatorIndex(after));
}

export function encodeUnbondingEntries(entries: readonly UnbondingEntry[]): Uint8Array {
  return encodeCanonical(
    entries.map((entry) => [
      entry.validator,
      amountBytes(entry.amount),
      entry.creationHeight,
      entry.completionHeight,
    ]),
  );
}

export function decodeUnbondingEntries(value: Uint8Array): UnbondingEntry[] {
  const what = 'unbonding entries';
  const list = decode(value, what);
  if (!Array.isArray(list)) corrupt(what, 'not an array');
  return list.map((item: unknown): UnbondingEntry => {
    if (!Array.isArray(item) || item.length !== 4) corrupt(what, 'an entry is not 4 fields');
    const [validator, amount, creation, completion] = item as unknown[];
    if (!isBytes(validator, VALIDATOR_ADDRESS_BYTES)) corrupt(what, 'bad validator address');
    if (!isHeight(creation) || !isHeight(completion)) corrupt(what, 'bad heights');
    return {
      validator,
      amount: readStoredBigint(amount, what),
      creationHeight: creation,
      completionHeight: completion,
    };
  });
}

export function readUnbondingEntries(
  state: ModuleStateReader,
  delegator: Uint8Array,
): UnbondingEntry[] {
  const value = state.get(unbondingKey(delegator));
  return value === null ? [] : decodeUnbondingEntries(value);
}

export function writeUnbondingEntries(
  state: ModuleState,
  delegator: Uint8Array,
  entries: readonly UnbondingEntry[],
): void {
  if (entries.length === 0) state.delete(unbondingKey(delegator));
  else state.set(unbondingKey(delegator), encodeUnbondingEntries(entries));
}

/**
 * One stretch of heights with one `epochBlocks`: from `from` on, the set was recomputed at the
 * end of every block whose height is a multiple of `epochBlocks`; `lastBefore` is the last height
 * recomputed at or below `from − 1` (0: the genesis set), so it also answers the heights from it
 * to `from − 1`. A change of `epochBlocks` at the end of block h adds `[h + 2, new, h + 1]`
 * (block h + 1 recomputes the set); an epoch at h whose selection is empty adds `[h + 1,
 * epochBlocks, E]` (E the last recomputation before h). So slashing can tell which block set a
 * past height's power (end-block.ts, `lastEpochHeight`).
 */
export interface EpochRegime {
  readonly from: number;
  readonly epochBlocks: number;
  readonly lastBefore: number;
}

/** CBOR array of `[from, epochBlocks, lastBefore]`, oldest first. */
export function encodeEpochHistory(history: readonly EpochRegime[]): Uint8Array {
  return encodeCanonical(history.map((r) => [r.from, r.epochBlocks, r.lastBefore]));
}

export function decodeEpochHistory(value: Uint8Array): EpochRegime[] {
  const what = 'epoch history';
  const list = decode(value, what);
  if (!Array.isArray(list) || list.length === 0) corrupt(what, 'not a non-empty array');
  let previous = 0;
  return list.map((item: unknown): EpochRegime => {
    if (!Array.isArray(item) || item.length !== 3) corrupt(what, 'a regime is not 3 fields');
    const [from, epochBlocks, lastBefore] = item as unknown[];
    if (!isHeight(from) || !isHeight(epochBlocks) || !isHeight(lastBefore)) {
      corrupt(what, 'bad heights');
    }
    if (from <= previous || epochBlocks < 1 || lastBefore >= from) {
      corrupt(what, 'regimes out of order');
    }
    previous = from;
    return { from, epochBlocks, lastBefore };
  });
}

/** The epoch regimes; empty while governance never changed `epochBlocks`. */
export function readEpochHistory(state: ModuleStateReader): EpochRegime[] {
  const value = state.get(EPOCH_HISTORY_KEY);
  return value === null ? [] : decodeEpochHistory(value);
}

export function writeEpochHistory(state: ModuleState, history: readonly EpochRegime[]): void {
  state.set(EPOCH_HISTORY_KEY, encodeEpochHistory(history));
}

export function readQueue(state: ModuleStateReader, height: number): Uint8Array[] {
  const value = state.get(unbondingQueueKey(height));
  if (value === null) return [];
  const list = decode(value, 'unbonding queue');
  if (!Array.isArray(list) || !list.every((item) => isBytes(item, ADDRESS_BYTES))) {
    corrupt('unbonding queue', 'expected an array of 32-byte addresses');
  }
  return list as Uint8Array[];
}

export function writeQueue(state: ModuleState, height: number, list: readonly Uint8Array[]): void {
  if (list.length === 0) state.delete(unbondingQueueKey(height));
  else state.set(unbondingQueueKey(height), encodeCanonical(list));
}

export function readShares(
  state: ModuleStateReader,
  validator: Uint8Array,
  delegator: Uint8Array,
): bigint {
  return readAmount(state, delegationKey(validator, delegator));
}

/**
 * Writes the delegator's shares of `validator` and keeps its delegator index in step. Whoever
 * gives an account shares of a validator it had none of checks `MAX_DELEGATIONS_PER_ACCOUNT`
 * first (`requireDelegationRoom`).
 */
export function writeShares(
  state: ModuleState,
  validator: Uint8Array,
  delegator: Uint8Array,
  shares: bigint,
): void {
  writeAmount(state, delegationKey(validator, delegator), shares);
  updateDelegatorIndex(state, delegator, validator, shares);
}

/** Bytewise comparison of equal-length byte strings (addresses). */
export function compareAddresses(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

/** What a delegation of `shares` is worth in base units (floor). */
export function sharesValue(record: ValidatorRecord, shares: bigint): bigint {
  return record.shares === 0n ? 0n : (shares * record.tokens) / record.shares;
}
