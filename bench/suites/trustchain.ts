/**
 * `npm run bench -- trustchain [--quick]`: the TrustChain CA, CT log and ACME server (issue 4
 * §6, docs/benchmarks.md "trustchain"). Every figure has a baseline measured in the same run:
 *
 * 1. In-process CPU per certificate with the CA core the nodes run (bench/trustchain/cpu.ts):
 *    request parse (CSR signature check), the issuer's batch (FALCON-1024 batch signature +
 *    P-256 per certificate) and a validator's check of a publication. With the machine's cores
 *    they give the CPU-only ceiling a one-machine cluster cannot exceed.
 * 2. CT log appends in-process (bench/trustchain/ct-append.ts) against bare SQLite inserts of the
 *    same bytes.
 * 3. A 4-validator cluster of node processes with the CA and ACME on (bench/trustchain/cluster.ts):
 *    - native issuance: pre-built `ca` request transactions (fresh P-256 CSRs) offered open loop
 *      in steps, one `issue` call of `hypermesh.trustchain.ca.v1` each, certificates followed to
 *      the block that publishes them (bench/trustchain/issuance.ts); a step sustains its rate when
 *      sent, committed and published are all within 5 % of it; steps stop at the first that does
 *      not. Baseline: small `kv` set transactions through the node API, one `submitTx` call each,
 *      at the highest offered rate, and each step's own request-commit latency;
 *    - ACME: `clients` acme-client clients, full orders one after the other
 *      (bench/trustchain/acme-load.ts); baseline: the same number of native clients issuing one
 *      certificate after the other.
 *
 * HYPERMESH_BENCH_KEEP=1 keeps the cluster directory (genesis, node logs) for inspection.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import type { BenchContext } from '../report.js';
import { ensureBuilt } from '../consensus/cluster.js';
import {
  percentile,
  stepLatency,
  sustains,
  unarySubmit,
  type StepResult,
} from '../consensus/load.js';
import {
  KvSteps,
  fixed,
  measureStep,
  startSuite,
  stepCount,
  type StepDeps,
} from '../consensus/steps.js';
import {
  runAcmeOrders,
  startChallengeServer,
  type AcmeRunResult,
} from '../trustchain/acme-load.js';
import { startTrustchainCluster, type TrustchainCluster } from '../trustchain/cluster.js';
import { measureCertificateCpu, type CertificateCpuCost } from '../trustchain/cpu.js';
import { measureCtAppends } from '../trustchain/ct-append.js';
import {
  PublicationFollower,
  RecordingTracker,
  caIssueSubmit,
  describeCodes,
  describePublication,
  measurePublication,
  prepareIssuance,
  publicationLatency,
  runClosedLoop,
  type ClosedLoopResult,
  type PublicationResult,
} from '../trustchain/issuance.js';

const VALIDATORS = 4;
const STAMP_DIFFICULTY = 4;
const CONNECTIONS = 2;
/** Issue 4 §6 targets. */
const TARGET_RATE = 300;
const TARGET_P50_MS = 1_000;
const TARGET_APPENDS = 5_000;
/** Times a node parses a request: admission, execution, and rebuilding the batch to check it. */
const PARSES_PER_NODE = 3;

interface Settings {
  readonly rates: readonly number[];
  readonly warmupSeconds: number;
  readonly windowSeconds: number;
  readonly drainSeconds: number;
  /** After the requests are committed: how long to wait for the window's publications. */
  readonly publicationWaitSeconds: number;
  readonly clients: number;
  readonly ordersPerClient: number;
  /** Longest run of each closed-loop phase (native, ACME). */
  readonly closedLoopSeconds: number;
  readonly ctEntries: number;
  readonly ctBatch: number;
  readonly cpuBlocks: number;
  /** Idle cluster CPU measured over this long before the steps. */
  readonly idleSeconds: number;
}

const FULL: Settings = {
  rates: [10, 25, 50, 100, 200, 300],
  warmupSeconds: 5,
  windowSeconds: 15,
  drainSeconds: 20,
  publicationWaitSeconds: 20,
  // 8 clients × 20 orders over 4 nodes: 40 per node ACME account, below the genesis default
  // rate limit of 100 issuances per account and hour.
  clients: 8,
  ordersPerClient: 20,
  closedLoopSeconds: 90,
  ctEntries: 20_000,
  ctBatch: 200,
  cpuBlocks: 5,
  idleSeconds: 10,
};
const QUICK: Settings = {
  rates: [10, 50],
  warmupSeconds: 2,
  windowSeconds: 6,
  drainSeconds: 10,
  publicationWaitSeconds: 10,
  clients: 4,
  ordersPerClient: 5,
  closedLoopSeconds: 30,
  ctEntries: 20_000,
  ctBatch: 200,
  cpuBlocks: 2,
  idleSeconds: 5,
};

interface IssuanceStep {
  readonly commit: StepResult;
  readonly publication: PublicationResult;
  readonly sustained: boolean;
  /** Node processes' CPU time per certificate published over the step, ms. */
  readonly cpuMsPerCertificate: number;
}

function describeFailures(failures: ReadonlyMap<string, number>): string {
  return [...failures].map(([message, n]) => `${n}x ${message}`).join('; ');
}

async function runIssuanceSteps(
  settings: Settings,
  cluster: TrustchainCluster,
  deps: StepDeps,
  tracker: RecordingTracker,
  follower: PublicationFollower,
  idleCpuPerSecond: number,
): Promise<IssuanceStep[]> {
  const steps: IssuanceStep[] = [];
  for (const rate of settings.rates) {
    const count = stepCount(rate, settings);
    const built = performance.now();
    const load = await prepareIssuance({
      chainId: cluster.genesis.chainId,
      cluster: cluster.caCluster,
      stampDifficulty: STAMP_DIFFICULTY,
      count,
      tag: `step${rate}`,
    });
    deps.progress(
      `native issuance: ${rate}/s — built ${count} request txs (fresh P-256 CSRs) from ` +
        `${load.senders} accounts in ${fixed((performance.now() - built) / 1000, 1)} s ` +
        `(mean ${fixed(load.meanBytes)} bytes)`,
    );
    const cpuBefore = await cluster.nodeCpuSeconds();
    const from = Date.now();
    const commit = await measureStep(deps, load, rate);
    const publication = await measurePublication({
      follower,
      records: tracker.records,
      warmupSeconds: settings.warmupSeconds,
      windowSeconds: settings.windowSeconds,
      waitMs: settings.publicationWaitSeconds * 1000,
    });
    const sustained = sustains(commit) && publication.publishedRate >= rate * 0.95;
    const cpuMsPerCertificate =
      ((await netCpuSeconds(cluster, cpuBefore, from, idleCpuPerSecond)) * 1000) /
      follower.publishedBetween(from, Date.now());
    deps.progress(
      `  ${describePublication(publication)}; node CPU ${fixed(cpuMsPerCertificate, 1)} ms per ` +
        `certificate → ${sustained ? 'sustained' : 'NOT sustained'}`,
    );
    steps.push({ commit, publication, sustained, cpuMsPerCertificate });
    if (!sustained) break;
  }
  return steps;
}

/** Node CPU seconds since (`before`, `from`) less what the idle cluster uses in that time. */
async function netCpuSeconds(
  cluster: TrustchainCluster,
  before: number,
  from: number,
  idleCpuPerSecond: number,
): Promise<number> {
  const used = (await cluster.nodeCpuSeconds()) - before;
  return used - (idleCpuPerSecond * (Date.now() - from)) / 1000;
}

function cpuCeiling(cost: CertificateCpuCost): { perCertificateMs: number; ceiling: number } {
  const perCertificateMs =
    VALIDATORS * (PARSES_PER_NODE * cost.parseMs + cost.checkMs) + cost.issueMs;
  return { perCertificateMs, ceiling: (availableParallelism() * 1000) / perCertificateMs };
}

export default async function trustchain(context: BenchContext): Promise<void> {
  const settings = context.quick ? QUICK : FULL;
  const progress = startSuite(context);
  const loadAtStart = loadavg()[0] ?? 0;
  await ensureBuilt(progress);

  // In-process measurements first, while no cluster competes for the cores.
  progress(`cpu: ${settings.cpuBlocks} blocks of 100 certificates through the CA core`);
  const cpu = await measureCertificateCpu({ blocks: settings.cpuBlocks, blockSize: 100 });
  const { perCertificateMs, ceiling } = cpuCeiling(cpu);
  progress(
    `  per certificate: parse ${fixed(cpu.parseMs, 3)} ms, issue ${fixed(cpu.issueMs, 3)} ms, ` +
      `check ${fixed(cpu.checkMs, 3)} ms → ${fixed(perCertificateMs, 2)} ms of CPU per certificate ` +
      `in a ${VALIDATORS}-validator cluster, ceiling ${fixed(ceiling)}/s on ${availableParallelism()} cores`,
  );
  progress(`ct: ${settings.ctEntries} appends in batches of ${settings.ctBatch}`);
  const ct = measureCtAppends({ entries: settings.ctEntries, batch: settings.ctBatch });
  progress(`  log ${fixed(ct.logRate)}/s, bare SQLite ${fixed(ct.sqliteRate)}/s`);

  const challenges = await startChallengeServer();
  const dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-trustchain-bench-'));
  let cluster: TrustchainCluster | undefined;
  try {
    progress(
      `${VALIDATORS} validators with the CA and ACME: genesis ceremony and node processes in ` +
        `${dir} (load average ${fixed(loadavg()[0] ?? 0, 2)})`,
    );
    cluster = await startTrustchainCluster({
      dir,
      validators: VALIDATORS,
      stampDifficulty: STAMP_DIFFICULTY,
      connections: CONNECTIONS,
      http01Port: challenges.port,
      progress,
    });
    const tracker = new RecordingTracker(cluster);
    const follower = new PublicationFollower(cluster);
    const deps: StepDeps = {
      cluster,
      tracker,
      submit: caIssueSubmit(cluster),
      timing: settings,
      stampDifficulty: STAMP_DIFFICULTY,
      progress,
    };
    // What the idle cluster burns (empty blocks, FALCON-signed precommits, CT checkpoints): taken
    // off the CPU figures per certificate and per kv transaction.
    const idleFrom = Date.now();
    const idleBefore = await cluster.nodeCpuSeconds();
    await new Promise((resolve) => setTimeout(resolve, settings.idleSeconds * 1000));
    const idleCpuPerSecond =
      ((await cluster.nodeCpuSeconds()) - idleBefore) / ((Date.now() - idleFrom) / 1000);
    progress(`idle cluster: ${fixed(idleCpuPerSecond, 3)} CPU seconds per second (4 nodes)`);
    const steps = await runIssuanceSteps(
      settings,
      cluster,
      deps,
      tracker,
      follower,
      idleCpuPerSecond,
    );
    const topRate = steps[steps.length - 1]?.commit.rate ?? settings.rates[0] ?? 100;
    const kvCpuBefore = await cluster.nodeCpuSeconds();
    const kvFrom = Date.now();
    const kv = await new KvSteps(
      { ...deps, submit: unarySubmit(cluster) },
      { tag: 'kv', prefix: '' },
    ).run(topRate, 'baseline kv sets (node API submitTx, one call each)');
    const kvCpuMsPerTx =
      ((await netCpuSeconds(cluster, kvCpuBefore, kvFrom, idleCpuPerSecond)) * 1000) /
      (stepCount(topRate, settings) - kv.uncommitted);
    progress(`  node CPU ${fixed(kvCpuMsPerTx, 2)} ms per kv transaction`);

    // Closed loop: native clients, then ACME clients, the same number of each.
    const closedCount = settings.clients * settings.ordersPerClient;
    const closedLoad = await prepareIssuance({
      chainId: cluster.genesis.chainId,
      cluster: cluster.caCluster,
      stampDifficulty: STAMP_DIFFICULTY,
      count: closedCount,
      tag: 'closed',
      senders: settings.clients,
    });
    progress(
      `native closed loop: ${settings.clients} clients × ${settings.ordersPerClient} certificates`,
    );
    const native: ClosedLoopResult = await runClosedLoop({
      cluster,
      follower,
      load: closedLoad,
      clients: settings.clients,
      submit: caIssueSubmit(cluster),
      deadline: Date.now() + settings.closedLoopSeconds * 1000,
      perCertificateTimeoutMs: 60_000,
    });
    progress(
      `  ${native.completed} issued, ${fixed(native.rate, 2)}/s, p50 ${fixed(percentile(native.latencies, 50))} ms, ` +
        `p99 ${fixed(percentile(native.latencies, 99))} ms` +
        (native.failures.size === 0 ? '' : `, failures: ${describeFailures(native.failures)}`),
    );
    progress(`acme: ${settings.clients} acme-client clients × ${settings.ordersPerClient} orders`);
    const acme: AcmeRunResult = await runAcmeOrders({
      directories: cluster.acmeDirectories,
      httpsRootPem: cluster.httpsRootPem,
      clients: settings.clients,
      orders: settings.ordersPerClient,
      tokens: challenges.tokens,
      deadline: Date.now() + settings.closedLoopSeconds * 1000,
    });
    progress(
      `  ${acme.completed} orders in ${fixed(acme.seconds, 1)} s, ${fixed(acme.rate, 2)}/s, ` +
        `p50 ${fixed(percentile(acme.latencies, 50))} ms, p99 ${fixed(percentile(acme.latencies, 99))} ms` +
        (acme.failed === 0 ? '' : `, ${acme.failed} failed: ${describeFailures(acme.failures)}`),
    );
    const warnings = [...cluster.nodeWarnings].map(([message, n]) => `${n}x ${message}`);
    if (warnings.length > 0) progress(`node warnings: ${warnings.join('; ')}`);
    if (follower.errors.length > 0) progress(`block reads failed: ${follower.errors.join('; ')}`);

    const setup =
      `${VALIDATORS} validators (node processes, loopback), CA + ACME on, stamp difficulty ` +
      `${STAMP_DIFFICULTY}, ${availableParallelism()} cores; load average at start ` +
      `${fixed(loadAtStart, 2)}, at the end ${fixed(loadavg()[0] ?? 0, 2)}`;
    const sustainedSteps = steps.filter((step) => step.sustained);
    const best = sustainedSteps[sustainedSteps.length - 1];
    const reported =
      best ??
      steps.reduce<IssuanceStep | undefined>(
        (top, step) =>
          top === undefined || step.publication.publishedRate > top.publication.publishedRate
            ? step
            : top,
        undefined,
      );
    const stepsNote = steps
      .map(
        (step) =>
          `${step.commit.rate}/s: sent ${fixed(step.commit.sentRate)}/s, committed ${fixed(step.commit.committedRate)}/s, ` +
          `published ${fixed(step.publication.publishedRate)}/s (${step.sustained ? 'sustained' : 'not sustained'}, ` +
          `${step.publication.unpublished} unpublished` +
          (step.publication.refused.size === 0
            ? ')'
            : `, refused at execution: ${describeCodes(step.publication.refused)})`),
      )
      .join('; ');
    if (reported !== undefined) {
      context.emit({
        metric: 'trustchain_native_certificates_per_s',
        value: reported.publication.publishedRate,
        unit: 'certificates/s',
        baseline: {
          name: `kv set transactions committed at ${topRate}/s offered, node API submitTx, same run`,
          value: kv.committedRate,
        },
        note:
          `${best === undefined ? 'no step sustained; highest published rate' : `highest sustained step (${best.commit.rate}/s offered)`}; ` +
          `target ≥ ${TARGET_RATE}/s; steps: ${stepsNote}; one issue call of hypermesh.trustchain.ca.v1 per ` +
          `certificate, open loop, ${settings.warmupSeconds} s warm-up + ${settings.windowSeconds} s window; ${setup}`,
      });
      for (const p of [50, 99]) {
        context.emit({
          metric: `trustchain_native_issuance_latency_p${p}_ms`,
          value: publicationLatency(reported.publication, p),
          unit: 'ms',
          baseline: {
            name: 'the same requests committed (request block), same step',
            value: stepLatency(reported.commit, p),
          },
          note:
            `at ${reported.commit.rate}/s offered; hand-over to the issue call → commit of the block that ` +
            `publishes the certificate (node-1's log time), over every request handed over in the ` +
            `window: ${reported.publication.unpublished} never published (${reported.commit.uncommitted} ` +
            `never committed) counted as +Infinity (null: no value)` +
            (p === 50 ? `; target ≤ ${TARGET_P50_MS} ms` : ''),
        });
      }
    }
    if (reported !== undefined) {
      context.emit({
        metric: 'trustchain_node_cpu_ms_per_certificate',
        value: reported.cpuMsPerCertificate,
        unit: 'ms',
        baseline: { name: 'node CPU per kv set transaction, same run', value: kvCpuMsPerTx },
        note:
          `user + system CPU of the ${VALIDATORS} node processes (/proc) over the step at ` +
          `${reported.commit.rate}/s (drain, warm-up, window, publication wait), less the idle ` +
          `cluster's ${fixed(idleCpuPerSecond, 3)} CPU s/s, per certificate published in it; the in-process estimate of the CA work is ${fixed(perCertificateMs, 2)} ms`,
      });
    }
    context.emit({
      metric: 'trustchain_cpu_ceiling_certificates_per_s',
      value: ceiling,
      unit: 'certificates/s',
      note:
        `in-process CA core, ${cpu.certificates} certificates in blocks of ${cpu.blockSize}: parse ` +
        `${fixed(cpu.parseMs, 3)} ms (CSR + ECDSA check), issue ${fixed(cpu.issueMs, 3)} ms (batch tree, ` +
        `FALCON-1024 batch signature, P-256 signature), check ${fixed(cpu.checkMs, 3)} ms per certificate; ` +
        `cluster cost ${VALIDATORS} × (${PARSES_PER_NODE} parses + check) + issue = ${fixed(perCertificateMs, 2)} ms ` +
        `over ${availableParallelism()} cores, before consensus, transaction signatures and the network`,
    });
    context.emit({
      metric: 'trustchain_acme_certificates_per_s',
      value: acme.rate,
      unit: 'certificates/s',
      baseline: {
        name: `${settings.clients} native clients issuing one after the other, same run`,
        value: native.rate,
      },
      note:
        `${settings.clients} acme-client clients (each its own account, node c mod ${VALIDATORS}), ` +
        `${acme.completed} full orders (newOrder, http-01 for 127.0.0.1, finalize, download) in ` +
        `${fixed(acme.seconds, 1)} s, ${acme.failed} failed; native: ${native.completed} certificates; ${setup}`,
    });
    for (const p of [50, 99]) {
      context.emit({
        metric: `trustchain_acme_order_latency_p${p}_ms`,
        value: percentile(acme.latencies, p),
        unit: 'ms',
        baseline: {
          name: 'native issue call → publication seen by the client, same clients',
          value: percentile(native.latencies, p),
        },
        note: 'newOrder → downloaded chain; acme-client polls 100–500 ms apart',
      });
    }
    context.emit({
      metric: 'trustchain_ct_appends_per_s',
      value: ct.logRate,
      unit: 'entries/s',
      baseline: {
        name: 'bare SQLite inserts of the same bytes, same batches',
        value: ct.sqliteRate,
      },
      note:
        `${ct.entries} entries (leaf ${ct.leafBytes} B + chain ${ct.extraBytes} B) in batches of ${ct.batch}, ` +
        `CtLog.appendBatch on a file opened as the node opens it (WAL); target ≥ ${TARGET_APPENDS}/s; ` +
        `measured before the cluster started`,
    });
  } finally {
    await cluster?.close();
    await challenges.close();
    if (process.env.HYPERMESH_BENCH_KEEP === '1') {
      progress(`kept the cluster directory (node logs in node-*/node.log) under ${dir}`);
    } else {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
