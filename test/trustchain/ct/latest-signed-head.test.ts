import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { openCtLog, type CtLog } from '../../../src/trustchain/ct/index.js';
import { ORIGIN, cosign, makeValidators, verifierSet, x509Entry } from './fixtures.js';

const validators = makeValidators([1]);
const set = verifierSet(validators);

/** Appends `batches` one-entry batches; returns the tree size after each. */
function appendHeads(log: CtLog, batches: number, from = 0): number[] {
  const sizes: number[] = [];
  for (let b = from; b < from + batches; b++) {
    sizes.push(log.appendBatch([x509Entry(b, 0, b)], b).treeHead.treeSize);
  }
  return sizes;
}

function sign(log: CtLog, size: number): void {
  log.addCheckpointSignatures(size, cosign(log.checkpointBody(size), validators), set);
}

describe('latest signed tree head', () => {
  it('is the largest signed head, whatever order heads were signed in (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (batches, picks) => {
          const log = openCtLog(new Database(':memory:'), { origin: ORIGIN });
          const sizes = appendHeads(log, batches);
          const signed = picks.map((pick) => sizes[pick % sizes.length] as number);
          for (const size of signed) sign(log, size);
          const latest = log.latestSignedCheckpoint();
          if (signed.length === 0) {
            assert.equal(latest, undefined);
            return;
          }
          const expected = Math.max(...signed);
          assert.deepEqual(latest?.treeHead, log.treeHead(expected));
          assert.equal(latest?.note, log.signedCheckpoint(expected));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('reads the signature index from its top instead of every signature or head', () => {
    const traced: string[] = [];
    const db = new Database(':memory:', { verbose: (sql) => traced.push(String(sql)) });
    const log = openCtLog(db, { origin: ORIGIN });
    const sizes = appendHeads(log, 20);
    for (const size of sizes.slice(0, 10)) sign(log, size);

    traced.length = 0;
    assert.equal(log.latestSignedCheckpoint()?.treeHead.treeSize, sizes[9]);
    const reads = traced.filter((sql) => /\bct_signature\b/.test(sql));
    assert.ok(reads.length > 0, 'latestSignedCheckpoint read no signatures');
    for (const sql of reads) {
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as Array<{ detail: string }>)
        .map((row) => row.detail)
        .join('\n');
      // A list subquery materialises every signed tree_size before the head is looked up.
      assert.doesNotMatch(plan, /LIST SUBQUERY/, `${sql}\n${plan}`);
      // Signatures are read through their (tree_size, …) index, never row by row.
      assert.doesNotMatch(plan, /SCAN (ct_signature|s)$/m, `${sql}\n${plan}`);
      if (/^SCAN /m.test(plan)) {
        // A walk is allowed only when the index gives the order and LIMIT 1 stops it at the
        // first row: no sort (which would read all rows first), no walk over ct_tree_head.
        assert.match(sql, /LIMIT 1\s*$/, `${sql}\n${plan}`);
        assert.doesNotMatch(plan, /TEMP B-TREE/, `${sql}\n${plan}`);
        assert.doesNotMatch(plan, /^SCAN (ct_tree_head|h)\b/m, `${sql}\n${plan}`);
      }
    }
  });
});
