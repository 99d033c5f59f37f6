/**
 * CT log appends in-process: the store every node appends published certificates to
 * (src/trustchain/ct/log-store.ts, `openCtLog` on a file opened with `openDatabase`, as
 * src/node/ca-node.ts does), one `appendBatch` (one SQLite transaction) per batch, against the
 * same bytes written by bare SQLite inserts in the same run: a table of (index, leaf, extra
 * data) in a file opened the same way, one transaction per batch of the same size, no hashing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../src/storage/database.js';
import {
  encodeMerkleTreeLeaf,
  openCtLog,
  type CtEntryInput,
} from '../../src/trustchain/ct/index.js';

export interface CtAppendResult {
  readonly entries: number;
  readonly batch: number;
  readonly leafBytes: number;
  readonly extraBytes: number;
  /** Entries per second through `CtLog.appendBatch`. */
  readonly logRate: number;
  /** Entries per second of bare SQLite inserts of the same bytes. */
  readonly sqliteRate: number;
}

/** Sizes of a P-256 leaf certificate with the batch-inclusion extension and its chain. */
const CERTIFICATE_BYTES = 1_100;
const CHAIN_BYTES = 1_600;
const TIMESTAMP = 1_800_000_000_000;

function entryOf(index: number): CtEntryInput {
  const certificate = new Uint8Array(CERTIFICATE_BYTES);
  new DataView(certificate.buffer).setUint32(0, index);
  certificate.fill(index & 0xff, 4);
  const extraData = new Uint8Array(CHAIN_BYTES).fill(0x30);
  return {
    leaf: encodeMerkleTreeLeaf({ timestamp: TIMESTAMP, entry: { type: 'x509', certificate } }),
    extraData,
  };
}

export function measureCtAppends(options: { entries: number; batch: number }): CtAppendResult {
  const { entries, batch } = options;
  const batches: CtEntryInput[][] = [];
  for (let start = 0; start < entries; start += batch) {
    const size = Math.min(batch, entries - start);
    batches.push(Array.from({ length: size }, (_, i) => entryOf(start + i)));
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'hypermesh-trustchain-ct-'));
  try {
    // Baseline first, so a warmer page cache favours the log, not the baseline.
    const bare = openDatabase(path.join(dir, 'bare.sqlite'));
    bare.exec(
      'CREATE TABLE bench_entry (idx INTEGER PRIMARY KEY, leaf BLOB NOT NULL, extra_data BLOB NOT NULL)',
    );
    const insert = bare.prepare('INSERT INTO bench_entry (idx, leaf, extra_data) VALUES (?, ?, ?)');
    let index = 0;
    const writeBatch = bare.transaction((items: CtEntryInput[]) => {
      for (const item of items) insert.run(index++, item.leaf, item.extraData ?? new Uint8Array(0));
    });
    let start = process.hrtime.bigint();
    for (const items of batches) writeBatch.immediate(items);
    const sqliteSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    bare.close();

    const db = openDatabase(path.join(dir, 'ct.sqlite'));
    const log = openCtLog(db, { origin: 'bench.hypermesh.test/ct' });
    start = process.hrtime.bigint();
    for (const [i, items] of batches.entries()) log.appendBatch(items, TIMESTAMP + i);
    const logSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (log.latestTreeHead()?.treeSize !== entries) {
      throw new Error(
        `the log holds ${log.latestTreeHead()?.treeSize ?? 0} entries, not ${entries}`,
      );
    }
    log.close();
    db.close();
    const first = batches[0]?.[0];
    return {
      entries,
      batch,
      leafBytes: first?.leaf.length ?? 0,
      extraBytes: first?.extraData?.length ?? 0,
      logRate: entries / logSeconds,
      sqliteRate: entries / sqliteSeconds,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
