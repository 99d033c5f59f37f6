/**
 * `npm run bench -- discovery [--quick]`: the service catalog (docs/discovery.md) through a real
 * cluster (issue 5 §3: "`resolve` latency and registration throughput through consensus").
 * One local cluster of node processes (bench/consensus/cluster.ts, with the catalog installed:
 * the nodes also register their own services and run their health checks, as in production; no
 * DNS servers, no CA), loopback only. Every figure has its baseline measured in the same run:
 *
 * - `resolve` latency over STOQ (`hypermesh.discovery.v1`, createDiscoveryRpcClient, which
 *   checks the proof of the service index and of every instance) for a service of N instances,
 *   one call at a time, alternating with the node API's `status` on the same client connection.
 * - Registrations through consensus: pre-built signed `register` transactions offered open loop
 *   at a fixed rate (the consensus suite's batched client and commit tracking), committed per
 *   second and time from hand-over to commit; then small `kv` set transactions at the same rate
 *   on the same cluster.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { loadClusterTarget } from '../../src/node/operator.js';
import { openServiceSession } from '../../src/node/service-tools.js';
import type { BenchContext } from '../report.js';
import { ensureBuilt, startBenchCluster } from '../consensus/cluster.js';
import {
  CommitTracker,
  percentile,
  stepLatency,
  sustains,
  type StepResult,
} from '../consensus/load.js';
import {
  BATCHING,
  KvSteps,
  batched,
  fixed,
  measureStep,
  startSuite,
  stepCount,
  type StepDeps,
} from '../consensus/steps.js';
import { prepareRegistrations, timeResolve } from '../discovery/load.js';

const VALIDATORS = 4;
const STAMP_DIFFICULTY = 4;
const CONNECTIONS = 2;
const RESOLVED_SERVICE = 'bench-resolve';

interface Settings {
  /** Instances of the resolved service (at most 64, the catalog's limit per service). */
  readonly instances: number;
  readonly resolveCalls: number;
  readonly resolveSeconds: number;
  readonly rate: number;
  readonly warmupSeconds: number;
  readonly windowSeconds: number;
  readonly drainSeconds: number;
}

const FULL: Settings = {
  instances: 64,
  resolveCalls: 1_000,
  resolveSeconds: 120,
  rate: 200,
  warmupSeconds: 5,
  windowSeconds: 20,
  drainSeconds: 20,
};
const QUICK: Settings = {
  instances: 64,
  resolveCalls: 300,
  resolveSeconds: 15,
  rate: 100,
  warmupSeconds: 2,
  windowSeconds: 5,
  drainSeconds: 10,
};

function describeOutcome(result: StepResult): string {
  const refusals = [...result.refusals].map(([code, n]) => `${n}x ${code}`).join(', ');
  return (
    `offered ${result.rate}/s, sent ${fixed(result.sentRate)}/s, ` +
    `${sustains(result) ? 'sustained' : 'not sustained'}, ${result.uncommitted} uncommitted` +
    (refusals === '' ? '' : `, refused ${refusals}`)
  );
}

export default async function discovery(context: BenchContext): Promise<void> {
  const settings = context.quick ? QUICK : FULL;
  const progress = startSuite(context);
  await ensureBuilt(progress);
  const dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-discovery-bench-'));
  try {
    progress(
      `${VALIDATORS} validators with the service catalog: genesis ceremony and node processes ` +
        `in ${dir} (load average ${fixed(loadavg()[0] ?? 0, 2)})`,
    );
    const cluster = await startBenchCluster({
      dir,
      validators: VALIDATORS,
      stampDifficulty: STAMP_DIFFICULTY,
      connections: CONNECTIONS,
      progress,
      discovery: true,
    });
    try {
      const tracker = new CommitTracker(cluster);
      const submit = batched(cluster);
      const chainId = cluster.genesis.chainId;

      // The resolved service: N instances, registered and committed before anything is timed.
      const instances = await prepareRegistrations({
        chainId,
        stampDifficulty: STAMP_DIFFICULTY,
        count: settings.instances,
        tag: 'rs',
        service: RESOLVED_SERVICE,
      });
      const codes = await Promise.all(
        instances.txs.map((tx, i) => {
          const sender = instances.senderOf(i);
          return submit(tx, cluster.names[sender % cluster.names.length] as string, sender);
        }),
      );
      const refused = codes.filter((code) => code !== null);
      if (refused.length > 0) {
        throw new Error(`registrations of ${RESOLVED_SERVICE} refused: ${refused.join(', ')}`);
      }
      await tracker.waitForCommits(instances.hashes, 60_000);
      progress(`${settings.instances} instances of ${RESOLVED_SERVICE} committed`);

      const session = await openServiceSession(await loadClusterTarget(cluster.layout.dir));
      let resolveTimes: { resolve: number[]; status: number[] };
      try {
        const node = cluster.names[0] as string;
        const clients = {
          discovery: session.discovery(node),
          api: session.api(node),
          service: RESOLVED_SERVICE,
          expected: settings.instances,
        };
        // Warm-up: connection, JIT and the node's caches settle before anything is timed.
        await timeResolve({ ...clients, calls: 50, deadline: performance.now() + 10_000 });
        resolveTimes = await timeResolve({
          ...clients,
          calls: settings.resolveCalls,
          deadline: performance.now() + settings.resolveSeconds * 1000,
        });
      } finally {
        await session.close();
      }
      progress(
        `resolve: ${resolveTimes.resolve.length} calls, p50 ${fixed(percentile(resolveTimes.resolve, 50), 2)} ms, ` +
          `p99 ${fixed(percentile(resolveTimes.resolve, 99), 2)} ms; status p50 ` +
          `${fixed(percentile(resolveTimes.status, 50), 2)} ms, p99 ${fixed(percentile(resolveTimes.status, 99), 2)} ms`,
      );

      // Registrations, then kv sets, at the same offered rate.
      const deps: StepDeps = {
        cluster,
        tracker,
        submit,
        timing: settings,
        stampDifficulty: STAMP_DIFFICULTY,
        progress,
      };
      const count = stepCount(settings.rate, settings);
      const built = performance.now();
      const registrations = await prepareRegistrations({
        chainId,
        stampDifficulty: STAMP_DIFFICULTY,
        count,
        tag: 'reg',
      });
      progress(
        `registrations: ${settings.rate}/s — built ${count} register txs from ` +
          `${registrations.senders} senders in ${fixed((performance.now() - built) / 1000, 1)} s ` +
          `(mean ${fixed(registrations.meanBytes)} bytes)`,
      );
      const registered = await measureStep(deps, registrations, settings.rate);
      const kvSteps = new KvSteps(deps, { tag: 'kv', prefix: '' });
      const kvResult = await kvSteps.run(settings.rate, 'kv sets');

      const warnings = [...cluster.nodeWarnings].map(([message, n]) => `${n}x ${message}`);
      if (warnings.length > 0) progress(`node warnings: ${warnings.join('; ')}`);

      const setup =
        `${VALIDATORS} validators (node processes, loopback), catalog installed, stamp difficulty ` +
        `${STAMP_DIFFICULTY}; load average at the end ${fixed(loadavg()[0] ?? 0, 2)}`;
      const resolveNote =
        `resolve of a service with ${settings.instances} instances over STOQ, each answer's ` +
        `proofs (index + every instance) checked by the client; ${resolveTimes.resolve.length} ` +
        'calls one at a time after 50 warm-up calls, alternating with the node API status on ' +
        `the same connection; ${setup}`;
      for (const p of [50, 99]) {
        context.emit({
          metric: `discovery_resolve_latency_p${p}_ms`,
          value: percentile(resolveTimes.resolve, p),
          unit: 'ms',
          baseline: {
            name: 'node API status, same run',
            value: percentile(resolveTimes.status, p),
          },
          note: resolveNote,
        });
      }
      const stepNote = (name: string, result: StepResult): string =>
        `${name}: ${describeOutcome(result)}, ${result.blocks} blocks in the window`;
      const throughputNote =
        `${stepNote('register', registered)}; ${stepNote('kv', kvResult)}; open loop, ` +
        `${settings.warmupSeconds} s warm-up + ${settings.windowSeconds} s window, ` +
        `fresh sender keys (register: ≤ 16 instances per key, one service per key); ${BATCHING}; ${setup}`;
      context.emit({
        metric: 'discovery_registrations_committed_per_s',
        value: registered.committedRate,
        unit: 'registrations/s',
        baseline: {
          name: `kv set transactions at the same offered rate (${settings.rate}/s)`,
          value: kvResult.committedRate,
        },
        note: throughputNote,
      });
      for (const p of [50, 99]) {
        context.emit({
          metric: `discovery_registration_commit_latency_p${p}_ms`,
          value: stepLatency(registered, p),
          unit: 'ms',
          baseline: {
            name: `kv set at ${settings.rate}/s, same run`,
            value: stepLatency(kvResult, p),
          },
          note:
            'from hand-over to the batching client to the block commit on node-1 (its log time), ' +
            `over every transaction handed over in the window: ${registered.uncommitted} registrations ` +
            `and ${kvResult.uncommitted} kv sets never committed, counted as +Infinity (null: no value)`,
        });
      }
    } finally {
      await cluster.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
