import type { Database } from 'better-sqlite3';
import { StorageError, StorageErrorCode, toStorageError } from './errors.js';

/**
 * One schema step. Migrations are applied in order, each in its own transaction together with
 * the `schema_version` row that records it, so a crash or failure leaves the file at exactly the
 * previous version. Applied migrations are never edited: a change is always a new migration.
 */
export interface Migration {
  /** 1, 2, 3, ... with no gaps. */
  readonly version: number;
  /** Recorded with the version, so a file with a different history is recognised. */
  readonly name: string;
  readonly up: (db: Database) => void;
}

export interface MigrationOutcome {
  /** The schema version the file had when it was opened (0 for a fresh file). */
  readonly from: number;
  /** The schema version it has now. */
  readonly to: number;
}

const CREATE_VERSION_TABLE = `
  CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY CHECK (version >= 1),
    name TEXT NOT NULL,
    applied_at_ms INTEGER NOT NULL
  ) STRICT`;

interface VersionRow {
  readonly version: number;
  readonly name: string;
}

function checkMigrationList(migrations: readonly Migration[]): void {
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new RangeError(
        `migration list out of order: entry ${index} has version ${migration.version}, expected ${index + 1}`,
      );
    }
  });
}

function hasVersionTable(db: Database): boolean {
  const row = db
    .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'")
    .get();
  return row !== undefined;
}

function recordedVersions(db: Database): VersionRow[] {
  if (!hasVersionTable(db)) return [];
  return db
    .prepare('SELECT version, name FROM schema_version ORDER BY version')
    .all() as VersionRow[];
}

/**
 * The file's schema version after checking its recorded history against `migrations`: a
 * version this code does not know is `SCHEMA_TOO_NEW`; a gap or a differently named step is
 * `SCHEMA_MISMATCH`.
 */
export function checkedSchemaVersion(
  db: Database,
  migrations: readonly Migration[],
  path: string,
): number {
  const rows = recordedVersions(db);
  const latest = rows.at(-1)?.version ?? 0;
  if (latest > migrations.length) {
    throw new StorageError(
      StorageErrorCode.SCHEMA_TOO_NEW,
      `store schema version ${latest} is newer than this code knows (${migrations.length}); upgrade HyperMesh`,
      { path, fileVersion: latest, knownVersion: migrations.length },
    );
  }
  rows.forEach((row, index) => {
    const expected = migrations[index];
    if (row.version !== index + 1 || expected === undefined || row.name !== expected.name) {
      throw new StorageError(
        StorageErrorCode.SCHEMA_MISMATCH,
        `store schema history differs at version ${index + 1}: file has ${row.version} "${row.name}", code has "${expected?.name ?? 'nothing'}"`,
        { path, version: index + 1, fileName: row.name, codeName: expected?.name },
      );
    }
  });
  return latest;
}

/**
 * Brings the file up to the newest version in `migrations`. Each step runs in a `BEGIN
 * IMMEDIATE` transaction that re-reads the version first, so two processes opening one file at
 * once apply every step exactly once.
 */
export function migrate(
  db: Database,
  migrations: readonly Migration[],
  path: string,
): MigrationOutcome {
  checkMigrationList(migrations);
  const from = checkedSchemaVersion(db, migrations, path);
  if (from === migrations.length) return { from, to: from };
  db.exec(CREATE_VERSION_TABLE);
  const record = db.prepare(
    'INSERT INTO schema_version (version, name, applied_at_ms) VALUES (?, ?, ?)',
  );
  for (const migration of migrations.slice(from)) {
    const step = db.transaction(() => {
      const current = checkedSchemaVersion(db, migrations, path);
      if (current >= migration.version) return;
      migration.up(db);
      record.run(migration.version, migration.name, Date.now());
    });
    try {
      step.immediate();
    } catch (error) {
      const typed = toStorageError(error, `migration ${migration.version}`, path);
      if (
        typed instanceof StorageError &&
        (typed.code === StorageErrorCode.SCHEMA_TOO_NEW ||
          typed.code === StorageErrorCode.SCHEMA_MISMATCH ||
          typed.code === StorageErrorCode.BUSY)
      ) {
        throw typed;
      }
      throw new StorageError(
        StorageErrorCode.MIGRATION_FAILED,
        `migration ${migration.version} "${migration.name}" failed and was rolled back: ${(error as Error).message}`,
        { path, version: migration.version, name: migration.name },
        { cause: error },
      );
    }
  }
  return { from, to: migrations.length };
}
