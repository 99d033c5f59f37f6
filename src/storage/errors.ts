import { HyperMeshError } from '../codec/error.js';

/** Everything the node store (SQLite) can refuse or report, as codes callers switch on. */
export enum StorageErrorCode {
  /** The path cannot be opened (missing directory, a directory, no permission). */
  CANNOT_OPEN = 'STORAGE_CANNOT_OPEN',
  /** The file exists but is not an SQLite database. */
  NOT_A_DATABASE = 'STORAGE_NOT_A_DATABASE',
  /** An SQLite database that belongs to some other application. */
  FOREIGN_DATABASE = 'STORAGE_FOREIGN_DATABASE',
  /** SQLite reports the file as malformed, or a store invariant does not hold. */
  CORRUPT = 'STORAGE_CORRUPT',
  /** The file was written by a newer HyperMesh whose schema this code does not know. */
  SCHEMA_TOO_NEW = 'STORAGE_SCHEMA_TOO_NEW',
  /** The recorded migration history differs from this code's migration list. */
  SCHEMA_MISMATCH = 'STORAGE_SCHEMA_MISMATCH',
  /** A read-only open of a file that still needs migrations. */
  SCHEMA_NEEDS_MIGRATION = 'STORAGE_SCHEMA_NEEDS_MIGRATION',
  /** A migration failed; it was rolled back and the file keeps its previous version. */
  MIGRATION_FAILED = 'STORAGE_MIGRATION_FAILED',
  /** Another connection holds the write lock longer than the busy timeout. */
  BUSY = 'STORAGE_BUSY',
  /** The disk is full or the write failed; the transaction was rolled back. */
  WRITE_FAILED = 'STORAGE_WRITE_FAILED',
  /** Any other SQLite failure; `detail.sqliteCode` names it. */
  SQLITE_FAILURE = 'STORAGE_SQLITE_FAILURE',
  /** A write to a store opened read-only. */
  READ_ONLY = 'STORAGE_READ_ONLY',
  /** The store was used after `close()`. */
  CLOSED = 'STORAGE_CLOSED',
  /** The block's height is not the next one after the latest stored block. */
  HEIGHT_NOT_NEXT = 'STORAGE_HEIGHT_NOT_NEXT',
  /** The block's parent hash is not the hash of the latest stored block. */
  PARENT_MISMATCH = 'STORAGE_PARENT_MISMATCH',
  /** A block with this hash is already stored (at another height). */
  DUPLICATE_BLOCK = 'STORAGE_DUPLICATE_BLOCK',
  /** This evidence was already included in an earlier block (or twice in one block). */
  DUPLICATE_EVIDENCE = 'STORAGE_DUPLICATE_EVIDENCE',
  /** One block's state changes name the same key twice, so their order would matter. */
  DUPLICATE_STATE_KEY = 'STORAGE_DUPLICATE_STATE_KEY',
  /** The state root computed from the changes is not the one the caller expected. */
  STATE_ROOT_MISMATCH = 'STORAGE_STATE_ROOT_MISMATCH',
  /** A read at a height the store does not hold. */
  UNKNOWN_HEIGHT = 'STORAGE_UNKNOWN_HEIGHT',
  /** A snapshot destination that already exists (snapshots never overwrite). */
  TARGET_EXISTS = 'STORAGE_TARGET_EXISTS',
  /**
   * A restore source that is not a HyperMesh store holding a chain: an empty file, a fresh
   * SQLite file, or a store without a schema or without a single block.
   */
  NOT_A_SNAPSHOT = 'STORAGE_NOT_A_SNAPSHOT',
  /** The state stored for the latest block is not the state that block's header commits to. */
  HEADER_STATE_MISMATCH = 'STORAGE_HEADER_STATE_MISMATCH',
}

export class StorageError extends HyperMeshError<StorageErrorCode> {}

/** The `code` better-sqlite3 puts on its `SqliteError` (e.g. `SQLITE_CORRUPT`), if any. */
function sqliteCode(error: unknown): string | undefined {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') {
    return error.code.startsWith('SQLITE_') ? error.code : undefined;
  }
  return undefined;
}

/** Primary result codes (https://www.sqlite.org/rescode.html) mapped to store error codes. */
const SQLITE_CODES: ReadonlyArray<readonly [string, StorageErrorCode]> = [
  ['SQLITE_NOTADB', StorageErrorCode.NOT_A_DATABASE],
  ['SQLITE_CORRUPT', StorageErrorCode.CORRUPT],
  ['SQLITE_CANTOPEN', StorageErrorCode.CANNOT_OPEN],
  ['SQLITE_PERM', StorageErrorCode.CANNOT_OPEN],
  ['SQLITE_AUTH', StorageErrorCode.CANNOT_OPEN],
  ['SQLITE_READONLY', StorageErrorCode.CANNOT_OPEN],
  ['SQLITE_BUSY', StorageErrorCode.BUSY],
  ['SQLITE_LOCKED', StorageErrorCode.BUSY],
  ['SQLITE_FULL', StorageErrorCode.WRITE_FAILED],
  ['SQLITE_IOERR', StorageErrorCode.WRITE_FAILED],
  ['SQLITE_CONSTRAINT', StorageErrorCode.WRITE_FAILED],
];

/**
 * Turns whatever SQLite (or better-sqlite3) threw into a `StorageError`, keeping the original as
 * `cause`. Errors that are already typed pass through unchanged.
 */
export function toStorageError(error: unknown, context: string, path?: string): Error {
  if (error instanceof HyperMeshError) return error;
  const code = sqliteCode(error);
  const message = error instanceof Error ? error.message : String(error);
  const detail = { context, ...(path === undefined ? {} : { path }), sqliteCode: code };
  if (code !== undefined) {
    // Extended codes (SQLITE_CORRUPT_INDEX, SQLITE_CONSTRAINT_TRIGGER, ...) share the prefix.
    const match = SQLITE_CODES.find(([prefix]) => code === prefix || code.startsWith(`${prefix}_`));
    return new StorageError(
      match?.[1] ?? StorageErrorCode.SQLITE_FAILURE,
      `${context}: ${message}`,
      detail,
      {
        cause: error,
      },
    );
  }
  if (error instanceof TypeError && /directory does not exist/.test(message)) {
    return new StorageError(StorageErrorCode.CANNOT_OPEN, `${context}: ${message}`, detail, {
      cause: error,
    });
  }
  return error instanceof Error ? error : new Error(message);
}
