import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeCanonical } from '../../../src/codec/cbor.js';
import { nameToWire, parseRecord, rdataBytes } from '../../../src/trustchain/dns/index.js';
import type { RecordInput } from '../../../src/trustchain/dns/index.js';
import {
  DnsZonesError,
  DnsZonesErrorCode,
  MAX_DNS_BODY_BYTES,
  decodeDnsZonesBody,
  dnsNameRegister,
  dnsNameRelease,
  dnsNameTransfer,
  dnsRecordsDelete,
  dnsRecordsSet,
  dnsZoneCreate,
  dnsZoneUpdate,
} from '../../../src/trustchain/dns-zones/index.js';
import { zoneParams } from './dns-zones-fixture.js';

const C = DnsZonesErrorCode;
const KEY_A = new Uint8Array(32).fill(1);
const KEY_B = new Uint8Array(32).fill(2);

function refused(run: () => unknown, code: DnsZonesErrorCode, field?: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof DnsZonesError, `expected DnsZonesError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (field !== undefined) assert.equal(error.detail['field'], field, error.message);
    return true;
  });
}

const decodeMap = (value: unknown) => () => decodeDnsZonesBody(encodeCanonical(value));

const rdataOf = (input: RecordInput): Uint8Array => rdataBytes(parseRecord(input));
const a = (address: string, name = 'www.hypermesh.'): RecordInput => ({
  name,
  type: 'A',
  ttl: 300,
  data: { address },
});

describe('dns body: builders and round trips', () => {
  it('name ops canonicalize the name and decode back', () => {
    assert.deepEqual(decodeDnsZonesBody(dnsNameRegister('WWW.Hypermesh')), {
      op: 'name-register',
      name: 'www.hypermesh.',
    });
    assert.deepEqual(decodeDnsZonesBody(dnsNameRelease('www.hypermesh.')), {
      op: 'name-release',
      name: 'www.hypermesh.',
    });
    assert.deepEqual(decodeDnsZonesBody(dnsNameTransfer('www.hypermesh.', KEY_B)), {
      op: 'name-transfer',
      name: 'www.hypermesh.',
      recipient: KEY_B,
    });
    assert.deepEqual(decodeDnsZonesBody(dnsRecordsDelete('www.hypermesh.', 'AAAA')), {
      op: 'records-delete',
      name: 'www.hypermesh.',
      type: 28,
    });
  });

  it('zone ops sort admins and hosts', () => {
    const body = dnsZoneCreate(
      zoneParams('Corp.Example', [KEY_B, KEY_A], {
        nameservers: { ttl: 60, hosts: ['ns2.corp.example.', 'NS1.corp.example'] },
      }),
    );
    const tx = decodeDnsZonesBody(body);
    assert.equal(tx.op, 'zone-create');
    if (tx.op !== 'zone-create') return;
    assert.equal(tx.apex, 'corp.example.');
    assert.deepEqual(tx.admins, [KEY_A, KEY_B]);
    assert.deepEqual(tx.nameservers.hosts, ['ns1.corp.example.', 'ns2.corp.example.']);
    assert.equal(
      decodeDnsZonesBody(dnsZoneUpdate(zoneParams('corp.example.', [KEY_A]))).op,
      'zone-update',
    );
  });

  it('records-set carries canonical RDATA in canonical order', () => {
    const body = dnsRecordsSet([a('192.0.2.2'), a('192.0.2.1')]);
    const tx = decodeDnsZonesBody(body);
    assert.deepEqual(tx, {
      op: 'records-set',
      name: 'www.hypermesh.',
      type: 1,
      ttl: 300,
      rdata: [Uint8Array.of(192, 0, 2, 1), Uint8Array.of(192, 0, 2, 2)],
    });
    const https = dnsRecordsSet([
      {
        name: 'www.hypermesh.',
        type: 'HTTPS',
        ttl: 60,
        data: { priority: 1, target: '.', params: { alpn: ['h3', 'h2'], port: 443 } },
      },
    ]);
    assert.equal(decodeDnsZonesBody(https).op, 'records-set');
  });
});

describe('dns body: refusals with codes', () => {
  it('form', () => {
    refused(() => decodeDnsZonesBody(Uint8Array.of(0xff)), C.MALFORMED_BODY);
    refused(decodeMap([1, 2]), C.MALFORMED_BODY);
    refused(decodeMap({}), C.MALFORMED_BODY);
    refused(decodeMap({ name: 'a.hypermesh.' }), C.MALFORMED_BODY, 'op');
    refused(decodeMap({ op: 'name-steal', name: 'a.hypermesh.' }), C.MALFORMED_BODY, 'op');
    refused(decodeMap({ op: 'name-register' }), C.MALFORMED_BODY, 'name');
    for (const inherited of ['toString', '__proto__', 'constructor']) {
      refused(
        decodeMap({ op: 'name-register', name: 'a.hypermesh.', [inherited]: 1 }),
        C.UNKNOWN_FIELD,
        inherited,
      );
    }
    refused(
      decodeMap({ op: 'name-register', name: 'a.hypermesh.', extra: 1 }),
      C.UNKNOWN_FIELD,
      'extra',
    );
    refused(
      () => decodeDnsZonesBody(new Uint8Array([...dnsNameRegister('a.hypermesh.'), 0])),
      C.MALFORMED_BODY,
    );
    // Keys out of canonical order: not the one encoding.
    const swapped = Uint8Array.from([
      0xa2,
      0x64,
      ...Buffer.from('name'),
      0x6c,
      ...Buffer.from('a.hypermesh.'),
      0x62,
      ...Buffer.from('op'),
      0x6d,
      ...Buffer.from('name-register'),
    ]);
    refused(() => decodeDnsZonesBody(swapped), C.MALFORMED_BODY);
    refused(() => decodeDnsZonesBody(new Uint8Array(MAX_DNS_BODY_BYTES + 1)), C.BODY_TOO_LARGE);
    refused(
      decodeMap({ op: 'name-transfer', name: 'a.hypermesh.', recipient: new Uint8Array(31) }),
      C.MALFORMED_BODY,
      'recipient',
    );
  });

  it('names', () => {
    refused(decodeMap({ op: 'name-register', name: 'A.hypermesh.' }), C.INVALID_NAME, 'name');
    refused(decodeMap({ op: 'name-register', name: 'a.hypermesh' }), C.INVALID_NAME, 'name');
    refused(
      decodeMap({ op: 'name-register', name: `${'x'.repeat(64)}.hypermesh.` }),
      C.INVALID_NAME,
    );
    refused(decodeMap({ op: 'name-register', name: '.' }), C.INVALID_NAME);
    refused(decodeMap({ op: 'name-register', name: 7 }), C.INVALID_NAME, 'name');
    refused(() => dnsNameRegister('a..b'), C.INVALID_NAME);
  });

  it('zone parameters', () => {
    refused(() => dnsZoneCreate(zoneParams('corp.example.', [])), C.INVALID_ZONE, 'admins');
    refused(
      () => dnsZoneCreate(zoneParams('corp.example.', [KEY_A, KEY_A])),
      C.INVALID_ZONE,
      'admins',
    );
    refused(
      () => dnsZoneCreate(zoneParams('corp.example.', [new Uint8Array(31)])),
      C.INVALID_ZONE,
      'admins[0]',
    );
    refused(() => dnsZoneCreate(zoneParams('*.example.', [KEY_A])), C.INVALID_NAME, 'apex');
    refused(() => dnsZoneCreate(zoneParams('.', [KEY_A])), C.INVALID_NAME);
    refused(
      () => dnsZoneCreate(zoneParams('corp.example.', [KEY_A], { policy: 'closed' as never })),
      C.INVALID_ZONE,
      'policy',
    );
    const soa = zoneParams('corp.example.', [KEY_A]).soa;
    refused(
      () => dnsZoneCreate(zoneParams('corp.example.', [KEY_A], { soa: { ...soa, ttl: 2 ** 31 } })),
      C.INVALID_ZONE,
      'soa.ttl',
    );
    refused(
      () => dnsZoneCreate(zoneParams('corp.example.', [KEY_A], { soa: { ...soa, retry: -1 } })),
      C.INVALID_ZONE,
      'soa.retry',
    );
    refused(
      () =>
        dnsZoneCreate(zoneParams('corp.example.', [KEY_A], { nameservers: { ttl: 1, hosts: [] } })),
      C.INVALID_ZONE,
      'nameservers.hosts',
    );
    refused(
      () =>
        dnsZoneCreate(
          zoneParams('corp.example.', [KEY_A], {
            nameservers: { ttl: 1, hosts: ['ns.x.', 'NS.x.'] },
          }),
        ),
      C.INVALID_ZONE,
      'nameservers.hosts',
    );
    const hosts = Array.from({ length: 14 }, (_, i) => `ns${i}.x.`);
    refused(
      () => dnsZoneCreate(zoneParams('corp.example.', [KEY_A], { nameservers: { ttl: 1, hosts } })),
      C.INVALID_ZONE,
    );
    const raw = {
      op: 'zone-create',
      soa: { ...soa, extra: 1 },
      apex: 'corp.example.',
      admins: [KEY_A],
      policy: 'open',
      nameservers: { ttl: 1, hosts: ['ns.x.'] },
    };
    refused(decodeMap(raw), C.UNKNOWN_FIELD, 'soa.extra');
    refused(decodeMap({ ...raw, soa, admins: [KEY_B, KEY_A] }), C.INVALID_ZONE, 'admins');
  });

  it('record types', () => {
    const set = (type: number, rdata: Uint8Array[] = [Uint8Array.of(1, 2, 3, 4)], ttl = 60) =>
      decodeMap({ op: 'records-set', ttl, name: 'www.hypermesh.', type, rdata });
    refused(set(0), C.INVALID_RECORD, 'type');
    refused(set(41), C.INVALID_RECORD, 'type');
    refused(set(255), C.INVALID_RECORD, 'type');
    refused(set(65536), C.INVALID_RECORD, 'type');
    for (const managed of [6, 39, 46, 47, 48, 50, 51])
      refused(set(managed), C.MANAGED_TYPE, 'type');
    refused(() => dnsRecordsDelete('www.hypermesh.', 'SOA'), C.MANAGED_TYPE);
    refused(() => dnsRecordsDelete('www.hypermesh.', 'BOGUS'), C.INVALID_RECORD);
    refused(set(1, [], 60), C.INVALID_RECORD, 'rdata');
    refused(set(1, undefined, 2 ** 31), C.INVALID_RECORD, 'ttl');
  });

  it('record data', () => {
    const set = (type: number, rdata: Uint8Array[]) =>
      decodeMap({ op: 'records-set', ttl: 60, name: 'www.hypermesh.', type, rdata });
    refused(set(1, [Uint8Array.of(1, 2, 3)]), C.INVALID_RECORD, 'rdata[0]');
    const upper = new Uint8Array(nameToWire('Target.Hypermesh.'));
    refused(set(5, [upper]), C.INVALID_RECORD, 'rdata[0]');
    // A compression pointer in RDATA: decodable, but not the canonical form.
    refused(set(5, [Uint8Array.of(1, 0x61, 0xc0, 0x00)]), C.INVALID_RECORD);
    refused(set(16, [Uint8Array.of(2, 0xff, 0xfe)]), C.INVALID_RECORD, 'rdata[0]');
    // SVCB AliasMode (priority 0) with a parameter (RFC 9460 §2.4.2), written by hand.
    refused(
      set(64, [Uint8Array.of(0, 0, 0, 0, 3, 0, 2, 0x01, 0xbb)]),
      C.INVALID_RECORD,
      'rdata[0]',
    );
    const one = rdataOf(a('192.0.2.1'));
    refused(set(1, [one, one]), C.DUPLICATE_RECORD);
    refused(set(1, [rdataOf(a('192.0.2.2')), one]), C.INVALID_RECORD, 'rdata');
    const cname = (target: string) =>
      rdataOf({ name: 'www.hypermesh.', type: 'CNAME', ttl: 60, data: { target } });
    refused(
      () =>
        decodeDnsZonesBody(
          dnsRecordsSet([
            { name: 'www.hypermesh.', type: 'CNAME', ttl: 60, data: { target: 'a.hypermesh.' } },
            { name: 'www.hypermesh.', type: 'CNAME', ttl: 60, data: { target: 'b.hypermesh.' } },
          ]),
        ),
      C.CNAME_CONFLICT,
    );
    assert.ok(cname('a.hypermesh.').length > 0);
    const many = Array.from({ length: 33 }, (_, i) => Uint8Array.of(10, 0, 0, i));
    refused(set(1, many), C.RECORDS_LIMIT);
    const big = Array.from({ length: 17 }, (_, i) => {
      const txt = new Uint8Array(256).fill(0x61);
      txt[0] = 255;
      txt[1] = 0x41 + i;
      return txt;
    });
    refused(set(16, big), C.RRSET_TOO_LARGE);
  });

  it('builder refusals', () => {
    refused(() => dnsRecordsSet([]), C.INVALID_RECORD);
    refused(
      () => dnsRecordsSet([a('192.0.2.1'), { ...a('192.0.2.2'), ttl: 1 }]),
      C.INVALID_RECORD,
      'records[1].ttl',
    );
    refused(
      () => dnsRecordsSet([a('192.0.2.1'), a('192.0.2.2', 'other.hypermesh.')]),
      C.INVALID_RECORD,
    );
    refused(() => dnsRecordsSet([a('300.0.2.1')]), C.INVALID_RECORD, 'records[0]');
    refused(() => dnsNameTransfer('a.hypermesh.', new Uint8Array(5)), C.MALFORMED_BODY);
  });
});

describe('dns body: untrusted bytes', () => {
  const valid = [
    dnsNameRegister('www.hypermesh.'),
    dnsNameTransfer('www.hypermesh.', KEY_A),
    dnsRecordsSet([a('192.0.2.1'), a('192.0.2.7')]),
    dnsRecordsSet([
      {
        name: 'm.hypermesh.',
        type: 'MX',
        ttl: 5,
        data: { preference: 10, exchange: 'mx.hypermesh.' },
      },
    ]),
    dnsRecordsDelete('www.hypermesh.', 'A'),
    dnsZoneCreate(zoneParams('corp.example.', [KEY_A, KEY_B])),
  ];

  it('garbage and mutations give a DnsZonesError or a body with the same single encoding', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc
            .tuple(
              fc.constantFrom(...valid),
              fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
                minLength: 1,
                maxLength: 4,
              }),
            )
            .map(([body, edits]) => {
              const copy = Uint8Array.from(body);
              for (const [at, value] of edits) copy[at % copy.length] = value;
              return copy;
            }),
        ),
        (bytes) => {
          let tx;
          try {
            tx = decodeDnsZonesBody(bytes);
          } catch (error) {
            assert.ok(error instanceof DnsZonesError, `unexpected ${String(error)}`);
            return;
          }
          // Whatever decodes is canonical: the same op re-encoded gives the same bytes.
          assert.deepEqual(encodeCanonical(tx), bytes);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
