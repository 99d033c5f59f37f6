import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { main } from '../../src/node/cli.js';
import { CliError } from '../../src/node/cli-error.js';
import { CLUSTER_FILES, initCluster } from '../../src/node/cluster-init.js';
import { DATA_DIR_MARKER, runningClusterNodes } from '../../src/node/cluster-running-nodes.js';
import { LOCK_FILE, lockDataDir } from '../../src/node/data-dir-lock.js';
import { ensureDevCluster, runDevCluster, type DevClusterOptions } from '../../src/node/dev.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { withDeadline } from '../helpers/wait.js';

/**
 * What `hypermesh dev` and `cluster init --force` may delete (src/node/dev.ts,
 * cluster-running-nodes.ts): dev replaces only a cluster it created itself, and neither replaces
 * a cluster (nor dev touches its cluster.json) while a node of it runs.
 */
let root: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-cluster-dir-guard-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Every file under `dir` with its content (directories as ''), to compare before and after. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath, entry.name);
    files.set(
      path.relative(dir, file),
      entry.isDirectory() ? '' : (await readFile(file)).toString('base64'),
    );
  }
  return files;
}

function devOptions(dir: string, nodes: number): DevClusterOptions {
  return {
    dir,
    nodes,
    host: '127.0.0.1',
    basePort: 0,
    metricsBasePort: 0,
    startTimeoutMs: 1000,
    out: () => undefined,
    // Never interrupted: a run that got past the checks would start nodes (and fail the test).
    interrupted: new Promise<void>(() => undefined),
  };
}

function refused(pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof CliError, String(error));
    assert.match(error.message, pattern);
    return true;
  };
}

/** A node.lock in `node-1`'s data directory naming a running process other than this one. */
async function holdNode1(dir: string): Promise<string> {
  const dataDir = path.join(dir, 'node-1', CLUSTER_FILES.dataDir);
  await mkdir(dataDir, { recursive: true });
  // The test runner that started this file is a running process other than this one.
  await writeFile(path.join(dataDir, LOCK_FILE), `${process.ppid}\n`);
  return path.join(dataDir, LOCK_FILE);
}

describe('cluster directories that dev and cluster init --force replace', () => {
  it('dev refuses to replace a cluster it did not create, and leaves it untouched', async () => {
    const dir = path.join(root, 'made-by-init');
    await initCluster({ out: dir, validators: 1, basePort: 0, metricsBasePort: 0 });
    const before = await snapshot(dir);
    // Another size: dev would have to replace the cluster.
    await assert.rejects(
      runDevCluster(devOptions(dir, 2)),
      refused(/was not created by "hypermesh dev" \(no \.hypermesh-dev\).*another --dir/),
    );
    assert.deepEqual(await snapshot(dir), before);
    const cli = await runCli(['dev', '--nodes', '2', '--dir', dir, '--base-port', '0']);
    assert.equal(cli.code, 1, cli.err);
    assert.match(cli.err, /was not created by "hypermesh dev"/);
    assert.deepEqual(await snapshot(dir), before);
  });

  it('dev replaces a cluster it created once none of its nodes runs', async () => {
    const dir = path.join(root, 'made-by-dev');
    const first = await ensureDevCluster(devOptions(dir, 1));
    await stat(path.join(dir, CLUSTER_FILES.devMarker));
    const lock = await holdNode1(dir);
    assert.deepEqual(
      (await runningClusterNodes(dir)).map((node) => [node.node, node.pid]),
      [['node-1', process.ppid]],
    );
    const before = await snapshot(dir);
    await assert.rejects(
      ensureDevCluster(devOptions(dir, 2)),
      refused(new RegExp(`node-1 \\(pid ${process.ppid}\\); stop them`)),
    );
    assert.deepEqual(await snapshot(dir), before);
    // The holder is gone (the lock is stale): replaced.
    await rm(lock);
    const second = await ensureDevCluster(devOptions(dir, 2));
    assert.equal(second.nodes.length, 2);
    assert.notEqual(second.nodes[0]?.id, first.nodes[0]?.id);
    await stat(path.join(dir, CLUSTER_FILES.devMarker));
  });

  it('cluster init --force replaces only a directory that reads as a cluster and holds nothing else', async () => {
    // A project directory with a stray genesis.json.
    const project = path.join(root, 'project');
    await mkdir(path.join(project, 'src'), { recursive: true });
    await writeFile(path.join(project, 'src', 'thesis.tex'), 'precious\n');
    await writeFile(path.join(project, CLUSTER_FILES.genesis), '{}\n');
    const before = await snapshot(project);
    const forced = await runCli([...clusterInitArgs(project, 1), '--force']);
    assert.equal(forced.code, 2, forced.err);
    assert.match(
      forced.err,
      /is not empty and it does not read as a cluster directory: invalid genesis .*genesis\.json.*--force only replaces a cluster directory "cluster init" wrote/,
    );
    assert.deepEqual(await snapshot(project), before);

    // A cluster directory the operator also keeps other things in.
    const cluster = path.join(root, 'cluster-and-more');
    await initCluster({ out: cluster, validators: 1, basePort: 0, metricsBasePort: 0, ca: false });
    await writeFile(path.join(cluster, 'notes.txt'), 'keep me\n');
    const withNotes = await snapshot(cluster);
    await assert.rejects(
      initCluster({
        out: cluster,
        validators: 1,
        basePort: 0,
        metricsBasePort: 0,
        ca: false,
        force: true,
      }),
      refused(/it also holds "notes\.txt", which a cluster directory does not; --force only/),
    );
    assert.deepEqual(await snapshot(cluster), withNotes);

    // Without it, with what dev and add-node leave, the cluster is replaced.
    await rm(path.join(cluster, 'notes.txt'));
    await writeFile(path.join(cluster, CLUSTER_FILES.clusterJson), '{}\n');
    await mkdir(path.join(cluster, '.node-9.tmp-123-abcdef'));
    const replaced = await initCluster({
      out: cluster,
      validators: 2,
      basePort: 0,
      metricsBasePort: 0,
      ca: false,
      force: true,
    });
    assert.equal(replaced.nodes.length, 2);
  });

  it('cluster init --force refuses while a node of the cluster runs', async () => {
    const dir = path.join(root, 'running');
    await initCluster({ out: dir, validators: 2, basePort: 0, metricsBasePort: 0 });
    await holdNode1(dir);
    const before = await snapshot(dir);
    const forced = await runCli([...clusterInitArgs(dir, 1), '--force']);
    assert.equal(forced.code, 1, forced.err);
    assert.match(forced.err, /nodes of the cluster in .* are running: node-1 \(pid \d+\)/);
    assert.deepEqual(await snapshot(dir), before);
    assert.deepEqual(
      (await readdir(root)).filter((entry) => /\.(tmp|old)-/.test(entry)),
      [],
      'nothing is left beside the cluster directory',
    );
  });

  it('a node started with HYPERMESH_DATA_DIR elsewhere counts as running', async () => {
    const dir = path.join(root, 'env-data-dir');
    const layout = await initCluster({
      out: dir,
      validators: 1,
      basePort: 0,
      metricsBasePort: 0,
      ca: false,
    });
    const dataDir = path.join(root, 'env-data-dir-elsewhere');
    const marker = path.join(dir, 'node-1', DATA_DIR_MARKER);
    let out = '';
    let err = '';
    let announce: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (announce = resolve));
    const previous = process.env.HYPERMESH_DATA_DIR;
    process.env.HYPERMESH_DATA_DIR = dataDir;
    const started = main(['node', 'start', '--config', layout.nodes[0]!.configFile], {
      out: (text) => {
        out += text;
        if (out.includes('"event":"ready"')) announce();
      },
      err: (text) => void (err += text),
    });
    let code: number | undefined;
    try {
      await withDeadline(
        Promise.race([
          ready,
          started.then((exit) => {
            code = exit;
            throw new Error(`node start exited with ${exit}: ${err}`);
          }),
        ]),
        60_000,
        'node-1 ready',
      );
      assert.equal(await readFile(marker, 'utf8'), `${dataDir}\n`);
      assert.deepEqual(await runningClusterNodes(dir), [
        { node: 'node-1', dataDir, pid: process.pid, elsewhere: null },
      ]);
      const before = await snapshot(dir);
      await assert.rejects(
        initCluster({
          out: dir,
          validators: 1,
          basePort: 0,
          metricsBasePort: 0,
          ca: false,
          force: true,
        }),
        refused(new RegExp(`are running: node-1 \\(pid ${process.pid}\\); stop them`)),
      );
      assert.deepEqual(await snapshot(dir), before);
    } finally {
      if (previous === undefined) delete process.env.HYPERMESH_DATA_DIR;
      else process.env.HYPERMESH_DATA_DIR = previous;
      // What `node start` stops on.
      if (code === undefined) process.emit('SIGTERM', 'SIGTERM');
      code ??= await withDeadline(started, 30_000, 'node start stopping on SIGTERM');
    }
    assert.equal(code, 0, err);
    // Stopped: the marker goes, and nothing runs.
    await assert.rejects(readFile(marker), { code: 'ENOENT' });
    assert.deepEqual(await runningClusterNodes(dir), []);
  });

  it('a node held by this process counts as running; a stale lock of its pid does not', async () => {
    const dir = path.join(root, 'held-here');
    await initCluster({ out: dir, validators: 1, basePort: 0, metricsBasePort: 0 });
    const dataDir = path.join(dir, 'node-1', CLUSTER_FILES.dataDir);
    await mkdir(dataDir);
    const lock = await lockDataDir(dataDir);
    assert.deepEqual(
      (await runningClusterNodes(dir)).map((node) => node.pid),
      [process.pid],
    );
    await lock.release();
    await writeFile(path.join(dataDir, LOCK_FILE), `${process.pid}\n`);
    assert.deepEqual(await runningClusterNodes(dir), []);
  });

  it('a node locked from another PID namespace counts as running, whatever its pid', async () => {
    const dir = path.join(root, 'other-namespace');
    await initCluster({ out: dir, validators: 1, basePort: 0, metricsBasePort: 0, ca: false });
    const dataDir = path.join(dir, 'node-1', CLUSTER_FILES.dataDir);
    await mkdir(dataDir);
    // Pid 1 of another container sharing the volume (here, pid 1 is not this process's node).
    await writeFile(path.join(dataDir, LOCK_FILE), '1\npidns pid:[1]\nhost elsewhere\n');
    assert.deepEqual(await runningClusterNodes(dir), [
      {
        node: 'node-1',
        dataDir,
        pid: 1,
        elsewhere: { host: 'elsewhere', pidNamespace: 'pid:[1]' },
      },
    ]);
    const before = await snapshot(dir);
    await assert.rejects(
      initCluster({ out: dir, validators: 1, basePort: 0, metricsBasePort: 0, force: true }),
      refused(
        /are running: node-1 \(pid 1 on host elsewhere in PID namespace pid:\[1\]: remove .*node\.lock only if no node runs there\)/,
      ),
    );
    assert.deepEqual(await snapshot(dir), before);
  });

  it('a second dev on a running cluster leaves its cluster.json', async () => {
    const dir = path.join(root, 'second-dev');
    await ensureDevCluster(devOptions(dir, 1));
    const clusterJson = path.join(dir, CLUSTER_FILES.clusterJson);
    await writeFile(clusterJson, '{"written by":"the first dev"}\n');
    await holdNode1(dir);
    const before = await snapshot(dir);
    await assert.rejects(
      runDevCluster(devOptions(dir, 1)),
      refused(/are running: node-1 .*stop them before you run it again/),
    );
    assert.deepEqual(await snapshot(dir), before);
    assert.equal(await readFile(clusterJson, 'utf8'), '{"written by":"the first dev"}\n');
  });

  it('dev re-checks its mark before it moves the old cluster aside: one put there meanwhile stays', async () => {
    const dir = path.join(root, 'replaced-meanwhile');
    await ensureDevCluster(devOptions(dir, 1));
    // What a concurrent `cluster init --force --out DIR` leaves: a cluster that is not dev's.
    const other = path.join(root, 'replaced-meanwhile-by-init');
    await initCluster({ out: other, validators: 1, basePort: 0, metricsBasePort: 0, ca: false });
    const init = await snapshot(other);
    assert.ok(!init.has(CLUSTER_FILES.devMarker));
    let committed = false;
    await assert.rejects(
      initCluster({
        out: dir,
        validators: 2,
        basePort: 0,
        metricsBasePort: 0,
        ca: false,
        force: true,
        devMarker: true,
        hooks: {
          // After dev's check and the ceremony, before the commit: the directory is replaced.
          beforeCommit: async () => {
            await rm(dir, { recursive: true });
            await rename(other, dir);
            committed = true;
          },
        },
      }),
      refused(
        /replaced during the ceremony by one not created by "hypermesh dev" \(no \.hypermesh-dev\)/,
      ),
    );
    assert.ok(committed, 'the hook ran');
    // Untouched, and nothing of the ceremony (staging, old-) is left beside it.
    assert.deepEqual(await snapshot(dir), init);
    assert.deepEqual(
      (await readdir(root)).filter((entry) => entry.startsWith('replaced-meanwhile.')),
      [],
    );
  });
});
