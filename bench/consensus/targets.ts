import type { StepResult } from './load.js';

/**
 * The verdict on a throughput target (issue 3 §5: ≥ 2,000 tx/s with p50 ≤ 1 s; issue 6 §5:
 * ≥ 1,500 transfers/s). A step "sustains" its offered rate when what it committed is within 5 %
 * of it (`sustains`), so the offered rate of the best step may be up to 5 % above what the
 * cluster committed: the target is judged on the committed rate, what the cluster did.
 */
export interface ThroughputTarget {
  /** Committed transactions per second at least. */
  readonly rate: number;
  /** Commit latency p50 at most (ms), when the target has one. */
  readonly p50Ms?: number;
}

export type Verdict = 'met' | 'missed';

/**
 * `best`: the highest sustained step (undefined: none sustained); `p50Ms`: the latency p50
 * measured for the target's latency condition (NaN or +Infinity when there was none).
 */
export function targetVerdict(
  best: Pick<StepResult, 'committedRate'> | undefined,
  target: ThroughputTarget,
  p50Ms?: number,
): Verdict {
  if (best === undefined || !(best.committedRate >= target.rate)) return 'missed';
  if (target.p50Ms === undefined) return 'met';
  return p50Ms !== undefined && Number.isFinite(p50Ms) && p50Ms <= target.p50Ms ? 'met' : 'missed';
}
