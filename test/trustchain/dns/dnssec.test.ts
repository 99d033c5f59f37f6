import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { p256PrivateKeyFromRaw } from '../../../src/crypto/p256.js';
import {
  DnssecError,
  DnssecErrorCode,
  MemoryZone,
  RR_TYPES,
  Rcode,
  ZoneSet,
  ZoneSigner,
  answer,
  bindTrustAnchor,
  canonicalSortKey,
  compareNamesCanonical,
  decodeMessage,
  dnskeyRdata,
  dsFromDnskey,
  dsText,
  encodeMessage,
  formatDnskey,
  generateSigningKey,
  keyTag,
  nameKey,
  p256Dnskey,
  signRecords,
  signingKeyFromP256,
  verifyRrsig,
} from '../../../src/trustchain/dns/index.js';
import type {
  DnskeyData,
  DnsMessage,
  DnssecSigningKey,
  RecordInput,
  ResourceRecord,
  RrsigData,
} from '../../../src/trustchain/dns/index.js';
import { nameArb } from './arbitraries.js';
import { EDNS, OTHER_INPUT, ZONE_INPUT, query, records } from './fixture.js';

const A = RR_TYPES.A;
const NS = RR_TYPES.NS;
const MX = RR_TYPES.MX;
const TXT = RR_TYPES.TXT;
const DS = RR_TYPES.DS;
const RRSIG = RR_TYPES.RRSIG;
const NSEC = RR_TYPES.NSEC;
const DNSKEY = RR_TYPES.DNSKEY;
const CNAME = RR_TYPES.CNAME;
const SOA = RR_TYPES.SOA;
const ANY = 255;
const DO = { ...EDNS, dnssecOk: true };
const b64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));

/** 2026-01-01T00:00:00Z, the clock most tests start from. */
const T0 = Date.UTC(2026, 0, 1);
const T0_SECONDS = T0 / 1000;

/** The fixture zone plus an insecure delegation (no DS) and a large TXT RRset. */
const SIGNED_INPUT: RecordInput[] = [
  ...ZONE_INPUT,
  { name: 'insecure.hypermesh.', type: 'NS', ttl: 3600, data: { host: 'ns.elsewhere.test.' } },
  ...Array.from({ length: 4 }, (_, i) => ({
    name: 'big.hypermesh.',
    type: 'TXT',
    ttl: 60,
    data: { strings: [`${i}`.repeat(100)] },
  })),
];

interface Fixture {
  readonly key: DnssecSigningKey;
  readonly signer: ZoneSigner;
  readonly zones: ZoneSet;
  readonly clock: { now: number };
}

function signedFixture(input: RecordInput[] = SIGNED_INPUT, key = generateSigningKey()): Fixture {
  const clock = { now: T0 };
  const signer = new ZoneSigner({ apex: 'hypermesh.', key, clock: () => clock.now });
  const zones = new ZoneSet([
    MemoryZone.build('hypermesh.', records(input), { signer }),
    MemoryZone.build('other.test.', records(OTHER_INPUT)),
  ]);
  return { key, signer, zones, clock };
}

function ask(zones: ZoneSet, bytes: Uint8Array, transport: 'udp' | 'tcp' = 'udp'): DnsMessage {
  const response = answer(bytes, zones, { transport });
  assert.ok(response !== null);
  return decodeMessage(response);
}

function rrsigs(section: readonly ResourceRecord[]): Array<ResourceRecord & { data: RrsigData }> {
  return section.filter((rr) => rr.type === 'RRSIG') as Array<ResourceRecord & { data: RrsigData }>;
}

/**
 * Every RRset of the section (grouped by owner and type) has exactly one RRSIG from `dnskey`
 * that verifies at `now`; returns the `owner type` of each RRset, in order.
 */
function checkSigned(
  section: readonly ResourceRecord[],
  dnskey: DnskeyData,
  now = T0_SECONDS,
): string[] {
  const sets = new Map<string, ResourceRecord[]>();
  for (const rr of section) {
    if (rr.type === 'RRSIG') continue;
    const id = `${nameKey(rr.name)}|${rr.type}`;
    sets.set(id, [...(sets.get(id) ?? []), rr]);
  }
  const seen: string[] = [];
  for (const set of sets.values()) {
    const code = RR_TYPES[set[0]!.type as keyof typeof RR_TYPES];
    const sigs = rrsigs(section).filter(
      (sig) => nameKey(sig.name) === nameKey(set[0]!.name) && sig.data.typeCovered === code,
    );
    assert.equal(sigs.length, 1, `one RRSIG for ${set[0]!.name} ${set[0]!.type}`);
    assert.ok(
      verifyRrsig(set, sigs[0]!.data, dnskey, now),
      `RRSIG of ${set[0]!.name} ${set[0]!.type}`,
    );
    assert.equal(sigs[0]!.ttl, set[0]!.ttl, 'an RRSIG has the TTL of its RRset');
    seen.push(`${set[0]!.name} ${set[0]!.type}`);
  }
  return seen;
}

function nsecs(
  section: readonly ResourceRecord[],
): Array<{ owner: string; next: string; types: number[] }> {
  return section
    .filter((rr) => rr.type === 'NSEC')
    .map((rr) => {
      const data = rr.data as { next: string; types: readonly number[] };
      return { owner: rr.name, next: data.next, types: [...data.types] };
    });
}

/** Whether the NSEC `owner -> next` covers `name` (owner < name < next, the last wrapping). */
function covers(nsec: { owner: string; next: string }, name: string): boolean {
  const afterOwner = compareNamesCanonical(nsec.owner, name) < 0;
  const beforeNext = compareNamesCanonical(name, nsec.next) < 0;
  const wraps = compareNamesCanonical(nsec.next, nsec.owner) <= 0;
  return wraps ? afterOwner : afterOwner && beforeNext;
}

describe('DNSSEC keys: known vectors', () => {
  // RFC 6605 §6.1: the P-256 key, its DS, and a signed A RRset.
  const rfcKey: DnskeyData = {
    flags: 257,
    protocol: 3,
    algorithm: 13,
    publicKey: b64(
      'GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==',
    ),
  };
  const rfcA: ResourceRecord = {
    name: 'www.example.net.',
    type: 'A',
    class: 1,
    ttl: 3600,
    data: { address: '192.0.2.1' },
  };
  const rfcSig: RrsigData = {
    typeCovered: A,
    algorithm: 13,
    labels: 3,
    originalTtl: 3600,
    expiration: Date.UTC(2010, 8, 9, 10, 4, 39) / 1000,
    inception: Date.UTC(2010, 7, 12, 10, 4, 39) / 1000,
    keyTag: 55648,
    signerName: 'example.net.',
    signature: b64(
      'qx6wLYqmh+l9oCKTN6qIc+bw6ya+KJ8oMz0YP107epXAyGmt+3SNruPFKG7tZoLBLlUzGGus7ZwmwWep666VCw==',
    ),
  };

  it('RFC 6605 §6.1: key tag 55648, the SHA-256 DS, the DNSKEY from the private key', () => {
    assert.equal(keyTag(rfcKey), 55648);
    const ds = dsFromDnskey('example.net.', rfcKey);
    assert.equal(
      Buffer.from(ds.digest).toString('hex'),
      'b4c8c1fe2e7477127b27115656ad6256f424625bf5c1e2770ce6d6e37df61d17',
    );
    assert.deepEqual([ds.keyTag, ds.algorithm, ds.digestType], [55648, 13, 2]);
    assert.equal(
      dsText('Example.NET', rfcKey),
      'example.net. 3600 IN DS 55648 13 2 B4C8C1FE2E7477127B27115656AD6256F424625BF5C1E2770CE6D6E37DF61D17',
    );
    const key = signingKeyFromP256(
      p256PrivateKeyFromRaw(b64('GU6SnQ/Ou+xC5RumuIUIuJZteXT2z0O/ok1s38Et6mQ=')),
    );
    assert.deepEqual(key.dnskey, { ...rfcKey, publicKey: key.dnskey.publicKey });
    assert.deepEqual(Buffer.from(key.dnskey.publicKey), Buffer.from(rfcKey.publicKey));
    assert.equal(key.keyTag, 55648);
  });

  it('RFC 6605 §6.1: the published RRSIG verifies, inside its window only, and nothing altered does', () => {
    assert.ok(verifyRrsig([rfcA], rfcSig, rfcKey));
    assert.ok(verifyRrsig([{ ...rfcA, name: 'WWW.Example.Net.' }], rfcSig, rfcKey));
    assert.ok(verifyRrsig([rfcA], rfcSig, rfcKey, rfcSig.inception + 10));
    assert.ok(!verifyRrsig([rfcA], rfcSig, rfcKey, rfcSig.expiration + 1));
    assert.ok(!verifyRrsig([rfcA], rfcSig, rfcKey, rfcSig.inception - 1));
    const flipped = Uint8Array.from(rfcSig.signature);
    flipped[10]! ^= 1;
    assert.ok(!verifyRrsig([rfcA], { ...rfcSig, signature: flipped }, rfcKey));
    assert.ok(!verifyRrsig([{ ...rfcA, ttl: 60 }], { ...rfcSig, originalTtl: 60 }, rfcKey));
    assert.ok(!verifyRrsig([{ ...rfcA, data: { address: '192.0.2.2' } }], rfcSig, rfcKey));
    assert.ok(!verifyRrsig([rfcA], { ...rfcSig, labels: 2 }, rfcKey));
    assert.ok(!verifyRrsig([rfcA], rfcSig, { ...rfcKey, flags: 256 }), 'another key tag');
  });

  it('RFC 4034 §5.4: key tag 60485 and the DS digest input (owner || DNSKEY RDATA)', () => {
    const dnskey: DnskeyData = {
      flags: 256,
      protocol: 3,
      algorithm: 5,
      publicKey: b64(
        'AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==',
      ),
    };
    assert.equal(keyTag(dnskey), 60485);
    const sha1 = createHash('sha1')
      .update(Buffer.from(nameKey('dskey.example.com.'), 'latin1'))
      .update(dnskeyRdata(dnskey))
      .digest('hex');
    assert.equal(sha1.toUpperCase(), '2BB183AF5F22588179A53B0A98631FAD1A292118');
  });

  it('SHA-384 DS digests are 48 bytes; other digest types are refused', () => {
    const key = generateSigningKey();
    assert.equal(dsFromDnskey('hypermesh.', key.dnskey, 4).digest.length, 48);
    assert.throws(
      () => dsFromDnskey('hypermesh.', key.dnskey, 1),
      (error: unknown) =>
        error instanceof DnssecError && error.code === DnssecErrorCode.DIGEST_UNSUPPORTED,
    );
  });

  it('refuses keys that are not P-256 and DNSKEY flags without the zone bit', () => {
    const ed = generateKeyPairSync('ed25519').privateKey;
    const invalid = (error: unknown): boolean =>
      error instanceof DnssecError && error.code === DnssecErrorCode.KEY_INVALID;
    assert.throws(() => signingKeyFromP256(ed), invalid);
    assert.throws(() => generateSigningKey(1), invalid);
    assert.throws(() => p256Dnskey(ed), invalid);
    assert.equal(generateSigningKey(256).dnskey.flags, 256);
  });

  it('prints the DNSKEY and a trust anchor for delv', () => {
    const key = generateSigningKey();
    const text = Buffer.from(key.dnskey.publicKey).toString('base64');
    assert.equal(
      formatDnskey('HyperMesh', key.dnskey),
      `hypermesh. 3600 IN DNSKEY 257 3 13 ${text}`,
    );
    assert.equal(
      bindTrustAnchor('hypermesh', key.dnskey),
      `trust-anchors {\n  "hypermesh." static-key 257 3 13 "${text}";\n};\n`,
    );
  });
});

describe('DNSSEC signing primitives', () => {
  it('canonicalSortKey orders names as RFC 4034 §6.1 does', () => {
    fc.assert(
      fc.property(nameArb, nameArb, (a, b) => {
        const x = canonicalSortKey(nameKey(a));
        const y = canonicalSortKey(nameKey(b));
        const byKey = x < y ? -1 : x > y ? 1 : 0;
        assert.equal(byKey, Math.sign(compareNamesCanonical(a, b)));
      }),
    );
    // RFC 4034 §6.1's example order.
    const names = [
      'example.',
      'a.example.',
      'yljkjljk.a.example.',
      'Z.a.example.',
      'zABC.a.EXAMPLE.',
      'z.example.',
      '\\001.z.example.',
      '*.z.example.',
      '\\200.z.example.',
    ];
    const sorted = [...names].sort((a, b) =>
      canonicalSortKey(nameKey(a)) < canonicalSortKey(nameKey(b)) ? -1 : 1,
    );
    assert.deepEqual(sorted, names);
  });

  it('signRecords: a wildcard owner signs with labels minus one; the RRSIG verifies for any name it expands to', () => {
    const key = generateSigningKey();
    const wild: ResourceRecord = {
      name: '*.w.example.',
      type: 'TXT',
      class: 1,
      ttl: 60,
      data: { strings: [Buffer.from('x')] },
    };
    const sig = signRecords([wild], key, 'example.', T0_SECONDS, T0_SECONDS + 100);
    assert.equal(sig.data.labels, 2);
    assert.ok(verifyRrsig([wild], sig.data, key.dnskey));
    assert.ok(verifyRrsig([{ ...wild, name: 'a.b.w.example.' }], sig.data, key.dnskey));
    assert.ok(!verifyRrsig([{ ...wild, name: 'a.b.v.example.' }], sig.data, key.dnskey));
  });

  it('rejects a policy whose refresh margin is not below the validity, and negative windows', () => {
    const key = generateSigningKey();
    for (const policy of [
      { validity: 3600, refreshMargin: 3600 },
      { inceptionOffset: -1 },
      { validity: 1.5 },
    ]) {
      assert.throws(
        () => new ZoneSigner({ apex: 'hypermesh.', key, policy }),
        (error: unknown) =>
          error instanceof DnssecError && error.code === DnssecErrorCode.POLICY_INVALID,
      );
    }
  });
});

describe('DNSSEC zones', () => {
  it('adds the DNSKEY and an NSEC chain in canonical order: delegations keep NS and DS, glue gets none', () => {
    const { key, zones } = signedFixture();
    const zone = zones.get('hypermesh.') as MemoryZone;
    const chain = zone.records.filter((rr) => rr.type === 'NSEC');
    const owners = chain.map((rr) => rr.name);
    const sorted = [...owners].sort(compareNamesCanonical);
    assert.deepEqual(owners.slice().sort(compareNamesCanonical), sorted);
    for (let i = 0; i < sorted.length; i++) {
      const rr = chain.find((r) => r.name === sorted[i])!;
      assert.equal((rr.data as { next: string }).next, sorted[(i + 1) % sorted.length]);
      assert.equal(rr.ttl, 300, 'min(SOA TTL, MINIMUM)');
    }
    assert.equal(sorted[0], 'hypermesh.');
    assert.ok(!owners.includes('ns.sub.hypermesh.'), 'glue below a cut has no NSEC');
    assert.ok(!owners.includes('ent.hypermesh.'), 'empty non-terminals have no NSEC');
    const types = (name: string): readonly number[] =>
      (chain.find((rr) => rr.name === name)!.data as { types: readonly number[] }).types;
    assert.deepEqual(types('sub.hypermesh.'), [NS, DS, RRSIG, NSEC]);
    assert.deepEqual(types('insecure.hypermesh.'), [NS, RRSIG, NSEC]);
    assert.deepEqual(types('hypermesh.'), [NS, SOA, MX, RRSIG, NSEC, DNSKEY]);
    const dnskeys = zone.records.filter((rr) => rr.type === 'DNSKEY');
    assert.deepEqual(
      dnskeys.map((rr) => rr.data),
      [key.dnskey],
    );
  });

  it('publishes extra DNSKEYs given at the apex (a standby key) and does not repeat its own', () => {
    const key = generateSigningKey();
    const standby = generateSigningKey();
    const signer = new ZoneSigner({ apex: 'hypermesh.', key });
    const dnskey = (k: DnssecSigningKey): ResourceRecord => ({
      name: 'hypermesh.',
      type: 'DNSKEY',
      class: 1,
      ttl: 3600,
      data: k.dnskey,
    });
    const zone = MemoryZone.build(
      'hypermesh.',
      [...records(ZONE_INPUT), dnskey(key), dnskey(standby)],
      { signer },
    );
    assert.equal(zone.records.filter((rr) => rr.type === 'DNSKEY').length, 2);
  });

  it('refuses RRSIG and NSEC records, and a signer for another apex', () => {
    const key = generateSigningKey();
    const signer = new ZoneSigner({ apex: 'hypermesh.', key });
    const nsec: ResourceRecord = {
      name: 'www.hypermesh.',
      type: 'NSEC',
      class: 1,
      ttl: 60,
      data: { next: 'hypermesh.', types: [A] },
    };
    assert.throws(
      () => MemoryZone.build('hypermesh.', [...records(ZONE_INPUT), nsec], { signer }),
      (error: unknown) =>
        error instanceof DnssecError && error.code === DnssecErrorCode.GENERATED_TYPE,
    );
    assert.throws(
      () => MemoryZone.build('other.test.', records(OTHER_INPUT), { signer }),
      (error: unknown) =>
        error instanceof DnssecError && error.code === DnssecErrorCode.APEX_MISMATCH,
    );
  });
});

describe('DNSSEC answers (DO set)', () => {
  const f = signedFixture();
  const dnskey = f.key.dnskey;

  it('signs a positive answer: labels, original TTL, window now-1h..now+7d, key tag, signer', () => {
    const m = ask(f.zones, query('www.hypermesh.', A, { edns: DO }));
    assert.equal(m.rcode, Rcode.NOERROR);
    assert.deepEqual(checkSigned(m.answers, dnskey), ['www.hypermesh. A']);
    const sig = rrsigs(m.answers)[0]!.data;
    assert.deepEqual(
      [sig.typeCovered, sig.algorithm, sig.labels, sig.originalTtl, sig.keyTag, sig.signerName],
      [A, 13, 2, 300, f.key.keyTag, 'hypermesh.'],
    );
    assert.equal(sig.inception, T0_SECONDS - 3600);
    assert.equal(sig.expiration, T0_SECONDS + 7 * 86400);
    assert.ok(m.edns?.dnssecOk, 'DO echoed');
  });

  it('without DO the answer is the unsigned zone’s, byte for byte', () => {
    const unsigned = new ZoneSet([MemoryZone.build('hypermesh.', records(SIGNED_INPUT))]);
    for (const [name, type] of [
      ['www.hypermesh.', A],
      ['nope.hypermesh.', A],
      ['x.wild.hypermesh.', TXT],
      ['foo.sub.hypermesh.', A],
    ] as const) {
      for (const edns of [EDNS, false] as const) {
        const bytes = query(name, type, { edns });
        assert.deepEqual(
          answer(bytes, f.zones, { transport: 'udp' }),
          answer(bytes, unsigned, { transport: 'udp' }),
          `${name} ${type}`,
        );
      }
    }
    // DO on one query does not leak into the next one without EDNS.
    ask(f.zones, query('www.hypermesh.', A, { edns: DO }));
    assert.equal(
      rrsigs(ask(f.zones, query('www.hypermesh.', A, { edns: false })).answers).length,
      0,
    );
  });

  it('NXDOMAIN: signed SOA, the NSEC covering the name and the one covering the wildcard', () => {
    const m = ask(f.zones, query('nope.hypermesh.', A, { edns: DO }));
    assert.equal(m.rcode, Rcode.NXDOMAIN);
    assert.equal(m.answers.length, 0);
    const signed = checkSigned(m.authority, dnskey);
    assert.ok(signed.includes('hypermesh. SOA'));
    const proofs = nsecs(m.authority);
    assert.ok(
      proofs.some((n) => covers(n, 'nope.hypermesh.')),
      'name covered',
    );
    assert.ok(
      proofs.some((n) => covers(n, '*.hypermesh.')),
      'wildcard covered',
    );
    const soaSig = rrsigs(m.authority).find((rr) => rr.data.typeCovered === SOA)!;
    assert.equal(soaSig.ttl, 300, 'the negative TTL');
    assert.equal(soaSig.data.originalTtl, 3600, 'the SOA’s own TTL was signed');
  });

  it('NODATA: the NSEC at the name shows neither the type nor CNAME', () => {
    const m = ask(f.zones, query('www.hypermesh.', TXT, { edns: DO }));
    assert.equal(m.rcode, Rcode.NOERROR);
    checkSigned(m.authority, dnskey);
    const [proof, ...rest] = nsecs(m.authority);
    assert.equal(rest.length, 0);
    assert.equal(proof!.owner, 'www.hypermesh.');
    assert.ok(!proof!.types.includes(TXT) && !proof!.types.includes(CNAME));
  });

  it('NODATA at an empty non-terminal: the NSEC covering it, whose next name is below it', () => {
    const m = ask(f.zones, query('ent.hypermesh.', A, { edns: DO }));
    assert.equal(m.rcode, Rcode.NOERROR);
    checkSigned(m.authority, dnskey);
    const [proof] = nsecs(m.authority);
    assert.ok(covers(proof!, 'ent.hypermesh.'));
    assert.equal(proof!.next, 'a.b.ent.hypermesh.');
  });

  it('a wildcard answer: the RRSIG has the wildcard’s labels, and the NSEC proves the name absent', () => {
    const m = ask(f.zones, query('x.y.wild.hypermesh.', A, { edns: DO }));
    assert.equal(m.rcode, Rcode.NOERROR);
    checkSigned(m.answers, dnskey);
    const sig = rrsigs(m.answers)[0]!;
    assert.equal(sig.name, 'x.y.wild.hypermesh.');
    assert.equal(sig.data.labels, 2, '*.wild.hypermesh. without the *');
    checkSigned(m.authority, dnskey);
    const proofs = nsecs(m.authority);
    assert.equal(proofs.length, 1);
    assert.ok(covers(proofs[0]!, 'x.y.wild.hypermesh.'));
  });

  it('wildcard NODATA: the NSEC covering the name and the NSEC at the wildcard', () => {
    const m = ask(f.zones, query('x.wild.hypermesh.', MX, { edns: DO }));
    assert.equal(m.rcode, Rcode.NOERROR);
    assert.equal(m.answers.length, 0);
    checkSigned(m.authority, dnskey);
    const proofs = nsecs(m.authority);
    assert.ok(proofs.some((n) => covers(n, 'x.wild.hypermesh.')));
    const atWildcard = proofs.find((n) => n.owner === '*.wild.hypermesh.');
    assert.ok(atWildcard !== undefined && !atWildcard.types.includes(MX));
  });

  it('CNAME chains: every RRset signed; a wildcard CNAME brings its proof; a dangling one ends in NXDOMAIN proofs', () => {
    const alias = ask(f.zones, query('alias.hypermesh.', A, { edns: DO }));
    assert.deepEqual(checkSigned(alias.answers, dnskey), [
      'alias.hypermesh. CNAME',
      'www.hypermesh. A',
    ]);
    const wild = ask(f.zones, query('q.cn.hypermesh.', A, { edns: DO }));
    assert.deepEqual(checkSigned(wild.answers, dnskey), [
      'q.cn.hypermesh. CNAME',
      'www.hypermesh. A',
    ]);
    assert.ok(nsecs(wild.authority).some((n) => covers(n, 'q.cn.hypermesh.')));
    const dangling = ask(f.zones, query('dangling.hypermesh.', A, { edns: DO }));
    assert.equal(dangling.rcode, Rcode.NXDOMAIN);
    checkSigned(dangling.answers, dnskey);
    checkSigned(dangling.authority, dnskey);
    assert.ok(nsecs(dangling.authority).some((n) => covers(n, 'gone.hypermesh.')));
    // Into an unsigned zone: what the unsigned zone holds goes without signatures.
    const other = ask(f.zones, query('to-other.hypermesh.', A, { edns: DO }));
    assert.deepEqual(
      other.answers.map((rr) => `${rr.name} ${rr.type}`),
      ['to-other.hypermesh. CNAME', 'to-other.hypermesh. RRSIG', 'www.other.test. A'],
    );
  });

  it('referrals: unsigned NS and glue, with the signed DS or the NSEC showing there is none', () => {
    const secure = ask(f.zones, query('host.sub.hypermesh.', A, { edns: DO }));
    assert.ok(!secure.authoritative);
    assert.deepEqual(
      secure.authority.map((rr) => `${rr.name} ${rr.type}`),
      ['sub.hypermesh. NS', 'sub.hypermesh. NS', 'sub.hypermesh. DS', 'sub.hypermesh. RRSIG'],
    );
    checkSigned(
      secure.authority.filter((rr) => rr.type !== 'NS'),
      dnskey,
    );
    assert.deepEqual(
      secure.additional.map((rr) => `${rr.name} ${rr.type}`),
      ['ns.sub.hypermesh. A'],
    );
    const insecure = ask(f.zones, query('host.insecure.hypermesh.', A, { edns: DO }));
    const proofs = nsecs(insecure.authority);
    assert.equal(proofs.length, 1);
    assert.equal(proofs[0]!.owner, 'insecure.hypermesh.');
    assert.ok(!proofs[0]!.types.includes(DS));
    checkSigned(
      insecure.authority.filter((rr) => rr.type !== 'NS'),
      dnskey,
    );
    const ds = ask(f.zones, query('sub.hypermesh.', DS, { edns: DO }));
    assert.ok(ds.authoritative);
    assert.deepEqual(checkSigned(ds.answers, dnskey), ['sub.hypermesh. DS']);
  });

  it('DNSKEY, ANY over TCP and QTYPE RRSIG', () => {
    const keys = ask(f.zones, query('hypermesh.', DNSKEY, { edns: DO }));
    assert.deepEqual(checkSigned(keys.answers, dnskey), ['hypermesh. DNSKEY']);
    const any = ask(f.zones, query('www.hypermesh.', ANY, { edns: DO }), 'tcp');
    assert.deepEqual(checkSigned(any.answers, dnskey), [
      'www.hypermesh. A',
      'www.hypermesh. AAAA',
      'www.hypermesh. NSEC',
    ]);
    const sigs = ask(f.zones, query('www.hypermesh.', RRSIG, { edns: false }));
    assert.deepEqual(
      sigs.answers.map((rr) => `${rr.type} ${(rr.data as RrsigData).typeCovered}`),
      [`RRSIG ${A}`, `RRSIG ${RR_TYPES.AAAA}`, `RRSIG ${NSEC}`],
    );
  });

  it('keeps RRSIGs with their RRset under truncation: all or TC', () => {
    const small = { ...DO, udpPayloadSize: 512 };
    const udp = ask(f.zones, query('big.hypermesh.', TXT, { edns: small }));
    assert.ok(udp.truncated);
    assert.equal(udp.answers.length, 0);
    const unsigned = ask(
      f.zones,
      query('big.hypermesh.', TXT, { edns: { ...small, dnssecOk: false } }),
    );
    assert.ok(!unsigned.truncated, 'the RRset alone fits');
    const tcp = ask(f.zones, query('big.hypermesh.', TXT, { edns: DO }), 'tcp');
    assert.ok(!tcp.truncated);
    assert.deepEqual(checkSigned(tcp.answers, dnskey), ['big.hypermesh. TXT']);
  });

  it('leaves AD clear and copies CD (RFC 4035 §3.1.6, §3.2.2)', () => {
    const bytes = encodeMessage({
      id: 7,
      recursionDesired: false,
      authenticData: true,
      checkingDisabled: true,
      questions: [{ name: 'www.hypermesh.', type: A, class: 1 }],
      edns: DO,
    });
    const m = ask(f.zones, bytes);
    assert.ok(!m.authenticData);
    assert.ok(m.checkingDisabled);
  });

  it('answers a DO query for an unsigned zone without signatures', () => {
    const m = ask(f.zones, query('www.other.test.', A, { edns: DO }));
    assert.deepEqual(rrsigs(m.answers), []);
    assert.equal(m.answers.length, 1);
  });
});

describe('DNSSEC signature cache', () => {
  it('signs an RRset once and reuses the signature until the refresh margin', () => {
    const f = signedFixture();
    const before = f.signer.signatureCount;
    const first = ask(f.zones, query('www.hypermesh.', A, { edns: DO }));
    assert.equal(f.signer.signatureCount, before + 1);
    for (let i = 0; i < 5; i++) ask(f.zones, query('WWW.hypermesh.', A, { edns: DO, id: i }));
    f.clock.now = T0 + 3 * 86400 * 1000; // 4 days of validity left: still above the 3-day margin
    const later = ask(f.zones, query('www.hypermesh.', A, { edns: DO }));
    assert.equal(f.signer.signatureCount, before + 1);
    assert.deepEqual(rrsigs(later.answers), rrsigs(first.answers));
    f.clock.now = T0 + 4 * 86400 * 1000 + 1000; // inside the margin: signed again
    const renewed = ask(f.zones, query('www.hypermesh.', A, { edns: DO }));
    assert.equal(f.signer.signatureCount, before + 2);
    const sig = rrsigs(renewed.answers)[0]!.data;
    assert.equal(sig.inception, T0_SECONDS + 4 * 86400 + 1 - 3600);
    checkSigned(renewed.answers, f.key.dnskey, T0_SECONDS + 4 * 86400 + 1);
    f.clock.now = T0 - 2 * 3600 * 1000; // the clock went back past the inception
    ask(f.zones, query('www.hypermesh.', A, { edns: DO }));
    assert.equal(f.signer.signatureCount, before + 3);
  });

  it('the negative SOA shares the SOA’s signature', () => {
    const f = signedFixture();
    ask(f.zones, query('hypermesh.', SOA, { edns: DO }));
    const count = f.signer.signatureCount;
    const m = ask(f.zones, query('www.hypermesh.', TXT, { edns: DO }));
    assert.equal(f.signer.signatureCount, count + 1, 'only the NSEC was signed');
    checkSigned(m.authority, f.key.dnskey);
  });

  it('a rebuilt zone keeps the signatures of unchanged RRsets', () => {
    const key = generateSigningKey();
    const clock = { now: T0 };
    const signer = new ZoneSigner({ apex: 'hypermesh.', key, clock: () => clock.now });
    const zones = new ZoneSet([MemoryZone.build('hypermesh.', records(SIGNED_INPUT), { signer })]);
    ask(zones, query('www.hypermesh.', A, { edns: DO }));
    ask(zones, query('mail.hypermesh.', A, { edns: DO }));
    const count = signer.signatureCount;
    const changed = SIGNED_INPUT.map((input) =>
      input.name === 'mail.hypermesh.' ? { ...input, data: { address: '192.0.2.26' } } : input,
    );
    zones.set(MemoryZone.build('hypermesh.', records(changed), { signer }));
    const www = ask(zones, query('www.hypermesh.', A, { edns: DO }));
    assert.equal(signer.signatureCount, count, 'www A carried over');
    const mail = ask(zones, query('mail.hypermesh.', A, { edns: DO }));
    assert.equal(signer.signatureCount, count + 1, 'mail A changed, signed again');
    checkSigned(www.answers, key.dnskey);
    checkSigned(mail.answers, key.dnskey);
  });
});
