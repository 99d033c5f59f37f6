import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { readClusterFile, type ClusterFile } from '../../src/node/cluster-file.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';

/**
 * How `hypermesh dev` (this tree's, run from source) stops its one-node cluster besides the
 * first Ctrl-C / SIGTERM that test/node/dev-cluster.test.ts covers: on SIGHUP (the terminal
 * closed); on a second signal, which kills the nodes at once; and with its own output gone (the
 * reader of its stdout left), when it still stops the nodes cleanly, reading their logs until
 * they have exited, and then exits 141. Every path removes cluster.json.
 */
const DEADLINE_MS = 60_000;
const cli = fileURLToPath(new URL('../helpers/cli-source.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');

let root: string;
const runs: DevRun[] = [];
const pids: number[] = [];

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-dev-stop-'));
});
after(async () => {
  for (const run of runs) if (run.child.exitCode === null) run.child.kill('SIGKILL');
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await rm(root, { recursive: true, force: true });
});

interface DevRun {
  readonly child: ChildProcess;
  readonly dir: string;
  /** Its stdout lines and stderr chunks so far; `lines` emits 'line' on each. */
  readonly output: string[];
  readonly lines: EventEmitter;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly cluster: ClusterFile;
  readonly nodePid: number;
  /** Length of node-1's log when the cluster was up: what this run's stop appends comes after. */
  readonly logFrom: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts `dev --nodes 1` in `root/cluster` and resolves once its summary is printed. The first
 * run creates the cluster, the later ones reuse it.
 */
async function startDev(): Promise<DevRun> {
  const dir = path.join(root, 'cluster');
  const child = spawn(
    process.execPath,
    [
      '--import',
      tsx,
      cli,
      'dev',
      '--nodes',
      '1',
      '--dir',
      dir,
      '--base-port',
      '0',
      '--metrics-base-port',
      '0',
      '--start-timeout-ms',
      String(DEADLINE_MS),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  const lines = new EventEmitter();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    output.push(line);
    lines.emit('line');
  });
  const summary = new Promise<void>((resolve, reject) => {
    lines.on('line', () => {
      if (output.some((line) => line.startsWith('Ctrl-C (or SIGTERM) stops the cluster.'))) {
        resolve();
      }
    });
    void exited.then(({ code }) =>
      reject(new Error(`dev exited with ${code} before committing:\n${output.join('\n')}`)),
    );
  });
  const started = { child, dir, output, lines, exited };
  runs.push({ ...started, cluster: undefined as never, nodePid: 0, logFrom: 0 });
  await withDeadline(summary, DEADLINE_MS, 'the first commits');
  const cluster = await readClusterFile(path.join(dir, 'cluster.json'));
  const nodePid = cluster.nodes[0]?.pid as number;
  pids.push(nodePid);
  assert.ok(alive(nodePid), 'node-1 runs');
  const logFrom = (await readFile(path.join(dir, 'node-1', 'node.log'))).length;
  return { ...started, cluster, nodePid, logFrom };
}

/** Resolves once dev has printed a line matching `pattern`. */
function printed(run: DevRun, pattern: RegExp): Promise<void> {
  return waitForCondition(
    run.lines,
    'line',
    () => run.output.some((line) => pattern.test(line)),
    () => `dev printing ${pattern}; it printed:\n${run.output.join('\n')}`,
    30_000,
  );
}

/** dev's exit, then the checks every stop shares: node gone, cluster.json removed. */
async function stopped(run: DevRun, what: string) {
  const exit = await withDeadline(run.exited, 30_000, `dev exiting after ${what}`);
  assert.equal(alive(run.nodePid), false, `node-1 has exited after ${what}`);
  assert.equal(existsSync(path.join(run.dir, 'cluster.json')), false, 'cluster.json removed');
  const log = (await readFile(path.join(run.dir, 'node-1', 'node.log')))
    .subarray(run.logFrom)
    .toString('utf8');
  return { exit, log };
}

describe('hypermesh dev stops', () => {
  it('on SIGHUP (the terminal closed), like on Ctrl-C', async () => {
    const run = await startDev();
    run.child.kill('SIGHUP');
    const { exit, log } = await stopped(run, 'SIGHUP');
    assert.deepEqual(exit, { code: 0, signal: null }, run.output.join('\n'));
    assert.match(run.output.join('\n'), /all nodes stopped/);
    assert.match(log, /"msg":"stopped"/, 'node-1 stopped cleanly');
  });

  it('kills the nodes at once on a second signal', async () => {
    const run = await startDev();
    // A node that does not stop by itself: only SIGKILL ends it.
    process.kill(run.nodePid, 'SIGSTOP');
    run.child.kill('SIGTERM');
    await printed(run, /^stopping the cluster$/);
    run.child.kill('SIGINT');
    const { exit, log } = await stopped(run, 'a second signal');
    assert.deepEqual(exit, { code: 0, signal: null }, run.output.join('\n'));
    const text = run.output.join('\n');
    assert.match(text, /second signal: killing the nodes/);
    assert.match(text, /killed on a second signal: node-1/);
    assert.match(text, /all nodes stopped/);
    assert.doesNotMatch(log, /"msg":"stopped"/);
  });

  it('with its output gone, still stopping the nodes cleanly before it exits 141', async () => {
    const run = await startDev();
    // The reader of dev's stdout goes away: its next line fails with EPIPE.
    run.child.stdout?.destroy();
    run.child.kill('SIGHUP');
    const { exit, log } = await stopped(run, 'SIGHUP with no reader');
    assert.deepEqual(exit, { code: 141, signal: null }, run.output.join('\n'));
    assert.doesNotMatch(run.output.join('\n'), /EPIPE|^\s+at /m);
    // dev kept reading node-1's log until it had exited: its last lines are there.
    assert.match(log, /"msg":"stopping"/);
    assert.match(log, /"msg":"stopped"/, 'node-1 stopped cleanly, not killed by EPIPE');
  });
});
