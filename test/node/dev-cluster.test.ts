import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { main } from '../../src/node/cli.js';
import { readClusterFile, type ClusterFile } from '../../src/node/cluster-file.js';
import { hypermeshBin } from '../../src/node/process.js';
import { ctLogOrigin } from '../../src/trustchain/ca-module/index.js';
import { parseTrustBundle } from '../../src/trustchain/ca/bundle.js';
import { parseCheckpointBody, parseSignedNote } from '../../src/trustchain/ct/index.js';
import { withDeadline } from '../helpers/wait.js';

const execFileAsync = promisify(execFile);

/**
 * `hypermesh dev` end to end, from the built bin (dist/): four validator processes on loopback
 * with real STOQ, storage and consensus; the operator's `status` over STOQ; a node's metrics;
 * the CT logs and trust bundle cluster.json names; SIGTERM stops everything. A second, one-node
 * run stops on SIGINT (Ctrl-C).
 */
const DEADLINE_MS = 60_000;

let dir: string;
/** Every `dev` run and the cluster file it wrote: what `after` kills if a test failed. */
const runs: DevRun[] = [];
const clusters: ClusterFile[] = [];
const followers: FSWatcher[] = [];

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-dev-'));
});
after(async () => {
  for (const watcher of followers) watcher.close();
  for (const run of runs) if (run.child.exitCode === null) run.child.kill('SIGKILL');
  for (const node of clusters.flatMap((cluster) => cluster.nodes)) {
    if (node.pid !== null && alive(node.pid)) process.kill(node.pid, 'SIGKILL');
  }
  await rm(dir, { recursive: true, force: true });
});

interface DevRun {
  readonly child: ChildProcess;
  /** Its stdout lines and stderr chunks so far. */
  readonly output: string[];
  readonly exited: Promise<number | null>;
}

/**
 * Starts `hypermesh dev --nodes <nodes>` in `clusterDir` on free ports and resolves once its
 * summary is printed (the cluster committed and cluster.json is written).
 */
async function startDev(nodes: number, clusterDir: string): Promise<DevRun> {
  const child = spawn(
    process.execPath,
    [
      hypermeshBin(),
      'dev',
      '--nodes',
      String(nodes),
      '--dir',
      clusterDir,
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
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  runs.push({ child, output, exited });
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const summary = new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => {
      output.push(line);
      // The summary's last line: the headline and the node table come before it.
      if (line.startsWith('Ctrl-C (or SIGTERM) stops the cluster.')) resolve();
    });
    void exited.then((code) =>
      reject(new Error(`dev exited with ${code} before committing:\n${output.join('\n')}`)),
    );
  });
  await withDeadline(summary, DEADLINE_MS, 'the first commits');
  return { child, output, exited };
}

/**
 * Sends `signal` to a `dev` run and checks the clean stop: exit code 0, every node of `cluster`
 * gone, "all nodes stopped" printed, and cluster.json removed.
 */
async function stopsCleanly(
  run: DevRun,
  cluster: ClusterFile,
  clusterDir: string,
  signal: NodeJS.Signals,
): Promise<void> {
  run.child.kill(signal);
  const code = await withDeadline(run.exited, 30_000, `dev exiting after ${signal}`);
  assert.equal(code, 0, run.output.join('\n'));
  for (const node of cluster.nodes) {
    assert.equal(alive(node.pid as number), false, `${node.name} has exited after ${signal}`);
  }
  assert.match(run.output.join('\n'), /all nodes stopped/);
  // The file means "a running cluster": it goes with the nodes.
  assert.equal(existsSync(path.join(clusterDir, 'cluster.json')), false);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function status(file: string): Promise<{ code: number; json: StatusJson | null }> {
  let out = '';
  const code = await main(['status', '--cluster', file, '--json', '--timeout-ms', '3000'], {
    out: (text) => void (out += text),
    err: () => undefined,
  });
  return { code, json: out === '' ? null : (JSON.parse(out) as StatusJson) };
}

interface StatusJson {
  height: number | null;
  reachable: number;
  validatorsOnline: string[];
  nodes: Array<{ name: string; reachable: boolean; status: Record<string, unknown> | null }>;
}

/** Every "block committed" line a followed node log gets; `eventually` re-checks on each. */
const commits = new EventEmitter();
commits.setMaxListeners(0);

/**
 * Follows the JSON log `dev` keeps for a node (`<dir>/<node>/node.log`): each time the file
 * changes (an inotify event through fs.watch), reads what was appended and announces each
 * "block committed" line on `commits`.
 */
function followCommits(file: string): void {
  const decoder = new StringDecoder('utf8');
  let offset = 0;
  let partial = '';
  let reading = false;
  let again = false;
  const read = async (): Promise<void> => {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      do {
        again = false;
        const handle = await open(file, 'r');
        try {
          for (;;) {
            const { bytesRead, buffer } = await handle.read({ position: offset });
            if (bytesRead === 0) break;
            offset += bytesRead;
            partial += decoder.write(buffer.subarray(0, bytesRead));
          }
        } finally {
          await handle.close();
        }
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (line.includes('"msg":"block committed"')) commits.emit('commit', line);
        }
      } while (again);
    } finally {
      reading = false;
    }
  };
  const watcher = watch(file, () => void read().catch(() => undefined));
  followers.push(watcher);
  void read().catch(() => undefined);
}

/**
 * Runs `check` now and again after each commit a followed node logs, until it returns a value;
 * one check at a time (commits during a check ask for one more after it). Fails after `ms` with
 * the last value or error.
 */
async function eventually<T>(
  check: () => Promise<T | undefined>,
  ms: number,
  what: string | (() => string),
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let last: unknown;
    let running = false;
    let again = false;
    let done = false;
    const finish = (outcome: { value: T } | { error: Error }): void => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      commits.off('commit', onCommit);
      if ('value' in outcome) resolve(outcome.value);
      else reject(outcome.error);
    };
    const run = async (): Promise<void> => {
      running = true;
      do {
        again = false;
        const value = await check().catch((error: unknown) => {
          last = error instanceof Error ? error.message : error;
          return undefined;
        });
        if (value !== undefined) finish({ value });
        else last ??= 'not yet';
      } while (again && !done);
      running = false;
    };
    const onCommit = (): void => {
      if (done) return;
      if (running) again = true;
      else void run();
    };
    // The only timer: the failure deadline.
    const deadline = setTimeout(() => {
      const told = typeof what === 'function' ? what() : what;
      finish({ error: new Error(`${told} within ${ms} ms; last: ${JSON.stringify(last)}`) });
    }, ms);
    commits.on('commit', onCommit);
    void run();
  });
}

describe('hypermesh dev', () => {
  it('commits, reports status, serves metrics and stops cleanly on SIGTERM', async () => {
    const started = Date.now();
    const run = await startDev(4, dir);
    const { output } = run;

    const file = path.join(dir, 'cluster.json');
    const cluster = await readClusterFile(file);
    clusters.push(cluster);
    assert.equal(cluster.nodes.length, 4);
    assert.deepEqual(
      cluster.nodes.map((node) => node.name),
      ['node-1', 'node-2', 'node-3', 'node-4'],
    );
    for (const node of cluster.nodes) {
      assert.match(node.id, /^[0-9a-f]{40}$/);
      assert.ok(node.stoq.port > 0);
      assert.match(node.metrics ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      assert.match(node.acme ?? '', /^https:\/\/127\.0\.0\.1:\d+\/directory$/);
      assert.match(node.ct ?? '', /^http:\/\/127\.0\.0\.1:\d+\/?$/, `${node.name} CT log URL`);
      assert.ok(node.pid !== null && alive(node.pid), `${node.name} is running`);
    }
    // The cluster trust bundle cluster.json names exists and is the checked genesis bundle.
    assert.ok(cluster.trustBundleFile !== undefined, 'cluster.json names the trust bundle');
    assert.ok(existsSync(cluster.trustBundleFile), cluster.trustBundleFile);
    const bundle = parseTrustBundle(await readFile(cluster.trustBundleFile, 'utf8'));
    assert.equal(bundle.validators.length, 4, 'one intermediate per validator');
    const text = output.join('\n');
    assert.match(
      text,
      /node-1 +[0-9a-f]{40} +127\.0\.0\.1:\d+ +http:\/\/127\.0\.0\.1:\d+\/metrics +127\.0\.0\.1:\d+/,
    );
    // Every node serves the cluster zone from consensus state over UDP and TCP (dig is BIND's).
    for (const node of cluster.nodes) {
      const udp = node.dns?.udp[0];
      assert.ok(udp !== undefined && node.dns?.tcp[0]?.port === udp.port, `${node.name} DNS`);
      for (const transport of ['+notcp', '+tcp']) {
        const { stdout } = await execFileAsync('dig', [
          `@${udp.host}`,
          '-p',
          String(udp.port),
          'hypermesh.',
          'SOA',
          '+short',
          '+tries=1',
          '+time=5',
          transport,
        ]);
        assert.match(
          stdout,
          /^ns1\.hypermesh\. hostmaster\.hypermesh\. \d+ /,
          `${node.name} ${transport}`,
        );
      }
    }
    // cluster.json names each node's DNS-over-QUIC endpoint, and it answers (kdig is Knot's).
    for (const node of cluster.nodes) {
      const doq = node.dns?.doq?.[0];
      assert.ok(doq !== undefined && doq.port > 0, `${node.name} DoQ in cluster.json`);
    }
    const doq = cluster.nodes[0]?.dns?.doq?.[0] as { host: string; port: number };
    const { stdout: overQuic } = await execFileAsync('kdig', [
      `@${doq.host}`,
      '-p',
      String(doq.port),
      '+quic',
      '+short',
      '+retry=0',
      '+timeout=5',
      'hypermesh.',
      'SOA',
    ]);
    assert.match(overQuic, /^ns1\.hypermesh\. hostmaster\.hypermesh\. \d+ /m, 'SOA over DoQ');

    for (const node of cluster.nodes) followCommits(path.join(dir, node.name, 'node.log'));
    const remaining = DEADLINE_MS - (Date.now() - started);
    // Height 2 everywhere and the full mesh: a node may commit with two of its three peers.
    let seen = 'no status yet';
    const report = await eventually(
      async () => {
        const result = await status(file);
        const nodes = result.json?.nodes ?? [];
        seen = `status exit ${result.code}: ${nodes
          .map(
            (node) =>
              `${node.name}@${String(node.status?.committedHeight)} with ${String(
                (node.status?.peersConnected as unknown[] | undefined)?.length,
              )} peers`,
          )
          .join(', ')}`;
        const ready = nodes.every(
          (node) =>
            typeof node.status?.committedHeight === 'number' &&
            node.status.committedHeight >= 2 &&
            (node.status.peersConnected as unknown[] | undefined)?.length === 3,
        );
        return result.code === 0 && nodes.length === 4 && ready ? result.json : undefined;
      },
      Math.max(remaining, 5000),
      () => `every node at height ≥ 2 with 3 peers (${seen})`,
    );
    // Each node's log answers with a signed C2SP checkpoint naming the cluster's log.
    for (const node of cluster.nodes) {
      const checkpointUrl = `${(node.ct as string).replace(/\/$/, '')}/checkpoint`;
      const note = await eventually(
        async () => {
          const response = await fetch(checkpointUrl);
          const body = await response.text();
          if (!response.ok) throw new Error(`HTTP ${response.status} ${body}`);
          return body;
        },
        Math.max(DEADLINE_MS - (Date.now() - started), 5000),
        `${checkpointUrl} to serve a signed checkpoint`,
      );
      const signed = parseSignedNote(note);
      assert.ok(signed.signatures.length > 0, `${node.name}'s checkpoint is signed`);
      assert.equal(parseCheckpointBody(signed.text).origin, ctLogOrigin(cluster.chainId));
    }
    for (const watcher of followers.splice(0)) watcher.close();
    assert.equal(report?.reachable, 4);
    assert.deepEqual(report?.validatorsOnline, ['node-1', 'node-2', 'node-3', 'node-4']);
    for (const node of report?.nodes ?? []) {
      assert.equal(node.status?.halted, null);
      assert.equal(
        (node.status?.peersConnected as string[]).length,
        3,
        `${node.name} sees 3 peers`,
      );
    }

    const metricsUrl = cluster.nodes[0]?.metrics as string;
    const metrics = await (await fetch(metricsUrl)).text();
    const height = /^hypermesh_consensus_height (\d+)$/m.exec(metrics);
    assert.ok(height && Number(height[1]) >= 2, 'the height gauge follows commits');
    const round = /^hypermesh_consensus_round (\d+)$/m.exec(metrics);
    assert.ok(round && Number(round[1]) >= 0, 'the round gauge is exposed');
    // No validator equivocates here: no evidence went into a block.
    assert.match(metrics, /^hypermesh_consensus_evidence_total 0$/m);
    assert.match(metrics, /^hypermesh_consensus_commit_latency_seconds_count [1-9]\d*$/m);
    assert.match(metrics, /^hypermesh_consensus_peers_connected 3$/m);
    assert.match(metrics, /^hypermesh_consensus_online_voting_power 40$/m);
    assert.match(metrics, /^hypermesh_store_bytes\{file="database"\} [1-9]\d*$/m);
    assert.match(metrics, /^hypermesh_consensus_wal_bytes \d+$/m);
    assert.match(metrics, /^hypermesh_consensus_evidence_pending 0$/m);
    assert.match(metrics, /^hypermesh_consensus_late_precommits \d+$/m);
    // Not necessarily empty: each node registers its own services (discovery) after its first commit.
    assert.match(metrics, /^hypermesh_mempool_size \d+$/m);
    assert.match(metrics, /^hypermesh_mempool_waiting \d+$/m);
    // Likewise not necessarily 0: publications and registrations pass through the intake queue.
    assert.match(metrics, /^hypermesh_tx_intake_queued \d+$/m);
    assert.match(metrics, /^hypermesh_tx_intake_refused\{origin="client"\} 0$/m);

    const log = await readFile(path.join(dir, 'node-2', 'node.log'), 'utf8');
    assert.match(log, /"msg":"block committed"/, 'node logs are kept per node');

    await stopsCleanly(run, cluster, dir, 'SIGTERM');
  });

  it('stops every node cleanly on SIGINT (Ctrl-C), one node being the smallest cluster', async () => {
    const small = path.join(dir, 'sigint');
    const run = await startDev(1, small);
    const cluster = await readClusterFile(path.join(small, 'cluster.json'));
    clusters.push(cluster);
    assert.equal(cluster.nodes.length, 1);
    const node = cluster.nodes[0];
    assert.ok(node !== undefined && node.pid !== null && alive(node.pid), 'the node is running');
    await stopsCleanly(run, cluster, small, 'SIGINT');
  });
});
