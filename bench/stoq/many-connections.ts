/**
 * Many concurrent authenticated connections from one client process to one server process
 * (delegated mode), each in a fresh child so resident memory is measured cleanly:
 * time to open them all, memory per connection on both sides, and the idle CPU of both while
 * every connection stays open.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { spawnBenchChild, type BenchChild, type Json, type MemoryStats } from './control.js';
import { withTimeout } from './measure.js';
import type { StackKind } from './stack.js';

export interface ManyConnectionsOptions {
  readonly dir: string;
  readonly kind: StackKind;
  readonly host: string;
  readonly count: number;
  readonly concurrency: number;
  readonly openSeconds: number;
  readonly idleMs: number;
  /** Bare transport connections (no STOQ authentication, no RPC) instead of STOQ sessions. */
  readonly raw: boolean;
  readonly progress: (message: string) => void;
}

export interface SideMeasurements {
  readonly before: MemoryStats;
  readonly after: MemoryStats;
  /** Percent of one core while idle with every connection open. */
  readonly idleCpuPercent: number;
  /** Connections this side held right after the client finished opening them. */
  readonly heldAfterOpen: number;
  /** Connections this side still held after the idle window. */
  readonly heldAfterIdle: number;
}

export interface ManyConnectionsResult {
  readonly kind: StackKind;
  readonly requested: number;
  readonly opened: number;
  readonly failed: number;
  readonly openSeconds: number;
  /** `{"CODE: message": count}` of the connections that failed to open. */
  readonly errors: Record<string, number>;
  readonly server: SideMeasurements;
  readonly client: SideMeasurements;
  readonly warnings: string[];
}

export function perConnectionBytes(
  side: SideMeasurements,
  field: keyof MemoryStats,
  n: number,
): number {
  return (side.after[field] - side.before[field]) / Math.max(1, n);
}

function inboundOf(stats: Json, name: string): number {
  return (stats.inbound as Record<string, number>)[name] ?? 0;
}

export async function manyConnections(
  options: ManyConnectionsOptions,
): Promise<ManyConnectionsResult> {
  const { dir, kind, host, count, progress } = options;
  const name = options.raw ? `${kind}:raw` : `${kind}:delegated`;
  const label = options.raw ? `${kind} transport only` : `${kind} STOQ`;
  const children: BenchChild[] = [];
  try {
    const server = spawnBenchChild('./server.ts', [
      '--dir',
      dir,
      '--host',
      host,
      ...(options.raw ? ['--raw'] : ['--stacks', name]),
      // The endpoint's default limit (16,384) already admits 10,000; raise it only beyond.
      ...(count > 15_000 ? ['--max-inbound', String(count + 1000)] : []),
    ]);
    children.push(server);
    // Both processes start at once (tsx start-up takes seconds on a loaded machine).
    const client = spawnBenchChild('./conns-client.ts', [
      '--dir',
      dir,
      '--kind',
      kind,
      '--host',
      host,
      ...(options.raw ? ['--raw'] : []),
    ]);
    children.push(client);
    client.onEvent((event) => {
      if (event.event === 'progress') {
        progress(`${label}: ${String(event.opened)} open (${String(event.failed)} failed)`);
      }
    });
    const [ready] = await withTimeout(
      Promise.all([server.ready, client.ready]),
      60_000,
      'starting the server and the connection client',
    );
    const ports = (options.raw ? ready.raw : ready.stacks) as Record<string, number>;
    const port = ports[options.raw ? kind : name];
    if (port === undefined) throw new Error('the server did not report its port');

    // Warm both sides up (every code path loaded, caches filled), then take the baselines.
    await client.request('warmup', { port, n: 20 });
    const serverBefore = await server.request('stats', { gc: true });
    const clientBefore = await client.request('stats', { gc: true });

    progress(`${label}: opening ${count} connections, ${options.concurrency} at a time`);
    const opened = await client.request(
      'open',
      { port, count, concurrency: options.concurrency, seconds: options.openSeconds },
      (options.openSeconds + 60) * 1000,
    );
    // A QUIC client counts a connection as open one flight before the server does (RFC 9001
    // §4.1.2: the server's handshake completes on the client's Finished). For bare connections
    // nothing waits for that, so give the server a bounded moment to catch up.
    const settleBy = performance.now() + 10_000;
    while (
      inboundOf(await server.request('stats', { gc: false }), name) < Number(opened.opened) &&
      performance.now() < settleBy
    ) {
      await delay(200);
    }
    const clientAfter = await client.request('stats', { gc: true });
    const serverAfter = await server.request('stats', { gc: true });

    progress(`${label}: measuring idle CPU for ${options.idleMs} ms`);
    const [serverCpu, clientCpu] = await Promise.all([
      server.request('cpu', { ms: options.idleMs }),
      client.request('cpu', { ms: options.idleMs }),
    ]);
    const serverHeld = inboundOf(await server.request('stats', { gc: false }), name);
    const clientHeld = Number((await client.request('alive')).alive);

    const serverWarnings = (serverAfter.warnings as Record<string, { first: string[] }>)[name];
    const clientWarnings = clientAfter.warnings as { first: string[] };
    return {
      kind,
      requested: count,
      opened: Number(opened.opened),
      failed: Number(opened.failed),
      openSeconds: Number(opened.seconds),
      errors: opened.errors as Record<string, number>,
      server: {
        before: serverBefore.memory as MemoryStats,
        after: serverAfter.memory as MemoryStats,
        idleCpuPercent: Number(serverCpu.percentOfCore),
        heldAfterOpen: inboundOf(serverAfter, name),
        heldAfterIdle: serverHeld,
      },
      client: {
        before: clientBefore.memory as MemoryStats,
        after: clientAfter.memory as MemoryStats,
        idleCpuPercent: Number(clientCpu.percentOfCore),
        heldAfterOpen: Number(clientAfter.alive),
        heldAfterIdle: clientHeld,
      },
      warnings: [
        ...(serverWarnings?.first ?? []).map((line) => `server ${line}`),
        ...clientWarnings.first.map((line) => `client ${line}`),
      ],
    };
  } finally {
    // Client first: the server then sees the connections go rather than dropping them itself.
    for (const child of children.reverse()) await child.stop();
  }
}
