import assert from 'node:assert/strict';
import { after, before, beforeEach, afterEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isHyperMeshError } from '../../src/codec/error.js';
import { SchemaErrorCode } from '../../src/codec/schema.js';
import { sha256 } from '../../src/crypto/hash.js';
import { StorageErrorCode } from '../../src/storage/errors.js';
import { openStore } from '../../src/storage/store.js';
import type { NodeStore } from '../../src/storage/store.js';
import { EMPTY_STATE_ROOT } from '../../src/storage/state-proof.js';
import { changes, hex, nextBlock, temporaryDirectory, text } from './chain-fixture.js';

const storageError = (code: StorageErrorCode) => (error: unknown) => isHyperMeshError(error, code);

const evidenceItem = (label: string) => ({
  hash: sha256(text(label)),
  bytes: text(`evidence ${label}`),
});

/** Row counts of every table, to show that a failed saveBlock wrote nothing at all. */
function tableCounts(path: string): Record<string, number> {
  const db = new Database(path, { readonly: true });
  try {
    const tables = db
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
      .pluck()
      .all() as string[];
    return Object.fromEntries(
      tables.map((table) => [
        table,
        Number(db.prepare(`SELECT count(*) FROM "${table}"`).pluck().get()),
      ]),
    );
  } finally {
    db.close();
  }
}

describe('block store', () => {
  let dir: Awaited<ReturnType<typeof temporaryDirectory>>;
  let path: string;
  let store: NodeStore;
  let counter = 0;

  before(async () => {
    dir = await temporaryDirectory('blocks');
  });
  after(() => dir.cleanup());
  beforeEach(() => {
    path = dir.file(`store-${counter++}.db`);
    store = openStore(path);
  });
  afterEach(() => store.close());

  it('saves blocks with commits, evidence and state, and reads them back every way', () => {
    const first = nextBlock(store, { stateChanges: changes('acct', 5, 'one') });
    const saved = store.saveBlock(first);
    assert.equal(saved.height, 1);
    assert.equal(saved.stateKeys, 5);
    assert.deepEqual(saved.stateRoot, first.stateRoot);
    const second = nextBlock(store, {
      stateChanges: [{ key: text('acct/0'), value: null }],
      evidence: [evidenceItem('double vote a'), evidenceItem('double vote b')],
    });
    store.saveBlock(second);
    store.saveBlock(nextBlock(store));

    assert.equal(store.blocks.latestHeight(), 3);
    assert.equal(store.blocks.earliestHeight(), 1);
    const byHeight = store.blocks.byHeight(2);
    assert.ok(byHeight !== null);
    assert.deepEqual(byHeight, second.block);
    assert.deepEqual(store.blocks.byHash(second.block.hash), second.block);
    assert.equal(store.blocks.byHash(sha256(text('unknown'))), null);
    assert.equal(store.blocks.byHeight(4), null);
    assert.deepEqual(store.blocks.commitAt(2), second.commit);
    assert.equal(store.blocks.commitAt(9), null);

    const evidence = store.blocks.evidence(second.evidence[0]!.hash);
    assert.deepEqual(evidence, { ...second.evidence[0], height: 2 });
    assert.equal(store.blocks.evidenceAt(2).length, 2);
    assert.deepEqual(store.blocks.evidenceAt(1), []);

    assert.equal(store.state.keyCount(1), 5);
    assert.equal(store.state.keyCount(), 4);
    assert.equal(store.state.get(text('acct/0')), null);
    assert.deepEqual(store.state.get(text('acct/0'), 1), text('one:acct/0'));
    assert.deepEqual(store.state.root(3), store.state.root(2), 'an empty block keeps the root');
    const report = store.verifyIntegrity();
    assert.equal(report.blocks, 3);
    assert.equal(report.stateKeys, 4);
  });

  it('reads a range of validator updates only up to a byte budget when given one', () => {
    const updates = (height: number) => text(`updates of block ${height}`.padEnd(100, '.'));
    store.saveBlock(nextBlock(store));
    for (let height = 2; height <= 6; height++) {
      store.saveBlock({ ...nextBlock(store), validatorUpdates: updates(height) });
    }
    assert.equal(store.blocks.validatorUpdatesRange(1, 6).length, 5);
    // 250 bytes: blocks 2 and 3 fit (200), block 4 takes it over and is the last one read.
    assert.deepEqual(
      store.blocks.validatorUpdatesRange(1, 6, 250).map((row) => row.height),
      [2, 3, 4],
    );
    assert.deepEqual(
      store.blocks.validatorUpdatesRange(1, 6, 1).map((row) => row.height),
      [2],
    );
    assert.throws(
      () => store.blocks.validatorUpdatesRange(1, 6, -1),
      (error: unknown) =>
        isHyperMeshError(error, SchemaErrorCode.INVALID) && /maxBytes/.test(error.message),
    );
  });

  it('keeps the validator updates a block returned, with the block or not at all', () => {
    const updates = text('encoded validator updates of block 2');
    store.saveBlock(nextBlock(store));
    store.saveBlock({ ...nextBlock(store), validatorUpdates: updates });
    store.saveBlock({ ...nextBlock(store), validatorUpdates: undefined });
    assert.equal(store.blocks.validatorUpdatesAt(1), null);
    assert.deepEqual(store.blocks.validatorUpdatesAt(2), updates);
    assert.equal(store.blocks.validatorUpdatesAt(3), null);
    assert.deepEqual(store.blocks.validatorUpdatesRange(1, 3), [{ height: 2, bytes: updates }]);
    assert.deepEqual(store.blocks.validatorUpdatesRange(3, 9), []);

    // A block refused for its state root leaves no updates behind.
    const before = tableCounts(path);
    const input = { ...nextBlock(store), validatorUpdates: text('lost with the block') };
    assert.throws(
      () => store.saveBlock({ ...input, stateRoot: sha256(text('wrong')) }),
      storageError(StorageErrorCode.STATE_ROOT_MISMATCH),
    );
    assert.throws(
      () => store.saveBlock({ ...input, validatorUpdates: new Uint8Array(0) }),
      (error: unknown) =>
        isHyperMeshError(error, SchemaErrorCode.INVALID) &&
        /validatorUpdates/.test((error as Error).message),
    );
    assert.deepEqual(tableCounts(path), before);
    assert.equal(store.blocks.validatorUpdatesAt(4), null);
    assert.throws(
      () => store.blocks.validatorUpdatesAt(-1),
      (error: unknown) => isHyperMeshError(error, SchemaErrorCode.INVALID),
    );
    assert.equal(store.verifyIntegrity().blocks, 3);
  });

  it('keeps receipts and the account history with the block, newest first, paged', () => {
    const alice = text('alice');
    const bob = text('bob');
    const hashOf = (tag: string) => sha256(text(tag));
    const receipt = (tag: string, index: number, accounts: Uint8Array[]) => ({
      txHash: hashOf(tag),
      index,
      bytes: text(`receipt ${tag}`),
      accounts,
    });
    store.saveBlock({
      ...nextBlock(store),
      receipts: [receipt('t1', 0, [alice, bob]), receipt('t2', 1, [alice, alice])],
    });
    store.saveBlock({ ...nextBlock(store), receipts: [] });
    store.saveBlock({
      ...nextBlock(store),
      // A replayed transaction (same hash) keeps its first receipt; a refused one names nobody.
      receipts: [receipt('t1', 0, [alice]), receipt('t3', 1, [bob]), receipt('t4', 2, [])],
    });
    assert.deepEqual(store.blocks.receipt(hashOf('t1')), {
      txHash: hashOf('t1'),
      height: 1,
      index: 0,
      bytes: text('receipt t1'),
    });
    assert.equal(store.blocks.receipt(hashOf('t4'))?.height, 3);
    assert.equal(store.blocks.receipt(hashOf('unknown')), null);
    const positions = (
      account: Uint8Array,
      before: { height: number; index: number } | null,
      limit: number,
    ) =>
      store.blocks.accountHistory(account, before, limit).map((tx) => `${tx.height}.${tx.index}`);
    assert.deepEqual(positions(alice, null, 10), ['3.0', '1.1', '1.0']);
    assert.deepEqual(positions(alice, null, 2), ['3.0', '1.1']);
    assert.deepEqual(positions(alice, { height: 1, index: 1 }, 10), ['1.0']);
    assert.deepEqual(positions(bob, { height: 3, index: 1 }, 10), ['1.0']);
    assert.deepEqual(positions(text('carol'), null, 10), []);
    assert.deepEqual(
      store.blocks.accountHistory(alice, null, 1)[0]?.txHash,
      hashOf('t1'),
      'the history names the transaction hash',
    );

    // A refused block leaves no receipts; malformed receipts are schema errors.
    const before = tableCounts(path);
    const input = { ...nextBlock(store), receipts: [receipt('t5', 0, [alice])] };
    assert.throws(
      () => store.saveBlock({ ...input, stateRoot: sha256(text('wrong')) }),
      storageError(StorageErrorCode.STATE_ROOT_MISMATCH),
    );
    assert.throws(
      () => store.saveBlock({ ...input, receipts: [receipt('t5', 0, [new Uint8Array(65)])] }),
      (error: unknown) =>
        isHyperMeshError(error, SchemaErrorCode.INVALID) &&
        /receipts\.0\.accounts\.0|receipts\[0\]\.accounts\[0\]/.test((error as Error).message),
    );
    assert.deepEqual(tableCounts(path), before);
    assert.equal(store.blocks.receipt(hashOf('t5')), null);
    assert.throws(
      () => store.blocks.accountHistory(new Uint8Array(0), null, 1),
      (error: unknown) => isHyperMeshError(error, SchemaErrorCode.INVALID),
    );
  });

  it('range reads return blocks with their commits, ascending and bounded', () => {
    for (let i = 0; i < 12; i++)
      store.saveBlock(nextBlock(store, { stateChanges: changes(`r${i}`, 2, 'v') }));
    const all = store.blocks.range(1, 12);
    assert.deepEqual(
      all.map((entry) => entry.block.height),
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
    for (const entry of all)
      assert.deepEqual(entry.commit, store.blocks.commitAt(entry.block.height));
    assert.deepEqual(
      store.blocks.range(4, 100, 3).map((entry) => entry.block.height),
      [4, 5, 6],
    );
    assert.deepEqual(store.blocks.range(13, 20), []);
    assert.throws(
      () => store.blocks.range(-1, 3),
      (error: unknown) => isHyperMeshError(error, SchemaErrorCode.INVALID),
    );
  });

  it('refuses a block that does not extend the chain', () => {
    // An empty store starts at height 1: a chain that began later could not be tied to its
    // genesis when a node starts on it. Nothing of the refused block is written.
    const first = nextBlock(store);
    assert.throws(
      () => store.saveBlock({ ...first, block: { ...first.block, height: 7 } }),
      storageError(StorageErrorCode.HEIGHT_NOT_NEXT),
    );
    assert.equal(store.blocks.latestHeight(), null);
    assert.equal(store.state.keyCount(), 0);
    store.saveBlock(nextBlock(store));
    const next = nextBlock(store);
    assert.throws(
      () => store.saveBlock({ ...next, block: { ...next.block, height: 5 } }),
      storageError(StorageErrorCode.HEIGHT_NOT_NEXT),
    );
    assert.throws(
      () => store.saveBlock({ ...next, block: { ...next.block, height: 1 } }),
      storageError(StorageErrorCode.HEIGHT_NOT_NEXT),
    );
    assert.throws(
      () =>
        store.saveBlock({ ...next, block: { ...next.block, parentHash: sha256(text('fork')) } }),
      storageError(StorageErrorCode.PARENT_MISMATCH),
    );
    assert.throws(
      () =>
        store.saveBlock({
          ...next,
          block: { ...next.block, hash: store.blocks.byHeight(1)!.hash },
        }),
      storageError(StorageErrorCode.DUPLICATE_BLOCK),
    );
    store.saveBlock(next);
    assert.equal(store.blocks.latestHeight(), 2);
  });

  it('refuses evidence that was already included, across blocks and within one', () => {
    store.saveBlock(nextBlock(store, { evidence: [evidenceItem('e1')] }));
    assert.throws(
      () =>
        store.saveBlock(nextBlock(store, { evidence: [evidenceItem('e2'), evidenceItem('e1')] })),
      (error: unknown) =>
        storageError(StorageErrorCode.DUPLICATE_EVIDENCE)(error) &&
        (error as { detail: Record<string, unknown> }).detail.includedAt === 1,
    );
    assert.throws(
      () =>
        store.saveBlock(nextBlock(store, { evidence: [evidenceItem('e3'), evidenceItem('e3')] })),
      storageError(StorageErrorCode.DUPLICATE_EVIDENCE),
    );
    assert.equal(
      store.blocks.evidence(evidenceItem('e2').hash),
      null,
      'the refused block left nothing',
    );
    assert.equal(store.blocks.latestHeight(), 1);
  });

  it('refuses a key changed twice in one block (its order would decide the value)', () => {
    const input = nextBlock(store);
    assert.throws(
      () =>
        store.saveBlock({
          ...input,
          stateChanges: [
            { key: text('k'), value: text('1') },
            { key: text('k'), value: text('2') },
          ],
        }),
      storageError(StorageErrorCode.DUPLICATE_STATE_KEY),
    );
    assert.throws(
      () =>
        store.state.computeRoot([
          { key: text('k'), value: null },
          { key: text('k'), value: text('x') },
        ]),
      storageError(StorageErrorCode.DUPLICATE_STATE_KEY),
    );
  });

  it('malformed input is a SchemaError naming the field, and nothing is written', () => {
    const input = nextBlock(store, { stateChanges: changes('s', 1, 'v') });
    const before = tableCounts(path);
    const cases: unknown[] = [
      { ...input, block: { ...input.block, hash: new Uint8Array(31) } },
      { ...input, block: { ...input.block, height: -1 } },
      { ...input, block: { ...input.block, timeMs: 1.5 } },
      { ...input, commit: new Uint8Array(0) },
      { ...input, stateRoot: 'root' },
      { ...input, stateChanges: [{ key: new Uint8Array(0), value: null }] },
      { ...input, stateChanges: [{ key: text('k') }] },
      { ...input, extra: true },
      null,
    ];
    for (const bad of cases) {
      assert.throws(
        () => store.saveBlock(bad as never),
        (error: unknown) => isHyperMeshError(error, SchemaErrorCode.INVALID),
      );
    }
    assert.deepEqual(tableCounts(path), before);
  });

  it('a state root that does not match what the changes give is refused, and nothing is written', () => {
    store.saveBlock(nextBlock(store, { stateChanges: changes('a', 10, 'v1') }));
    const before = tableCounts(path);
    const rootBefore = store.state.root();
    const input = nextBlock(store, {
      stateChanges: changes('a', 10, 'v2'),
      evidence: [evidenceItem('with a bad root')],
    });
    assert.throws(
      () => store.saveBlock({ ...input, stateRoot: sha256(text('wrong')) }),
      storageError(StorageErrorCode.STATE_ROOT_MISMATCH),
    );
    assert.deepEqual(tableCounts(path), before);
    assert.deepEqual(store.state.root(), rootBefore);
    assert.equal(store.blocks.byHeight(2), null);
    assert.equal(store.blocks.evidence(input.evidence[0]!.hash), null);
    store.saveBlock(input);
    assert.deepEqual(store.state.get(text('a/3')), text('v2:a/3'));
  });

  it('a failure at the very end of the transaction leaves the whole block out', () => {
    store.saveBlock(nextBlock(store, { stateChanges: changes('base', 20, 'v1') }));
    // Inject a failure into the last write saveBlock makes (the state root row), from outside.
    const sabotage = new Database(path);
    sabotage.exec(`CREATE TRIGGER fail_state_root BEFORE INSERT ON state_root
                   BEGIN SELECT RAISE(ABORT, 'injected failure'); END`);
    sabotage.close();
    const before = tableCounts(path);
    const rootBefore = store.state.root();
    const input = nextBlock(store, {
      stateChanges: [...changes('base', 20, 'v2'), ...changes('new', 30, 'v2')],
      evidence: [evidenceItem('lost with the block')],
    });
    assert.throws(
      () => store.saveBlock(input),
      (error: unknown) =>
        storageError(StorageErrorCode.WRITE_FAILED)(error) &&
        /injected failure/.test((error as Error).message),
    );
    assert.deepEqual(tableCounts(path), before);
    assert.equal(store.blocks.latestHeight(), 1);
    assert.equal(store.blocks.byHash(input.block.hash), null);
    assert.equal(store.blocks.commitAt(2), null);
    assert.deepEqual(store.state.root(), rootBefore);
    assert.deepEqual(store.state.get(text('base/4')), text('v1:base/4'));
    assert.equal(store.state.get(text('new/4')), null);
    store.verifyIntegrity();

    const repair = new Database(path);
    repair.exec('DROP TRIGGER fail_state_root');
    repair.close();
    const saved = store.saveBlock(input);
    assert.equal(saved.height, 2);
    assert.equal(saved.stateKeys, 50);
    assert.equal(hex(store.state.root()), hex(input.stateRoot));
    assert.equal(store.verifyIntegrity().stateKeys, 50);
  });

  it('reads at a height the store does not hold are UNKNOWN_HEIGHT', () => {
    assert.deepEqual(store.state.root(), EMPTY_STATE_ROOT);
    assert.equal(store.state.get(text('x')), null);
    assert.throws(() => store.state.root(1), storageError(StorageErrorCode.UNKNOWN_HEIGHT));
    store.saveBlock(nextBlock(store));
    assert.throws(
      () => store.state.get(text('x'), 2),
      storageError(StorageErrorCode.UNKNOWN_HEIGHT),
    );
    assert.throws(
      () => store.state.getWithProof(text('x'), 7),
      storageError(StorageErrorCode.UNKNOWN_HEIGHT),
    );
  });

  it('a read-only store serves reads and refuses writes with READ_ONLY', () => {
    store.saveBlock(nextBlock(store, { stateChanges: changes('ro', 3, 'v') }));
    const reader = openStore(path, { readonly: true });
    try {
      assert.equal(reader.blocks.latestHeight(), 1);
      assert.deepEqual(reader.state.get(text('ro/1')), text('v:ro/1'));
      assert.throws(
        () => reader.saveBlock(nextBlock(reader)),
        storageError(StorageErrorCode.READ_ONLY),
      );
    } finally {
      reader.close();
    }
  });

  it('a write lock held elsewhere beyond the busy timeout is BUSY, and nothing is written', () => {
    const waiting = openStore(path, { busyTimeoutMs: 20 });
    const holder = new Database(path);
    try {
      holder.exec('BEGIN IMMEDIATE');
      assert.throws(
        () => waiting.saveBlock(nextBlock(waiting)),
        storageError(StorageErrorCode.BUSY),
      );
      holder.exec('ROLLBACK');
      waiting.saveBlock(nextBlock(waiting));
      assert.equal(store.blocks.latestHeight(), 1);
    } finally {
      holder.close();
      waiting.close();
    }
  });

  it('reports its file sizes', () => {
    store.saveBlock(nextBlock(store, { stateChanges: changes('size', 100, 'v') }));
    const sizes = store.fileSizes();
    assert.ok(sizes.database > 0);
    assert.ok(sizes.wal > 0, 'committed pages sit in the -wal file until a checkpoint');
  });
});
