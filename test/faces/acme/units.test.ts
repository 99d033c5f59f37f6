import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DnsServerTxtResolver } from '../../../src/faces/acme/dns-resolver.js';
import { AcmeError, AcmeErrorCode } from '../../../src/faces/acme/errors.js';
import { checkOrderIdentifiers } from '../../../src/faces/acme/identifiers.js';
import { decodeBase64Url, jwkThumbprint, parseJwk, parseJws } from '../../../src/faces/acme/jws.js';
import { NonceStore } from '../../../src/faces/acme/nonces.js';
import { AcmeProblem } from '../../../src/faces/acme/problems.js';
import { routeOf } from '../../../src/faces/acme/routes.js';
import { dns01TxtValue, reverseName } from '../../../src/faces/acme/validation.js';
import { startDnsServers } from '../../../src/faces/dns/index.js';
import {
  MemoryZone,
  ZoneSet,
  decodeMessage,
  encodeMessage,
  parseRecord,
  type RecordInput,
} from '../../../src/trustchain/dns/index.js';

const isProblem = (type: string) => (error: unknown) =>
  error instanceof AcmeProblem && error.code === type;

describe('ACME pure parts', () => {
  it('computes RFC 7638 and RFC 8037 JWK thumbprints (known answers)', () => {
    const rsa = {
      kty: 'RSA',
      n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
      e: 'AQAB',
    };
    assert.equal(jwkThumbprint(rsa), 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
    assert.equal(
      parseJwk({ ...rsa, alg: 'RS256' }).thumbprint,
      'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs',
    );
    const ed = { crv: 'Ed25519', kty: 'OKP', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };
    assert.equal(parseJwk(ed).thumbprint, 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k');
  });

  it('refuses keys it cannot use', () => {
    assert.throws(
      () => parseJwk({ kty: 'EC', crv: 'P-384', x: 'AA', y: 'AA' }),
      isProblem('badPublicKey'),
    );
    assert.throws(() => parseJwk({ kty: 'oct', k: 'AAAA' }), isProblem('badPublicKey'));
    assert.throws(() => parseJwk({ kty: 'XYZ' }), isProblem('badSignatureAlgorithm'));
    const point = Buffer.alloc(32, 1).toString('base64url');
    assert.throws(
      () => parseJwk({ kty: 'EC', crv: 'P-256', x: point, y: point }),
      isProblem('badPublicKey'),
    );
    assert.throws(() => parseJwk({ kty: 'RSA', n: 'AAEC', e: 'AQAB' }), isProblem('badPublicKey'));
    assert.throws(() => parseJwk('a string'), isProblem('malformed'));
    // The identity point (01 00…00): OpenSSL verifies R = identity, s = 0 for any message.
    const identity = new Uint8Array(32);
    identity[0] = 1;
    assert.throws(
      () =>
        parseJwk({ kty: 'OKP', crv: 'Ed25519', x: Buffer.from(identity).toString('base64url') }),
      isProblem('badPublicKey'),
    );
  });

  it('decodes base64url strictly', () => {
    assert.deepEqual([...decodeBase64Url('AQID', 'x')], [1, 2, 3]);
    for (const bad of ['AQID=', 'AQ+D', 'A', 'AR', 'AQ I']) {
      assert.throws(() => decodeBase64Url(bad, 'x'), isProblem('malformed'), bad);
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const text = Buffer.from(bytes).toString('base64url');
        assert.deepEqual(new Uint8Array(decodeBase64Url(text, 'x')), bytes);
      }),
    );
  });

  it('parses only flattened JWS with jwk xor kid and a supported alg', () => {
    const enc = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const body = (header: unknown) =>
      JSON.stringify({ protected: enc(header), payload: '', signature: 'AAAA' });
    assert.equal(parseJws(body({ alg: 'ES256', nonce: 'n', url: 'u', kid: 'k' })).header.kid, 'k');
    assert.throws(
      () => parseJws(body({ alg: 'ES256', nonce: 'n', url: 'u' })),
      isProblem('malformed'),
    );
    assert.throws(
      () => parseJws(body({ alg: 'ES256', url: 'u', kid: 'k', jwk: {} })),
      isProblem('malformed'),
    );
    assert.throws(
      () => parseJws(body({ alg: 'HS256', url: 'u', kid: 'k' })),
      isProblem('badSignatureAlgorithm'),
    );
    assert.throws(
      () => parseJws(body({ alg: 'ES256', url: 'u', kid: 'k', crit: ['b64'] })),
      isProblem('malformed'),
    );
    fc.assert(
      fc.property(fc.string(), (text) => {
        try {
          parseJws(text);
        } catch (error) {
          assert.ok(error instanceof AcmeProblem, String(error));
        }
      }),
    );
  });

  it('routes exactly the server paths', () => {
    assert.deepEqual(routeOf('/directory'), { kind: 'directory' });
    assert.deepEqual(routeOf('/acme/acct/abc_-1/orders'), { kind: 'accountOrders', id: 'abc_-1' });
    assert.deepEqual(routeOf('/acme/acct/abc_-1/orders?cursor=o-1_x'), {
      kind: 'accountOrders',
      id: 'abc_-1',
      cursor: 'o-1_x',
    });
    for (const target of [
      '/acme/acct/a/orders?cursor=',
      '/acme/acct/a/orders?cursor=a.b',
      '/acme/acct/a/orders?after=x',
      '/acme/acct/a?cursor=x',
      '/acme/order/a?cursor=x',
    ]) {
      assert.equal(routeOf(target), undefined, target);
    }
    assert.deepEqual(routeOf('/acme/order/x/finalize'), { kind: 'finalize', id: 'x' });
    assert.deepEqual(routeOf('/acme/cert/x'), { kind: 'certificate', id: 'x' });
    for (const path of [
      '/__proto__',
      '/constructor',
      '/directory?x=1',
      '/acme/authz/x/finalize',
      '/acme/acct/a.b',
      '/acme/order/x/orders',
    ]) {
      assert.equal(routeOf(path), undefined, path);
    }
  });

  it('checks order identifiers: wildcards, IPs, policy zones', () => {
    const targets = checkOrderIdentifiers(
      [
        { type: 'dns', value: '*.a.example.test' },
        { type: 'dns', value: 'a.example.test' },
        { type: 'ip', value: '2001:db8::1' },
      ],
      {},
    );
    assert.deepEqual(
      targets.map((t) => [t.identifier.value, t.wildcard, t.challenges]),
      [
        ['a.example.test', true, ['dns-01']],
        ['a.example.test', false, ['http-01', 'dns-01', 'tls-alpn-01']],
        ['2001:db8::1', false, ['http-01', 'tls-alpn-01']],
      ],
    );
    const policy = { dnsZones: ['example.test'], ipRanges: ['192.0.2.0/24'], wildcards: false };
    assert.equal(
      checkOrderIdentifiers([{ type: 'dns', value: 'x.example.test' }], policy).length,
      1,
    );
    for (const identifier of [
      { type: 'dns' as const, value: 'badexample.test' },
      { type: 'dns' as const, value: '*.b.example.test' },
      { type: 'ip' as const, value: '198.51.100.1' },
      { type: 'ip' as const, value: '2001:DB8::1' },
    ]) {
      assert.throws(
        () => checkOrderIdentifiers([identifier], policy),
        isProblem('rejectedIdentifier'),
        identifier.value,
      );
    }
    const many = Array.from({ length: 101 }, (_, i) => ({
      type: 'dns' as const,
      value: `n${i}.example.test`,
    }));
    assert.throws(() => checkOrderIdentifiers(many, {}), isProblem('rejectedIdentifier'));
  });

  it('names addresses for tls-alpn-01 SNI by their reverse mapping (RFC 8738 §6, RFC 3596 §2.5)', () => {
    assert.equal(reverseName('192.0.2.7'), '7.2.0.192.in-addr.arpa');
    assert.equal(
      reverseName('4321:0:1:2:3:4:567:89ab'),
      'b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa',
    );
  });

  it('spends nonces once and forgets old ones', () => {
    let now = 0;
    const nonces = new NonceStore(4, 1_000, () => now);
    const first = nonces.issue();
    assert.equal(nonces.consume(first), true);
    assert.equal(nonces.consume(first), false);
    const aged = nonces.issue();
    now = 1_001;
    assert.equal(nonces.consume(aged), false);
    const all = Array.from({ length: 10 }, () => nonces.issue());
    assert.ok(nonces.size <= 4);
    assert.equal(nonces.consume(all[0] as string), false);
    assert.equal(nonces.consume(all[9] as string), true);
  });
});

describe('dns-01 TXT lookups against a DNS server', () => {
  const ZONE = 'acme.test.';
  const soa: RecordInput = {
    name: ZONE,
    type: 'SOA',
    ttl: 60,
    data: {
      mname: `ns.${ZONE}`,
      rname: `hostmaster.${ZONE}`,
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: 60,
    },
  };
  const records: RecordInput[] = [
    soa,
    { name: ZONE, type: 'NS', ttl: 60, data: { host: `ns.${ZONE}` } },
    {
      name: `_acme-challenge.direct.${ZONE}`,
      type: 'TXT',
      ttl: 60,
      data: { strings: ['abc', 'def'] },
    },
    {
      name: `_acme-challenge.alias.${ZONE}`,
      type: 'CNAME',
      ttl: 60,
      data: { target: `_acme-challenge.target.${ZONE}` },
    },
    {
      name: `_acme-challenge.target.${ZONE}`,
      type: 'TXT',
      ttl: 60,
      data: { strings: ['via-cname'] },
    },
    ...Array.from({ length: 40 }, (_, i): RecordInput => ({
      name: `_acme-challenge.big.${ZONE}`,
      type: 'TXT',
      ttl: 60,
      data: { strings: [`${'x'.repeat(60)}-${i}`] },
    })),
  ];

  it('reads TXT values, follows CNAMEs, retries truncated answers over TCP, maps NXDOMAIN to none', async () => {
    const servers = await startDnsServers({
      zones: new ZoneSet([
        MemoryZone.build(
          ZONE,
          records.map((r) => parseRecord(r)),
        ),
      ]),
      udp: [{ host: '127.0.0.1', port: 0 }],
      tcp: [{ host: '127.0.0.1', port: 0 }],
    });
    try {
      const resolver = new DnsServerTxtResolver({
        host: '127.0.0.1',
        port: servers.udp[0]?.port as number,
      });
      assert.deepEqual(await resolver.lookupTxt('_acme-challenge.direct.acme.test'), ['abcdef']);
      assert.deepEqual(await resolver.lookupTxt('_acme-challenge.alias.acme.test'), ['via-cname']);
      const big = await resolver.lookupTxt('_acme-challenge.big.acme.test');
      assert.equal(big.length, 40, 'the whole RRset, through TCP');
      assert.deepEqual(await resolver.lookupTxt('_acme-challenge.absent.acme.test'), []);
      await assert.rejects(resolver.lookupTxt('_acme-challenge.other.zone'), (error: unknown) => {
        return error instanceof AcmeError && error.code === AcmeErrorCode.DNS_LOOKUP_FAILED;
      });
    } finally {
      await servers.close();
    }
  });

  it('refuses a response that does not answer its query, and times out on silence', async () => {
    const socket = dgram.createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    let mode: 'wrong-id' | 'silent' = 'wrong-id';
    socket.on('message', (message, peer) => {
      if (mode === 'silent') return;
      const query = decodeMessage(message);
      const reply = encodeMessage({
        id: (query.id + 1) & 0xffff,
        response: true,
        questions: query.questions,
      });
      socket.send(reply, peer.port, peer.address);
    });
    try {
      const resolver = new DnsServerTxtResolver({
        host: '127.0.0.1',
        port: socket.address().port,
        timeoutMs: 300,
      });
      await assert.rejects(
        resolver.lookupTxt('x.acme.test'),
        (e: unknown) => e instanceof AcmeError && e.detail.reason === 'mismatch',
      );
      mode = 'silent';
      await assert.rejects(
        resolver.lookupTxt('x.acme.test'),
        (e: unknown) => e instanceof AcmeError && e.detail.reason === 'timeout',
      );
    } finally {
      socket.close();
    }
    assert.equal(dns01TxtValue('token.thumb').length, 43);
  });
});
