import { parentPort, workerData } from 'node:worker_threads';
import { randomScenario, validatorChangeScenario } from './scenario.js';
import { runSimulation } from './simulator.js';

/**
 * Runs a range of seeds of one scenario generator (random by default, or validator changes) in
 * a worker thread and reports one summary per seed.
 * Loaded through `runSeedsInWorkers` (seeds.ts).
 */
export interface SeedSummary {
  readonly seed: number;
  readonly violations: readonly { kind: string; message: string; timeMs: number }[];
  readonly traceHash: string;
  readonly events: number;
  readonly heights: readonly number[];
}

const { seeds, scenario } = workerData as {
  seeds: readonly number[];
  scenario?: 'random' | 'validator-changes';
};
const build = scenario === 'validator-changes' ? validatorChangeScenario : randomScenario;
for (const seed of seeds) {
  const result = await runSimulation(build(seed));
  const summary: SeedSummary = {
    seed,
    violations: result.violations,
    traceHash: result.traceHash,
    events: result.stats.events,
    heights: result.stats.heights,
  };
  parentPort?.postMessage(summary);
}
