import { startDnsServers, type DnsServers } from '../../../src/faces/dns/index.js';
import {
  MemoryZone,
  ZoneSet,
  parseRecord,
  type RecordInput,
} from '../../../src/trustchain/dns/index.js';

/**
 * The "internet" of the external-name tests: the project's own authoritative DNS server on
 * 127.0.0.1 (UDP and TCP on one port) serving the zone `example.` — the recursive resolver the
 * ACME server is pointed at (`acme.resolver`). Names outside `example.` are REFUSED, which a
 * resolver reports as a failed lookup.
 */

export const EXTERNAL_ZONE = 'example';

export const caa = (name: string, value: string, tag = 'issue', flags = 0): RecordInput => ({
  name: `${name}.`,
  type: 'CAA',
  ttl: 60,
  data: { flags, tag, value },
});

export const a = (name: string, address = '127.0.0.1'): RecordInput => ({
  name: `${name}.`,
  type: 'A',
  ttl: 60,
  data: { address },
});

export const txt = (name: string, value: string): RecordInput => ({
  name: `${name}.`,
  type: 'TXT',
  ttl: 60,
  data: { strings: [value] },
});

export interface ExternalDns {
  /** `127.0.0.1:<port>`: the `acme.resolver` value. */
  readonly resolver: string;
  readonly servers: DnsServers;
  close(): Promise<void>;
}

/** Serves `example.` (SOA, NS and `records`) on a free loopback port. */
export async function startExternalDns(records: readonly RecordInput[]): Promise<ExternalDns> {
  const apex = `${EXTERNAL_ZONE}.`;
  const input: RecordInput[] = [
    {
      name: apex,
      type: 'SOA',
      ttl: 60,
      data: {
        mname: `ns.${apex}`,
        rname: `hostmaster.${apex}`,
        serial: 1,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 60,
      },
    },
    { name: apex, type: 'NS', ttl: 60, data: { host: `ns.${apex}` } },
    a(`ns.${EXTERNAL_ZONE}`),
    ...records,
  ];
  const zones = new ZoneSet([
    MemoryZone.build(
      apex,
      input.map((record) => parseRecord(record)),
    ),
  ]);
  const servers = await startDnsServers({
    zones,
    udp: [{ host: '127.0.0.1', port: 0 }],
    tcp: [{ host: '127.0.0.1', port: 0 }],
  });
  const port = servers.udp[0]?.port;
  if (port === undefined) throw new Error('the DNS server bound no UDP port');
  return { resolver: `127.0.0.1:${port}`, servers, close: () => servers.close() };
}
