import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { startDnsServers } from '../../../src/faces/dns/index.js';
import {
  DEFAULT_CACHE_MAX_AGE_MS,
  MAX_CACHED_RESPONSE,
  UdpResponseCache,
} from '../../../src/faces/dns/response-cache.js';
import {
  MemoryZone,
  RR_TYPES,
  ZoneSet,
  ZoneSigner,
  answer,
  decodeMessage,
  encodeMessage,
  generateSigningKey,
  parseRecord,
} from '../../../src/trustchain/dns/index.js';
import type {
  AnswerInfo,
  Edns,
  EdnsOption,
  RecordInput,
  ZoneSource,
} from '../../../src/trustchain/dns/index.js';
import { QueryKeyScan, udpQueryKey } from '../../../src/trustchain/dns/query-key.js';
import { OTHER_INPUT, ZONE_INPUT, records } from '../../trustchain/dns/fixture.js';
import { withDeadline } from '../../helpers/wait.js';

const { A, AAAA, TXT, MX, NS, SOA, CNAME, DS, RRSIG, NSEC, DNSKEY, SRV } = RR_TYPES;
const ANY = 255;
const MAX_UDP = 1232;

/** The answer engine's own response and info: what every cached response must equal. */
function engine(
  zones: ZoneSource,
  bytes: Uint8Array,
  maxUdpPayload = MAX_UDP,
): { response: Uint8Array | null; info: AnswerInfo } {
  const info: AnswerInfo = { rcode: -1, qtype: -1, truncated: false };
  const response = answer(bytes, zones, { transport: 'udp', maxUdpPayload, info });
  return { response, info };
}

/** Asks `cache` and checks the bytes and info against the engine; returns the response. */
function same(cache: UdpResponseCache, zones: ZoneSource, bytes: Uint8Array, now = 0) {
  const got = cache.answer(bytes, now);
  const gotInfo = { ...cache.info };
  const want = engine(zones, bytes);
  if (want.response === null) {
    assert.equal(got, null, 'dropped by the engine, so dropped by the cache');
    return null;
  }
  assert.ok(got !== null, 'the engine answers, so the cache answers');
  assert.deepEqual(Buffer.from(got).toString('hex'), Buffer.from(want.response).toString('hex'));
  assert.deepEqual(gotInfo, want.info);
  return got;
}

interface Ask {
  readonly id?: number;
  readonly rd?: boolean;
  readonly cd?: boolean;
  /** false: no OPT. */
  readonly edns?: Partial<Edns> | false;
}

function query(name: string, type: number, ask: Ask = {}): Uint8Array {
  const edns = ask.edns ?? {};
  return encodeMessage({
    id: ask.id ?? 0x1234,
    recursionDesired: ask.rd ?? true,
    checkingDisabled: ask.cd ?? false,
    questions: [{ name, type, class: 1 }],
    ...(edns === false
      ? {}
      : {
          edns: {
            udpPayloadSize: MAX_UDP,
            version: 0,
            dnssecOk: false,
            options: [] as EdnsOption[],
            ...edns,
          },
        }),
  });
}

/** Upper-cases the letters of `name` where `pattern` (cycled) says so. */
function recase(name: string, pattern: readonly boolean[]): string {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    out += pattern[i % pattern.length] ? c.toUpperCase() : c.toLowerCase();
  }
  return out;
}

/** The answer fixture's zones, `hypermesh.` signed under a fixed clock. */
function signedZones(): ZoneSet {
  const clock = { now: Date.UTC(2026, 0, 1) };
  const signer = new ZoneSigner({
    apex: 'hypermesh.',
    key: generateSigningKey(),
    clock: () => clock.now,
  });
  const big: RecordInput[] = Array.from({ length: 8 }, (_, i) => ({
    name: 'big.hypermesh.',
    type: 'TXT',
    ttl: 60,
    data: { strings: [String(i).repeat(120)] },
  }));
  return new ZoneSet([
    MemoryZone.build('hypermesh.', records([...ZONE_INPUT, ...big]), { signer }),
    MemoryZone.build('other.test.', records(OTHER_INPUT)),
  ]);
}

const CORPUS_NAMES = [
  'hypermesh.', // apex: SOA, NS, MX with additional
  'www.hypermesh.', // positive A/AAAA, NODATA for others
  'alias.hypermesh.', // CNAME in zone
  'to-other.hypermesh.', // CNAME into another zone
  'dangling.hypermesh.', // CNAME to NXDOMAIN
  'loop1.hypermesh.', // CNAME loop
  'outside.hypermesh.', // CNAME out of the zones
  'x.wild.hypermesh.', // wildcard
  'near.wild.hypermesh.', // blocks the wildcard
  'x.cn.hypermesh.', // wildcard CNAME
  'b.ent.hypermesh.', // empty non-terminal
  'missing.hypermesh.', // NXDOMAIN
  'a.b.missing.hypermesh.',
  'www.sub.hypermesh.', // below a delegation: referral
  'sub.hypermesh.', // DS at the cut
  '_stoq._udp.hypermesh.', // SRV with additional
  'big.hypermesh.', // TXT too big for 512 bytes: TC
  'www.other.test.',
  'nowhere.example.', // in no zone: REFUSED
];
const CORPUS_TYPES = [A, AAAA, TXT, MX, NS, SOA, CNAME, DS, RRSIG, NSEC, DNSKEY, SRV, ANY, 99];
const CORPUS_ASKS: Ask[] = [
  { edns: false },
  { edns: false, rd: false },
  {},
  { cd: true },
  { edns: { dnssecOk: true } },
  { edns: { dnssecOk: true, udpPayloadSize: 512 } },
  { edns: { dnssecOk: true, udpPayloadSize: 700 } },
  { edns: { dnssecOk: true, udpPayloadSize: 4096 }, cd: true },
  { edns: { udpPayloadSize: 0 } },
  { edns: { udpPayloadSize: 600 } },
  { edns: { udpPayloadSize: 65535 } },
];

describe('UDP response cache', () => {
  it('gives the bytes of the engine for every query of a corpus, case and ID per request', () => {
    const zones = signedZones();
    const cache = new UdpResponseCache({ zones, maxUdpPayload: MAX_UDP, entries: 100_000 });
    let id = 1;
    let truncated = 0;
    for (const name of CORPUS_NAMES) {
      for (const type of CORPUS_TYPES) {
        for (const ask of CORPUS_ASKS) {
          // The first query fills the entry; the others hit it with their own ID and case.
          same(cache, zones, query(name, type, { ...ask, id: id++ }));
          const before = cache.hits;
          const mixed = recase(name, [true, false, false]);
          const response = same(cache, zones, query(mixed, type, { ...ask, id: id++ }))!;
          same(cache, zones, query(name.toUpperCase(), type, { ...ask, id: id++ }));
          assert.equal(cache.hits, before + 2, `${name} ${type} ${JSON.stringify(ask)} hit`);
          const decoded = decodeMessage(response);
          assert.equal(decoded.id, id - 2);
          assert.equal(decoded.questions[0]!.name, mixed);
          if (decoded.truncated) truncated++;
        }
      }
    }
    assert.ok(truncated > 0, 'the corpus has truncated answers');
  });

  it('keys by what changes the answer: RD, CD, DO, EDNS and its size limit', () => {
    const zones = signedZones();
    const cache = new UdpResponseCache({ zones, maxUdpPayload: MAX_UDP, entries: 1000 });
    const variants: Ask[] = [
      { edns: false },
      { edns: false, rd: false },
      { edns: false, cd: true },
      {},
      { edns: { dnssecOk: true } },
      { edns: { udpPayloadSize: 512 } },
      { edns: { udpPayloadSize: 513 } },
    ];
    for (const ask of variants) same(cache, zones, query('big.hypermesh.', TXT, ask));
    assert.equal(cache.size, variants.length);
    // Sizes at or above the server's limit give the same answer, so they share an entry.
    same(cache, zones, query('big.hypermesh.', TXT, { edns: { udpPayloadSize: 4096 } }));
    same(cache, zones, query('big.hypermesh.', TXT, { edns: { udpPayloadSize: 1232 } }));
    // Below 512 counts as 512.
    same(cache, zones, query('big.hypermesh.', TXT, { edns: { udpPayloadSize: 100 } }));
    assert.equal(cache.size, variants.length);
    assert.equal(cache.hits, 3);
  });

  it('serves the new answer after a zone is swapped in or removed', () => {
    const zones = new ZoneSet([MemoryZone.build('hypermesh.', records(ZONE_INPUT))]);
    const cache = new UdpResponseCache({ zones, maxUdpPayload: MAX_UDP, entries: 100 });
    const ask = query('www.hypermesh.', A, { id: 7 });
    same(cache, zones, ask);
    same(cache, zones, ask);
    assert.equal(cache.hits, 1);
    const changed = ZONE_INPUT.map((r) =>
      r.name === 'www.hypermesh.' && r.type === 'A' ? { ...r, data: { address: '192.0.2.99' } } : r,
    );
    zones.set(MemoryZone.build('hypermesh.', records(changed)));
    const after = decodeMessage(same(cache, zones, ask)!);
    assert.deepEqual(after.answers[0]!.data, { address: '192.0.2.99' });
    assert.equal(cache.hits, 1, 'the change emptied the cache');
    same(cache, zones, ask);
    assert.equal(cache.hits, 2);
    zones.delete('hypermesh.');
    const refused = decodeMessage(same(cache, zones, ask)!);
    assert.equal(refused.rcode, 5);
    assert.equal(cache.hits, 2);
  });

  it('does not cache for a zone source without a generation', () => {
    const set = new ZoneSet([MemoryZone.build('hypermesh.', records(ZONE_INPUT))]);
    const zones: ZoneSource = { findZone: (key, parentSide) => set.findZone(key, parentSide) };
    const cache = new UdpResponseCache({ zones, maxUdpPayload: MAX_UDP, entries: 100 });
    for (let i = 0; i < 3; i++) same(cache, zones, query('www.hypermesh.', A));
    assert.equal(cache.hits, 0);
    assert.equal(cache.size, 0);
  });

  it('sends queries of any other shape to the engine, every time', () => {
    const zones = signedZones();
    const cache = new UdpResponseCache({ zones, maxUdpPayload: MAX_UDP, entries: 1000 });
    const www = query('www.hypermesh.', A);
    const withOpt = (options: EdnsOption[], extra: Partial<Edns> = {}) =>
      query('www.hypermesh.', A, { edns: { options, ...extra } });
    const twoQuestions = encodeMessage({
      id: 1,
      questions: [
        { name: 'www.hypermesh.', type: A, class: 1 },
        { name: 'www.hypermesh.', type: AAAA, class: 1 },
      ],
    });
    const tsigLike = encodeMessage({
      id: 2,
      questions: [{ name: 'www.hypermesh.', type: A, class: 1 }],
      additional: [parseRecord({ name: 'key.', type: 'TXT', ttl: 0, data: { strings: ['x'] } })],
    });
    const withAnswer = encodeMessage({
      id: 3,
      questions: [{ name: 'www.hypermesh.', type: A, class: 1 }],
      answers: [
        parseRecord({ name: 'www.hypermesh.', type: 'A', ttl: 1, data: { address: '192.0.2.1' } }),
      ],
    });
    const notify = encodeMessage({
      id: 4,
      opcode: 4,
      questions: [{ name: 'hypermesh.', type: SOA, class: 1 }],
    });
    const pointer = Buffer.from(www);
    // The question name as a pointer into the header (the engine reads it as a name or refuses it).
    pointer.writeUInt16BE(0xc000, 12);
    const trailing = Buffer.concat([
      Buffer.from(query('www.hypermesh.', A, { edns: false })),
      Buffer.from([0]),
    ]);
    const afterOpt = Buffer.concat([Buffer.from(www), Buffer.from([0])]);
    const response = Buffer.from(engine(zones, www).response!);
    // 256 bytes in wire form, one more than RFC 1035 allows (encodeMessage refuses to write it).
    const longName = Buffer.concat([
      Buffer.from(www).subarray(0, 12),
      ...[63, 63, 63, 62].map((n) => Buffer.from([n, ...Buffer.alloc(n, 0x61)])),
      Buffer.from([0, 0, 1, 0, 1]),
    ]);
    longName.writeUInt16BE(0, 10);
    const shapes: Array<[string, Uint8Array]> = [
      ['two questions', twoQuestions],
      ['another additional record', tsigLike],
      ['an answer record', withAnswer],
      ['opcode NOTIFY', notify],
      ['a cookie', withOpt([{ code: 10, data: new Uint8Array(8).fill(7) }])],
      ['ECS', withOpt([{ code: 8, data: Uint8Array.from([0, 1, 24, 0, 192, 0, 2]) }])],
      ['EDNS version 1', withOpt([], { version: 1 })],
      ['QTYPE OPT', query('www.hypermesh.', 41)],
      ['a compressed question name', pointer],
      ['a byte after the question', trailing],
      ['a byte after the OPT', afterOpt],
      ['a response (QR)', response],
      ['a header alone', Buffer.alloc(12)],
      ['5 bytes', Buffer.alloc(5)],
      ['a name cut short', Buffer.from(www).subarray(0, 16)],
      [
        'a label too long',
        Buffer.concat([Buffer.from(www).subarray(0, 12), Buffer.from([64]), Buffer.alloc(70)]),
      ],
      ['a name too long', longName],
    ];
    for (const [what, bytes] of shapes) {
      assert.equal(udpQueryKey(bytes, MAX_UDP, new QueryKeyScan()), false, what);
      for (let i = 0; i < 2; i++) same(cache, zones, bytes);
    }
    assert.equal(cache.hits, 0);
    assert.equal(cache.size, 0);
    const answered = (bytes: Uint8Array) => engine(zones, bytes).response;
    assert.equal(answered(response), null, 'a response is dropped');
    assert.equal(decodeMessage(answered(twoQuestions)!).rcode, 1, 'two questions: FORMERR');
    assert.equal(decodeMessage(answered(trailing)!).rcode, 1, 'trailing byte: FORMERR');
    assert.equal(decodeMessage(answered(longName)!).rcode, 1, 'name too long: FORMERR');
    // The longest name allowed (255 bytes) is cached.
    const longest = Buffer.from(longName);
    longest[12 + 64 * 3] = 61;
    longest.copy(longest, 12 + 64 * 3 + 62, 12 + 64 * 3 + 63);
    const atLimit = longest.subarray(0, longest.length - 1);
    for (let i = 0; i < 2; i++) same(cache, zones, atLimit);
    assert.equal(decodeMessage(answered(atLimit)!).rcode, 5, 'in no zone: REFUSED');
    assert.equal(cache.hits, 1);
  });

  it('tells apart two questions whose keys share a hash', () => {
    const zones = new ZoneSet([MemoryZone.build('hypermesh.', records(ZONE_INPUT))]);
    const cache = new UdpResponseCache({ zones, maxUdpPayload: MAX_UDP, entries: 100 });
    // 30-bit hashes: among ~10^5 names two collide (birthday bound ~2^15).
    const seen = new Map<number, string>();
    const scan = new QueryKeyScan();
    let pair: [string, string] | undefined;
    for (let i = 0; pair === undefined && i < 1_000_000; i++) {
      const name = `c${i}.hypermesh.`;
      assert.ok(udpQueryKey(query(name, A), MAX_UDP, scan));
      const other = seen.get(scan.hash);
      if (other !== undefined) pair = [other, name];
      seen.set(scan.hash, name);
    }
    assert.ok(pair !== undefined, 'a colliding pair');
    const [first, second] = pair;
    for (let i = 0; i < 2; i++) {
      same(cache, zones, query(first, A, { id: 1 }));
      same(cache, zones, query(second, A, { id: 2 }));
    }
    same(cache, zones, query(second, A, { id: 3 }));
    assert.equal(cache.hits, 1, 'only the repeat of the slot holder hits');
  });

  it('stays within its size and answers correctly when full', () => {
    const zones = new ZoneSet([MemoryZone.build('hypermesh.', records(ZONE_INPUT))]);
    const cache = new UdpResponseCache({ zones, maxUdpPayload: MAX_UDP, entries: 8 });
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 100; i++) {
        same(cache, zones, query(`n${i}.hypermesh.`, A, { id: i }));
        assert.ok(cache.size <= 8, `size ${cache.size}`);
      }
    }
    same(cache, zones, query('n99.hypermesh.', A));
    assert.ok(cache.hits >= 1);
  });

  it('keeps no response above the size bound', () => {
    const zones = new ZoneSet([MemoryZone.build('hypermesh.', records(ZONE_INPUT))]);
    const cache = new UdpResponseCache({ zones, maxUdpPayload: 65_535, entries: 100 });
    const wide: RecordInput[] = Array.from({ length: 12 }, (_, i) => ({
      name: 'wide.hypermesh.',
      type: 'TXT',
      ttl: 60,
      data: { strings: [String(i).padEnd(200, 'w')] },
    }));
    zones.set(MemoryZone.build('hypermesh.', records([...ZONE_INPUT, ...wide])));
    const big = query('wide.hypermesh.', TXT, { edns: { udpPayloadSize: 65_535 } });
    const first = cache.answer(big, 0)!;
    assert.ok(first.length > MAX_CACHED_RESPONSE);
    assert.deepEqual(first, engine(zones, big, 65_535).response);
    assert.equal(cache.size, 0);
  });

  it('serves an entry for at most its age, so DO answers carry current signatures', () => {
    const clock = { now: Date.UTC(2026, 0, 1) };
    const signer = new ZoneSigner({
      apex: 'hypermesh.',
      key: generateSigningKey(),
      clock: () => clock.now,
    });
    const zones = new ZoneSet([MemoryZone.build('hypermesh.', records(ZONE_INPUT), { signer })]);
    const cache = new UdpResponseCache({
      zones,
      maxUdpPayload: MAX_UDP,
      entries: 100,
      maxAgeMs: 1000,
    });
    const ask = query('www.hypermesh.', A, { edns: { dnssecOk: true } });
    const first = same(cache, zones, ask, 0)!;
    // Past the signer's refresh margin: the engine signs again.
    clock.now += 5 * 86_400_000;
    const fresh = engine(zones, ask).response!;
    assert.notDeepEqual(fresh, first);
    assert.deepEqual(cache.answer(ask, 999), first, 'within the age: the entry');
    assert.deepEqual(cache.answer(ask, 1000), fresh, 'at the age: answered again');
    assert.deepEqual(cache.answer(ask, 1500), fresh);
    assert.equal(DEFAULT_CACHE_MAX_AGE_MS, 60_000);
  });

  it('gives exactly the engine response for random and mutated packets', () => {
    const zones = signedZones();
    const cache = new UdpResponseCache({ zones, maxUdpPayload: MAX_UDP, entries: 64 });
    const seeds = [
      query('www.hypermesh.', A),
      query('WWW.hypermesh.', AAAA, { edns: false }),
      query('x.wild.hypermesh.', TXT, { edns: { dnssecOk: true } }),
      query('missing.hypermesh.', MX, { cd: true }),
    ];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 80 }),
          fc
            .tuple(
              fc.constantFrom(...seeds),
              fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
              fc.nat(),
            )
            .map(([seed, edits, cut]) => {
              const bytes = Buffer.from(seed);
              for (const [at, value] of edits) bytes[at % bytes.length] = value;
              return cut % 4 === 0 ? bytes.subarray(0, cut % bytes.length) : bytes;
            }),
        ),
        (bytes) => {
          same(cache, zones, bytes);
          same(cache, zones, bytes);
        },
      ),
      { numRuns: 2000 },
    );
    assert.ok(cache.hits > 0);
  });

  it('property: random queries from a random zone, cached equals uncached', () => {
    const key = generateSigningKey();
    const labelArb = fc.constantFrom('a', 'b', 'www', 'mx', 'x');
    const nameArb = fc
      .tuple(fc.array(labelArb, { minLength: 1, maxLength: 3 }), fc.boolean())
      .map(([labels, wild]) => `${wild ? '*.' : ''}${labels.join('.')}.p.test.`);
    const ip4 = fc.tuple(fc.nat(255), fc.nat(255)).map(([a, b]) => `10.0.${a}.${b}`);
    const nodeArb = fc.oneof(
      fc.record({
        kind: fc.constant('data' as const),
        a: fc.uniqueArray(ip4, { maxLength: 3 }),
        txt: fc.uniqueArray(fc.integer({ min: 1, max: 250 }), { maxLength: 5 }),
        mx: fc.option(nameArb, { nil: undefined }),
      }),
      fc.record({ kind: fc.constant('cname' as const), target: nameArb }),
    );
    const zoneArb = fc.dictionary(nameArb, nodeArb, { maxKeys: 12 }).map((nodes) => {
      const input: RecordInput[] = [
        {
          name: 'p.test.',
          type: 'SOA',
          ttl: 600,
          data: {
            mname: 'ns.p.test.',
            rname: 'h.p.test.',
            serial: 1,
            refresh: 1,
            retry: 1,
            expire: 1,
            minimum: 30,
          },
        },
        { name: 'p.test.', type: 'NS', ttl: 600, data: { host: 'ns.p.test.' } },
        { name: 'ns.p.test.', type: 'A', ttl: 600, data: { address: '10.9.9.9' } },
      ];
      for (const [name, node] of Object.entries(nodes)) {
        if (name === 'ns.p.test.') continue;
        if (node.kind === 'cname') {
          input.push({ name, type: 'CNAME', ttl: 60, data: { target: node.target } });
          continue;
        }
        for (const address of node.a) input.push({ name, type: 'A', ttl: 60, data: { address } });
        for (const length of node.txt) {
          input.push({
            name,
            type: 'TXT',
            ttl: 60,
            data: { strings: [`${length}`.padEnd(length, 't')] },
          });
        }
        if (node.mx !== undefined) {
          input.push({ name, type: 'MX', ttl: 60, data: { preference: 5, exchange: node.mx } });
        }
      }
      return input;
    });
    const askArb = fc.record({
      name: fc.oneof(nameArb, fc.constantFrom('p.test.', 'ns.p.test.', 'q.p.test.', 'else.test.')),
      upper: fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
      type: fc.constantFrom(A, AAAA, TXT, MX, CNAME, SOA, NS, ANY, RRSIG, NSEC, DNSKEY, DS),
      id: fc.nat(0xffff),
      rd: fc.boolean(),
      cd: fc.boolean(),
      edns: fc.option(
        fc.record({
          udpPayloadSize: fc.constantFrom(0, 512, 600, 900, 1232, 4096),
          dnssecOk: fc.boolean(),
        }),
        { nil: undefined },
      ),
    });
    fc.assert(
      fc.property(
        zoneArb,
        zoneArb,
        fc.boolean(),
        fc.array(askArb, { minLength: 1, maxLength: 40 }),
        (first, second, signed, asks) => {
          const build = (input: RecordInput[]) =>
            MemoryZone.build(
              'p.test.',
              records(input),
              signed ? { signer: new ZoneSigner({ apex: 'p.test.', key }) } : {},
            );
          const zones = new ZoneSet([build(first)]);
          const cache = new UdpResponseCache({ zones, maxUdpPayload: MAX_UDP, entries: 16 });
          const send = (a: (typeof asks)[number]) =>
            same(
              cache,
              zones,
              query(recase(a.name, a.upper), a.type, {
                id: a.id,
                rd: a.rd,
                cd: a.cd,
                edns: a.edns === undefined ? false : a.edns,
              }),
            );
          for (const a of asks) send(a);
          for (const a of asks) send({ ...a, id: a.id ^ 0x5a5a, upper: a.upper.map((u) => !u) });
          zones.set(build(second));
          for (const a of asks) send(a);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('UDP server with the response cache', () => {
  async function exchange(socket: dgram.Socket, port: number, bytes: Uint8Array): Promise<Buffer> {
    const reply = once(socket, 'message') as Promise<[Buffer]>;
    socket.send(bytes, port, '127.0.0.1');
    const [message] = await withDeadline(reply, 10_000, 'a UDP answer');
    return message;
  }

  it('answers repeated questions byte for byte as the engine, counts them, and follows zone changes', async () => {
    const zones = new ZoneSet([MemoryZone.build('hypermesh.', records(ZONE_INPUT))]);
    const registry = new Registry();
    const servers = await startDnsServers({
      zones,
      udp: [{ host: '127.0.0.1', port: 0 }],
      registry,
    });
    const client = dgram.createSocket('udp4');
    client.bind(0, '127.0.0.1');
    await once(client, 'listening');
    try {
      const port = servers.udp[0]!.port;
      for (const [i, name] of ['www.hypermesh.', 'WwW.HyperMesh.', 'WWW.HYPERMESH.'].entries()) {
        const ask = query(name, A, { id: 100 + i });
        const got = await exchange(client, port, ask);
        assert.deepEqual(got, Buffer.from(engine(zones, ask).response!));
      }
      const nx = query('Nope.hypermesh.', A, { id: 9 });
      for (let i = 0; i < 2; i++) {
        assert.deepEqual(
          await exchange(client, port, nx),
          Buffer.from(engine(zones, nx).response!),
        );
      }
      const metrics = await registry.getSingleMetricAsString('hypermesh_dns_queries_total');
      assert.match(metrics, /transport="udp",type="A",rcode="NOERROR"} 3/);
      assert.match(metrics, /transport="udp",type="A",rcode="NXDOMAIN"} 2/);

      const changed = ZONE_INPUT.map((r) =>
        r.name === 'www.hypermesh.' && r.type === 'A'
          ? { ...r, data: { address: '192.0.2.77' } }
          : r,
      );
      zones.set(MemoryZone.build('hypermesh.', records(changed)));
      const after = decodeMessage(await exchange(client, port, query('www.hypermesh.', A)));
      assert.deepEqual(after.answers[0]!.data, { address: '192.0.2.77' });
    } finally {
      client.close();
      await servers.close();
    }
  });

  it('answers with the cache turned off, and refuses a bad cache size', async () => {
    const zones = new ZoneSet([MemoryZone.build('hypermesh.', records(ZONE_INPUT))]);
    const servers = await startDnsServers({
      zones,
      udp: [{ host: '127.0.0.1', port: 0 }],
      limits: { udpResponseCacheEntries: 0 },
    });
    const client = dgram.createSocket('udp4');
    client.bind(0, '127.0.0.1');
    await once(client, 'listening');
    try {
      const ask = query('www.hypermesh.', AAAA);
      for (let i = 0; i < 2; i++) {
        const got = await exchange(client, servers.udp[0]!.port, ask);
        assert.deepEqual(got, Buffer.from(engine(zones, ask).response!));
      }
    } finally {
      client.close();
      await servers.close();
    }
    await assert.rejects(
      startDnsServers({ zones, udp: [], limits: { udpResponseCacheEntries: -1 } }),
      /udpResponseCacheEntries/,
    );
  });
});
