/**
 * External tools of the DNS benchmark: Knot DNS (the baseline server), dnsperf (the load
 * generator) and per-process CPU accounting from /proc. Servers run pinned to core 0 and
 * dnsperf to core 1 (`taskset`), so "one core" means the same thing for every server measured.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const SERVER_CPU = '0';
export const LOAD_CPU = '1';

/** Whether `command` can be started (a missing tool makes the suite say so and stop). */
export async function hasTool(command: string, args: string[] = ['--version']): Promise<boolean> {
  try {
    await run(command, args, { timeout: 10_000 });
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** User + system CPU seconds a process has used so far (Linux /proc). */
export async function processCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  return ticks / clockTicks();
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  // Linux has used USER_HZ = 100 on every architecture for /proc accounting.
  ticksPerSecond ??= 100;
  return ticksPerSecond;
}

/** Sends `name A` to the server with dig until it answers, bounded by `timeoutMs`. */
export async function waitForAnswer(
  host: string,
  port: number,
  name: string,
  timeoutMs: number,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { stdout } = await run('dig', [
        `@${host}`,
        '-p',
        String(port),
        name,
        'SOA',
        '+tries=1',
        '+time=1',
        '+short',
      ]);
      if (stdout.trim() !== '') return;
    } catch {
      // Not listening yet: dig exits non-zero; try again until the deadline.
    }
    if (Date.now() > until)
      throw new Error(`no DNS answer from ${host}:${port} in ${timeoutMs} ms`);
  }
}

export interface RunningServer {
  readonly pid: number;
  stop(): Promise<void>;
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** A port free for both UDP and TCP on `host` now (the server started next binds it). */
export async function freePort(host: string): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    udp.bind(0, host);
    await once(udp, 'listening');
    const port = udp.address().port;
    const tcp = net.createServer();
    const free = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, host, () => resolve(true));
    });
    udp.close();
    if (free) {
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
      return port;
    }
  }
  throw new Error(`no port free for both UDP and TCP on ${host}`);
}

const SERVER_SCRIPT = fileURLToPath(new URL('./server.ts', import.meta.url));
const FLOOR_SCRIPT = fileURLToPath(new URL('./floor.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Starts the HyperMesh DNS server (bench/dns/server.ts) in a child process pinned to SERVER_CPU,
 * serving the benchmark zone with `hosts` hosts over UDP and TCP on one port.
 */
export function startHyperMesh(options: {
  host: string;
  hosts: number;
  /** Serve the zone DNSSEC-signed (bench/dns/server.ts `--sign`). */
  sign?: boolean;
}): Promise<RunningServer & { port: number }> {
  const args = ['--host', options.host, '--port', '0', '--hosts', String(options.hosts)];
  if (options.sign) args.push('--sign');
  return startNodeServer(SERVER_SCRIPT, args, options.host, 'hypermesh.');
}

/** Starts the node:dgram floor responder (bench/dns/floor.ts), pinned like the others. */
export function startFloor(options: { host: string }): Promise<RunningServer & { port: number }> {
  return startNodeServer(FLOOR_SCRIPT, ['--host', options.host], options.host, undefined);
}

async function startNodeServer(
  script: string,
  scriptArgs: string[],
  host: string,
  probeZone: string | undefined,
): Promise<RunningServer & { port: number }> {
  const args = ['-c', SERVER_CPU, process.execPath, '--import', 'tsx', script, ...scriptArgs];
  const child = spawn('taskset', args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /ready (\d+)/.exec(stdout);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}): ${stderr.trim()}`)));
  });
  if (child.pid === undefined) throw new Error(`${script} did not start`);
  if (probeZone !== undefined) await waitForAnswer(host, port, probeZone, 15_000);
  return { pid: child.pid, port, stop: () => stopChild(child) };
}

/**
 * Starts knotd (one UDP and one TCP worker, pinned to SERVER_CPU) serving `zoneText`. With
 * `sign`, Knot signs the zone itself (`dnssec-signing: on`, its default policy: one ECDSA P-256
 * key generated into the KASP database under `dir`, NSEC), the same algorithm as HyperMesh's.
 */
export async function startKnot(options: {
  dir: string;
  host: string;
  port: number;
  zone: string;
  zoneText: string;
  sign?: boolean;
}): Promise<RunningServer> {
  const { dir, host, port, zone } = options;
  const zonePath = path.join(dir, 'bench.zone');
  await writeFile(zonePath, options.zoneText);
  const config = [
    'server:',
    `    listen: ${host}@${port}`,
    '    udp-workers: 1',
    '    tcp-workers: 1',
    '    background-workers: 1',
    `    rundir: ${dir}`,
    'database:',
    `    storage: ${dir}`,
    'zone:',
    `  - domain: ${zone}`,
    `    file: ${zonePath}`,
    `    storage: ${dir}`,
    ...(options.sign ? ['    dnssec-signing: on'] : []),
    'log:',
    '  - target: stderr',
    '    any: warning',
    '',
  ].join('\n');
  const configPath = path.join(dir, 'knot.conf');
  await writeFile(configPath, config);
  const child = spawn('taskset', ['-c', SERVER_CPU, 'knotd', '-c', configPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`knotd exited (${code}): ${stderr.trim()}`))),
  );
  exited.catch(() => {});
  await Promise.race([waitForAnswer(host, port, zone, 15_000), exited]);
  if (child.pid === undefined) throw new Error('knotd did not start');
  // taskset execs knotd, so the pid is knotd's own.
  return { pid: child.pid, stop: () => stopChild(child) };
}

export interface DnsperfResult {
  readonly qps: number;
  readonly sent: number;
  readonly completed: number;
  readonly lost: number;
  readonly avgLatencyMs: number;
  /** Server CPU seconds used during the run, divided by completed queries (µs/query). */
  readonly cpuMicrosPerQuery: number;
  /** Completed queries by response code (`NOERROR`, `NXDOMAIN`, …), from dnsperf's summary. */
  readonly responseCodes: Readonly<Record<string, number>>;
}

/** dnsperf's `Response codes:  NOERROR 900 (90.00%), NXDOMAIN 100 (10.00%)` as counts. */
function responseCodes(stdout: string): Record<string, number> {
  const line = /Response codes:\s+(.*)/.exec(stdout)?.[1] ?? '';
  const codes: Record<string, number> = {};
  for (const match of line.matchAll(/([A-Z0-9]+) (\d+) \(/g)) {
    codes[match[1]!] = Number(match[2]);
  }
  return codes;
}

/**
 * Runs dnsperf (pinned to LOAD_CPU) against `host:port` for `seconds` with `queries` (dnsperf's
 * input format), measuring the server process's CPU over the same interval.
 */
export async function runDnsperf(options: {
  dir: string;
  host: string;
  port: number;
  queries: string;
  seconds: number;
  serverPid: number;
  tcp?: boolean;
  /** Set the DO bit (dnsperf `-D`, which implies EDNS). */
  dnssec?: boolean;
}): Promise<DnsperfResult> {
  const queryPath = path.join(options.dir, 'queries.txt');
  await writeFile(queryPath, options.queries);
  const args = ['-c', LOAD_CPU, 'dnsperf', '-s', options.host, '-p', String(options.port)];
  args.push('-d', queryPath, '-l', String(options.seconds), '-c', '8', '-q', '500');
  if (options.tcp) args.push('-m', 'tcp');
  if (options.dnssec) args.push('-D');
  const cpuBefore = await processCpuSeconds(options.serverPid);
  const { stdout } = await run('taskset', args, {
    timeout: (options.seconds + 30) * 1000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const cpu = (await processCpuSeconds(options.serverPid)) - cpuBefore;
  const number = (label: string): number => {
    const match = new RegExp(`${label}:\\s+([0-9.]+)`).exec(stdout);
    if (!match?.[1]) throw new Error(`dnsperf output has no "${label}":\n${stdout}`);
    return Number(match[1]);
  };
  const completed = number('Queries completed');
  return {
    qps: number('Queries per second'),
    sent: number('Queries sent'),
    completed,
    lost: number('Queries lost'),
    avgLatencyMs: number('Average Latency \\(s\\)') * 1000,
    cpuMicrosPerQuery: completed > 0 ? (cpu / completed) * 1e6 : 0,
    responseCodes: responseCodes(stdout),
  };
}
