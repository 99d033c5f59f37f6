import { readFileSync } from 'node:fs';
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

/**
 * What a lock file says: the holder's pid and, on Linux, the boot and the process start time
 * (`/proc/<pid>/stat` field 22), which tell a live holder from an unrelated process that got
 * the same pid after a crash or a reboot (a container's node is pid 1 again and again).
 */
interface LockHolder {
  readonly pid: number;
  readonly bootId: string | null;
  readonly startTime: string | null;
}

function parseHolder(text: string): LockHolder | null {
  const match = /^([1-9][0-9]{0,9})(?: ([0-9a-f-]{36}) ([0-9]{1,20}))?\s*$/.exec(text);
  if (match === null) return null;
  return { pid: Number(match[1]), bootId: match[2] ?? null, startTime: match[3] ?? null };
}

function parsePid(text: string): number | null {
  return parseHolder(text)?.pid ?? null;
}

function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

/** Field 22 of `/proc/<pid>/stat` (after the parenthesised command name), or null. */
export function processStartTime(pid: number): string | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields from the third (state) on: start time is field 22, the 20th here.
  return fields[19] ?? null;
}

/** The lock file's text for this process. */
function ownLock(): string {
  const boot = bootId();
  const start = processStartTime(process.pid);
  return boot !== null && start !== null ? `${process.pid} ${boot} ${start}\n` : `${process.pid}\n`;
}

/**
 * Whether the lock's holder still runs: its pid is a running process and, when the lock names
 * the boot and start time, the same boot and the same process (not a later one with its pid).
 */
function holderRunning(holder: LockHolder): boolean {
  if (!running(holder.pid)) return false;
  if (holder.bootId === null || holder.startTime === null) return true;
  const boot = bootId();
  if (boot !== null && boot !== holder.bootId) return false;
  const start = processStartTime(holder.pid);
  return start === null || start === holder.startTime;
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
  const own = ownLock();
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
      const holder = parseHolder(found);
      const pid = holder?.pid ?? null;
      if (holder !== null && pid !== process.pid && holderRunning(holder)) {
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
