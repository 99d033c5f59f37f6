import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import * as acme from 'acme-client';
import { parseCertificate } from '../../../src/crypto/x509.js';
import { startDnsServers, type DnsServers } from '../../../src/faces/dns/index.js';
import { DnsServerTxtResolver } from '../../../src/faces/acme/dns-resolver.js';
import {
  MemoryZone,
  ZoneSet,
  parseRecord,
  type RecordInput,
} from '../../../src/trustchain/dns/index.js';
import { waitForCondition } from '../../helpers/wait.js';
import {
  Http01Responder,
  SKIP_WITHOUT_OPENSSL,
  createTestPki,
  leafDerOf,
  opensslVerify,
  startTestAcme,
  type RunningAcme,
  type TestPki,
} from './fixtures.js';

/**
 * The server against `acme-client` (npm), a client nobody here wrote: accounts with ES256 and
 * RS256 keys (acme-client has no EdDSA; see jws.test.ts for EdDSA), http-01 on loopback and
 * dns-01 through the cluster's DNS servers, finalization, a certificate chain `openssl verify`
 * accepts, revocation, key rollover, deactivation, and state that survives a restart.
 */

const ZONE = 'acme.test.';

function zoneWith(txt: ReadonlyArray<{ name: string; value: string }>): MemoryZone {
  const records: RecordInput[] = [
    {
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
    },
    { name: ZONE, type: 'NS', ttl: 60, data: { host: `ns.${ZONE}` } },
    { name: `ns.${ZONE}`, type: 'A', ttl: 60, data: { address: '127.0.0.1' } },
    ...txt.map((t): RecordInput => ({
      name: t.name,
      type: 'TXT',
      ttl: 60,
      data: { strings: [t.value] },
    })),
  ];
  return MemoryZone.build(
    ZONE,
    records.map((r) => parseRecord(r)),
  );
}

describe('ACME server with acme-client', () => {
  let pki: TestPki;
  let responder: Http01Responder;
  let dns: DnsServers;
  let zones: ZoneSet;
  let acmeServer: RunningAcme;
  let alpnServer: tls.Server;
  let alpnContext: tls.SecureContext | undefined;
  const sniNames: string[] = [];

  before(async () => {
    alpnServer = tls.createServer({
      ALPNProtocols: ['acme-tls/1'],
      SNICallback: (name, done) => {
        sniNames.push(name);
        done(null, alpnContext);
      },
    });
    await new Promise<void>((resolve) => alpnServer.listen(0, '127.0.0.1', resolve));
    pki = await createTestPki();
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: pki.rootPem });
    responder = await Http01Responder.start();
    zones = new ZoneSet([zoneWith([])]);
    dns = await startDnsServers({
      zones,
      udp: [{ host: '127.0.0.1', port: 0 }],
      tcp: [{ host: '127.0.0.1', port: 0 }],
    });
    const dnsAddress = dns.udp[0];
    assert.ok(dnsAddress);
    acmeServer = await startTestAcme(pki, {
      http01Port: responder.port,
      tlsAlpn01Port: (alpnServer.address() as AddressInfo).port,
      txtResolver: new DnsServerTxtResolver({ host: '127.0.0.1', port: dnsAddress.port }),
    });
  });

  after(async () => {
    await acmeServer?.close();
    await responder?.close();
    await dns?.close();
    await new Promise<void>((resolve) =>
      alpnServer ? alpnServer.close(() => resolve()) : resolve(),
    );
    pki?.cleanup();
  });

  const client = async (kind: 'ecdsa' | 'rsa'): Promise<acme.Client> =>
    new acme.Client({
      directoryUrl: acmeServer.server.directoryUrl,
      accountKey:
        kind === 'ecdsa'
          ? await acme.crypto.createPrivateEcdsaKey()
          : await acme.crypto.createPrivateRsaKey(),
      backoffAttempts: 1,
    });

  /** Waits until the server's background work has left `url`'s object out of `processing`. */
  const settled = (read: () => Promise<{ status: string }>, what: string): Promise<void> =>
    waitForCondition(
      acmeServer.server.events,
      'change',
      async () => !['pending', 'processing'].includes((await read()).status),
      what,
      20_000,
    );

  async function issueWithHttp01(c: acme.Client, name: string, type: 'ip' | 'dns' = 'ip') {
    const order = await c.createOrder({ identifiers: [{ type, value: name }] });
    assert.equal(order.status, 'pending');
    const [authz] = await c.getAuthorizations(order);
    assert.ok(authz);
    const challenge = authz.challenges.find((ch) => ch.type === 'http-01');
    assert.ok(challenge, 'http-01 offered');
    responder.tokens.set(challenge.token, await c.getChallengeKeyAuthorization(challenge));
    await c.completeChallenge(challenge);
    await settled(
      async () => (await c.getAuthorizations(order))[0] as { status: string },
      'authorization validated',
    );
    assert.equal((await c.getAuthorizations(order))[0]?.status, 'valid');
    const ready = await c.getOrder(order);
    assert.equal(ready.status, 'ready');
    const [key, csr] = await acme.crypto.createCsr(
      { altNames: [name] },
      await acme.crypto.createPrivateEcdsaKey(),
    );
    const finalized = await c.finalizeOrder(ready, csr);
    assert.ok(['processing', 'valid'].includes(finalized.status));
    await settled(() => c.getOrder(finalized), 'order issued');
    const certificate = await c.getCertificate(await c.getOrder(finalized));
    return { certificate, key, order: finalized };
  }

  it('creates ES256 and RS256 accounts, returns an existing one, honours onlyReturnExisting', async () => {
    for (const kind of ['ecdsa', 'rsa'] as const) {
      const c = await client(kind);
      const account = await c.createAccount({
        termsOfServiceAgreed: true,
        contact: ['mailto:a@example.test'],
      });
      assert.equal(account.status, 'valid');
      assert.deepEqual(account.contact, ['mailto:a@example.test']);
      const url = c.getAccountUrl();
      assert.match(url, /\/acme\/acct\/[A-Za-z0-9_-]+$/);
      // The same key again: the same account (200, RFC 8555 §7.3.1).
      const again = new acme.Client({
        directoryUrl: acmeServer.server.directoryUrl,
        accountKey: (c as unknown as { opts: { accountKey: Buffer } }).opts.accountKey,
      });
      await again.createAccount({ onlyReturnExisting: true });
      assert.equal(again.getAccountUrl(), url);
    }
    const stranger = await client('ecdsa');
    await assert.rejects(
      stranger.createAccount({ onlyReturnExisting: true }),
      /no account exists with this key/,
    );
  });

  it('issues for an IP identifier over http-01; openssl verifies the chain', async () => {
    const c = await client('ecdsa');
    await c.createAccount({ termsOfServiceAgreed: true });
    const { certificate } = await issueWithHttp01(c, '127.0.0.1');
    assert.equal(
      (certificate.match(/BEGIN CERTIFICATE/g) ?? []).length,
      2,
      'leaf and intermediate',
    );
    const leaf = parseCertificate(leafDerOf(certificate));
    assert.deepEqual(leaf.ipAddresses, ['127.0.0.1']);
    assert.ok(responder.hosts.includes(`127.0.0.1:${responder.port}`), 'Host header of http-01');
    if (SKIP_WITHOUT_OPENSSL === false) {
      const verified = opensslVerify(pki, certificate);
      assert.equal(verified.status, 0, verified.output);
    }
  });

  it('refuses a wrong key authorization over http-01 (incorrectResponse) and the order fails', async () => {
    const c = await client('ecdsa');
    await c.createAccount({ termsOfServiceAgreed: true });
    const order = await c.createOrder({ identifiers: [{ type: 'ip', value: '127.0.0.1' }] });
    const [authz] = await c.getAuthorizations(order);
    const challenge = authz?.challenges.find((ch) => ch.type === 'http-01');
    assert.ok(challenge);
    responder.tokens.set(challenge.token, 'not-the-key-authorization');
    await c.completeChallenge(challenge);
    await settled(
      async () => (await c.getAuthorizations(order))[0] as { status: string },
      'validation failed',
    );
    const failed = (await c.getAuthorizations(order))[0];
    assert.equal(failed?.status, 'invalid');
    const failedChallenge = failed?.challenges.find((ch) => ch.type === 'http-01');
    assert.equal(
      (failedChallenge?.error as { type?: string } | undefined)?.type,
      'urn:ietf:params:acme:error:incorrectResponse',
    );
    assert.equal((await c.getOrder(order)).status, 'invalid');
  });

  it('validates tls-alpn-01 for an IP address (SNI is the reverse name, RFC 8738 §6)', async () => {
    const c = await client('ecdsa');
    await c.createAccount({ termsOfServiceAgreed: true });
    for (const good of [false, true]) {
      const order = await c.createOrder({ identifiers: [{ type: 'ip', value: '127.0.0.1' }] });
      const [authz] = await c.getAuthorizations(order);
      assert.ok(authz);
      assert.deepEqual(
        authz.challenges.map((ch) => ch.type),
        ['http-01', 'tls-alpn-01'],
      );
      const challenge = authz.challenges.find((ch) => (ch.type as string) === 'tls-alpn-01');
      assert.ok(challenge);
      const keyAuth = await c.getChallengeKeyAuthorization(challenge);
      const [key, cert] = await acme.crypto.createAlpnCertificate(
        authz,
        good ? keyAuth : `${keyAuth}x`,
        await acme.crypto.createPrivateEcdsaKey(),
      );
      alpnContext = tls.createSecureContext({ key, cert });
      await c.completeChallenge(challenge);
      await settled(
        async () => (await c.getAuthorizations(order))[0] as { status: string },
        'tls-alpn-01 validation',
      );
      const [after] = await c.getAuthorizations(order);
      const result = after?.challenges.find((ch) => (ch.type as string) === 'tls-alpn-01');
      if (good) {
        assert.equal(after?.status, 'valid');
        assert.equal(result?.status, 'valid');
      } else {
        assert.equal(after?.status, 'invalid');
        assert.equal(
          (result?.error as { type?: string } | undefined)?.type,
          'urn:ietf:params:acme:error:incorrectResponse',
        );
      }
    }
    assert.ok(sniNames.includes('1.0.0.127.in-addr.arpa'), sniNames.join(', '));
  });

  it(
    'issues a wildcard and a name over dns-01 through the cluster DNS servers',
    { skip: SKIP_WITHOUT_OPENSSL },
    async () => {
      const c = await client('rsa');
      await c.createAccount({ termsOfServiceAgreed: true });
      const order = await c.createOrder({
        identifiers: [
          { type: 'dns', value: '*.www.acme.test' },
          { type: 'dns', value: 'www.acme.test' },
        ],
      });
      const authzs = await c.getAuthorizations(order);
      assert.equal(authzs.length, 2);
      const wildcard = authzs.find((a) => a.wildcard === true);
      assert.ok(wildcard, 'the wildcard authorization is flagged');
      assert.equal(wildcard.identifier.value, 'www.acme.test');
      assert.deepEqual(
        wildcard.challenges.map((ch) => ch.type),
        ['dns-01'],
      );
      const txt: Array<{ name: string; value: string }> = [];
      const challenges = [];
      for (const authz of authzs) {
        const challenge = authz.challenges.find((ch) => ch.type === 'dns-01');
        assert.ok(challenge);
        txt.push({
          name: `_acme-challenge.www.${ZONE}`,
          value: await c.getChallengeKeyAuthorization(challenge),
        });
        challenges.push(challenge);
      }
      zones.set(zoneWith(txt));
      for (const challenge of challenges) await c.completeChallenge(challenge);
      await settled(() => c.getOrder(order), 'both authorizations validated');
      assert.equal((await c.getOrder(order)).status, 'ready');
      const [, csr] = await acme.crypto.createCsr(
        { commonName: 'www.acme.test', altNames: ['www.acme.test', '*.www.acme.test'] },
        await acme.crypto.createPrivateRsaKey(),
      );
      const finalized = await c.finalizeOrder(await c.getOrder(order), csr);
      await settled(() => c.getOrder(finalized), 'order issued');
      const certificate = await c.getCertificate(await c.getOrder(finalized));
      const leaf = parseCertificate(leafDerOf(certificate));
      assert.deepEqual([...leaf.dnsNames].sort(), ['*.www.acme.test', 'www.acme.test']);
      const verified = opensslVerify(pki, certificate);
      assert.equal(verified.status, 0, verified.output);
    },
  );

  it('fails dns-01 when the TXT record is missing (incorrectResponse)', async () => {
    const c = await client('ecdsa');
    await c.createAccount({ termsOfServiceAgreed: true });
    zones.set(zoneWith([]));
    const order = await c.createOrder({
      identifiers: [{ type: 'dns', value: 'missing.acme.test' }],
    });
    const [authz] = await c.getAuthorizations(order);
    const challenge = authz?.challenges.find((ch) => ch.type === 'dns-01');
    assert.ok(challenge);
    await c.completeChallenge(challenge);
    await settled(
      async () => (await c.getAuthorizations(order))[0] as { status: string },
      'dns-01 failed',
    );
    const failed = (await c.getAuthorizations(order))[0]?.challenges.find(
      (ch) => ch.type === 'dns-01',
    );
    assert.equal(failed?.status, 'invalid');
    assert.equal(
      (failed?.error as { type?: string } | undefined)?.type,
      'urn:ietf:params:acme:error:incorrectResponse',
    );
  });

  it('revokes with the account key, then refuses a second revocation (alreadyRevoked)', async () => {
    const c = await client('ecdsa');
    await c.createAccount({ termsOfServiceAgreed: true });
    const { certificate } = await issueWithHttp01(c, '127.0.0.1');
    await assert.rejects(
      c.revokeCertificate(certificate, { reason: 2 }),
      /revocation reason 2 is not allowed/,
    );
    await c.revokeCertificate(certificate, { reason: 4 });
    const serial = parseCertificate(leafDerOf(certificate)).serialNumber;
    const revoked = pki.ca.issuer.revocations().find((r) => r.serialHex === serial);
    assert.equal(revoked?.reason, 4);
    await assert.rejects(c.revokeCertificate(certificate), /already revoked/);
    // Another account without authorizations for the names may not revoke it.
    const other = await client('ecdsa');
    await other.createAccount({ termsOfServiceAgreed: true });
    await assert.rejects(other.revokeCertificate(certificate), /neither ordered this certificate/);
  });

  it('rolls the account key over (keyChange); the old key no longer works', async () => {
    const c = await client('ecdsa');
    await c.createAccount({ termsOfServiceAgreed: true });
    const url = c.getAccountUrl();
    const oldKey = (c as unknown as { opts: { accountKey: Buffer } }).opts.accountKey;
    const newKey = await acme.crypto.createPrivateRsaKey();
    await c.updateAccountKey(newKey);
    // The new key finds the account; the old key is a stranger now.
    const withNew = new acme.Client({
      directoryUrl: acmeServer.server.directoryUrl,
      accountKey: newKey,
    });
    await withNew.createAccount({ onlyReturnExisting: true });
    assert.equal(withNew.getAccountUrl(), url);
    const withOld = new acme.Client({
      directoryUrl: acmeServer.server.directoryUrl,
      accountKey: oldKey,
    });
    await assert.rejects(
      withOld.createAccount({ onlyReturnExisting: true }),
      /no account exists with this key/,
    );
    // A key already bound to another account cannot be rolled onto this one.
    const other = await client('ecdsa');
    await other.createAccount({ termsOfServiceAgreed: true });
    await assert.rejects(
      c.updateAccountKey((other as unknown as { opts: { accountKey: Buffer } }).opts.accountKey),
      /already in use/,
    );
  });

  it('updates contacts and deactivates an account; a deactivated account is refused', async () => {
    const c = await client('ecdsa');
    await c.createAccount({ termsOfServiceAgreed: true });
    const updated = await c.updateAccount({ contact: ['mailto:b@example.test'] });
    assert.deepEqual(updated.contact, ['mailto:b@example.test']);
    await assert.rejects(
      c.updateAccount({ contact: ['tel:+15555550100'] }),
      /only mailto: contacts/,
    );
    const deactivated = await c.updateAccount({ status: 'deactivated' });
    assert.equal(deactivated.status, 'deactivated');
    await assert.rejects(
      c.createOrder({ identifiers: [{ type: 'ip', value: '127.0.0.1' }] }),
      /account is deactivated/,
    );
  });

  it('keeps accounts and orders across a restart', async () => {
    const c = await client('ecdsa');
    await c.createAccount({ termsOfServiceAgreed: true });
    const order = await c.createOrder({ identifiers: [{ type: 'ip', value: '127.0.0.1' }] });
    const { storePath } = acmeServer;
    const dnsAddress = dns.udp[0];
    assert.ok(dnsAddress);
    await acmeServer.close();
    acmeServer = await startTestAcme(pki, {
      storePath,
      http01Port: responder.port,
      txtResolver: new DnsServerTxtResolver({ host: '127.0.0.1', port: dnsAddress.port }),
    });
    // The new server listens on another port: the same account through the new directory.
    const accountKey = (c as unknown as { opts: { accountKey: Buffer } }).opts.accountKey;
    const again = new acme.Client({ directoryUrl: acmeServer.server.directoryUrl, accountKey });
    const account = await again.createAccount({ onlyReturnExisting: true });
    assert.equal(account.status, 'valid');
    const orderId = order.url.split('/').at(-1) as string;
    const moved = await again.getOrder({
      ...order,
      url: `${acmeServer.server.url}/acme/order/${orderId}`,
    });
    assert.equal(moved.status, 'pending');
    assert.deepEqual(moved.identifiers, [{ type: 'ip', value: '127.0.0.1' }]);
  });
});
