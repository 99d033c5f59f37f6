import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { parseCertificate, type ParsedCertificate } from '../../../src/crypto/x509.js';
import type { AcmeIssuer } from '../../../src/faces/acme/issuer.js';
import { jwkThumbprint } from '../../../src/faces/acme/jws.js';
import { AcmeProblem } from '../../../src/faces/acme/problems.js';
import {
  MAX_RETRY_AFTER_SECONDS,
  MIN_RETRY_AFTER_SECONDS,
  RENEWAL_WINDOW_END,
  RENEWAL_WINDOW_START,
  authorityKeyIdentifier,
  certIdOf,
  parseCertId,
  retryAfterSeconds,
  serialDerOf,
  suggestedWindow,
} from '../../../src/faces/acme/renewal-info.js';
import { routeOf } from '../../../src/faces/acme/routes.js';
import { ACME_SCHEMA_VERSION } from '../../../src/faces/acme/store.js';
import { keyAuthorization } from '../../../src/faces/acme/validation.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { waitForCondition } from '../../helpers/wait.js';
import {
  Http01Responder,
  PROBLEM,
  RawAcmeClient,
  createTestPki,
  generateAccountKey,
  httpsRequest,
  leafDerOf,
  publicJwk,
  startTestAcme,
  type HttpsReply,
  type RunningAcme,
  type TestPki,
} from './fixtures.js';

/**
 * ACME Renewal Information (RFC 9773): the certID codec, the window rule, the `renewalInfo`
 * resource served for certificates issued through the server (and refusals for everything
 * else), and `replaces` in newOrder.
 */

const isMalformed = (error: unknown): boolean =>
  error instanceof AcmeProblem && error.code === 'malformed' && error.status === 400;

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

function assertProblem(reply: HttpsReply, type: string, status: number): void {
  assert.equal(reply.status, status, `status for ${type}: ${reply.text}`);
  assert.equal(reply.headers['content-type'], 'application/problem+json');
  assert.equal(reply.json?.type, PROBLEM(type), reply.text);
  assert.equal(reply.json?.status, status);
}

describe('ACME renewal information: pure parts', () => {
  it('parses the RFC 9773 §4.1 example certID', () => {
    const certId = parseCertId('aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
    assert.equal(
      Buffer.from(certId.keyIdentifier).toString('hex'),
      '69885b6b87464041e1b37b847ba0ae2cde01c8d4',
    );
    assert.equal(Buffer.from(certId.serialDer).toString('hex'), '0087654321');
    assert.equal(certId.serialHex, '87654321');
    assert.deepEqual(serialDerOf('87654321'), certId.serialDer);
  });

  it('refuses every malformed certID with malformed', () => {
    for (const text of [
      '',
      'aYhba4dGQEHhs3uEe6CuLN4ByNQ',
      '.AIdlQyE',
      'aYhba4dGQEHhs3uEe6CuLN4ByNQ.',
      '.',
      'aYhb.AIdl.QyE',
      'aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE',
      'aYhba4dGQEHhs3uEe6CuLN4ByN+.AIdlQyE',
      'aYhba4dGQEHhs3uEe6CuLN4ByNR.AIdlQyE', // non-zero trailing bits: not canonical
      'aYhba4dGQEHhs3uEe6CuLN4ByNQ.gA', // 0x80: a negative INTEGER
      'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AAE', // 0x00 0x01: not minimal
      `${'A'.repeat(200)}.AQ`,
    ]) {
      assert.throws(() => parseCertId(text), isMalformed, JSON.stringify(text));
    }
  });

  it('round-trips any key identifier and positive serial through the certID', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 32 }),
        fc.uint8Array({ minLength: 1, maxLength: 20 }),
        (keyId, serialBytes) => {
          const serialHex =
            Buffer.from(serialBytes)
              .toString('hex')
              .replace(/^(?:00)+(?=.)/, '') || '00';
          const text = `${b64(keyId)}.${b64(serialDerOf(serialHex))}`;
          const parsed = parseCertId(text);
          assert.deepEqual(parsed.keyIdentifier, keyId);
          assert.equal(parsed.serialHex, serialHex);
        },
      ),
    );
  });

  it('opens the window at 2/3 of the validity and closes it at 5/6', () => {
    const notBefore = new Date('2026-11-01T00:00:00Z');
    const notAfter = new Date('2026-11-08T00:00:00Z'); // 7 days, the service profile's maximum
    const window = suggestedWindow({ notBefore, notAfter }, false, 0);
    assert.deepEqual(RENEWAL_WINDOW_START, [2, 3]);
    assert.deepEqual(RENEWAL_WINDOW_END, [5, 6]);
    assert.equal(new Date(window.startMs).toISOString(), '2026-11-05T16:00:00.000Z');
    assert.equal(new Date(window.endMs).toISOString(), '2026-11-06T20:00:00.000Z');
    assert.equal(retryAfterSeconds(window), MAX_RETRY_AFTER_SECONDS);
    // A one-hour certificate (the profile minimum): a ten-minute window, polled every 150 s.
    const hour = suggestedWindow(
      { notBefore, notAfter: new Date(notBefore.getTime() + 3_600_000) },
      false,
      0,
    );
    assert.equal(hour.endMs - hour.startMs, 600_000);
    assert.equal(retryAfterSeconds(hour), 150);
    const now = Date.parse('2026-11-02T00:00:00Z');
    const revoked = suggestedWindow({ notBefore, notAfter }, true, now);
    assert.ok(revoked.startMs < revoked.endMs && revoked.endMs < now, 'a closed window');
    assert.equal(retryAfterSeconds(revoked), MIN_RETRY_AFTER_SECONDS);
  });

  it('routes renewal-info paths, certID unparsed', () => {
    assert.deepEqual(routeOf('/acme/renewal-info/a.b'), { kind: 'renewalInfo', certId: 'a.b' });
    assert.deepEqual(routeOf('/acme/renewal-info/'), { kind: 'renewalInfo', certId: '' });
    for (const path of ['/acme/renewal-info', '/acme/renewal-info/a/b', '/acme/renewal-info/a?x']) {
      assert.equal(routeOf(path), undefined, path);
    }
  });
});

describe('ACME renewal information over HTTPS', () => {
  let pki: TestPki;
  let responder: Http01Responder;
  let running: RunningAcme;
  let registry: Registry;
  let owner: RawAcmeClient;
  let stranger: RawAcmeClient;
  /** Serials the issuer reports as revoked although the server never revoked them. */
  const revokedElsewhere = new Set<string>();

  before(async () => {
    pki = await createTestPki();
    responder = await Http01Responder.start();
    registry = new Registry();
    // The CA's own revocation record, beside the server's (a revocation by another route).
    const ca = pki.ca.issuer;
    const issuer: AcmeIssuer = {
      issue: (request) => ca.issue(request),
      revoke: (request) => ca.revoke(request),
      isRevoked: (serialHex) => revokedElsewhere.has(serialHex),
    };
    running = await startTestAcme(pki, { http01Port: responder.port, registry, issuer });
    owner = await registered();
    stranger = await registered();
  });

  after(async () => {
    await running?.close();
    await responder?.close();
    pki?.cleanup();
  });

  async function registered(): Promise<RawAcmeClient> {
    const client = new RawAcmeClient(
      running.server.directoryUrl,
      pki.rootPem,
      generateAccountKey('ES256'),
      'ES256',
    );
    await client.init();
    const reply = await client.newAccount();
    assert.equal(reply.status, 201, reply.text);
    return client;
  }

  const renewalInfoUrl = (certId: string): string =>
    `${owner.directory.renewalInfo as string}/${certId}`;

  const orderStatus = async (client: RawAcmeClient, url: string): Promise<unknown> =>
    (await client.post(url, '')).json?.status;

  /** Orders, validates (http-01), finalizes and downloads a certificate for 127.0.0.1. */
  async function issueCertificate(client: RawAcmeClient): Promise<ParsedCertificate> {
    const created = await client.post(client.directory.newOrder as string, {
      identifiers: [{ type: 'ip', value: '127.0.0.1' }],
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json?.replaces, undefined, 'no replaces unless asked for');
    const orderUrl = created.headers.location as string;
    const authz = await client.post((created.json?.authorizations as string[])[0] as string, '');
    const challenge = (authz.json?.challenges as Array<Record<string, string>>).find(
      (c) => c.type === 'http-01',
    );
    assert.ok(challenge);
    const token = challenge.token as string;
    responder.tokens.set(token, keyAuthorization(token, jwkThumbprint(publicJwk(client.key))));
    assert.equal((await client.post(challenge.url as string, {})).status, 200);
    await waitForCondition(
      running.server.events,
      'change',
      async () => (await orderStatus(client, orderUrl)) === 'ready',
      'order ready',
      20_000,
    );
    const certKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const finalized = await client.post(created.json?.finalize as string, {
      csr: b64(createCsr({ privateKey: certKey, ipAddresses: ['127.0.0.1'] })),
    });
    assert.equal(finalized.status, 200, finalized.text);
    await waitForCondition(
      running.server.events,
      'change',
      async () => (await orderStatus(client, orderUrl)) === 'valid',
      'order valid',
      20_000,
    );
    const valid = await client.post(orderUrl, '');
    const download = await client.post(valid.json?.certificate as string, '');
    assert.equal(download.status, 200, download.text);
    return parseCertificate(leafDerOf(download.text));
  }

  const certIdOfLeaf = (leaf: ParsedCertificate): string => {
    const certId = certIdOf(leaf);
    assert.ok(certId !== null, 'TrustChain leaves carry an AKI keyIdentifier');
    return certId;
  };

  it('lists renewalInfo in the directory', () => {
    assert.equal(owner.directory.renewalInfo, `${running.server.url}/acme/renewal-info`);
  });

  it('suggests a window from 2/3 to 5/6 of an issued certificate, with Retry-After', async () => {
    const leaf = await issueCertificate(owner);
    const reply = await httpsRequest(renewalInfoUrl(certIdOfLeaf(leaf)), pki.rootPem);
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.headers['content-type'], 'application/json');
    const window = reply.json?.suggestedWindow as { start: string; end: string };
    assert.deepEqual(Object.keys(reply.json ?? {}), ['suggestedWindow']);
    const start = Date.parse(window.start);
    const end = Date.parse(window.end);
    const from = leaf.notBefore.getTime();
    const lifetime = leaf.notAfter.getTime() - from;
    assert.ok(lifetime > 0);
    assert.ok(from < start && start < end && end < leaf.notAfter.getTime(), reply.text);
    assert.equal(start, from + Math.floor((lifetime * 2) / 3));
    assert.equal(end, from + Math.floor((lifetime * 5) / 6));
    const retryAfter = Number(reply.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter), `Retry-After: ${reply.headers['retry-after']}`);
    assert.equal(retryAfter, retryAfterSeconds({ startMs: start, endMs: end }));
    assert.ok(retryAfter >= MIN_RETRY_AFTER_SECONDS && retryAfter <= MAX_RETRY_AFTER_SECONDS);

    const head = await httpsRequest(renewalInfoUrl(certIdOfLeaf(leaf)), pki.rootPem, {
      method: 'HEAD',
    });
    assert.equal(head.status, 200);
    const post = await httpsRequest(renewalInfoUrl(certIdOfLeaf(leaf)), pki.rootPem, {
      method: 'POST',
      body: '{}',
      headers: { 'Content-Type': 'application/jose+json' },
    });
    assertProblem(post, 'malformed', 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });

  it('refuses malformed certIDs (400) and certificates it did not issue (404)', async () => {
    const leaf = await issueCertificate(owner);
    const certId = certIdOfLeaf(leaf);
    const [aki = '', serial = ''] = certId.split('.');
    for (const bad of ['', 'no-dot', `.${serial}`, `${aki}.`, `${aki}=.${serial}`, 'a+b.AQ']) {
      assertProblem(await httpsRequest(renewalInfoUrl(bad), pki.rootPem), 'malformed', 400);
    }
    const otherAki = b64(randomBytes(20));
    assertProblem(
      await httpsRequest(renewalInfoUrl(`${otherAki}.${serial}`), pki.rootPem),
      'malformed',
      404,
    );
    const unknownSerial = b64(serialDerOf(randomBytes(16).toString('hex').replace(/^0+/, '1')));
    assertProblem(
      await httpsRequest(renewalInfoUrl(`${aki}.${unknownSerial}`), pki.rootPem),
      'malformed',
      404,
    );
    // The AKI the certID names is the issuing intermediate's key identifier.
    assert.deepEqual(authorityKeyIdentifier(leaf), new Uint8Array(Buffer.from(aki, 'base64url')));
  });

  it('suggests immediate renewal of a revoked certificate', async () => {
    const leaf = await issueCertificate(owner);
    const revoked = await owner.post(owner.directory.revokeCert as string, {
      certificate: b64(leaf.der),
      reason: 4,
    });
    assert.equal(revoked.status, 200, revoked.text);
    const asked = Date.now();
    const reply = await httpsRequest(renewalInfoUrl(certIdOfLeaf(leaf)), pki.rootPem);
    const answered = Date.now();
    assert.equal(reply.status, 200, reply.text);
    const window = reply.json?.suggestedWindow as { start: string; end: string };
    const start = Date.parse(window.start);
    const end = Date.parse(window.end);
    assert.ok(start < end, 'start before end (RFC 9773 §4.2)');
    assert.ok(end < answered, `the window has closed: ${reply.text}`);
    assert.ok(end > asked - 3_600_000, 'closed just now, not at some arbitrary past time');
    assert.equal(reply.headers['retry-after'], String(MIN_RETRY_AFTER_SECONDS));
  });

  it('suggests immediate renewal of a certificate the CA revoked by another route', async () => {
    const leaf = await issueCertificate(owner);
    const url = renewalInfoUrl(certIdOfLeaf(leaf));
    const before = await httpsRequest(url, pki.rootPem);
    const open = before.json?.suggestedWindow as { start: string; end: string };
    assert.ok(Date.parse(open.end) > Date.now(), `a window in the future: ${before.text}`);
    revokedElsewhere.add(leaf.serialNumber);
    const reply = await httpsRequest(url, pki.rootPem);
    assert.equal(reply.status, 200, reply.text);
    const closed = reply.json?.suggestedWindow as { start: string; end: string };
    assert.ok(Date.parse(closed.end) < Date.now(), `the window has closed: ${reply.text}`);
    assert.equal(reply.headers['retry-after'], String(MIN_RETRY_AFTER_SECONDS));
  });

  it('accepts replaces for its own certificate once, and refuses the rest', async () => {
    const leaf = await issueCertificate(owner);
    const certId = certIdOfLeaf(leaf);
    const newOrder = owner.directory.newOrder as string;
    const ip = [{ type: 'ip', value: '127.0.0.1' }];

    assertProblem(
      await stranger.post(newOrder, { identifiers: ip, replaces: certId }),
      'unauthorized',
      403,
    );
    for (const bad of ['nope', `${certId}.x`, `${certId.split('.')[0]}.${b64(randomBytes(9))}`]) {
      assertProblem(
        await owner.post(newOrder, { identifiers: ip, replaces: bad }),
        'malformed',
        400,
      );
    }
    assertProblem(
      await owner.post(newOrder, {
        identifiers: [{ type: 'ip', value: '127.0.0.2' }],
        replaces: certId,
      }),
      'malformed',
      400,
    );

    const accepted = await owner.post(newOrder, { identifiers: ip, replaces: certId });
    assert.equal(accepted.status, 201, accepted.text);
    assert.equal(accepted.json?.replaces, certId);
    const orderUrl = accepted.headers.location as string;
    assert.equal((await owner.post(orderUrl, '')).json?.replaces, certId, 'kept on the order');

    const second = await owner.post(newOrder, { identifiers: ip, replaces: certId });
    assertProblem(second, 'alreadyReplaced', 409);

    // Once the replacing order is invalid (its authorization deactivated), another may replace.
    const authzUrl = (accepted.json?.authorizations as string[])[0] as string;
    const deactivated = await owner.post(authzUrl, { status: 'deactivated' });
    assert.equal(deactivated.status, 200, deactivated.text);
    const again = await owner.post(newOrder, { identifiers: ip, replaces: certId });
    assert.equal(again.status, 201, again.text);
    assert.equal(await orderStatus(owner, orderUrl), 'invalid');
    assertProblem(
      await owner.post(newOrder, { identifiers: ip, replaces: certId }),
      'alreadyReplaced',
      409,
    );

    // The store enforces one live replacing order per certificate too.
    assert.ok(ACME_SCHEMA_VERSION >= 4, 'the replaces index is migration 4');
    assert.throws(() =>
      running.store.insertOrder({
        order: {
          id: 'direct-insert',
          accountId: running.store.orderById(orderUrl.split('/').at(-1) as string)
            ?.accountId as string,
          status: 'pending',
          expiresMs: Date.now() + 60_000,
          identifiers: [{ type: 'ip', value: '127.0.0.1' }],
          createdMs: Date.now(),
          replaces: certId,
        },
        authorizations: [],
      }),
    );
  });

  it('counts renewal-info requests by outcome', async () => {
    const metric = (await registry.getMetricsAsJSON()).find(
      (m) => m.name === 'hypermesh_acme_requests_total',
    );
    const count = (outcome: string): number =>
      metric?.values.find(
        (v) => v.labels.endpoint === 'renewalInfo' && v.labels.outcome === outcome,
      )?.value ?? 0;
    assert.ok(count('ok') >= 3, JSON.stringify(metric?.values));
    assert.ok(count('malformed') >= 6, JSON.stringify(metric?.values));
  });
});
