import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { decodeCanonical } from '../../src/codec/cbor.js';
import { openConsensusWal } from '../../src/storage/consensus-wal.js';
import { openStore } from '../../src/storage/store.js';
import { hex, temporaryDirectory } from './chain-fixture.js';

const writer = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');

interface Reported {
  readonly voted: number[];
  readonly saved: Map<number, string>;
  readonly ended: number[];
}

/**
 * Starts the writer and resolves once it has reported `blocks` saved blocks; rejects if it
 * exits first or the deadline passes. Lines keep being collected until the process closes.
 */
function startWriter(storePath: string, walPath: string) {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', tsx, writer, storePath, walPath],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const reported: Reported = { voted: [], saved: new Map(), ended: [] };
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout! });
  const listeners = new Set<() => void>();
  lines.on('line', (line) => {
    const [kind, height, root] = line.split(' ');
    const h = Number(height);
    if (kind === 'voted') reported.voted.push(h);
    else if (kind === 'saved') reported.saved.set(h, root ?? '');
    else if (kind === 'ended') reported.ended.push(h);
    for (const listener of listeners) listener();
  });
  const closed = once(child, 'close');

  const waitForSaved = (blocks: number, deadlineMs: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `writer saved ${reported.saved.size} blocks within ${deadlineMs} ms, wanted ${blocks}; stderr: ${stderr}`,
          ),
        );
      }, deadlineMs);
      const check = () => {
        if (reported.saved.size >= blocks) {
          cleanup();
          resolve();
        }
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`writer exited early (code ${code}); stderr: ${stderr}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        listeners.delete(check);
        child.off('exit', onExit);
      };
      listeners.add(check);
      child.on('exit', onExit);
      check();
    });

  return { child, reported, waitForSaved, closed };
}

describe('crash durability (SIGKILL during a write loop)', () => {
  let dir: Awaited<ReturnType<typeof temporaryDirectory>>;
  const children: ChildProcess[] = [];

  before(async () => {
    dir = await temporaryDirectory('crash');
  });
  after(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await dir.cleanup();
  });

  it('everything reported durable before the kill is there, and the store is consistent', async () => {
    const storePath = dir.file('node.db');
    const walPath = dir.file('node.db.consensus-wal');
    let previousLatest = 0;
    for (let round = 0; round < 3; round++) {
      const run = startWriter(storePath, walPath);
      children.push(run.child);
      await run.waitForSaved(15, 120_000);
      assert.ok(run.child.kill('SIGKILL'));
      await run.closed;
      assert.equal(run.child.signalCode, 'SIGKILL');
      const { voted, saved, ended } = run.reported;

      const store = openStore(storePath);
      try {
        const latest = store.blocks.latestHeight() ?? 0;
        const maxSaved = Math.max(...saved.keys());
        // The block being written at the kill either made it whole or not at all.
        assert.ok(
          latest === maxSaved || latest === maxSaved + 1,
          `latest ${latest}, last reported ${maxSaved}`,
        );
        assert.ok(latest > previousLatest);
        for (const [height, root] of saved) {
          assert.ok(store.blocks.byHeight(height) !== null, `block ${height} was reported saved`);
          assert.ok(store.blocks.commitAt(height) !== null);
          assert.equal(hex(store.state.root(height)), root, `state root at ${height}`);
        }
        const report = store.verifyIntegrity();
        assert.equal(report.latestHeight, latest);
        assert.equal(report.earliestHeight, 1);
        previousLatest = latest;

        const wal = openConsensusWal(walPath);
        try {
          const replay = wal.replay();
          const lastEnded = Math.max(...ended);
          assert.ok((replay.lastEndHeight ?? 0) >= lastEnded, 'a reported checkpoint is durable');
          assert.ok(
            (replay.lastEndHeight ?? 0) <= latest,
            'a height is ended only after its block is saved',
          );
          const lastVoted = Math.max(...voted);
          if (lastVoted > (replay.lastEndHeight ?? 0)) {
            // The vote of the unfinished height must be replayed, so it cannot be signed differently.
            const heights = replay.records.map(
              (record) => (decodeCanonical(record.payload) as { height: number }).height,
            );
            assert.ok(
              heights.includes(lastVoted),
              `vote for ${lastVoted} replayed (got ${heights.join(',')})`,
            );
          }
        } finally {
          wal.close();
        }
      } finally {
        store.close();
      }
    }
  });
});
