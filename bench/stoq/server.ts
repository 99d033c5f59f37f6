/**
 * The benchmark's server, in its own process so that it and the client each get a core:
 *
 *   node --import tsx bench/stoq/server.ts --dir <pki dir> --stacks quic:delegated,tls:strict
 *        [--baseline] [--raw] [--host 127.0.0.1] [--max-inbound N]
 *
 * Listens on port 0 with one STOQ endpoint per stack (serving the bench service), optionally
 * the plain node:tls mTLS echo server (handshake baseline) and raw transport sinks, then
 * announces `{"event":"ready", stacks, baseline, raw}` and answers `stats` and `cpu` commands
 * (control.ts) until its stdin closes.
 */
import { parseArgs } from 'node:util';
import { startMtlsEchoServer, type MtlsEchoServer } from './baseline-tls.js';
import { announce, measureCpu, memoryStats, serveCommands } from './control.js';
import { SERVER_NAME, loadBenchIdentity } from './pki.js';
import { startRawSink, type RawSink } from './raw-sink.js';
import { benchHandlers, benchService } from './service.js';
import {
  STACK_KINDS,
  createStack,
  createTransport,
  parseStackName,
  stackName,
  type BenchStack,
} from './stack.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    stacks: { type: 'string', default: '' },
    baseline: { type: 'boolean', default: false },
    raw: { type: 'boolean', default: false },
    'max-inbound': { type: 'string' },
  },
});
if (!values.dir) throw new Error('--dir <pki directory> is required');
const host = values.host ?? '127.0.0.1';
const maxInbound = values['max-inbound'] ? Number(values['max-inbound']) : undefined;

const identity = await loadBenchIdentity(values.dir, SERVER_NAME);
const stacks = new Map<string, BenchStack>();
const ports: Record<string, number> = {};
const closers: (() => Promise<void>)[] = [];

for (const name of (values.stacks ?? '').split(',').filter((entry) => entry !== '')) {
  const { kind, mode } = parseStackName(name);
  const stack = createStack(kind, mode, identity, {
    ...(maxInbound === undefined ? {} : { maxInboundConnections: maxInbound }),
  });
  stack.endpoint.register(benchService, benchHandlers);
  const address = await stack.endpoint.listen({ host, port: 0 });
  stacks.set(stackName(kind, mode), stack);
  ports[name] = address.port;
  closers.push(() => stack.close());
}

let baseline: MtlsEchoServer | null = null;
if (values.baseline) {
  baseline = await startMtlsEchoServer(identity, host);
  closers.push(() => (baseline as MtlsEchoServer).close());
}

const raw: Record<string, number> = {};
const sinks = new Map<string, RawSink>();
if (values.raw) {
  for (const kind of STACK_KINDS) {
    const transport = createTransport(kind, identity);
    const sink = await startRawSink(transport, host);
    raw[kind] = sink.listener.address.port;
    sinks.set(kind, sink);
    closers.push(() => transport.close());
  }
}

/** CPU use between `cpu-mark` and `cpu-since`, so the suite can bracket a phase. */
let cpuMark = { usage: process.cpuUsage(), at: performance.now() };

serveCommands(
  {
    stats: async (command) => {
      const memory = await memoryStats(command.gc === true);
      const inbound: Record<string, number> = {};
      const warnings: Record<string, { count: number; first: string[] }> = {};
      for (const [name, stack] of stacks) {
        inbound[name] = stack.endpoint.inboundConnections;
        warnings[name] = { count: stack.logger.count, first: stack.logger.first };
      }
      for (const [kind, sink] of sinks) inbound[`${kind}:raw`] = sink.open;
      return { memory, inbound, warnings };
    },
    cpu: async (command) => ({ ...(await measureCpu(Number(command.ms ?? 5000))) }),
    'cpu-mark': () => {
      cpuMark = { usage: process.cpuUsage(), at: performance.now() };
      return {};
    },
    'cpu-since': () => {
      const used = process.cpuUsage(cpuMark.usage);
      const wallMs = performance.now() - cpuMark.at;
      return { percentOfCore: ((used.user + used.system) / 1000 / wallMs) * 100 };
    },
  },
  async () => {
    await Promise.allSettled(closers.map((close) => close()));
  },
);

announce('ready', { pid: process.pid, stacks: ports, baseline: baseline?.port ?? null, raw });
