import { randomBytes } from 'node:crypto';
import {
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
import type { Database } from 'better-sqlite3';
import {
  STORE_APPLICATION_ID,
  applicationId,
  claimNewStoreFile,
  copyDatabase,
  openDatabase,
  removeStoreFiles,
} from './database.js';
import { StorageError, StorageErrorCode, toStorageError } from './errors.js';
import { checkLatestStateAgainstHeader } from './integrity.js';
import type { HeaderStateRoot } from './integrity.js';
import { checkedSchemaVersion } from './migrate.js';
import { openStore } from './store.js';
import type { NodeStore, StoreOptions } from './store.js';
import { STORE_MIGRATIONS } from './store-migrations.js';

export interface RestoreOptions extends StoreOptions {
  /**
   * The state root a stored block's header commits to (consensus: `storedBlockStateRoot`).
   * Required: without it a snapshot whose state belongs to another height would restore.
   */
  readonly headerStateRoot: HeaderStateRoot;
  /** Run the full integrity check on the restored store before returning it (default true). */
  readonly verify?: boolean;
}

function notASnapshot(path: string, reason: string, detail: Record<string, unknown>): never {
  throw new StorageError(
    StorageErrorCode.NOT_A_SNAPSHOT,
    `${path} is not a snapshot of a node store: ${reason}`,
    { path, ...detail },
  );
}

/**
 * What must hold of the snapshot itself, read-only, before the target is created: a HyperMesh
 * store (application id, not merely an empty file SQLite would take as a database) with a
 * schema this code knows, holding at least one block, whose latest state is the one the
 * latest header commits to.
 */
function checkSnapshot(snapshot: Database, path: string, headerStateRoot: HeaderStateRoot): void {
  const id = applicationId(snapshot);
  if (id !== STORE_APPLICATION_ID) {
    notASnapshot(path, `application_id is ${id}, not HMSH`, { applicationId: id });
  }
  const version = checkedSchemaVersion(snapshot, STORE_MIGRATIONS, path);
  if (version < 1) notASnapshot(path, 'it has no schema', { schemaVersion: version });
  const blocks = Number(snapshot.prepare('SELECT count(*) FROM block').pluck().get());
  if (blocks < 1) notASnapshot(path, 'it holds no block', { blocks });
  checkLatestStateAgainstHeader(snapshot, headerStateRoot);
}

/** Marks the copy a restore checks before it takes the target's name: `<target>.restore-tmp-<hex>`. */
const TEMPORARY_MARK = '.restore-tmp-';
const SQLITE_COMPANIONS = ['-wal', '-shm', '-journal'];

/** Whether anything (a file, a directory, a link, even a dangling one) is at `path`. */
const present = (path: string): boolean => lstatSync(path, { throwIfNoEntry: false }) !== undefined;

function fileSystemFailure(error: unknown, context: string, path: string): StorageError {
  if (error instanceof StorageError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StorageError(
    StorageErrorCode.WRITE_FAILED,
    `${context}: ${message}`,
    { path, errno: (error as NodeJS.ErrnoException).code },
    { cause: error },
  );
}

/**
 * The target must not exist, and neither may SQLite files that would belong to it: a leftover
 * `-wal` next to a new file of the same name is applied to it by SQLite on open, with pages of
 * whatever database it came from. Those are an operator's to look at, so they are refused,
 * not removed.
 */
function refuseOccupiedTarget(targetPath: string): void {
  if (present(targetPath)) {
    throw new StorageError(StorageErrorCode.TARGET_EXISTS, `restore target ${targetPath} exists`, {
      path: targetPath,
    });
  }
  const stale = SQLITE_COMPANIONS.map((suffix) => `${targetPath}${suffix}`).filter(present);
  if (stale.length > 0) {
    throw new StorageError(
      StorageErrorCode.TARGET_EXISTS,
      `restore target ${targetPath} does not exist but SQLite files for it do (${stale.join(', ')}); SQLite would apply them to the restored store`,
      { path: targetPath, stale },
    );
  }
}

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
 * Copies left by a restore to the same target that was killed before it finished: a copy is
 * named `<target>.restore-tmp-<pid>-<random>` by the process making it, and only those of
 * processes that no longer run are removed, so two restores at once never delete each other's
 * copy (the later one to finish finds the target taken: TARGET_EXISTS).
 */
function removeStaleTemporaries(targetPath: string): void {
  const prefix = `${basename(targetPath)}${TEMPORARY_MARK}`;
  const directory = dirname(targetPath);
  for (const name of readdirSync(directory)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(/^([1-9][0-9]{0,9})-/.exec(name.slice(prefix.length))?.[1]);
    if (Number.isSafeInteger(pid) && processRuns(pid)) continue;
    rmSync(join(directory, name), { force: true });
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Gives the checked copy the target's name: a hard link, which fails rather than replaces when
 * something appeared at the target meanwhile (a rename would replace it), then the temporary
 * name is removed. The directory is fsynced so the new name survives a power cut.
 */
function publish(temporary: string, targetPath: string): void {
  try {
    linkSync(temporary, targetPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new StorageError(
        StorageErrorCode.TARGET_EXISTS,
        `restore target ${targetPath} appeared during the restore`,
        { path: targetPath },
      );
    }
    throw error;
  }
  unlinkSync(temporary);
  fsyncPath(dirname(targetPath));
}

/**
 * Restores a snapshot made by `NodeStore.backup` into a new store file at `targetPath` and
 * opens it. The snapshot is opened read-only and checked (`checkSnapshot`) before anything is
 * copied. The copy is made under a temporary name next to the target, migrated and checked
 * there, fsynced, and only then linked to `targetPath`, so the target never names an unchecked
 * copy: a process killed at any step leaves no target, and the next restore to the same
 * target removes its temporary files. The target must not exist (nor a `-wal`, `-shm` or
 * `-journal` for it), so a restore never overwrites a node's data; a restore that fails
 * removes what it created. Older schemas are migrated in the copy, never in the snapshot.
 */
export async function openStoreFromSnapshot(
  snapshotPath: string,
  targetPath: string,
  options: RestoreOptions,
): Promise<NodeStore> {
  if (typeof options?.headerStateRoot !== 'function') {
    throw new TypeError('openStoreFromSnapshot needs options.headerStateRoot');
  }
  refuseOccupiedTarget(targetPath);
  const snapshot = openDatabase(snapshotPath, { readonly: true });
  try {
    checkSnapshot(snapshot, snapshotPath, options.headerStateRoot);
  } catch (error) {
    snapshot.close();
    throw toStorageError(error, `cannot restore snapshot ${snapshotPath}`, snapshotPath);
  }
  const temporary = `${targetPath}${TEMPORARY_MARK}${process.pid}-${randomBytes(8).toString('hex')}`;
  try {
    try {
      removeStaleTemporaries(targetPath);
    } catch (error) {
      throw fileSystemFailure(
        error,
        `cannot clear old restore copies of ${targetPath}`,
        targetPath,
      );
    }
    claimNewStoreFile(temporary, 'restore');
  } catch (error) {
    snapshot.close();
    throw error;
  }
  try {
    try {
      await copyDatabase(snapshot, temporary);
    } finally {
      snapshot.close();
    }
    // `mustExist`: a copy removed meanwhile must not come back as a new, empty store.
    const copy = openStore(temporary, { ...options, readonly: false, mustExist: true });
    try {
      if (options.verify !== false) {
        copy.verifyIntegrity({ headerStateRoot: options.headerStateRoot });
      }
    } finally {
      // Closing the last connection checkpoints the copy's -wal into the file and removes it.
      copy.close();
    }
    if (present(`${temporary}-wal`)) {
      throw new StorageError(
        StorageErrorCode.WRITE_FAILED,
        `the restored copy ${temporary} kept a -wal file after closing`,
        { path: temporary },
      );
    }
    try {
      fsyncPath(temporary);
      publish(temporary, targetPath);
    } catch (error) {
      throw fileSystemFailure(error, `cannot move the restored copy to ${targetPath}`, targetPath);
    }
  } catch (error) {
    removeStoreFiles(temporary);
    throw toStorageError(error, `cannot restore snapshot ${snapshotPath}`, snapshotPath);
  }
  removeStoreFiles(temporary);
  try {
    return openStore(targetPath, options);
  } catch (error) {
    removeStoreFiles(targetPath);
    throw error;
  }
}
