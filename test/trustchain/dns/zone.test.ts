import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DnsError,
  DnsErrorCode,
  MemoryZone,
  ZoneSet,
  nameKey,
} from '../../../src/trustchain/dns/index.js';
import type { RecordInput, ResourceRecord } from '../../../src/trustchain/dns/index.js';
import { OTHER_INPUT, ZONE_INPUT, records } from './fixture.js';

const SOA: RecordInput = {
  name: 'z.test.',
  type: 'SOA',
  ttl: 60,
  data: {
    mname: 'ns.z.test.',
    rname: 'h.z.test.',
    serial: 1,
    refresh: 1,
    retry: 1,
    expire: 1,
    minimum: 1,
  },
};
const NS: RecordInput = { name: 'z.test.', type: 'NS', ttl: 60, data: { host: 'ns.z.test.' } };

function refuses(inputs: readonly RecordInput[], code: DnsErrorCode, name?: string): void {
  assert.throws(
    () => MemoryZone.build('z.test.', records(inputs)),
    (error: unknown) => {
      assert.ok(error instanceof DnsError, String(error));
      assert.equal(error.code, code, error.message);
      if (name !== undefined) assert.equal(error.detail.name, name);
      return true;
    },
  );
}

const a = (name: string, address = '192.0.2.1', ttl = 60): RecordInput => ({
  name,
  type: 'A',
  ttl,
  data: { address },
});

describe('zone rules', () => {
  it('builds the fixture zones', () => {
    const zone = MemoryZone.build('hypermesh.', records(ZONE_INPUT));
    assert.equal(zone.apex, 'hypermesh.');
    assert.equal(zone.records.length, ZONE_INPUT.length);
    assert.ok(zone.hasDelegations);
    // Empty non-terminals exist as nodes without data.
    assert.equal(zone.node(nameKey('b.ent.hypermesh.'))?.ordered.length, 0);
    assert.equal(zone.node(nameKey('ent.hypermesh.'))?.ordered.length, 0);
    assert.equal(zone.node(nameKey('nothing.hypermesh.')), undefined);
    assert.equal(zone.negativeSoa.ttl, 300);
    MemoryZone.build('other.test.', records(OTHER_INPUT));
  });

  it('needs exactly one SOA, at the apex, and NS at the apex', () => {
    refuses([NS], DnsErrorCode.ZONE_NO_SOA, 'z.test.');
    refuses([SOA], DnsErrorCode.ZONE_NO_APEX_NS, 'z.test.');
    refuses(
      [SOA, NS, { ...SOA, name: 'sub.z.test.' }],
      DnsErrorCode.ZONE_SOA_NOT_AT_APEX,
      'sub.z.test.',
    );
    refuses(
      [SOA, NS, { ...SOA, data: { ...(SOA.data as object), serial: 2 } }],
      DnsErrorCode.ZONE_MULTIPLE_SOA,
    );
  });

  it('keeps every name inside the zone', () => {
    refuses([SOA, NS, a('www.other.test.')], DnsErrorCode.ZONE_OUT_OF_ZONE, 'www.other.test.');
    refuses([SOA, NS, a('xz.test.')], DnsErrorCode.ZONE_OUT_OF_ZONE);
  });

  it('a CNAME stands alone (RFC 2181 §10.1), also at the apex', () => {
    const cname = (name: string, target: string): RecordInput => ({
      name,
      type: 'CNAME',
      ttl: 60,
      data: { target },
    });
    refuses(
      [SOA, NS, cname('c.z.test.', 'x.'), a('c.z.test.')],
      DnsErrorCode.ZONE_CNAME_CONFLICT,
      'c.z.test.',
    );
    refuses(
      [SOA, NS, cname('c.z.test.', 'x.'), cname('c.z.test.', 'y.')],
      DnsErrorCode.ZONE_CNAME_CONFLICT,
    );
    refuses([SOA, NS, cname('z.test.', 'x.')], DnsErrorCode.ZONE_CNAME_CONFLICT, 'z.test.');
    MemoryZone.build('z.test.', records([SOA, NS, cname('c.z.test.', 'x.')]));
  });

  it('an RRset has one TTL and no duplicates', () => {
    refuses(
      [SOA, NS, a('w.z.test.', '192.0.2.1', 60), a('w.z.test.', '192.0.2.2', 61)],
      DnsErrorCode.ZONE_TTL_MISMATCH,
    );
    refuses(
      [SOA, NS, a('w.z.test.'), a('W.z.test.')],
      DnsErrorCode.ZONE_DUPLICATE_RECORD,
      'w.z.test.',
    );
  });

  it('below a delegation only glue; DS only at a delegation', () => {
    const cut: RecordInput = {
      name: 'd.z.test.',
      type: 'NS',
      ttl: 60,
      data: { host: 'ns.d.z.test.' },
    };
    MemoryZone.build('z.test.', records([SOA, NS, cut, a('ns.d.z.test.')]));
    refuses(
      [SOA, NS, cut, { name: 'x.d.z.test.', type: 'TXT', ttl: 60, data: { strings: ['hidden'] } }],
      DnsErrorCode.ZONE_OCCLUDED_DATA,
      'x.d.z.test.',
    );
    refuses(
      [
        SOA,
        NS,
        cut,
        { name: 'd.z.test.', type: 'MX', ttl: 60, data: { preference: 1, exchange: 'm.' } },
      ],
      DnsErrorCode.ZONE_OCCLUDED_DATA,
    );
    const ds: RecordInput = {
      name: 'w.z.test.',
      type: 'DS',
      ttl: 60,
      data: { keyTag: 1, algorithm: 13, digestType: 2, digest: '00' },
    };
    refuses([SOA, NS, ds], DnsErrorCode.ZONE_DS_NOT_AT_DELEGATION, 'w.z.test.');
    MemoryZone.build('z.test.', records([SOA, NS, cut, { ...ds, name: 'd.z.test.' }]));
  });

  it('refuses NS and DS at a wildcard owner (RFC 4592 §4.2)', () => {
    const wildNs: RecordInput = { ...NS, name: '*.a.z.test.', data: { host: 'ns.example.' } };
    const wildDs: RecordInput = {
      name: '*.a.z.test.',
      type: 'DS',
      ttl: 60,
      data: { keyTag: 1, algorithm: 13, digestType: 2, digest: '00' },
    };
    refuses([SOA, NS, wildNs], DnsErrorCode.RECORD_INVALID, '*.a.z.test.');
    refuses([SOA, NS, wildNs, wildDs], DnsErrorCode.RECORD_INVALID, '*.a.z.test.');
    refuses([SOA, NS, wildDs], DnsErrorCode.RECORD_INVALID, '*.a.z.test.');
    // Other data at a wildcard, and NS at a name merely containing `*` later, still build.
    MemoryZone.build('z.test.', records([SOA, NS, a('*.a.z.test.')]));
    MemoryZone.build('z.test.', records([SOA, NS, { ...wildNs, name: 'b.*.a.z.test.' }]));
  });

  it('holds class IN only, TTLs up to 2^31-1', () => {
    const [soa, ns] = records([SOA, NS]) as [ResourceRecord, ResourceRecord];
    assert.throws(
      () => MemoryZone.build('z.test.', [soa, ns, { ...ns, class: 3 }]),
      (e: DnsError) => e.code === DnsErrorCode.RECORD_INVALID,
    );
    assert.throws(() => MemoryZone.build('z.test.', [{ ...soa, ttl: 2 ** 31 }, ns]), /TTL/);
  });

  it('a zone set finds the closest enclosing zone and refuses two zones with one apex', () => {
    const parent = MemoryZone.build('z.test.', records([SOA, NS]));
    const child = MemoryZone.build(
      'c.z.test.',
      records([
        { ...SOA, name: 'c.z.test.' },
        { ...NS, name: 'c.z.test.' },
      ]),
    );
    const set = new ZoneSet([parent, child]);
    assert.equal(set.findZone(nameKey('www.c.z.test.')), child);
    assert.equal(set.findZone(nameKey('c.z.test.')), child);
    assert.equal(set.findZone(nameKey('c.z.test.'), true), parent);
    assert.equal(set.findZone(nameKey('x.z.test.')), parent);
    assert.equal(set.findZone(nameKey('test.')), undefined);
    assert.equal(set.findZone(nameKey('.')), undefined);
    assert.throws(
      () => new ZoneSet([parent, parent]),
      (e: DnsError) => e.code === DnsErrorCode.ZONE_DUPLICATE_APEX,
    );
    set.delete('c.z.test.');
    assert.equal(set.findZone(nameKey('www.c.z.test.')), parent);
    set.set(child);
    assert.equal(set.get('C.Z.TEST'), child);
  });
});
