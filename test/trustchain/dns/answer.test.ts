import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  MemoryZone,
  Rcode,
  ZoneSet,
  answer,
  decodeMessage,
  encodeMessage,
  parseRecord,
  recordTypeCode,
} from '../../../src/trustchain/dns/index.js';
import type { AnswerInfo, RecordInput } from '../../../src/trustchain/dns/index.js';
import { EDNS, ask, lines, query, records, zoneSet } from './fixture.js';

const A = 1;
const NS = 2;
const CNAME = 5;
const MX = 15;
const TXT = 16;
const AAAA = 28;
const SRV = 33;
const DS = 43;
const ANY = 255;
const zones = zoneSet();
const hex = (text: string): Uint8Array =>
  Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const SOA_LINE = /^hypermesh\. 300 SOA /;

describe('answer: positive answers', () => {
  it('writes the exact bytes for www A: AA, RD kept, owner as a pointer to the question', () => {
    const response = answer(query('www.hypermesh.', A, { edns: false }), zones, {
      transport: 'udp',
    });
    assert.deepEqual(
      response,
      Buffer.from(
        hex(`4242 8500 0001 0001 0000 0000 03777777 0968797065726d65736800 0001 0001
             c00c 0001 0001 0000012c 0004 c0000201`),
      ),
    );
  });

  it("keeps the question's case, echoes EDNS with the DO bit", () => {
    const m = ask(
      zones,
      query('wWw.HyperMesh.', AAAA, { edns: { ...EDNS, dnssecOk: true, udpPayloadSize: 4096 } }),
    );
    assert.equal(m.rcode, Rcode.NOERROR);
    assert.ok(m.authoritative && m.response && m.recursionDesired && !m.recursionAvailable);
    assert.equal(m.questions[0]!.name, 'wWw.HyperMesh.');
    assert.deepEqual(lines(m.answers), ['wWw.HyperMesh. 300 AAAA {"address":"2001:db8::1"}']);
    assert.deepEqual(m.edns, { udpPayloadSize: 1232, version: 0, dnssecOk: true, options: [] });
    assert.equal(ask(zones, query('www.hypermesh.', A, { edns: false })).edns, undefined);
  });

  it('adds in-zone addresses of MX, SRV and NS targets to the additional section', () => {
    assert.deepEqual(lines(ask(zones, query('hypermesh.', MX)).additional), [
      'mail.hypermesh. 600 A {"address":"192.0.2.25"}',
    ]);
    assert.deepEqual(lines(ask(zones, query('_stoq._udp.hypermesh.', SRV)).additional), [
      'node1.hypermesh. 60 AAAA {"address":"2001:db8::9292"}',
    ]);
    const ns = ask(zones, query('hypermesh.', NS));
    assert.equal(ns.answers.length, 2);
    assert.deepEqual(lines(ns.additional), [
      'ns1.hypermesh. 3600 A {"address":"192.0.2.53"}',
      'ns2.hypermesh. 3600 AAAA {"address":"2001:db8::53"}',
    ]);
  });

  it('ANY: one RRset over UDP (RFC 8482 §4.1, the lowest type), every RRset over TCP', () => {
    const udp = ask(zones, query('hypermesh.', ANY));
    assert.deepEqual(
      udp.answers.map((rr) => rr.type),
      ['NS', 'NS'],
    );
    const tcp = ask(zones, query('hypermesh.', ANY), { transport: 'tcp' });
    assert.deepEqual(
      tcp.answers.map((rr) => rr.type),
      ['NS', 'NS', 'SOA', 'MX'],
    );
    const ent = ask(zones, query('ent.hypermesh.', ANY));
    assert.equal(ent.answers.length, 0);
    assert.match(lines(ent.authority)[0]!, SOA_LINE);
  });
});

describe('answer: negative answers (RFC 2308)', () => {
  it('NXDOMAIN with the SOA, TTL = min(SOA TTL, MINIMUM)', () => {
    const m = ask(zones, query('nope.hypermesh.', A));
    assert.equal(m.rcode, Rcode.NXDOMAIN);
    assert.ok(m.authoritative);
    assert.equal(m.answers.length, 0);
    assert.equal(m.authority.length, 1);
    assert.match(lines(m.authority)[0]!, SOA_LINE);
  });

  it('NODATA: NOERROR, no answer, the SOA', () => {
    const m = ask(zones, query('www.hypermesh.', TXT));
    assert.equal(m.rcode, Rcode.NOERROR);
    assert.equal(m.answers.length, 0);
    assert.match(lines(m.authority)[0]!, SOA_LINE);
  });

  it('an empty non-terminal is NODATA, not NXDOMAIN', () => {
    for (const name of ['ent.hypermesh.', 'b.ent.hypermesh.']) {
      const m = ask(zones, query(name, A));
      assert.equal(m.rcode, Rcode.NOERROR, name);
      assert.equal(m.answers.length, 0);
      assert.equal(m.authority.length, 1);
    }
    assert.equal(ask(zones, query('c.b.ent.hypermesh.', A)).rcode, Rcode.NXDOMAIN);
  });
});

describe('answer: wildcards (RFC 4592)', () => {
  it('synthesizes under the name asked for, at any depth below the closest encloser', () => {
    assert.deepEqual(lines(ask(zones, query('x.wild.hypermesh.', TXT)).answers), [
      'x.wild.hypermesh. 120 TXT {"strings":["wildcard"]}',
    ]);
    assert.deepEqual(lines(ask(zones, query('a.b.c.wild.hypermesh.', A)).answers), [
      'a.b.c.wild.hypermesh. 120 A {"address":"192.0.2.80"}',
    ]);
  });

  it('NODATA when the wildcard has no RRset of the type', () => {
    const m = ask(zones, query('x.wild.hypermesh.', MX));
    assert.equal(m.rcode, Rcode.NOERROR);
    assert.equal(m.answers.length, 0);
    assert.match(lines(m.authority)[0]!, SOA_LINE);
  });

  it('does not match a name that exists, or below a closer existing name', () => {
    assert.deepEqual(lines(ask(zones, query('near.wild.hypermesh.', A)).answers), [
      'near.wild.hypermesh. 120 A {"address":"192.0.2.81"}',
    ]);
    assert.equal(ask(zones, query('near.wild.hypermesh.', TXT)).answers.length, 0);
    assert.equal(ask(zones, query('x.near.wild.hypermesh.', A)).rcode, Rcode.NXDOMAIN);
    // ent.wild exists as an empty non-terminal (above deep.ent.wild), so it blocks the wildcard.
    const ent = ask(zones, query('ent.wild.hypermesh.', A));
    assert.equal(ent.rcode, Rcode.NOERROR);
    assert.equal(ent.answers.length, 0);
    assert.equal(ask(zones, query('x.ent.wild.hypermesh.', A)).rcode, Rcode.NXDOMAIN);
  });

  it('a literal "*" query gets the wildcard\'s own data', () => {
    assert.deepEqual(lines(ask(zones, query('*.wild.hypermesh.', A)).answers), [
      '*.wild.hypermesh. 120 A {"address":"192.0.2.80"}',
    ]);
  });

  it('a wildcard CNAME is synthesized and chased', () => {
    assert.deepEqual(lines(ask(zones, query('foo.cn.hypermesh.', A)).answers), [
      'foo.cn.hypermesh. 120 CNAME {"target":"www.hypermesh."}',
      'www.hypermesh. 300 A {"address":"192.0.2.1"}',
    ]);
  });
});

describe('answer: CNAME chasing', () => {
  it('follows a CNAME within the zone', () => {
    const m = ask(zones, query('alias.hypermesh.', A));
    assert.ok(m.authoritative);
    assert.deepEqual(lines(m.answers), [
      'alias.hypermesh. 300 CNAME {"target":"www.hypermesh."}',
      'www.hypermesh. 300 A {"address":"192.0.2.1"}',
    ]);
  });

  it('answers a CNAME query with the CNAME alone', () => {
    assert.deepEqual(lines(ask(zones, query('alias.hypermesh.', CNAME)).answers), [
      'alias.hypermesh. 300 CNAME {"target":"www.hypermesh."}',
    ]);
  });

  it('follows into another zone this server holds', () => {
    assert.deepEqual(lines(ask(zones, query('to-other.hypermesh.', A)).answers), [
      'to-other.hypermesh. 300 CNAME {"target":"www.other.test."}',
      'www.other.test. 900 A {"address":"198.51.100.7"}',
    ]);
  });

  it("a target that does not exist gives NXDOMAIN with that zone's SOA (RFC 6604)", () => {
    const m = ask(zones, query('dangling.hypermesh.', A));
    assert.equal(m.rcode, Rcode.NXDOMAIN);
    assert.equal(m.answers.length, 1);
    assert.match(lines(m.authority)[0]!, SOA_LINE);
  });

  it('stops at a target outside every zone held, and at a loop', () => {
    const out = ask(zones, query('outside.hypermesh.', A));
    assert.equal(out.rcode, Rcode.NOERROR);
    assert.deepEqual(lines(out.answers), [
      'outside.hypermesh. 300 CNAME {"target":"www.example.org."}',
    ]);
    const loop = ask(zones, query('loop1.hypermesh.', A));
    assert.equal(loop.rcode, Rcode.NOERROR);
    assert.deepEqual(
      loop.answers.map((rr) => rr.name),
      ['loop1.hypermesh.', 'loop2.hypermesh.'],
    );
  });
});

describe('answer: delegations', () => {
  it('refers below a zone cut: not authoritative, NS in authority, in-zone glue in additional', () => {
    for (const name of ['sub.hypermesh.', 'www.sub.hypermesh.', 'ns.sub.hypermesh.']) {
      const m = ask(zones, query(name, A));
      assert.equal(m.rcode, Rcode.NOERROR, name);
      assert.ok(!m.authoritative, name);
      assert.equal(m.answers.length, 0);
      assert.deepEqual(lines(m.authority), [
        // Canonical RDATA order: 02 "ns" 03 "sub" sorts before 02 "ns" 09 "elsewhere".
        'sub.hypermesh. 86400 NS {"host":"ns.sub.hypermesh."}',
        'sub.hypermesh. 86400 NS {"host":"ns.elsewhere.test."}',
      ]);
      assert.deepEqual(lines(m.additional), [
        'ns.sub.hypermesh. 86400 A {"address":"192.0.2.100"}',
      ]);
    }
  });

  it('answers DS at the cut from the parent side, authoritatively', () => {
    const m = ask(zones, query('sub.hypermesh.', DS));
    assert.ok(m.authoritative);
    assert.deepEqual(
      m.answers.map((rr) => rr.type),
      ['DS'],
    );
  });

  it('a DS query for a zone apex with the parent held goes to the parent; without it, to the zone', () => {
    const child: RecordInput[] = [
      {
        name: 'c.other.test.',
        type: 'SOA',
        ttl: 60,
        data: {
          mname: 'ns.c.other.test.',
          rname: 'h.c.other.test.',
          serial: 1,
          refresh: 1,
          retry: 1,
          expire: 1,
          minimum: 30,
        },
      },
      { name: 'c.other.test.', type: 'NS', ttl: 60, data: { host: 'ns.c.other.test.' } },
    ];
    const alone = new ZoneSet([MemoryZone.build('c.other.test.', records(child))]);
    const m = ask(alone, query('c.other.test.', DS));
    assert.ok(m.authoritative);
    assert.equal(m.answers.length, 0);
    assert.equal(m.authority[0]!.name, 'c.other.test.');
  });
});

describe('answer: refusals and errors', () => {
  it('REFUSED for names outside every zone, other classes and zone transfers', () => {
    for (const bytes of [
      query('example.org.', A),
      query('.', NS),
      query('www.hypermesh.', A, { cls: 3 }),
      query('hypermesh.', 252),
      query('hypermesh.', 251),
    ]) {
      const m = ask(zones, bytes);
      assert.equal(m.rcode, Rcode.REFUSED);
      assert.ok(!m.authoritative);
      assert.equal(m.questions.length, 1);
      assert.ok(m.edns);
    }
    // A real IXFR query carries the client's SOA in authority (RFC 1995 §3): still REFUSED.
    const soa = parseRecord({
      name: 'hypermesh.',
      type: 'SOA',
      ttl: 0,
      data: {
        mname: 'ns.hypermesh.',
        rname: 'h.hypermesh.',
        serial: 1,
        refresh: 1,
        retry: 1,
        expire: 1,
        minimum: 1,
      },
    });
    const ixfr = encodeMessage({
      id: 3,
      questions: [{ name: 'hypermesh.', type: 251, class: 1 }],
      authority: [soa],
    });
    const refused = ask(zones, ixfr, { transport: 'tcp' });
    assert.equal(refused.rcode, Rcode.REFUSED);
    assert.equal(refused.questions.length, 1);
  });

  it('NOTIMP for opcodes other than QUERY and for meta types', () => {
    for (const opcode of [1, 2, 4, 5]) {
      const m = ask(zones, query('hypermesh.', A, { opcode }));
      assert.equal(m.rcode, Rcode.NOTIMP);
      assert.equal(m.opcode, opcode);
    }
    assert.equal(ask(zones, query('hypermesh.', 254)).rcode, Rcode.NOTIMP);
  });

  it('FORMERR (ID kept, no OPT) for QDCOUNT other than 1, bad names, bad sections, trailing bytes, qtype OPT', () => {
    const good = query('www.hypermesh.', A, { id: 0x1111 });
    const withQd = (qd: number): Uint8Array => {
      const copy = good.slice();
      copy[5] = qd;
      return copy;
    };
    const twoOpt = encodeMessage({
      id: 0x1111,
      recursionDesired: true,
      questions: [{ name: 'www.hypermesh.', type: A, class: 1 }],
      additional: [],
    });
    const opt = hex('00 0029 04d0 00000000 0000');
    const doubled = new Uint8Array([...twoOpt, ...opt, ...opt]);
    doubled[11] = 2;
    const cases: Array<[string, Uint8Array, boolean]> = [
      ['QDCOUNT 0', hex('1111 0100 0000 0000 0000 0000'), false],
      ['QDCOUNT 2', withQd(2), false],
      ['pointer loop in the question', hex('1111 0100 0001 0000 0000 0000 c00c 0001 0001'), false],
      [
        'label of 64',
        hex(`1111 0100 0001 0000 0000 0000 40 ${'61'.repeat(64)} 00 0001 0001`),
        false,
      ],
      ['question cut short', hex('1111 0100 0001 0000 0000 0000 03 777777 00 00'), false],
      ['ANCOUNT beyond the message', hex('1111 0100 0001 0001 0000 0000 00 0001 0001'), true],
      ['two OPT records', doubled, true],
      ['trailing bytes', new Uint8Array([...good, 0]), true],
      ['qtype OPT', query('www.hypermesh.', 41, { id: 0x1111 }), true],
    ];
    for (const [what, bytes, questionEchoed] of cases) {
      const response = answer(bytes, zones, { transport: 'udp' });
      assert.ok(response, what);
      const m = decodeMessage(response);
      assert.equal(m.rcode, Rcode.FORMERR, what);
      assert.equal(m.id, 0x1111, what);
      assert.ok(m.response && m.recursionDesired, what);
      assert.equal(m.questions.length, questionEchoed ? 1 : 0, what);
      assert.equal(m.edns, undefined, what);
    }
  });

  it('FORMERR for records a query does not carry: answer, authority, other additional, more than two', () => {
    const www = (additional: Parameters<typeof encodeMessage>[0]['additional'] = []) =>
      ({
        id: 0x2222,
        recursionDesired: true,
        questions: [{ name: 'www.hypermesh.', type: A, class: 1 }],
        additional,
        edns: EDNS,
      }) as const;
    const a = parseRecord({
      name: 'www.hypermesh.',
      type: 'A',
      ttl: 1,
      data: { address: '192.0.2.1' },
    });
    const cases: Array<[string, Uint8Array]> = [
      ['an answer record', encodeMessage({ ...www(), answers: [a] })],
      ['an authority record', encodeMessage({ ...www(), authority: [a] })],
      ['an A record in additional', encodeMessage(www([a]))],
      ['three additional records', encodeMessage(www([a, a]))],
    ];
    for (const [what, bytes] of cases) {
      // Each is a well-formed message; the engine refuses it as a query.
      assert.doesNotThrow(() => decodeMessage(bytes), what);
      const info: AnswerInfo = { rcode: -1, qtype: -1, truncated: true };
      const m = decodeMessage(answer(bytes, zones, { transport: 'udp', info })!);
      assert.equal(m.rcode, Rcode.FORMERR, what);
      assert.equal(m.id, 0x2222, what);
      assert.equal(m.questions[0]?.name, 'www.hypermesh.', what);
      assert.equal(m.answers.length + m.authority.length + m.additional.length, 0, what);
      assert.equal(m.edns, undefined, what);
      assert.equal(info.rcode, Rcode.FORMERR, what);
    }
  });

  it('NOTIMP for a query signed with TSIG or SIG(0), last in additional (not supported)', () => {
    // Owner, TYPE, CLASS ANY, TTL 0, RDLENGTH 4, then RDATA the engine never reads.
    const signature = (type: number) =>
      hex(`03 6b6579 00 ${type.toString(16).padStart(4, '0')} 00ff 00000000 0004 deadbeef`);
    const signed = (base: Uint8Array, type: number, arcount: number) => {
      const bytes = Buffer.concat([base, signature(type)]);
      bytes.writeUInt16BE(arcount, 10);
      return bytes;
    };
    const withOpt = query('www.hypermesh.', A, { id: 0x3333 });
    const without = query('www.hypermesh.', A, { id: 0x3333, edns: false });
    for (const type of [250, 24]) {
      const afterOpt = decodeMessage(
        answer(signed(withOpt, type, 2), zones, { transport: 'udp' })!,
      );
      assert.equal(afterOpt.rcode, Rcode.NOTIMP, `type ${type} after OPT`);
      assert.equal(afterOpt.answers.length, 0);
      assert.equal(afterOpt.questions.length, 1);
      assert.ok(afterOpt.edns, 'the OPT is echoed');
      const alone = decodeMessage(answer(signed(without, type, 1), zones, { transport: 'tcp' })!);
      assert.equal(alone.rcode, Rcode.NOTIMP, `type ${type} alone`);
      assert.equal(alone.edns, undefined);
    }
    // RFC 8945 §5.1: the TSIG is the last record; before the OPT it is malformed.
    const first = Buffer.concat([without, signature(250), hex('00 0029 04d0 00000000 0000')]);
    first.writeUInt16BE(2, 10);
    assert.equal(decodeMessage(answer(first, zones, { transport: 'udp' })!).rcode, Rcode.FORMERR);
  });

  it('reads the header and the question of a 64 KiB query, not its ~4,600 records', () => {
    // A 255-byte question name, then TXT records owned by it (a pointer) up to 64 KiB: the
    // engine refused the message only after decoding every record (a crafted variant whose
    // owners walk 128-pointer chains cost ~26-48 ms of CPU per query).
    const b = Buffer.alloc(65_507);
    let o = 12;
    for (let i = 0; i < 127; i++) {
      b[o++] = 1;
      b[o++] = 0x61 + (i % 26);
    }
    b[o++] = 0;
    b.writeUInt16BE(1, o);
    b.writeUInt16BE(1, o + 2);
    o += 4;
    let count = 0;
    while (o + 14 <= b.length) {
      b.writeUInt16BE(0xc00c, o);
      b.writeUInt16BE(TXT, o + 2);
      b.writeUInt16BE(1, o + 4);
      b.writeUInt16BE(2, o + 10);
      b.writeUInt16BE(0x0161, o + 12);
      o += 14;
      count++;
    }
    b.writeUInt16BE(0x4444, 0);
    b.writeUInt16BE(1, 4);
    const crafted = b.subarray(0, o);
    for (const section of [6, 8, 10]) {
      const bytes = Buffer.from(crafted);
      bytes.writeUInt16BE(count, section);
      // Well-formed (checked once: the records are alike in every section).
      if (section === 6) assert.doesNotThrow(() => decodeMessage(bytes));
      let reads = 0;
      const counted = new Proxy(bytes, {
        get(target, property) {
          if (typeof property === 'string' && /^\d+$/.test(property)) reads++;
          const value: unknown = Reflect.get(target, property);
          return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
        },
      });
      const m = decodeMessage(answer(counted, zones, { transport: 'tcp' })!);
      assert.equal(m.rcode, Rcode.FORMERR, `${count} records at count offset ${section}`);
      assert.equal(m.id, 0x4444);
      // The header, each byte of the 255-byte question name at most twice, QTYPE and QCLASS.
      assert.ok(reads <= 2 * 12 + 2 * 255 + 4, `${reads} bytes of the query read`);
    }
  });

  it('BADVERS for EDNS versions above 0 (RFC 6891 §6.1.3)', () => {
    const info: AnswerInfo = { rcode: -1, qtype: -1, truncated: true };
    const response = answer(query('www.hypermesh.', A, { edns: { ...EDNS, version: 1 } }), zones, {
      transport: 'udp',
      info,
    });
    const m = decodeMessage(response!);
    assert.equal(m.rcode, Rcode.BADVERS);
    assert.equal(response![3]! & 0xf, 0);
    assert.equal(m.edns?.version, 0);
    assert.equal(m.answers.length, 0);
    assert.deepEqual(info, { rcode: 16, qtype: A, truncated: false });
  });

  it('drops what is not a query: shorter than a header, or QR set', () => {
    assert.equal(answer(new Uint8Array(0), zones, { transport: 'udp' }), null);
    assert.equal(answer(hex('1234'), zones, { transport: 'udp' }), null);
    assert.equal(answer(hex('1234 0100 0001 0000 0000'), zones, { transport: 'udp' }), null);
    const response = answer(query('www.hypermesh.', A), zones, { transport: 'udp' })!;
    assert.equal(answer(response, zones, { transport: 'udp' }), null);
  });

  it("fills the caller's info for metrics", () => {
    const info: AnswerInfo = { rcode: -1, qtype: -1, truncated: true };
    answer(query('nope.hypermesh.', AAAA), zones, { transport: 'udp', info });
    assert.deepEqual(info, { rcode: Rcode.NXDOMAIN, qtype: AAAA, truncated: false });
    answer(hex('1111 0100 0000 0000 0000 0000'), zones, { transport: 'udp', info });
    assert.deepEqual(info, { rcode: Rcode.FORMERR, qtype: 0, truncated: false });
  });
});

describe('answer: truncation', () => {
  const soa: RecordInput = {
    name: 'big.test.',
    type: 'SOA',
    ttl: 60,
    data: {
      mname: 'ns.big.test.',
      rname: 'h.big.test.',
      serial: 1,
      refresh: 1,
      retry: 1,
      expire: 1,
      minimum: 60,
    },
  };
  const inputs: RecordInput[] = [
    soa,
    { name: 'big.test.', type: 'NS', ttl: 60, data: { host: 'ns.big.test.' } },
  ];
  for (let i = 0; i < 100; i++) {
    inputs.push({ name: 'many.big.test.', type: 'A', ttl: 60, data: { address: `10.0.0.${i}` } });
    inputs.push({
      name: 'many.big.test.',
      type: 'TXT',
      ttl: 60,
      data: { strings: [`record ${i} `.padEnd(60, '.')] },
    });
    inputs.push({ name: 'mail.big.test.', type: 'A', ttl: 60, data: { address: `10.1.0.${i}` } });
  }
  inputs.push({
    name: 'big.test.',
    type: 'MX',
    ttl: 60,
    data: { preference: 1, exchange: 'mail.big.test.' },
  });
  inputs.push({ name: 'deleg.big.test.', type: 'NS', ttl: 60, data: { host: 'mail.big.test.' } });
  const big = new ZoneSet([MemoryZone.build('big.test.', records(inputs))]);

  function sized(bytes: Uint8Array, options: Parameters<typeof answer>[2]) {
    const response = answer(bytes, big, options)!;
    return { size: response.length, m: decodeMessage(response) };
  }

  it('512 bytes without EDNS: TC set, the RRset left out whole', () => {
    const { size, m } = sized(query('many.big.test.', A, { edns: false }), { transport: 'udp' });
    assert.ok(size <= 512, `${size}`);
    assert.ok(m.truncated);
    assert.equal(m.answers.length, 0);
  });

  it("with EDNS: the smaller of the client's size and the server cap (1232 by default)", () => {
    const capped = sized(query('many.big.test.', A, { edns: { ...EDNS, udpPayloadSize: 4096 } }), {
      transport: 'udp',
    });
    assert.ok(capped.m.truncated && capped.size <= 1232, `${capped.size}`);
    assert.ok(capped.m.edns, 'OPT kept in a truncated response');
    const roomy = sized(query('many.big.test.', A, { edns: { ...EDNS, udpPayloadSize: 4096 } }), {
      transport: 'udp',
      maxUdpPayload: 4096,
    });
    assert.ok(!roomy.m.truncated);
    assert.equal(roomy.m.answers.length, 100);
    assert.equal(roomy.m.edns?.udpPayloadSize, 4096);
    const small = sized(query('many.big.test.', A, { edns: { ...EDNS, udpPayloadSize: 100 } }), {
      transport: 'udp',
    });
    assert.ok(small.m.truncated && small.size <= 512);
  });

  it('TCP carries everything', () => {
    const { m } = sized(query('many.big.test.', TXT), { transport: 'tcp' });
    assert.ok(!m.truncated);
    assert.equal(m.answers.length, 100);
  });

  it('additional records that do not fit are left out without TC; referral glue that does not fit sets TC', () => {
    const mx = sized(query('big.test.', MX, { edns: false }), { transport: 'udp' });
    assert.ok(!mx.m.truncated);
    assert.equal(mx.m.answers.length, 1);
    assert.equal(mx.m.additional.length, 0);
    const referral = sized(query('x.deleg.big.test.', A, { edns: false }), { transport: 'udp' });
    assert.ok(referral.m.truncated);
    assert.equal(referral.m.authority.length, 1);
    assert.ok(!referral.m.authoritative);
  });
});

describe('answer: arbitrary input', () => {
  const valid = [
    query('www.hypermesh.', A),
    query('x.wild.hypermesh.', TXT, { edns: false }),
    query('a.sub.hypermesh.', A),
    query('alias.hypermesh.', AAAA),
  ];
  const mutated = fc
    .tuple(
      fc.constantFrom(...valid),
      fc.array(fc.tuple(fc.nat(80), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      fc.nat(80),
    )
    .map(([base, edits, cut]) => {
      const copy = base.slice(0, Math.max(cut, 2));
      for (const [at, byte] of edits) if (at < copy.length) copy[at] = byte;
      return copy;
    });

  it('never throws; drops it or answers with a decodable response carrying the query ID', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated),
        fc.constantFrom('udp', 'tcp') as fc.Arbitrary<'udp' | 'tcp'>,
        (bytes, transport) => {
          const response = answer(bytes, zones, { transport });
          if (response === null) {
            assert.ok(bytes.length < 12 || (bytes[2]! & 0x80) !== 0);
            return;
          }
          const m = decodeMessage(response);
          assert.ok(m.response);
          assert.equal(m.id, (bytes[0]! << 8) | bytes[1]!);
          if (transport === 'udp') assert.ok(response.length <= 1232);
          let queryValid = true;
          try {
            decodeMessage(bytes);
          } catch {
            queryValid = false;
          }
          const opcode = (bytes[2]! >> 3) & 0xf;
          if (!queryValid) {
            assert.equal(m.rcode, opcode === 0 ? Rcode.FORMERR : Rcode.NOTIMP);
          } else if (opcode === 0) {
            // A well-formed message is FORMERR exactly when it is not shaped as a query: one
            // question (not of type OPT), no answer or authority records, no additional record
            // but the OPT (a TSIG or SIG(0) is NOTIMP when last, FORMERR elsewhere).
            const q = decodeMessage(bytes);
            const signed = q.additional.some((rr) => [24, 250].includes(recordTypeCode(rr)));
            const shaped =
              q.questions.length === 1 &&
              q.questions[0]!.type !== 41 &&
              q.answers.length === 0 &&
              q.authority.length === 0 &&
              q.additional.length === 0;
            if (!signed) assert.equal(m.rcode === Rcode.FORMERR, !shaped);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });
});
