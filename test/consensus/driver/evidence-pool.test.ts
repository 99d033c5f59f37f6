import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isHyperMeshError } from '../../../src/codec/error.js';
import { storedEvidence } from '../../../src/consensus/driver/block-checks.js';
import type { LogLevel } from '../../../src/consensus/driver/driver-types.js';
import {
  EvidencePool,
  MAX_PENDING_EVIDENCE,
  PendingEvidenceDrop,
  pendingEvidenceKey,
} from '../../../src/consensus/driver/evidence-pool.js';
import { duplicateVoteEvidence } from '../../../src/consensus/evidence.js';
import { EVIDENCE_MAX_AGE, type HeightContext } from '../../../src/consensus/height-context.js';
import type { DuplicateVoteEvidence } from '../../../src/consensus/types.js';
import { ed25519SignatureVerifier } from '../../../src/consensus/verify.js';
import { encodeEvidence } from '../../../src/consensus/wire.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { StorageErrorCode } from '../../../src/storage/errors.js';
import { openStore, type NodeStore } from '../../../src/storage/index.js';
import { nextBlock } from '../../storage/chain-fixture.js';
import {
  CHAIN_ID,
  makeGenesis,
  makeValidators,
  makeVote,
  type TestValidator,
} from '../sim/fixtures.js';
import { tempDir } from './fixtures.js';

/**
 * The evidence pool writes through to the store's pending-evidence table (evidence-pool.ts):
 * what it holds survives a close and reopen, what it drops leaves the table, and `load` keeps
 * only rows that decode, verify and can still be included.
 */

const dir = tempDir();
after(() => rmSync(dir, { recursive: true, force: true }));

const { validators, set } = makeValidators([10, 10, 10, 10], 21);
const outsider = makeValidators([10], 99).validators[0] as TestValidator;
const verification = { chainId: CHAIN_ID, verifier: ed25519SignatureVerifier };

function validator(index: number): TestValidator {
  return validators[index] as TestValidator;
}

/** Two prevotes of `signer` at `height` and `round`: a block and nil. */
function offence(signer: TestValidator, height: number, round = 0): DuplicateVoteEvidence {
  return duplicateVoteEvidence(
    makeVote(signer, 'prevote', height, round, sha256(Uint8Array.of(height, round))),
    makeVote(signer, 'prevote', height, round, null),
  );
}

/** The next height to decide is `height`; the pool reads only it and the validator sets. */
function contextAt(height: number): HeightContext {
  return { ...makeGenesis(set), height };
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const encoded = (items: readonly DuplicateVoteEvidence[]): string[] =>
  items.map((item) => hex(encodeEvidence(item)));
const byHeightThenKey = (items: readonly DuplicateVoteEvidence[]): DuplicateVoteEvidence[] =>
  [...items].sort(
    (a, b) =>
      a.voteA.height - b.voteA.height ||
      (hex(pendingEvidenceKey(a)) < hex(pendingEvidenceKey(b)) ? -1 : 1),
  );

interface LogLine {
  readonly level: LogLevel;
  readonly message: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

function pool(store: NodeStore, options: { capacity?: number; logs?: LogLine[] } = {}) {
  const logs = options.logs;
  return new EvidencePool({
    store,
    maxPerBlock: 16,
    ...(options.capacity === undefined ? {} : { capacity: options.capacity }),
    log: (level, message, fields = {}) => logs?.push({ level, message, fields }),
  });
}

function storedHeights(store: NodeStore): number[] {
  return store.pendingEvidence.list().map((row) => row.height);
}

describe('EvidencePool: persistence', () => {
  it('keeps what it holds across a store close and reopen, loaded by height then key', () => {
    const path = join(dir, 'reopen.sqlite');
    const first = openStore(path);
    const writer = pool(first);
    assert.deepEqual(writer.load(contextAt(5), verification), { loaded: 0, dropped: [] });
    const items = [offence(validator(0), 4), offence(validator(1), 2), offence(validator(2), 4)];
    for (const item of items) assert.equal(writer.add(item), true);
    // One offence, another pair of votes: the same offence, not added twice.
    const again = duplicateVoteEvidence(
      makeVote(validator(1), 'prevote', 2, 0, sha256(Uint8Array.of(77))),
      makeVote(validator(1), 'prevote', 2, 0, null),
    );
    assert.equal(writer.add(again), false);
    assert.equal(writer.add(items[0] as DuplicateVoteEvidence), false);
    assert.equal(first.pendingEvidence.list().length, 3);
    first.close();

    const second = openStore(path);
    try {
      const reader = pool(second);
      assert.deepEqual(reader.load(contextAt(5), verification), { loaded: 3, dropped: [] });
      assert.equal(reader.size, 3);
      assert.deepEqual(encoded(reader.forBlock(5)), encoded(byHeightThenKey(items)));
      // Found while deciding a height: kept, and proposed from the next height on.
      const current = pool(second);
      assert.equal(current.load(contextAt(4), verification).loaded, 3);
      assert.deepEqual(encoded(current.forBlock(4)), encoded([items[1]!]));
    } finally {
      second.close();
    }
  });

  it('removes committed, aged and included evidence from the table', () => {
    const path = join(dir, 'removal.sqlite');
    const store = openStore(path);
    try {
      const evidencePool = pool(store);
      evidencePool.load(contextAt(3), verification);
      const committed = offence(validator(0), 1);
      const included = offence(validator(1), 2);
      const aged = offence(validator(2), 2, 1);
      const kept = offence(validator(3), 50);
      for (const item of [committed, included, aged, kept]) evidencePool.add(item);
      assert.deepEqual(storedHeights(store), [1, 2, 2, 50]);

      evidencePool.committed([committed, offence(validator(3), 1)]);
      assert.equal(evidencePool.size, 3);
      assert.deepEqual(storedHeights(store), [2, 2, 50]);

      // Another node's block included it (the driver stored the block; `committed` not called).
      store.saveBlock(nextBlock(store, { evidence: [storedEvidence(included)] }));
      const height = 2 + EVIDENCE_MAX_AGE;
      assert.deepEqual(encoded(evidencePool.forBlock(height)), encoded([aged, kept]));
      assert.deepEqual(storedHeights(store), [2, 50]);
      // One height later the offence of height 2 is too old for any block.
      assert.deepEqual(encoded(evidencePool.forBlock(height + 1)), encoded([kept]));
      assert.deepEqual(storedHeights(store), [50]);
      assert.equal(evidencePool.size, 1);
    } finally {
      store.close();
    }
    const reopened = openStore(path);
    try {
      const loaded = pool(reopened);
      assert.deepEqual(loaded.load(contextAt(60), verification), { loaded: 1, dropped: [] });
    } finally {
      reopened.close();
    }
  });

  it('drops every row that does not decode, verify or fit, with a warning, and nothing else', () => {
    const store = openStore(join(dir, 'corrupt.sqlite'));
    try {
      const valid = offence(validator(0), 60);
      const included = offence(validator(2), 61);
      // Another validator's evidence of one offence: the same validator, height, round and
      // vote type as `otherPair` below, with another pair of votes.
      const includedByOther = offence(validator(1), 62);
      const otherPair = duplicateVoteEvidence(
        makeVote(validator(1), 'prevote', 62, 0, sha256(Uint8Array.of(62, 0, 9))),
        makeVote(validator(1), 'prevote', 62, 0, null),
      );
      store.saveBlock(
        nextBlock(store, {
          evidence: [storedEvidence(included), storedEvidence(includedByOther)],
        }),
      );
      const forged: DuplicateVoteEvidence = {
        ...offence(validator(1), 60),
        voteB: {
          ...offence(validator(1), 60).voteB,
          signature: Uint8Array.from(offence(validator(1), 60).voteB.signature, (byte, i) =>
            i === 0 ? byte ^ 1 : byte,
          ),
        },
      };
      const row = (item: DuplicateVoteEvidence) => ({
        key: pendingEvidenceKey(item),
        height: item.voteA.height,
        bytes: encodeEvidence(item),
      });
      const rows = {
        valid: row(valid),
        garbage: { key: randomBytes(32), height: 60, bytes: Uint8Array.of(1, 2, 3) },
        truncated: { ...row(offence(validator(3), 62)), bytes: encodeEvidence(valid).slice(0, 40) },
        forged: row(forged),
        otherKey: {
          ...row(offence(validator(3), 60)),
          key: pendingEvidenceKey(offence(validator(2), 60)),
        },
        otherHeight: { ...row(offence(validator(3), 63)), height: 64 },
        tooOld: row(offence(validator(3), 10)),
        future: row(offence(validator(3), 130)),
        outsider: row(offence(outsider, 60)),
        included: row(included),
        otherPair: row(otherPair),
      };
      for (const value of Object.values(rows)) store.pendingEvidence.put(value);
      const logs: LogLine[] = [];
      const evidencePool = pool(store, { logs });
      const result = evidencePool.load(contextAt(120), verification);
      assert.equal(result.loaded, 1);
      const reasons = Object.fromEntries(result.dropped.map((drop) => [drop.key, drop.reason]));
      assert.deepEqual(reasons, {
        [hex(rows.garbage.key)]: PendingEvidenceDrop.UNDECODABLE,
        [hex(rows.truncated.key)]: PendingEvidenceDrop.UNDECODABLE,
        [hex(rows.forged.key)]: PendingEvidenceDrop.INVALID,
        [hex(rows.otherHeight.key)]: PendingEvidenceDrop.ROW_MISMATCH,
        [hex(rows.otherKey.key)]: PendingEvidenceDrop.ROW_MISMATCH,
        [hex(rows.tooOld.key)]: PendingEvidenceDrop.TOO_OLD,
        [hex(rows.future.key)]: PendingEvidenceDrop.INVALID,
        [hex(rows.outsider.key)]: PendingEvidenceDrop.INVALID,
        [hex(rows.included.key)]: PendingEvidenceDrop.ALREADY_INCLUDED,
        [hex(rows.otherPair.key)]: PendingEvidenceDrop.ALREADY_INCLUDED,
      });
      const warnings = logs.filter((line) => line.level === 'warn');
      assert.equal(warnings.length, result.dropped.length);
      for (const warning of warnings) {
        assert.equal(warning.message, 'stored pending evidence dropped');
        assert.equal(warning.fields.reason, reasons[warning.fields.key as string]);
      }
      assert.match(
        String(warnings.find((line) => line.fields.key === hex(rows.forged.key))?.fields.error),
        /SIGNATURE/,
      );
      // Only the valid row is left; the stored block and its evidence are untouched.
      assert.deepEqual(
        store.pendingEvidence.list().map((stored) => hex(stored.bytes)),
        [hex(rows.valid.bytes)],
      );
      assert.equal(store.blocks.latestHeight(), 1);
      assert.equal(store.blocks.evidenceAt(1).length, 2);
      assert.deepEqual(encoded(evidencePool.forBlock(120)), encoded([valid]));
      assert.deepEqual(pool(store).load(contextAt(120), verification), {
        loaded: 1,
        dropped: [],
      });
    } finally {
      store.close();
    }
  });

  it('is bounded: a full pool drops its oldest offence, in memory and in the table', () => {
    assert.equal(MAX_PENDING_EVIDENCE, 1_024);
    assert.throws(() => pool(openStore(join(dir, 'zero.sqlite')), { capacity: 0 }), RangeError);
    const path = join(dir, 'cap.sqlite');
    const store = openStore(path);
    try {
      const evidencePool = pool(store, { capacity: 3 });
      evidencePool.load(contextAt(20), verification);
      for (const height of [6, 5, 7])
        assert.equal(evidencePool.add(offence(validator(0), height)), true);
      // Older than everything pending: not kept.
      assert.equal(evidencePool.add(offence(validator(1), 4)), false);
      assert.deepEqual(storedHeights(store), [5, 6, 7]);
      assert.equal(evidencePool.add(offence(validator(1), 8)), true);
      assert.equal(evidencePool.size, 3);
      assert.deepEqual(storedHeights(store), [6, 7, 8]);
      assert.deepEqual(
        evidencePool.forBlock(20).map((item) => item.voteA.height),
        [6, 7, 8],
      );
    } finally {
      store.close();
    }
    // Reloaded by a smaller pool: the oldest rows go.
    const reopened = openStore(path);
    try {
      const logs: LogLine[] = [];
      const smaller = pool(reopened, { capacity: 2, logs });
      const result = smaller.load(contextAt(20), verification);
      assert.equal(result.loaded, 2);
      assert.deepEqual(
        result.dropped.map(({ height, reason }) => ({ height, reason })),
        [{ height: 6, reason: PendingEvidenceDrop.OVER_CAPACITY }],
      );
      assert.deepEqual(storedHeights(reopened), [7, 8]);
    } finally {
      reopened.close();
    }
  });

  it('keeps nothing when the row cannot be written, and survives failed deletes', () => {
    const path = join(dir, 'readonly.sqlite');
    const writer = openStore(path);
    const first = pool(writer);
    first.load(contextAt(10), verification);
    first.add(offence(validator(0), 2));
    const reader = openStore(path, { readonly: true });
    try {
      const logs: LogLine[] = [];
      const readOnly = pool(reader, { logs });
      assert.equal(readOnly.load(contextAt(10), verification).loaded, 1);
      assert.throws(
        () => readOnly.add(offence(validator(1), 3)),
        (error: unknown) => isHyperMeshError(error, StorageErrorCode.READ_ONLY),
      );
      assert.equal(readOnly.size, 1);
      // Full: the write fails before the oldest offence is dropped for the new one.
      const full = pool(reader, { capacity: 1 });
      full.load(contextAt(10), verification);
      assert.throws(
        () => full.add(offence(validator(1), 3)),
        (error: unknown) => isHyperMeshError(error, StorageErrorCode.READ_ONLY),
      );
      assert.deepEqual(encoded(full.forBlock(10)), encoded([offence(validator(0), 2)]));
      // A delete that fails is logged; the offence leaves memory (its row goes at the next load).
      assert.deepEqual(readOnly.forBlock(3 + EVIDENCE_MAX_AGE), []);
      assert.equal(readOnly.size, 0);
      assert.ok(logs.some((line) => line.message === 'cannot delete stored pending evidence'));
      assert.deepEqual(storedHeights(writer), [2]);
    } finally {
      reader.close();
      writer.close();
    }
  });
});
