import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isHyperMeshError } from '../../src/codec/error.js';
import { StorageErrorCode } from '../../src/storage/errors.js';
import { openStore } from '../../src/storage/store.js';
import { changes, hex, nextBlock, temporaryDirectory } from './chain-fixture.js';

const storageError = (code: StorageErrorCode) => (error: unknown) => isHyperMeshError(error, code);

describe('verifyIntegrity and SQLite damage', () => {
  let dir: Awaited<ReturnType<typeof temporaryDirectory>>;

  before(async () => {
    dir = await temporaryDirectory('integrity');
  });
  after(() => dir.cleanup());

  it('a flipped byte in the block-hash index, with the table row intact, is CORRUPT', () => {
    const path = dir.file('index-flip.db');
    const store = openStore(path);
    for (let i = 0; i < 5; i++) {
      store.saveBlock(nextBlock(store, { stateChanges: changes(`b${i}`, 3, 'v') }));
    }
    const hash = store.blocks.byHeight(1)!.hash;
    store.verifyIntegrity();
    store.close();

    // The index SQLite creates for `hash UNIQUE`: find the hash on its (single) page only.
    const raw = new Database(path, { readonly: true });
    const pageSize = Number(raw.pragma('page_size', { simple: true }));
    const { rootpage } = raw
      .prepare(
        "SELECT rootpage FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'block' AND sql IS NULL",
      )
      .get() as { rootpage: number };
    raw.close();
    const bytes = readFileSync(path);
    const pageStart = (rootpage - 1) * pageSize;
    const at = bytes.subarray(pageStart, pageStart + pageSize).indexOf(Buffer.from(hash));
    assert.ok(at >= 0, 'the hash is on the index page');
    bytes[pageStart + at + 31]! ^= 0x01;
    writeFileSync(path, bytes);

    const damaged = openStore(path);
    try {
      // What the damage does: the lookup by hash misses a stored block.
      assert.equal(damaged.blocks.byHash(hash), null);
      assert.equal(hex(damaged.blocks.byHeight(1)!.hash), hex(hash));
      assert.throws(
        () => damaged.verifyIntegrity(),
        (error: unknown) =>
          storageError(StorageErrorCode.CORRUPT)(error) &&
          /integrity_check/.test((error as Error).message),
      );
    } finally {
      damaged.close();
    }
  });
});
