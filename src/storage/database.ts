import { randomBytes } from 'node:crypto';
import {
  chownSync,
  closeSync,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  readdirSync,
  rmSync,
  unlinkSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import type { Database as SqliteDatabase } from 'better-sqlite3';
import { StorageError, StorageErrorCode, toStorageError } from './errors.js';

/**
 * `PRAGMA application_id` of a HyperMesh store ("HMSH"), written into the SQLite header so a
 * store is told apart from any other SQLite file (https://www.sqlite.org/fileformat.html §1.3.21).
 */
export const STORE_APPLICATION_ID = 0x484d5348;

export interface DatabaseOptions {
  /** Open without writing: no journal-mode change, no migrations. */
  readonly readonly?: boolean;
  /** Refuse to create a new file. */
  readonly mustExist?: boolean;
  /** How long a writer waits for another connection's lock before `BUSY`. */
  readonly busyTimeoutMs?: number;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

/**
 * Connection settings (https://www.sqlite.org/pragma.html):
 * - WAL journal: readers never block the writer and a commit appends to one file.
 * - `synchronous=FULL`: in WAL mode the WAL is fsynced at every commit, so a transaction that
 *   returned survives power loss. NORMAL only syncs at checkpoints: a committed block could
 *   vanish after a power cut although the node already voted on the next one (docs/storage.md).
 * - `foreign_keys=ON`: commits, evidence and state rows must point at a stored block.
 * - `journal_size_limit`: the -wal file is truncated back to 64 MiB after a checkpoint.
 */
function configure(db: SqliteDatabase, readonly: boolean): void {
  if (!readonly) {
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') {
      throw new StorageError(
        StorageErrorCode.CANNOT_OPEN,
        `cannot switch the store to WAL journal mode (got ${String(mode)})`,
        { path: db.name, journalMode: mode },
      );
    }
    db.pragma('journal_size_limit = 67108864');
  }
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
}

/** The `application_id` in the file's header (0 for a fresh file). */
export function applicationId(db: SqliteDatabase): number {
  return Number(db.pragma('application_id', { simple: true }));
}

function checkApplicationId(db: SqliteDatabase, readonly: boolean): void {
  const id = applicationId(db);
  if (id === STORE_APPLICATION_ID) return;
  const objects = Number(db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get());
  if (id === 0 && objects === 0) {
    // A fresh (empty) file becomes a HyperMesh store; a read-only open leaves it alone.
    if (!readonly) db.pragma(`application_id = ${STORE_APPLICATION_ID}`);
    return;
  }
  throw new StorageError(
    StorageErrorCode.FOREIGN_DATABASE,
    `${db.name} is an SQLite database of another application (application_id ${id}, ${objects} schema objects)`,
    { path: db.name, applicationId: id, objects },
  );
}

/**
 * Opens (or creates) an SQLite file as a HyperMesh store connection. Every failure — a
 * directory, a missing parent, a non-SQLite file, a malformed header, another application's
 * database — becomes a `StorageError` and the connection is closed again.
 */
export function openDatabase(path: string, options: DatabaseOptions = {}): SqliteDatabase {
  const readonly = options.readonly === true;
  let db: SqliteDatabase | undefined;
  try {
    db = new Database(path, {
      readonly,
      fileMustExist: readonly || options.mustExist === true,
      timeout: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
    });
    // Identify the file before configuring it: switching the journal mode rewrites the header
    // (bytes 18-19) and creates a -wal file, which another application's database must not get.
    checkApplicationId(db, readonly);
    configure(db, readonly);
    return db;
  } catch (error) {
    db?.close();
    throw toStorageError(error, `cannot open store ${path}`, path);
  }
}

/** Pages the first step of `copyDatabase` copies; each later step copies twice as many. */
const FIRST_COPY_PAGES = 100;

/**
 * Copies `db` to the file at `toPath` with SQLite's online backup API
 * (https://www.sqlite.org/backup.html), as one consistent point in time. A write by another
 * connection between two steps restarts the copy from the first page, so at a fixed number of
 * pages per step a store larger than one step never finishes while a node commits a block
 * between every two steps. The step doubles instead: a step that copies every page in one go
 * (under one read transaction, which in WAL mode does not hold the writer up) comes after
 * O(log pages) steps, and the small steps before it keep the event loop turning for a store
 * that is small or not written meanwhile.
 */
export async function copyDatabase(db: SqliteDatabase, toPath: string): Promise<void> {
  let pages = FIRST_COPY_PAGES;
  await db.backup(toPath, {
    progress: () => {
      pages = Math.min(pages * 2, 0x7fffffff);
      return pages;
    },
  });
}

/**
 * Puts the store file at `path` (a copy this process just made, which nothing else has open) in
 * rollback (DELETE) journal mode. The backup API copies page 1 as it is, so a copy of a store
 * in WAL mode says "WAL" in its header (bytes 18-19), and SQLite then creates `-wal` and `-shm`
 * files beside it whenever it is opened, even read-only, and cannot open it at all where it may
 * not create them (read-only media, a read-only directory). In DELETE mode a read-only open
 * writes nothing: the copy is one self-contained file. Opening it writable as a store
 * (`openStore`) switches it back to WAL.
 */
export function useRollbackJournal(path: string): void {
  const db = new Database(path, { fileMustExist: true });
  try {
    const mode = db.pragma('journal_mode = DELETE', { simple: true });
    if (mode !== 'delete') {
      throw new StorageError(
        StorageErrorCode.WRITE_FAILED,
        `cannot switch ${path} to the DELETE journal mode (got ${String(mode)})`,
        { path, journalMode: mode },
      );
    }
  } finally {
    db.close();
  }
}

/** Removes a store file that this process created, with SQLite's companion files. */
export function removeStoreFiles(path: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal'])
    rmSync(`${path}${suffix}`, { force: true });
}

/**
 * Creates `path` as a new, empty file (O_CREAT | O_EXCL, mode 0600) for a backup or restore to
 * copy into, or throws `TARGET_EXISTS`. Unlike an existence check before SQLite opens the path,
 * nothing can appear in between, and a symbolic link at `path` — even a dangling one — is
 * refused rather than followed. SQLite takes an empty file as an empty database.
 */
export function claimNewStoreFile(path: string, what: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new StorageError(StorageErrorCode.TARGET_EXISTS, `${what} target ${path} exists`, {
        path,
      });
    }
    throw toStorageError(error, `cannot create ${what} target ${path}`, path);
  }
  closeSync(fd);
}

/** Whether anything (a file, a directory, a link, even a dangling one) is at `path`. */
export const present = (path: string): boolean =>
  lstatSync(path, { throwIfNoEntry: false }) !== undefined;

/** Whether process `pid` runs (EPERM: it does, under another user). */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The name a backup or restore copies to before the copy is checked and linked to `targetPath`:
 * `<target><mark><pid>-<random>`, next to the target (a hard link cannot cross file systems).
 */
export function temporaryCopyPath(targetPath: string, mark: string): string {
  return `${targetPath}${mark}${process.pid}-${randomBytes(8).toString('hex')}`;
}

/**
 * Copies (and their SQLite companions) left by a backup or restore to the same target that was
 * killed before it finished: only those of processes that no longer run are removed, so two
 * copies to one target at once never delete each other's (the later to finish finds the target
 * taken: TARGET_EXISTS).
 */
export function removeStaleTemporaries(targetPath: string, mark: string): void {
  const prefix = `${basename(targetPath)}${mark}`;
  const directory = dirname(targetPath);
  for (const name of readdirSync(directory)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(/^([1-9][0-9]{0,9})-/.exec(name.slice(prefix.length))?.[1]);
    if (Number.isSafeInteger(pid) && processRuns(pid)) continue;
    rmSync(join(directory, name), { force: true });
  }
}

export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Who is to own a file a backup or restore creates (a restore run as root for another user). */
export interface FileOwner {
  readonly uid: number;
  readonly gid: number;
}

/**
 * Gives the checked copy `temporary` the name `targetPath`: the copy is fsynced (and first given
 * to `owner`, if set), then hard-linked, which fails rather than replaces when something appeared
 * at the target meanwhile (a rename would replace it), then the temporary name is removed and
 * the directory fsynced so the new name survives a power cut. `what` names the operation in a
 * `TARGET_EXISTS`.
 */
export function publishCopy(
  temporary: string,
  targetPath: string,
  what: string,
  owner?: FileOwner,
): void {
  if (owner !== undefined) chownSync(temporary, owner.uid, owner.gid);
  fsyncPath(temporary);
  try {
    linkSync(temporary, targetPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new StorageError(
        StorageErrorCode.TARGET_EXISTS,
        `${what} target ${targetPath} appeared during the ${what}`,
        { path: targetPath },
      );
    }
    throw error;
  }
  unlinkSync(temporary);
  fsyncPath(dirname(targetPath));
}
