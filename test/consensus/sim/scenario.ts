import type { TimeoutConfig } from '../../../src/consensus/timeouts.js';
import type {
  ByzantineBehaviour,
  ClockSkew,
  Crash,
  Partition,
  SimulationOptions,
} from './options.js';
import { Prng } from './prng.js';
import type { PlannedValidatorChange } from './validator-plan.js';

/** Timeouts scaled to the simulated network (tens of milliseconds per message). */
export const SIM_TIMEOUTS: TimeoutConfig = {
  proposeMs: 300,
  proposeDeltaMs: 100,
  prevoteMs: 150,
  prevoteDeltaMs: 50,
  precommitMs: 150,
  precommitDeltaMs: 50,
};

export const FAULTY_BEHAVIOURS: readonly ByzantineBehaviour[] = [
  'equivocating-proposer',
  'double-voter',
  'silent',
  'invalid-proposer',
  'forger',
  'replayer',
  'lock-breaker',
];

/**
 * The share of random seeds that run with the four-part consensus proof (options.ts `proofs`),
 * and of those, the share with a bad-proof proposer. Proof seeds cost about twice as much as
 * others (building and checking proofs, verifying every committed block), so only some seeds
 * have them; the draw uses a PRNG of its own, so the other seeds' scenarios do not change.
 */
export const PROOF_SEED_SHARE = 0.2;
export const BAD_PROOF_SHARE = 0.75;

/**
 * With `PROOF_SEED_SHARE` probability, turns on proofs and (`BAD_PROOF_SHARE`) makes one
 * faulty validator a bad-proof proposer — or, without faulty validators and when `powers` is
 * given (a fixed set), one whose power is below a third of the total.
 */
function withProofs(
  seed: number,
  byzantine: Map<number, ByzantineBehaviour>,
  powers?: readonly number[],
): boolean {
  const prng = new Prng(seed ^ 0x0b5e55ed);
  if (!prng.chance(PROOF_SEED_SHARE)) return false;
  if (!prng.chance(BAD_PROOF_SHARE)) return true;
  const total = (powers ?? []).reduce((sum, power) => sum + power, 0);
  const candidates =
    byzantine.size > 0
      ? [...byzantine.keys()]
      : (powers ?? []).flatMap((power, index) => (3 * power < total && power > 0 ? [index] : []));
  if (candidates.length > 0) byzantine.set(prng.pick(candidates), 'bad-proof-proposer');
  return true;
}

/** Options every scenario starts from: a calm network, nobody faulty. */
export function baseOptions(seed: number, powers: readonly number[]): SimulationOptions {
  return {
    seed,
    powers,
    byzantine: new Map(),
    network: { minDelayMs: 2, meanJitterMs: 10, dropRate: 0, duplicateRate: 0 },
    partitions: [],
    crashes: [],
    clocks: powers.map(() => ({ offsetMs: 0, rate: 1 })),
    timeouts: SIM_TIMEOUTS,
    gossipIntervalMs: 400,
    appDelayMs: [0, 5],
    progressHeights: 2,
    livenessBoundMs: 30_000,
    checkLiveness: true,
    pq: false,
    recordTrace: false,
  };
}

/**
 * A random scenario from one seed: 4 or 7 validators with equal or unequal power, faulty
 * validators holding less than 1/3 of the power, a lossy, duplicating, reordering network,
 * maybe a partition that heals, crashes with restarts, and skewed clocks; some seeds with the
 * consensus proof and a bad-proof proposer (`withProofs`).
 */
export function randomScenario(seed: number): SimulationOptions {
  const prng = new Prng(seed ^ 0x5eed5eed);
  const count = prng.chance(0.7) ? 4 : 7;
  const equal = prng.chance(0.5);
  const powers = Array.from({ length: count }, () => (equal ? 1 : prng.int(1, 10)));
  const total = powers.reduce((sum, power) => sum + power, 0);

  // Faulty validators: random ones while their power stays below 1/3 of the total.
  const byzantine = new Map<number, ByzantineBehaviour>();
  let faultyPower = 0;
  const faultyWanted = prng.int(0, 2);
  for (const index of prng.shuffle(powers.map((_, i) => i))) {
    if (byzantine.size >= faultyWanted) break;
    const power = powers[index] as number;
    if (3 * (faultyPower + power) >= total) continue;
    faultyPower += power;
    byzantine.set(index, prng.pick(FAULTY_BEHAVIOURS));
  }
  const proofs = withProofs(seed, byzantine, powers);

  const honest = powers.map((_, i) => i).filter((i) => !byzantine.has(i));
  const partitions: Partition[] = [];
  if (prng.chance(0.35)) {
    const fromMs = prng.int(0, 400);
    const shuffled = prng.shuffle(powers.map((_, i) => i));
    const cut = prng.int(1, count - 1);
    partitions.push({
      groups: [shuffled.slice(0, cut), shuffled.slice(cut)],
      fromMs,
      untilMs: fromMs + prng.int(50, 800),
    });
  }
  const crashes: Crash[] = [];
  const crashCount = prng.chance(0.4) ? prng.int(1, 2) : 0;
  for (let i = 0; i < crashCount; i++) {
    const atMs = prng.int(0, 400);
    crashes.push({ node: prng.pick(honest), atMs, restartAtMs: atMs + prng.int(20, 800) });
  }
  const clocks: ClockSkew[] = powers.map(() => ({
    offsetMs: prng.int(-500, 500),
    rate: 1 + (prng.float() - 0.5) * 0.04,
  }));
  const lossy = prng.chance(0.6);
  const slowVotes = prng.chance(0.4)
    ? {
        types: prng.pick([['prevote'], ['precommit'], ['prevote', 'precommit']] as const),
        probability: 0.2 + prng.float() * 0.4,
        meanExtraMs: prng.int(100, 300),
        untilMs: prng.int(200, 1200),
      }
    : undefined;
  return {
    ...baseOptions(seed, powers),
    byzantine,
    proofs,
    network: {
      minDelayMs: prng.int(1, 10),
      meanJitterMs: prng.int(2, 30),
      dropRate: lossy ? prng.float() * 0.1 : 0,
      duplicateRate: lossy ? prng.float() * 0.05 : 0,
      ...(slowVotes === undefined ? {} : { slowVotes }),
    },
    partitions,
    crashes,
    clocks,
  };
}

/**
 * One faulty validator with `behaviour` (the one with the most power that stays below 1/3) on a
 * lossy network, for checking that behaviour in particular.
 */
export function behaviourScenario(
  seed: number,
  powers: readonly number[],
  behaviour: ByzantineBehaviour,
): SimulationOptions {
  const total = powers.reduce((sum, power) => sum + power, 0);
  let faulty = -1;
  for (const [index, power] of powers.entries()) {
    if (3 * power < total && (faulty === -1 || power > (powers[faulty] as number))) faulty = index;
  }
  return {
    ...baseOptions(seed, powers),
    byzantine: new Map([[faulty, behaviour]]),
    network: { minDelayMs: 2, meanJitterMs: 15, dropRate: 0.03, duplicateRate: 0.02 },
    progressHeights: 6,
    proofs: behaviour === 'bad-proof-proposer',
  };
}

/**
 * The negative control: a coalition of two of four equal validators (f + 1, beyond what
 * Tendermint tolerates) with the two correct validators cut off from each other for good.
 * The coalition shows each correct validator a different block and votes for both.
 */
export function forkScenario(seed: number): SimulationOptions {
  const prng = new Prng(seed ^ 0xf0f0f0f);
  const [a, b, c, d] = prng.shuffle([0, 1, 2, 3]) as [number, number, number, number];
  return {
    ...baseOptions(seed, [1, 1, 1, 1]),
    byzantine: new Map([
      [a, 'fork-coalition'],
      [b, 'fork-coalition'],
    ]),
    partitions: [{ groups: [[c], [d]], fromMs: 0, untilMs: 5_000 }],
    livenessBoundMs: 0,
    checkLiveness: false,
  };
}

/**
 * An adversarial schedule for the locking rules: one lock-breaker (see options.ts) while
 * precommits are often slow, so that one correct validator decides while the others move to
 * the next round locked — where the lock-breaker proposes a fresh block.
 */
export function lockScenario(seed: number): SimulationOptions {
  const base = behaviourScenario(seed, [1, 1, 1, 1], 'lock-breaker');
  return {
    ...base,
    network: {
      ...base.network,
      slowVotes: { types: ['precommit'], probability: 0.5, meanExtraMs: 250, untilMs: 3_000 },
    },
    progressHeights: 3,
  };
}

/** Each node's power in every stretch of heights the plan makes (genesis first). */
function plannedPowerStretches(
  powers: readonly number[],
  changes: readonly PlannedValidatorChange[],
): number[][] {
  const stretches = [[...powers]];
  const current = [...powers];
  for (const height of [...new Set(changes.map((change) => change.height))].sort((a, b) => a - b)) {
    for (const change of changes) if (change.height === height) current[change.node] = change.power;
    stretches.push([...current]);
  }
  return stretches;
}

/**
 * A random scenario whose validator set changes: 5 or 7 nodes, one or two of them outside the
 * genesis set, and two to five planned changes at heights 1 to 8 (a node joins, leaves, or
 * gets another power; the updates of block h decide from h + 2), while the network is lossy,
 * partitions heal, nodes crash and restart, clocks are skewed and up to two nodes are faulty —
 * below a third of the power of every set the plan makes (a faulty node may join later); some
 * seeds with the consensus proof and one faulty node a bad-proof proposer (`withProofs`).
 */
export function validatorChangeScenario(seed: number): SimulationOptions {
  const prng = new Prng(seed ^ 0x7a11da7e);
  const count = prng.chance(0.6) ? 5 : 7;
  const powers = Array.from({ length: count }, () => prng.int(1, 6));
  const order = prng.shuffle(powers.map((_, i) => i));
  for (const node of order.slice(0, prng.int(1, 2))) powers[node] = 0;

  const changes: PlannedValidatorChange[] = [];
  const current = [...powers];
  const heights = Array.from({ length: prng.int(2, 5) }, () => prng.int(1, 8)).sort(
    (a, b) => a - b,
  );
  for (const height of heights) {
    const touched = new Set(changes.filter((c) => c.height === height).map((c) => c.node));
    const free = current.map((_, i) => i).filter((i) => !touched.has(i));
    const outside = free.filter((i) => current[i] === 0);
    const inside = free.filter((i) => (current[i] as number) > 0);
    const members = current.filter((power) => power > 0).length;
    const kind = prng.pick(['join', 'leave', 'power'] as const);
    let change: PlannedValidatorChange | undefined;
    if (kind === 'join' && outside.length > 0) {
      change = { height, node: prng.pick(outside), power: prng.int(1, 6) };
    } else if (kind === 'leave' && inside.length > 0 && members > 2) {
      change = { height, node: prng.pick(inside), power: 0 };
    } else if (inside.length > 0) {
      change = { height, node: prng.pick(inside), power: prng.int(1, 8) };
    }
    if (change === undefined) continue;
    changes.push(change);
    current[change.node] = change.power;
  }
  const stretches = plannedPowerStretches(powers, changes);

  // Faulty nodes: below a third of every stretch's total power.
  const byzantine = new Map<number, ByzantineBehaviour>();
  const faultyWanted = prng.int(0, 2);
  for (const node of prng.shuffle(powers.map((_, i) => i))) {
    if (byzantine.size >= faultyWanted) break;
    const fits = stretches.every((stretch) => {
      const total = stretch.reduce((sum, power) => sum + power, 0);
      const faulty = [...byzantine.keys(), node].reduce(
        (sum, index) => sum + (stretch[index] as number),
        0,
      );
      return 3 * faulty < total;
    });
    if (fits) byzantine.set(node, prng.pick(FAULTY_BEHAVIOURS));
  }
  const proofs = withProofs(seed, byzantine);

  const honest = powers.map((_, i) => i).filter((i) => !byzantine.has(i));
  const partitions: Partition[] = [];
  if (prng.chance(0.3)) {
    const fromMs = prng.int(0, 600);
    const shuffled = prng.shuffle(powers.map((_, i) => i));
    const cut = prng.int(1, count - 1);
    partitions.push({
      groups: [shuffled.slice(0, cut), shuffled.slice(cut)],
      fromMs,
      untilMs: fromMs + prng.int(50, 800),
    });
  }
  const crashes: Crash[] = [];
  const crashCount = prng.chance(0.5) ? prng.int(1, 2) : 0;
  for (let i = 0; i < crashCount; i++) {
    const atMs = prng.int(0, 900);
    crashes.push({ node: prng.pick(honest), atMs, restartAtMs: atMs + prng.int(20, 800) });
  }
  const lossy = prng.chance(0.6);
  return {
    ...baseOptions(seed, powers),
    byzantine,
    proofs,
    validatorChanges: changes,
    minFinalHeight: Math.max(0, ...changes.map((change) => change.height)) + 4,
    network: {
      minDelayMs: prng.int(1, 10),
      meanJitterMs: prng.int(2, 30),
      dropRate: lossy ? prng.float() * 0.1 : 0,
      duplicateRate: lossy ? prng.float() * 0.05 : 0,
    },
    partitions,
    crashes,
    clocks: powers.map(() => ({
      offsetMs: prng.int(-500, 500),
      rate: 1 + (prng.float() - 0.5) * 0.04,
    })),
  };
}
