import { rmSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { holderTextRunning, thisProcessHolderText } from './data-dir-lock.js';

/**
 * The staging directories of `cluster init` and `cluster add-node` hold private keys (every
 * node key, the CA root's passphrase file, the treasury key) until they are renamed into place.
 * Nothing of them may outlive the run that wrote them: a failure removes them (the ceremonies'
 * catch), an interrupt removes them (`exitOnInterrupt`), and what a killed run left (kill -9,
 * power loss) is removed by the next run (`removeStaleStagingDirs`), which tells it from a
 * running ceremony's by the pid in its name and the owner file inside.
 */
export const STAGING_OWNER_FILE = '.staging-owner';

/** `<prefix><pid>-XXXXXX` with this process's owner file inside. */
export async function createStagingDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(`${prefix}${process.pid}-`);
  await writeFile(path.join(dir, STAGING_OWNER_FILE), thisProcessHolderText(), { mode: 0o600 });
  return dir;
}

/** Removes the owner file before the staging directory is renamed into place. */
export async function sealStagingDir(dir: string): Promise<void> {
  await rm(path.join(dir, STAGING_OWNER_FILE), { force: true });
}

const STAGING_SUFFIX = /\.tmp-([1-9][0-9]{0,9})-[A-Za-z0-9]{6}$/;

/**
 * Removes the entries of `parent` that `matches` accepts and that are staging directories
 * (`…tmp-<pid>-XXXXXX`) of a process that no longer runs: the owner file names the process
 * (pid, boot, start time); without one (killed before it was written) the pid in the name does.
 * Returns the paths removed.
 */
export async function removeStaleStagingDirs(
  parent: string,
  matches: (entry: string) => boolean,
): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(parent);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const removed: string[] = [];
  for (const entry of entries) {
    const pid = STAGING_SUFFIX.exec(entry)?.[1];
    if (pid === undefined || !matches(entry)) continue;
    const dir = path.join(parent, entry);
    const owner = await readFile(path.join(dir, STAGING_OWNER_FILE), 'utf8').catch(
      (error: unknown) => {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return null;
        throw error;
      },
    );
    if (holderTextRunning(owner ?? `${pid}\n`)) continue;
    await rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

/** The exit codes of a process ended by these signals (128 + signal number). */
const EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

export interface InterruptGuard {
  /** Removes `file` (recursively) if the run is interrupted. */
  removeOnInterrupt(file: string): void;
  /** No longer removes `file` on an interrupt (it was renamed into place, or removed). */
  keep(file: string): void;
  /**
   * Runs `step` to its end even when a signal arrives meanwhile (a pair of renames that must
   * not be cut in half); the interrupt takes effect after it.
   */
  uninterrupted<T>(step: () => Promise<T>): Promise<T>;
  /** Removes the signal handlers (the run ended). */
  dispose(): void;
}

/**
 * Until `dispose`, SIGINT and SIGTERM end this process (exit 130 / 143) after removing every
 * file registered with `removeOnInterrupt`, and say so on stderr. Without it a Ctrl-C in the
 * middle of a ceremony would either kill the process with the keys left in its staging directory,
 * or (when another handler is installed, as `hypermesh dev`'s) be ignored until it ends.
 */
export function exitOnInterrupt(what: string): InterruptGuard {
  const files = new Set<string>();
  let critical = 0;
  let pending: keyof typeof EXIT_CODES | null = null;
  const exit = (signal: keyof typeof EXIT_CODES): never => {
    for (const file of files) rmSync(file, { recursive: true, force: true });
    process.stderr.write(
      `${what} interrupted (${signal})${files.size === 0 ? '' : `; removed ${[...files].join(', ')}`}\n`,
    );
    process.exit(EXIT_CODES[signal]);
  };
  const handler = (signal: NodeJS.Signals): void => {
    const known = signal === 'SIGINT' ? 'SIGINT' : 'SIGTERM';
    if (critical > 0) pending ??= known;
    else exit(known);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    removeOnInterrupt: (file) => void files.add(file),
    keep: (file) => void files.delete(file),
    async uninterrupted(step) {
      critical++;
      try {
        return await step();
      } finally {
        critical--;
        if (critical === 0 && pending !== null) exit(pending);
      }
    },
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
