import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SchemaError } from '../../../src/codec/schema.js';
import {
  DnsErrorCode,
  canonicalRRset,
  decodeMessage,
  encodeMessage,
  encodeRecordCanonical,
  parseRecord,
  rdataBytes,
  recordToInput,
} from '../../../src/trustchain/dns/index.js';
import type { RecordInput, ResourceRecord } from '../../../src/trustchain/dns/index.js';
import { recordArb } from './arbitraries.js';

const hex = (text: string): Uint8Array =>
  Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));

/** One record of every type, in JSON form. */
const EVERY_TYPE: RecordInput[] = [
  { name: 'h.test.', type: 'A', ttl: 1, data: { address: '192.0.2.1' } },
  { name: 'h.test.', type: 'AAAA', ttl: 1, data: { address: '2001:db8::1' } },
  { name: 'h.test.', type: 'NS', ttl: 1, data: { host: 'ns.h.test.' } },
  { name: 'c.test.', type: 'CNAME', ttl: 1, data: { target: 'h.test.' } },
  {
    name: 'test.',
    type: 'SOA',
    ttl: 1,
    data: {
      mname: 'ns.test.',
      rname: 'hostmaster.test.',
      serial: 4294967295,
      refresh: 1,
      retry: 2,
      expire: 3,
      minimum: 4,
    },
  },
  { name: 'h.test.', type: 'MX', ttl: 1, data: { preference: 10, exchange: 'mx.h.test.' } },
  { name: 'h.test.', type: 'TXT', ttl: 1, data: { strings: ['v=spf1 -all', '', 'ünïcödé'] } },
  {
    name: '_x._tcp.h.test.',
    type: 'SRV',
    ttl: 1,
    data: { priority: 1, weight: 2, port: 443, target: 'h.test.' },
  },
  {
    name: 'h.test.',
    type: 'CAA',
    ttl: 1,
    data: { flags: 128, tag: 'issue', value: 'ca.example.net; account=1' },
  },
  {
    name: '_443._tcp.h.test.',
    type: 'TLSA',
    ttl: 1,
    data: { usage: 3, selector: 1, matchingType: 1, data: 'ab'.repeat(32) },
  },
  {
    name: 'h.test.',
    type: 'HTTPS',
    ttl: 1,
    data: {
      priority: 1,
      target: '.',
      params: {
        mandatory: ['port', 'alpn'],
        alpn: ['h3', 'h2'],
        'no-default-alpn': true,
        port: 8443,
        ipv4hint: ['192.0.2.1', '192.0.2.2'],
        ech: Buffer.from('ech config').toString('base64'),
        ipv6hint: ['2001:db8::1'],
        key65000: 'cafe',
      },
    },
  },
  { name: '_dns.h.test.', type: 'SVCB', ttl: 1, data: { priority: 0, target: 'svc.h.test.' } },
  {
    name: 'h.test.',
    type: 'DNSKEY',
    ttl: 1,
    data: {
      flags: 257,
      protocol: 3,
      algorithm: 13,
      publicKey: Buffer.alloc(64, 7).toString('base64'),
    },
  },
  {
    name: 'h.test.',
    type: 'RRSIG',
    ttl: 1,
    data: {
      typeCovered: 'AAAA',
      algorithm: 13,
      labels: 2,
      originalTtl: 300,
      expiration: 1893456000,
      inception: 1700000000,
      keyTag: 4242,
      signerName: 'h.test.',
      signature: Buffer.alloc(64, 9).toString('base64'),
    },
  },
  {
    name: 'h.test.',
    type: 'NSEC',
    ttl: 1,
    data: { next: 'i.test.', types: ['RRSIG', 'A', 'NSEC', 'CAA', 'TYPE1234'] },
  },
  {
    name: 'h.test.',
    type: 'DS',
    ttl: 1,
    data: { keyTag: 4242, algorithm: 13, digestType: 2, digest: 'cd'.repeat(32) },
  },
  { name: 'h.test.', type: 'TYPE65280', ttl: 1, data: { rdata: '00ff10' } },
];

function roundTrip(rrs: readonly ResourceRecord[], compress: boolean): ResourceRecord[] {
  const bytes = encodeMessage({ id: 1, response: true, answers: rrs }, { compress });
  return [...decodeMessage(bytes).answers];
}

function schemaFails(input: unknown, path: string, message: RegExp): void {
  assert.throws(
    () => parseRecord(input),
    (error: unknown) => {
      assert.ok(error instanceof SchemaError, `expected SchemaError, got ${String(error)}`);
      const issue = error.issues.find((i) => i.path === path);
      assert.ok(issue, `no issue at ${path}: ${error.message}`);
      assert.match(issue.message, message);
      return true;
    },
  );
}

describe('records: wire round trips', () => {
  const rrs = EVERY_TYPE.map((input) => parseRecord(input));

  it('every type encodes and decodes to the same record, compressed or not', () => {
    assert.deepEqual(roundTrip(rrs, true), rrs);
    assert.deepEqual(roundTrip(rrs, false), rrs);
  });

  it('compression makes the message smaller and stays decodable', () => {
    const plain = encodeMessage({ id: 1, answers: rrs }, { compress: false });
    const packed = encodeMessage({ id: 1, answers: rrs });
    assert.ok(packed.length < plain.length, `${packed.length} < ${plain.length}`);
  });

  it('random records of every type round-trip exactly', () => {
    fc.assert(
      fc.property(
        fc.array(recordArb, { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        (list, compress) => {
          assert.deepEqual(roundTrip(list, compress), list);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('JSON form round-trips: recordToInput inverts parseRecord', () => {
    for (const rr of rrs) assert.deepEqual(parseRecord(recordToInput(rr)), rr);
  });
});

describe('records: RDATA golden vectors', () => {
  it('RFC 9460 Appendix D.2 ServiceMode examples', () => {
    const svcb = (data: unknown): Uint8Array =>
      rdataBytes(parseRecord({ name: 'example.com.', type: 'SVCB', ttl: 1, data }));
    assert.deepEqual(
      svcb({ priority: 16, target: 'foo.example.com.', params: { port: 53 } }),
      hex('0010 03666f6f076578616d706c6503636f6d00 0003 0002 0035'),
    );
    assert.deepEqual(
      svcb({
        priority: 1,
        target: 'foo.example.com.',
        params: { key667: Buffer.from('hello').toString('hex') },
      }),
      hex('0001 03666f6f076578616d706c6503636f6d00 029b 0005 68656c6c6f'),
    );
    assert.deepEqual(
      svcb({
        priority: 16,
        target: 'foo.example.org.',
        params: { alpn: ['h2', 'h3-19'], mandatory: ['ipv4hint', 'alpn'], ipv4hint: ['192.0.2.1'] },
      }),
      hex(`0010 03666f6f076578616d706c65036f726700
           0000 0004 0001 0004
           0001 0009 02 6832 05 68332d3139
           0004 0004 c0000201`),
    );
  });

  it('CAA (RFC 8659 §4.1), SOA, SRV, TXT by hand', () => {
    const one = (input: RecordInput): Uint8Array => rdataBytes(parseRecord(input));
    assert.deepEqual(
      one({
        name: 'x.',
        type: 'CAA',
        ttl: 1,
        data: { flags: 0, tag: 'issue', value: 'ca.example.net' },
      }),
      hex(`00 05 6973737565 ${Buffer.from('ca.example.net').toString('hex')}`),
    );
    assert.deepEqual(
      one({
        name: 'x.',
        type: 'SRV',
        ttl: 1,
        data: { priority: 0, weight: 5, port: 5060, target: 'sip.x.' },
      }),
      hex('0000 0005 13c4 03736970 0178 00'),
    );
    assert.deepEqual(
      one({ name: 'x.', type: 'TXT', ttl: 1, data: { strings: ['ab', ''] } }),
      hex('02 6162 00'),
    );
    assert.deepEqual(
      one({
        name: 'x.',
        type: 'SOA',
        ttl: 1,
        data: { mname: 'a.', rname: 'b.', serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 5 },
      }),
      hex('0161 00 0162 00 00000001 00000002 00000003 00000004 00000005'),
    );
    assert.deepEqual(
      one({
        name: 'x.',
        type: 'NSEC',
        ttl: 1,
        data: { next: 'host.example.com.', types: ['A', 'MX', 'RRSIG', 'NSEC', 'TYPE1234'] },
      }),
      // RFC 4034 §4.3 example.
      hex(`04686f7374076578616d706c6503636f6d00
           0006 40 01 00 00 00 03
           041b ${'00'.repeat(26)} 20`),
    );
  });
});

describe('records: canonical form (RFC 4034 §6.2)', () => {
  it('lowercases the owner and the names in NS/SOA/MX/SRV RDATA but not in SVCB or NSEC', () => {
    const ns: ResourceRecord = {
      name: 'WWW.Test.',
      type: 'NS',
      class: 1,
      ttl: 300,
      data: { host: 'NS.Test.' },
    };
    assert.deepEqual(
      encodeRecordCanonical(ns, 60),
      hex('03777777 0474657374 00 0002 0001 0000003c 0009 026e73 0474657374 00'),
    );
    const https: ResourceRecord = {
      name: 'x.',
      type: 'HTTPS',
      class: 1,
      ttl: 1,
      data: { priority: 1, target: 'Svc.X.', params: {} },
    };
    assert.deepEqual(rdataBytes(https, true), hex('0001 03537663 0158 00'));
  });

  it('sorts an RRset by RDATA and drops duplicates', () => {
    const a = (address: string): ResourceRecord => ({
      name: 'x.',
      type: 'A',
      class: 1,
      ttl: 1,
      data: { address },
    });
    const sorted = canonicalRRset([a('10.0.0.2'), a('9.0.0.1'), a('10.0.0.2'), a('10.0.0.1')]);
    assert.deepEqual(
      sorted.map((rr) => (rr.type === 'A' ? rr.data.address : '')),
      ['9.0.0.1', '10.0.0.1', '10.0.0.2'],
    );
  });
});

describe('records: the JSON input schema', () => {
  const base = { name: 'h.test.', ttl: 60 };

  it('rejects an IPv4 address in AAAA and the reverse', () => {
    schemaFails(
      { ...base, type: 'AAAA', data: { address: '192.0.2.1' } },
      'record.data.address',
      /got an IPv4 address/,
    );
    schemaFails(
      { ...base, type: 'A', data: { address: '2001:db8::1' } },
      'record.data.address',
      /got an IPv6 address/,
    );
    schemaFails(
      { ...base, type: 'A', data: { address: '192.0.2.01' } },
      'record.data.address',
      /IPv4/,
    );
  });

  it('rejects an SRV port above 65535', () => {
    schemaFails(
      { ...base, type: 'SRV', data: { priority: 0, weight: 0, port: 65536, target: 'h.test.' } },
      'record.data.port',
      /at most 65535/,
    );
  });

  it('rejects a TXT string above 255 bytes (counting UTF-8 bytes)', () => {
    schemaFails(
      { ...base, type: 'TXT', data: { strings: ['ok', 'é'.repeat(128)] } },
      'record.data.strings[1]',
      /at most 255 bytes.*got 256/,
    );
    schemaFails(
      { ...base, type: 'TXT', data: { strings: [] } },
      'record.data.strings',
      /at least 1/,
    );
    parseRecord({ ...base, type: 'TXT', data: { strings: ['é'.repeat(127)] } });
  });

  it('rejects bad names, TTLs, classes, types and unknown fields', () => {
    schemaFails(
      { ...base, name: 'a..b', type: 'A', data: { address: '192.0.2.1' } },
      'record.name',
      /empty label/,
    );
    schemaFails(
      { ...base, type: 'NS', data: { host: `${'x'.repeat(64)}.test.` } },
      'record.data.host',
      /longer than 63/,
    );
    schemaFails(
      { ...base, ttl: 2 ** 31, type: 'A', data: { address: '192.0.2.1' } },
      'record.ttl',
      /at most 2147483647/,
    );
    schemaFails(
      { ...base, class: 'CH', type: 'A', data: { address: '192.0.2.1' } },
      'record.class',
      /"IN"/,
    );
    schemaFails({ ...base, type: 'SPF', data: {} }, 'record.type', /record type/);
    schemaFails({ ...base, type: 'OPT', data: {} }, 'record.type', /record type/);
    schemaFails(
      { ...base, type: 'TYPE1', data: { rdata: 'c0000201' } },
      'record.type',
      /write it as "A"/,
    );
    schemaFails(
      { ...base, type: 'A', data: { address: '192.0.2.1', extra: 1 } },
      'record.data',
      /unexpected key "extra"/,
    );
    schemaFails(
      { ...base, type: 'MX', data: { preference: -1, exchange: 'm.' } },
      'record.data.preference',
      /at least 0/,
    );
    schemaFails(
      { ...base, type: 'CAA', data: { flags: 0, tag: 'is-sue', value: '' } },
      'record.data.tag',
      /letters and digits/,
    );
    schemaFails(
      { ...base, type: 'TLSA', data: { usage: 3, selector: 1, matchingType: 1, data: 'ABC' } },
      'record.data.data',
      /hex/,
    );
    schemaFails(
      { ...base, type: 'NSEC', data: { next: 'x.', types: ['A', 'A'] } },
      'record.data.types',
      /twice/,
    );
  });

  it('applies the SvcParams rules of RFC 9460', () => {
    const https = (data: unknown): unknown => ({ ...base, type: 'HTTPS', data });
    schemaFails(
      https({ priority: 0, target: 'x.', params: { port: 1 } }),
      'record.data.params',
      /AliasMode/,
    );
    schemaFails(
      https({ priority: 1, target: 'x.', params: { mandatory: ['port'] } }),
      'record.data.params.mandatory[0]',
      /not present/,
    );
    schemaFails(
      https({ priority: 1, target: 'x.', params: { mandatory: ['mandatory'] } }),
      'record.data.params.mandatory[0]',
      /itself/,
    );
    schemaFails(
      https({ priority: 1, target: 'x.', params: { 'no-default-alpn': true } }),
      'record.data.params["no-default-alpn"]',
      /needs alpn/,
    );
    schemaFails(
      https({ priority: 1, target: 'x.', params: { key3: '0035' } }),
      'record.data.params.key3',
      /"port"/,
    );
    schemaFails(
      https({ priority: 1, target: 'x.', params: { key65535: '' } }),
      'record.data.params.key65535',
      /reserved/,
    );
    schemaFails(
      https({ priority: 1, target: 'x.', params: { bogus: '' } }),
      'record.data.params.bogus',
      /SvcParamKey/,
    );
    schemaFails(
      https({ priority: 1, target: 'x.', params: { port: 65536 } }),
      'record.data.params.port',
      /at most 65535/,
    );
    schemaFails(
      https({ priority: 1, target: 'x.', params: { ipv6hint: ['192.0.2.1'] } }),
      'record.data.params.ipv6hint[0]',
      /IPv4/,
    );
  });

  it('produces canonical names and addresses', () => {
    const rr = parseRecord({
      name: 'WWW.Test',
      type: 'AAAA',
      ttl: 5,
      data: { address: '2001:0DB8:0:0:0:0:0:0001' },
    });
    assert.deepEqual(rr, {
      name: 'www.test.',
      class: 1,
      ttl: 5,
      type: 'AAAA',
      data: { address: '2001:db8::1' },
    });
  });

  it('the model encoder refuses what the schema would (typed errors for hand-built records)', () => {
    const bad: ResourceRecord = {
      name: 'x.',
      type: 'TXT',
      class: 1,
      ttl: 1,
      data: { strings: [new Uint8Array(256)] },
    };
    assert.throws(
      () => rdataBytes(bad),
      (e: { code?: string }) => e.code === DnsErrorCode.RECORD_INVALID,
    );
    const port: ResourceRecord = {
      name: 'x.',
      type: 'SRV',
      class: 1,
      ttl: 1,
      data: { priority: 0, weight: 0, port: 70000, target: '.' },
    };
    assert.throws(() => rdataBytes(port), /SRV.port: 70000/);
  });
});
