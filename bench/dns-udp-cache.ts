/**
 * The UDP response cache (src/faces/dns/response-cache.ts): CPU per query with the cache and
 * without it, in the same run.
 *
 *   node --import tsx bench/dns-udp-cache.ts [--runs 2] [--rounds 3] [--rate 0] [--no-pin]
 *
 * 1. In process, no sockets: the dns suite's query mix (100,000 queries, as dnsperf sends them:
 *    RD, no EDNS) answered `--runs` times by the answer engine alone and by the cache (after one
 *    warm-up pass each), timed with `process.cpuUsage()`. This is the DNS work per datagram
 *    that the server adds to Node's UDP path, and it is steady even on a loaded machine.
 * 2. Over UDP, the server as a whole, next to the node:dgram responder that does no DNS work
 *    (bench/dns/floor.ts). Each round starts each server afresh (bench/dns/server.ts, the benchmark zone of 1,000 hosts;
 * `--udp-cache 0` for the run without the cache), warms it up with one pass of dnsperf over the
 * query file (100,000 queries, the mix of `npm run bench -- dns`), then sends `--runs` more
 * passes at `--rate` queries/s (dnsperf -Q; 0: as fast as dnsperf goes) and reads the server's
 * own `process.cpuUsage()` before and after (bench/dns/cpu.ts). CPU per query = CPU used /
 * queries completed. A fixed rate keeps every variant in the same regime: a Node.js server's
 * CPU per datagram falls as the rate rises (more datagrams per wake-up), so comparing runs
 * that reached different rates on a loaded machine would mix that in. The variants alternate within each round, so
 * load from other work on the machine falls on all of them alike; the median round is printed.
 * Servers are pinned to core 0 and dnsperf to core 1 unless `--no-pin`. Needs dnsperf.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { hasTool, LOAD_CPU, SERVER_CPU } from './dns/tools.js';
import {
  answer,
  encodeMessage,
  MemoryZone,
  parseRecord,
  ZoneSet,
} from '../src/trustchain/dns/index.js';
import { UdpResponseCache } from '../src/faces/dns/response-cache.js';
import { BENCH_ZONE, benchZone, queryFile } from './dns/zone.js';

const run = promisify(execFile);
const HOST = '127.0.0.1';
const HOSTS = 1_000;
const LINES = 100_000;
const REPO = fileURLToPath(new URL('..', import.meta.url));

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    rate: { type: 'string', default: '0' },
    'no-pin': { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const rounds = Number(values.rounds);
const rate = Number(values.rate);
const pin = !values['no-pin'] && (await hasTool('taskset'));
if (!(await hasTool('dnsperf', ['-h']))) throw new Error('needs dnsperf (Debian: dnsperf)');

interface Variant {
  readonly name: string;
  readonly script: string;
  readonly args: readonly string[];
}
const VARIANTS: readonly Variant[] = [
  { name: 'cache', script: 'bench/dns/server.ts', args: ['--hosts', String(HOSTS)] },
  {
    name: 'no cache',
    script: 'bench/dns/server.ts',
    args: ['--hosts', String(HOSTS), '--udp-cache', '0'],
  },
  { name: 'floor (no DNS work)', script: 'bench/dns/floor.ts', args: [] },
];

interface Server {
  readonly port: number;
  cpuMicros(): Promise<number>;
  stop(): Promise<void>;
}

async function startServer(variant: Variant): Promise<Server> {
  const node = [process.execPath, '--import', 'tsx', variant.script, '--host', HOST];
  const command = [...node, ...variant.args, '--cpu-on-stdin'];
  const child = pin
    ? spawn('taskset', ['-c', SERVER_CPU, ...command], { cwd: REPO })
    : spawn(command[0]!, command.slice(1), { cwd: REPO });
  child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  const lines = createInterface({ input: child.stdout });
  const waiting: Array<(line: string) => void> = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const next = (): Promise<string> => new Promise((resolve) => waiting.push(resolve));
  const ready = await next();
  const match = /^ready (\d+)$/.exec(ready);
  if (!match) throw new Error(`${variant.script}: expected "ready <port>", got "${ready}"`);
  return {
    port: Number(match[1]),
    async cpuMicros() {
      const reply = next();
      child.stdin.write('cpu\n');
      const cpu = /^cpu (\d+)$/.exec(await reply);
      if (!cpu) throw new Error(`${variant.script}: bad cpu reply`);
      return Number(cpu[1]);
    },
    async stop() {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function dnsperf(port: number, queries: string, passes: number, qps = 0) {
  const args = ['-s', HOST, '-p', String(port), '-d', queries, '-n', String(passes)];
  args.push('-c', '8', '-q', '500', '-t', '2');
  if (qps > 0) args.push('-Q', String(qps));
  const { stdout } = pin
    ? await run('taskset', ['-c', LOAD_CPU, 'dnsperf', ...args], { maxBuffer: 1 << 24 })
    : await run('dnsperf', args, { maxBuffer: 1 << 24 });
  const number = (label: string): number => {
    const found = new RegExp(`${label}:\\s+([0-9.]+)`).exec(stdout);
    if (!found?.[1]) throw new Error(`dnsperf output has no "${label}":\n${stdout}`);
    return Number(found[1]);
  };
  return { completed: number('Queries completed'), qps: number('Queries per second') };
}

interface Sample {
  readonly micros: number;
  readonly qps: number;
  readonly completed: number;
}

/** Part 1: CPU µs per query of the engine alone and of the cache, alternating per round. */
function inProcess(): { engine: number[]; cache: number[] } {
  const zoneRecords = benchZone(HOSTS).map((input, i) => parseRecord(input, `zone[${i}]`));
  const zones = new ZoneSet([MemoryZone.build(BENCH_ZONE, zoneRecords)]);
  const types: Record<string, number> = { A: 1, AAAA: 28, TXT: 16, MX: 15 };
  const packets = queryFile(HOSTS, LINES)
    .trim()
    .split('\n')
    .map((line, i) => {
      const [name, type] = line.split(' ') as [string, string];
      const questions = [{ name, type: types[type]!, class: 1 }];
      return encodeMessage({ id: i & 0xffff, recursionDesired: true, questions });
    });
  const info = { rcode: 0, qtype: 0, truncated: false };
  const options = { transport: 'udp', maxUdpPayload: 1232, info } as const;
  const timed = (handle: (packet: Uint8Array) => unknown): number => {
    for (const packet of packets) handle(packet);
    const before = process.cpuUsage();
    for (let pass = 0; pass < runs; pass++) for (const packet of packets) handle(packet);
    const used = process.cpuUsage(before);
    return (used.user + used.system) / (runs * packets.length);
  };
  const result = { engine: [] as number[], cache: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    result.engine.push(timed((packet) => answer(packet, zones, options)));
    const cache = new UdpResponseCache({ zones, maxUdpPayload: 1232, entries: 16_384 });
    // The server passes the time it reads for its latency metric anyway; no clock read here.
    const now = performance.now();
    result.cache.push(timed((packet) => cache.answer(packet, now)));
    process.stderr.write(
      `in process, round ${round + 1}: engine ${result.engine[round]!.toFixed(3)} µs/query, ` +
        `cache ${result.cache[round]!.toFixed(3)} µs/query ` +
        `(${cache.hits} hits, ${cache.misses} misses)\n`,
    );
  }
  return result;
}

const load = loadavg()
  .map((l) => l.toFixed(2))
  .join(' ');
const local = inProcess();
const middle = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
for (const [variant, values] of Object.entries(local)) {
  process.stdout.write(
    `${JSON.stringify({
      metric: 'dns_answer_cpu_per_query',
      variant,
      value: Number(middle(values).toFixed(3)),
      unit: 'µs/query',
      note: `in process, no sockets; median of ${rounds} rounds × ${runs * LINES} queries; load average at start ${load}`,
    })}\n`,
  );
}

const dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-dns-cache-bench-'));
const results = new Map<string, Sample[]>(VARIANTS.map((v) => [v.name, []]));
try {
  const queries = path.join(dir, 'queries.txt');
  await writeFile(queries, queryFile(HOSTS, LINES));
  for (let round = 0; round < rounds; round++) {
    for (const variant of VARIANTS) {
      const server = await startServer(variant);
      try {
        await dnsperf(server.port, queries, 1);
        const before = await server.cpuMicros();
        const measured = await dnsperf(server.port, queries, runs, rate);
        const used = (await server.cpuMicros()) - before;
        const sample = {
          micros: used / measured.completed,
          qps: measured.qps,
          completed: measured.completed,
        };
        results.get(variant.name)!.push(sample);
        process.stderr.write(
          `round ${round + 1} ${variant.name}: ${sample.micros.toFixed(2)} µs/query, ` +
            `${Math.round(sample.qps)} q/s, ${sample.completed} queries\n`,
        );
      } finally {
        await server.stop();
      }
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

const median = (samples: readonly Sample[]): Sample =>
  [...samples].sort((a, b) => a.micros - b.micros)[Math.floor(samples.length / 2)]!;
const note =
  `${rounds} rounds × ${runs * LINES} queries (the dns suite's mix over ${HOSTS} hosts), ` +
  `dnsperf -c 8 -q 500 ${rate > 0 ? `-Q ${rate}` : '(no rate limit)'}${pin ? ', server on core 0, dnsperf on core 1' : ''}; ` +
  `load average at start ${load}`;
for (const variant of VARIANTS) {
  const m = median(results.get(variant.name)!);
  process.stdout.write(
    `${JSON.stringify({
      metric: 'dns_udp_cpu_per_query',
      variant: variant.name,
      value: Number(m.micros.toFixed(2)),
      unit: 'µs/query',
      qps: Math.round(m.qps),
      note,
    })}\n`,
  );
}
