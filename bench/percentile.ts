/**
 * Percentiles of the benchmarks' latency samples (nearest rank: the smallest value with at least
 * p % of the samples at or below it).
 */
export function percentile(values: readonly number[], p: number): number {
  return percentileCountingMissing(values, 0, p);
}

/**
 * The p-th percentile over `values.length + missing` samples, each missing one counted as
 * +Infinity. A step's latency percentiles are over every transaction submitted in its window:
 * one that never committed (refused at admission, or not committed by the end of the drain) has
 * no latency below any bound, so leaving it out would report a p99 better than what clients saw.
 * Once more than (100 − p) % are missing, the percentile is +Infinity (JSON: null, see
 * report.ts); with no sample at all it is NaN.
 */
export function percentileCountingMissing(
  values: readonly number[],
  missing: number,
  p: number,
): number {
  if (!(Number.isSafeInteger(missing) && missing >= 0)) {
    throw new RangeError(`missing must be a non-negative integer, got ${missing}`);
  }
  if (!(p >= 0 && p <= 100)) throw new RangeError(`p must be in 0..100, got ${p}`);
  const total = values.length + missing;
  if (total === 0) return Number.NaN;
  const index = Math.min(total - 1, Math.max(0, Math.ceil((p / 100) * total) - 1));
  if (index >= values.length) return Number.POSITIVE_INFINITY;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[index] as number;
}

/** A latency for a progress line: milliseconds, or why there is no value. */
export function describeLatency(ms: number): string {
  if (Number.isFinite(ms)) return `${ms.toFixed(0)} ms`;
  return ms === Number.POSITIVE_INFINITY ? 'none (too many never committed)' : 'n/a';
}
