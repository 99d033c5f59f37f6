/**
 * The CT log store (src/trustchain/ct/log-store.ts): append throughput in one SQLite file as
 * the node opens it (WAL, synchronous=FULL, one transaction per block), and proof latency at
 * the final size against the baseline a log without stored subtree hashes would pay, measured
 * in the same run: building the same proof with src/crypto/merkle.ts from all leaf hashes
 * (`MerkleTree.fromLeafHashes(all).inclusionProof(...)`, O(n) hashing per proof).
 *
 *   node --import tsx bench/ct.ts [--entries 50000] [--batch 500] [--proofs 2000]
 *
 * Prints one JSON line per metric (bench/report.ts format). Bounded: at most --entries appends,
 * --proofs store proofs, and 3 s (at most --proofs) of baseline proofs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MerkleTree, leafHash } from '../src/crypto/merkle.js';
import { openDatabase } from '../src/storage/database.js';
import { encodeMerkleTreeLeaf, openCtLog, type CtEntryInput } from '../src/trustchain/ct/index.js';
import { formatResult } from './report.js';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '50000' },
    batch: { type: 'string', default: '500' },
    proofs: { type: 'string', default: '2000' },
  },
});
const ENTRIES = Number(values.entries);
const BATCH = Number(values.batch);
const PROOFS = Number(values.proofs);
for (const [name, value] of [
  ['entries', ENTRIES],
  ['batch', BATCH],
  ['proofs', PROOFS],
] as const) {
  if (!Number.isSafeInteger(value) || value < 1 || value > 10_000_000) {
    throw new RangeError(`--${name} must be an integer in 1..10000000`);
  }
}

const emit = (result: Parameters<typeof formatResult>[1]): void => {
  process.stdout.write(`${formatResult('ct', result)}\n`);
};

/** mulberry32, so every run proves the same (index, size) pairs. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A ~1 KB certificate-sized entry, unique per index. */
function entry(index: number): CtEntryInput {
  const certificate = new Uint8Array(1_000);
  new DataView(certificate.buffer).setUint32(0, index);
  certificate.fill(index & 0xff, 4);
  return {
    leaf: encodeMerkleTreeLeaf({
      timestamp: 1_700_000_000_000,
      entry: { type: 'x509', certificate },
    }),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'hypermesh-bench-ct-'));
try {
  const db = openDatabase(join(dir, 'node.sqlite'));
  const log = openCtLog(db, { origin: 'bench.hypermesh.test/ct' });
  const batches: CtEntryInput[][] = [];
  for (let start = 0; start < ENTRIES; start += BATCH) {
    batches.push(
      Array.from({ length: Math.min(BATCH, ENTRIES - start) }, (_, i) => entry(start + i)),
    );
  }

  const appendStart = process.hrtime.bigint();
  for (const [i, batch] of batches.entries()) log.appendBatch(batch, 1_700_000_000_000 + i);
  const appendSeconds = Number(process.hrtime.bigint() - appendStart) / 1e9;
  emit({
    metric: 'append_entries_per_second',
    value: ENTRIES / appendSeconds,
    unit: 'entries/s',
    note: `${ENTRIES} entries of ~1 KB in ${batches.length} batches of ${BATCH}, one SQLite transaction each (WAL, synchronous=FULL)`,
  });

  // The same leaves in memory only: what the hashing alone costs.
  const leafHashes = batches.flat().map((e) => leafHash(e.leaf));
  const memoryStart = process.hrtime.bigint();
  MerkleTree.fromLeafHashes(leafHashes);
  const memorySeconds = Number(process.hrtime.bigint() - memoryStart) / 1e9;
  emit({
    metric: 'in_memory_tree_build_entries_per_second',
    value: ENTRIES / memorySeconds,
    unit: 'entries/s',
    note: 'MerkleTree.fromLeafHashes over the same leaf hashes (no storage), for scale',
  });

  const random = seeded(6962);
  const pairs = Array.from({ length: PROOFS }, () => {
    const size = 1 + Math.floor(random() * ENTRIES);
    return { size, index: Math.floor(random() * size), first: 1 + Math.floor(random() * size) };
  });

  let start = process.hrtime.bigint();
  for (const { index, size } of pairs) log.inclusionProof(index, size);
  const storeInclusion = Number(process.hrtime.bigint() - start) / 1e3 / PROOFS;
  start = process.hrtime.bigint();
  for (const { first, size } of pairs) log.consistencyProof(first, size);
  const storeConsistency = Number(process.hrtime.bigint() - start) / 1e3 / PROOFS;

  const baseline = (prove: (tree: MerkleTree, p: (typeof pairs)[number]) => unknown): number => {
    const limit = process.hrtime.bigint() + 3_000_000_000n;
    const begin = process.hrtime.bigint();
    let count = 0;
    while (count < PROOFS && (count === 0 || process.hrtime.bigint() < limit)) {
      const pair = pairs[count] as (typeof pairs)[number];
      prove(MerkleTree.fromLeafHashes(leafHashes.slice(0, pair.size)), pair);
      count++;
    }
    return Number(process.hrtime.bigint() - begin) / 1e3 / count;
  };
  const baselineInclusion = baseline((tree, p) => tree.inclusionProof(p.index, p.size));
  const baselineConsistency = baseline((tree, p) => tree.consistencyProof(p.first, p.size));
  emit({
    metric: 'inclusion_proof_latency',
    value: storeInclusion,
    unit: 'µs',
    baseline: { name: 'merkle.ts tree rebuilt from all leaves', value: baselineInclusion },
    note: `${PROOFS} random (index, size) pairs, sizes up to ${ENTRIES}; store reads O(log n) rows`,
  });
  emit({
    metric: 'consistency_proof_latency',
    value: storeConsistency,
    unit: 'µs',
    baseline: { name: 'merkle.ts tree rebuilt from all leaves', value: baselineConsistency },
    note: `${PROOFS} random (first, second) pairs, sizes up to ${ENTRIES}`,
  });
  db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
