import { existsSync } from 'node:fs';
import { claimNewStoreFile, openDatabase, removeStoreFiles } from './database.js';
import { StorageError, StorageErrorCode, toStorageError } from './errors.js';
import { checkedSchemaVersion } from './migrate.js';
import { openStore } from './store.js';
import type { NodeStore, StoreOptions } from './store.js';
import { STORE_MIGRATIONS } from './store-migrations.js';

export interface RestoreOptions extends StoreOptions {
  /** Run the full integrity check on the restored store before returning it (default true). */
  readonly verify?: boolean;
}

/**
 * Restores a snapshot made by `NodeStore.backup` into a new store file at `targetPath` and
 * opens it. The snapshot is opened read-only and checked (a HyperMesh store, a schema this code
 * knows) before anything is copied; the target must not exist, so a restore never overwrites a
 * node's data, and a restore that fails removes what it created. Older schemas are migrated
 * after the copy, never in the snapshot itself.
 */
export async function openStoreFromSnapshot(
  snapshotPath: string,
  targetPath: string,
  options: RestoreOptions = {},
): Promise<NodeStore> {
  if (existsSync(targetPath)) {
    throw new StorageError(StorageErrorCode.TARGET_EXISTS, `restore target ${targetPath} exists`, {
      path: targetPath,
    });
  }
  const snapshot = openDatabase(snapshotPath, { readonly: true });
  try {
    checkedSchemaVersion(snapshot, STORE_MIGRATIONS, snapshotPath);
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
    if (options.verify !== false) store.verifyIntegrity();
    return store;
  } catch (error) {
    store?.close();
    removeStoreFiles(targetPath);
    throw error;
  }
}
