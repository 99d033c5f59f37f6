import type { Database } from 'better-sqlite3';
import {
  STORE_APPLICATION_ID,
  applicationId,
  claimNewStoreFile,
  copyDatabase,
  openDatabase,
  present,
  publishCopy,
  removeStaleTemporaries,
  removeStoreFiles,
  temporaryCopyPath,
} from './database.js';
import type { FileOwner } from './database.js';
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
  /**
   * Checks the parent hash of the snapshot's block 1 before anything is written, and throws to
   * refuse the snapshot (consensus: block 1's parent is the genesis hash, so a snapshot of
   * another chain is refused here rather than by the node at its next start).
   */
  readonly checkChainStart?: (firstParentHash: Uint8Array) => void;
  /**
   * Who is to own the restored file (a restore run as root into the data directory of a node
   * that runs as another user): the copy is given to them before it takes the target's name.
   */
  readonly owner?: FileOwner;
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
 * schema this code knows, holding at least one block, whose block 1 follows the parent
 * `options.checkChainStart` accepts, and whose latest state is the one the latest header
 * commits to.
 */
function checkSnapshot(snapshot: Database, path: string, options: RestoreOptions): void {
  const id = applicationId(snapshot);
  if (id !== STORE_APPLICATION_ID) {
    notASnapshot(path, `application_id is ${id}, not HMSH`, { applicationId: id });
  }
  const version = checkedSchemaVersion(snapshot, STORE_MIGRATIONS, path);
  if (version < 1) notASnapshot(path, 'it has no schema', { schemaVersion: version });
  const blocks = Number(snapshot.prepare('SELECT count(*) FROM block').pluck().get());
  if (blocks < 1) notASnapshot(path, 'it holds no block', { blocks });
  if (options.checkChainStart !== undefined) {
    const first = snapshot
      .prepare('SELECT parent_hash FROM block WHERE height = 1')
      .pluck()
      .get() as Buffer | undefined;
    if (first === undefined) notASnapshot(path, 'it holds no block 1', {});
    options.checkChainStart(new Uint8Array(first));
  }
  checkLatestStateAgainstHeader(snapshot, options.headerStateRoot);
}

/** Marks the copy a restore checks before it takes the target's name: `<target>.restore-tmp-<hex>`. */
const TEMPORARY_MARK = '.restore-tmp-';
const SQLITE_COMPANIONS = ['-wal', '-shm', '-journal'];

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
    checkSnapshot(snapshot, snapshotPath, options);
  } catch (error) {
    snapshot.close();
    throw toStorageError(error, `cannot restore snapshot ${snapshotPath}`, snapshotPath);
  }
  const temporary = temporaryCopyPath(targetPath, TEMPORARY_MARK);
  try {
    try {
      removeStaleTemporaries(targetPath, TEMPORARY_MARK);
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
      publishCopy(temporary, targetPath, 'restore', options.owner);
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
