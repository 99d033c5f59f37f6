import { Worker } from 'node:worker_threads';

const tsxApi = import.meta.resolve('tsx/esm/api');

/**
 * A worker thread running a TypeScript module. Node 20 does not apply the parent's `--import tsx`
 * loader to a worker's entry file, so the worker starts from a two-line ES module that loads the
 * module through tsx's API.
 */
export function startTsWorker(module: URL, workerData: unknown): Worker {
  const source = [
    `import { tsImport } from ${JSON.stringify(tsxApi)};`,
    `await tsImport(${JSON.stringify(module.href)}, ${JSON.stringify(module.href)});`,
  ].join('\n');
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(source)}`), {
    workerData,
  });
}
