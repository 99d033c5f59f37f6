import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import type { ProofAnchor } from '../../src/consensus/proof/anchor.js';
import { ProofError, ProofErrorCode } from '../../src/consensus/proof/errors.js';
import type { TimeParams } from '../../src/consensus/proof/params.js';
import type {
  SequentialWork,
  SequentialWorkVerification,
} from '../../src/consensus/proof/sequential-work.js';
import {
  computeSequentialWork,
  sampleSegments,
  sequentialWorkSeed,
  verifySequentialWork,
} from '../../src/consensus/proof/sequential-work.js';
import { TimeFailure } from '../../src/consensus/proof/verdict.js';

function assertTimeFailure(
  verdict: ReturnType<typeof verifySequentialWork>,
  reason: TimeFailure,
): void {
  assert.equal(verdict.ok, false, `expected ${reason}, the proof verified`);
  if (verdict.ok) return;
  assert.equal(verdict.part, 'time');
  assert.equal(verdict.reason, reason, verdict.message);
}

function assertProofError(run: () => unknown, code: ProofErrorCode): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ProofError, `expected ProofError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

describe('PoTime: sequential hash chain', () => {
  const params: TimeParams = { iterations: 512, checkpointInterval: 32 };
  const seed = new Uint8Array(randomBytes(32));
  let work: SequentialWork;
  let verification: SequentialWorkVerification;

  before(() => {
    work = computeSequentialWork(seed, params);
    verification = {
      expectedSeed: seed,
      params,
      check: { mode: 'full' },
      sampleBinding: new Uint8Array([1, 2, 3]),
    };
  });

  it('chains PBKDF2-HMAC-SHA-256 segments, checked against RFC 8018 §5.2 written out with createHmac', () => {
    const hmac = (key: Uint8Array, data: Uint8Array) =>
      new Uint8Array(createHmac('sha256', key).update(data).digest());
    let x: Uint8Array = seed;
    for (let j = 0; j < params.iterations / params.checkpointInterval; j++) {
      const salt = new Uint8Array([
        ...new TextEncoder().encode('hypermesh/sequential-work'),
        0,
        0,
        0,
        j,
      ]);
      let u = hmac(x, new Uint8Array([...salt, 0, 0, 0, 1]));
      const t = u.slice();
      for (let i = 1; i < params.checkpointInterval; i++) {
        u = hmac(x, u);
        for (let b = 0; b < 32; b++) t[b] = (t[b] as number) ^ (u[b] as number);
      }
      x = t;
      assert.deepEqual(work.checkpoints[j], x);
    }
  });

  it('verifies the honest chain fully and by sampling', () => {
    assert.deepEqual(verifySequentialWork(work, verification), { ok: true });
    for (const segments of [1, 4, 16, 100]) {
      assert.deepEqual(
        verifySequentialWork(work, { ...verification, check: { mode: 'sampled', segments } }),
        { ok: true },
      );
    }
  });

  it('rejects a wrong checkpoint, naming the segment', () => {
    for (const segment of [0, 7, 15]) {
      const checkpoints = work.checkpoints.map((c, i) => (i === segment ? new Uint8Array(32) : c));
      const verdict = verifySequentialWork({ ...work, checkpoints }, verification);
      assertTimeFailure(verdict, TimeFailure.CHECKPOINT_MISMATCH);
      assert.ok(!verdict.ok && verdict.detail.segment === segment);
    }
  });

  it('rejects a chain with the wrong start', () => {
    const otherSeed = new Uint8Array(randomBytes(32));
    const other = computeSequentialWork(otherSeed, params);
    assertTimeFailure(verifySequentialWork(other, verification), TimeFailure.WRONG_CHAIN_SEED);
    // Relabelled with the expected seed, its first segment does not follow from it.
    const relabelled = { ...other, seed };
    const verdict = verifySequentialWork(relabelled, verification);
    assertTimeFailure(verdict, TimeFailure.CHECKPOINT_MISMATCH);
    assert.ok(!verdict.ok && verdict.detail.segment === 0);
  });

  it('rejects the wrong number of checkpoints', () => {
    assertTimeFailure(
      verifySequentialWork({ ...work, checkpoints: work.checkpoints.slice(1) }, verification),
      TimeFailure.WRONG_CHECKPOINT_COUNT,
    );
    // Half the work with as many checkpoints, spaced C/2 apart, fails the segment checks.
    const half = computeSequentialWork(seed, { iterations: 256, checkpointInterval: 16 });
    assert.equal(half.checkpoints.length, work.checkpoints.length);
    assertTimeFailure(verifySequentialWork(half, verification), TimeFailure.CHECKPOINT_MISMATCH);
  });

  it('samples distinct segments from the transcript; detection depends on the sample', () => {
    const n = work.checkpoints.length;
    const sample = sampleSegments(work, verification.sampleBinding, 4);
    assert.equal(sample.length, 4);
    assert.equal(new Set(sample).size, 4);
    assert.deepEqual(
      sample,
      [...sample].sort((a, b) => a - b),
    );
    assert.ok(sample.every((i) => i >= 0 && i < n));
    assert.deepEqual(sampleSegments(work, verification.sampleBinding, 4), sample);
    assert.deepEqual(sampleSegments(work, verification.sampleBinding, n + 5).length, n);
    const samples = new Set(
      Array.from({ length: 16 }, (_, i) => sampleSegments(work, new Uint8Array([i]), 4).join()),
    );
    assert.ok(samples.size > 1, 'the binding changes the sample');

    // The last segment is faked, so the fake checkpoint is an input to the sample itself.
    const faked = work.checkpoints.map((c, i) => (i === n - 1 ? new Uint8Array(32).fill(9) : c));
    const forged = { ...work, checkpoints: faked };
    const sampled = (binding: Uint8Array) =>
      verifySequentialWork(forged, {
        ...verification,
        sampleBinding: binding,
        check: { mode: 'sampled', segments: 4 },
      });
    let caught = 0;
    let missed = 0;
    for (let i = 0; i < 64; i++) {
      const binding = new Uint8Array([i, 1]);
      const hit = sampleSegments(forged, binding, 4).includes(n - 1);
      const verdict = sampled(binding);
      assert.equal(verdict.ok, !hit);
      if (hit) caught++;
      else missed++;
    }
    assert.ok(caught > 0 && missed > 0, `caught ${caught}, missed ${missed}`);
    assertTimeFailure(verifySequentialWork(forged, verification), TimeFailure.CHECKPOINT_MISMATCH);
  });

  it('seeds from every anchor field', () => {
    const anchor: ProofAnchor = {
      chainId: 'time-test',
      height: 4,
      parentHash: new Uint8Array(randomBytes(32)),
      previousProofOutput: new Uint8Array(randomBytes(32)),
      proposer: new Uint8Array(randomBytes(32)),
    };
    const base = sequentialWorkSeed(anchor);
    const variants: ProofAnchor[] = [
      { ...anchor, chainId: 'other' },
      { ...anchor, height: 5 },
      { ...anchor, parentHash: new Uint8Array(32) },
      { ...anchor, previousProofOutput: new Uint8Array(32) },
      { ...anchor, proposer: new Uint8Array(32) },
    ];
    for (const variant of variants) assert.notDeepEqual(sequentialWorkSeed(variant), base);
  });

  it('refuses bad parameters and seeds', () => {
    assertProofError(
      () => computeSequentialWork(seed, { iterations: 100, checkpointInterval: 32 }),
      ProofErrorCode.INVALID_PARAMS,
    );
    assertProofError(
      () => computeSequentialWork(seed, { iterations: 2 ** 20, checkpointInterval: 1 }),
      ProofErrorCode.INVALID_PARAMS,
    );
    assertProofError(
      () => computeSequentialWork(seed.subarray(1), params),
      ProofErrorCode.INVALID_INPUT,
    );
  });
});
