/**
 * Node CPU per certificate at one fixed offered rate: a 4-validator cluster with the CA (the
 * trustchain benchmark's, bench/trustchain/cluster.ts), `--rate` native `issue` calls per second
 * for `--seconds`, open loop, then the node processes' CPU seconds (Linux /proc) over the run
 * divided by the certificates admitted. Baseline in the same run: the same cluster's CPU over
 * as long a time idle, before the load. For comparing two builds of the CA module (run each,
 * alternating, on the same machine), without the suite's step search.
 *
 *   node --import tsx bench/trustchain/fixed-rate.ts [--rate 30] [--seconds 20] [--profile DIR]
 *
 * `--profile DIR` writes each node process's V8 CPU profile (`*.cpuprofile`, for Chrome DevTools
 * or `speedscope`) into DIR when the cluster stops. Prints JSON lines (bench/report.ts);
 * progress goes to stderr. Builds dist/ first when src/ is newer (the nodes run the built bin).
 */
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { EventEmitter } from 'node:events';
import { ensureBuilt } from '../consensus/cluster.js';
import { formatResult } from '../report.js';
import { startTrustchainCluster } from './cluster.js';
import { caIssueSubmit, prepareIssuance } from './issuance.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '30' },
    seconds: { type: 'string', default: '20' },
    profile: { type: 'string' },
  },
});
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
if (!(Number.isInteger(RATE) && RATE >= 1 && RATE <= 1_000)) {
  process.stderr.write(`--rate must be an integer in 1..1000, got ${values.rate}\n`);
  process.exit(2);
}
if (!(Number.isInteger(SECONDS) && SECONDS >= 1 && SECONDS <= 600)) {
  process.stderr.write(`--seconds must be an integer in 1..600, got ${values.seconds}\n`);
  process.exit(2);
}
const progress = (message: string): void => void process.stderr.write(`[fixed-rate] ${message}\n`);
const emit = (metric: string, value: number, unit: string, extra: object = {}): void =>
  void process.stdout.write(
    `${formatResult('trustchain-fixed-rate', { metric, value, unit, ...extra })}\n`,
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
}
progress(`starting 4 validators in ${root}`);
const cluster = await startTrustchainCluster({
  dir: path.join(root, 'cluster'),
  validators: 4,
  stampDifficulty: 4,
  connections: 4,
  // No ACME orders here: the challenge port is never dialled.
  http01Port: 9,
  progress: (line) => {
    if (/"level":"(warn|error)"/.test(line)) progress(line.slice(0, 300));
  },
});
if (env.NODE_OPTIONS === undefined) delete process.env.NODE_OPTIONS;
else process.env.NODE_OPTIONS = env.NODE_OPTIONS;
try {
  const count = RATE * SECONDS;
  progress(`building ${count} requests`);
  const load = await prepareIssuance({
    chainId: cluster.genesis.chainId,
    cluster: cluster.caCluster,
    stampDifficulty: 4,
    count,
    tag: 'fixed-rate',
  });
  const commits = new EventEmitter();
  let committed = 0;
  cluster.onCommit((event) => {
    if (event.node !== 'node-1') return;
    committed += 1;
    commits.emit('commit');
  });
  const idleStart = await cluster.nodeCpuSeconds();
  const idleWindow = AbortSignal.timeout(SECONDS * 1000);
  await once(idleWindow, 'abort');
  const idleCpu = (await cluster.nodeCpuSeconds()) - idleStart;

  progress(`offering ${RATE}/s for ${SECONDS} s`);
  const submit = caIssueSubmit(cluster);
  const cpuStart = await cluster.nodeCpuSeconds();
  const started = Date.now();
  const answers: Promise<string | null>[] = [];
  for (let i = 0; i < count; i++) {
    const wait = started + (i * 1000) / RATE - Date.now();
    if (wait > 0) await once(AbortSignal.timeout(wait), 'abort');
    const sender = load.senderOf(i);
    answers.push(submit(load.txs[i] as Uint8Array, cluster.names[sender % 4] as string, i % 4));
  }
  const refused = (await Promise.all(answers)).filter((code) => code !== null).length;
  // The last requests' block and the block publishing them.
  const until = committed + 4;
  while (committed < until) await once(commits, 'commit', { signal: AbortSignal.timeout(60_000) });
  const cpu = (await cluster.nodeCpuSeconds()) - cpuStart;
  const wall = (Date.now() - started) / 1000;
  const admitted = count - refused;
  const note = `${RATE}/s offered for ${SECONDS} s, ${admitted} admitted, ${refused} refused, ${wall.toFixed(1)} s to the 4th block after the last`;
  emit('node CPU per certificate (4 nodes)', (cpu / Math.max(1, admitted)) * 1000, 'ms', {
    baseline: {
      name: 'idle cluster CPU over the same time, per certificate',
      value: (idleCpu / Math.max(1, admitted)) * 1000,
    },
    note,
  });
  emit('node CPU, cores busy under load', cpu / wall, 'cores', { note });
} finally {
  await cluster.close();
  await rm(root, { recursive: true, force: true });
}
