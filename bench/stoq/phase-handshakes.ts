/**
 * Handshakes per second for each transport × authentication mode, sequential and 50 in
 * parallel (new connection, full STOQ authentication, close), beside the plain node:tls mTLS
 * handshake rate measured in the same run.
 */
import type { AuthMode, Session } from '../../src/stoq/index.js';
import { round, type BenchContext } from '../report.js';
import { mtlsClient } from './baseline-tls.js';
import type { BenchChild } from './control.js';
import { errorText, measureRate } from './measure.js';
import type { BenchIdentity } from './pki.js';
import {
  HOST,
  attempt,
  cpuNote,
  describeRate,
  withCpu,
  type Failures,
  type PerKind,
  type Settings,
} from './results.js';
import { BENCH_MODES, STACK_KINDS, createStack, stackName, type BenchStack } from './stack.js';

/**
 * Handshake rates; returns one open delegated-mode session per transport for later phases.
 * The stacks it creates are added to `stacks` for the caller to close.
 */
export async function handshakes(
  { emit, progress }: BenchContext,
  settings: Settings,
  failures: Failures,
  server: BenchChild,
  identity: BenchIdentity,
  ports: Record<string, number>,
  baselinePort: number,
  stacks: BenchStack[],
): Promise<PerKind<Session>> {
  const seconds = settings.handshakeSeconds;
  const timeoutMs = (seconds + 30) * 1000;
  const maxCount = 100_000;

  progress('handshakes: node:tls mTLS baseline');
  const mtls = mtlsClient(identity, HOST, baselinePort);
  await measureRate(mtls, { seconds: 0.3, maxCount: 20 });
  const baselines = [];
  for (const concurrency of [1, 50]) {
    const phase = `baseline_mtls_handshakes_${concurrency}`;
    const measured = await withCpu(server, failures, phase, timeoutMs, () =>
      measureRate(mtls, { seconds, maxCount, concurrency }),
    );
    if (measured.result) failures.fromRate(phase, measured.result);
    baselines.push({
      rate: measured.result?.rate ?? 0,
      text: measured.result
        ? `${describeRate(measured.result)}${cpuNote({ tls: measured.cpu })}`
        : 'failed',
    });
  }
  const [sequential, parallel] = baselines as [Baseline, Baseline];
  progress(
    `node:tls mTLS: ${round(sequential.rate, 1)}/s sequential, ${round(parallel.rate, 1)}/s 50 parallel`,
  );

  const sessions: PerKind<Session> = {};
  for (const kind of STACK_KINDS) {
    for (const mode of BENCH_MODES) {
      const name = stackName(kind, mode);
      const port = ports[name];
      if (port === undefined) throw new Error(`the server did not report ${name}`);
      const address = { host: HOST, port };
      let stack: BenchStack;
      try {
        stack = createStack(kind, mode, identity);
      } catch (error) {
        failures.record(`${kind}_${mode}_stack`, 1, errorText(error));
        continue;
      }
      stacks.push(stack);
      const handshake = async (): Promise<void> => {
        const session = await stack.endpoint.connect(address);
        session.connection.close('handshake measured');
      };
      progress(`handshakes: ${name}`);
      await attempt(failures, `${kind}_${mode}_handshake_warmup`, timeoutMs, () =>
        measureRate(handshake, { seconds: 0.3, maxCount: 10 }),
      );
      for (const [label, concurrency] of [
        ['', 1],
        ['_50_parallel', 50],
      ] as const) {
        const metric = `${kind}_${mode}_handshakes${label}_per_s`;
        const { result, cpu } = await withCpu(server, failures, metric, timeoutMs, () =>
          measureRate(handshake, { seconds, maxCount, concurrency }),
        );
        if (result === null) continue;
        failures.fromRate(metric, result);
        const base = concurrency === 1 ? sequential : parallel;
        emit({
          metric,
          value: result.rate,
          unit: 'handshakes/s',
          baseline: {
            name: `node:tls TLS 1.3 mTLS handshake${concurrency === 1 ? '' : ', 50 parallel'}`,
            value: base.rate,
          },
          note:
            `${describeRate(result)}${cpuNote({ [kind]: cpu })}; ${modeNote(mode)}; ` +
            `baseline ${base.text}`,
        });
      }
      if (mode === 'delegated') {
        const session = await attempt(failures, `${kind}_session`, timeoutMs, () =>
          stack.endpoint.connect(address),
        );
        if (session !== null) sessions[kind] = session;
      }
    }
  }
  return sessions;
}

interface Baseline {
  readonly rate: number;
  readonly text: string;
}

function modeNote(mode: AuthMode): string {
  return mode === 'strict'
    ? 'strict: connect + chain check + a fresh FALCON-1024 signature by each side + close'
    : 'delegated: connect + chain check + FALCON-1024 delegation verify + close';
}
