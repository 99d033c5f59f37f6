import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { isHyperMeshError } from '../../src/codec/error.js';
import { StorageError, StorageErrorCode } from '../../src/storage/errors.js';
import { openStore } from '../../src/storage/store.js';
import { changes, nextBlock, temporaryDirectory, text } from './chain-fixture.js';

const storageError = (code: StorageErrorCode) => (error: unknown) => isHyperMeshError(error, code);

describe('opening bad files', () => {
  let dir: Awaited<ReturnType<typeof temporaryDirectory>>;
  let goodStore: string;

  before(async () => {
    dir = await temporaryDirectory('open-errors');
    goodStore = dir.file('good.db');
    const store = openStore(goodStore);
    for (let i = 0; i < 40; i++) {
      store.saveBlock(nextBlock(store, { stateChanges: changes(`block${i}`, 50, 'x') }));
    }
    store.close();
  });
  after(() => dir.cleanup());

  it('random bytes are NOT_A_DATABASE', () => {
    const path = dir.file('garbage.db');
    writeFileSync(path, Buffer.alloc(8192, 0xa5));
    assert.throws(() => openStore(path), storageError(StorageErrorCode.NOT_A_DATABASE));
  });

  it('a text file is NOT_A_DATABASE and is left as it was', () => {
    const path = dir.file('notes.txt');
    writeFileSync(path, 'these are not the blocks you are looking for\n'.repeat(20));
    const before = readFileSync(path);
    assert.throws(() => openStore(path), storageError(StorageErrorCode.NOT_A_DATABASE));
    assert.deepEqual(readFileSync(path), before);
  });

  it('a directory, a missing parent directory or a required missing file is CANNOT_OPEN', () => {
    const directory = dir.file('a-directory');
    mkdirSync(directory);
    assert.throws(() => openStore(directory), storageError(StorageErrorCode.CANNOT_OPEN));
    assert.throws(
      () => openStore(dir.file('no/such/dir/node.db')),
      storageError(StorageErrorCode.CANNOT_OPEN),
    );
    assert.throws(
      () => openStore(dir.file('missing.db'), { mustExist: true }),
      storageError(StorageErrorCode.CANNOT_OPEN),
    );
    assert.throws(
      () => openStore(dir.file('missing-too.db'), { readonly: true }),
      storageError(StorageErrorCode.CANNOT_OPEN),
    );
  });

  it("another application's SQLite database is FOREIGN_DATABASE and is not migrated", () => {
    const path = dir.file('foreign.db');
    const db = new Database(path);
    db.exec("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('ada')");
    db.close();
    assert.throws(() => openStore(path), storageError(StorageErrorCode.FOREIGN_DATABASE));
    const check = new Database(path, { readonly: true });
    const tables = check
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
      .pluck()
      .all();
    check.close();
    assert.deepEqual(tables, ['contacts']);

    const tagged = dir.file('tagged.db');
    const other = new Database(tagged);
    other.pragma('application_id = 12345');
    other.close();
    assert.throws(() => openStore(tagged), storageError(StorageErrorCode.FOREIGN_DATABASE));
  });

  it('a refused foreign database keeps its journal mode: no header change, no -wal file', () => {
    const path = dir.file('foreign-journal.db');
    const db = new Database(path);
    db.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')");
    db.close();
    const before = readFileSync(path);
    // File format write/read versions (https://www.sqlite.org/fileformat.html §1.3.3): 1 is
    // the rollback journal, 2 is WAL.
    assert.deepEqual([...before.subarray(18, 20)], [1, 1]);
    // A second connection keeps the file open, so a -wal file would outlive the refusal.
    const holder = new Database(path, { readonly: true });
    try {
      assert.throws(() => openStore(path), storageError(StorageErrorCode.FOREIGN_DATABASE));
      assert.equal(existsSync(`${path}-wal`), false);
    } finally {
      holder.close();
    }
    assert.deepEqual(readFileSync(path), before);
    assert.equal(existsSync(`${path}-wal`), false);
  });

  it('a truncated store is reported as CORRUPT, by opening or by the integrity check', () => {
    const path = dir.file('truncated.db');
    const bytes = readFileSync(goodStore);
    writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length / 3)));
    assert.throws(() => {
      const store = openStore(path);
      try {
        store.verifyIntegrity();
      } finally {
        store.close();
      }
    }, storageError(StorageErrorCode.CORRUPT));
  });

  it('damaged pages are found by the integrity check as CORRUPT', () => {
    const path = dir.file('damaged.db');
    copyFileSync(goodStore, path);
    const bytes = readFileSync(path);
    const pageSize = bytes.readUInt16BE(16);
    // Overwrite the middle of every page after the schema page, keeping the file header.
    for (let page = 2; page * pageSize < bytes.length; page++) {
      bytes.fill(0x5a, (page - 1) * pageSize + 200, (page - 1) * pageSize + 400);
    }
    writeFileSync(path, bytes);
    assert.throws(() => {
      const store = openStore(path);
      try {
        store.verifyIntegrity();
        for (let height = 1; height <= 40; height++)
          store.state.getWithProof(text(`block${height}/1`));
      } finally {
        store.close();
      }
    }, storageError(StorageErrorCode.CORRUPT));
  });

  it('an empty file becomes a store', () => {
    const path = dir.file('empty.db');
    writeFileSync(path, '');
    const store = openStore(path);
    assert.equal(store.blocks.latestHeight(), null);
    store.close();
    assert.ok(statSync(path).size > 0);
  });

  it('any file content gives a store or a StorageError, never another failure', () => {
    const header = Buffer.from('SQLite format 3\0', 'latin1');
    const good = readFileSync(goodStore);
    let index = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: 4096 }),
          fc
            .uint8Array({ minLength: 0, maxLength: 4096 })
            .map((tail) => Buffer.concat([header, tail])),
          fc
            .tuple(fc.nat({ max: good.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.nat(64))
            .map(([offset, value, run]) => {
              const copy = Buffer.from(good);
              copy.fill(value, offset, Math.min(copy.length, offset + run + 1));
              return copy;
            }),
        ),
        (content) => {
          const path = dir.file(`fuzz-${index++}.db`);
          writeFileSync(path, content);
          try {
            const store = openStore(path);
            try {
              store.verifyIntegrity();
              store.blocks.range(0, 1000, 1000);
            } finally {
              store.close();
            }
          } catch (error) {
            assert.ok(error instanceof StorageError, `unexpected ${String(error)}`);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a closed store refuses every call with CLOSED', () => {
    const store = openStore(dir.file('closed.db'));
    store.close();
    store.close();
    assert.throws(() => store.blocks.latestHeight(), storageError(StorageErrorCode.CLOSED));
    assert.throws(() => store.state.get(text('k')), storageError(StorageErrorCode.CLOSED));
    assert.throws(() => store.saveBlock(nextBlockless()), storageError(StorageErrorCode.CLOSED));
  });
});

/** A well-formed input for a closed store (nextBlock needs an open one). */
function nextBlockless() {
  const hash = new Uint8Array(32).fill(1);
  return {
    block: { height: 1, hash, parentHash: new Uint8Array(32), timeMs: 0, bytes: text('b') },
    commit: text('c'),
    evidence: [],
    stateChanges: [],
    stateRoot: new Uint8Array(32),
  };
}
