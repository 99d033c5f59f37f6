import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { isHyperMeshError } from '../../src/codec/error.js';
import { StorageErrorCode } from '../../src/storage/errors.js';
import type { StateChange } from '../../src/storage/inputs.js';
import {
  EMPTY_STATE_ROOT,
  decodeStateProof,
  encodeStateProof,
  verifyStateProof,
} from '../../src/storage/state-proof.js';
import { openStore } from '../../src/storage/store.js';
import type { NodeStore } from '../../src/storage/store.js';
import { hex, nextBlock, temporaryDirectory, text } from './chain-fixture.js';

const storageError = (code: StorageErrorCode) => (error: unknown) => isHyperMeshError(error, code);

/** Deterministic pseudo-random block contents: puts, overwrites and deletes. */
function blockChanges(height: number, count: number, keySpace: number): StateChange[] {
  const seen = new Set<number>();
  const result: StateChange[] = [];
  for (let i = 0; result.length < count; i++) {
    const k = (height * 7919 + i * 104729) % keySpace;
    if (seen.has(k)) continue;
    seen.add(k);
    const remove = (k + height) % 5 === 0;
    result.push({ key: text(`key/${k}`), value: remove ? null : text(`value ${k} at ${height}`) });
  }
  return result;
}

describe('application state in the store', () => {
  let dir: Awaited<ReturnType<typeof temporaryDirectory>>;
  let store: NodeStore;
  /** The model: every height's full key -> value map. */
  const history: Map<string, Uint8Array>[] = [new Map()];
  const HEIGHTS = 12;
  const KEY_SPACE = 400;

  before(async () => {
    dir = await temporaryDirectory('state');
    store = openStore(dir.file('state.db'), { stateNodeCacheSize: 64 });
    for (let height = 1; height <= HEIGHTS; height++) {
      const changes = blockChanges(height, 60, KEY_SPACE);
      const state = new Map(history[height - 1]);
      for (const { key, value } of changes) {
        const name = new TextDecoder().decode(key);
        if (value === null) state.delete(name);
        else state.set(name, value);
      }
      history.push(state);
      store.saveBlock(nextBlock(store, { stateChanges: changes }));
    }
  });
  after(async () => {
    store.close();
    await dir.cleanup();
  });

  it('the same changes in a different order give the same root in another store', () => {
    const other = openStore(dir.file('reordered.db'));
    try {
      for (let height = 1; height <= HEIGHTS; height++) {
        const changes = blockChanges(height, 60, KEY_SPACE).reverse();
        const saved = other.saveBlock(nextBlock(other, { stateChanges: changes }));
        assert.equal(hex(saved.stateRoot), hex(store.state.root(height)), `height ${height}`);
      }
    } finally {
      other.close();
    }
  });

  it('the root depends only on the resulting state, not on the history that led there', () => {
    const other = openStore(dir.file('one-block.db'));
    try {
      const final = history[HEIGHTS]!;
      const saved = other.saveBlock(
        nextBlock(other, {
          stateChanges: [...final].map(([key, value]) => ({ key: text(key), value })),
        }),
      );
      assert.equal(hex(saved.stateRoot), hex(store.state.root()));
      assert.equal(saved.stateKeys, final.size);
      assert.equal(store.state.keyCount(), final.size);
    } finally {
      other.close();
    }
  });

  it('serves every height: values, roots and proofs match the model', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: HEIGHTS }), fc.nat(KEY_SPACE + 50), (height, k) => {
        const key = text(`key/${k}`);
        const expected = history[height]!.get(`key/${k}`) ?? null;
        assert.deepEqual(store.state.get(key, height), expected);
        const result = store.state.getWithProof(key, height);
        assert.equal(result.height, height);
        assert.deepEqual(result.value, expected);
        assert.deepEqual(result.root, store.state.root(height));
        assert.ok(verifyStateProof(result.root, key, result.value, result.proof));
        const wire = decodeStateProof(encodeStateProof(result.proof));
        assert.ok(verifyStateProof(result.root, key, result.value, wire));
        // The proof is bound to its height's root: against another height's root it fails
        // unless the key's path is unchanged there.
        const latest = store.state.root();
        if (hex(latest) !== hex(result.root)) {
          assert.equal(verifyStateProof(latest, key, result.value, result.proof), false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('the latest state answers queries without a height', () => {
    const result = store.state.getWithProof(text('key/7'));
    assert.equal(result.height, HEIGHTS);
    assert.deepEqual(result.value, history[HEIGHTS]!.get('key/7') ?? null);
    assert.ok(verifyStateProof(result.root, text('key/7'), result.value, result.proof));
  });

  it('an empty store proves absence against the empty root', () => {
    const empty = openStore(dir.file('empty.db'));
    try {
      const result = empty.state.getWithProof(text('anything'));
      assert.equal(result.height, null);
      assert.deepEqual(result.root, EMPTY_STATE_ROOT);
      assert.equal(result.value, null);
      assert.ok(verifyStateProof(EMPTY_STATE_ROOT, text('anything'), null, result.proof));
      assert.equal(
        verifyStateProof(EMPTY_STATE_ROOT, text('anything'), text('x'), result.proof),
        false,
      );
    } finally {
      empty.close();
    }
  });

  it('computeRoot writes nothing and predicts saveBlock exactly', () => {
    const other = openStore(dir.file('predict.db'));
    try {
      other.saveBlock(nextBlock(other, { stateChanges: blockChanges(1, 30, 100) }));
      const changes = blockChanges(2, 30, 100);
      const predicted = other.state.computeRoot(changes);
      const again = other.state.computeRoot([...changes].reverse());
      assert.deepEqual(again, predicted);
      assert.equal(other.blocks.latestHeight(), 1);
      assert.notEqual(hex(other.state.root()), hex(predicted));
      const saved = other.saveBlock(nextBlock(other, { stateChanges: changes }));
      assert.deepEqual(saved.stateRoot, predicted);
      other.verifyIntegrity();
    } finally {
      other.close();
    }
  });

  it('an empty value is a value, distinct from absence', () => {
    const other = openStore(dir.file('empty-value.db'));
    try {
      other.saveBlock(
        nextBlock(other, { stateChanges: [{ key: text('blank'), value: new Uint8Array(0) }] }),
      );
      const result = other.state.getWithProof(text('blank'));
      assert.deepEqual(result.value, new Uint8Array(0));
      assert.ok(verifyStateProof(result.root, text('blank'), new Uint8Array(0), result.proof));
      assert.equal(verifyStateProof(result.root, text('blank'), null, result.proof), false);
      assert.equal(other.state.keyCount(), 1);
    } finally {
      other.close();
    }
  });

  it('a damaged state table is CORRUPT for queries and for the integrity check', () => {
    const path = dir.file('damaged-state.db');
    const victim = openStore(path, { stateNodeCacheSize: 0 });
    try {
      const changes = blockChanges(1, 50, 100);
      const target = changes.find((change) => change.value !== null)!;
      victim.saveBlock(nextBlock(victim, { stateChanges: changes }));
      victim.verifyIntegrity();
      const raw = new Database(path);
      const update = raw.prepare('UPDATE state_value SET value = ? WHERE key = ?');
      assert.equal(update.run(text('forged'), target.key).changes, 1);
      assert.throws(
        () => victim.state.getWithProof(target.key),
        storageError(StorageErrorCode.CORRUPT),
      );
      assert.throws(() => victim.verifyIntegrity(), storageError(StorageErrorCode.CORRUPT));

      update.run(target.value, target.key);
      victim.verifyIntegrity();
      raw.pragma('foreign_keys = OFF');
      raw.exec('DELETE FROM state_node WHERE id = (SELECT max(id) - 3 FROM state_node)');
      raw.close();
      assert.throws(() => victim.verifyIntegrity(), storageError(StorageErrorCode.CORRUPT));
    } finally {
      victim.close();
    }
  });
});
