/**
 * `npm run bench -- stoq [--quick]`: the STOQ stack, QUIC and TLS-over-TCP side by side in one
 * run (issue #2 §5). The server runs in a child process (bench/stoq/server.ts) so client and
 * server each get a core; every STOQ connection is authenticated for real (dev CA chain +
 * FALCON-1024), in `strict` and `delegated` mode.
 *
 * - Handshakes/s, sequential and 50 in parallel, per transport × mode (new connection, full
 *   STOQ authentication, close). Baseline: plain node:tls TLS 1.3 mTLS in the same run.
 * - 100-byte messages/s on one persistent message stream; unary RPC/s (1 and 32 in flight);
 *   bulk MB/s through one RPC message stream (64 KiB messages). QUIC values carry the
 *   STOQ-over-TLS/TCP value as baseline.
 * - The bare transports below STOQ (no authentication, no RPC), as the floor under the above:
 *   handshakes/s, stream round trips/s, bulk MB/s on one raw stream.
 * - Many concurrent authenticated connections (10,000; 1,000 with --quick) from one client
 *   process to one server process: open rate, memory per connection on both sides, idle CPU;
 *   in the full run also 2,000 bare transport connections (what the transport alone costs per
 *   connection).
 *
 * Nothing is asserted: a failure is reported (an `*_errors` line and stderr) and the run goes on.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import type { BenchContext } from '../report.js';
import { spawnBenchChild, type BenchChild } from '../stoq/control.js';
import { errorText, withTimeout } from '../stoq/measure.js';
import { heldConnections } from '../stoq/phase-held.js';
import { handshakes } from '../stoq/phase-handshakes.js';
import { bareTransports, throughput } from '../stoq/phase-throughput.js';
import { CLIENT_NAME, createBenchPki, loadBenchIdentity } from '../stoq/pki.js';
import { Failures, HOST, type Settings } from '../stoq/results.js';
import { BENCH_MODES, STACK_KINDS, stackName, type BenchStack } from '../stoq/stack.js';

const FULL: Settings = {
  handshakeSeconds: 4,
  throughputSeconds: 5,
  connections: 10_000,
  openSeconds: 300,
  idleMs: 5_000,
  bareConnections: 2_000,
};
const QUICK: Settings = {
  handshakeSeconds: 1,
  throughputSeconds: 1,
  connections: 1_000,
  openSeconds: 60,
  idleMs: 1_500,
  bareConnections: 0,
};

export default async function stoq(harness: BenchContext): Promise<void> {
  const settings = harness.quick ? QUICK : FULL;
  const started = performance.now();
  // Elapsed time on every progress line shows where a run spends its minutes.
  const progress = (message: string): void =>
    harness.progress(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${message}`);
  const context: BenchContext = { ...harness, progress };
  const { emit } = context;
  const failures = new Failures(emit, progress);
  const dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-stoq-bench-'));
  let server: BenchChild | null = null;
  const stacks: BenchStack[] = [];
  try {
    emit({
      metric: 'machine_loadavg_1m_at_start',
      value: loadavg()[0] ?? 0,
      unit: 'load',
      note: 'other processes share this 2-core machine; read the numbers with it',
    });
    progress('creating the dev CA and identities');
    await createBenchPki(dir);
    const identity = await loadBenchIdentity(dir, CLIENT_NAME);

    progress('starting the server process');
    const stackNames = STACK_KINDS.flatMap((kind) =>
      BENCH_MODES.map((mode) => stackName(kind, mode)),
    );
    server = spawnBenchChild('./server.ts', [
      '--dir',
      dir,
      '--host',
      HOST,
      '--stacks',
      stackNames.join(','),
      '--baseline',
      '--raw',
    ]);
    const ready = await withTimeout(server.ready, 60_000, 'starting the server');
    const ports = ready.stacks as Record<string, number>;
    const rawPorts = ready.raw as Record<string, number>;
    const baselinePort = Number(ready.baseline);

    const sessions = await handshakes(
      context,
      settings,
      failures,
      server,
      identity,
      ports,
      baselinePort,
      stacks,
    );
    await throughput(context, settings, failures, server, sessions);
    await bareTransports(context, settings, failures, server, identity, rawPorts);

    const stats = await server.request('stats', { gc: false }).catch((error: unknown) => {
      failures.record('server', 1, errorText(error));
      return { warnings: {} };
    });
    for (const [name, seen] of Object.entries(
      stats.warnings as Record<string, { count: number; first: string[] }>,
    )) {
      if (seen.count > 0)
        progress(`server ${name} logged ${seen.count} warnings: ${seen.first[0]}`);
    }
    for (const stack of stacks.splice(0)) await stack.close();
    await server.stop();
    server = null;

    await heldConnections(context, settings, failures, dir);
  } finally {
    for (const stack of stacks) await stack.close().catch(() => undefined);
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
    emit({ metric: 'machine_loadavg_1m_at_end', value: loadavg()[0] ?? 0, unit: 'load' });
    if (failures.lines.length > 0) {
      progress(`${failures.lines.length} phase(s) failed:\n  ${failures.lines.join('\n  ')}`);
    }
  }
}
