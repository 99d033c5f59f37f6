import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import type { CaaResolver } from '../../../src/faces/acme/caa-resolver.js';
import type { TxtResolver } from '../../../src/faces/acme/dns-resolver.js';
import type { AcmeIssuer } from '../../../src/faces/acme/issuer.js';
import { jwkThumbprint } from '../../../src/faces/acme/jws.js';
import { dns01TxtValue, keyAuthorization } from '../../../src/faces/acme/validation.js';
import type { CaaRecord } from '../../../src/trustchain/ca/caa.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { waitForCondition, withDeadline } from '../../helpers/wait.js';
import {
  PROBLEM,
  RawAcmeClient,
  createTestPki,
  generateAccountKey,
  leafDerOf,
  publicJwk,
  startTestAcme,
  type HttpsReply,
  type RunningAcme,
  type TestPki,
} from './fixtures.js';

/**
 * Work that outlives its permission (RFC 8555 §7.3.6, §7.5.2, §7.6): a deactivated account's
 * running validation and queued issuance, an authorization deactivated while finalize waits for
 * its CAA lookups, and revocation by an account that holds authorizations for the names of
 * another account's certificate — a wildcard name needs a wildcard authorization. dns-01 against
 * an in-memory TXT table whose lookups the test can hold, CAA from a resolver it can hold, and
 * an issuer that counts its calls.
 */

const WAIT_MS = 20_000;
const ZONE = 'deact.test';

/** Every lookup waits on `held` while `holding`; `values` is the TXT table. */
class Gate extends EventEmitter {
  holding = false;
  readonly held: Array<() => void> = [];
  readonly lookups: string[] = [];

  pass(name: string): Promise<void> {
    this.lookups.push(name);
    if (!this.holding) return Promise.resolve();
    return new Promise((resolve) => {
      this.held.push(resolve);
      this.emit('held');
    });
  }

  waitHeld(): Promise<void> {
    return waitForCondition(this, 'held', () => this.held.length > 0, 'a held lookup', WAIT_MS);
  }

  release(): void {
    this.holding = false;
    for (const resolve of this.held.splice(0)) resolve();
  }
}

class GatedTxt extends Gate implements TxtResolver {
  readonly values = new Map<string, Set<string>>();
  async lookupTxt(name: string): Promise<string[]> {
    await this.pass(name);
    return [...(this.values.get(name.replace(/\.$/, '')) ?? [])];
  }
}

class GatedCaa extends Gate implements CaaResolver {
  async lookupCaa(domain: string): Promise<readonly CaaRecord[]> {
    await this.pass(domain);
    return [];
  }
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
const lastSegment = (url: string): string => url.split('/').at(-1) as string;

describe('ACME: deactivation, finalize re-checks and revocation by authorization', () => {
  let pki: TestPki;
  const servers: RunningAcme[] = [];
  const txt = new GatedTxt();
  const caa = new GatedCaa();
  /** Order ids the issuer was asked to issue for. */
  const issued: string[] = [];
  let issuer: AcmeIssuer;

  before(async () => {
    pki = await createTestPki();
    const base = pki.ca.issuer;
    issuer = {
      issue: (request) => {
        issued.push(request.orderId);
        return base.issue(request);
      },
      revoke: (request) => base.revoke(request),
    };
  });

  after(async () => {
    txt.release();
    caa.release();
    for (const server of servers) await server.close();
    pki?.cleanup();
  });

  const start = async (storePath?: string): Promise<RunningAcme> => {
    const running = await startTestAcme(pki, {
      issuer,
      txtResolver: txt,
      caaIdentities: ['hypermesh'],
      caaResolver: caa,
      ...(storePath === undefined ? {} : { storePath }),
    });
    servers.push(running);
    return running;
  };

  const account = async (running: RunningAcme): Promise<RawAcmeClient> => {
    const client = new RawAcmeClient(
      running.server.directoryUrl,
      pki.rootPem,
      generateAccountKey('ES256'),
      'ES256',
    );
    await client.init();
    assert.equal((await client.newAccount()).status, 201);
    return client;
  };

  interface Ordered {
    readonly orderUrl: string;
    readonly authzUrl: string;
    readonly challengeUrl: string;
  }

  /** Orders `name` and publishes its dns-01 TXT value; the challenge is not answered yet. */
  async function order(client: RawAcmeClient, name: string): Promise<Ordered> {
    const created = await client.post(client.directory.newOrder as string, {
      identifiers: [{ type: 'dns', value: name }],
    });
    assert.equal(created.status, 201, created.text);
    const authzUrl = (created.json?.authorizations as string[])[0] as string;
    const authz = await client.post(authzUrl, '');
    const challenge = (authz.json?.challenges as Array<Record<string, string>>).find(
      (c) => c.type === 'dns-01',
    );
    assert.ok(challenge, authz.text);
    const keyAuth = keyAuthorization(challenge.token!, jwkThumbprint(publicJwk(client.key)));
    const txtName = `_acme-challenge.${name.replace(/^\*\./, '')}`;
    txt.values.set(txtName, new Set([...(txt.values.get(txtName) ?? []), dns01TxtValue(keyAuth)]));
    return { orderUrl: created.headers.location as string, authzUrl, challengeUrl: challenge.url! };
  }

  async function answer(client: RawAcmeClient, ordered: Ordered): Promise<void> {
    const reply = await client.post(ordered.challengeUrl, {});
    assert.equal(reply.status, 200, reply.text);
  }

  /** Orders `name` and validates it: the order is ready. */
  async function ready(running: RunningAcme, client: RawAcmeClient, name: string) {
    const ordered = await order(client, name);
    await answer(client, ordered);
    await waitForCondition(
      running.server.events,
      'change',
      async () => (await client.post(ordered.orderUrl, '')).json?.status === 'ready',
      `order for ${name} ready`,
      WAIT_MS,
    );
    return ordered;
  }

  function finalize(client: RawAcmeClient, orderUrl: string, name: string) {
    return async (): Promise<HttpsReply> => {
      const current = await client.post(orderUrl, '');
      const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      return client.post(current.json?.finalize as string, {
        csr: b64(createCsr({ privateKey: key, dnsNames: [name] })),
      });
    };
  }

  /** Orders, validates and finalizes `name`; the certificate chain (PEM). */
  async function certificate(
    running: RunningAcme,
    client: RawAcmeClient,
    name: string,
  ): Promise<string> {
    const { orderUrl } = await ready(running, client, name);
    const finalized = await finalize(client, orderUrl, name)();
    assert.equal(finalized.status, 200, finalized.text);
    await waitForCondition(
      running.server.events,
      'change',
      async () => (await client.post(orderUrl, '')).json?.status === 'valid',
      `order for ${name} valid`,
      WAIT_MS,
    );
    const url = (await client.post(orderUrl, '')).json?.certificate as string;
    return (await client.post(url, '')).text;
  }

  it('deactivating an account cancels its running validation: the challenge is not valid, nothing issued', async () => {
    const running = await start();
    const client = await account(running);
    const name = `running.${ZONE}`;
    const ordered = await order(client, name);
    txt.holding = true;
    await answer(client, ordered);
    await txt.waitHeld();

    const deactivated = await client.post(client.kid as string, { status: 'deactivated' });
    assert.equal(deactivated.status, 200, deactivated.text);
    assert.equal(deactivated.json?.status, 'deactivated');
    const { store } = running;
    assert.equal(store.authorizationById(lastSegment(ordered.authzUrl))?.status, 'deactivated');
    assert.equal(store.orderById(lastSegment(ordered.orderUrl))?.status, 'invalid');

    // The held lookup now answers with the right TXT value: the validation would succeed.
    const ended = once(running.server.events, 'change');
    txt.release();
    await withDeadline(ended, WAIT_MS, 'the validation ends');
    const challenge = store.challengeById(lastSegment(ordered.challengeUrl));
    assert.equal(challenge?.status, 'invalid');
    assert.match(String(challenge?.error?.detail), /the account is deactivated/);
    assert.equal(store.authorizationById(lastSegment(ordered.authzUrl))?.status, 'deactivated');
    assert.equal(store.orderById(lastSegment(ordered.orderUrl))?.status, 'invalid');
    assert.deepEqual(issued, []);
    // The account is refused from now on.
    const refused = await client.post(ordered.orderUrl, '');
    assert.equal(refused.json?.type, PROBLEM('unauthorized'), refused.text);
  });

  it('a deactivated account is answered 401 unauthorized (RFC 8555 §7.3.6), newAccount with its key too', async () => {
    const running = await start();
    const client = await account(running);
    const kid = client.kid as string;
    assert.equal((await client.post(kid, { status: 'deactivated' })).status, 200);
    const replies = {
      'POST-as-GET of the account': await client.post(kid, ''),
      newOrder: await client.post(client.directory.newOrder as string, {
        identifiers: [{ type: 'dns', value: `after.${ZONE}` }],
      }),
      'newAccount with its key': await client.newAccount({ onlyReturnExisting: true }),
    };
    for (const [what, reply] of Object.entries(replies)) {
      assert.equal(reply.status, 401, `${what}: ${reply.text}`);
      assert.equal(reply.json?.type, PROBLEM('unauthorized'), what);
      assert.equal(reply.json?.status, 401, what);
      assert.match(String(reply.json?.detail), /account is deactivated/, what);
    }
  });

  it('an authorization that expires while its validation runs does not become valid (§7.1.6)', async () => {
    let clock = Date.now();
    const running = await startTestAcme(pki, {
      issuer,
      txtResolver: txt,
      caaIdentities: ['hypermesh'],
      caaResolver: caa,
      now: () => clock,
      pendingAuthorizationLifetimeMs: 60_000,
    });
    servers.push(running);
    const client = await account(running);
    const ordered = await order(client, `late.${ZONE}`);
    txt.holding = true;
    await answer(client, ordered);
    await txt.waitHeld();
    // The authorization's lifetime passes while the lookup is held; then the right TXT value
    // comes back, so the check itself succeeds.
    clock += 120_000;
    const ended = once(running.server.events, 'change');
    txt.release();
    await withDeadline(ended, WAIT_MS, 'the validation ends');
    const { store } = running;
    const authorization = store.authorizationById(lastSegment(ordered.authzUrl));
    assert.equal(authorization?.status, 'expired');
    assert.ok((authorization?.expiresMs ?? Infinity) <= clock, 'no fresh lifetime');
    const challenge = store.challengeById(lastSegment(ordered.challengeUrl));
    assert.equal(challenge?.status, 'invalid');
    assert.match(String(challenge?.error?.detail), /the authorization expired while it ran/);
    assert.equal((await client.post(ordered.orderUrl, '')).json?.status, 'invalid');
  });

  it('an issuance queued for a deactivated account (resumed after a restart) is not sent to the CA', async () => {
    const first = await start();
    const client = await account(first);
    const name = `queued.${ZONE}`;
    const { orderUrl } = await ready(first, client, name);
    servers.splice(servers.indexOf(first), 1);
    await first.server.close();
    // The server stopped between finalize and issuance, and the account was deactivated.
    const orderId = lastSegment(orderUrl);
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    first.store.updateOrder(orderId, {
      status: 'processing',
      csr: createCsr({ privateKey: key, dnsNames: [name] }),
    });
    first.store.updateAccount(lastSegment(client.kid as string), { status: 'deactivated' });
    first.store.close();

    const issuedBefore = issued.length;
    const second = await start(first.storePath);
    await waitForCondition(
      second.server.events,
      'change',
      () => second.store.orderById(orderId)?.status === 'invalid',
      'the resumed order invalid',
      WAIT_MS,
    );
    const stored = second.store.orderById(orderId);
    assert.equal(stored?.error?.type, PROBLEM('unauthorized'));
    assert.match(
      String(stored?.error?.detail),
      /issuance not attempted: the account is deactivated/,
    );
    assert.equal(stored?.certificateId, null);
    assert.equal(issued.length, issuedBefore, 'the issuer was not called');
  });

  it('finalize re-checks the authorizations after its CAA lookups: one deactivated meanwhile refuses, nothing issued', async () => {
    const running = await start();
    const client = await account(running);
    const name = `finalize.${ZONE}`;
    const { orderUrl, authzUrl } = await ready(running, client, name);
    const issuedBefore = issued.length;
    caa.holding = true;
    const finalizing = finalize(client, orderUrl, name)();
    await caa.waitHeld();
    // A second client session of the same account deactivates the authorization meanwhile.
    const other = new RawAcmeClient(running.server.directoryUrl, pki.rootPem, client.key, 'ES256');
    await other.init();
    other.kid = client.kid;
    const deactivated = await other.post(authzUrl, { status: 'deactivated' });
    assert.equal(deactivated.json?.status, 'deactivated', deactivated.text);
    caa.release();
    const reply = await withDeadline(finalizing, WAIT_MS, 'finalize');
    assert.equal(reply.status, 403, reply.text);
    assert.equal(reply.json?.type, PROBLEM('orderNotReady'));
    assert.match(
      String(reply.json?.detail),
      /the authorization for finalize\.deact\.test is deactivated/,
    );
    assert.equal((await client.post(orderUrl, '')).json?.status, 'invalid');
    assert.equal(issued.length, issuedBefore, 'the issuer was not called');
  });

  it('finalize refuses when the account is deactivated during its CAA lookups', async () => {
    const running = await start();
    const client = await account(running);
    const name = `gone.${ZONE}`;
    const { orderUrl } = await ready(running, client, name);
    const issuedBefore = issued.length;
    caa.holding = true;
    const finalizing = finalize(client, orderUrl, name)();
    await caa.waitHeld();
    const other = new RawAcmeClient(running.server.directoryUrl, pki.rootPem, client.key, 'ES256');
    await other.init();
    other.kid = client.kid;
    assert.equal((await other.post(client.kid as string, { status: 'deactivated' })).status, 200);
    caa.release();
    const reply = await withDeadline(finalizing, WAIT_MS, 'finalize');
    assert.equal(reply.status, 403, reply.text);
    assert.match(String(reply.json?.detail), /the account is deactivated/);
    assert.equal(running.store.orderById(lastSegment(orderUrl))?.status, 'invalid');
    assert.equal(issued.length, issuedBefore, 'the issuer was not called');
  });

  it('revocation by authorizations: *.x needs a wildcard authorization for x, not one for x alone', async () => {
    const running = await start();
    const owner = await account(running);
    const wildcard = `*.rev.${ZONE}`;
    const chainPem = await certificate(running, owner, wildcard);
    const revokeUrl = owner.directory.revokeCert as string;
    const revoke = { certificate: b64(leafDerOf(chainPem)), reason: 4 };

    const other = await account(running);
    // `rev.deact.test` itself, validated (dns-01 — the point is the missing wildcard flag).
    await ready(running, other, `rev.${ZONE}`);
    const refused = await other.post(revokeUrl, revoke);
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.json?.type, PROBLEM('unauthorized'));
    assert.match(String(refused.json?.detail), /holds authorizations for all its names/);

    // With a valid wildcard authorization for rev.deact.test, the same request revokes.
    await ready(running, other, wildcard);
    const revoked = await other.post(revokeUrl, revoke);
    assert.equal(revoked.status, 200, revoked.text);
  });
});
