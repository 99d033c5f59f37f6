import {
  MemoryZone,
  ZoneSet,
  answer,
  decodeMessage,
  encodeMessage,
  parseRecord,
} from '../../../src/trustchain/dns/index.js';
import type {
  AnswerOptions,
  DnsMessage,
  Edns,
  RecordInput,
  ResourceRecord,
} from '../../../src/trustchain/dns/index.js';

/** The zone most answer tests use (docs/dns.md describes the behaviour it exercises). */
export const ZONE_INPUT: RecordInput[] = [
  {
    name: 'hypermesh.',
    type: 'SOA',
    ttl: 3600,
    data: {
      mname: 'ns1.hypermesh.',
      rname: 'hostmaster.hypermesh.',
      serial: 2024010101,
      refresh: 3600,
      retry: 600,
      expire: 604800,
      minimum: 300,
    },
  },
  { name: 'hypermesh.', type: 'NS', ttl: 3600, data: { host: 'ns1.hypermesh.' } },
  { name: 'hypermesh.', type: 'NS', ttl: 3600, data: { host: 'ns2.hypermesh.' } },
  {
    name: 'hypermesh.',
    type: 'MX',
    ttl: 600,
    data: { preference: 10, exchange: 'mail.hypermesh.' },
  },
  { name: 'ns1.hypermesh.', type: 'A', ttl: 3600, data: { address: '192.0.2.53' } },
  { name: 'ns2.hypermesh.', type: 'AAAA', ttl: 3600, data: { address: '2001:db8::53' } },
  { name: 'mail.hypermesh.', type: 'A', ttl: 600, data: { address: '192.0.2.25' } },
  { name: 'www.hypermesh.', type: 'A', ttl: 300, data: { address: '192.0.2.1' } },
  { name: 'www.hypermesh.', type: 'AAAA', ttl: 300, data: { address: '2001:db8::1' } },
  { name: 'alias.hypermesh.', type: 'CNAME', ttl: 300, data: { target: 'www.hypermesh.' } },
  { name: 'dangling.hypermesh.', type: 'CNAME', ttl: 300, data: { target: 'gone.hypermesh.' } },
  { name: 'outside.hypermesh.', type: 'CNAME', ttl: 300, data: { target: 'www.example.org.' } },
  { name: 'loop1.hypermesh.', type: 'CNAME', ttl: 300, data: { target: 'loop2.hypermesh.' } },
  { name: 'loop2.hypermesh.', type: 'CNAME', ttl: 300, data: { target: 'loop1.hypermesh.' } },
  { name: 'to-other.hypermesh.', type: 'CNAME', ttl: 300, data: { target: 'www.other.test.' } },
  { name: '*.wild.hypermesh.', type: 'TXT', ttl: 120, data: { strings: ['wildcard'] } },
  { name: '*.wild.hypermesh.', type: 'A', ttl: 120, data: { address: '192.0.2.80' } },
  { name: 'near.wild.hypermesh.', type: 'A', ttl: 120, data: { address: '192.0.2.81' } },
  { name: 'deep.ent.wild.hypermesh.', type: 'A', ttl: 120, data: { address: '192.0.2.82' } },
  { name: '*.cn.hypermesh.', type: 'CNAME', ttl: 120, data: { target: 'www.hypermesh.' } },
  {
    name: 'a.b.ent.hypermesh.',
    type: 'TXT',
    ttl: 60,
    data: { strings: ['below an empty non-terminal'] },
  },
  {
    name: '_stoq._udp.hypermesh.',
    type: 'SRV',
    ttl: 60,
    data: { priority: 1, weight: 5, port: 9292, target: 'node1.hypermesh.' },
  },
  { name: 'node1.hypermesh.', type: 'AAAA', ttl: 60, data: { address: '2001:db8::9292' } },
  { name: 'sub.hypermesh.', type: 'NS', ttl: 86400, data: { host: 'ns.sub.hypermesh.' } },
  { name: 'sub.hypermesh.', type: 'NS', ttl: 86400, data: { host: 'ns.elsewhere.test.' } },
  {
    name: 'sub.hypermesh.',
    type: 'DS',
    ttl: 86400,
    data: { keyTag: 12345, algorithm: 13, digestType: 2, digest: 'ab'.repeat(32) },
  },
  { name: 'ns.sub.hypermesh.', type: 'A', ttl: 86400, data: { address: '192.0.2.100' } },
];

export const OTHER_INPUT: RecordInput[] = [
  {
    name: 'other.test.',
    type: 'SOA',
    ttl: 900,
    data: {
      mname: 'ns.other.test.',
      rname: 'admin.other.test.',
      serial: 7,
      refresh: 1,
      retry: 1,
      expire: 1,
      minimum: 60,
    },
  },
  { name: 'other.test.', type: 'NS', ttl: 900, data: { host: 'ns.other.test.' } },
  { name: 'www.other.test.', type: 'A', ttl: 900, data: { address: '198.51.100.7' } },
];

export function records(inputs: readonly RecordInput[]): ResourceRecord[] {
  return inputs.map((input, i) => parseRecord(input, `records[${i}]`));
}

export function zoneSet(): ZoneSet {
  return new ZoneSet([
    MemoryZone.build('hypermesh.', records(ZONE_INPUT)),
    MemoryZone.build('other.test.', records(OTHER_INPUT)),
  ]);
}

export const EDNS: Edns = { udpPayloadSize: 1232, version: 0, dnssecOk: false, options: [] };

export interface QueryOptions {
  readonly id?: number;
  readonly edns?: Edns | false;
  readonly cls?: number;
  readonly opcode?: number;
}

export function query(name: string, type: number, options: QueryOptions = {}): Uint8Array {
  const edns = options.edns === undefined ? EDNS : options.edns;
  return encodeMessage({
    id: options.id ?? 0x4242,
    opcode: options.opcode ?? 0,
    recursionDesired: true,
    questions: [{ name, type, class: options.cls ?? 1 }],
    ...(edns === false ? {} : { edns }),
  });
}

/** Runs `answer` and decodes the response (which must decode). */
export function ask(
  zones: ZoneSet,
  bytes: Uint8Array,
  options: AnswerOptions = { transport: 'udp' },
): DnsMessage {
  const response = answer(bytes, zones, options);
  if (response === null) throw new Error('query dropped');
  return decodeMessage(response);
}

/** `name type data` lines of a section, for compact assertions. */
export function lines(section: readonly ResourceRecord[]): string[] {
  return section.map(
    (rr) =>
      `${rr.name} ${rr.ttl} ${rr.type} ${JSON.stringify(rr.data, (_, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v))}`,
  );
}
