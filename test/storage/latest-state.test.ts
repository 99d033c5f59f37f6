import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { isHyperMeshError } from '../../src/codec/error.js';
import { sha256 } from '../../src/crypto/hash.js';
import { StorageErrorCode } from '../../src/storage/errors.js';
import type { SaveBlockInput, StateChange } from '../../src/storage/inputs.js';
import { EMPTY_STATE_ROOT, verifyStateProof } from '../../src/storage/state-proof.js';
import { openStore } from '../../src/storage/store.js';
import type { NodeStore } from '../../src/storage/store.js';
import { changes, hex, nextBlock, temporaryDirectory, text } from './chain-fixture.js';

/*
 * The writer's store keeps the latest state version (height, root, key count) in memory instead
 * of reading it from SQLite at every call. These tests hold what it serves to what SQLite holds:
 * after blocks that were saved, after blocks that were refused, and with other connections
 * reading or writing the same file.
 */

const storageError = (code: StorageErrorCode) => (error: unknown) => isHyperMeshError(error, code);

interface Latest {
  readonly height: number | null;
  readonly root: string;
  readonly keyCount: number;
  readonly values: readonly (string | null)[];
}

const PROBES = ['a/0', 'a/1', 'a/7', 'b/3', 'gone'].map(text);

/** What a store serves at its latest height, without naming a height. */
function latestOf(store: NodeStore): Latest {
  const values = PROBES.map((key) => {
    const value = store.state.get(key);
    const proven = store.state.getWithProof(key);
    assert.deepEqual(proven.value, value);
    assert.equal(hex(proven.root), hex(store.state.root()));
    assert.ok(verifyStateProof(proven.root, key, proven.value, proven.proof));
    return value === null ? null : hex(value);
  });
  return {
    height: store.state.getWithProof(text('x')).height,
    root: hex(store.state.root()),
    keyCount: store.state.keyCount(),
    values,
  };
}

/** The same, read from SQLite at an explicit height (no copy in memory is involved). */
function storedAt(store: NodeStore, height: number | null): Latest {
  if (height === null) {
    return {
      height: null,
      root: hex(EMPTY_STATE_ROOT),
      keyCount: 0,
      values: PROBES.map(() => null),
    };
  }
  return {
    height,
    root: hex(store.state.root(height)),
    keyCount: store.state.keyCount(height),
    values: PROBES.map((key) => {
      const value = store.state.get(key, height);
      return value === null ? null : hex(value);
    }),
  };
}

function assertServesStored(store: NodeStore, message?: string): Latest {
  const latest = latestOf(store);
  assert.deepEqual(latest, storedAt(store, store.blocks.latestHeight()), message);
  return latest;
}

describe('the latest state version kept in memory', () => {
  let dir: Awaited<ReturnType<typeof temporaryDirectory>>;
  before(async () => {
    dir = await temporaryDirectory('latest-state');
  });
  after(async () => {
    await dir.cleanup();
  });

  it('after saveBlock, root, key count and reads at the latest height are the new block’s', () => {
    const store = openStore(dir.file('saved.db'));
    try {
      const empty = assertServesStored(store);
      assert.equal(empty.root, hex(EMPTY_STATE_ROOT));
      const first = store.saveBlock(nextBlock(store, { stateChanges: changes('a', 10, 'v1') }));
      const one = assertServesStored(store);
      assert.equal(one.height, 1);
      assert.equal(one.root, hex(first.stateRoot));
      assert.equal(one.keyCount, 10);
      assert.deepEqual(store.state.get(text('a/7')), text('v1:a/7'));

      const second = store.saveBlock(
        nextBlock(store, {
          stateChanges: [
            { key: text('a/7'), value: text('v2') },
            { key: text('a/1'), value: null },
            ...changes('b', 5, 'v2'),
          ],
        }),
      );
      const two = assertServesStored(store);
      assert.equal(two.height, 2);
      assert.equal(two.root, hex(second.stateRoot));
      assert.equal(two.keyCount, second.stateKeys);
      assert.equal(two.keyCount, 14);
      assert.deepEqual(store.state.get(text('a/7')), text('v2'));
      assert.equal(store.state.get(text('a/1')), null);
      // The older height is still served from SQLite as it was.
      assert.deepEqual(store.state.get(text('a/7'), 1), text('v1:a/7'));
      assert.equal(hex(store.state.root(1)), one.root);
    } finally {
      store.close();
    }
  });

  it('a saveBlock that fails leaves the latest root, key count and values as they were', () => {
    const path = dir.file('refused.db');
    const store = openStore(path);
    try {
      store.saveBlock(nextBlock(store, { stateChanges: changes('a', 10, 'v1') }));
      const before = assertServesStored(store);
      const good = nextBlock(store, { stateChanges: changes('a', 10, 'v2') });
      const duplicate: StateChange[] = [
        { key: text('a/0'), value: text('x') },
        { key: text('a/0'), value: null },
      ];
      const refusals: Array<[string, SaveBlockInput, StorageErrorCode]> = [
        [
          'wrong state root',
          { ...good, stateRoot: sha256(text('wrong')) },
          StorageErrorCode.STATE_ROOT_MISMATCH,
        ],
        [
          'a key changed twice',
          { ...good, stateChanges: duplicate },
          StorageErrorCode.DUPLICATE_STATE_KEY,
        ],
        [
          'not the next height',
          { ...good, block: { ...good.block, height: 3 } },
          StorageErrorCode.HEIGHT_NOT_NEXT,
        ],
      ];
      for (const [what, input, code] of refusals) {
        assert.throws(() => store.saveBlock(input), storageError(code), what);
        assert.deepEqual(assertServesStored(store, what), before, what);
      }

      // A failure in the very last write, after the new root was computed and checked.
      const sabotage = new Database(path);
      sabotage.exec(`CREATE TRIGGER fail_state_root BEFORE INSERT ON state_root
                     BEGIN SELECT RAISE(ABORT, 'injected failure'); END`);
      assert.throws(() => store.saveBlock(good), storageError(StorageErrorCode.WRITE_FAILED));
      assert.deepEqual(assertServesStored(store, 'injected failure'), before);
      sabotage.exec('DROP TRIGGER fail_state_root');
      sabotage.close();

      const saved = store.saveBlock(good);
      const after = assertServesStored(store);
      assert.equal(after.height, 2);
      assert.equal(after.root, hex(saved.stateRoot));
      assert.deepEqual(store.state.get(text('a/0')), text('v2:a/0'));
    } finally {
      store.close();
    }
  });

  it('what root() and computeRoot() return belongs to the caller', () => {
    const store = openStore(dir.file('copies.db'));
    try {
      const saved = store.saveBlock(nextBlock(store, { stateChanges: changes('a', 3, 'v1') }));
      store.state.root().fill(0);
      assert.equal(hex(store.state.root()), hex(saved.stateRoot));
      const next = nextBlock(store, { stateChanges: changes('a', 3, 'v2') });
      store.state.computeRoot(next.stateChanges).fill(0);
      assert.equal(hex(store.saveBlock(next).stateRoot), hex(next.stateRoot));
      assert.equal(hex(store.state.root()), hex(next.stateRoot));
      store.state.root().fill(1);
      assertServesStored(store);
    } finally {
      store.close();
    }
  });

  it('a read-only store sees every block the writer commits after it was opened', () => {
    const path = dir.file('watched.db');
    const writer = openStore(path);
    writer.saveBlock(nextBlock(writer, { stateChanges: changes('a', 5, 'v1') }));
    const reader = openStore(path, { readonly: true });
    try {
      assert.deepEqual(latestOf(reader), latestOf(writer));
      for (let round = 2; round <= 4; round++) {
        const saved = writer.saveBlock(
          nextBlock(writer, { stateChanges: changes('a', round * 2, `v${round}`) }),
        );
        const seen = latestOf(reader);
        assert.equal(seen.height, round);
        assert.equal(seen.root, hex(saved.stateRoot));
        assert.equal(seen.keyCount, saved.stateKeys);
        assert.deepEqual(seen, latestOf(writer));
        assert.deepEqual(reader.state.get(text('a/1')), text(`v${round}:a/1`));
      }
    } finally {
      reader.close();
      writer.close();
    }
  });

  it('a block another connection wrote: saveBlock builds on it, verifyIntegrity checks it', () => {
    const path = dir.file('two-writers.db');
    const mine = openStore(path);
    const other = openStore(path);
    try {
      mine.saveBlock(nextBlock(mine, { stateChanges: changes('a', 4, 'v1') }));
      assertServesStored(mine);
      // `other` writes height 2; `mine` then saves height 3 on top of it. Planning under the
      // write lock must start from height 2's state, or the root would not match.
      other.saveBlock(nextBlock(other, { stateChanges: changes('b', 4, 'v2') }));
      const third = nextBlock(other, { stateChanges: changes('a', 4, 'v3') });
      const saved = mine.saveBlock(third);
      assert.equal(saved.height, 3);
      assert.equal(hex(saved.stateRoot), hex(third.stateRoot));
      assert.equal(saved.stateKeys, 8);
      assertServesStored(mine);
      // `other` now holds a stale copy; the integrity check reads SQLite, not the copy.
      const report = other.verifyIntegrity();
      assert.equal(report.latestHeight, 3);
      assert.equal(hex(report.stateRoot), hex(saved.stateRoot));
      assert.equal(report.stateKeys, 8);
      assertServesStored(other);
    } finally {
      other.close();
      mine.close();
    }
  });

  it('through any mix of saved and refused blocks it serves what SQLite holds', () => {
    type Step = { kind: 'save' | 'wrong root' | 'duplicate key'; keys: number[]; remove: boolean };
    const step = fc.record({
      kind: fc.constantFrom<Step['kind']>('save', 'save', 'wrong root', 'duplicate key'),
      keys: fc.uniqueArray(fc.nat(12), { minLength: 1, maxLength: 6 }),
      remove: fc.boolean(),
    });
    let run = 0;
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 6 }), (steps) => {
        const path = dir.file(`mix-${run++}.db`);
        const store = openStore(path);
        const reader = openStore(path, { readonly: true });
        try {
          for (const [i, { kind, keys, remove }] of steps.entries()) {
            const stateChanges = keys.map((k, j) => ({
              key: text(`a/${k}`),
              value: remove && j === 0 ? null : text(`step ${i}`),
            }));
            const input = nextBlock(store, { stateChanges });
            if (kind === 'save') {
              store.saveBlock(input);
            } else {
              const [bad, code]: [SaveBlockInput, StorageErrorCode] =
                kind === 'wrong root'
                  ? [
                      { ...input, stateRoot: sha256(text(`wrong ${i}`)) },
                      StorageErrorCode.STATE_ROOT_MISMATCH,
                    ]
                  : [
                      { ...input, stateChanges: [...stateChanges, stateChanges[0]!] },
                      StorageErrorCode.DUPLICATE_STATE_KEY,
                    ];
              assert.throws(() => store.saveBlock(bad), storageError(code));
            }
            const served = assertServesStored(store, `after step ${i} (${kind})`);
            assert.deepEqual(latestOf(reader), served);
          }
        } finally {
          reader.close();
          store.close();
        }
      }),
      { numRuns: 15 },
    );
  });
});
