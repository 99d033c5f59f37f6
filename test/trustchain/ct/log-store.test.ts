import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { toHex } from '../../../src/crypto/bytes.js';
import { MerkleTree, leafHash, rootFromLeafHashes } from '../../../src/crypto/merkle.js';
import { openStore } from '../../../src/storage/index.js';
import { openDatabase } from '../../../src/storage/database.js';
import {
  CtError,
  CtErrorCode,
  MAX_BATCH_ENTRIES,
  MAX_ENTRIES_PER_READ,
  MAX_EXTRA_DATA_BYTES,
  TILE_WIDTH,
  encodeMerkleTreeLeaf,
  openCtLog,
  type CtEntryInput,
  type CtLog,
} from '../../../src/trustchain/ct/index.js';
import { ORIGIN, tempDatabase, x509Entry } from './fixtures.js';

const hexes = (list: readonly Uint8Array[]): string[] => list.map(toHex);

function rejects(fn: () => unknown, code: CtErrorCode): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof CtError, `expected CtError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  });
}

/** Appends `batches` (sizes) to the log and the same leaves to an in-memory MerkleTree. */
function fill(log: CtLog, tree: MerkleTree, batches: readonly number[], from = 0): void {
  batches.forEach((count, b) => {
    const entries: CtEntryInput[] = [];
    for (let i = 0; i < count; i++) entries.push(x509Entry(from + b, i, 1_000 + from + b));
    for (const entry of entries) tree.appendLeaf(entry.leaf);
    const result = log.appendBatch(entries, 1_000 + from + b);
    assert.equal(result.treeHead.treeSize, tree.size);
    assert.equal(toHex(result.treeHead.rootHash), toHex(tree.root()));
  });
}

function rowCounts(db: Database.Database): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const table of ['ct_entry', 'ct_node', 'ct_tree_head', 'ct_signature']) {
    counts[table] = db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
  }
  return counts;
}

describe('CT log store', () => {
  it('appends batches atomically, and a reopened log has the same tree and keeps growing', () => {
    const temp = tempDatabase();
    try {
      const tree = new MerkleTree();
      const log = openCtLog(temp.db, { origin: ORIGIN });
      assert.equal(log.size, 0);
      assert.equal(log.latestTreeHead(), undefined);
      fill(log, tree, [1, 3, 250, 7, 300]);
      const head = log.latestTreeHead();
      temp.db.close();

      const reopened = openCtLog(openDatabase(temp.path), { origin: ORIGIN });
      assert.equal(reopened.size, tree.size);
      assert.deepEqual(reopened.latestTreeHead(), head);
      assert.equal(toHex(reopened.rootAt(tree.size)), toHex(tree.root()));
      assert.deepEqual(
        hexes(reopened.inclusionProof(17, 300)),
        hexes(tree.inclusionProof(17, 300)),
      );
      // The right edge was rebuilt from the file: appending continues the same tree.
      fill(reopened, tree, [5, 1, 256], 10);
      assert.equal(reopened.treeHead(4).treeSize, 4);
      rejects(() => reopened.treeHead(5), CtErrorCode.UNKNOWN_TREE_HEAD);
    } finally {
      temp.cleanup();
    }
  });

  it('lives in the node store file next to the store tables, without touching them', () => {
    const temp = tempDatabase();
    try {
      temp.db.close();
      openStore(temp.path).close();
      const db = openDatabase(temp.path);
      const log = openCtLog(db, { origin: ORIGIN });
      log.appendBatch([x509Entry(0, 0, 5)], 5);
      db.close();
      const store = openStore(temp.path);
      store.close();
      const again = openDatabase(temp.path);
      assert.equal(openCtLog(again, { origin: ORIGIN }).size, 1);
      const versions = again.prepare('SELECT count(*) FROM ct_schema_version').pluck().get();
      assert.equal(versions, 1);
      again.close();
    } finally {
      temp.cleanup();
    }
  });

  it('refuses another origin on the same tables', () => {
    const db = new Database(':memory:');
    openCtLog(db, { origin: ORIGIN });
    rejects(() => openCtLog(db, { origin: 'other.test/log' }), CtErrorCode.INVALID_ORIGIN);
    rejects(() => openCtLog(db, { origin: 'has space' }), CtErrorCode.INVALID_ORIGIN);
    rejects(() => openCtLog(db, { origin: 'a+b' }), CtErrorCode.INVALID_ORIGIN);
  });

  it('gives the same roots and proofs as src/crypto/merkle.ts at every size up to 140', () => {
    const log = openCtLog(new Database(':memory:'), { origin: ORIGIN });
    const tree = new MerkleTree();
    fill(log, tree, [1, 2, 3, 5, 8, 13, 21, 34, 53]);
    for (let size = 1; size <= tree.size; size++) {
      assert.equal(toHex(log.rootAt(size)), toHex(tree.root(size)), `root ${size}`);
      for (let index = 0; index < size; index++) {
        assert.deepEqual(
          hexes(log.inclusionProof(index, size)),
          hexes(tree.inclusionProof(index, size)),
          `inclusion ${index} in ${size}`,
        );
      }
      for (let first = 0; first <= size; first++) {
        assert.deepEqual(
          hexes(log.consistencyProof(first, size)),
          hexes(tree.consistencyProof(first, size)),
          `consistency ${first} → ${size}`,
        );
      }
    }
    assert.equal(toHex(log.rootAt(0)), toHex(tree.root(0)));
  });

  it('agrees with MerkleTree for random batch sequences and random proofs (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 600 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat()), { minLength: 1, maxLength: 20 }),
        (batches, picks) => {
          const log = openCtLog(new Database(':memory:'), { origin: ORIGIN });
          const tree = new MerkleTree();
          fill(log, tree, batches);
          for (const [a, b, c] of picks) {
            const size = 1 + (a % tree.size);
            const index = b % size;
            const first = c % (size + 1);
            assert.deepEqual(
              hexes(log.inclusionProof(index, size)),
              hexes(tree.inclusionProof(index, size)),
            );
            assert.deepEqual(
              hexes(log.consistencyProof(first, size)),
              hexes(tree.consistencyProof(first, size)),
            );
            assert.equal(log.findLeafIndex(tree.leafHashAt(index), size), index);
          }
        },
      ),
      { numRuns: 25, seed: 6962 },
    );
  });

  it('finds leaves by hash only inside the requested tree size', () => {
    const log = openCtLog(new Database(':memory:'), { origin: ORIGIN });
    const tree = new MerkleTree();
    fill(log, tree, [10, 10]);
    assert.equal(log.findLeafIndex(tree.leafHashAt(15), 20), 15);
    rejects(() => log.findLeafIndex(tree.leafHashAt(15), 10), CtErrorCode.UNKNOWN_LEAF);
    rejects(() => log.findLeafIndex(new Uint8Array(32), 20), CtErrorCode.UNKNOWN_LEAF);
    rejects(() => log.findLeafIndex(new Uint8Array(31), 20), CtErrorCode.INVALID_HASH);
    rejects(() => log.findLeafIndex(tree.leafHashAt(1), 21), CtErrorCode.OUT_OF_RANGE);
  });

  it('serves tlog-tiles hashes and entry bundles that match the tree', () => {
    const log = openCtLog(new Database(':memory:'), { origin: ORIGIN });
    const tree = new MerkleTree();
    fill(log, tree, [300, 300, 100]);
    const size = tree.size; // 700: level 0 has 2 full tiles and a partial of 188; level 1 is 2 wide.
    const leafHashes = Array.from({ length: size }, (_, i) => tree.leafHashAt(i));
    const full = log.tile(0, 1, TILE_WIDTH) as Uint8Array;
    assert.equal(toHex(full), hexes(leafHashes.slice(256, 512)).join(''));
    assert.equal(
      toHex(log.tile(0, 2, 188) as Uint8Array),
      hexes(leafHashes.slice(512, 700)).join(''),
    );
    assert.equal(
      toHex(log.tile(0, 2, 5) as Uint8Array),
      hexes(leafHashes.slice(512, 517)).join(''),
    );
    assert.equal(log.tile(0, 2, 189), undefined);
    assert.equal(log.tile(0, 2, TILE_WIDTH), undefined);
    assert.equal(log.tile(0, 3, 1), undefined);
    const level1 = [0, 1].map((n) =>
      toHex(rootFromLeafHashes(leafHashes.slice(n * 256, (n + 1) * 256))),
    );
    assert.equal(toHex(log.tile(1, 0, 2) as Uint8Array), level1.join(''));
    assert.equal(log.tile(1, 0, 3), undefined);
    assert.equal(log.tile(2, 0, 1), undefined);

    const bundle = log.entryBundle(2, 188) as Uint8Array;
    const leaves: Uint8Array[] = [];
    for (let offset = 0; offset < bundle.length;) {
      const length = ((bundle[offset] as number) << 8) | (bundle[offset + 1] as number);
      leaves.push(bundle.subarray(offset + 2, offset + 2 + length));
      offset += 2 + length;
    }
    assert.equal(leaves.length, 188);
    assert.deepEqual(hexes(leaves.map(leafHash)), hexes(leafHashes.slice(512, 700)));
    assert.equal(log.entryBundle(2, 189), undefined);
    assert.equal(log.entryBundle(0, 0), undefined);
  });

  it('reads entries in bounded ranges', () => {
    const log = openCtLog(new Database(':memory:'), { origin: ORIGIN });
    const entries = [x509Entry(0, 0, 1), x509Entry(0, 1, 1), { leaf: x509Entry(0, 2, 1).leaf }];
    log.appendBatch(entries, 1);
    const read = log.entries(1, 3);
    assert.deepEqual(
      read.map((e) => [e.index, toHex(e.leaf), toHex(e.extraData)]),
      [
        [1, toHex(entries[1]!.leaf), toHex(entries[1]!.extraData!)],
        [2, toHex(entries[2]!.leaf), ''],
      ],
    );
    rejects(() => log.entries(2, 1), CtErrorCode.OUT_OF_RANGE);
    rejects(() => log.entries(0, 4), CtErrorCode.OUT_OF_RANGE);
    rejects(() => log.entries(0, MAX_ENTRIES_PER_READ + 1), CtErrorCode.OUT_OF_RANGE);
    rejects(() => log.entries(-1, 1), CtErrorCode.OUT_OF_RANGE);
  });

  it('refuses bad batches with typed errors and writes nothing', () => {
    const db = new Database(':memory:');
    const log = openCtLog(db, { origin: ORIGIN });
    log.appendBatch([x509Entry(0, 0, 100)], 100);
    const before = rowCounts(db);
    const root = toHex(log.rootAt(1));
    const good = x509Entry(1, 0, 200);
    const cases: Array<[() => unknown, CtErrorCode]> = [
      [
        () => log.appendBatch([good, { leaf: Uint8Array.of(1, 2, 3) }], 200),
        CtErrorCode.INVALID_ENTRY,
      ],
      [
        () => log.appendBatch([good, { leaf: 'x' as unknown as Uint8Array }], 200),
        CtErrorCode.INVALID_ENTRY,
      ],
      [() => log.appendBatch([null as unknown as CtEntryInput], 200), CtErrorCode.INVALID_ENTRY],
      [() => log.appendBatch('x' as unknown as CtEntryInput[], 200), CtErrorCode.INVALID_ENTRY],
      [
        () =>
          log.appendBatch(
            [{ leaf: good.leaf, extraData: new Uint8Array(MAX_EXTRA_DATA_BYTES + 1) }],
            200,
          ),
        CtErrorCode.INVALID_ENTRY,
      ],
      [() => log.appendBatch([good], 99), CtErrorCode.INVALID_TIMESTAMP],
      [() => log.appendBatch([good], -1), CtErrorCode.INVALID_TIMESTAMP],
      [() => log.appendBatch([good], 1.5), CtErrorCode.INVALID_TIMESTAMP],
      [
        () => log.appendBatch(new Array<CtEntryInput>(MAX_BATCH_ENTRIES + 1).fill(good), 200),
        CtErrorCode.BATCH_TOO_LARGE,
      ],
    ];
    for (const [fn, code] of cases) {
      rejects(fn, code);
      assert.deepEqual(rowCounts(db), before);
      assert.equal(log.size, 1);
      assert.equal(toHex(log.rootAt(1)), root);
    }
    // An empty batch writes nothing and returns the latest head.
    assert.equal(log.appendBatch([], 300).treeHead.treeSize, 1);
    assert.deepEqual(rowCounts(db), before);
    rejects(
      () => openCtLog(new Database(':memory:'), { origin: ORIGIN }).appendBatch([], 1),
      CtErrorCode.INVALID_ENTRY,
    );
    // The log still appends normally afterwards.
    assert.equal(log.appendBatch([good], 200).treeHead.treeSize, 2);
  });

  it('rolls back a batch that fails inside the transaction, and keeps its tree', () => {
    const db = new Database(':memory:');
    const log = openCtLog(db, { origin: ORIGIN });
    const tree = new MerkleTree();
    fill(log, tree, [3]);
    const before = rowCounts(db);
    // A trigger makes the third insert of the next batch fail after two rows were written.
    db.exec(`CREATE TRIGGER ct_test_fail BEFORE INSERT ON ct_entry WHEN NEW.idx = 5
             BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`);
    assert.throws(
      () =>
        log.appendBatch(
          [x509Entry(9, 0, 2_000), x509Entry(9, 1, 2_000), x509Entry(9, 2, 2_000)],
          2_000,
        ),
      /disk on fire/,
    );
    assert.deepEqual(rowCounts(db), before);
    db.exec('DROP TRIGGER ct_test_fail');
    fill(log, tree, [4], 20);
    assert.equal(log.size, 7);
  });

  it('follows appends made through another CtLog on the same tables', () => {
    const db = new Database(':memory:');
    const a = openCtLog(db, { origin: ORIGIN });
    const b = openCtLog(db, { origin: ORIGIN });
    const tree = new MerkleTree();
    fill(a, tree, [5]);
    fill(b, tree, [6], 1);
    fill(a, tree, [7], 2);
    assert.equal(toHex(b.rootAt(18)), toHex(tree.root()));
  });

  it('refuses proof requests outside the tree', () => {
    const log = openCtLog(new Database(':memory:'), { origin: ORIGIN });
    log.appendBatch([x509Entry(0, 0, 1), x509Entry(0, 1, 1)], 1);
    for (const fn of [
      () => log.inclusionProof(2, 2),
      () => log.inclusionProof(0, 3),
      () => log.inclusionProof(-1, 2),
      () => log.inclusionProof(0.5, 2),
      () => log.inclusionProof(Number.NaN, 2),
      () => log.consistencyProof(2, 1),
      () => log.consistencyProof(1, 3),
      () => log.rootAt(3),
      () => log.leafHash(2),
    ]) {
      rejects(fn, CtErrorCode.OUT_OF_RANGE);
    }
  });

  it('detects tampered stored hashes when it opens', () => {
    const db = new Database(':memory:');
    fill(openCtLog(db, { origin: ORIGIN }), new MerkleTree(), [5]);
    db.prepare('UPDATE ct_node SET hash = zeroblob(32) WHERE level = 2 AND idx = 0').run();
    rejects(() => openCtLog(db, { origin: ORIGIN }), CtErrorCode.CORRUPT_STORE);
    db.prepare('DELETE FROM ct_node WHERE level = 2 AND idx = 0').run();
    rejects(() => openCtLog(db, { origin: ORIGIN }), CtErrorCode.CORRUPT_STORE);
  });

  it('refuses use after close', () => {
    const log = openCtLog(new Database(':memory:'), { origin: ORIGIN });
    log.close();
    rejects(() => log.size, CtErrorCode.CLOSED);
    rejects(() => log.appendBatch([x509Entry(0, 0, 1)], 1), CtErrorCode.CLOSED);
  });

  it('accepts precert entries', () => {
    const log = openCtLog(new Database(':memory:'), { origin: ORIGIN });
    const leaf = encodeMerkleTreeLeaf({
      timestamp: 7,
      entry: {
        type: 'precert',
        issuerKeyHash: new Uint8Array(32).fill(9),
        tbsCertificate: Uint8Array.of(0x30, 0),
      },
    });
    assert.equal(log.appendBatch([{ leaf }], 7).treeHead.treeSize, 1);
  });
});
