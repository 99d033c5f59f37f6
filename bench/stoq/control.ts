/**
 * How the suite drives its child processes (the server and the connection-holding client):
 * JSON lines both ways. The parent writes `{id, cmd, ...}` on the child's stdin; the child
 * answers `{id, ok, ...}` on stdout and may announce `{event, ...}` lines of its own (the first
 * is `ready`). A child exits when its stdin closes, so it never outlives the suite.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export type Json = Record<string, unknown>;

export interface MemoryStats {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

/** Memory after a full garbage collection when the process runs with `--expose-gc`. */
export async function memoryStats(collect: boolean): Promise<MemoryStats> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (collect && gc) {
    // Two passes with a pause: weak callbacks and finalizers run between them.
    gc();
    await delay(50);
    gc();
  }
  const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, heapTotal, external, arrayBuffers };
}

export interface CpuSample {
  readonly cpuMs: number;
  readonly wallMs: number;
  /** CPU time of all the process's threads (JS, libuv pool, quinn's runtime) / wall time. */
  readonly percentOfCore: number;
}

/** CPU the whole process used over the next `ms` milliseconds. */
export async function measureCpu(ms: number): Promise<CpuSample> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  await delay(ms);
  const used = process.cpuUsage(cpu);
  const wallMs = performance.now() - start;
  const cpuMs = (used.user + used.system) / 1000;
  return { cpuMs, wallMs, percentOfCore: (cpuMs / wallMs) * 100 };
}

// ---- child side -----------------------------------------------------------------------------

export type CommandHandler = (command: Json) => Promise<Json> | Json;

export function announce(event: string, fields: Json = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

/**
 * Answers commands from stdin until it closes, then calls `shutdown` and exits. Unknown
 * commands and handler failures are answered with `ok: false` and the error text.
 */
export function serveCommands(
  handlers: Record<string, CommandHandler>,
  shutdown: () => Promise<void>,
): void {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    let command: Json;
    try {
      command = JSON.parse(line) as Json;
    } catch {
      process.stderr.write(`ignoring a line that is not JSON: ${line}\n`);
      return;
    }
    const id = command.id;
    const handler = typeof command.cmd === 'string' ? handlers[command.cmd] : undefined;
    const answer = handler
      ? Promise.resolve()
          .then(() => handler(command))
          .then((reply) => ({ id, ok: true, ...reply }))
      : Promise.resolve({ id, ok: false, error: `unknown command ${String(command.cmd)}` });
    void answer
      .catch((error: unknown) => ({ id, ok: false, error: describeError(error) }))
      .then((reply) => process.stdout.write(`${JSON.stringify(reply)}\n`));
  });
  lines.on('close', () => {
    const exit = (): never => process.exit(0);
    // Shutting down 10,000 connections cleanly is not what is measured; cap the wait.
    setTimeout(exit, 3000).unref();
    shutdown().then(exit, exit);
  });
}

/** `CODE: message` for a StoqError (or any HyperMeshError), the message otherwise. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

// ---- parent side ----------------------------------------------------------------------------

export interface BenchChild {
  readonly pid: number;
  /** The child's `ready` announcement. */
  readonly ready: Promise<Json>;
  request(cmd: string, fields?: Json, timeoutMs?: number): Promise<Json>;
  /** Announcements other than `ready` and replies. */
  onEvent(listener: (event: Json) => void): void;
  /** Closes stdin (the child shuts down), then kills it if it has not exited in time. */
  stop(): Promise<void>;
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Spawns `node --expose-gc --import tsx <script> <args>` through bash so the child may hold
 * more file descriptors than the default (`ulimit -n`; 10,000 TCP connections need >10k).
 * Asks for 65536 and falls back to the hard limit when the container caps it.
 */
export function spawnBenchChild(script: string, args: readonly string[]): BenchChild {
  const scriptPath = fileURLToPath(new URL(script, import.meta.url));
  const command = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"';
  const child: ChildProcessByStdio<Writable, Readable, null> = spawn(
    'bash',
    [
      '-c',
      command,
      'bash',
      process.execPath,
      '--expose-gc',
      '--import',
      'tsx',
      scriptPath,
      ...args,
    ],
    { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let nextId = 1;
  const pending = new Map<number, { resolve(reply: Json): void; reject(error: Error): void }>();
  const listeners: ((event: Json) => void)[] = [];
  let resolveReady!: (event: Json) => void;
  let rejectReady!: (error: Error) => void;
  const ready = new Promise<Json>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => undefined);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  child.once('exit', (code, signal) => {
    const error = new Error(`${script} exited (code ${code}, signal ${signal})`);
    rejectReady(error);
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  });
  child.stdin.on('error', () => undefined);
  createInterface({ input: child.stdout }).on('line', (line) => {
    let message: Json;
    try {
      message = JSON.parse(line) as Json;
    } catch {
      process.stderr.write(`[${script}] ${line}\n`);
      return;
    }
    if (typeof message.id === 'number') {
      const waiter = pending.get(message.id);
      pending.delete(message.id);
      if (!waiter) return;
      if (message.ok === true) waiter.resolve(message);
      else waiter.reject(new Error(`${script}: ${String(message.error)}`));
      return;
    }
    if (message.event === 'ready') resolveReady(message);
    else for (const listener of listeners) listener(message);
  });

  return {
    pid: child.pid ?? -1,
    ready,
    onEvent: (listener) => listeners.push(listener),
    request(cmd, fields = {}, timeoutMs = 120_000) {
      const id = nextId++;
      return new Promise<Json>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${script}: no answer to ${cmd} within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (reply) => {
            clearTimeout(timer);
            resolve(reply);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
        child.stdin.write(`${JSON.stringify({ id, cmd, ...fields })}\n`);
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
