import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import {
  STAGING_OWNER_FILE,
  createStagingDir,
  removeStaleStagingDirs,
} from '../../src/node/ceremony-staging.js';
import { ADDED_NODES_FILE } from '../../src/node/cluster-added-nodes.js';
import { initCluster } from '../../src/node/cluster-init.js';
import { thisProcessHolderText } from '../../src/node/data-dir-lock.js';
import { hypermeshBin } from '../../src/node/process.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { withDeadline } from '../helpers/wait.js';

/**
 * What an interrupted ceremony leaves (src/node/ceremony-staging.ts): `cluster init` and
 * `cluster add-node`, from the built bin (dist/), stopped by SIGINT or SIGTERM in the middle,
 * exit 130 / 143 with their staging directory (every private key) and the add-node lock
 * removed; what a killed run left is removed by the next run.
 */
const DEADLINE_MS = 60_000;
/** The built tree that the bin runs (`npm run build`). */
const dist = path.join(path.dirname(hypermeshBin()), '..', 'dist');

let root: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-cluster-init-interrupt-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  const pid = child.pid;
  assert.ok(pid !== undefined);
  await once(child, 'exit');
  return pid;
}

/**
 * Runs `node <args>`, sends `signal` once a stdout line matches `progress`, and resolves with
 * the exit code and everything it printed.
 */
async function interrupt(
  args: readonly string[],
  progress: RegExp,
  signal: NodeJS.Signals,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => void (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const reached = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      output += `${line}\n`;
      if (progress.test(line)) resolve();
    });
    void exited.then(() => reject(new Error(`exited before ${progress}:\n${output}`)));
  });
  try {
    await withDeadline(reached, DEADLINE_MS, `the progress line ${progress}`);
    child.kill(signal);
    const code = await withDeadline(exited, DEADLINE_MS, `exit after ${signal}`);
    return { code, output };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

describe('an interrupted cluster ceremony', () => {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`cluster init on ${signal} exits ${code} and removes its staging directory`, async () => {
      const parent = path.join(root, `init-${signal}`);
      await mkdir(parent);
      const out = path.join(parent, 'cluster');
      // Eight validators: seconds of key generation and plots after the first line.
      const args = [hypermeshBin(), ...clusterInitArgs(out, 8)];
      const result = await interrupt(args, /^cluster ".*writing /, signal);
      assert.equal(result.code, code, result.output);
      assert.match(result.output, new RegExp(`cluster init interrupted \\(${signal}\\); removed`));
      assert.deepEqual(await readdir(parent), [], 'no cluster and no cluster.tmp-* beside it');
    });
  }

  it('cluster init removes what a killed run left beside the directory, not a running one', async () => {
    const parent = path.join(root, 'stale');
    await mkdir(parent);
    const out = path.join(parent, 'cluster');
    // A killed run's: named by a dead pid, with or without its owner file.
    const dead = await deadPid();
    const withOwner = path.join(parent, `cluster.tmp-${dead}-aaaaaa`);
    await mkdir(withOwner);
    await writeFile(path.join(withOwner, STAGING_OWNER_FILE), `${dead}\n`);
    await writeFile(path.join(withOwner, 'node-1.key'), 'secret');
    const withoutOwner = path.join(parent, `cluster.tmp-${dead}-bbbbbb`);
    await mkdir(withoutOwner);
    // A running ceremony's (this process), and a staging directory of another cluster.
    const running = await createStagingDir(`${out}.tmp-`);
    const other = path.join(parent, `other.tmp-${dead}-cccccc`);
    await mkdir(other);
    const lines: string[] = [];
    await initCluster({
      out,
      validators: 1,
      basePort: 0,
      metricsBasePort: 0,
      progress: (line) => lines.push(line),
    });
    assert.deepEqual(
      (await readdir(parent)).sort(),
      ['cluster', path.basename(running), path.basename(other)].sort(),
    );
    assert.ok(lines.includes(`removed ${withOwner}, left by an interrupted cluster init`));
    // The staging directory's owner file does not reach the cluster.
    await assert.rejects(stat(path.join(out, STAGING_OWNER_FILE)), { code: 'ENOENT' });
    // A pid that runs but a start time that is not its process's: gone too.
    const [pid, boot, start] = (thisProcessHolderText().split('\n')[0] ?? '').split(' ');
    if (boot !== undefined && start !== undefined) {
      await writeFile(
        path.join(running, STAGING_OWNER_FILE),
        `${pid} ${boot} ${Number(start) + 1}\n`,
      );
      assert.deepEqual(
        await removeStaleStagingDirs(parent, (entry) => entry.startsWith('cluster.')),
        [running],
      );
    }
  });

  it('a cleanup keeps a staging directory whose owner file is empty or unreadable while the pid in its name runs', async () => {
    const parent = path.join(root, 'owner-text');
    await mkdir(parent);
    const dead = await deadPid();
    // What a cleanup could have read before the owner file was complete: '' (or garbage).
    const live = [`cluster.tmp-${process.pid}-dddddd`, `cluster.tmp-${process.pid}-eeeeee`];
    const gone = [`cluster.tmp-${dead}-ffffff`, `cluster.tmp-${dead}-gggggg`];
    for (const [index, entry] of [...live, ...gone].entries()) {
      await mkdir(path.join(parent, entry));
      await writeFile(path.join(parent, entry, STAGING_OWNER_FILE), index % 2 === 0 ? '' : 'x 1');
    }
    const removed = await removeStaleStagingDirs(parent, (entry) => entry.startsWith('cluster.'));
    assert.deepEqual(removed.sort(), gone.map((entry) => path.join(parent, entry)).sort());
    assert.deepEqual((await readdir(parent)).sort(), live.sort());
    // The owner file a ceremony writes appears whole, under its own name only.
    const staging = await createStagingDir(path.join(parent, 'other.tmp-'));
    assert.deepEqual(await readdir(staging), [STAGING_OWNER_FILE]);
    assert.equal(
      await readFile(path.join(staging, STAGING_OWNER_FILE), 'utf8'),
      thisProcessHolderText(),
    );
  });

  it('cluster init removes its signal handlers when its staging directory cannot be created', async () => {
    const parent = path.join(root, 'no-staging');
    await mkdir(parent);
    // A name that fits, but not with `.tmp-<pid>-XXXXXX` appended (ENAMETOOLONG, even as root).
    const out = path.join(parent, 'c'.repeat(250));
    const listeners = [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')];
    await assert.rejects(
      initCluster({ out, validators: 1, basePort: 0, metricsBasePort: 0, ca: false }),
      { code: 'ENAMETOOLONG' },
    );
    assert.deepEqual(
      [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')],
      listeners,
    );
    assert.deepEqual(await readdir(parent), []);
  });

  it('cluster init interrupted during its final rename keeps the cluster and says it completed', async () => {
    const parent = path.join(root, 'init-commit');
    await mkdir(parent);
    const out = path.join(parent, 'cluster');
    // From dist/: the signal is sent (and delivered) in the step the interrupt waits for.
    const script = `
      import { initCluster } from ${JSON.stringify(path.join(dist, 'node', 'cluster-init.js'))};
      await initCluster({
        out: ${JSON.stringify(out)},
        validators: 1,
        basePort: 0,
        metricsBasePort: 0,
        ca: false,
        progress: (line) => console.log(line),
        hooks: {
          beforeCommit: async () => {
            const delivered = new Promise((resolve) => process.once('SIGINT', resolve));
            // Signal handles do not keep the event loop alive: this does, until delivery.
            const alive = setInterval(() => undefined, 60_000);
            process.kill(process.pid, 'SIGINT');
            await delivered;
            clearInterval(alive);
          },
        },
      });
      console.log('returned');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    const [code] = (await withDeadline(once(child, 'exit'), DEADLINE_MS, 'cluster init')) as [
      number | null,
    ];
    assert.equal(code, 130, output);
    assert.match(
      output,
      new RegExp(
        `cluster init completed before the interrupt \\(SIGINT\\): the cluster is in ${out.replace(/[.*+?^$()[\]{}|\\]/g, '\\$&')}\n`,
      ),
    );
    assert.doesNotMatch(output, /removed|returned/);
    assert.deepEqual(await readdir(parent), ['cluster'], 'no cluster.tmp-* beside it');
    await stat(path.join(out, 'genesis.json'));
    await assert.rejects(stat(path.join(out, STAGING_OWNER_FILE)), { code: 'ENOENT' });
  });

  it('cluster add-node on SIGINT removes its staging directory and the manifest lock', async () => {
    const cluster = path.join(root, 'add-node');
    await initCluster({ out: cluster, validators: 1, basePort: 0, metricsBasePort: 0, ca: false });
    const before = (await readdir(cluster)).sort();
    // add-node from dist/, held in its key generation (a FALCON backend that never answers) so
    // the signal lands in the middle of the ceremony on any machine.
    const script = `
      import { addClusterNode } from ${JSON.stringify(path.join(dist, 'node', 'cluster-add-node.js'))};
      const falcon = { name: 'held', generateKeyPair: () => new Promise(() => setInterval(() => {}, 1000)) };
      await addClusterNode({
        clusterDir: ${JSON.stringify(cluster)},
        name: 'node-9',
        falcon,
        progress: (line) => console.log(line),
      });`;
    const result = await interrupt(
      ['--input-type=module', '-e', script],
      /adding node node-9$/,
      'SIGINT',
    );
    assert.equal(result.code, 130, result.output);
    assert.match(result.output, /cluster add-node interrupted \(SIGINT\); removed .*\.lock/);
    assert.deepEqual((await readdir(cluster)).sort(), before, 'no .node-9.tmp-*, no lock');
    // Nothing blocks the next run.
    const again = await runCli(['cluster', 'add-node', '--cluster', cluster, '--name', 'node-9']);
    assert.equal(again.code, 0, again.err);
    const manifest = JSON.parse(await readFile(path.join(cluster, ADDED_NODES_FILE), 'utf8')) as {
      nodes: { name: string }[];
    };
    assert.deepEqual(
      manifest.nodes.map((node) => node.name),
      ['node-9'],
    );
  });

  it('cluster add-node names a manifest lock left by a process that no longer runs', async () => {
    const cluster = path.join(root, 'add-node-killed');
    await initCluster({ out: cluster, validators: 1, basePort: 0, metricsBasePort: 0, ca: false });
    const dead = await deadPid();
    await writeFile(path.join(cluster, `${ADDED_NODES_FILE}.lock`), `${dead}\n`);
    const result = await runCli(['cluster', 'add-node', '--cluster', cluster, '--name', 'node-2']);
    assert.equal(result.code, 2);
    assert.match(
      result.err,
      new RegExp(`was left by process ${dead}, which no longer runs .*: remove it and run again`),
    );
  });
});
