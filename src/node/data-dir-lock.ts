import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { link, open, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
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
 * by a node that died (kill -9, power loss) and is taken over, atomically (`removeStaleLock`):
 * of two starts that find one stale lock, exactly one runs.
 *
 * A pid means something only in its own PID namespace on its own host: two containers that
 * share one data-dir volume (a rolling update, `docker run -v` twice) or two machines that share
 * a network file system see other processes under those numbers (each container's node may be
 * pid 1). So the lock also names the holder's PID namespace (`readlink /proc/self/ns/pid`) and
 * host, and a lock from another namespace or host is never judged by its pid but by its lease:
 * the holder rewrites the lock every `LOCK_LEASE_RENEW_MS` (so its modification time is the file
 * system's clock), and one older than `LOCK_LEASE_MS` by the same clock (a probe file written
 * next to it) was left by a holder that died there. A holder that finds its lock gone or naming
 * another holder (it was paused past its lease, and another start took over) is told at once
 * (`onLost`): it must stop signing.
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
  /**
   * Whether the lock is still this process's, read from the file now (synchronously): the
   * signer asks before every signature, so a process resumed after a pause longer than its
   * lease, whose directory another start took over, signs nothing before it finds out (the
   * renewal timer would find out only after timers and messages queued meanwhile had run).
   * False once lost; it then also reports the loss (`onLost`).
   */
  stillHeld(): boolean;
}

/**
 * What a lock file says: the holder's pid and, on Linux, the boot and the process start time
 * (`/proc/<pid>/stat` field 22), which tell a live holder from an unrelated process that got
 * the same pid after a crash or a reboot (a container's node is pid 1 again and again); then the
 * PID namespace and the host, which say where the pid means that process.
 *
 * Text: `<pid>[ <boot id> <start time>]` on the first line (all that locks of earlier versions
 * hold, judged as before), then `pidns pid:[<inode>]` and `host <hostname>` lines; lines of
 * other keys are ignored.
 */
interface LockHolder {
  readonly pid: number;
  readonly bootId: string | null;
  readonly startTime: string | null;
  readonly pidNamespace: string | null;
  readonly host: string | null;
}

const HOLDER_LINE = /^([1-9][0-9]{0,9})(?: ([0-9a-f-]{36}) ([0-9]{1,20}))?$/;
const PID_NAMESPACE = /^pid:\[[0-9]{1,20}\]$/;
const HOST = /^[^\s]{1,255}$/;

function parseHolder(text: string): LockHolder | null {
  const [first, ...rest] = text.trimEnd().split('\n');
  const match = HOLDER_LINE.exec(first ?? '');
  if (match === null) return null;
  let pidNamespace: string | null = null;
  let host: string | null = null;
  for (const line of rest) {
    const space = line.indexOf(' ');
    const key = space < 0 ? line : line.slice(0, space);
    const value = space < 0 ? '' : line.slice(space + 1);
    if (key === 'pidns') {
      if (!PID_NAMESPACE.test(value)) return null;
      pidNamespace = value;
    } else if (key === 'host') {
      if (!HOST.test(value)) return null;
      host = value;
    }
  }
  return {
    pid: Number(match[1]),
    bootId: match[2] ?? null,
    startTime: match[3] ?? null,
    pidNamespace,
    host,
  };
}

function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

/** This process's PID namespace (`pid:[4026531836]`), or null where /proc does not say. */
function pidNamespace(): string | null {
  try {
    const link = readlinkSync('/proc/self/ns/pid');
    return PID_NAMESPACE.test(link) ? link : null;
  } catch {
    return null;
  }
}

/** This host's name, or null if it cannot be written into a lock (empty, or with whitespace). */
function hostName(): string | null {
  const name = hostname();
  return HOST.test(name) ? name : null;
}

/**
 * Where a holder runs when that is not here: its host and PID namespace as its lock names them,
 * or null when its pid means a process of this namespace on this host (or the lock, of an
 * earlier version, does not say).
 */
export interface HolderElsewhere {
  readonly host: string | null;
  readonly pidNamespace: string | null;
}

function elsewhere(holder: LockHolder): HolderElsewhere | null {
  const otherNamespace = holder.pidNamespace !== null && holder.pidNamespace !== pidNamespace();
  const otherHost = holder.host !== null && holder.host !== hostName();
  if (!otherNamespace && !otherHost) return null;
  return { host: holder.host, pidNamespace: holder.pidNamespace };
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
  const namespace = pidNamespace();
  const host = hostName();
  return (
    (boot !== null && start !== null ? `${process.pid} ${boot} ${start}\n` : `${process.pid}\n`) +
    (namespace === null ? '' : `pidns ${namespace}\n`) +
    (host === null ? '' : `host ${host}\n`)
  );
}

/**
 * What this process writes to say "mine" (a lock, a staging directory's owner file): its pid
 * and, on Linux, the boot and the process start time, its PID namespace and its host.
 */
export function thisProcessHolderText(): string {
  return ownLock();
}

/** Whether `text` is a holder's text (`thisProcessHolderText`'s format), not garbage. */
export function isHolderText(text: string): boolean {
  return parseHolder(text) !== null;
}

/**
 * Whether the process a `thisProcessHolderText` names still runs (false for garbage; true for
 * a process of another PID namespace or host, which cannot be checked from here).
 */
export function holderTextRunning(text: string): boolean {
  const holder = parseHolder(text);
  return holder !== null && holderRunning(holder);
}

/**
 * Whether the lock's holder still runs: its pid is a running process and, when the lock names
 * the boot and start time, the same boot and the same process (not a later one with its pid).
 * A holder of another PID namespace or host counts as running: its pid says nothing here.
 */
function holderRunning(holder: LockHolder): boolean {
  if (elsewhere(holder) !== null) return true;
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

/**
 * A test seam: called when a lock was found stale, before it is taken over, so a test can hold
 * two starts at the point where both have judged one lock stale.
 */
export interface LockDataDirHooks {
  readonly beforeTakeover?: (file: string) => Promise<void>;
  /**
   * Called once if the held lock is found gone or naming another holder at a renewal: another
   * start took the directory over (this process was paused past its lease). The node must stop
   * at once, or two would sign with one key.
   */
  readonly onLost?: (reason: string) => void;
  /** Called after each renewal of the lease (tests). */
  readonly onLeaseRenewed?: () => void;
  /** The renewal period instead of `LOCK_LEASE_RENEW_MS` (tests). */
  readonly leaseRenewMs?: number;
}

/** How often a holder renews its lock's lease (the file's modification time). */
export const LOCK_LEASE_RENEW_MS = 10_000;
/**
 * A lock of another PID namespace or host whose lease was last renewed longer ago than this is
 * stale: its pid says nothing here, but a live holder renews every `LOCK_LEASE_RENEW_MS`. So a
 * container that restarts after a crash (a new PID namespace, the same data directory) starts
 * at most this long after the crash, without an operator.
 */
export const LOCK_LEASE_MS = 60_000;

/**
 * How long ago the lock's lease was renewed, or null if it is gone: its modification time
 * against a probe file's written now next to it, so both times come from the file system's
 * clock (a network file system's server), not from two hosts' clocks that may disagree.
 */
async function leaseAgeMs(file: string): Promise<number | null> {
  let renewed: number;
  try {
    renewed = (await stat(file)).mtimeMs;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const probe = `${file}.clock.${process.pid}.${randomBytes(6).toString('hex')}`;
  try {
    await writeFile(probe, '', { mode: 0o600 });
    return (await stat(probe)).mtimeMs - renewed;
  } catch {
    return Date.now() - renewed;
  } finally {
    await unlink(probe).catch(() => undefined);
  }
}

/**
 * Why the lock file no longer is this process's (`own`), read synchronously, or null while it
 * is. An unreadable file counts as lost: signing is refused rather than risked.
 */
function lostNow(file: string, own: string): string | null {
  let found: string;
  try {
    found = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return `its lock file ${file} is gone`;
    return `its lock file ${file} cannot be read: ${(error as Error).message}`;
  }
  return found === own ? null : `its lock file ${file} now names another holder: ${found.trim()}`;
}

/**
 * Renews the lease of a lock this process holds: rewrites its bytes in place (same bytes, same
 * length, so a reader never sees it empty), which sets its modification time by the file
 * system's clock. The file is opened once and read, compared and written through that one
 * handle, which must still be the file at the lock's name: a process paused between a read by
 * name and a write by name could otherwise write its text over the lock of a start that took
 * the directory over meanwhile. Returns why the lock is no longer this process's, null when
 * renewed, or `undefined` when the renewal failed for now (the lease then runs down).
 */
async function renewLease(file: string, own: string): Promise<string | null | undefined> {
  let handle;
  try {
    handle = await open(file, 'r+');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return `its lock file ${file} is gone`;
    return undefined;
  }
  try {
    const bytes = Buffer.from(own);
    const read = Buffer.alloc(bytes.length + 1);
    const { bytesRead } = await handle.read(read, 0, read.length, 0);
    const found = read.subarray(0, bytesRead).toString('utf8');
    if (found !== own) return `its lock file ${file} now names another holder: ${found.trim()}`;
    const [opened, named] = await Promise.all([handle.stat(), stat(file)]);
    if (opened.ino !== named.ino || opened.dev !== named.dev) {
      return `its lock file ${file} was replaced`;
    }
    await handle.write(bytes, 0, bytes.length, 0);
    return null;
  } catch {
    return undefined;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** Takes the data directory's lock, or throws `CliError` naming the process that holds it. */
export async function lockDataDir(
  dataDir: string,
  hooks: LockDataDirHooks = {},
): Promise<DataDirLock> {
  const file = path.join(dataDir, LOCK_FILE);
  const own = ownLock();
  // Unique per call: two starts in one process (tests) must not share a staging file.
  const staging = path.join(
    dataDir,
    `${LOCK_FILE}.${process.pid}.${randomBytes(6).toString('hex')}`,
  );
  await writeFile(staging, own, { mode: 0o600 });
  try {
    // A few rounds: each after a stale lock was removed (by this start or another one).
    for (let attempt = 0; attempt < 3; attempt++) {
      if (heldHere.has(file)) throw inUseHere(dataDir);
      try {
        await link(staging, file);
        heldHere.add(file);
        // The lease: a node elsewhere (another container on this volume) judges the lock by it.
        let held = true;
        const lose = (reason: string): void => {
          if (!held) return;
          held = false;
          clearInterval(renew);
          heldHere.delete(file);
          hooks.onLost?.(reason);
        };
        const renew = setInterval(() => {
          void renewLease(file, own).then((lost) => {
            if (!held || lost === undefined) return;
            if (lost === null) hooks.onLeaseRenewed?.();
            else lose(lost);
          });
        }, hooks.leaseRenewMs ?? LOCK_LEASE_RENEW_MS).unref();
        return {
          file,
          release: () => {
            held = false;
            clearInterval(renew);
            return release(file, own);
          },
          stillHeld: () => {
            if (!held) return false;
            const lost = lostNow(file, own);
            if (lost !== null) lose(lost);
            return held;
          },
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const found = await readLock(file);
      if (found === null) continue;
      const holder = parseHolder(found);
      const away = holder === null ? null : elsewhere(holder);
      if (holder !== null && away !== null) {
        const age = await leaseAgeMs(file);
        if (age === null) continue;
        // Renewed lately: a node there may run. Else it died there (its lease ran out).
        if (age <= LOCK_LEASE_MS) throw inUseElsewhere(dataDir, file, holder.pid, away, age);
      } else if (holder !== null && holderRunning(holder)) {
        if (holder.pid === process.pid && heldHere.has(file)) throw inUseHere(dataDir);
        if (holder.pid !== process.pid) throw inUseBy(dataDir, file, holder.pid);
      }
      // Stale: its process is gone (or it is this pid's, from before a restart, and not held).
      await hooks.beforeTakeover?.(file);
      await removeStaleLock(file, found, staging);
    }
    const last = parseHolder((await readLock(file)) ?? '');
    const away = last === null ? null : elsewhere(last);
    if (last !== null && away !== null) {
      throw inUseElsewhere(dataDir, file, last.pid, away, (await leaseAgeMs(file)) ?? 0);
    }
    const holder = last?.pid ?? null;
    throw new CliError(
      `data directory ${dataDir} was locked by process ${holder ?? 'unknown'} while this node started (lock file ${file})`,
      1,
    );
  } finally {
    await unlink(staging).catch(() => undefined);
  }
}

function inUseHere(dataDir: string): CliError {
  return new CliError(
    `data directory ${dataDir} is in use by this process (pid ${process.pid}): a node started from it is still running`,
    1,
  );
}

function inUseBy(dataDir: string, file: string, pid: number): CliError {
  return new CliError(
    `data directory ${dataDir} is in use by process ${pid} (lock file ${file}): stop that node first, or remove the file if pid ${pid} is not a HyperMesh node`,
    1,
  );
}

/** Where a holder elsewhere runs, for messages: `pid 1 on host h in PID namespace pid:[…]`. */
export function describeElsewhere(pid: number, away: HolderElsewhere): string {
  const where = [
    away.host === null ? null : `on host ${away.host}`,
    away.pidNamespace === null ? null : `in PID namespace ${away.pidNamespace}`,
  ].filter((part) => part !== null);
  return `pid ${pid} ${where.join(' ')}`;
}

function inUseElsewhere(
  dataDir: string,
  file: string,
  pid: number,
  away: HolderElsewhere,
  ageMs: number,
): CliError {
  const here = `host ${hostName() ?? 'unknown'}, PID namespace ${pidNamespace() ?? 'unknown'}`;
  const renewed = Math.max(0, Math.round(ageMs / 1000));
  const left = Math.max(1, Math.ceil((LOCK_LEASE_MS - ageMs) / 1000));
  return new CliError(
    `data directory ${dataDir} is in use by ${describeElsewhere(pid, away)} (lock file ${file}); this process runs on ${here}, where that pid says nothing about the holder (another container or machine sharing the directory), and the holder renewed its lease ${renewed} s ago: stop that node first; if it died, the lock is taken over once its lease is ${LOCK_LEASE_MS / 1000} s old (in ${left} s)`,
    1,
  );
}

/** Takeover claims this process holds (a pid alone cannot tell them from a dead claimer's). */
const claimsHere = new Set<string>();

/** At most this many claimers of one stale lock may have died in the middle of a takeover. */
const MAX_CLAIM_LEVELS = 16;

/**
 * Removes the lock file if it still holds `stale`. Reading and then unlinking is not atomic: two
 * starts that both read one stale lock would each unlink, the later one removing the lock the
 * earlier one had just taken, and both would run. So the right to remove one stale content is a
 * claim file named by that content's hash, created exclusively (hard link of the staging file,
 * which names this process): one start wins it, re-reads the lock under it and unlinks only the
 * stale content; the others see a live claimer and retry from the top, where they find the new
 * lock. Nothing else removes a stale content, and once gone it never comes back, so a claim won
 * after the takeover finds another content and removes nothing. A claim whose claimer died
 * (killed mid-takeover) is passed over to the next level (`.1`, `.2`, ...), whose creation is
 * again exclusive.
 */
async function removeStaleLock(file: string, stale: string, staging: string): Promise<void> {
  const tag = createHash('sha256').update(stale).digest('hex').slice(0, 16);
  for (let level = 0; level < MAX_CLAIM_LEVELS; level++) {
    const claim = `${file}.takeover.${tag}.${level}`;
    try {
      await link(staging, claim);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const text = await readLock(claim);
      // Gone: its claimer finished, and the stale lock with it. Retry from the top.
      if (text === null) return;
      const claimer = parseHolder(text);
      const live =
        claimer !== null &&
        holderRunning(claimer) &&
        (claimer.pid !== process.pid || claimsHere.has(claim));
      // A live start is taking it over: retry from the top, where its lock will be found.
      if (live) return;
      // Its claimer died in the middle of a takeover: the next level.
      continue;
    }
    claimsHere.add(claim);
    try {
      // A lock of this process's (its text can equal a stale one's) is never removed here.
      if ((await readLock(file)) === stale && !heldHere.has(file)) await unlink(file);
    } finally {
      claimsHere.delete(claim);
      await unlink(claim).catch(() => undefined);
    }
    return;
  }
}

/** The process that holds a data directory's lock. */
export interface DataDirLockHolder {
  readonly pid: number;
  /** Null for a process of this PID namespace on this host; else where its pid means it. */
  readonly elsewhere: HolderElsewhere | null;
}

/**
 * The running process that holds `dataDir`'s lock, or null when none does (no lock, or a stale
 * one). A lock of another PID namespace or host is always reported: it cannot be judged stale
 * from here. Tools that replace or rewrite a cluster directory ask this first.
 */
export async function dataDirLockHolder(dataDir: string): Promise<DataDirLockHolder | null> {
  const file = path.join(dataDir, LOCK_FILE);
  const text = await readLock(file).catch((error: unknown) => {
    // `dataDir` is a file, not a directory: no node runs from it.
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw error;
  });
  const holder = parseHolder(text ?? '');
  if (holder === null) return null;
  const away = elsewhere(holder);
  if (away !== null) return { pid: holder.pid, elsewhere: away };
  if (!holderRunning(holder)) return null;
  if (holder.pid === process.pid && !heldHere.has(file)) return null;
  return { pid: holder.pid, elsewhere: null };
}

async function release(file: string, own: string): Promise<void> {
  if (!heldHere.delete(file)) return;
  if ((await readLock(file)) === own) await unlink(file);
}
