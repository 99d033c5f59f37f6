/**
 * Node CPU per transaction at one fixed offered rate, for comparing two builds (run each,
 * alternating, on the same machine) without a benchmark suite's step search. A 4-validator
 * cluster, `--rate` transactions per second for `--seconds`, open loop, then the node processes'
 * CPU seconds (Linux /proc) over the run (submission and drain until committed) divided by the
 * transactions admitted. Baseline in the same run: the same cluster's CPU idle, before the load,
 * measured for `--seconds` and scaled to the loaded run's wall time (bench/idle-baseline.ts).
 *
 *   node --import tsx bench/fixed-rate.ts [--workload kv|ca] [--rate N] [--seconds 20] [--profile DIR]
 *     [--commit-delay MS]
 *
 * - `kv` (default rate 200/s): the consensus benchmark's cluster and load (bench/consensus/):
 *   signed, stamped `kv` set transactions, submitted through its batching client.
 *   A `MEMPOOL_BUSY` or `RESOURCE_EXHAUSTED` refusal is sent again 200 ms later (up to 25
 *   times, as the consensus benchmark does), so a busy moment does not leave the refused
 *   sender's later transactions waiting for ever; the note counts the resends.
 * - `ca` (default rate 30/s): the trustchain benchmark's cluster (the CA on) and native `issue`
 *   calls, one per certificate (bench/trustchain/).
 *
 * HYPERMESH_BENCH_KEEP=1 keeps the cluster directory (genesis, node logs) for inspection.
 * `--profile DIR` writes each node process's V8 CPU profile of the loaded window (`*.cpuprofile`,
 * for Chrome DevTools or `speedscope`) into DIR when the cluster stops. Prints JSON lines (bench/report.ts);
 * progress goes to stderr. Builds dist/ first when src/ is newer (the nodes run the built bin).
 */
import { EventEmitter, once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureBuilt, startBenchCluster, type BenchCluster } from './consensus/cluster.js';
import { resending, type Submit } from './consensus/load.js';
import { batched, sendersFor } from './consensus/steps.js';
import { prepareLoad } from './consensus/transactions.js';
import { idleCpuMsPerAdmitted } from './idle-baseline.js';
import { formatResult } from './report.js';
import { DEFAULT_CLUSTER_CONSENSUS } from '../src/node/config.js';
import { startTrustchainCluster } from './trustchain/cluster.js';
import { caIssueSubmit, prepareIssuance } from './trustchain/issuance.js';

const { values } = parseArgs({
  options: {
    workload: { type: 'string', default: 'kv' },
    rate: { type: 'string' },
    seconds: { type: 'string', default: '20' },
    profile: { type: 'string' },
    'commit-delay': { type: 'string' },
  },
});
const WORKLOAD = values.workload;
if (WORKLOAD !== 'kv' && WORKLOAD !== 'ca') {
  process.stderr.write(`--workload must be kv or ca, got ${WORKLOAD}\n`);
  process.exit(2);
}
const RATE = Number(values.rate ?? (WORKLOAD === 'kv' ? '200' : '30'));
const SECONDS = Number(values.seconds);
if (!(Number.isInteger(RATE) && RATE >= 1 && RATE <= 5_000)) {
  process.stderr.write(`--rate must be an integer in 1..5000, got ${values.rate}\n`);
  process.exit(2);
}
if (!(Number.isInteger(SECONDS) && SECONDS >= 1 && SECONDS <= 600)) {
  process.stderr.write(`--seconds must be an integer in 1..600, got ${values.seconds}\n`);
  process.exit(2);
}
const COMMIT_DELAY_MS =
  values['commit-delay'] === undefined ? undefined : Number(values['commit-delay']);
if (
  COMMIT_DELAY_MS !== undefined &&
  !(Number.isInteger(COMMIT_DELAY_MS) && COMMIT_DELAY_MS >= 0 && COMMIT_DELAY_MS <= 10_000)
) {
  process.stderr.write(
    `--commit-delay must be an integer in 0..10000 (ms), got ${values['commit-delay']}\n`,
  );
  process.exit(2);
}
const progress = (message: string): void => void process.stderr.write(`[fixed-rate] ${message}\n`);
const emit = (metric: string, value: number, unit: string, extra: object = {}): void =>
  void process.stdout.write(
    `${formatResult(`${WORKLOAD}-fixed-rate`, { metric, value, unit, ...extra })}\n`,
  );

await ensureBuilt(progress);
const root = await mkdtemp(path.join(tmpdir(), 'hypermesh-bench-fixed-rate-'));
const env = { ...process.env };
if (values.profile !== undefined) {
  const dir = path.resolve(values.profile);
  await mkdir(dir, { recursive: true });
  // `--cpu-prof` is not allowed in NODE_OPTIONS; the preload starts the inspector's profiler.
  const preload = fileURLToPath(new URL('./cpu-profile-preload.mjs', import.meta.url));
  process.env.NODE_OPTIONS =
    `${env.NODE_OPTIONS ?? ''} --import ${pathToFileURL(preload).href}`.trim();
  process.env.HYPERMESH_CPU_PROFILE_DIR = dir;
  process.env.HYPERMESH_CPU_PROFILE_ON_SIGNAL = '1';
}
progress(`starting 4 validators (${WORKLOAD}) in ${root}`);
const echoWarnings = (line: string): void => {
  if (/"level":"(warn|error)"/.test(line)) progress(line.slice(0, 300));
};
const count = RATE * SECONDS;
let cluster: BenchCluster;
/** Builds the load; returns its transactions, who sends each, and the submit function. */
let prepare: () => Promise<{
  txs: readonly Uint8Array[];
  senderOf(i: number): number;
  submit: Submit;
}>;
if (WORKLOAD === 'kv') {
  const kv = await startBenchCluster({
    dir: path.join(root, 'cluster'),
    validators: 4,
    stampDifficulty: 4,
    connections: 4,
    progress: echoWarnings,
    ...(COMMIT_DELAY_MS === undefined
      ? {}
      : { consensus: { ...DEFAULT_CLUSTER_CONSENSUS, commitDelayMs: COMMIT_DELAY_MS } }),
  });
  cluster = kv;
  prepare = async () => ({
    ...(await prepareLoad({
      chainId: kv.genesis.chainId,
      stampDifficulty: 4,
      senders: sendersFor(RATE),
      count,
      tag: 'fixed-rate',
    })),
    submit: batched(kv),
  });
} else {
  const ca = await startTrustchainCluster({
    dir: path.join(root, 'cluster'),
    validators: 4,
    stampDifficulty: 4,
    connections: 4,
    // No ACME orders here: the challenge port is never dialled.
    http01Port: 9,
    progress: echoWarnings,
  });
  cluster = ca;
  prepare = async () => ({
    ...(await prepareIssuance({
      chainId: ca.genesis.chainId,
      cluster: ca.caCluster,
      stampDifficulty: 4,
      count,
      tag: 'fixed-rate',
    })),
    submit: caIssueSubmit(ca),
  });
}
if (env.NODE_OPTIONS === undefined) delete process.env.NODE_OPTIONS;
else process.env.NODE_OPTIONS = env.NODE_OPTIONS;
try {
  progress(`building ${count} transactions`);
  const load = await prepare();
  const commits = new EventEmitter();
  let committed = 0;
  let committedTxs = 0;
  cluster.onCommit((event) => {
    if (event.node !== 'node-1') return;
    committed += 1;
    committedTxs += event.txs;
    commits.emit('commit');
  });
  const idleBlocksStart = committed;
  const idleStart = await cluster.nodeCpuSeconds();
  const idleWindowStart = Date.now();
  const idleWindow = AbortSignal.timeout(SECONDS * 1000);
  await once(idleWindow, 'abort');
  const idleCpu = (await cluster.nodeCpuSeconds()) - idleStart;
  const idleSeconds = (Date.now() - idleWindowStart) / 1000;
  const idleBlocks = committed - idleBlocksStart;

  progress(`offering ${RATE}/s for ${SECONDS} s`);
  const cpuStart = await cluster.nodeCpuSeconds();
  const blocksStart = committed;
  // The profiles (--profile) cover the loaded window only.
  if (values.profile !== undefined)
    for (const node of cluster.processes) node.child.kill('SIGUSR2');
  const started = Date.now();
  const resends = { count: 0 };
  const submit = resending(load.submit, resends);
  const answers: Promise<string | null>[] = [];
  for (let i = 0; i < count; i++) {
    const wait = Math.ceil(started + (i * 1000) / RATE - Date.now());
    if (wait > 0) await once(AbortSignal.timeout(wait), 'abort');
    const sender = load.senderOf(i);
    answers.push(submit(load.txs[i] as Uint8Array, cluster.names[sender % 4] as string, i % 4));
  }
  const codes = (await Promise.all(answers)).filter((code) => code !== null);
  const refused = codes.length;
  if (refused > 0) {
    const byCode = new Map<string, number>();
    for (const code of codes) byCode.set(code, (byCode.get(code) ?? 0) + 1);
    progress(`refused: ${[...byCode].map(([code, n]) => `${code} ${n}`).join(', ')}`);
  }
  const admitted = count - refused;
  // kv: until node-1 has committed as many transactions as were admitted (the load is all it
  // commits); ca: the last requests' block and the block publishing them.
  const publishedBy = committed + 4;
  const done = WORKLOAD === 'kv' ? () => committedTxs >= admitted : () => committed >= publishedBy;
  // At most a minute after the last submission: an admitted transaction that never commits
  // (dropped from a mempool) must not hold the run while empty blocks keep coming.
  let drainTimer: NodeJS.Timeout | undefined;
  const drained = new Promise<false>((resolve) => {
    drainTimer = setTimeout(() => resolve(false), 60_000);
  });
  while (!done()) {
    const committedOne = await Promise.race([once(commits, 'commit').then(() => true), drained]);
    if (!committedOne) {
      progress('stopped waiting for commits after 60 s');
      break;
    }
  }
  clearTimeout(drainTimer);
  const cpu = (await cluster.nodeCpuSeconds()) - cpuStart;
  const wall = (Date.now() - started) / 1000;
  const note = `${WORKLOAD}: ${RATE}/s offered for ${SECONDS} s, ${admitted} admitted, ${refused} refused, ${resends.count} resent${WORKLOAD === 'kv' ? `, ${committedTxs} committed` : ''}, ${wall.toFixed(1)} s to the end; ${((committed - blocksStart) / wall).toFixed(2)} blocks/s under load, ${(idleBlocks / idleSeconds).toFixed(2)} idle`;
  emit(
    `node CPU per ${WORKLOAD === 'kv' ? 'transaction' : 'certificate'} (4 nodes)`,
    (cpu / Math.max(1, admitted)) * 1000,
    'ms',
    {
      baseline: {
        name: `idle cluster CPU (measured over ${idleSeconds.toFixed(1)} s, scaled to the loaded ${wall.toFixed(1)} s), per admitted transaction`,
        value: idleCpuMsPerAdmitted({
          idleCpuSeconds: idleCpu,
          idleSeconds,
          loadedSeconds: wall,
          admitted,
        }),
      },
      note,
    },
  );
  emit('node CPU, cores busy under load', cpu / wall, 'cores', {
    baseline: { name: 'idle cluster', value: idleCpu / idleSeconds },
    note,
  });
} finally {
  await cluster.close();
  if (process.env.HYPERMESH_BENCH_KEEP === '1') {
    progress(`kept the cluster directory (node logs in cluster/node-*/node.log) under ${root}`);
  } else {
    await rm(root, { recursive: true, force: true });
  }
}
