import type { Database } from 'better-sqlite3';

/** One schema step of a component's own tables in a shared SQLite file. */
export interface PrefixedMigration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * Brings a component's tables (`<prefix>_*`, e.g. the CT log's `ct_` or the ACME server's
 * `acme_`) to the newest version, keeping their history in `<prefix>_schema_version`; each
 * step runs in its own immediate transaction and is skipped if another connection applied it
 * meanwhile. A recorded history that differs from `migrations` (another or newer code wrote the
 * file) is refused through `mismatch`, before anything is changed.
 */
export function migratePrefixedTables(
  db: Database,
  prefix: string,
  migrations: readonly PrefixedMigration[],
  mismatch: (message: string, detail: { version: number; name: string }) => Error,
): void {
  const table = `${prefix}_schema_version`;
  db.exec(`CREATE TABLE IF NOT EXISTS ${table} (
    version INTEGER PRIMARY KEY CHECK (version >= 1),
    name TEXT NOT NULL,
    applied_at_ms INTEGER NOT NULL
  ) STRICT`);
  const select = db.prepare(`SELECT version, name FROM ${table} ORDER BY version`);
  const check = (): number => {
    const rows = select.all() as Array<{ version: number; name: string }>;
    rows.forEach((row, i) => {
      const known = migrations[i];
      if (known === undefined || row.version !== i + 1 || row.name !== known.name) {
        throw mismatch(
          `${prefix} schema history differs at version ${i + 1} ("${row.name}"); this code knows ${migrations.length} versions`,
          { version: row.version, name: row.name },
        );
      }
    });
    return rows.length;
  };
  const record = db.prepare(`INSERT INTO ${table} (version, name, applied_at_ms) VALUES (?, ?, ?)`);
  for (const migration of migrations.slice(check())) {
    db.transaction(() => {
      if (check() >= migration.version) return;
      db.exec(migration.sql);
      record.run(migration.version, migration.name, Date.now());
    }).immediate();
  }
}
