import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The `hypermesh` entry script, two levels above this file in both src/ and dist/. */
export function hypermeshBin(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.join(here, '..', '..', 'bin', 'hypermesh.js');
}

export interface ChildNode {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves with the first stdout line that parses as JSON with `event: "ready"`. */
  readonly ready: Promise<Record<string, unknown>>;
  /** Calls `listener` for every JSON log line on stderr. */
  onLog(listener: (entry: Record<string, unknown>) => void): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `hypermesh <args>` as a child process and follows its ready line and JSON logs. */
export function spawnHypermesh(name: string, args: readonly string[]): ChildNode {
  const child = spawn(process.execPath, [hypermeshBin(), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const listeners: Array<(entry: Record<string, unknown>) => void> = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
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
    if (entry) for (const listener of listeners) listener(entry);
    else process.stderr.write(`[${name}] ${line}\n`);
  });
  return {
    name,
    child,
    ready,
    onLog: (listener) => listeners.push(listener),
    stop: async (graceMs = 5000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
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
