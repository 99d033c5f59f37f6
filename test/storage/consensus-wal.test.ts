import assert from 'node:assert/strict';
import {
  appendFileSync,
  readFileSync,
  statSync,
  writeFileSync,
  existsSync,
  mkdirSync,
} from 'node:fs';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeCanonical } from '../../src/codec/cbor.js';
import { isHyperMeshError } from '../../src/codec/error.js';
import type { HyperMeshError } from '../../src/codec/error.js';
import { openConsensusWal } from '../../src/storage/consensus-wal.js';
import type { ConsensusWal } from '../../src/storage/consensus-wal.js';
import {
  ConsensusWalErrorCode,
  FRAME_OVERHEAD,
  SEARCH_CHECKSUM_BUDGET,
  WAL_HEADER,
  encodeFrame,
} from '../../src/storage/wal-format.js';
import type { WalRecord } from '../../src/storage/wal-format.js';
import { temporaryDirectory } from './chain-fixture.js';

const walError = (code: ConsensusWalErrorCode) => (error: unknown) => isHyperMeshError(error, code);

const vote = (height: number, round: number, kind: number): WalRecord => ({
  type: kind,
  payload: new Uint8Array(encodeCanonical({ height, round, block: `block ${height}/${round}` })),
});

const plainRecords = (records: readonly WalRecord[]) =>
  records.map(({ type, payload }) => ({ type, payload: Buffer.from(payload).toString('hex') }));

describe('consensus WAL', () => {
  let dir: Awaited<ReturnType<typeof temporaryDirectory>>;
  let counter = 0;
  const fresh = (): string => dir.file(`wal-${counter++}`);

  before(async () => {
    dir = await temporaryDirectory('wal');
  });
  after(() => dir.cleanup());

  function writeRecords(path: string, records: readonly WalRecord[]): number[] {
    const wal = openConsensusWal(path);
    const sizes: number[] = [wal.sizeBytes()];
    for (const record of records) {
      wal.append(record);
      sizes.push(wal.sizeBytes());
    }
    wal.close();
    return sizes;
  }

  it('replays what was appended, in order, across reopenings', () => {
    const path = fresh();
    const records = [vote(1, 0, 1), vote(1, 0, 2), vote(1, 1, 1)];
    writeRecords(path, records);
    const wal = openConsensusWal(path);
    try {
      assert.equal(wal.truncatedBytes, 0);
      const replay = wal.replay();
      assert.equal(replay.lastEndHeight, null);
      assert.deepEqual(plainRecords(replay.records), plainRecords(records));
      wal.append(vote(1, 2, 1));
      assert.equal(wal.replay().records.length, 4);
      assert.equal(wal.sizeBytes(), statSync(path).size);
    } finally {
      wal.close();
    }
  });

  it('endHeight checkpoints and starts a fresh log; replay starts after the checkpoint', () => {
    const path = fresh();
    const wal = openConsensusWal(path);
    try {
      for (let i = 0; i < 50; i++) wal.append(vote(1, i, 1));
      const before = wal.sizeBytes();
      wal.endHeight(1);
      assert.ok(wal.sizeBytes() < before);
      assert.deepEqual(wal.replay(), { lastEndHeight: 1, records: [] });
      wal.append(vote(2, 0, 1));
      wal.append(vote(2, 0, 2));
      assert.throws(() => wal.endHeight(1), walError(ConsensusWalErrorCode.CHECKPOINT_ORDER));
      assert.throws(() => wal.endHeight(-1), walError(ConsensusWalErrorCode.INVALID_RECORD));
    } finally {
      wal.close();
    }
    const reopened = openConsensusWal(path);
    try {
      const replay = reopened.replay();
      assert.equal(replay.lastEndHeight, 1);
      assert.deepEqual(plainRecords(replay.records), plainRecords([vote(2, 0, 1), vote(2, 0, 2)]));
      reopened.endHeight(2);
      assert.equal(reopened.replay().lastEndHeight, 2);
    } finally {
      reopened.close();
    }
    assert.equal(existsSync(`${path}.tmp`), false);
  });

  it('a rotation that crashed before its rename leaves the old log in force', () => {
    const path = fresh();
    writeRecords(path, [vote(3, 0, 1)]);
    writeFileSync(`${path}.tmp`, Buffer.from([...WAL_HEADER, 1, 2, 3]));
    const wal = openConsensusWal(path);
    try {
      assert.equal(existsSync(`${path}.tmp`), false);
      assert.deepEqual(plainRecords(wal.replay().records), plainRecords([vote(3, 0, 1)]));
    } finally {
      wal.close();
    }
  });

  it('cuts off a torn last record (partial frame, garbage, zeros) and keeps every whole one', () => {
    const records = Array.from({ length: 6 }, (_, i) => vote(4, i, 1 + (i % 3)));
    const tails: [string, (whole: Uint8Array) => Uint8Array][] = [
      ['half a record', (frame) => frame.subarray(0, Math.floor(frame.length / 2))],
      ['a record missing its last byte', (frame) => frame.subarray(0, frame.length - 1)],
      ['only a length prefix', (frame) => frame.subarray(0, 3)],
      [
        'a whole record with a bad checksum',
        (frame) => {
          const copy = new Uint8Array(frame);
          copy[copy.length - 1]! ^= 0xff;
          return copy;
        },
      ],
      ['zeros where the record should be', (frame) => new Uint8Array(frame.length)],
      ['random bytes', (frame) => new Uint8Array(frame.length).map((_, i) => (i * 151 + 7) & 0xff)],
    ];
    for (const [label, tear] of tails) {
      const path = fresh();
      const sizes = writeRecords(path, records);
      const torn = tear(encodeFrame(1, vote(4, 99, 1).payload));
      appendFileSync(path, torn);
      const wal = openConsensusWal(path);
      try {
        assert.equal(wal.truncatedBytes, torn.length, label);
        assert.equal(statSync(path).size, sizes.at(-1), label);
        assert.deepEqual(plainRecords(wal.replay().records), plainRecords(records), label);
        wal.append(vote(5, 0, 1));
        assert.equal(wal.replay().records.length, records.length + 1, label);
      } finally {
        wal.close();
      }
    }
  });

  it('a torn last record whose payload holds an intact frame is still a torn tail', () => {
    // A logged block carries user-chosen transaction bytes, which can spell a whole record.
    const records = [vote(10, 0, 1), vote(10, 1, 2)];
    const embedded = encodeFrame(2, new Uint8Array(encodeCanonical({ forged: 'vote' })));
    const payload = new Uint8Array(200 + embedded.length + 300);
    payload.fill(0x41);
    payload.set(embedded, 200);
    const frame = encodeFrame(1, payload);
    for (const cut of [FRAME_OVERHEAD + 1 + 200 + embedded.length, frame.length - 1]) {
      const path = fresh();
      const sizes = writeRecords(path, records);
      appendFileSync(path, frame.subarray(0, cut));
      const wal = openConsensusWal(path);
      try {
        assert.equal(wal.truncatedBytes, cut);
        assert.equal(statSync(path).size, sizes.at(-1));
        assert.deepEqual(plainRecords(wal.replay().records), plainRecords(records));
      } finally {
        wal.close();
      }
    }
  });

  it('a large torn tail of plausible-looking lengths opens in bounded time', () => {
    // `00 02 00 00` repeated reads as a 128 KiB length at every 4th byte: searching inside the
    // torn record checksummed ~128 KiB per candidate (quadratic, ~20 s for 1 MiB). The bound is
    // generous on purpose; it guards against that regression, not against a slow machine.
    const path = fresh();
    const sizes = writeRecords(path, [vote(11, 0, 1)]);
    const payload = new Uint8Array(2 * 1024 * 1024);
    for (let i = 0; i < payload.length; i += 4) payload[i + 1] = 0x02;
    const torn = encodeFrame(1, payload).subarray(0, FRAME_OVERHEAD + 1 + 1024 * 1024);
    appendFileSync(path, torn);
    const started = performance.now();
    const wal = openConsensusWal(path);
    const elapsedMs = performance.now() - started;
    try {
      assert.equal(wal.truncatedBytes, torn.length);
      assert.equal(statSync(path).size, sizes.at(-1));
    } finally {
      wal.close();
    }
    assert.ok(elapsedMs < 2_000, `opening took ${Math.round(elapsedMs)} ms`);
  });

  it('a torn record whose length reads 0 is cut off without searching its client-chosen payload', () => {
    // A power cut can leave the start of the last write as zeros while later pages of it reached
    // the disk: no length to go by, and the rest is a block's transactions, one of which spells
    // an intact frame. Searching it turned a crash into a node that refused to start.
    const records = [vote(13, 0, 1)];
    const embedded = encodeFrame(2, new Uint8Array(encodeCanonical({ forged: 'vote' })));
    const torn = new Uint8Array(4_500).fill(0x41);
    torn.fill(0, 0, FRAME_OVERHEAD);
    torn.set(embedded, 1_000);
    const path = fresh();
    const sizes = writeRecords(path, records);
    appendFileSync(path, torn);
    const wal = openConsensusWal(path);
    try {
      assert.equal(wal.truncatedBytes, torn.length);
      assert.equal(statSync(path).size, sizes.at(-1));
      assert.deepEqual(plainRecords(wal.replay().records), plainRecords(records));
    } finally {
      wal.close();
    }
  });

  it('damage behind a record whose declared end lies inside the file is searched within a budget', () => {
    // A plausible length ending inside the file (not left by a crash) over bytes full of
    // plausible lengths: the search gives up as CORRUPT instead of checksumming for minutes,
    // and leaves the file.
    const path = fresh();
    const max = 8 * 1024 * 1024;
    const sizes = (() => {
      const wal = openConsensusWal(path, { maxRecordBytes: max });
      wal.append(vote(12, 0, 1));
      const size = wal.sizeBytes();
      wal.close();
      return size;
    })();
    const garbage = new Uint8Array(4 * 1024 * 1024);
    for (let i = 0; i < garbage.length; i += 4) garbage[i + 1] = 0x20; // 2 MiB lengths
    garbage.set([0x00, 0x00, 0x00, 0x10], 0); // 16 bytes: ends well inside the file
    appendFileSync(path, garbage);
    const before = readFileSync(path);
    assert.throws(
      () => openConsensusWal(path, { maxRecordBytes: max }),
      (error: unknown) =>
        walError(ConsensusWalErrorCode.CORRUPT)(error) &&
        (error as HyperMeshError).detail.offset === sizes &&
        (error as HyperMeshError).detail.checksumBudget === SEARCH_CHECKSUM_BUDGET,
    );
    assert.deepEqual(readFileSync(path), before);
  });

  it('a damaged record in the middle is CORRUPT, never skipped', () => {
    const records = Array.from({ length: 5 }, (_, i) => vote(6, i, 1));
    const damage: [string, (bytes: Buffer, start: number) => void][] = [
      ['payload bit flip', (bytes, start) => void (bytes[start + FRAME_OVERHEAD + 3]! ^= 0x01)],
      ['checksum bit flip', (bytes, start) => void (bytes[start + 5]! ^= 0x80)],
      ['length grows', (bytes, start) => void (bytes[start + 3]! += 1)],
      ['length shrinks', (bytes, start) => void (bytes[start + 3]! -= 1)],
      ['type changed', (bytes, start) => void (bytes[start + FRAME_OVERHEAD]! ^= 0x04)],
    ];
    for (const [label, corrupt] of damage) {
      const path = fresh();
      const sizes = writeRecords(path, records);
      const bytes = readFileSync(path);
      corrupt(bytes, sizes[2]!); // the third record
      writeFileSync(path, bytes);
      assert.throws(
        () => openConsensusWal(path),
        (error: unknown) =>
          walError(ConsensusWalErrorCode.CORRUPT)(error) &&
          (error as HyperMeshError).detail.offset === sizes[2],
        label,
      );
      assert.deepEqual(readFileSync(path), bytes, `${label}: the damaged file is left as it was`);
    }
  });

  it('a file that is not a WAL is NOT_A_WAL; a directory is IO_FAILED', () => {
    const path = fresh();
    writeFileSync(path, 'log line one\nlog line two\n');
    assert.throws(() => openConsensusWal(path), walError(ConsensusWalErrorCode.NOT_A_WAL));
    const truncatedHeader = fresh();
    writeFileSync(truncatedHeader, WAL_HEADER.subarray(0, 5));
    assert.throws(
      () => openConsensusWal(truncatedHeader),
      walError(ConsensusWalErrorCode.NOT_A_WAL),
    );
    const directory = fresh();
    mkdirSync(directory);
    assert.throws(() => openConsensusWal(directory), walError(ConsensusWalErrorCode.IO_FAILED));
    assert.throws(
      () => openConsensusWal(dir.file('missing/dir/wal')),
      walError(ConsensusWalErrorCode.IO_FAILED),
    );
  });

  it('refuses invalid records, oversized records and use after close', () => {
    const wal: ConsensusWal = openConsensusWal(fresh(), { maxRecordBytes: 100 });
    assert.throws(
      () => wal.append({ type: 0, payload: new Uint8Array(1) }),
      walError(ConsensusWalErrorCode.INVALID_RECORD),
    );
    assert.throws(
      () => wal.append({ type: 256, payload: new Uint8Array(1) }),
      walError(ConsensusWalErrorCode.INVALID_RECORD),
    );
    assert.throws(
      () => wal.append({ type: 1, payload: 'text' as never }),
      walError(ConsensusWalErrorCode.INVALID_RECORD),
    );
    assert.throws(
      () => wal.append({ type: 1, payload: new Uint8Array(101) }),
      walError(ConsensusWalErrorCode.RECORD_TOO_LARGE),
    );
    wal.append({ type: 1, payload: new Uint8Array(100) });
    wal.append({ type: 255, payload: new Uint8Array(0) });
    assert.equal(wal.replay().records.length, 2);
    wal.close();
    wal.close();
    assert.throws(() => wal.append(vote(1, 0, 1)), walError(ConsensusWalErrorCode.CLOSED));
    assert.throws(() => wal.replay(), walError(ConsensusWalErrorCode.CLOSED));
  });

  it('more unreadable bytes than one record can hold is CORRUPT, not a torn tail', () => {
    const path = fresh();
    const sizes = (() => {
      const wal = openConsensusWal(path, { maxRecordBytes: 64 });
      wal.append({ type: 1, payload: new Uint8Array(10) });
      const size = wal.sizeBytes();
      wal.close();
      return size;
    })();
    appendFileSync(path, new Uint8Array(FRAME_OVERHEAD + 1 + 64 + 1));
    assert.throws(
      () => openConsensusWal(path, { maxRecordBytes: 64 }),
      (error: unknown) =>
        walError(ConsensusWalErrorCode.CORRUPT)(error) &&
        (error as HyperMeshError).detail.offset === sizes,
    );
  });

  it('bytes that appear after opening are damage: replay reports CORRUPT', () => {
    const path = fresh();
    const wal = openConsensusWal(path);
    try {
      wal.append(vote(8, 0, 1));
      appendFileSync(path, new Uint8Array([0, 0, 0, 9, 1, 2]));
      assert.throws(() => wal.replay(), walError(ConsensusWalErrorCode.CORRUPT));
    } finally {
      wal.close();
    }
  });

  it('a checkpoint record with an impossible height is CORRUPT', () => {
    const path = fresh();
    writeRecords(path, [vote(9, 0, 1)]);
    appendFileSync(path, encodeFrame(0, new Uint8Array([1, 2, 3])));
    assert.throws(() => openConsensusWal(path), walError(ConsensusWalErrorCode.CORRUPT));
  });

  it('cut at any byte, the log reopens with exactly the records that were whole', () => {
    const path = fresh();
    const records = fc.sample(
      fc.record({
        type: fc.integer({ min: 1, max: 255 }),
        payload: fc.uint8Array({ maxLength: 300 }),
      }),
      { numRuns: 12, seed: 42 },
    );
    const sizes = writeRecords(path, records);
    const whole = readFileSync(path);
    fc.assert(
      fc.property(fc.integer({ min: WAL_HEADER.length, max: whole.length }), (cut) => {
        const copy = fresh();
        writeFileSync(copy, whole.subarray(0, cut));
        const wal = openConsensusWal(copy);
        try {
          const complete = sizes.filter((size) => size <= cut).length - 1;
          assert.deepEqual(
            plainRecords(wal.replay().records),
            plainRecords(records.slice(0, complete)),
          );
          assert.equal(wal.truncatedBytes, cut - sizes[complete]!);
        } finally {
          wal.close();
        }
      }),
      { numRuns: 80 },
    );
  });
});
