/**
 * The benchmark zone and query mix, shared by every DNS server the benchmark measures, so Knot
 * (the baseline) and HyperMesh answer exactly the same questions from the same data. The zone
 * is written once, in the JSON record form `parseRecord` takes; Knot gets the same records as a
 * master file (RFC 1035 §5) printed from it.
 */
import type { RecordInput } from '../../src/trustchain/dns/index.js';

export const BENCH_ZONE = 'hypermesh.';

/** `hosts` names with A and AAAA, SRV records for a service on them, a TXT, MX, CAA and NS. */
export function benchZone(hosts: number): RecordInput[] {
  const records: RecordInput[] = [
    {
      name: BENCH_ZONE,
      type: 'SOA',
      ttl: 3600,
      data: {
        mname: `ns1.${BENCH_ZONE}`,
        rname: `hostmaster.${BENCH_ZONE}`,
        serial: 1,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 60,
      },
    },
    { name: BENCH_ZONE, type: 'NS', ttl: 3600, data: { host: `ns1.${BENCH_ZONE}` } },
    { name: `ns1.${BENCH_ZONE}`, type: 'A', ttl: 3600, data: { address: '127.0.0.1' } },
    {
      name: BENCH_ZONE,
      type: 'MX',
      ttl: 300,
      data: { preference: 10, exchange: `mail.${BENCH_ZONE}` },
    },
    { name: `mail.${BENCH_ZONE}`, type: 'A', ttl: 300, data: { address: '127.0.0.3' } },
    {
      name: BENCH_ZONE,
      type: 'CAA',
      ttl: 300,
      data: { flags: 0, tag: 'issue', value: 'hypermesh' },
    },
    { name: BENCH_ZONE, type: 'TXT', ttl: 300, data: { strings: ['v=hypermesh bench zone'] } },
  ];
  for (let i = 0; i < hosts; i++) {
    const host = `host-${i}.${BENCH_ZONE}`;
    const a = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    records.push({ name: host, type: 'A', ttl: 300, data: { address: a } });
    records.push({
      name: host,
      type: 'AAAA',
      ttl: 300,
      data: { address: `fd00::${i.toString(16)}` },
    });
    records.push({
      name: `_api._stoq.${BENCH_ZONE}`,
      type: 'SRV',
      ttl: 60,
      data: { priority: 0, weight: (i % 10) + 1, port: 9292, target: host },
    });
  }
  return records;
}

/** A character-string in presentation form (RFC 1035 §5.1): quoted, `"` and `\` escaped. */
function quoted(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** RDATA in presentation form, for the record types `benchZone` uses. */
function presentation(record: RecordInput): string {
  const d = record.data as Record<string, unknown>;
  switch (record.type) {
    case 'SOA':
      return `${d.mname} ${d.rname} ${d.serial} ${d.refresh} ${d.retry} ${d.expire} ${d.minimum}`;
    case 'NS':
      return String(d.host);
    case 'A':
    case 'AAAA':
      return String(d.address);
    case 'MX':
      return `${d.preference} ${d.exchange}`;
    case 'CAA':
      return `${d.flags} ${d.tag} ${quoted(String(d.value))}`;
    case 'TXT':
      return (d.strings as string[]).map(quoted).join(' ');
    case 'SRV':
      return `${d.priority} ${d.weight} ${d.port} ${d.target}`;
    default:
      throw new Error(`the benchmark zone has no ${record.type} records`);
  }
}

/** The zone as a master file (RFC 1035 §5), for Knot. */
export function zoneFile(records: readonly RecordInput[]): string {
  return records.map((r) => `${r.name} ${r.ttl} IN ${r.type} ${presentation(r)}\n`).join('');
}

/**
 * The query mix, in dnsperf's input format (`name type` per line): mostly positive A/AAAA
 * answers, some NXDOMAIN and NODATA (negative answers carry the SOA), and MX (additional
 * section). The SRV set has one record per host, so it is not queried.
 */
export function queryFile(hosts: number, lines: number): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const host = `host-${(i * 7919) % hosts}.${BENCH_ZONE}`;
    switch (i % 10) {
      case 0:
        out.push(`missing-${i}.${BENCH_ZONE} A`);
        break;
      case 1:
        out.push(`${host} TXT`);
        break;
      case 2:
        out.push(`${BENCH_ZONE} MX`);
        break;
      case 3:
      case 4:
      case 5:
        out.push(`${host} AAAA`);
        break;
      default:
        out.push(`${host} A`);
    }
  }
  return `${out.join('\n')}\n`;
}
