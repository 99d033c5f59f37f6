import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CliError } from './cli-error.js';

/**
 * One node per data directory. Two `hypermesh node start` of one configuration would both sign
 * with the validator's key from the same signer state: each would vote without seeing the
 * other's votes, which is equivocation. So a node holds `<dataDir>/node.lock` (its pid) while it
 * runs and removes it when it stops; a second start is refused, naming the holder.
 *
 * The lock file appears complete or not at all: the pid is written to a file of this process's
 * own and hard-linked to the lock's name (`link` fails with EEXIST if the name exists, like
 * O_EXCL, and the content is already there). A lock whose pid is not a running process was left
 * by a node that died (kill -9, power loss) and is taken over.
 */
export const LOCK_FILE = 'node.lock';

/**
 * Lock files held by this process. A pid alone cannot tell the held lock of this process from
 * a stale one that names the same pid (a container restarted: the node is pid 1 again).
 */
const heldHere = new Set<string>();

/** A held lock; `release` removes the file if it is still this process's. */
export interface DataDirLock {
  readonly file: string;
  release(): Promise<void>;
}

function parsePid(text: string): number | null {
  const trimmed = text.trim();
  if (!/^[1-9][0-9]{0,9}$/.test(trimmed)) return null;
  return Number(trimmed);
}

/** Whether `pid` is a running process (EPERM: it runs, under another user). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLock(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Takes the data directory's lock, or throws `CliError` naming the process that holds it. */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const file = path.join(dataDir, LOCK_FILE);
  if (heldHere.has(file)) {
    throw new CliError(
      `data directory ${dataDir} is in use by this process (pid ${process.pid}): a node started from it is still running`,
      1,
    );
  }
  const own = `${process.pid}\n`;
  const staging = path.join(dataDir, `${LOCK_FILE}.${process.pid}`);
  await writeFile(staging, own, { mode: 0o600 });
  try {
    // Two rounds: the second after a stale lock was removed (a third taker may win it).
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await link(staging, file);
        heldHere.add(file);
        return { file, release: () => release(file, own) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const found = await readLock(file);
      if (found === null) continue;
      const pid = parsePid(found);
      if (pid !== null && pid !== process.pid && running(pid)) {
        throw new CliError(
          `data directory ${dataDir} is in use by process ${pid} (lock file ${file}): stop that node first, or remove the file if pid ${pid} is not a HyperMesh node`,
          1,
        );
      }
      // Stale: its process is gone (or it is this pid's, from before a restart, and not held).
      // Removed only if it still says what was read; else another start just took it.
      if ((await readLock(file)) === found) await unlink(file).catch(() => undefined);
    }
    const holder = parsePid((await readLock(file)) ?? '');
    throw new CliError(
      `data directory ${dataDir} was locked by process ${holder ?? 'unknown'} while this node started (lock file ${file})`,
      1,
    );
  } finally {
    await unlink(staging).catch(() => undefined);
  }
}

async function release(file: string, own: string): Promise<void> {
  if (!heldHere.delete(file)) return;
  if ((await readLock(file)) === own) await unlink(file);
}
