import { existsSync } from 'node:fs';
import type { Database } from 'better-sqlite3';
import {
  STORE_APPLICATION_ID,
  applicationId,
  claimNewStoreFile,
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

/**
 * Restores a snapshot made by `NodeStore.backup` into a new store file at `targetPath` and
 * opens it. The snapshot is opened read-only and checked (`checkSnapshot`) before anything is
 * copied; the target must not exist, so a restore never overwrites a node's data, and a restore
 * that fails removes what it created. Older schemas are migrated after the copy, never in the
 * snapshot itself.
 */
export async function openStoreFromSnapshot(
  snapshotPath: string,
  targetPath: string,
  options: RestoreOptions,
): Promise<NodeStore> {
  if (typeof options?.headerStateRoot !== 'function') {
    throw new TypeError('openStoreFromSnapshot needs options.headerStateRoot');
  }
  if (existsSync(targetPath)) {
    throw new StorageError(StorageErrorCode.TARGET_EXISTS, `restore target ${targetPath} exists`, {
      path: targetPath,
    });
  }
  const snapshot = openDatabase(snapshotPath, { readonly: true });
  try {
    checkSnapshot(snapshot, snapshotPath, options.headerStateRoot);
  } catch (error) {
    snapshot.close();
    throw toStorageError(error, `cannot restore snapshot ${snapshotPath}`, snapshotPath);
  }
  try {
    claimNewStoreFile(targetPath, 'restore');
  } catch (error) {
    snapshot.close();
    throw error;
  }
  try {
    await snapshot.backup(targetPath);
  } catch (error) {
    removeStoreFiles(targetPath);
    throw toStorageError(error, `cannot restore snapshot ${snapshotPath}`, snapshotPath);
  } finally {
    snapshot.close();
  }
  let store: NodeStore | undefined;
  try {
    store = openStore(targetPath, options);
    if (options.verify !== false) {
      store.verifyIntegrity({ headerStateRoot: options.headerStateRoot });
    }
    return store;
  } catch (error) {
    store?.close();
    removeStoreFiles(targetPath);
    throw error;
  }
}
