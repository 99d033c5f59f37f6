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
 *
 * Adding is O(1) amortized and a lookup O(1), or O(log k) over one value's k votes in a set that
 * later sets were derived from: sets derived from one another share an append-only `VoteLog`,
 * each sees its first `length` entries, and adding to a set that is not the latest of its
 * lineage copies those entries first (O(n), once per branch). Copying both maps on every vote
 * cost n²/2 entry copies per round, about 3 s on the event loop at 10,000 validators.
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

/** One added vote; its index in the log is its sequence number. */
interface LoggedVote {
  readonly vote: Vote;
  readonly key: string;
  readonly power: number;
}

/** The votes for one value: `totals[i]` is the power behind it once the vote at `seqs[i]` counts. */
interface ValueTally {
  readonly seqs: number[];
  readonly totals: number[];
}

/**
 * The votes added along one lineage of sets, in order. Only ever appended to, and only by the
 * latest set of the lineage, so an earlier set (which sees the entries below its length) keeps
 * answering as it did. Both maps are in order of first appearance, that is of sequence number.
 */
class VoteLog {
  readonly entries: LoggedVote[] = [];
  readonly seqsByValidator = new Map<ValidatorAddress, number[]>();
  readonly tallies = new Map<string, ValueTally>();

  append(vote: Vote, key: string, power: number): void {
    const seq = this.entries.length;
    this.entries.push({ vote, key, power });
    const seqs = this.seqsByValidator.get(vote.validator);
    if (seqs === undefined) this.seqsByValidator.set(vote.validator, [seq]);
    else seqs.push(seq);
    const tally = this.tallies.get(key);
    if (tally === undefined) {
      this.tallies.set(key, { seqs: [seq], totals: [power] });
    } else {
      tally.seqs.push(seq);
      tally.totals.push((tally.totals[tally.totals.length - 1] as number) + power);
    }
  }

  /** A log of the first `length` entries only: for a set that branches off an earlier one. */
  prefix(length: number): VoteLog {
    const copy = new VoteLog();
    for (const { vote, key, power } of this.entries.slice(0, length)) copy.append(vote, key, power);
    return copy;
  }
}

/** How many of the ascending `seqs` are below `length`, i.e. visible to a set of that length. */
function countBelow(seqs: readonly number[], length: number): number {
  let low = 0;
  let high = seqs.length;
  if (high === 0 || (seqs[high - 1] as number) < length) return high;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((seqs[mid] as number) < length) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Each validator's votes among a log's first `length` entries, first vote first. */
class VotesView implements ReadonlyMap<ValidatorAddress, readonly Vote[]> {
  constructor(
    private readonly log: VoteLog,
    private readonly length: number,
    readonly size: number,
  ) {}

  get(validator: ValidatorAddress): readonly Vote[] | undefined {
    const seqs = this.log.seqsByValidator.get(validator);
    if (seqs === undefined) return undefined;
    const count = countBelow(seqs, this.length);
    if (count === 0) return undefined;
    return seqs.slice(0, count).map((seq) => (this.log.entries[seq] as LoggedVote).vote);
  }

  has(validator: ValidatorAddress): boolean {
    const first = this.log.seqsByValidator.get(validator)?.[0];
    return first !== undefined && first < this.length;
  }

  *entries(): MapIterator<[ValidatorAddress, readonly Vote[]]> {
    for (const [validator, seqs] of this.log.seqsByValidator) {
      if ((seqs[0] as number) >= this.length) return;
      yield [validator, this.get(validator) as readonly Vote[]];
    }
  }

  /**
   * Straight over the log's index, no vote arrays built (`skipToRound` walks these for every
   * future round). The index is in order of first vote and this set sees its first `size`
   * validators, so counting is enough, also if a later set appends while this one is walked.
   */
  *keys(): MapIterator<ValidatorAddress> {
    let left = this.size;
    if (left === 0) return;
    for (const validator of this.log.seqsByValidator.keys()) {
      yield validator;
      if (--left === 0) return;
    }
  }

  *values(): MapIterator<readonly Vote[]> {
    for (const [, votes] of this.entries()) yield votes;
  }

  [Symbol.iterator](): MapIterator<[ValidatorAddress, readonly Vote[]]> {
    return this.entries();
  }

  forEach(
    callback: (
      votes: readonly Vote[],
      validator: ValidatorAddress,
      map: ReadonlyMap<ValidatorAddress, readonly Vote[]>,
    ) => void,
    thisArg?: unknown,
  ): void {
    for (const [validator, votes] of this.entries()) callback.call(thisArg, votes, validator, this);
  }
}

/** The power behind each value among a log's first `length` entries, in order of first vote. */
class PowerView implements ReadonlyMap<string, number> {
  constructor(
    private readonly log: VoteLog,
    private readonly length: number,
    readonly size: number,
  ) {}

  get(key: string): number | undefined {
    const tally = this.log.tallies.get(key);
    if (tally === undefined) return undefined;
    const count = countBelow(tally.seqs, this.length);
    return count === 0 ? undefined : tally.totals[count - 1];
  }

  has(key: string): boolean {
    const first = this.log.tallies.get(key)?.seqs[0];
    return first !== undefined && first < this.length;
  }

  *entries(): MapIterator<[string, number]> {
    for (const [key, tally] of this.log.tallies) {
      if ((tally.seqs[0] as number) >= this.length) return;
      yield [key, this.get(key) as number];
    }
  }

  /** As `VotesView.keys`: the first `size` values of the log's index. */
  *keys(): MapIterator<string> {
    let left = this.size;
    if (left === 0) return;
    for (const key of this.log.tallies.keys()) {
      yield key;
      if (--left === 0) return;
    }
  }

  *values(): MapIterator<number> {
    for (const [, power] of this.entries()) yield power;
  }

  [Symbol.iterator](): MapIterator<[string, number]> {
    return this.entries();
  }

  forEach(
    callback: (power: number, key: string, map: ReadonlyMap<string, number>) => void,
    thisArg?: unknown,
  ): void {
    for (const [key, power] of this.entries()) callback.call(thisArg, power, key, this);
  }
}

/** A set as a view of the first `length` entries of `log`. */
class LoggedVoteSet implements VoteSet {
  readonly votes: VotesView;
  readonly powerByValue: PowerView;

  constructor(
    readonly type: VoteType,
    readonly height: number,
    readonly round: number,
    readonly power: number,
    private readonly log: VoteLog,
    private readonly length: number,
    voters: number,
    values: number,
  ) {
    this.votes = new VotesView(log, length, voters);
    this.powerByValue = new PowerView(log, length, values);
  }

  /**
   * This set plus a vote that is not a duplicate. Shares the log when this set is the latest of
   * its lineage (the usual case) and copies the entries it sees otherwise, so this set answers
   * as before either way.
   */
  with(vote: Vote, power: number, fromNewValidator: boolean): LoggedVoteSet {
    const key = valueKey(vote.blockHash);
    const newValue = !this.powerByValue.has(key);
    const log = this.length === this.log.entries.length ? this.log : this.log.prefix(this.length);
    log.append(vote, key, power);
    return new LoggedVoteSet(
      this.type,
      this.height,
      this.round,
      fromNewValidator ? this.power + power : this.power,
      log,
      this.length + 1,
      fromNewValidator ? this.votes.size + 1 : this.votes.size,
      newValue ? this.powerByValue.size + 1 : this.powerByValue.size,
    );
  }
}

export function emptyVoteSet(type: VoteType, height: number, round: number): VoteSet {
  return new LoggedVoteSet(type, height, round, 0, new VoteLog(), 0, 0, 0);
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
  if (!(set instanceof LoggedVoteSet)) {
    throw new TypeError('vote set was not made by emptyVoteSet or addVote');
  }
  const classification = classifyVote(set, vote);
  if (classification === 'duplicate') return set;
  return set.with(vote, power, classification === 'new');
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
