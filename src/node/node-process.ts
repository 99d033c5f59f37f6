import { createWriteStream, type WriteStream } from 'node:fs';
import { spawnHypermesh, type ChildNode, type SpawnOptions } from './process.js';

/**
 * A `hypermesh node start` child process, followed through its ready line and its JSON logs.
 * `hypermesh dev` uses it, and so can integration tests that kill and restart validators.
 */
export interface ValidatorProcess extends ChildNode {
  readonly configFile: string;
  /** Highest committed height the node has logged (0 before its first commit). */
  committedHeight(): number;
  /**
   * Resolves once the node has logged a commit at `height` or above. Rejects if the process
   * exits first or `timeoutMs` passes.
   */
  waitForHeight(height: number, timeoutMs: number): Promise<void>;
}

/** The log message `node start` writes for every committed block (fields: height, hash, ...). */
export const COMMIT_LOG_MESSAGE = 'block committed';

export interface SpawnValidatorOptions extends SpawnOptions {
  /** Appends every stderr line of the node (its JSON logs) to this file. */
  readonly logFile?: string;
}

export function spawnValidator(
  name: string,
  configFile: string,
  options: SpawnValidatorOptions = {},
): ValidatorProcess {
  const node = spawnHypermesh(name, ['node', 'start', '--config', configFile], options);
  let height = 0;
  const waiters = new Set<{ height: number; resolve: () => void }>();
  let log: WriteStream | undefined;
  if (options.logFile !== undefined) {
    log = createWriteStream(options.logFile, { flags: 'a', mode: 0o600 });
    log.on('error', () => undefined);
    const stream = log;
    node.onOutput((line) => stream.write(`${line}\n`));
    void node.exited.then(() => stream.end());
  }
  node.onLog((entry) => {
    log?.write(`${JSON.stringify(entry)}\n`);
    if (entry.msg !== COMMIT_LOG_MESSAGE || typeof entry.height !== 'number') return;
    height = Math.max(height, entry.height);
    for (const waiter of waiters) {
      if (height >= waiter.height) {
        waiters.delete(waiter);
        waiter.resolve();
      }
    }
  });
  return {
    ...node,
    configFile,
    committedHeight: () => height,
    waitForHeight: (target, timeoutMs) => {
      if (height >= target) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const waiter = {
          height: target,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(
            new Error(
              `${name} did not commit height ${target} within ${timeoutMs} ms (at ${height})`,
            ),
          );
        }, timeoutMs);
        waiters.add(waiter);
        void node.exited.then((exit) => {
          if (!waiters.delete(waiter)) return;
          clearTimeout(timer);
          reject(
            new Error(
              `${name} exited (code ${exit.code}, signal ${exit.signal}) before committing height ${target}`,
            ),
          );
        });
      });
    },
  };
}
