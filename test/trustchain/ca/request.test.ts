import assert from 'node:assert/strict';
import fc from 'fast-check';
import { before, describe, it } from 'node:test';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { CborErrorCode, decodeCanonical, encodeCanonical } from '../../../src/codec/cbor.js';
import { isHyperMeshError } from '../../../src/codec/error.js';
import { FALCON1024_PUBLIC_KEY_BYTES } from '../../../src/crypto/falcon.js';
import { CaError, CaErrorCode } from '../../../src/trustchain/ca/errors.js';
import {
  checkDnsName,
  checkIpAddress,
  checkSpiffeId,
  ipInRange,
} from '../../../src/trustchain/ca/names.js';
import {
  rateLimitExhausted,
  rateLimitStep,
  rateWindowStart,
} from '../../../src/trustchain/ca/rate-limit.js';
import {
  checkRequest,
  decodeCertificateRequest,
  decodeCertificateRequestCached,
  encodeCertificateRequest,
  parseCertificateRequest,
  type Refusal,
  type Requester,
} from '../../../src/trustchain/ca/request.js';
import {
  CLUSTER,
  EVERYTHING,
  createTestCa,
  generateKey,
  isCaError,
  nodeRequest,
  serviceRequest,
  type TestCa,
} from './fixtures.js';

describe('name syntax', () => {
  it('accepts LDH names, valid A-labels and left-most wildcards', () => {
    for (const name of [
      'example.com',
      'a-b.example.com',
      '*.example.com',
      'xn--bcher-kva.example',
      'xn--nxasmq6b.com',
      'a.b.c.d.e.example',
      '1.example.com',
    ]) {
      assert.doesNotThrow(() => checkDnsName(name), name);
    }
  });

  const bad: [string, string][] = [
    ['', 'empty'],
    ['Example.com', 'not_lowercase_ascii'],
    ['bücher.example', 'not_lowercase_ascii'],
    ['example.com.', 'trailing_dot'],
    ['a..example.com', 'label_length'],
    [`${'a'.repeat(64)}.example.com`, 'label_length'],
    [`${'a.'.repeat(127)}com`, 'too_long'],
    ['-a.example.com', 'label_syntax'],
    ['a_b.example.com', 'not_lowercase_ascii'],
    ['ab--c.example.com', 'reserved_label'],
    ['xn--abc.example.com', 'invalid_a_label'],
    ['xn--zz.example', 'invalid_a_label'],
    ['a.*.example.com', 'wildcard_position'],
    ['*a.example.com', 'wildcard_position'],
    ['**.example.com', 'wildcard_position'],
    ['*.com', 'wildcard_too_broad'],
    ['192.0.2.1', 'numeric_top_label'],
  ];
  for (const [name, reason] of bad) {
    it(`refuses ${JSON.stringify(name)} (${reason})`, () => {
      assert.throws(() => checkDnsName(name), isCaError(CaErrorCode.INVALID_NAME, reason));
    });
  }

  it('IPv6 forms of an IPv4 address are refused: mapped, compatible, Teredo', () => {
    // ::ffff:10.0.0.1, ::10.0.0.1, :: and a Teredo address (RFC 4380 §4 example).
    for (const ip of [
      '::ffff:a00:1',
      '::ffff:7f00:1',
      '::a00:1',
      '::',
      '2001:0:4136:e378:8000:63bf:3fff:fdd2',
    ]) {
      assert.throws(
        () => checkIpAddress(ip),
        isCaError(CaErrorCode.INVALID_NAME, 'embedded_ipv4'),
        ip,
      );
    }
    // Neighbours that are no such form stay acceptable.
    for (const ip of [
      '::1',
      '::1:0:0:1',
      '::fffe:a00:1',
      '2001:1::1',
      '2001:db8::1',
      '64:ff9b::a00:1',
    ]) {
      assert.doesNotThrow(() => checkIpAddress(ip), ip);
    }
    // A request naming one is refused before any grant is looked at.
    const request = {
      profile: 'service',
      csr: createCsr({ privateKey: generateKey('p256') }),
      ipAddresses: ['::ffff:a00:1'],
    };
    assert.throws(
      () => parseCertificateRequest(request),
      isCaError(CaErrorCode.INVALID_NAME, 'embedded_ipv4'),
    );
  });

  it('IP addresses must be in canonical form', () => {
    for (const ip of ['192.0.2.1', '2001:db8::1', '::1', 'fe80::1:2'])
      assert.doesNotThrow(() => checkIpAddress(ip), ip);
    for (const ip of [
      '192.0.2.01',
      '2001:DB8::1',
      '2001:db8:0:0:0:0:0:1',
      '::ffff:192.0.2.1',
      'fe80::1%eth0',
      'example.com',
      '',
    ]) {
      assert.throws(() => checkIpAddress(ip), isCaError(CaErrorCode.INVALID_NAME), ip);
    }
    assert.equal(ipInRange('192.0.2.77', '192.0.2.0/24'), true);
    assert.equal(ipInRange('192.0.3.1', '192.0.2.0/24'), false);
    assert.equal(ipInRange('2001:db8::5', '2001:db8::/32'), true);
    assert.equal(ipInRange('2001:db8::5', '192.0.2.0/24'), false);
  });

  it('URIs must be SPIFFE IDs', () => {
    assert.equal(checkSpiffeId('spiffe://c.example/ns/a/sa/b'), 'c.example');
    for (const uri of [
      'https://c/x',
      'spiffe://c',
      'spiffe://c/',
      'spiffe://c/a//b',
      'spiffe://c/a/./b',
      'spiffe://C/a',
      'spiffe://c/a?q=1',
      'spiffe://c:8080/a',
    ]) {
      assert.throws(
        () => checkSpiffeId(uri),
        isCaError(CaErrorCode.INVALID_NAME, 'not_spiffe_id'),
        uri,
      );
    }
  });
});

describe('requests', () => {
  let ca: TestCa;
  before(async () => {
    ca = await createTestCa(['val-a']);
  });

  it('round-trips through its canonical CBOR form', async () => {
    for (const request of [
      serviceRequest(['a.example.com', '*.example.com'], 'rsa', {
        ipAddresses: ['192.0.2.5'],
        lifetimeSeconds: 7200,
      }),
      await nodeRequest(ca),
    ]) {
      const encoded = encodeCertificateRequest(request);
      const decoded = decodeCertificateRequest(encoded, { falcon: ca.falcon });
      assert.deepEqual(encodeCertificateRequest(decoded), encoded);
      assert.deepEqual(decoded.dnsNames, request.dnsNames);
      assert.equal(decoded.lifetimeSeconds, request.lifetimeSeconds);
    }
  });

  it('the cached decoder gives the same answer as the decoder, once per bytes and backend, frozen', async () => {
    const request = await nodeRequest(ca);
    const encoded = encodeCertificateRequest(request);
    const first = decodeCertificateRequestCached(encoded, { falcon: ca.falcon });
    assert.deepEqual(first, decodeCertificateRequest(encoded, { falcon: ca.falcon }));
    assert.equal(decodeCertificateRequestCached(encoded.slice(), { falcon: ca.falcon }), first);
    assert.ok(Object.isFrozen(first) && Object.isFrozen(first.dnsNames));
    // Another backend is another cache: a backend that refuses every proof refuses it there.
    const refusing = { ...ca.falcon, verify: () => false };
    assert.throws(
      () => decodeCertificateRequestCached(encoded, { falcon: refusing }),
      isCaError(CaErrorCode.INVALID_FALCON_PROOF),
    );
    // Refusals are not kept: the same bytes are refused again.
    const broken = Uint8Array.of(0xa0);
    for (let i = 0; i < 2; i++) {
      assert.throws(
        () => decodeCertificateRequestCached(broken),
        isCaError(CaErrorCode.INVALID_REQUEST, 'encoding'),
      );
    }
  });

  it('refuses unknown fields, wrong types and duplicates as INVALID_REQUEST', () => {
    const csr = createCsr({ privateKey: generateKey('p256') });
    const cases: unknown[] = [
      { profile: 'service', csr, dnsNames: ['a.example.com'], extra: 1 },
      { profile: 'admin', csr },
      { profile: 'service', csr, dnsNames: 'a.example.com' },
      { profile: 'service', csr, lifetimeSeconds: 1.5 },
      { profile: 'service', csr, dnsNames: ['a.example.com', 'a.example.com'] },
      null,
    ];
    for (const input of cases)
      assert.throws(
        () => parseCertificateRequest(input),
        isCaError(CaErrorCode.INVALID_REQUEST),
        JSON.stringify(input),
      );
    assert.throws(
      () => decodeCertificateRequest(Uint8Array.of(0xa0)),
      isCaError(CaErrorCode.INVALID_REQUEST, 'encoding'),
    );
  });

  it('the decoder reads at most the 121 data items of the largest request', () => {
    const names = (count: number) => Array.from({ length: count }, (_, i) => `n${i}.example.com`);
    const wire = decodeCanonical(
      encodeCertificateRequest(serviceRequest(names(100), 'p256', { lifetimeSeconds: 7200 })),
    ) as Record<string, unknown>;
    // The map, 8 keys and values, 100 names and the 2 keys and values of `falcon`: 121 items,
    // decoded and then refused for the FALCON proof, not for its encoding.
    const withFalcon = (dns: string[]) =>
      encodeCanonical({
        ...wire,
        dns,
        falcon: { pk: new Uint8Array(FALCON1024_PUBLIC_KEY_BYTES), pop: Uint8Array.of(1) },
      });
    assert.throws(
      () => decodeCertificateRequest(withFalcon(names(100))),
      (error: unknown) => error instanceof CaError && error.detail.reason !== 'encoding',
    );
    // One name more is refused by the decoder's budget, before the list is built.
    assert.throws(
      () => decodeCertificateRequest(withFalcon(names(101))),
      (error: unknown) =>
        isCaError(CaErrorCode.INVALID_REQUEST, 'encoding')(error) &&
        isHyperMeshError((error as CaError).cause, CborErrorCode.TOO_MANY_ITEMS),
    );
    // 32 KiB of empty strings (one byte each) in `dns`: the same, at the head of the list.
    assert.throws(
      () => decodeCertificateRequest(encodeCanonical({ ...wire, dns: new Array(32_000).fill('') })),
      (error: unknown) => isHyperMeshError((error as CaError).cause, CborErrorCode.TOO_MANY_ITEMS),
    );
  });

  it('CSR names must equal the requested names', () => {
    const csr = createCsr({
      privateKey: generateKey('p256'),
      dnsNames: ['a.example.com', 'b.example.com'],
    });
    assert.throws(
      () => parseCertificateRequest({ profile: 'service', csr, dnsNames: ['a.example.com'] }),
      isCaError(CaErrorCode.INVALID_REQUEST, 'csr_names_mismatch'),
    );
    const cn = createCsr({ privateKey: generateKey('p256'), commonName: 'other.example.com' });
    assert.throws(
      () => parseCertificateRequest({ profile: 'service', csr: cn, dnsNames: ['a.example.com'] }),
      isCaError(CaErrorCode.INVALID_REQUEST, 'csr_names_mismatch'),
    );
  });

  it('a FALCON proof for another key is refused', async () => {
    const good = await nodeRequest(ca);
    const otherCsr = createCsr({ privateKey: generateKey('ed25519') });
    assert.throws(
      () =>
        parseCertificateRequest(
          { profile: 'node', csr: otherCsr, uris: good.uris, falcon: good.falcon ?? undefined },
          { falcon: ca.falcon },
        ),
      isCaError(CaErrorCode.INVALID_FALCON_PROOF),
    );
  });
});

describe('checkRequest', () => {
  let ca: TestCa;
  before(async () => {
    ca = await createTestCa(['val-a']);
  });
  const policy = { cluster: CLUSTER };
  const codes = (refusals: readonly Refusal[]): string[] => refusals.map((r) => r.code);

  function refusalsOf(result: ReturnType<typeof checkRequest>): string[] {
    return result.ok ? [] : codes(result.refusals);
  }

  it('allows what the requester holds and applies the profile maximum as default lifetime', async () => {
    assert.deepEqual(
      checkRequest(
        serviceRequest(['www.example.com', '*.api.example.com'], 'ed25519', {
          ipAddresses: ['192.0.2.9'],
        }),
        policy,
        EVERYTHING,
      ),
      { ok: true, lifetimeSeconds: 7 * 86400 },
    );
    assert.deepEqual(checkRequest(await nodeRequest(ca), policy, EVERYTHING), {
      ok: true,
      lifetimeSeconds: 30 * 86400,
    });
  });

  it('refuses names outside the requester zones, ranges and prefixes', () => {
    const narrow: Requester = {
      ...EVERYTHING,
      dnsZones: ['team.example.com'],
      ipRanges: ['192.0.2.8/29'],
    };
    const result = checkRequest(
      serviceRequest(['team.example.com', 'badteam.example.com', 'example.com'], 'p256', {
        ipAddresses: ['192.0.2.9', '192.0.2.200'],
      }),
      policy,
      narrow,
    );
    assert.equal(result.ok, false);
    assert.deepEqual(result.ok ? [] : result.refusals, [
      { code: 'name_not_allowed', kind: 'dns', name: 'badteam.example.com' },
      { code: 'name_not_allowed', kind: 'dns', name: 'example.com' },
      { code: 'name_not_allowed', kind: 'ip', name: '192.0.2.200' },
    ]);
  });

  it('refuses wildcards unless both the profile and the requester allow them', async () => {
    assert.deepEqual(
      refusalsOf(
        checkRequest(serviceRequest(['*.example.com']), policy, {
          ...EVERYTHING,
          wildcards: false,
        }),
      ),
      ['wildcard_not_allowed'],
    );
    const node = await nodeRequest(ca);
    const wildNode = parseCertificateRequest(
      {
        profile: 'node',
        csr: node.csr.der,
        uris: node.uris,
        dnsNames: ['*.example.com'],
        falcon: node.falcon ?? undefined,
      },
      { falcon: ca.falcon },
    );
    assert.deepEqual(refusalsOf(checkRequest(wildNode, policy, EVERYTHING)), [
      'wildcard_not_allowed',
    ]);
  });

  it('refuses lifetimes above the profile or policy maximum', () => {
    assert.deepEqual(
      refusalsOf(
        checkRequest(
          serviceRequest(['a.example.com'], 'p256', { lifetimeSeconds: 8 * 86400 }),
          policy,
          EVERYTHING,
        ),
      ),
      ['lifetime_too_long'],
    );
    assert.deepEqual(
      refusalsOf(
        checkRequest(
          serviceRequest(['a.example.com'], 'p256', { lifetimeSeconds: 3 * 86400 }),
          { ...policy, maxLifetimeSeconds: { service: 86400 } },
          EVERYTHING,
        ),
      ),
      ['lifetime_too_long'],
    );
    assert.deepEqual(
      refusalsOf(
        checkRequest(
          serviceRequest(['a.example.com'], 'p256', { lifetimeSeconds: 60 }),
          policy,
          EVERYTHING,
        ),
      ),
      ['lifetime_too_short'],
    );
  });

  it('refuses keys, profiles and shapes the profile does not allow', () => {
    const p256Node = parseCertificateRequest({
      profile: 'node',
      csr: createCsr({ privateKey: generateKey('p256') }),
      uris: [`spiffe://${CLUSTER}/node/n1`],
    });
    assert.deepEqual(refusalsOf(checkRequest(p256Node, policy, EVERYTHING)), [
      'key_type_not_allowed',
      'falcon_key_required',
    ]);
    const client = parseCertificateRequest({
      profile: 'client',
      csr: createCsr({ privateKey: generateKey('p256') }),
      dnsNames: ['a.example.com'],
    });
    assert.deepEqual(refusalsOf(checkRequest(client, policy, EVERYTHING)), [
      'name_kind_not_allowed',
      'uri_count',
    ]);
    const foreign = parseCertificateRequest({
      profile: 'client',
      csr: createCsr({ privateKey: generateKey('ed25519') }),
      uris: ['spiffe://other-cluster/app'],
    });
    assert.deepEqual(refusalsOf(checkRequest(foreign, policy, EVERYTHING)), ['wrong_cluster']);
    assert.deepEqual(
      refusalsOf(checkRequest(serviceRequest(), policy, { ...EVERYTHING, profiles: ['client'] })),
      ['profile_not_allowed'],
    );
    assert.deepEqual(
      refusalsOf(checkRequest(serviceRequest(), { ...policy, minRsaBits: 3072 }, EVERYTHING)),
      [],
    );
    assert.deepEqual(
      refusalsOf(
        checkRequest(
          serviceRequest(['a.example.com'], 'rsa'),
          { ...policy, minRsaBits: 3072 },
          EVERYTHING,
        ),
      ),
      ['key_too_weak'],
    );
    const bad = parseCertificateRequest({
      profile: 'node',
      csr: createCsr({ privateKey: generateKey('ed25519') }),
      uris: [`spiffe://${CLUSTER}/admin/x`],
    });
    assert.deepEqual(refusalsOf(checkRequest(bad, policy, EVERYTHING)), [
      'falcon_key_required',
      'uri_role_not_allowed',
    ]);
  });

  it('URI prefixes cover only what is below them', () => {
    const requester: Requester = {
      ...EVERYTHING,
      uriPrefixes: [`spiffe://${CLUSTER}/ns/team-a/`, `spiffe://${CLUSTER}/exact`],
    };
    const client = (uri: string) =>
      parseCertificateRequest({
        profile: 'client',
        csr: createCsr({ privateKey: generateKey('ed25519') }),
        uris: [uri],
      });
    assert.equal(
      checkRequest(client(`spiffe://${CLUSTER}/ns/team-a/app`), policy, requester).ok,
      true,
    );
    assert.equal(checkRequest(client(`spiffe://${CLUSTER}/exact`), policy, requester).ok, true);
    assert.deepEqual(
      refusalsOf(checkRequest(client(`spiffe://${CLUSTER}/ns/team-ab/app`), policy, requester)),
      ['name_not_allowed'],
    );
    assert.deepEqual(
      refusalsOf(checkRequest(client(`spiffe://${CLUSTER}/exact/more`), policy, requester)),
      ['name_not_allowed'],
    );
  });
});

describe('rateLimitStep', () => {
  it('counts per fixed window and tells when the next one opens', () => {
    const limit = { max: 2, windowSeconds: 3600 };
    const t0 = Date.parse('2026-03-01T10:15:00Z');
    const first = rateLimitStep(null, t0, limit);
    assert.equal(first.allowed, true);
    const second = rateLimitStep(first.window, t0 + 1000, limit);
    assert.deepEqual(second, {
      allowed: true,
      window: { start: Date.parse('2026-03-01T10:00:00Z') / 1000, count: 2 },
      remaining: 0,
    });
    const third = rateLimitStep(second.window, t0 + 2000, limit);
    assert.deepEqual(third, {
      allowed: false,
      window: second.window,
      retryAfterSeconds: 45 * 60 - 2,
    });
    const nextWindow = rateLimitStep(second.window, Date.parse('2026-03-01T11:00:00Z'), limit);
    assert.equal(nextWindow.allowed, true);
    assert.equal(nextWindow.window.count, 1);
    assert.throws(() => rateLimitStep(null, t0, { max: 1, windowSeconds: 0 }), RangeError);
  });

  it('rateLimitExhausted (admission, no block time) agrees with rateLimitStep within the window', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 1, max: 7200 }),
        fc.integer({ min: 0, max: 2_000_000_000_000 }),
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: -2, max: 2 }),
        (max, windowSeconds, time, count, windowShift) => {
          const limit = { max, windowSeconds };
          const start = rateWindowStart(time, limit);
          const window = { start: start + windowShift * windowSeconds, count };
          const exhausted = rateLimitExhausted(window, start, limit);
          const step = rateLimitStep(window, time, limit);
          assert.equal(exhausted !== null, !step.allowed);
          if (exhausted !== null && !step.allowed) {
            assert.equal(exhausted.windowEnd, start + windowSeconds);
            assert.equal(exhausted.windowEnd - Math.floor(time / 1000), step.retryAfterSeconds);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
