import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sustains, type StepResult } from '../../bench/consensus/load.js';
import { targetVerdict } from '../../bench/consensus/targets.js';

/** A step that sent what it was offered and committed `committedRate` per second. */
function step(rate: number, committedRate: number): StepResult {
  return {
    rate,
    sentRate: rate,
    committedRate,
    blocks: 10,
    meanBlockTxs: committedRate,
    maxRound: 0,
    latencies: [],
    uncommitted: 0,
    refusals: new Map(),
    lagP99Ms: 0,
    retries: 0,
  };
}

describe('targetVerdict', () => {
  it('misses a rate target the step only offered: 2,000 offered, 1,901 committed', () => {
    const best = step(2_000, 1_901);
    // The 5 % rule calls the step sustained, so judging on the offered rate would say "met".
    assert.equal(sustains(best), true);
    assert.equal(targetVerdict(best, { rate: 2_000 }), 'missed');
    assert.equal(targetVerdict(best, { rate: 2_000, p50Ms: 1_000 }, 500), 'missed');
  });

  it('meets a rate target on the committed rate', () => {
    assert.equal(targetVerdict(step(2_100, 2_000), { rate: 2_000 }), 'met');
    assert.equal(targetVerdict(step(1_500, 1_500), { rate: 1_500 }), 'met');
  });

  it('misses when no step was sustained', () => {
    assert.equal(targetVerdict(undefined, { rate: 1 }), 'missed');
  });

  it('needs the p50 condition when the target has one', () => {
    const best = step(2_000, 2_000);
    const target = { rate: 2_000, p50Ms: 1_000 };
    assert.equal(targetVerdict(best, target, 1_000), 'met');
    assert.equal(targetVerdict(best, target, 1_001), 'missed');
    assert.equal(targetVerdict(best, target, Number.NaN), 'missed');
    assert.equal(targetVerdict(best, target, Number.POSITIVE_INFINITY), 'missed');
    assert.equal(targetVerdict(best, target), 'missed');
  });

  it('misses on a NaN committed rate', () => {
    assert.equal(targetVerdict(step(2_000, Number.NaN), { rate: 2_000 }), 'missed');
  });
});
