import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startTsWorker } from './ts-worker.js';

/**
 * The verification ceiling of issue 3 §5: Ed25519 verifications per second this machine does
 * with the nodes' own verifier (`ed25519Verify`, libsodium, raw keys), on every core at once (one worker thread per
 * core, all prepared first and then started together), and on one thread for comparison; the
 * best of a few runs of each.
 */
export interface Ed25519Rates {
  /** Verifications/s summed over `threads` workers running at the same time. */
  readonly allCores: number;
  readonly threads: number;
  /** One worker alone. */
  readonly oneThread: number;
}

interface WorkerResult {
  readonly count: number;
  readonly seconds: number;
  readonly failures: number;
}

/** Starts a worker and resolves once it has prepared its samples. */
function readyWorker(seconds: number, messageBytes: number): Promise<Worker> {
  return new Promise((resolve, reject) => {
    const worker = startTsWorker(new URL('./ed25519-worker.ts', import.meta.url), {
      seconds,
      messageBytes,
    });
    worker.once('message', () => resolve(worker));
    worker.once('error', reject);
  });
}

function result(worker: Worker): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    worker.once('message', (value: WorkerResult) => resolve(value));
    worker.once('error', reject);
    worker.postMessage('start');
  });
}

/** `workers` threads verifying at the same time (all prepared first); summed verifications/s. */
async function rate(workers: number, seconds: number, messageBytes: number): Promise<number> {
  const ready = await Promise.all(
    Array.from({ length: workers }, () => readyWorker(seconds, messageBytes)),
  );
  try {
    const results = await Promise.all(ready.map(result));
    const failed = results.reduce((sum, r) => sum + r.failures, 0);
    if (failed > 0) throw new Error(`${failed} Ed25519 verifications failed in the baseline`);
    return results.reduce((sum, r) => sum + r.count / r.seconds, 0);
  } finally {
    await Promise.all(ready.map((worker) => worker.terminate()));
  }
}

/** The best of `runs` measurements: other processes only ever make a run slower. */
async function best(runs: number, measure: () => Promise<number>): Promise<number> {
  let top = 0;
  for (let i = 0; i < runs; i++) top = Math.max(top, await measure());
  return top;
}

/** `messageBytes`: the size of what a transaction signature covers. */
export async function measureEd25519(
  seconds: number,
  messageBytes: number,
  runs = 3,
): Promise<Ed25519Rates> {
  const threads = availableParallelism();
  const oneThread = await best(runs, () => rate(1, seconds, messageBytes));
  const allCores = await best(runs, () => rate(threads, seconds, messageBytes));
  return { allCores, threads, oneThread };
}
