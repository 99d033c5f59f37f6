import { Worker } from 'node:worker_threads';
import type { SeedSummary } from './worker.js';

/**
 * Runs seeds of a scenario generator (`randomScenario` or `validatorChangeScenario`) on
 * `workers` worker threads (seeds dealt round-robin) and returns
 * one summary per seed, in seed order. Each worker loads the TypeScript sources through tsx.
 */
export async function runSeedsInWorkers(
  seeds: readonly number[],
  workers: number,
  scenario: 'random' | 'validator-changes' = 'random',
): Promise<SeedSummary[]> {
  const url = new URL('./worker.ts', import.meta.url).href;
  const code =
    `import('tsx/esm/api').then(({ register }) => { register(); ` +
    `return import(${JSON.stringify(url)}); });`;
  const shares = Array.from({ length: Math.max(1, workers) }, (_, i) =>
    seeds.filter((_, index) => index % Math.max(1, workers) === i),
  ).filter((share) => share.length > 0);
  const results = await Promise.all(
    shares.map(
      (share) =>
        new Promise<SeedSummary[]>((resolve, reject) => {
          const summaries: SeedSummary[] = [];
          const worker = new Worker(code, { eval: true, workerData: { seeds: share, scenario } });
          worker.on('message', (summary: SeedSummary) => summaries.push(summary));
          worker.on('error', reject);
          worker.on('exit', (exitCode) => {
            if (summaries.length === share.length) resolve(summaries);
            else
              reject(
                new Error(
                  `simulation worker exited (${exitCode}) after ${summaries.length} of ${share.length} seeds`,
                ),
              );
          });
        }),
    ),
  );
  return results.flat().sort((a, b) => a.seed - b.seed);
}
