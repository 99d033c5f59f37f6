/**
 * The client side of the many-connections test, in its own process so its memory is measured
 * alone: one STOQ endpoint (delegated mode) opening and holding authenticated connections, or
 * with `--raw` a bare transport holding unauthenticated ones (to tell the transport's share of
 * the memory from STOQ's).
 *
 *   node --import tsx bench/stoq/conns-client.ts --dir <pki dir> --kind quic [--raw]
 *
 * Commands (control.ts): `warmup {port, n}` opens and closes n connections (loads every code
 * path before memory is measured), `open {port, count, concurrency, seconds}` opens and holds
 * connections, `alive` counts those still open, `stats {gc}` and `cpu {ms}` measure the process.
 * The port comes with the commands so this process can start while the server still does.
 */
import { parseArgs } from 'node:util';
import type { TransportConnection } from '../../src/stoq/index.js';
import { announce, measureCpu, memoryStats, serveCommands } from './control.js';
import { errorText } from './measure.js';
import { CLIENT_NAME, loadBenchIdentity } from './pki.js';
import { createStack, createTransport, parseStackName } from './stack.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    kind: { type: 'string', default: 'quic' },
    host: { type: 'string', default: '127.0.0.1' },
    raw: { type: 'boolean', default: false },
  },
});
if (!values.dir) throw new Error('--dir <pki directory> is required');
const { kind, mode } = parseStackName(`${values.kind}:delegated`);
const host = values.host ?? '127.0.0.1';

const identity = await loadBenchIdentity(values.dir, CLIENT_NAME);
const stack = values.raw ? null : createStack(kind, mode, identity);
const bare = values.raw ? createTransport(kind, identity) : null;
const held: TransportConnection[] = [];
let alive = 0;

/** A STOQ session's connection (dialled and authenticated), or a bare transport connection. */
async function connectOnce(port: number): Promise<TransportConnection> {
  const address = { host, port };
  if (stack) return (await stack.endpoint.connect(address)).connection;
  if (bare) return bare.dial(address);
  throw new Error('unreachable: neither a stack nor a bare transport');
}

async function open(port: number, count: number, concurrency: number, seconds: number) {
  const errors = new Map<string, number>();
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  let launched = 0;
  let opened = 0;
  let failed = 0;
  let lastReport = 0;
  const worker = async (): Promise<void> => {
    while (launched < count && performance.now() < deadline) {
      launched += 1;
      try {
        const connection = await connectOnce(port);
        held.push(connection);
        alive += 1;
        void connection.closed.then(() => (alive -= 1));
        opened += 1;
      } catch (error) {
        failed += 1;
        const key = errorText(error);
        errors.set(key, (errors.get(key) ?? 0) + 1);
        // A burst of failures usually means a limit was hit: back off a little.
        if (failed > count / 10) return;
      }
      if (opened - lastReport >= 1000) {
        lastReport = opened;
        announce('progress', { opened, failed, seconds: (performance.now() - start) / 1000 });
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return {
    opened,
    failed,
    seconds: (performance.now() - start) / 1000,
    errors: Object.fromEntries(errors),
  };
}

serveCommands(
  {
    warmup: async (command) => {
      const n = Number(command.n ?? 10);
      for (let i = 0; i < n; i++) {
        const connection = await connectOnce(Number(command.port));
        connection.close('warm-up done');
        await connection.closed;
      }
      return { n };
    },
    open: (command) =>
      open(
        Number(command.port),
        Number(command.count ?? 1000),
        Number(command.concurrency ?? 100),
        Number(command.seconds ?? 300),
      ),
    alive: () => ({ alive, held: held.length }),
    stats: async (command) => ({
      memory: await memoryStats(command.gc === true),
      alive,
      warnings: { count: stack?.logger.count ?? 0, first: stack?.logger.first ?? [] },
    }),
    cpu: async (command) => ({ ...(await measureCpu(Number(command.ms ?? 5000))) }),
  },
  async () => {
    await stack?.close();
    await bare?.close();
  },
);

announce('ready', { pid: process.pid });
