import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stepLatency } from '../../bench/consensus/load.js';
import { publicationLatency } from '../../bench/trustchain/issuance.js';
import { describeLatency, percentile, percentileCountingMissing } from '../../bench/percentile.js';
import { formatResult } from '../../bench/report.js';

/** Latencies 1..n ms. */
const upTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describe('latency percentiles count transactions that never committed', () => {
  it('100 submitted, 2 never committed: p99 has no finite value, p50 does', () => {
    const result = { latencies: upTo(98), uncommitted: 2 };
    assert.equal(stepLatency(result, 99), Number.POSITIVE_INFINITY);
    assert.equal(stepLatency(result, 50), 50);
    assert.equal(describeLatency(stepLatency(result, 99)), 'none (too many never committed)');
  });

  it('100 submitted, 1 never committed: p99 is the slowest committed one', () => {
    assert.equal(stepLatency({ latencies: upTo(99), uncommitted: 1 }, 99), 99);
  });

  it('unpublished certificates count the same way', () => {
    assert.equal(
      publicationLatency({ latencies: upTo(98), unpublished: 2 }, 99),
      Number.POSITIVE_INFINITY,
    );
    assert.equal(publicationLatency({ latencies: upTo(100), unpublished: 0 }, 99), 99);
  });

  it('nearest rank, unsorted input, nothing at all → NaN', () => {
    assert.equal(percentile([30, 10, 20], 50), 20);
    assert.equal(percentile([30, 10, 20], 100), 30);
    assert.equal(percentile([30, 10, 20], 0), 10);
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.equal(percentileCountingMissing([], 3, 50), Number.POSITIVE_INFINITY);
  });

  it('is finite exactly when at most (100 − p) % never committed', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 300 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 1, max: 99 }),
        (values, missing, p) => {
          const total = values.length + missing;
          const value = percentileCountingMissing(values, missing, p);
          assert.equal(Number.isFinite(value), Math.ceil((p / 100) * total) <= values.length);
          // Counting the missing ones never reports a lower latency than leaving them out.
          assert.ok(value >= percentile(values, p));
        },
      ),
    );
  });

  it('refuses a negative or fractional count and p outside 0..100', () => {
    assert.throws(() => percentileCountingMissing([1], -1, 50), RangeError);
    assert.throws(() => percentileCountingMissing([1], 0.5, 50), RangeError);
    assert.throws(() => percentileCountingMissing([1], 0, 101), RangeError);
    assert.throws(() => percentileCountingMissing([1], 0, Number.NaN), RangeError);
  });
});

describe('formatResult', () => {
  it('prints a value that is not a number as null, valid JSON, without a ratio', () => {
    const line = formatResult('consensus', {
      metric: 'commit_latency_p99_ms',
      value: Number.POSITIVE_INFINITY,
      unit: 'ms',
      baseline: { name: 'kv', value: 120 },
    });
    const parsed = JSON.parse(line) as Record<string, unknown>;
    assert.equal(parsed.value, null);
    assert.deepEqual(parsed.baseline, { name: 'kv', value: 120 });
    assert.equal('ratio' in parsed, false);
    const nanBaseline = JSON.parse(
      formatResult('caesar', {
        metric: 'm',
        value: 5,
        unit: 'ms',
        baseline: { name: 'b', value: Number.NaN },
      }),
    ) as Record<string, unknown>;
    assert.deepEqual(nanBaseline.baseline, { name: 'b', value: null });
    assert.equal('ratio' in nanBaseline, false);
  });

  it('rounds numbers and gives the ratio', () => {
    const parsed = JSON.parse(
      formatResult('s', {
        metric: 'm',
        value: 2.00049,
        unit: 'x',
        baseline: { name: 'b', value: 4 },
      }),
    ) as Record<string, unknown>;
    assert.equal(parsed.value, 2);
    assert.equal(parsed.ratio, 0.5);
    assert.equal(parsed.suite, 's');
  });
});
