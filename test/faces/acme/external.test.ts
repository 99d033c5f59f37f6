import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import * as acme from 'acme-client';
import {
  AcmeError,
  AcmeErrorCode,
  RecursiveResolver,
  SplitCaaResolver,
  checkCaa,
  dns01TxtValue,
  parseResolverAddress,
  validateChallenge,
  type CaaResolver,
  type ExternalNames,
  type ValidationOptions,
} from '../../../src/faces/acme/index.js';
import { isResolverAddress } from '../../../src/faces/acme/external-resolver.js';
import { checkOrderIdentifiers } from '../../../src/faces/acme/identifiers.js';
import type { AcmeIdentifier } from '../../../src/faces/acme/problems.js';
import { ACME_TLS_ALPN_PROTOCOL } from '../../../src/faces/acme/validation.js';
import { EXTERNAL_ZONE, a, caa, startExternalDns, txt, type ExternalDns } from './external-dns.js';
import { Http01Responder } from './fixtures.js';

const token = Buffer.from(randomBytes(32)).toString('base64url');
const keyAuth = `${token}.${Buffer.from(randomBytes(32)).toString('base64url')}`;
const ACCOUNT = 'https://acme.test/acme/acct/1';
const dns = (value: string): AcmeIdentifier => ({ type: 'dns', value });

/**
 * External domain names (docs/acme.md, "External names"): a recursive resolver (here the
 * project's DNS server serving `example.` on loopback) answers A/AAAA for http-01 and
 * tls-alpn-01, TXT for dns-01 and CAA for the CAA check; the cluster's names keep their path.
 */
describe('acme: external names through a recursive resolver', () => {
  let world: ExternalDns;
  let resolver: RecursiveResolver;
  let responder: Http01Responder;
  /** Cluster CAA lookups (names `isExternal` refuses), recorded. */
  const clusterLookups: string[] = [];
  const clusterCaa: CaaResolver = {
    lookupCaa: (domain) => {
      clusterLookups.push(domain);
      return Promise.resolve([]);
    },
  };
  let external: ExternalNames;
  let options: ValidationOptions;

  before(async () => {
    world = await startExternalDns([
      a(`shop.${EXTERNAL_ZONE}`),
      { name: `shop.${EXTERNAL_ZONE}.`, type: 'AAAA', ttl: 60, data: { address: '::1' } },
      txt(`_acme-challenge.shop.${EXTERNAL_ZONE}`, dns01TxtValue(keyAuth)),
      txt(`_acme-challenge.wrong.${EXTERNAL_ZONE}`, 'not-the-digest'),
      a(`ok.${EXTERNAL_ZONE}`),
      caa(`ok.${EXTERNAL_ZONE}`, 'hypermesh'),
      a(`private.${EXTERNAL_ZONE}`, '10.0.0.1'),
      a(`metadata.${EXTERNAL_ZONE}`, '169.254.169.254'),
      {
        name: `mapped.${EXTERNAL_ZONE}.`,
        type: 'AAAA',
        ttl: 60,
        data: { address: '::ffff:7f00:1' },
      },
      a(`forbidden.${EXTERNAL_ZONE}`),
      caa(`forbidden.${EXTERNAL_ZONE}`, 'other-ca.example'),
      a(`wild.${EXTERNAL_ZONE}`),
      caa(`wild.${EXTERNAL_ZONE}`, 'hypermesh'),
      caa(`wild.${EXTERNAL_ZONE}`, 'other-ca.example', 'issuewild'),
      caa(`pinned.${EXTERNAL_ZONE}`, `hypermesh; accounturi=${ACCOUNT}`),
      caa(`critical.${EXTERNAL_ZONE}`, 'x', 'future', 128),
      {
        name: `www.${EXTERNAL_ZONE}.`,
        type: 'CNAME',
        ttl: 60,
        data: { target: `ok.${EXTERNAL_ZONE}.` },
      },
    ]);
    resolver = new RecursiveResolver({ servers: [world.resolver], timeoutMs: 1_000, tries: 1 });
    responder = await Http01Responder.start();
    responder.tokens.set(token, keyAuth);
    external = {
      isExternal: (name) => !name.endsWith('.hypermesh') && name !== 'hypermesh',
      resolver,
    };
    // The "internet" here is 127.0.0.1: these tests of the validation logic allow it (TEST ONLY);
    // 'refuses names that resolve to non-public addresses' runs without.
    options = {
      http01Port: responder.port,
      tlsAlpn01Port: 1,
      timeoutMs: 5_000,
      external,
      allowNonPublicAddresses: true,
    };
  });

  after(async () => {
    resolver?.cancel();
    await responder?.close();
    await world?.close();
  });

  it('acme.resolver values: ipv4:port and [ipv6]:port only', () => {
    assert.equal(parseResolverAddress('127.0.0.1:53'), '127.0.0.1:53');
    assert.equal(parseResolverAddress('[::1]:5353'), '[::1]:5353');
    for (const bad of [
      '127.0.0.1',
      '::1:53',
      '[127.0.0.1]:53',
      'dns.example:53',
      '1.2.3.4:0',
      '1.2.3.4:70000',
    ]) {
      assert.equal(isResolverAddress(bad), false, bad);
      assert.throws(
        () => parseResolverAddress(bad),
        (error: unknown) =>
          error instanceof AcmeError && error.code === AcmeErrorCode.INVALID_OPTIONS,
      );
    }
  });

  it('resolves A/AAAA, TXT and CAA; NXDOMAIN is empty, REFUSED a failed lookup', async () => {
    assert.deepEqual(await resolver.lookupAddresses(`shop.${EXTERNAL_ZONE}`), ['127.0.0.1', '::1']);
    assert.deepEqual(await resolver.lookupTxt(`_acme-challenge.shop.${EXTERNAL_ZONE}`), [
      dns01TxtValue(keyAuth),
    ]);
    assert.deepEqual(
      await resolver
        .lookupCaa(`wild.${EXTERNAL_ZONE}`)
        .then((r) => [...r].sort((x, y) => x.tag.localeCompare(y.tag))),
      [
        { flags: 0, tag: 'issue', value: 'hypermesh' },
        { flags: 0, tag: 'issuewild', value: 'other-ca.example' },
      ],
    );
    assert.deepEqual(await resolver.lookupCaa(`critical.${EXTERNAL_ZONE}`), [
      { flags: 128, tag: 'future', value: 'x' },
    ]);
    assert.deepEqual(await resolver.lookupAddresses(`absent.${EXTERNAL_ZONE}`), []);
    assert.deepEqual(await resolver.lookupCaa(`absent.${EXTERNAL_ZONE}`), []);
    await assert.rejects(
      resolver.lookupCaa('shop.invalid'),
      (error: unknown) =>
        error instanceof AcmeError && error.code === AcmeErrorCode.DNS_LOOKUP_FAILED,
    );
  });

  describe('CAA through the resolver (the ACME server’s check)', () => {
    const policy = () => ({
      resolver: new SplitCaaResolver(external, clusterCaa),
      identities: ['hypermesh'],
    });
    const check = (value: string, wildcard = false, accountUri = ACCOUNT) =>
      checkCaa(policy(), {
        identifier: dns(value),
        wildcard,
        accountUri,
        validationMethod: 'http-01',
      });

    it('allowed: a record naming this CA, at the name, an ancestor or through a CNAME; none at all', async () => {
      assert.equal(await check(`ok.${EXTERNAL_ZONE}`), null);
      assert.equal(await check(`deep.sub.ok.${EXTERNAL_ZONE}`), null);
      assert.equal(await check(`www.${EXTERNAL_ZONE}`), null);
      assert.equal(await check(`shop.${EXTERNAL_ZONE}`), null);
      assert.equal(await check(`pinned.${EXTERNAL_ZONE}`), null);
    });

    it('forbidden: issue "other-ca.example", another account, an unknown critical tag', async () => {
      const refused = await check(`forbidden.${EXTERNAL_ZONE}`);
      assert.equal(refused?.code, 'caa');
      assert.match(refused?.message ?? '', /CAA records at forbidden\.example forbid issuance/);
      assert.deepEqual(refused?.options.identifier, dns(`forbidden.${EXTERNAL_ZONE}`));
      assert.equal((await check(`x.forbidden.${EXTERNAL_ZONE}`))?.code, 'caa');
      assert.equal(
        (await check(`pinned.${EXTERNAL_ZONE}`, false, 'https://acme.test/acme/acct/2'))?.code,
        'caa',
      );
      assert.match((await check(`critical.${EXTERNAL_ZONE}`))?.message ?? '', /unknown critical/);
    });

    it('issuewild: the wildcard is refused, the name itself allowed', async () => {
      assert.equal(await check(`wild.${EXTERNAL_ZONE}`), null);
      assert.equal((await check(`wild.${EXTERNAL_ZONE}`, true))?.code, 'caa');
    });

    it('a failed lookup is the dns problem; cluster names go to the cluster’s zones', async () => {
      const failed = await check('shop.invalid');
      assert.equal(failed?.code, 'dns');
      assert.match(failed?.message ?? '', /CAA lookup for shop\.invalid failed/);
      assert.equal(await check('a.hypermesh'), null);
      assert.deepEqual(clusterLookups, ['a.hypermesh', 'hypermesh']);
    });
  });

  it('http-01 connects to the A record from the resolver; Host names the identifier', async () => {
    const before = responder.hosts.length;
    assert.equal(
      await validateChallenge('http-01', dns(`shop.${EXTERNAL_ZONE}`), token, keyAuth, options),
      null,
    );
    assert.deepEqual(responder.hosts.slice(before), [`shop.${EXTERNAL_ZONE}:${responder.port}`]);
    const none = await validateChallenge(
      'http-01',
      dns(`absent.${EXTERNAL_ZONE}`),
      token,
      keyAuth,
      options,
    );
    assert.equal(none?.code, 'dns');
    assert.match(none?.message ?? '', /absent\.example has no A or AAAA record/);
    const failed = await validateChallenge('http-01', dns('shop.invalid'), token, keyAuth, options);
    assert.equal(failed?.code, 'dns');
    assert.match(failed?.message ?? '', /A\/AAAA lookup of shop\.invalid failed/);
    assert.equal(responder.hosts.length, before + 1);
  });

  it('dns-01 reads TXT through the resolver, even without a cluster TXT resolver', async () => {
    assert.equal(
      await validateChallenge('dns-01', dns(`shop.${EXTERNAL_ZONE}`), token, keyAuth, options),
      null,
    );
    const wrong = await validateChallenge(
      'dns-01',
      dns(`wrong.${EXTERNAL_ZONE}`),
      token,
      keyAuth,
      options,
    );
    assert.equal(wrong?.code, 'incorrectResponse');
    const failed = await validateChallenge('dns-01', dns('shop.invalid'), token, keyAuth, options);
    assert.equal(failed?.code, 'dns');
    // A cluster name still needs the cluster's TXT resolver.
    const cluster = await validateChallenge('dns-01', dns('a.hypermesh'), token, keyAuth, options);
    assert.match(cluster?.message ?? '', /no DNS resolver for dns-01/);
  });

  it('tls-alpn-01 connects to the A record; SNI names the identifier', async () => {
    const name = `shop.${EXTERNAL_ZONE}`;
    const [key, cert] = await acme.crypto.createAlpnCertificate(
      { identifier: dns(name) } as never,
      keyAuth,
      await acme.crypto.createPrivateEcdsaKey(),
    );
    const names: string[] = [];
    const server = tls.createServer({
      key,
      cert,
      ALPNProtocols: [ACME_TLS_ALPN_PROTOCOL],
      SNICallback: (servername, callback) => {
        names.push(servername);
        callback(null, tls.createSecureContext({ key, cert }));
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const outcome = await validateChallenge('tls-alpn-01', dns(name), token, keyAuth, {
        ...options,
        tlsAlpn01Port: port,
      });
      assert.equal(outcome, null);
      assert.deepEqual(names, [name]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('refuses names that resolve to non-public addresses: dns problem, no connection made', async () => {
    const strict: ValidationOptions = { ...options, allowNonPublicAddresses: false };
    let connections = 0;
    const count = (): void => {
      connections += 1;
    };
    responder.server.on('connection', count);
    const [key, cert] = await acme.crypto.createAlpnCertificate(
      { identifier: dns(`shop.${EXTERNAL_ZONE}`) } as never,
      keyAuth,
      await acme.crypto.createPrivateEcdsaKey(),
    );
    const alpn = tls.createServer({ key, cert, ALPNProtocols: [ACME_TLS_ALPN_PROTOCOL] });
    alpn.on('connection', count);
    await new Promise<void>((resolve) => alpn.listen(0, '127.0.0.1', resolve));
    try {
      const tlsAlpn01Port = (alpn.address() as { port: number }).port;
      const hosts = responder.hosts.length;
      // shop: A 127.0.0.1 and AAAA ::1, both listened on; the others private, link-local
      // (cloud metadata) and IPv4-mapped loopback.
      for (const name of ['shop', 'private', 'metadata', 'mapped']) {
        for (const type of ['http-01', 'tls-alpn-01'] as const) {
          const outcome = await validateChallenge(
            type,
            dns(`${name}.${EXTERNAL_ZONE}`),
            token,
            keyAuth,
            { ...strict, tlsAlpn01Port },
          );
          assert.equal(outcome?.code, 'dns', `${type} ${name}`);
          assert.match(
            outcome?.message ?? '',
            /resolves only to addresses that are not globally routable/,
          );
          assert.deepEqual(outcome?.options.identifier, dns(`${name}.${EXTERNAL_ZONE}`));
          assert.doesNotMatch(outcome?.message ?? '', /127\.0\.0\.1|10\.0\.0\.1|169\.254/);
        }
      }
      assert.equal(connections, 0, 'no connection reached the loopback servers');
      assert.equal(responder.hosts.length, hosts);
      // The same name with the test-only option connects (so the refusal above is the filter).
      assert.equal(
        await validateChallenge('http-01', dns(`shop.${EXTERNAL_ZONE}`), token, keyAuth, options),
        null,
      );
      assert.equal(connections, 1);
    } finally {
      responder.server.off('connection', count);
      await new Promise<void>((resolve) => alpn.close(() => resolve()));
    }
  });

  it('testOnlyConnectAddress still wins over the resolver', async () => {
    const before = responder.hosts.length;
    const outcome = await validateChallenge(
      'http-01',
      dns(`absent.${EXTERNAL_ZONE}`),
      token,
      keyAuth,
      {
        ...options,
        testOnlyConnectAddress: '127.0.0.1',
      },
    );
    assert.equal(outcome, null);
    assert.equal(responder.hosts.length, before + 1);
  });

  it('orders accept external names only with externalDns', () => {
    const policy = { dnsZones: ['hypermesh'], wildcards: true };
    assert.throws(
      () => checkOrderIdentifiers([dns(`shop.${EXTERNAL_ZONE}`)], policy),
      (error: unknown) =>
        (error as { code?: string }).code === 'rejectedIdentifier' &&
        /shop\.example is not in a zone this server issues for/.test((error as Error).message),
    );
    const targets = checkOrderIdentifiers([dns(`shop.${EXTERNAL_ZONE}`), dns('*.shop.example')], {
      ...policy,
      externalDns: true,
    });
    assert.deepEqual(
      targets.map((target) => [target.identifier.value, target.wildcard]),
      [
        ['shop.example', false],
        ['shop.example', true],
      ],
    );
    assert.throws(
      () =>
        checkOrderIdentifiers([dns('*.shop.example')], {
          ...policy,
          wildcards: false,
          externalDns: true,
        }),
      /wildcard names are not issued here/,
    );
  });
});
