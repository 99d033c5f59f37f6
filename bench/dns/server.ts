/**
 * The HyperMesh DNS server as the benchmark runs it: a child process (pinned to one core by
 * the suite with `taskset`) serving the benchmark zone over UDP and TCP on one port.
 *
 *   node --import tsx bench/dns/server.ts --host 127.0.0.1 --port 8853 --hosts 1000
 *
 * Prints `ready <port>` on stdout once listening; exits on SIGTERM or SIGINT.
 */
import { parseArgs } from 'node:util';
import { startDnsServers } from '../../src/faces/dns/index.js';
import { MemoryZone, ZoneSet, parseRecord } from '../../src/trustchain/dns/index.js';
import { BENCH_ZONE, benchZone } from './zone.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    hosts: { type: 'string', default: '1000' },
  },
});
const records = benchZone(Number(values.hosts)).map((input, i) => parseRecord(input, `zone[${i}]`));
const zones = new ZoneSet([MemoryZone.build(BENCH_ZONE, records)]);
const address = { host: values.host!, port: Number(values.port) };
const servers = await startDnsServers({ zones, udp: [address], tcp: [address] });
process.stdout.write(`ready ${servers.udp[0]!.port}\n`);
const stop = (): void => {
  void servers.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
