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
          if (!queryValid) {
            const opcode = (bytes[2]! >> 3) & 0xf;
            assert.equal(m.rcode, opcode === 0 ? Rcode.FORMERR : Rcode.NOTIMP);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });
});
