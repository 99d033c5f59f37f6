import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { withDeadline } from '../helpers/wait.js';

/**
 * `hypermesh … | head -1`: when the reader of stdout or stderr has gone away, the built CLI
 * (dist/, `npm run build`) ends quietly with 141 (as SIGPIPE would) instead of crashing with an
 * unhandled EPIPE 'error' event and its stack trace.
 *
 * bash points the stream at a process substitution that exits at once and waits for it, so the
 * pipe has no reader before the CLI starts: the first write fails with EPIPE every time.
 */

const bin = path.resolve(import.meta.dirname, '..', '..', 'bin', 'hypermesh.js');
const bash = ['/bin/bash', '/usr/bin/bash'].find((file) => existsSync(file));

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI with file descriptor `fd` (1 or 2) a pipe whose reader has exited. */
function runWithClosedReader(fd: 1 | 2, args: readonly string[]): Promise<Run> {
  const quoted = args.map((arg) => `'${arg}'`).join(' ');
  const script = `exec ${fd}> >(exit 0); wait $!; exec '${process.execPath}' '${bin}' ${quoted}`;
  const child = spawn(bash as string, ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return withDeadline(
    new Promise<Run>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
    ),
    30_000,
    `hypermesh ${args.join(' ')} with fd ${fd} unread to exit`,
  );
}

describe(
  'the CLI with a reader that went away',
  { skip: bash === undefined && 'bash is missing (needed to close the pipe first)' },
  () => {
    it('stdout: exits 141 quietly, no EPIPE stack trace', async () => {
      assert.ok(existsSync(bin), `${bin} missing`);
      const run = await runWithClosedReader(1, ['cluster', 'init', '--help']);
      assert.doesNotMatch(run.stderr, /^\s+at /m);
      assert.doesNotMatch(run.stderr, /EPIPE/);
      assert.equal(run.stderr, '');
      assert.equal(run.code, 141, `exit ${run.code} (${run.signal}): ${run.stderr}`);
    });

    it('stderr: exits 141, not a crash, when the error message cannot be written', async () => {
      const run = await runWithClosedReader(2, ['no-such-command']);
      assert.equal(run.stdout, '');
      assert.equal(run.code, 141, `exit ${run.code} (${run.signal})`);
    });
  },
);
