import { rmSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { holderTextRunning, isHolderText, thisProcessHolderText } from './data-dir-lock.js';

/**
 * The staging directories of `cluster init` and `cluster add-node` hold private keys (every
 * node key, the CA root's passphrase file, the treasury key) until they are renamed into place.
 * Nothing of them may outlive the run that wrote them: a failure removes them (the ceremonies'
 * catch), an interrupt removes them (`exitOnInterrupt`), and what a killed run left (kill -9,
 * power loss) is removed by the next run (`removeStaleStagingDirs`), which tells it from a
 * running ceremony's by the pid in its name and the owner file inside.
 */
export const STAGING_OWNER_FILE = '.staging-owner';

/**
 * `<prefix><pid>-` and six random characters (mkdtemp), with this process's owner file inside.
 * The owner file appears complete or not at all (written under another name, then renamed): a
 * cleanup that read it half-written would judge a running ceremony's directory stale. Until it
 * appears, the pid in the name speaks.
 */
export async function createStagingDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(`${prefix}${process.pid}-`);
  try {
    const partial = path.join(dir, `${STAGING_OWNER_FILE}.partial`);
    await writeFile(partial, thisProcessHolderText(), { flag: 'wx', mode: 0o600 });
    await rename(partial, path.join(dir, STAGING_OWNER_FILE));
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return dir;
}

/** Removes the owner file before the staging directory is renamed into place. */
export async function sealStagingDir(dir: string): Promise<void> {
  await rm(path.join(dir, STAGING_OWNER_FILE), { force: true });
}

const STAGING_SUFFIX = /\.tmp-([1-9][0-9]{0,9})-[A-Za-z0-9]{6}$/;

/**
 * Removes the entries of `parent` that `matches` accepts and that are staging directories
 * (`…tmp-<pid>-` and mkdtemp's six random characters) of a process that no longer runs: the
 * owner file names the process (pid, boot, start time); without one (killed before it was written), or with one that does
 * not parse (never written by this code, or damaged), the pid in the name does.
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
    if (holderTextRunning(owner !== null && isHolderText(owner) ? owner : `${pid}\n`)) continue;
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
   * The run's result is in place (`done`, e.g. "cluster /x is in place"): `staging` was renamed
   * there and is no longer removed. An interrupt from now on still exits 130 / 143, but says
   * that the run completed before it instead of claiming it was undone.
   */
  completed(staging: string, done: string): void;
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
 * file registered with `removeOnInterrupt`, and say so on stderr. A signal during the final
 * renames (`uninterrupted`) takes effect after them: the result is then in place (`completed`),
 * and the exit is still 130 / 143 — the signal's, so a script that was interrupted stops — with a
 * message that says the run completed. Without it a Ctrl-C in the
 * middle of a ceremony would either kill the process with the keys left in its staging directory,
 * or (when another handler is installed, as `hypermesh dev`'s) be ignored until it ends.
 */
export function exitOnInterrupt(what: string): InterruptGuard {
  const files = new Set<string>();
  let critical = 0;
  let pending: keyof typeof EXIT_CODES | null = null;
  let done: string | null = null;
  const exit = (signal: keyof typeof EXIT_CODES): never => {
    for (const file of files) rmSync(file, { recursive: true, force: true });
    const removed = files.size === 0 ? '' : `; removed ${[...files].join(', ')}`;
    process.stderr.write(
      done === null
        ? `${what} interrupted (${signal})${removed}\n`
        : `${what} completed before the interrupt (${signal}): ${done}${removed}\n`,
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
    completed(staging, result) {
      files.delete(staging);
      done = result;
    },
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
