/**
 * How the STOQ suite records what it measured: QUIC values with their TLS baseline, the CPU
 * both processes used during a phase, and failures (which become `*_errors` lines instead of
 * ending the run).
 */
import { round, type BenchContext } from '../report.js';
import type { BenchChild } from './control.js';
import { errorText, withTimeout, type RateResult } from './measure.js';
import { STACK_KINDS, type StackKind } from './stack.js';

export const HOST = '127.0.0.1';
export const TLS_BASELINE = 'STOQ over TLS 1.3/TCP';
export const BARE_TLS_BASELINE = 'bare TLS 1.3/TCP transport';
export const MB = 1e6;
export const KIB = 1024;

export type Emit = BenchContext['emit'];
export type PerKind<T> = Partial<Record<StackKind, T>>;

export interface Settings {
  readonly handshakeSeconds: number;
  readonly throughputSeconds: number;
  readonly connections: number;
  readonly openSeconds: number;
  readonly idleMs: number;
  /**
   * Bare transport connections to hold as well (0: skip), to tell the transport's memory from
   * STOQ's. Fewer than `connections`: their cost per connection does not depend on the count
   * (measured: the same at 1,000 and 10,000), and the run must fit in ten minutes.
   */
  readonly bareConnections: number;
}

/** What the run could not measure, for the summary at the end. */
export class Failures {
  readonly lines: string[] = [];
  constructor(
    private readonly emit: Emit,
    private readonly progress: (message: string) => void,
  ) {}

  record(phase: string, count: number, text: string): void {
    this.lines.push(`${phase}: ${count} error(s): ${text}`);
    this.progress(`FAILED ${phase}: ${count} error(s): ${text}`);
    this.emit({ metric: `${phase}_errors`, value: count, unit: 'errors', note: text });
  }

  /** Records the errors of a rate measurement, if it had any. */
  fromRate(phase: string, result: RateResult): void {
    if (result.errors.total > 0) this.record(phase, result.errors.total, result.errors.summary());
  }
}

/** Runs a phase; a thrown error becomes a failure line and `null`. */
export async function attempt<T>(
  failures: Failures,
  phase: string,
  timeoutMs: number,
  run: () => Promise<T>,
): Promise<T | null> {
  try {
    return await withTimeout(run(), timeoutMs, phase);
  } catch (error) {
    failures.record(phase, 1, errorText(error));
    return null;
  }
}

/** A QUIC value with the TLS value as baseline; the TLS value alone if QUIC failed. */
export function emitPair(
  emit: Emit,
  metric: string,
  unit: string,
  values: PerKind<number | null>,
  note: string,
  baselineName = TLS_BASELINE,
): void {
  const quic = values.quic ?? null;
  const tls = values.tls ?? null;
  if (quic !== null) {
    emit({
      metric,
      value: quic,
      unit,
      ...(tls === null ? {} : { baseline: { name: baselineName, value: tls } }),
      note: `QUIC; ${note}`,
    });
  } else if (tls !== null) {
    emit({ metric: `tls_${metric}`, value: tls, unit, note: `TLS only (QUIC failed); ${note}` });
  }
}

export function describeRate(result: RateResult): string {
  return `${result.count} in ${round(result.seconds, 2)} s`;
}

/** Client and server CPU (percent of one core) over one phase. */
export interface CpuShare {
  readonly client: number;
  readonly server: number;
}

/** Runs `run` as `attempt` does, and measures both processes' CPU while it runs. */
export async function withCpu<T>(
  server: BenchChild,
  failures: Failures,
  phase: string,
  timeoutMs: number,
  run: () => Promise<T>,
): Promise<{ result: T | null; cpu: CpuShare | null }> {
  // A server that died fails the phase itself (below); the mark is only a nicety.
  await server.request('cpu-mark').catch(() => undefined);
  const usage = process.cpuUsage();
  const start = performance.now();
  const result = await attempt(failures, phase, timeoutMs, run);
  const used = process.cpuUsage(usage);
  const wallMs = performance.now() - start;
  const serverShare = await server.request('cpu-since').catch(() => null);
  if (result === null || serverShare === null) return { result, cpu: null };
  return {
    result,
    cpu: {
      client: ((used.user + used.system) / 1000 / wallMs) * 100,
      server: Number(serverShare.percentOfCore),
    },
  };
}

/** `CPU (% of one core, client/server): quic 98/45, tls 70/30`. */
export function cpuNote(cpu: PerKind<CpuShare | null>): string {
  const parts = STACK_KINDS.flatMap((kind) => {
    const share = cpu[kind];
    return share ? [`${kind} ${Math.round(share.client)}/${Math.round(share.server)}`] : [];
  });
  return parts.length === 0 ? '' : `; CPU % of one core (client/server): ${parts.join(', ')}`;
}

/** One throughput metric, measured per transport. */
export class Measurement {
  readonly values: PerKind<number | null> = {};
  readonly cpu: PerKind<CpuShare | null> = {};

  constructor(
    readonly metric: string,
    readonly unit: string,
    readonly note: string,
    readonly baselineName = TLS_BASELINE,
  ) {}

  emit(emit: Emit): void {
    const note = `${this.note}${cpuNote(this.cpu)}`;
    emitPair(emit, this.metric, this.unit, this.values, note, this.baselineName);
  }
}
