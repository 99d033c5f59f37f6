/**
 * One benchmark result line, as the issue specifies:
 * `{"suite","metric","value","unit","baseline"?: {"name","value"}, "ratio"?}`.
 * A baseline is always measured in the same run, never copied from elsewhere.
 */
export interface BenchResult {
  suite: string;
  metric: string;
  /** null: the measurement has no value (e.g. a latency percentile that never committed). */
  value: number | null;
  unit: string;
  baseline?: { name: string; value: number | null };
  ratio?: number;
  /** Free-form context (library names, parameters) that helps reading the number. */
  note?: string;
}

/** What a suite emits: a measured number, NaN or ±Infinity when there is none. */
export interface Measurement extends Omit<BenchResult, 'suite' | 'ratio' | 'value' | 'baseline'> {
  value: number;
  baseline?: { name: string; value: number };
}

export interface BenchContext {
  readonly quick: boolean;
  emit(result: Measurement): void;
  /** Progress text for a person watching; goes to stderr so stdout stays JSON lines. */
  progress(message: string): void;
}

export type BenchSuite = (context: BenchContext) => Promise<void>;

export function round(value: number, digits = 3): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Rounded, or null when there is no number (JSON has no NaN or Infinity). */
function jsonValue(value: number): number | null {
  return Number.isFinite(value) ? round(value) : null;
}

export function formatResult(suite: string, result: Measurement): string {
  const line: BenchResult = { suite, ...result, value: jsonValue(result.value) };
  if (result.baseline) {
    const { name, value } = result.baseline;
    line.baseline = { name, value: jsonValue(value) };
    const ratio = result.value / value;
    if (value !== 0 && Number.isFinite(ratio)) line.ratio = round(ratio);
  }
  return JSON.stringify(line);
}

/** Runs `task` repeatedly for about `seconds` (bounded by `maxIterations`) and returns ops/s. */
export async function opsPerSecond(
  task: () => Promise<unknown> | unknown,
  seconds: number,
  maxIterations = 10_000_000,
): Promise<number> {
  const start = process.hrtime.bigint();
  const limit = start + BigInt(Math.round(seconds * 1e9));
  let count = 0;
  while (count < maxIterations) {
    await task();
    count++;
    if ((count & 7) === 0 && process.hrtime.bigint() >= limit) break;
  }
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  return count / elapsed;
}
