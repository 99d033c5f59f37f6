import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isHyperMeshError } from '../../src/codec/error.js';
import type { HyperMeshError } from '../../src/codec/error.js';
import { STORE_APPLICATION_ID, openDatabase } from '../../src/storage/database.js';
import { StorageErrorCode } from '../../src/storage/errors.js';
import { migrate } from '../../src/storage/migrate.js';
import type { Migration } from '../../src/storage/migrate.js';
import { openStore } from '../../src/storage/store.js';
import { STORE_MIGRATIONS, STORE_SCHEMA_VERSION } from '../../src/storage/store-migrations.js';
import { EMPTY_STATE_ROOT } from '../../src/storage/state-proof.js';
import { changes, hex, nextBlock, temporaryDirectory } from './chain-fixture.js';

const storageError = (code: StorageErrorCode) => (error: unknown) => isHyperMeshError(error, code);

function versions(path: string): { version: number; name: string }[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT version, name FROM schema_version ORDER BY version').all() as {
      version: number;
      name: string;
    }[];
  } finally {
    db.close();
  }
}

describe('store schema migrations', () => {
  let dir: Awaited<ReturnType<typeof temporaryDirectory>>;
  before(async () => {
    dir = await temporaryDirectory('migrations');
  });
  after(() => dir.cleanup());

  it('creates a fresh store at the latest version with WAL, FULL sync and foreign keys', () => {
    const path = dir.file('fresh.db');
    const store = openStore(path);
    assert.equal(store.schemaVersion, STORE_SCHEMA_VERSION);
    assert.equal(store.blocks.latestHeight(), null);
    assert.deepEqual(store.state.root(), EMPTY_STATE_ROOT);
    store.close();
    assert.deepEqual(
      versions(path),
      STORE_MIGRATIONS.map(({ version, name }) => ({ version, name })),
    );
    const db = openDatabase(path);
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.pragma('synchronous', { simple: true }), 2, 'synchronous=FULL');
      assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
      assert.equal(db.pragma('application_id', { simple: true }), STORE_APPLICATION_ID);
    } finally {
      db.close();
    }
  });

  it('reopening an up-to-date store applies nothing', () => {
    const path = dir.file('reopen.db');
    openStore(path).close();
    const before = versions(path);
    const store = openStore(path);
    assert.equal(store.schemaVersion, STORE_SCHEMA_VERSION);
    store.close();
    assert.deepEqual(versions(path), before);
  });

  it('upgrades a version-1 file in place and keeps its blocks', () => {
    const path = dir.file('upgrade.db');
    const db = openDatabase(path);
    migrate(db, STORE_MIGRATIONS.slice(0, 1), path);
    const hash = new Uint8Array(32).fill(7);
    db.prepare(
      'INSERT INTO block (height, hash, parent_hash, time_ms, bytes) VALUES (1, ?, ?, 5, ?)',
    ).run(hash, new Uint8Array(32), new Uint8Array([1, 2, 3]));
    db.prepare('INSERT INTO block_commit (height, bytes) VALUES (1, ?)').run(new Uint8Array([9]));
    db.close();
    assert.deepEqual(
      versions(path).map((row) => row.version),
      [1],
    );

    const store = openStore(path);
    assert.equal(store.schemaVersion, STORE_SCHEMA_VERSION);
    assert.deepEqual(
      versions(path).map((row) => row.version),
      STORE_MIGRATIONS.map((migration) => migration.version),
    );
    assert.equal(hex(store.blocks.byHeight(1)?.hash ?? new Uint8Array()), hex(hash));
    assert.deepEqual(store.state.root(1), EMPTY_STATE_ROOT, 'old blocks get the empty state');
    store.saveBlock(nextBlock(store, { stateChanges: changes('upgraded', 3, 'v2') }));
    assert.equal(store.state.keyCount(), 3);
    assert.equal(store.verifyIntegrity().latestHeight, 2);
    store.close();
  });

  it('upgrades a version-2 file with blocks: they returned no validator updates', () => {
    const path = dir.file('upgrade-v2.db');
    const db = openDatabase(path);
    migrate(db, STORE_MIGRATIONS.slice(0, 2), path);
    db.close();
    // Two blocks as a version-2 store held them (no validator_update table yet).
    const v2 = openDatabase(path);
    for (const height of [1, 2]) {
      v2.prepare(
        'INSERT INTO block (height, hash, parent_hash, time_ms, bytes) VALUES (?, ?, ?, 5, ?)',
      ).run(
        height,
        new Uint8Array(32).fill(height),
        new Uint8Array(32).fill(height - 1),
        new Uint8Array([height]),
      );
      v2.prepare('INSERT INTO block_commit (height, bytes) VALUES (?, ?)').run(
        height,
        new Uint8Array([9]),
      );
      v2.prepare(
        'INSERT INTO state_root (height, root, root_id, key_count) VALUES (?, zeroblob(32), NULL, 0)',
      ).run(height);
    }
    v2.close();
    assert.deepEqual(
      versions(path).map((row) => row.version),
      [1, 2],
    );

    const store = openStore(path);
    assert.equal(store.schemaVersion, STORE_SCHEMA_VERSION);
    assert.deepEqual(versions(path).slice(2, 4), [
      { version: 3, name: 'validator-set updates per block' },
      { version: 4, name: 'transaction receipts and account history' },
    ]);
    assert.equal(store.blocks.validatorUpdatesAt(1), null);
    assert.deepEqual(store.blocks.validatorUpdatesRange(1, 2), []);
    store.saveBlock({ ...nextBlock(store), validatorUpdates: new Uint8Array([1, 2, 3]) });
    assert.deepEqual(store.blocks.validatorUpdatesRange(1, 3), [
      { height: 3, bytes: new Uint8Array([1, 2, 3]) },
    ]);
    // Blocks stored before version 4 have no receipts; later ones do.
    const txHash = new Uint8Array(32).fill(7);
    assert.equal(store.blocks.receipt(txHash), null);
    const account = new Uint8Array([1, 2]);
    store.saveBlock({
      ...nextBlock(store),
      receipts: [{ txHash, index: 0, bytes: new Uint8Array([5]), accounts: [account] }],
    });
    assert.deepEqual(store.blocks.receipt(txHash), {
      txHash,
      height: 4,
      index: 0,
      bytes: new Uint8Array([5]),
    });
    assert.deepEqual(store.blocks.accountHistory(account, null, 10), [
      { height: 4, index: 0, txHash },
    ]);
    assert.equal(store.verifyIntegrity().latestHeight, 4);
    store.close();
  });

  it('upgrades a version-4 file with blocks: an empty evidence pool, usable at once', () => {
    const path = dir.file('upgrade-v4.db');
    const db = openDatabase(path);
    migrate(db, STORE_MIGRATIONS.slice(0, 4), path);
    // A block as a version-4 store held it (no pending_evidence table yet).
    db.prepare(
      'INSERT INTO block (height, hash, parent_hash, time_ms, bytes) VALUES (1, ?, ?, 5, ?)',
    ).run(new Uint8Array(32).fill(1), new Uint8Array(32), new Uint8Array([1]));
    db.prepare('INSERT INTO block_commit (height, bytes) VALUES (1, ?)').run(new Uint8Array([9]));
    db.prepare(
      'INSERT INTO state_root (height, root, root_id, key_count) VALUES (1, zeroblob(32), NULL, 0)',
    ).run();
    db.close();
    assert.deepEqual(
      versions(path).map((row) => row.version),
      [1, 2, 3, 4],
    );

    const store = openStore(path);
    assert.equal(store.schemaVersion, 5);
    assert.deepEqual(versions(path).slice(4), [{ version: 5, name: 'pending evidence pool' }]);
    assert.deepEqual(store.pendingEvidence.list(), []);
    const pending = { key: new Uint8Array(32).fill(3), height: 1, bytes: new Uint8Array([4]) };
    store.pendingEvidence.put(pending);
    store.saveBlock(nextBlock(store));
    assert.equal(store.verifyIntegrity().latestHeight, 2);
    store.close();
    const reopened = openStore(path);
    assert.deepEqual(
      reopened.pendingEvidence.list().map((row) => [hex(row.key), row.height, hex(row.bytes)]),
      [[hex(pending.key), 1, '04']],
    );
    reopened.close();
  });

  it('refuses a file with a newer schema version and leaves it untouched', () => {
    const path = dir.file('newer.db');
    openStore(path).close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_version (version, name, applied_at_ms) VALUES (?, ?, 0)').run(
      STORE_SCHEMA_VERSION + 1,
      'from the future',
    );
    db.close();
    const before = versions(path);
    assert.throws(
      () => openStore(path),
      (error: unknown) =>
        storageError(StorageErrorCode.SCHEMA_TOO_NEW)(error) &&
        (error as HyperMeshError).detail.fileVersion === STORE_SCHEMA_VERSION + 1,
    );
    assert.throws(
      () => openStore(path, { readonly: true }),
      storageError(StorageErrorCode.SCHEMA_TOO_NEW),
    );
    assert.deepEqual(versions(path), before);
  });

  it('refuses a file whose migration history differs from the code', () => {
    const path = dir.file('mismatch.db');
    openStore(path).close();
    const db = new Database(path);
    db.prepare("UPDATE schema_version SET name = 'something else' WHERE version = 1").run();
    db.close();
    assert.throws(() => openStore(path), storageError(StorageErrorCode.SCHEMA_MISMATCH));
  });

  it('a read-only open of an outdated file asks for a migration instead of writing', () => {
    const path = dir.file('outdated.db');
    const db = openDatabase(path);
    migrate(db, STORE_MIGRATIONS.slice(0, 1), path);
    db.close();
    assert.throws(
      () => openStore(path, { readonly: true }),
      storageError(StorageErrorCode.SCHEMA_NEEDS_MIGRATION),
    );
    assert.deepEqual(
      versions(path).map((row) => row.version),
      [1],
    );
  });

  it('runs each migration in its own transaction: a failing step leaves the previous version', () => {
    const path = dir.file('generic.db');
    const steps: Migration[] = [
      { version: 1, name: 'create', up: (db) => db.exec('CREATE TABLE item (id INTEGER)') },
      {
        version: 2,
        name: 'add column',
        up: (db) => db.exec('ALTER TABLE item ADD COLUMN label TEXT'),
      },
      {
        version: 3,
        name: 'fails half way',
        up: (db) => {
          db.exec('CREATE TABLE half (id INTEGER)');
          throw new Error('disk on fire');
        },
      },
    ];
    const db = openDatabase(path);
    try {
      assert.deepEqual(migrate(db, steps.slice(0, 1), path), { from: 0, to: 1 });
      db.prepare('INSERT INTO item (id) VALUES (1)').run();
      assert.deepEqual(migrate(db, steps.slice(0, 2), path), { from: 1, to: 2 });
      assert.deepEqual(db.prepare('SELECT id, label FROM item').all(), [{ id: 1, label: null }]);
      assert.throws(
        () => migrate(db, steps, path),
        (error: unknown) =>
          storageError(StorageErrorCode.MIGRATION_FAILED)(error) &&
          /disk on fire/.test((error as Error).message),
      );
      const tables = db
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name = 'half'")
        .all();
      assert.deepEqual(tables, [], 'the failed step was rolled back');
      assert.equal(db.prepare('SELECT max(version) FROM schema_version').pluck().get(), 2);
    } finally {
      db.close();
    }
  });

  it('rejects a migration list with gaps', () => {
    const path = dir.file('gaps.db');
    const db = openDatabase(path);
    try {
      assert.throws(
        () => migrate(db, [{ version: 2, name: 'two', up: () => undefined }], path),
        RangeError,
      );
    } finally {
      db.close();
    }
  });
});
