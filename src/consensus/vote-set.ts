import { bytesEqual, toHex } from '../crypto/bytes.js';
import type { ValidatorAddress, Vote, VoteType } from './types.js';
import { exceedsOneThird, isQuorum } from './validator-set.js';

/**
 * The votes of one type in one round of one height, tallied by voting power. Immutable: adding
 * a vote returns a new set, so a state that holds one can be snapshotted by reference.
 *
 * The paper counts messages: "2f + 1 ⟨PRECOMMIT, h, r, id(v)⟩" is votes for id(v) from
 * validators with more than 2/3 of the power, whatever else they also signed. So a validator
 * that equivocates counts towards each value it voted for, but only once towards "any value"
 * (⟨PREVOTE, h, r, ∗⟩). Counting an equivocator twice cannot fake a decision: two values with
 * more than 2/3 each would need more than 1/3 of the power voting for both, i.e. faulty power
 * beyond f. It does keep correct nodes live: a node that first saw a faulty validator's nil
 * vote still counts its precommit for the block that the other correct nodes committed.
 * The caller bounds memory by adding a second value of a validator only when the value may
 * matter (state machine: a known proposal, or more than 1/3 of the power behind it).
 */
export interface VoteSet {
  readonly type: VoteType;
  readonly height: number;
  readonly round: number;
  /** Each validator's votes, one per distinct value, first one first. */
  readonly votes: ReadonlyMap<ValidatorAddress, readonly Vote[]>;
  /** Power behind each value: block hash in hex, or `NIL_KEY`. */
  readonly powerByValue: ReadonlyMap<string, number>;
  /** Power of the validators that voted at all (the paper's "⟨PREVOTE, h, r, ∗⟩"). */
  readonly power: number;
}

export const NIL_KEY = 'nil';

/** The tally key of a value: hex block hash, or `NIL_KEY` for nil. */
export function valueKey(blockHash: Uint8Array | null): string {
  return blockHash === null ? NIL_KEY : toHex(blockHash);
}

export function emptyVoteSet(type: VoteType, height: number, round: number): VoteSet {
  return { type, height, round, votes: new Map(), powerByValue: new Map(), power: 0 };
}

export function sameValue(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && bytesEqual(a, b);
}

export type VoteClassification = 'new' | 'duplicate' | 'conflict';

/**
 * How `vote` relates to what the set holds, before its signature is checked: `new` (first vote
 * of its validator), `duplicate` (same validator, same value: needs no verification) or
 * `conflict` (same validator, another value: equivocation).
 */
export function classifyVote(set: VoteSet, vote: Vote): VoteClassification {
  const existing = set.votes.get(vote.validator);
  if (existing === undefined) return 'new';
  return existing.some((held) => sameValue(held.blockHash, vote.blockHash))
    ? 'duplicate'
    : 'conflict';
}

/** The first vote of `validator` in this set, if any. */
export function firstVote(set: VoteSet, validator: ValidatorAddress): Vote | undefined {
  return set.votes.get(validator)?.[0];
}

/** Adds a verified vote of a validator with `power`; a duplicate leaves the set unchanged. */
export function addVote(set: VoteSet, vote: Vote, power: number): VoteSet {
  if (vote.type !== set.type || vote.height !== set.height || vote.round !== set.round) {
    throw new RangeError('vote does not belong to this vote set');
  }
  const classification = classifyVote(set, vote);
  if (classification === 'duplicate') return set;
  const votes = new Map(set.votes);
  votes.set(vote.validator, [...(set.votes.get(vote.validator) ?? []), vote]);
  const key = valueKey(vote.blockHash);
  const powerByValue = new Map(set.powerByValue);
  powerByValue.set(key, (powerByValue.get(key) ?? 0) + power);
  return {
    ...set,
    votes,
    powerByValue,
    power: classification === 'new' ? set.power + power : set.power,
  };
}

/** Power of the votes for the value with `key`. */
export function powerFor(set: VoteSet | undefined, key: string): number {
  return set?.powerByValue.get(key) ?? 0;
}

/** More than 2/3 of `total` voted for the value with `key`. */
export function hasQuorumFor(set: VoteSet | undefined, key: string, total: number): boolean {
  return isQuorum(powerFor(set, key), total);
}

/** More than 2/3 of `total` voted, for any values. */
export function hasQuorumAny(set: VoteSet | undefined, total: number): boolean {
  return set !== undefined && isQuorum(set.power, total);
}

/** More than 1/3 of `total` voted for the value with `key`. */
export function hasOneThirdFor(set: VoteSet | undefined, key: string, total: number): boolean {
  return exceedsOneThird(powerFor(set, key), total);
}

/** The non-nil value with more than 2/3 of `total`, if any (with at most f faulty, one). */
export function quorumBlockKey(set: VoteSet | undefined, total: number): string | undefined {
  if (set === undefined) return undefined;
  for (const [key, power] of set.powerByValue) {
    if (key !== NIL_KEY && isQuorum(power, total)) return key;
  }
  return undefined;
}

/** The votes for the value with `key`, one per validator, sorted by validator address. */
export function votesFor(set: VoteSet, key: string): Vote[] {
  const selected: Vote[] = [];
  for (const held of set.votes.values()) {
    const vote = held.find((candidate) => valueKey(candidate.blockHash) === key);
    if (vote !== undefined) selected.push(vote);
  }
  return selected.sort((a, b) =>
    a.validator < b.validator ? -1 : a.validator > b.validator ? 1 : 0,
  );
}
