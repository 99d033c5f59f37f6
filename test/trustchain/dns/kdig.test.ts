import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryZone, ZoneSet, decodeMessage } from '../../../src/trustchain/dns/index.js';
import type { RecordInput } from '../../../src/trustchain/dns/index.js';
import { withDeadline } from '../../helpers/wait.js';
import { OTHER_INPUT, ZONE_INPUT, records } from './fixture.js';
import { available, run, startLoopback } from './loopback.js';
import type { LoopbackServer } from './loopback.js';

/**
 * Interoperability: kdig and dig (Knot and BIND's clients, nobody here wrote them) query
 * `answer` through a loopback UDP/TCP responder and decode what it returns.
 */

const INTEROP: RecordInput[] = [
  {
    name: 'i.test.',
    type: 'SOA',
    ttl: 60,
    data: {
      mname: 'ns.i.test.',
      rname: 'h.i.test.',
      serial: 1,
      refresh: 2,
      retry: 3,
      expire: 4,
      minimum: 5,
    },
  },
  { name: 'i.test.', type: 'NS', ttl: 60, data: { host: 'ns.i.test.' } },
  {
    name: 'h.i.test.',
    type: 'HTTPS',
    ttl: 60,
    data: {
      priority: 1,
      target: '.',
      params: {
        mandatory: ['port', 'alpn'],
        alpn: ['h3', 'h2'],
        'no-default-alpn': true,
        port: 8443,
        ipv4hint: ['192.0.2.1', '192.0.2.2'],
        ech: Buffer.from('ech').toString('base64'),
        ipv6hint: ['2001:db8::1'],
        key65000: 'cafe',
      },
    },
  },
  {
    name: 'h.i.test.',
    type: 'CAA',
    ttl: 60,
    data: { flags: 128, tag: 'issue', value: 'ca.example.net; account=1' },
  },
  {
    name: 'h.i.test.',
    type: 'TXT',
    ttl: 60,
    data: { strings: ['v=spf1 -all', 'a "quoted" \\ one'] },
  },
  {
    name: 'h.i.test.',
    type: 'NSEC',
    ttl: 60,
    data: { next: 'i.i.test.', types: ['A', 'MX', 'RRSIG', 'NSEC', 'TYPE1234'] },
  },
  { name: 'h.i.test.', type: 'TYPE65280', ttl: 60, data: { rdata: '00ff10' } },
  {
    name: 'h.i.test.',
    type: 'TLSA',
    ttl: 60,
    data: { usage: 3, selector: 1, matchingType: 1, data: 'ab'.repeat(4) },
  },
  {
    name: 'h.i.test.',
    type: 'SRV',
    ttl: 60,
    data: { priority: 1, weight: 2, port: 443, target: 'h.i.test.' },
  },
  {
    name: 'h.i.test.',
    type: 'DNSKEY',
    ttl: 60,
    data: {
      flags: 257,
      protocol: 3,
      algorithm: 13,
      publicKey: Buffer.alloc(8, 7).toString('base64'),
    },
  },
  { name: 'd.i.test.', type: 'NS', ttl: 60, data: { host: 'ns.elsewhere.' } },
  {
    name: 'd.i.test.',
    type: 'DS',
    ttl: 60,
    data: { keyTag: 4242, algorithm: 13, digestType: 2, digest: 'cd'.repeat(4) },
  },
  {
    name: 'h.i.test.',
    type: 'RRSIG',
    ttl: 60,
    data: {
      typeCovered: 'AAAA',
      algorithm: 13,
      labels: 2,
      originalTtl: 300,
      expiration: 1893456000,
      inception: 1700000000,
      keyTag: 4242,
      signerName: 'i.test.',
      signature: Buffer.alloc(6, 9).toString('base64'),
    },
  },
];

/** What kdig prints for each record above (its own decoding of our bytes). */
const KDIG_TEXT: Record<string, string> = {
  HTTPS:
    '1 . mandatory=alpn,port alpn=h3,h2 no-default-alpn port=8443 ipv4hint=192.0.2.1,192.0.2.2 ech=ZWNo ipv6hint=2001:db8::1 key65000="\\202\\254"',
  CAA: '128 issue "ca.example.net; account=1"',
  TXT: '"v=spf1 -all" "a \\"quoted\\" \\\\ one"',
  NSEC: 'i.i.test. A MX RRSIG NSEC TYPE1234',
  TYPE65280: '\\# 3 00FF10',
  TLSA: '3 1 1 ABABABAB',
  SRV: '1 2 443 h.i.test.',
  DNSKEY: '257 3 13 BwcHBwcHBwc=',
  DS: '4242 13 2 CDCDCDCD',
  RRSIG: 'AAAA 13 2 300 20300101000000 20231114221320 4242 i.test. CQkJCQkJ',
};

const big: RecordInput[] = [
  {
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
  },
  { name: 'big.test.', type: 'NS', ttl: 60, data: { host: 'ns.big.test.' } },
  ...Array.from({ length: 200 }, (_, i): RecordInput => ({
    name: 'many.big.test.',
    type: 'A',
    ttl: 60,
    data: { address: `10.0.${i >> 8}.${i & 0xff}` },
  })),
];

const kdigPresent = await available('kdig');
const digPresent = (await run('dig', ['-v'])).code === 0;
const MISSING = 'kdig is not installed (Debian package knot-dnsutils; .ci/run installs it)';
// In CI the tools are installed by .ci/run, so a missing one is a failure, not a skip.
const skip = !kdigPresent && process.env.CI !== 'true' ? MISSING : false;

describe('interop with kdig and dig over loopback UDP and TCP', { skip }, () => {
  let server: LoopbackServer;
  before(async () => {
    server = await startLoopback(
      new ZoneSet([
        MemoryZone.build('hypermesh.', records(ZONE_INPUT)),
        MemoryZone.build('other.test.', records(OTHER_INPUT)),
        MemoryZone.build('i.test.', records(INTEROP)),
        MemoryZone.build('big.test.', records(big)),
      ]),
    );
  });
  after(async () => {
    await server.close();
  });

  async function kdig(...args: string[]): Promise<string> {
    const result = await withDeadline(
      run('kdig', [`@127.0.0.1`, '-p', String(server.port), '+retry=0', '+timeout=5', ...args]),
      30_000,
      `kdig ${args.join(' ')}`,
    );
    assert.equal(result.code, 0, result.stderr);
    return result.stdout;
  }

  async function kdigJson(
    ...args: string[]
  ): Promise<Record<string, unknown> & { answerRRs?: Array<Record<string, unknown>> }> {
    return JSON.parse(await kdig('+json', ...args)) as Record<string, unknown>;
  }

  it("answers kdig, and kdig's query decodes here", async () => {
    const before = server.queries.length;
    const json = await kdigJson('+bufsize=4096', '+dnssec', 'www.hypermesh.', 'A');
    assert.equal(json.RCODE, 0);
    assert.equal(json.AA, 1);
    assert.equal(json.QNAME, 'www.hypermesh.');
    assert.deepEqual(
      json.answerRRs?.map((rr) => [rr.NAME, rr.TTL, rr.rdataA]),
      [['www.hypermesh.', 300, '192.0.2.1']],
    );
    const sent = decodeMessage(server.queries[before]!);
    assert.deepEqual(sent.questions, [{ name: 'www.hypermesh.', type: 1, class: 1 }]);
    assert.equal(sent.edns?.udpPayloadSize, 4096);
    assert.equal(sent.edns?.dnssecOk, true);
  });

  it('kdig decodes every record type as this codec meant it', async () => {
    for (const [type, text] of Object.entries(KDIG_TEXT)) {
      const out = await kdig('+noall', '+answer', type === 'DS' ? 'd.i.test.' : 'h.i.test.', type);
      const fields = out.trim().split('\t');
      assert.equal(fields.slice(4).join('\t').trim(), text, `${type}: ${out}`);
    }
  });

  it('negative answers, referrals and refusals read as such', async () => {
    const nx = await kdigJson('nope.hypermesh.', 'A');
    assert.equal(nx.RCODE, 3);
    assert.equal((nx.authorityRRs as Array<Record<string, unknown>>)[0]!.TYPEname, 'SOA');
    const referral = await kdigJson('www.sub.hypermesh.', 'A');
    assert.equal(referral.AA, 0);
    assert.equal((referral.authorityRRs as unknown[]).length, 2);
    assert.equal((await kdigJson('example.org.', 'A')).RCODE, 5);
    assert.match(await kdig('+edns=1', 'www.hypermesh.', 'A'), /status: BADVERS/);
  });

  it('truncation: TC over UDP, the full answer when kdig retries over TCP', async () => {
    const udp = await kdigJson('+ignore', 'many.big.test.', 'A');
    assert.equal(udp.TC, 1);
    assert.ok((udp.msgLength as number) <= 1232);
    const retried = await kdigJson('many.big.test.', 'A');
    assert.equal(retried.TC, 0);
    assert.equal(retried.answerRRs?.length, 200);
    const tcp = await kdigJson('+tcp', 'hypermesh.', 'ANY');
    assert.deepEqual(
      tcp.answerRRs?.map((rr) => rr.TYPEname),
      ['NS', 'NS', 'SOA', 'MX'],
    );
  });

  it(
    'dig agrees',
    { skip: digPresent ? false : 'dig is not installed (Debian package bind9-dnsutils)' },
    async () => {
      const result = await withDeadline(
        run('dig', [
          '@127.0.0.1',
          '-p',
          String(server.port),
          '+short',
          '+tries=1',
          '+time=5',
          'alias.hypermesh.',
          'AAAA',
        ]),
        30_000,
        'dig alias.hypermesh AAAA',
      );
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.stdout.trim().split('\n'), ['www.hypermesh.', '2001:db8::1']);
    },
  );
});
