import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CliError } from '../../src/node/cli-error.js';
import { initCluster } from '../../src/node/cluster-init.js';
import {
  LOCK_FILE,
  LOCK_LEASE_MS,
  dataDirLockHolder,
  lockDataDir,
  processStartTime,
} from '../../src/node/data-dir-lock.js';
import { createLogger } from '../../src/node/log.js';
import { withDeadline } from '../helpers/wait.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { startValidatorNode } from '../../src/node/validator-node.js';

/**
 * One node per data directory (src/node/data-dir-lock.ts): a second start is refused naming the
 * process that runs the first; a lock left by a process that is gone is taken over; a clean stop
 * removes it, so a restart of the same directory works.
 */
let root: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-data-dir-lock-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

let dirs = 0;
async function freshDir(): Promise<string> {
  const dir = path.join(root, `data-${++dirs}`);
  await mkdir(dir);
  return dir;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  const pid = child.pid;
  assert.ok(pid !== undefined);
  await once(child, 'exit');
  return pid;
}

function refusedNaming(pid: number) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof CliError, String(error));
    assert.match(error.message, new RegExp(`in use by (this )?process.*\\b${pid}\\b`));
    return true;
  };
}

function escape(text: string): string {
  return text.replace(/[[\]().*+?^$|\\{}]/g, '\\$&');
}

/** What this process writes into a lock on Linux: pid, boot id, start time, PID namespace, host. */
function ownText(): string {
  const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return `${process.pid} ${boot} ${processStartTime(process.pid)}\npidns ${readlinkSync('/proc/self/ns/pid')}\nhost ${hostname()}\n`;
}

describe('data directory lock', () => {
  it('is held by one taker at a time and removed on release', async () => {
    const dir = await freshDir();
    const lock = await lockDataDir(dir);
    const file = path.join(dir, LOCK_FILE);
    assert.equal(await readFile(file, 'utf8'), ownText());
    await assert.rejects(lockDataDir(dir), refusedNaming(process.pid));
    await lock.release();
    await assert.rejects(readFile(file), { code: 'ENOENT' });
    const again = await lockDataDir(dir);
    await again.release();
  });

  it('refuses a lock held by another running process, naming it, and leaves it', async () => {
    const dir = await freshDir();
    const file = path.join(dir, LOCK_FILE);
    // The test runner that started this file is a running process other than this one.
    const other = process.ppid;
    await writeFile(file, `${other}\n`);
    await assert.rejects(lockDataDir(dir), refusedNaming(other));
    assert.equal(await readFile(file, 'utf8'), `${other}\n`);
  });

  it('takes over a lock whose process is gone, or unreadable, or of this pid but not held', async () => {
    for (const content of [`${await deadPid()}\n`, 'garbage', '', `${process.pid}\n`]) {
      const dir = await freshDir();
      const file = path.join(dir, LOCK_FILE);
      await writeFile(file, content);
      const lock = await lockDataDir(dir);
      assert.equal(await readFile(file, 'utf8'), ownText(), JSON.stringify(content));
      await lock.release();
    }
  });

  it('tells a live holder from a later process with its pid (crash, reboot: a container node is pid 1 again)', async () => {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const other = process.ppid;
    const start = processStartTime(other);
    assert.ok(start !== null);
    // The same process: refused.
    const live = await freshDir();
    await writeFile(path.join(live, LOCK_FILE), `${other} ${boot} ${start}\n`);
    await assert.rejects(lockDataDir(live), refusedNaming(other));
    // Its pid, but another process (start time) or another boot: the holder is gone.
    const otherBoot = '00000000-0000-4000-8000-000000000000';
    for (const content of [
      `${other} ${boot} ${Number(start) + 1}\n`,
      `${other} ${otherBoot} ${start}\n`,
    ]) {
      const dir = await freshDir();
      const file = path.join(dir, LOCK_FILE);
      await writeFile(file, content);
      const lock = await lockDataDir(dir);
      assert.equal(await readFile(file, 'utf8'), ownText(), content);
      await lock.release();
    }
  });

  it('never judges a lock of another PID namespace or host by its pid: refused and reported', async () => {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const namespace = readlinkSync('/proc/self/ns/pid');
    const otherNamespace = namespace === 'pid:[1]' ? 'pid:[2]' : 'pid:[1]';
    const dead = await deadPid();
    // Each pid would be stale here: gone, this process's own (a container's pid 1), or this
    // pid with another start time.
    const cases = [
      { pid: dead, lines: `pidns ${otherNamespace}\nhost ${hostname()}\n`, where: otherNamespace },
      { pid: process.pid, lines: `pidns ${otherNamespace}\n`, where: otherNamespace },
      {
        pid: process.pid,
        lines: `pidns ${namespace}\nhost other-${hostname()}\n`,
        where: `other-${hostname()}`,
      },
      { pid: dead, lines: `host other-${hostname()}\n`, where: `other-${hostname()}` },
    ];
    for (const { pid, lines, where } of cases) {
      const content = `${pid} ${boot} ${Number(processStartTime(process.pid)) + 1}\n${lines}`;
      const dir = await freshDir();
      const file = path.join(dir, LOCK_FILE);
      await writeFile(file, content);
      await assert.rejects(lockDataDir(dir), (error: unknown) => {
        assert.ok(error instanceof CliError, String(error));
        assert.match(error.message, new RegExp(`in use by pid ${pid} .*${escape(where)}`));
        assert.match(
          error.message,
          /renewed its lease \d+ s ago: stop that node first; if it died, the lock is taken over once its lease is 60 s old/,
        );
        return true;
      });
      assert.equal(await readFile(file, 'utf8'), content, 'the lock is left as it is');
      assert.deepEqual(await readdir(dir), [LOCK_FILE], 'no takeover claim, no staging file');
      const holder = await dataDirLockHolder(dir);
      assert.equal(holder?.pid, pid, content);
      assert.ok(holder.elsewhere !== null);
      assert.ok(
        holder.elsewhere.pidNamespace === where || holder.elsewhere.host === where,
        JSON.stringify(holder),
      );
      // Its holder there stopped renewing the lease (it died, e.g. a container that restarts
      // in a new PID namespace): once the lease is older than LOCK_LEASE_MS it is taken over.
      const expired = new Date(Date.now() - LOCK_LEASE_MS - 5_000);
      await utimes(file, expired, expired);
      const taken = await lockDataDir(dir);
      assert.equal(await readFile(file, 'utf8'), ownText(), `taken over: ${content}`);
      await taken.release();
    }
    // The same namespace and host: judged by pid as before (this stale one is taken over).
    const dir = await freshDir();
    await writeFile(
      path.join(dir, LOCK_FILE),
      `${dead} ${boot} 1\npidns ${namespace}\nhost ${hostname()}\n`,
    );
    assert.equal(await dataDirLockHolder(dir), null);
    const lock = await lockDataDir(dir);
    assert.equal(await readFile(path.join(dir, LOCK_FILE), 'utf8'), ownText());
    assert.deepEqual(await dataDirLockHolder(dir), { pid: process.pid, elsewhere: null });
    await lock.release();
  });

  it('renews the lease of a held lock: its modification time keeps up', async () => {
    const dir = await freshDir();
    const file = path.join(dir, LOCK_FILE);
    let renewed!: () => void;
    const renewal = new Promise<void>((resolve) => (renewed = resolve));
    let aged = false;
    const lock = await lockDataDir(dir, {
      leaseRenewMs: 20,
      onLeaseRenewed: () => {
        if (aged) renewed();
      },
    });
    try {
      const old = new Date(Date.now() - 10 * LOCK_LEASE_MS);
      await utimes(file, old, old);
      aged = true;
      await withDeadline(renewal, 10_000, 'a lease renewal');
      const { mtimeMs } = await stat(file);
      assert.ok(Date.now() - mtimeMs < LOCK_LEASE_MS, `lease ${Date.now() - mtimeMs} ms old`);
    } finally {
      await lock.release();
    }
  });

  it('tells its holder at once when the lock was taken over (paused past its lease)', async () => {
    const dir = await freshDir();
    const file = path.join(dir, LOCK_FILE);
    let lost!: (reason: string) => void;
    const losing = new Promise<string>((resolve) => (lost = resolve));
    const lock = await lockDataDir(dir, { leaseRenewMs: 20, onLost: (reason) => lost(reason) });
    try {
      // Another start, elsewhere, took the directory over while this holder was paused.
      assert.equal(lock.stillHeld(), true);
      const other = `1\npidns pid:[1]\nhost other-${hostname()}\n`;
      await writeFile(file, other);
      // Asked before a signature: read now, so no timer has to run first.
      assert.equal(lock.stillHeld(), false);
      assert.match(await withDeadline(losing, 10_000, 'onLost'), /now names another holder/);
      assert.equal(lock.stillHeld(), false);
      assert.equal(await readFile(file, 'utf8'), other, "the new holder's lock is left alone");
    } finally {
      await lock.release();
    }
    assert.equal(await readFile(file, 'utf8'), `1\npidns pid:[1]\nhost other-${hostname()}\n`);
  });

  it('lets exactly one of two starts take over one stale lock, however they interleave', async () => {
    const stale = `${await deadPid()}\n`;
    for (const first of [0, 1]) {
      const dir = await freshDir();
      const file = path.join(dir, LOCK_FILE);
      await writeFile(file, stale);
      // Both starts judge the stale lock stale before either takes it over; then one goes on
      // while the other is held until the first has finished (or failed).
      let arrived = 0;
      let bothArrived!: () => void;
      const barrier = new Promise<void>((resolve) => (bothArrived = resolve));
      const gates = [0, 1].map(() => {
        let open!: () => void;
        return { opened: new Promise<void>((resolve) => (open = resolve)), open: () => open() };
      });
      const starts = [0, 1].map((index) =>
        lockDataDir(dir, {
          beforeTakeover: async () => {
            if (++arrived === 2) bothArrived();
            await barrier;
            await gates[index]!.opened;
          },
        }),
      );
      await barrier;
      gates[first]!.open();
      await starts[first]!.then(
        () => undefined,
        () => undefined,
      );
      gates[1 - first]!.open();
      const results = await Promise.allSettled(starts);
      const won = results.filter((result) => result.status === 'fulfilled');
      const lost = results.filter((result) => result.status === 'rejected');
      assert.equal(won.length, 1, `first=${first}: ${results.map((r) => r.status).join(', ')}`);
      assert.equal(lost.length, 1);
      assert.ok(refusedNaming(process.pid)((lost[0] as PromiseRejectedResult).reason));
      assert.equal(await readFile(file, 'utf8'), ownText());
      await (won[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
      await assert.rejects(readFile(file), { code: 'ENOENT' });
      // Nothing is left beside the lock: no staging file, no takeover claim.
      assert.deepEqual(await readdir(dir), []);
    }
  });

  it('release leaves a lock file that is no longer its own', async () => {
    const dir = await freshDir();
    const file = path.join(dir, LOCK_FILE);
    const lock = await lockDataDir(dir);
    await writeFile(file, `${process.ppid}\n`);
    await lock.release();
    assert.equal(await readFile(file, 'utf8'), `${process.ppid}\n`);
  });
});

describe('a validator node and its data directory', () => {
  it('refuses a second start of one configuration and starts again after stop', async () => {
    const layout = await initCluster({
      out: path.join(root, 'cluster'),
      validators: 1,
      basePort: 0,
      metricsBasePort: 0,
    });
    const config = await loadValidatorNodeConfig(layout.nodes[0]!.configFile, {});
    const logger = createLogger({ node: 'node-1' }, () => undefined, 'error');
    const first = await startValidatorNode(config, logger);
    try {
      await assert.rejects(startValidatorNode(config, logger), (error: unknown) => {
        assert.ok(error instanceof CliError, String(error));
        assert.match(error.message, /^data directory .* is in use/);
        assert.match(error.message, new RegExp(`in use by this process \\(pid ${process.pid}\\)`));
        return true;
      });
      // The first node still holds it and runs.
      assert.equal(await readFile(path.join(config.dataDir, LOCK_FILE), 'utf8'), ownText());
      assert.equal(first.driver.status().running, true);
    } finally {
      await first.stop();
    }
    await assert.rejects(readFile(path.join(config.dataDir, LOCK_FILE)), { code: 'ENOENT' });
    const second = await startValidatorNode(config, logger);
    await second.stop();
  });
});
