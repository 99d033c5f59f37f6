import {
  applyValidatorUpdates,
  type Validator,
  type ValidatorSet,
  type ValidatorSetChange,
  type ValidatorSetUpdate,
} from './validator-set.js';

/**
 * Weighted round-robin proposer selection: Tendermint's proposer-priority algorithm
 * (tendermint/spec "Proposer Selection Procedure"; CometBFT types/validator_set.go).
 * Every election adds each validator's power to its priority, the highest priority proposes
 * (ties go to the smaller address) and pays the total power. Over many elections a validator
 * proposes in proportion to its power. Before a batch of elections the priorities are
 * rescaled into a window of 2 × total power and centred on their average, as CometBFT does.
 *
 * Priorities are bigints: they are exact at any magnitude, and the centring uses floor division
 * like Go's big.Int.Div.
 */
export interface ProposerSchedule {
  readonly validators: ValidatorSet;
  /** Priorities after electing round 0's proposer of this height, aligned with `validators`. */
  readonly priorities: readonly bigint[];
  /** Index of the proposer of round 0. */
  readonly proposerIndex: number;
}

const PRIORITY_WINDOW_FACTOR = 2n;

/** Schedule of the first height: priorities start at zero and one election is run. */
export function genesisProposerSchedule(validators: ValidatorSet): ProposerSchedule {
  return elect(
    validators,
    validators.validators.map(() => 0n),
    1,
  );
}

/**
 * Schedule of the height after `schedule`'s. Without updates CometBFT increments the validator
 * set once per block: the same set, one more election. With updates (a block's
 * `validatorUpdates`, taking effect here — see height-context.ts for which block's) the set is
 * changed first, with CometBFT's priorities for the changed set (`updatedPriorities`), then the
 * election runs on it (`updateState`: `UpdateWithChangeSet` then `IncrementProposerPriority(1)`).
 * Throws `ConsensusError(INVALID_VALIDATOR_SET)` for updates `applyValidatorUpdates` refuses.
 */
export function nextHeightProposerSchedule(
  schedule: ProposerSchedule,
  updates: readonly ValidatorSetUpdate[] = [],
): ProposerSchedule {
  if (Array.isArray(updates) && updates.length === 0) {
    return elect(schedule.validators, schedule.priorities, 1);
  }
  const change = applyValidatorUpdates(schedule.validators, updates);
  return elect(change.validators, updatedPriorities(schedule, change), 1);
}

/**
 * Proposer priorities of a changed validator set, aligned with `change.validators`, before its
 * next election (CometBFT `updateWithChangeSet`): a validator that stays keeps its priority
 * (whatever its new power); a new one starts at −(P + ⌊P/8⌋), about −1.125 × P where P is the
 * total power after the updates and before the removals — behind everyone, so leaving and
 * re-joining cannot reset a low priority (`computeNewPriorities`). Then the priorities are
 * rescaled into a window of 2 × the new total power and centred on their average
 * (`RescalePriorities`, `shiftByAvgProposerPriority`).
 */
export function updatedPriorities(
  schedule: ProposerSchedule,
  change: ValidatorSetChange,
): bigint[] {
  const before = BigInt(change.totalBeforeRemovals);
  const newcomer = -(before + (before >> 3n));
  const priorities = change.validators.validators.map((validator) => {
    const index = schedule.validators.indexOf.get(validator.address);
    return index === undefined ? newcomer : (schedule.priorities[index] as bigint);
  });
  const rescaled = rescale(
    priorities,
    PRIORITY_WINDOW_FACTOR * BigInt(change.validators.totalPower),
  );
  return centre(rescaled);
}

/**
 * The elections proposerAt has run for one schedule: the priorities after `elections` of them
 * (started from the schedule's priorities, rescaled and centred once, as `elect` does) and the
 * proposer each one elected, so round r's proposer index is `proposers[r]`.
 */
interface RoundElections {
  readonly powers: readonly bigint[];
  readonly total: bigint;
  readonly priorities: bigint[];
  /** Proposer index by round; filled up to `elections` (round 0 is the schedule's). */
  proposers: Uint32Array;
  elections: number;
}

const roundElections = new WeakMap<ProposerSchedule, RoundElections>();

function electionsOf(schedule: ProposerSchedule): RoundElections {
  let state = roundElections.get(schedule);
  if (state === undefined) {
    const { validators } = schedule;
    const total = BigInt(validators.totalPower);
    state = {
      powers: validators.validators.map((validator) => BigInt(validator.power)),
      total,
      priorities: centre(rescale(schedule.priorities, PRIORITY_WINDOW_FACTOR * total)),
      proposers: Uint32Array.of(schedule.proposerIndex),
      elections: 0,
    };
    roundElections.set(schedule, state);
  }
  return state;
}

/**
 * proposer(h, r) of the paper: round 0's proposer is the schedule's; round r > 0 is elected by r
 * more elections on a copy of the priorities (CometBFT `CopyIncrementProposerPriority(r)`).
 * The elections are kept per schedule, which is immutable, and extended from the highest round
 * computed so far: answering rounds in any order costs the highest round's elections once, and
 * every answer is the one `elect(…, r)` gives from scratch. So this stays a pure function.
 *
 * Cost: one election is n bigint additions and comparisons for n validators (about 0.16 ms at
 * 10,000 validators on the project machine), so a new highest round r costs r minus the
 * previous highest of them. Callers bound the rounds they ask for: the engine refuses a proposal
 * too far above its round (`ConsensusConfig.maxProposalRoundLead`) before it asks.
 */
export function proposerAt(schedule: ProposerSchedule, round: number): Validator {
  if (!Number.isSafeInteger(round) || round < 0) {
    throw new RangeError(`round must be a non-negative integer, got ${round}`);
  }
  let index = schedule.proposerIndex;
  if (round > 0) {
    const state = electionsOf(schedule);
    while (state.elections < round) runElection(state);
    index = state.proposers[round] as number;
  }
  const proposer = schedule.validators.validators[index];
  if (proposer === undefined) throw new RangeError('proposer index outside the validator set');
  return proposer;
}

/** Elections proposerAt has run for `schedule` so far: the highest round it was asked for. */
export function proposerElections(schedule: ProposerSchedule): number {
  return roundElections.get(schedule)?.elections ?? 0;
}

function runElection(state: RoundElections): void {
  const proposerIndex = electOnce(state.priorities, state.powers, state.total);
  state.elections += 1;
  if (state.elections >= state.proposers.length) {
    const grown = new Uint32Array(Math.max(16, state.proposers.length * 2));
    grown.set(state.proposers);
    state.proposers = grown;
  }
  state.proposers[state.elections] = proposerIndex;
}

/** CometBFT `IncrementProposerPriority(times)` on a copy of `priorities`. */
function elect(
  validators: ValidatorSet,
  priorities: readonly bigint[],
  times: number,
): ProposerSchedule {
  if (!Number.isSafeInteger(times) || times < 1) {
    throw new RangeError(`elections must be a positive integer, got ${times}`);
  }
  const powers = validators.validators.map((validator) => BigInt(validator.power));
  const total = BigInt(validators.totalPower);
  const next = centre(rescale(priorities, PRIORITY_WINDOW_FACTOR * total));
  let proposerIndex = 0;
  for (let election = 0; election < times; election++) {
    proposerIndex = electOnce(next, powers, total);
  }
  return { validators, priorities: next, proposerIndex };
}

/**
 * One election in place (CometBFT `incrementProposerPriority`): every priority grows by its
 * power, the highest proposes and pays the total power. Returns the proposer's index.
 */
function electOnce(priorities: bigint[], powers: readonly bigint[], total: bigint): number {
  for (let i = 0; i < priorities.length; i++) {
    priorities[i] = (priorities[i] as bigint) + (powers[i] as bigint);
  }
  const proposerIndex = highestPriority(priorities);
  priorities[proposerIndex] = (priorities[proposerIndex] as bigint) - total;
  return proposerIndex;
}

/**
 * Highest priority wins; on a tie the smaller address (validators are sorted by address, so the
 * lower index).
 */
function highestPriority(priorities: readonly bigint[]): number {
  let best = 0;
  for (let i = 1; i < priorities.length; i++) {
    if ((priorities[i] as bigint) > (priorities[best] as bigint)) best = i;
  }
  return best;
}

/** CometBFT `RescalePriorities`: divide by ceil(diff / window) when the spread exceeds it. */
function rescale(priorities: readonly bigint[], window: bigint): bigint[] {
  const copy = [...priorities];
  if (copy.length === 0 || window <= 0n) return copy;
  let max = copy[0] as bigint;
  let min = max;
  for (const priority of copy) {
    if (priority > max) max = priority;
    if (priority < min) min = priority;
  }
  const diff = max - min;
  if (diff > window) {
    const ratio = (diff + window - 1n) / window;
    // bigint division truncates toward zero, like Go's int64 division.
    for (let i = 0; i < copy.length; i++) copy[i] = (copy[i] as bigint) / ratio;
  }
  return copy;
}

/** CometBFT `shiftByAvgProposerPriority`: subtract the (floored) average, in place. */
function centre(priorities: bigint[]): bigint[] {
  const average = floorDiv(
    priorities.reduce((sum, priority) => sum + priority, 0n),
    BigInt(priorities.length),
  );
  for (let i = 0; i < priorities.length; i++) priorities[i] = (priorities[i] as bigint) - average;
  return priorities;
}

/** Floor division for a positive divisor (Go's big.Int.Div, Euclidean). */
function floorDiv(a: bigint, b: bigint): bigint {
  const quotient = a / b;
  return a % b !== 0n && a < 0n ? quotient - 1n : quotient;
}
