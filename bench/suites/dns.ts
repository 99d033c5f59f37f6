/**
 * `npm run bench -- dns [--quick]`: the HyperMesh authoritative DNS server against Knot DNS
 * (issue 5 §3), both serving the same zone (bench/dns/zone.ts) on one core (taskset core 0,
 * Knot with one UDP and one TCP worker), loaded by dnsperf on the other core with the same
 * query mix and the same command. Knot is the baseline, measured in the same run.
 *
 * - Queries per second over UDP, then over TCP (8 connections, pipelined), per server.
 * - Server CPU per answered query (µs), from /proc over the same interval.
 * - The same UDP load on a node:dgram responder that does no DNS work (bench/dns/floor.ts):
 *   the ceiling of the one-datagram-per-call node:dgram path, which HyperMesh's batched UDP
 *   (recvmmsg/sendmmsg, docs/dns.md "Batched UDP") is measured against.
 *
 * - DNSSEC: the same UDP load with the DO bit set (dnsperf `-D`) on the zone served unsigned
 *   and served signed (online signing, ECDSA P-256, NSEC), for HyperMesh and for Knot (which
 *   signs the zone itself with its default policy, the same algorithm). Signatures are cached,
 *   so a signed answer should cost little more than an unsigned one: the signed/unsigned ratio
 *   of CPU per query is the figure to read.
 *
 * - Against one node: the same UDP load, without and with DO, on a running HyperMesh node (a
 *   one-validator cluster, bench/dns/node.ts) that serves the zone from consensus state after
 *   the records were written as signed `dns` transactions, and on Knot serving exactly the
 *   records the node holds (unsigned, then signed). The node process, every thread of it
 *   (consensus still producing blocks at the idle rate), is pinned to core 0; its CPU per query
 *   is the whole process's. Needs the built bin (dist/, rebuilt first if older than src/).
 *
 * The target is ≥ 0.5× Knot's UDP rate on one core. On a loaded machine every server shares
 * core 0 with whatever else runs there and the numbers swing from run to run; the load average
 * at the start is in each note, and only a quiet run is worth comparing.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { BenchContext } from '../report.js';
import {
  freePort,
  hasTool,
  runDnsperf,
  startFloor,
  startHyperMesh,
  startKnot,
  type DnsperfResult,
  type RunningServer,
} from '../dns/tools.js';
import { MAX_RECORDS_PER_NAME } from '../../src/trustchain/dns-zones/index.js';
import { ensureBuilt } from '../consensus/cluster.js';
import { nodeZone, startDnsNode } from '../dns/node.js';
import { BENCH_ZONE, benchZone, queryFile, zoneFile } from '../dns/zone.js';

const HOST = '127.0.0.1';
const HOSTS = 1_000;
const QUERY_LINES = 100_000;

interface Measured {
  udp: DnsperfResult;
  tcp: DnsperfResult;
}

async function measure(
  context: BenchContext,
  name: string,
  server: RunningServer,
  port: number,
  dir: string,
  seconds: { warm: number; run: number },
): Promise<Measured> {
  const queries = queryFile(HOSTS, QUERY_LINES);
  const base = { dir, host: HOST, port, queries, serverPid: server.pid };
  // Warm-up: the JIT (HyperMesh) and caches (both) settle before anything is measured.
  await runDnsperf({ ...base, seconds: seconds.warm });
  context.progress(`${name}: UDP ${seconds.run} s`);
  const udp = await runDnsperf({ ...base, seconds: seconds.run });
  context.progress(
    `${name}: UDP ${Math.round(udp.qps)} q/s, ${udp.cpuMicrosPerQuery.toFixed(2)} µs/q`,
  );
  context.progress(`${name}: TCP ${seconds.run} s`);
  const tcp = await runDnsperf({ ...base, seconds: seconds.run, tcp: true });
  context.progress(
    `${name}: TCP ${Math.round(tcp.qps)} q/s, ${tcp.cpuMicrosPerQuery.toFixed(2)} µs/q`,
  );
  return { udp, tcp };
}

/** UDP with the DO bit set only (the DNSSEC comparison), after a warm-up. */
async function measureDo(
  context: BenchContext,
  name: string,
  server: RunningServer,
  port: number,
  dir: string,
  seconds: { warm: number; run: number },
): Promise<DnsperfResult> {
  const queries = queryFile(HOSTS, QUERY_LINES);
  const base = { dir, host: HOST, port, queries, serverPid: server.pid, dnssec: true };
  // The warm-up also makes every signature the mix needs (signed once, then cached).
  await runDnsperf({ ...base, seconds: seconds.warm });
  const result = await runDnsperf({ ...base, seconds: seconds.run });
  context.progress(
    `${name}: UDP+DO ${Math.round(result.qps)} q/s, ${result.cpuMicrosPerQuery.toFixed(2)} µs/q`,
  );
  return result;
}

interface SignedPair {
  unsigned: DnsperfResult;
  signed: DnsperfResult;
}

/** Each server unsigned then signed, UDP with DO, in the same run. */
async function measureDnssec(
  context: BenchContext,
  dir: string,
  seconds: { warm: number; run: number },
): Promise<{ hypermesh: SignedPair; knot: SignedPair }> {
  const zoneText = zoneFile(benchZone(HOSTS));
  const knotRuns: Partial<SignedPair> = {};
  for (const sign of [false, true]) {
    const label = `knot ${sign ? 'signed' : 'unsigned'}`;
    const knotDir = await mkdtemp(path.join(dir, sign ? 'knot-signed-' : 'knot-unsigned-'));
    const port = await freePort(HOST);
    const knot = await startKnot({
      dir: knotDir,
      host: HOST,
      port,
      zone: BENCH_ZONE,
      zoneText,
      sign,
    });
    try {
      knotRuns[sign ? 'signed' : 'unsigned'] = await measureDo(
        context,
        label,
        knot,
        port,
        dir,
        seconds,
      );
    } finally {
      await knot.stop();
    }
  }
  const ourRuns: Partial<SignedPair> = {};
  for (const sign of [false, true]) {
    const label = `hypermesh ${sign ? 'signed' : 'unsigned'}`;
    const server = await startHyperMesh({ host: HOST, hosts: HOSTS, sign });
    try {
      ourRuns[sign ? 'signed' : 'unsigned'] = await measureDo(
        context,
        label,
        server,
        server.port,
        dir,
        seconds,
      );
    } finally {
      await server.stop();
    }
  }
  const complete = (pair: Partial<SignedPair>): SignedPair => {
    if (pair.signed === undefined || pair.unsigned === undefined) throw new Error('unreachable');
    return { signed: pair.signed, unsigned: pair.unsigned };
  };
  return { hypermesh: complete(ourRuns), knot: complete(knotRuns) };
}

/** Percentage of completed queries answered NXDOMAIN. */
function nxdomainShare(result: DnsperfResult): number {
  const total = Object.values(result.responseCodes).reduce((sum, n) => sum + n, 0);
  return total === 0 ? 0 : ((result.responseCodes['NXDOMAIN'] ?? 0) / total) * 100;
}

/**
 * The node and Knot ran the same query mix over the same records, so their answers have the
 * same share of NXDOMAIN (a tenth of the mix); a record the load did not write shows up here.
 */
function sameAnswers(node: DnsperfResult, knot: DnsperfResult): void {
  const ours = nxdomainShare(node);
  const theirs = nxdomainShare(knot);
  const codes = (r: DnsperfResult): string => JSON.stringify(r.responseCodes);
  if (Math.abs(ours - theirs) > 0.5 || Object.keys(node.responseCodes).length === 0) {
    throw new Error(
      `the node does not answer like Knot from the same records: response codes ` +
        `${codes(node)} vs ${codes(knot)}`,
    );
  }
}

interface NodeMeasured {
  /** The node: UDP, then UDP with DO (the zone is signed, as `cluster init` signs it). */
  node: { udp: DnsperfResult; do: DnsperfResult };
  /** Knot with the node's records: UDP unsigned; UDP with DO, zone signed. */
  knot: { udp: DnsperfResult; do: DnsperfResult };
  transactions: number;
  loadSeconds: number;
}

/**
 * A HyperMesh node serving the zone from consensus state (bench/dns/node.ts) against Knot serving
 * exactly the records the node holds, in this run: UDP, and UDP with the DO bit on the signed
 * zone (Knot signs its copy with its default policy, the same algorithm as the node's key).
 */
async function measureNode(
  context: BenchContext,
  dir: string,
  seconds: { warm: number; run: number },
  doSeconds: { warm: number; run: number },
): Promise<NodeMeasured> {
  const queries = queryFile(HOSTS, QUERY_LINES);
  const udp = async (
    name: string,
    pid: number,
    port: number,
    dnssec: boolean,
  ): Promise<DnsperfResult> => {
    const base = { dir, host: HOST, port, queries, serverPid: pid, dnssec };
    const time = dnssec ? doSeconds : seconds;
    await runDnsperf({ ...base, seconds: time.warm });
    const result = await runDnsperf({ ...base, seconds: time.run });
    context.progress(
      `${name}: UDP${dnssec ? '+DO' : ''} ${Math.round(result.qps)} q/s, ` +
        `${result.cpuMicrosPerQuery.toFixed(2)} µs/q`,
    );
    return result;
  };
  const knotRuns: Partial<NodeMeasured['knot']> = {};
  for (const sign of [false, true]) {
    const knotDir = await mkdtemp(path.join(dir, sign ? 'knot-node-signed-' : 'knot-node-'));
    const port = await freePort(HOST);
    const knot = await startKnot({
      dir: knotDir,
      host: HOST,
      port,
      zone: BENCH_ZONE,
      zoneText: zoneFile(nodeZone(HOSTS)),
      sign,
    });
    try {
      const label = `knot (node's records${sign ? ', signed' : ''})`;
      knotRuns[sign ? 'do' : 'udp'] = await udp(label, knot.pid, port, sign);
    } finally {
      await knot.stop();
    }
  }
  const node = await startDnsNode({
    dir: await mkdtemp(path.join(dir, 'node-')),
    host: HOST,
    hosts: HOSTS,
    progress: (message) => context.progress(message),
  });
  try {
    const nodeUdp = await udp('hypermesh node', node.pid, node.port, false);
    const nodeDo = await udp('hypermesh node', node.pid, node.port, true);
    if (knotRuns.udp === undefined || knotRuns.do === undefined) throw new Error('unreachable');
    sameAnswers(nodeUdp, knotRuns.udp);
    sameAnswers(nodeDo, knotRuns.do);
    return {
      node: { udp: nodeUdp, do: nodeDo },
      knot: { udp: knotRuns.udp, do: knotRuns.do },
      transactions: node.transactions,
      loadSeconds: node.loadSeconds,
    };
  } finally {
    await node.stop();
  }
}

export default async function dns(context: BenchContext): Promise<void> {
  const missing: string[] = [];
  for (const [tool, args] of [
    ['knotd', ['--version']],
    ['dnsperf', ['-h']],
    ['dig', ['-v']],
    ['taskset', ['--version']],
  ] as const) {
    if (!(await hasTool(tool, [...args]))) missing.push(tool);
  }
  if (missing.length > 0) {
    throw new Error(
      `the dns benchmark needs ${missing.join(', ')} (Debian: knot, dnsperf, bind9-dnsutils, util-linux)`,
    );
  }
  const knotVersion = (await promisify(execFile)('knotd', ['--version'])).stdout
    .trim()
    .replace(/^knotd \(Knot DNS\), version /, '');
  const seconds = context.quick ? { warm: 2, run: 5 } : { warm: 5, run: 20 };
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  // The node measurement runs the built bin: build now, not between measurements.
  await ensureBuilt((message) => context.progress(message));
  const dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-dns-bench-'));
  try {
    context.progress(`Knot ${knotVersion} on core 0 (load average ${load})`);
    const knotPort = await freePort(HOST);
    const knot = await startKnot({
      dir,
      host: HOST,
      port: knotPort,
      zone: BENCH_ZONE,
      zoneText: zoneFile(benchZone(HOSTS)),
    });
    let baseline: Measured;
    try {
      baseline = await measure(context, 'knot', knot, knotPort, dir, seconds);
    } finally {
      await knot.stop();
    }

    context.progress('HyperMesh on core 0');
    const hypermesh = await startHyperMesh({ host: HOST, hosts: HOSTS });
    let ours: Measured;
    try {
      ours = await measure(context, 'hypermesh', hypermesh, hypermesh.port, dir, seconds);
    } finally {
      await hypermesh.stop();
    }

    context.progress('node:dgram floor responder on core 0');
    const floor = await startFloor({ host: HOST });
    let floorUdp: DnsperfResult;
    try {
      const queries = queryFile(HOSTS, QUERY_LINES);
      const base = { dir, host: HOST, port: floor.port, queries, serverPid: floor.pid };
      await runDnsperf({ ...base, seconds: seconds.warm });
      floorUdp = await runDnsperf({ ...base, seconds: seconds.run });
      context.progress(
        `floor: UDP ${Math.round(floorUdp.qps)} q/s, ${floorUdp.cpuMicrosPerQuery.toFixed(2)} µs/q`,
      );
    } finally {
      await floor.stop();
    }

    context.progress('DNSSEC: UDP with DO, unsigned and signed zone, Knot then HyperMesh');
    const dnssecSeconds = context.quick ? { warm: 1, run: 3 } : seconds;
    const dnssec = await measureDnssec(context, dir, dnssecSeconds);

    context.progress('HyperMesh node (1 validator, zone in consensus state) against Knot');
    const onNode = await measureNode(context, dir, seconds, dnssecSeconds);

    const knotName = `knot ${knotVersion} (1 UDP + 1 TCP worker)`;
    const setup =
      `zone of ${HOSTS} hosts, ${QUERY_LINES} query lines (A/AAAA, NXDOMAIN, TXT, MX), ` +
      `servers on core 0, dnsperf -c 8 -q 500 on core 1, ${seconds.run} s per run; ` +
      `load average at start ${load}`;
    const lost = (r: DnsperfResult): string => `${r.lost} of ${r.sent} lost`;
    for (const transport of ['udp', 'tcp'] as const) {
      const ourRun = ours[transport];
      const knotRun = baseline[transport];
      context.emit({
        metric: `dns_${transport}_qps`,
        value: ourRun.qps,
        unit: 'queries/s',
        baseline: { name: knotName, value: knotRun.qps },
        note:
          (transport === 'udp' ? 'target ≥ 0.5× Knot on one core; ' : '') +
          `HyperMesh ${lost(ourRun)}, Knot ${lost(knotRun)}, average latency ` +
          `${ourRun.avgLatencyMs.toFixed(3)} vs ${knotRun.avgLatencyMs.toFixed(3)} ms; ${setup}`,
      });
      context.emit({
        metric: `dns_${transport}_cpu_per_query`,
        value: ourRun.cpuMicrosPerQuery,
        unit: 'µs/query',
        baseline: { name: knotName, value: knotRun.cpuMicrosPerQuery },
        note: 'server process user+system CPU over the run / queries completed (lower is better)',
      });
    }
    context.emit({
      metric: 'dns_udp_qps_node_floor',
      value: floorUdp.qps,
      unit: 'queries/s',
      baseline: { name: knotName, value: baseline.udp.qps },
      note:
        'a node:dgram responder doing no DNS work (bench/dns/floor.ts): the ceiling of one ' +
        `datagram per call, which batched UDP is not bound by; ${floorUdp.cpuMicrosPerQuery.toFixed(2)} µs/query CPU; ${setup}`,
    });
    const doSetup =
      `same zone and query mix with the DO bit set (dnsperf -D), UDP, ${dnssecSeconds.run} s per ` +
      'run after a warm-up that makes every signature the mix needs; signed: ECDSA P-256 ' +
      '(algorithm 13), NSEC; Knot signs with its default policy (dnssec-signing: on)';
    const ourDo = dnssec.hypermesh;
    const knotDo = dnssec.knot;
    context.emit({
      metric: 'dns_dnssec_udp_cpu_per_query',
      value: ourDo.signed.cpuMicrosPerQuery,
      unit: 'µs/query',
      baseline: { name: 'hypermesh, same zone unsigned', value: ourDo.unsigned.cpuMicrosPerQuery },
      note:
        'ratio = signed/unsigned cost per answer (signatures cached: target close to 1); ' +
        `Knot signed/unsigned ${(knotDo.signed.cpuMicrosPerQuery / knotDo.unsigned.cpuMicrosPerQuery).toFixed(2)} ` +
        `(${knotDo.signed.cpuMicrosPerQuery.toFixed(2)} vs ${knotDo.unsigned.cpuMicrosPerQuery.toFixed(2)} µs); ${doSetup}`,
    });
    context.emit({
      metric: 'dns_dnssec_udp_qps',
      value: ourDo.signed.qps,
      unit: 'queries/s',
      baseline: { name: 'hypermesh, same zone unsigned', value: ourDo.unsigned.qps },
      note:
        `signed ${lost(ourDo.signed)}, unsigned ${lost(ourDo.unsigned)}; Knot signed ` +
        `${Math.round(knotDo.signed.qps)} q/s, unsigned ${Math.round(knotDo.unsigned.qps)} q/s; ${doSetup}`,
    });
    context.emit({
      metric: 'dns_dnssec_udp_qps_vs_knot',
      value: ourDo.signed.qps,
      unit: 'queries/s',
      baseline: { name: `${knotName}, signed`, value: knotDo.signed.qps },
      note:
        `both signed, DO set; CPU ${ourDo.signed.cpuMicrosPerQuery.toFixed(2)} vs ` +
        `${knotDo.signed.cpuMicrosPerQuery.toFixed(2)} µs/query; ${doSetup}`,
    });
    const nodeSetup =
      `one validator (cluster init --validators 1, zone ${BENCH_ZONE} in app.dns, signed as ` +
      'cluster init signs it; no catalog, no CA) serving the zone from consensus state: ' +
      `${onNode.transactions} signed dns transactions (name-register, records-set) committed ` +
      `in ${onNode.loadSeconds.toFixed(1)} s before the runs, blocks still produced at the ` +
      'idle rate during them, DNS response cache at its default; every node thread on core 0; ' +
      'Knot serves the same records (the SRV set cut to the module limit of ' +
      `${MAX_RECORDS_PER_NAME} records per name; it is not in the query mix)`;
    const nodeCpu =
      'node process user+system CPU (/proc/<pid>/stat, all threads: DNS, consensus, STOQ) ' +
      'over the run / queries completed (lower is better)';
    const ourNode = onNode.node;
    const knotNode = onNode.knot;
    context.emit({
      metric: 'dns_node_udp_qps',
      value: ourNode.udp.qps,
      unit: 'queries/s',
      baseline: { name: `${knotName}, same records`, value: knotNode.udp.qps },
      note:
        `node ${lost(ourNode.udp)}, Knot ${lost(knotNode.udp)}, average latency ` +
        `${ourNode.udp.avgLatencyMs.toFixed(3)} vs ${knotNode.udp.avgLatencyMs.toFixed(3)} ms; ` +
        `${nodeSetup}; ${setup}`,
    });
    context.emit({
      metric: 'dns_node_udp_cpu_per_query',
      value: ourNode.udp.cpuMicrosPerQuery,
      unit: 'µs/query',
      baseline: { name: `${knotName}, same records`, value: knotNode.udp.cpuMicrosPerQuery },
      note: nodeCpu,
    });
    context.emit({
      metric: 'dns_node_dnssec_udp_qps',
      value: ourNode.do.qps,
      unit: 'queries/s',
      baseline: { name: `${knotName}, same records, signed`, value: knotNode.do.qps },
      note:
        `DO set (dnsperf -D), both zones signed (ECDSA P-256, NSEC); node ${lost(ourNode.do)}, ` +
        `Knot ${lost(knotNode.do)}; ${dnssecSeconds.run} s per run after a warm-up; ${nodeSetup}`,
    });
    context.emit({
      metric: 'dns_node_dnssec_udp_cpu_per_query',
      value: ourNode.do.cpuMicrosPerQuery,
      unit: 'µs/query',
      baseline: { name: `${knotName}, same records, signed`, value: knotNode.do.cpuMicrosPerQuery },
      note:
        `${nodeCpu}; the node's signed/unsigned ratio ` +
        `${(ourNode.do.cpuMicrosPerQuery / ourNode.udp.cpuMicrosPerQuery).toFixed(2)}`,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
