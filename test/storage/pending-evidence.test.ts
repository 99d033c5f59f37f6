import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isHyperMeshError } from '../../src/codec/error.js';
import { SchemaErrorCode } from '../../src/codec/schema.js';
import { StorageErrorCode } from '../../src/storage/errors.js';
import { MAX_PENDING_EVIDENCE_BYTES } from '../../src/storage/pending-evidence.js';
import type { PendingEvidence } from '../../src/storage/pending-evidence.js';
import { openStore } from '../../src/storage/store.js';
import { nextBlock, temporaryDirectory } from './chain-fixture.js';

const storageError = (code: StorageErrorCode) => (error: unknown) => isHyperMeshError(error, code);
const schemaError = (error: unknown) => isHyperMeshError(error, SchemaErrorCode.INVALID);

function entry(tag: number, height: number, size = 10): PendingEvidence {
  return { key: new Uint8Array(32).fill(tag), height, bytes: new Uint8Array(size).fill(tag) };
}

/** Rows as plain values, so deepEqual compares bytes only. */
function rows(list: readonly PendingEvidence[]) {
  return list.map(({ key, height, bytes }) => ({
    key: Buffer.from(key).toString('hex'),
    height,
    bytes: Buffer.from(bytes).toString('hex'),
  }));
}

describe('store: pending evidence', () => {
  let dir: Awaited<ReturnType<typeof temporaryDirectory>>;
  before(async () => {
    dir = await temporaryDirectory('pending-evidence');
  });
  after(() => dir.cleanup());

  it('keeps rows across a reopen, listed by height then key, and deletes by key', () => {
    const path = dir.file('rows.db');
    const store = openStore(path);
    store.pendingEvidence.put(entry(9, 5));
    store.pendingEvidence.put(entry(2, 7));
    store.pendingEvidence.put(entry(3, 5));
    // The same key again replaces the row.
    store.pendingEvidence.put({ ...entry(2, 7), bytes: new Uint8Array([1]) });
    store.close();

    const again = openStore(path);
    assert.deepEqual(rows(again.pendingEvidence.list()), [
      ...rows([entry(3, 5), entry(9, 5)]),
      ...rows([{ ...entry(2, 7), bytes: new Uint8Array([1]) }]),
    ]);
    assert.equal(
      again.pendingEvidence.delete([entry(9, 0).key, entry(4, 0).key, entry(9, 0).key]),
      1,
    );
    assert.equal(again.pendingEvidence.delete([]), 0);
    assert.deepEqual(
      again.pendingEvidence.list().map((row) => row.key[0]),
      [3, 2],
    );
    again.close();
  });

  it('refuses bad input with a schema error and writes nothing', () => {
    const store = openStore(dir.file('input.db'));
    try {
      store.pendingEvidence.put(entry(1, 1));
      const bad: unknown[] = [
        { ...entry(2, 1), key: new Uint8Array(31) },
        { ...entry(2, 1), height: -1 },
        { ...entry(2, 1), height: 1.5 },
        { ...entry(2, 1), bytes: new Uint8Array(0) },
        entry(2, 1, MAX_PENDING_EVIDENCE_BYTES + 1),
        { ...entry(2, 1), extra: true },
        null,
        'evidence',
      ];
      for (const input of bad) {
        assert.throws(() => store.pendingEvidence.put(input as PendingEvidence), schemaError);
      }
      assert.throws(
        () => store.pendingEvidence.delete([entry(1, 1).key, new Uint8Array(3)]),
        schemaError,
      );
      assert.throws(() => store.pendingEvidence.delete('x' as never), schemaError);
      assert.deepEqual(rows(store.pendingEvidence.list()), rows([entry(1, 1)]));
      // The largest accepted row.
      store.pendingEvidence.put(entry(2, 1, MAX_PENDING_EVIDENCE_BYTES));
      assert.equal(store.pendingEvidence.list().length, 2);
    } finally {
      store.close();
    }
  });

  it('is independent of the chain: rows of unstored heights, untouched by saveBlock', () => {
    const store = openStore(dir.file('chain.db'));
    try {
      store.pendingEvidence.put(entry(1, 40));
      store.saveBlock(nextBlock(store));
      assert.equal(store.blocks.latestHeight(), 1);
      assert.deepEqual(rows(store.pendingEvidence.list()), rows([entry(1, 40)]));
      assert.equal(store.verifyIntegrity().latestHeight, 1);
    } finally {
      store.close();
    }
  });

  it('a read-only store lists but refuses writes; a closed store refuses everything', () => {
    const path = dir.file('readonly.db');
    const writer = openStore(path);
    writer.pendingEvidence.put(entry(1, 1));
    const reader = openStore(path, { readonly: true });
    try {
      assert.deepEqual(rows(reader.pendingEvidence.list()), rows([entry(1, 1)]));
      assert.throws(
        () => reader.pendingEvidence.put(entry(2, 1)),
        storageError(StorageErrorCode.READ_ONLY),
      );
      assert.throws(
        () => reader.pendingEvidence.delete([entry(1, 1).key]),
        storageError(StorageErrorCode.READ_ONLY),
      );
    } finally {
      reader.close();
    }
    assert.equal(writer.pendingEvidence.list().length, 1);
    writer.close();
    assert.throws(() => writer.pendingEvidence.list(), storageError(StorageErrorCode.CLOSED));
    assert.throws(
      () => writer.pendingEvidence.put(entry(2, 1)),
      storageError(StorageErrorCode.CLOSED),
    );
  });
});
