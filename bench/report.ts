/**
 * One benchmark result line, as the issue specifies:
 * `{"suite","metric","value","unit","baseline"?: {"name","value"}, "ratio"?}`.
 * A baseline is always measured in the same run, never copied from elsewhere.
 */
export interface BenchResult {
  suite: string;
  metric: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  ratio?: number;
  /** Free-form context (library names, parameters) that helps reading the number. */
  note?: string;
}

export interface BenchContext {
  readonly quick: boolean;
  emit(result: Omit<BenchResult, 'suite' | 'ratio'>): void;
  /** Progress text for a person watching; goes to stderr so stdout stays JSON lines. */
  progress(message: string): void;
}

export type BenchSuite = (context: BenchContext) => Promise<void>;

export function round(value: number, digits = 3): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export function formatResult(suite: string, result: Omit<BenchResult, 'suite' | 'ratio'>): string {
  const line: BenchResult = { suite, ...result, value: round(result.value) };
  if (result.baseline) {
    line.baseline = { name: result.baseline.name, value: round(result.baseline.value) };
    if (result.baseline.value !== 0) line.ratio = round(result.value / result.baseline.value);
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
