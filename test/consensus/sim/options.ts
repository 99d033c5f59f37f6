import type { VoteType } from '../../../src/consensus/types.js';
import type { TimeoutConfig } from '../../../src/consensus/timeouts.js';
import type { PlannedValidatorChange } from './validator-plan.js';

/** What a faulty validator does (TESTING.md, "Deterministic simulation"). */
export type ByzantineBehaviour =
  /** Signs two different proposals for one round and sends each to half of the peers. */
  | 'equivocating-proposer'
  /** Signs a second, conflicting vote for every vote and sends each to half of the peers. */
  | 'double-voter'
  /** Sends nothing. */
  | 'silent'
  /** Proposes blocks the application or the consensus rules reject. */
  | 'invalid-proposer'
  /** Sends votes and proposals in other validators' names, or with garbage signatures. */
  | 'forger'
  /** Re-sends messages of earlier heights it has seen. */
  | 'replayer'
  /**
   * Tries to make correct validators abandon their lock: double-votes like `double-voter`, and
   * when it should re-propose a valid value (lines 15-16) proposes a fresh block instead.
   */
  | 'lock-breaker'
  /**
   * Needs `proofs`: whenever it proposes a fresh block, attaches a forged consensus proof,
   * rotating through PoSpace, PoStake, PoWork, PoTime and a garbage encoding (bad-proof.ts).
   */
  | 'bad-proof-proposer'
  /**
   * Negative control only: a coalition that shows one block to one group of correct validators
   * and another block to the other, voting for both.
   */
  | 'fork-coalition';

export interface NetworkOptions {
  /** Every message takes at least this long. */
  readonly minDelayMs: number;
  /** Plus an exponentially distributed delay with this mean (which also reorders messages). */
  readonly meanJitterMs: number;
  readonly dropRate: number;
  readonly duplicateRate: number;
  /**
   * Until `untilMs`, a vote of the listed types is held back by an extra exponential delay (mean
   * `meanExtraMs`) with probability `probability`. Slow prevotes: some validators lock in time,
   * others time out and precommit nil. Slow precommits: one validator decides while others move
   * to the next round locked. Both exercise the locks and re-proposals of lines 15-16 and 22-43.
   */
  readonly slowVotes?: {
    readonly types: readonly VoteType[];
    readonly probability: number;
    readonly meanExtraMs: number;
    readonly untilMs: number;
  };
}

/** Nodes in different groups cannot talk from `fromMs` until `untilMs`; others talk to all. */
export interface Partition {
  readonly groups: readonly (readonly number[])[];
  readonly fromMs: number;
  readonly untilMs: number;
}

export interface Crash {
  readonly node: number;
  readonly atMs: number;
  readonly restartAtMs: number;
}

/** A node's clock: local = global × rate + offset. */
export interface ClockSkew {
  readonly offsetMs: number;
  readonly rate: number;
}

export interface SimulationOptions {
  readonly seed: number;
  /**
   * Genesis voting power of each node; 0 (only with `validatorChanges`) starts a node outside
   * the set, following the chain until an update adds it.
   */
  readonly powers: readonly number[];
  /** Validator-set changes the blocks carry (validator-plan.ts); none by default. */
  readonly validatorChanges?: readonly PlannedValidatorChange[];
  /** Correct nodes must also reach at least this height (so that planned changes happen). */
  readonly minFinalHeight?: number;
  /** Faulty validators by index. */
  readonly byzantine: ReadonlyMap<number, ByzantineBehaviour>;
  readonly network: NetworkOptions;
  readonly partitions: readonly Partition[];
  readonly crashes: readonly Crash[];
  readonly clocks: readonly ClockSkew[];
  readonly timeouts: TimeoutConfig;
  /** A node that made no progress for this long re-sends its own messages. */
  readonly gossipIntervalMs: number;
  /** The application answers getValue()/valid(v) after a delay in this range. */
  readonly appDelayMs: readonly [number, number];
  /** After the network heals and crashed nodes are back, every correct node commits this many heights... */
  readonly progressHeights: number;
  /** ...within this much simulated time. */
  readonly livenessBoundMs: number;
  /** Check liveness (off for the negative control, whose faults exceed f). */
  readonly checkLiveness: boolean;
  /**
   * The four-part consensus proof (proofs.ts): validators have PoSpace plots, transactions carry
   * stamps, honest proposers attach real proofs, honest validators check every proposal's proof
   * and the invariants verify every committed block with the full verifier. Off by default.
   */
  readonly proofs?: boolean;
  /**
   * Negative control only: `false` makes correct validators skip the proof check of proposals
   * (everything else stays), so a forged proof can be committed and the invariant must catch it.
   */
  readonly checkProofs?: boolean;
  /** Sign and require FALCON-1024 precommit signatures (slow: ~10 ms per signature). */
  readonly pq: boolean;
  /** Keep a human-readable trace (for replaying one seed). */
  readonly recordTrace: boolean;
}
