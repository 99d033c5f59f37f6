import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The `hypermesh` entry script, two levels above this file in both src/ and dist/. */
export function hypermeshBin(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.join(here, '..', '..', 'bin', 'hypermesh.js');
}

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ChildNode {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves with the first stdout line that parses as JSON with `event: "ready"`. */
  readonly ready: Promise<Record<string, unknown>>;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ChildExit>;
  /** Calls `listener` for every JSON log line on stderr. */
  onLog(listener: (entry: Record<string, unknown>) => void): void;
  /** Calls `listener` for every stderr line that is not JSON (e.g. a crash's stack trace). */
  onOutput(listener: (line: string) => void): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<ChildExit>;
}

export interface SpawnOptions {
  /** Environment of the child (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /**
   * Run the child in its own process group, so a terminal's Ctrl-C reaches only the parent,
   * which then stops its children in order.
   */
  readonly detached?: boolean;
}

/**
 * Starts `hypermesh <args>` as a child process and follows its ready line and JSON logs. Stderr
 * lines that are not JSON go to `onOutput` listeners, or to this process's stderr (prefixed with
 * the name) when there are none.
 */
export function spawnHypermesh(
  name: string,
  args: readonly string[],
  options: SpawnOptions = {},
): ChildNode {
  const child = spawn(process.execPath, [hypermeshBin(), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.detached === undefined ? {} : { detached: options.detached }),
  });
  const listeners: Array<(entry: Record<string, unknown>) => void> = [];
  const outputListeners: Array<(line: string) => void> = [];
  const exited = new Promise<ChildExit>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      const entry = parseJson(line);
      if (entry?.event === 'ready') resolve(entry);
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`${name} exited before it was ready (code ${code}, signal ${signal})`)),
    );
  });
  ready.catch(() => undefined);
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
    const entry = parseJson(line);
    if (entry) {
      for (const listener of listeners) listener(entry);
    } else if (outputListeners.length > 0) {
      for (const listener of outputListeners) listener(line);
    } else {
      process.stderr.write(`[${name}] ${line}\n`);
    }
  });
  return {
    name,
    child,
    ready,
    exited,
    onLog: (listener) => listeners.push(listener),
    onOutput: (listener) => outputListeners.push(listener),
    stop: async (graceMs = 5000) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const exit = await exited;
        clearTimeout(timer);
        return exit;
      }
      return exited;
    },
  };
}

function parseJson(line: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
