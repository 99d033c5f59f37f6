import { statSync } from 'node:fs';
import type { Database } from 'better-sqlite3';
import { BlockTables } from './block-store.js';
import type {
  BlockReader,
  CommittedBlock,
  StoredBlock,
  StoredEvidence,
  TxPosition,
} from './block-store.js';
import {
  claimNewStoreFile,
  copyDatabase,
  openDatabase,
  present,
  publishCopy,
  removeStaleTemporaries,
  removeStoreFiles,
  temporaryCopyPath,
  useRollbackJournal,
} from './database.js';
import type { DatabaseOptions } from './database.js';
import { StorageError, StorageErrorCode, toStorageError } from './errors.js';
import { checkIntegrity } from './integrity.js';
import type { IntegrityOptions, IntegrityReport } from './integrity.js';
import {
  parseAccount,
  parseHash,
  parseHeight,
  parseSaveBlockInput,
  parseStateChanges,
  parseStateKey,
  parseUint,
} from './inputs.js';
import type { SaveBlockInput, StateChange } from './inputs.js';
import { checkedSchemaVersion, migrate } from './migrate.js';
import {
  PendingEvidenceTable,
  parsePendingEvidence,
  parsePendingEvidenceKeys,
} from './pending-evidence.js';
import type { PendingEvidence, PendingEvidenceStore } from './pending-evidence.js';
import { hashesEqual } from './state-proof.js';
import { StateTables } from './state-store.js';
import type { StateQueryResult, StateReader, StateWrite } from './state-store.js';
import type { StateWitness } from './state-witness.js';
import { STORE_MIGRATIONS } from './store-migrations.js';

/** Marks the copy a backup checks before it takes the target's name: `<target>.tmp-<pid>-<hex>`. */
const BACKUP_TEMPORARY_MARK = '.tmp-';

export interface StoreOptions extends DatabaseOptions {
  /** State tree nodes kept in memory (default 200,000, a few hundred bytes each). */
  readonly stateNodeCacheSize?: number;
}

export interface SavedBlock {
  readonly height: number;
  readonly stateRoot: Uint8Array;
  readonly stateKeys: number;
}

export interface StoreFileSizes {
  /** The main database file. */
  readonly database: number;
  /** SQLite's -wal file (committed pages not yet checkpointed into the database). */
  readonly wal: number;
}

/**
 * One node's durable store: blocks, commits, evidence, the application state and the evidence
 * pool's pending offences.
 */
export interface NodeStore {
  readonly path: string;
  readonly readonly: boolean;
  readonly schemaVersion: number;
  readonly blocks: BlockReader;
  readonly state: StateReader;
  /** Evidence the consensus evidence pool holds until a block includes it (survives restarts). */
  readonly pendingEvidence: PendingEvidenceStore;
  /**
   * Writes a committed block, its quorum certificate, the evidence it includes, its state
   * changes, its validator updates (when any) and its transactions' receipts (when given) in one transaction, and returns once that transaction is fsynced: afterwards the
   * whole block survives a crash or power loss; if it throws, nothing of it was written.
   * The state root computed from the changes must equal `stateRoot`.
   */
  saveBlock(input: SaveBlockInput): SavedBlock;
  /**
   * The state witness for re-executing a block on top of version `height` (0: the empty state
   * before block 1) that read `readKeys` and made `changes` (state-witness.ts), and the root
   * after those changes. Writes nothing; throws `UNKNOWN_HEIGHT` for a version it does not hold.
   */
  stateWitness(
    height: number,
    readKeys: readonly Uint8Array[],
    changes: readonly StateChange[],
  ): { witness: StateWitness; rootAfter: Uint8Array };
  /**
   * An online, consistent copy of the store (SQLite backup API) at `toPath`, which must not
   * exist: one file in rollback journal mode, which a read-only open leaves untouched. The copy
   * is made under `<toPath>.tmp-<pid>-<random>`, checked (`verifyIntegrity(check)`) and only
   * then linked to `toPath`, so `toPath` never names a partial or unchecked copy; the report is
   * the copy's.
   */
  backup(toPath: string, check?: IntegrityOptions): Promise<IntegrityReport>;
  /**
   * Full consistency check; throws `CORRUPT` at the first violation. With `headerStateRoot`
   * (block bytes are opaque here), the latest state root must also be the one the latest
   * block's header commits to, or `HEADER_STATE_MISMATCH`.
   */
  verifyIntegrity(options?: IntegrityOptions): IntegrityReport;
  fileSizes(): StoreFileSizes;
  close(): void;
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

class SqliteNodeStore implements NodeStore {
  readonly blocks: BlockReader;
  readonly state: StateReader;
  readonly pendingEvidence: PendingEvidenceStore;
  private readonly blockTables: BlockTables;
  private readonly stateTables: StateTables;
  private readonly pendingTable: PendingEvidenceTable;
  private closed = false;

  constructor(
    private readonly db: Database,
    readonly path: string,
    readonly readonly: boolean,
    readonly schemaVersion: number,
    stateNodeCacheSize: number | undefined,
  ) {
    this.blockTables = new BlockTables(db);
    this.stateTables = new StateTables(db, {
      writer: !readonly,
      nodeCacheSize: stateNodeCacheSize,
    });
    this.pendingTable = new PendingEvidenceTable(db);
    this.blocks = this.guardedBlocks();
    this.state = this.guardedState();
    this.pendingEvidence = this.guardedPendingEvidence();
  }

  /** Runs one store operation: refused after close, SQLite failures turned into typed errors. */
  private guard<T>(context: string, operation: () => T): T {
    if (this.closed) {
      throw new StorageError(StorageErrorCode.CLOSED, `${context}: the store is closed`, {
        path: this.path,
      });
    }
    try {
      return operation();
    } catch (error) {
      throw toStorageError(error, context, this.path);
    }
  }

  private guardedBlocks(): BlockReader {
    const tables = this.blockTables;
    const height = (value: number): number => parseUint(value, 'height');
    return {
      latestHeight: () => this.guard('latestHeight', () => tables.latestHeight()),
      earliestHeight: () => this.guard('earliestHeight', () => tables.earliestHeight()),
      byHeight: (h: number): StoredBlock | null =>
        this.guard('block by height', () => tables.byHeight(height(h))),
      byHash: (hash: Uint8Array): StoredBlock | null =>
        this.guard('block by hash', () => tables.byHash(parseHash(hash))),
      commitAt: (h: number) => this.guard('commit', () => tables.commitAt(height(h))),
      range: (from: number, to: number, limit?: number): CommittedBlock[] =>
        this.guard('block range', () =>
          tables.range(
            parseUint(from, 'fromHeight'),
            parseUint(to, 'toHeight'),
            limit === undefined ? undefined : parseUint(limit, 'limit'),
          ),
        ),
      evidence: (hash: Uint8Array): StoredEvidence | null =>
        this.guard('evidence', () => tables.evidence(parseHash(hash))),
      evidenceAt: (h: number) =>
        this.guard('evidence at height', () => tables.evidenceAt(height(h))),
      validatorUpdatesAt: (h: number) =>
        this.guard('validator updates', () => tables.validatorUpdatesAt(height(h))),
      validatorUpdatesRange: (from: number, to: number, maxBytes?: number) =>
        this.guard('validator updates range', () =>
          tables.validatorUpdatesRange(
            parseUint(from, 'fromHeight'),
            parseUint(to, 'toHeight'),
            maxBytes === undefined ? undefined : parseUint(maxBytes, 'maxBytes'),
          ),
        ),
      receipt: (txHash: Uint8Array) =>
        this.guard('receipt', () => tables.receipt(parseHash(txHash))),
      accountHistory: (account: Uint8Array, before: TxPosition | null, limit: number) =>
        this.guard('account history', () =>
          tables.accountHistory(
            parseAccount(account),
            before === null
              ? null
              : {
                  height: parseUint(before.height, 'height'),
                  index: parseUint(before.index, 'index'),
                },
            parseUint(limit, 'limit'),
          ),
        ),
    };
  }

  private guardedState(): StateReader {
    const tables = this.stateTables;
    return {
      root: (height?: number) => this.guard('state root', () => tables.root(parseHeight(height))),
      keyCount: (height?: number) =>
        this.guard('state key count', () => tables.keyCount(parseHeight(height))),
      get: (key: Uint8Array, height?: number) =>
        this.guard('state get', () => tables.get(parseStateKey(key), parseHeight(height))),
      getWithProof: (key: Uint8Array, height?: number): StateQueryResult =>
        this.guard('state getWithProof', () =>
          tables.getWithProof(parseStateKey(key), parseHeight(height)),
        ),
      computeRoot: (changes: readonly StateChange[]) =>
        this.guard('state computeRoot', () => tables.computeRoot(parseStateChanges(changes))),
    };
  }

  /** Inputs are checked before anything is written; a read-only store refuses writes. */
  private guardedPendingEvidence(): PendingEvidenceStore {
    const table = this.pendingTable;
    const writable = (operation: string): void => {
      if (this.readonly) {
        throw new StorageError(StorageErrorCode.READ_ONLY, `${operation} on a read-only store`, {
          path: this.path,
        });
      }
    };
    return {
      put: (entry: PendingEvidence) =>
        this.guard('put pending evidence', () => {
          writable('put pending evidence');
          table.put(parsePendingEvidence(entry));
        }),
      delete: (keys: readonly Uint8Array[]) =>
        this.guard('delete pending evidence', () => {
          writable('delete pending evidence');
          return table.delete(parsePendingEvidenceKeys(keys));
        }),
      list: () => this.guard('list pending evidence', () => table.list()),
    };
  }

  stateWitness(
    height: number,
    readKeys: readonly Uint8Array[],
    changes: readonly StateChange[],
  ): { witness: StateWitness; rootAfter: Uint8Array } {
    return this.guard('state witness', () =>
      this.stateTables.witness(
        parseUint(height, 'height'),
        readKeys.map((key) => parseStateKey(key)),
        parseStateChanges(changes),
      ),
    );
  }

  saveBlock(input: SaveBlockInput): SavedBlock {
    return this.guard('saveBlock', () => {
      if (this.readonly) {
        throw new StorageError(StorageErrorCode.READ_ONLY, 'saveBlock on a read-only store', {
          path: this.path,
        });
      }
      const { block, commit, evidence, stateChanges, stateRoot, validatorUpdates, receipts } =
        parseSaveBlockInput(input);
      const write = this.db.transaction((): StateWrite => {
        this.blockTables.append(block, commit, evidence, validatorUpdates, receipts);
        // Plan on the latest version as SQLite has it under the write lock, not on a copy.
        this.stateTables.forgetLatest();
        const planned = this.stateTables.plan(stateChanges);
        const computed = planned.update.root.hash;
        if (!hashesEqual(computed, stateRoot)) {
          throw new StorageError(
            StorageErrorCode.STATE_ROOT_MISMATCH,
            `state root after block ${block.height} is not the expected one`,
            {
              height: block.height,
              expected: Buffer.from(stateRoot).toString('hex'),
              computed: Buffer.from(computed).toString('hex'),
            },
          );
        }
        this.stateTables.write(block.height, planned);
        return planned;
      });
      // IMMEDIATE takes the write lock up front, so the chain checks and the writes see one
      // state. With synchronous=FULL the commit has been fsynced when this returns.
      let planned: StateWrite;
      try {
        planned = write.immediate();
      } catch (error) {
        // Rolled back, or a COMMIT that failed without saying whether it happened: the next
        // read takes the latest version from SQLite.
        this.stateTables.forgetLatest();
        throw error;
      }
      this.stateTables.committed(block.height, planned);
      return {
        height: block.height,
        stateRoot: planned.update.root.hash.slice(),
        stateKeys: planned.keyCount,
      };
    });
  }

  async backup(toPath: string, check: IntegrityOptions = {}): Promise<IntegrityReport> {
    const temporary = temporaryCopyPath(toPath, BACKUP_TEMPORARY_MARK);
    this.guard('backup', () => {
      if (present(toPath)) {
        throw new StorageError(StorageErrorCode.TARGET_EXISTS, `backup target ${toPath} exists`, {
          path: toPath,
        });
      }
      removeStaleTemporaries(toPath, BACKUP_TEMPORARY_MARK);
      claimNewStoreFile(temporary, 'backup');
    });
    try {
      await copyDatabase(this.db, temporary);
      useRollbackJournal(temporary);
      const copy = openStore(temporary, { readonly: true, mustExist: true });
      let report: IntegrityReport;
      try {
        report = copy.verifyIntegrity(check);
      } finally {
        copy.close();
      }
      publishCopy(temporary, toPath, 'backup');
      return report;
    } catch (error) {
      // This process created the temporary copy (claimed above): remove it, whatever failed.
      removeStoreFiles(temporary);
      throw toStorageError(error, `backup to ${toPath}`, this.path);
    }
  }

  verifyIntegrity(options: IntegrityOptions = {}): IntegrityReport {
    return this.guard('verifyIntegrity', () => {
      // Check the latest version SQLite holds, not the copy in memory.
      this.stateTables.forgetLatest();
      return checkIntegrity(this.db, this.stateTables, options);
    });
  }

  fileSizes(): StoreFileSizes {
    return this.guard('fileSizes', () => ({
      database: fileSize(this.path),
      wal: fileSize(`${this.path}-wal`),
    }));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

/**
 * Opens the node store at `path` (creating it unless `mustExist` or `readonly`), applies any
 * pending schema migrations, and returns it. Fails with a `StorageError`: `CANNOT_OPEN`,
 * `NOT_A_DATABASE`, `FOREIGN_DATABASE`, `CORRUPT`, `SCHEMA_TOO_NEW`, `SCHEMA_MISMATCH`,
 * `SCHEMA_NEEDS_MIGRATION` (read-only and out of date), `MIGRATION_FAILED` or `BUSY`.
 */
export function openStore(path: string, options: StoreOptions = {}): NodeStore {
  const cacheSize = options.stateNodeCacheSize;
  if (cacheSize !== undefined && !(Number.isSafeInteger(cacheSize) && cacheSize >= 0)) {
    throw new RangeError(`stateNodeCacheSize must be a non-negative integer, got ${cacheSize}`);
  }
  const db = openDatabase(path, options);
  try {
    const readonly = options.readonly === true;
    let version: number;
    if (readonly) {
      version = checkedSchemaVersion(db, STORE_MIGRATIONS, path);
      if (version < STORE_MIGRATIONS.length) {
        throw new StorageError(
          StorageErrorCode.SCHEMA_NEEDS_MIGRATION,
          `store schema version ${version} needs migrating to ${STORE_MIGRATIONS.length}; open it writable once`,
          { path, fileVersion: version, knownVersion: STORE_MIGRATIONS.length },
        );
      }
    } else {
      version = migrate(db, STORE_MIGRATIONS, path).to;
    }
    return new SqliteNodeStore(db, path, readonly, version, options.stateNodeCacheSize);
  } catch (error) {
    db.close();
    throw toStorageError(error, `cannot open store ${path}`, path);
  }
}
