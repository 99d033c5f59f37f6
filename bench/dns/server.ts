/**
 * The HyperMesh DNS server as the benchmark runs it: a child process (pinned to one core by
 * the suite with `taskset`) serving the benchmark zone over UDP and TCP on one port.
 *
 *   node --import tsx bench/dns/server.ts --host 127.0.0.1 --port 8853 --hosts 1000
 *
 * Prints `ready <port>` on stdout once listening; exits on SIGTERM or SIGINT. `--udp-cache N`
 * sets `limits.udpResponseCacheEntries` (0: no response cache). `--sign` serves the zone signed
 * (DNSSEC online signing with a P-256 key generated at start, `ZoneSigner`), so queries with DO
 * get RRSIGs and NSEC denial; without DO the answers are the unsigned ones. With `--cpu-on-stdin`, each
 * line read on stdin is answered with `cpu <µs>`: this process's user + system CPU time so far
 * (`process.cpuUsage()`).
 */
import { parseArgs } from 'node:util';
import { startDnsServers } from '../../src/faces/dns/index.js';
import {
  MemoryZone,
  ZoneSet,
  ZoneSigner,
  generateSigningKey,
  parseRecord,
} from '../../src/trustchain/dns/index.js';
import { reportCpuOnStdin } from './cpu.js';
import { BENCH_ZONE, benchZone } from './zone.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    hosts: { type: 'string', default: '1000' },
    'udp-cache': { type: 'string' },
    'cpu-on-stdin': { type: 'boolean', default: false },
    sign: { type: 'boolean', default: false },
  },
});
const records = benchZone(Number(values.hosts)).map((input, i) => parseRecord(input, `zone[${i}]`));
const signer = values.sign
  ? new ZoneSigner({ apex: BENCH_ZONE, key: generateSigningKey() })
  : undefined;
const zones = new ZoneSet([
  MemoryZone.build(BENCH_ZONE, records, signer === undefined ? {} : { signer }),
]);
const address = { host: values.host!, port: Number(values.port) };
const cacheEntries = values['udp-cache'];
const servers = await startDnsServers({
  zones,
  udp: [address],
  tcp: [address],
  ...(cacheEntries === undefined
    ? {}
    : { limits: { udpResponseCacheEntries: Number(cacheEntries) } }),
});
if (values['cpu-on-stdin']) reportCpuOnStdin();
process.stdout.write(`ready ${servers.udp[0]!.port}\n`);
const stop = (): void => {
  void servers.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
