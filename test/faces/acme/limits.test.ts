import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { TxtResolver } from '../../../src/faces/acme/dns-resolver.js';
import { jwkThumbprint } from '../../../src/faces/acme/jws.js';
import { ACME_SCHEMA_VERSION, AcmeStore } from '../../../src/faces/acme/store.js';
import { dns01TxtValue, keyAuthorization } from '../../../src/faces/acme/validation.js';
import { ValidationQueue } from '../../../src/faces/acme/validation-queue.js';
import { NewAccountLimit, addressKey } from '../../../src/faces/acme/account-limit.js';
import { ACME_IDLE_TIMEOUT_MS } from '../../../src/faces/acme/server.js';
import { DEFAULT_MAX_QUEUED_VALIDATIONS_PER_ACCOUNT } from '../../../src/faces/acme/service.js';
import { DEFAULT_ACME_ISSUE_TIMEOUT_MS } from '../../../src/node/acme-issuer.js';
import { waitForCondition, withDeadline } from '../../helpers/wait.js';
import {
  PROBLEM,
  RawAcmeClient,
  createTestPki,
  generateAccountKey,
  httpsRequest,
  publicJwk,
  startTestAcme,
  type HttpsReply,
  type RunningAcme,
  type TestPki,
} from './fixtures.js';

/**
 * The ACME server's bounds on validation work and pending state (docs/acme.md, "Limits"): caps
 * on validations in flight (global and per account) with a FIFO queue, restarts through that
 * queue, and the per-account pending-authorization limit at newOrder. Validations are dns-01
 * against a TXT resolver that holds every lookup until the test releases it, so "running" is
 * exactly "lookups held".
 */

const WAIT_MS = 20_000;

/** A dns-01 resolver whose lookups wait until `release(name)`; records the peak held. */
class HeldTxt extends EventEmitter implements TxtResolver {
  readonly held = new Map<string, () => void>();
  readonly started: string[] = [];
  readonly values = new Map<string, string>();
  peak = 0;
  readonly peakPerGroup = new Map<string, number>();

  constructor(private readonly groupOf: (name: string) => string = () => '') {
    super();
  }

  lookupTxt(name: string): Promise<string[]> {
    const identifier = name.replace(/^_acme-challenge\./, '').replace(/\.$/, '');
    this.started.push(identifier);
    return new Promise((resolve) => {
      this.held.set(identifier, () => resolve([this.values.get(identifier) ?? '']));
      this.peak = Math.max(this.peak, this.held.size);
      const group = this.groupOf(identifier);
      const inGroup = [...this.held.keys()].filter((n) => this.groupOf(n) === group).length;
      this.peakPerGroup.set(group, Math.max(this.peakPerGroup.get(group) ?? 0, inGroup));
      this.emit('lookup');
    });
  }

  release(identifier: string): void {
    const release = this.held.get(identifier);
    assert.ok(release, `no lookup of ${identifier} is held (held: ${[...this.held.keys()]})`);
    this.held.delete(identifier);
    release();
  }

  releaseAll(): void {
    for (const identifier of [...this.held.keys()]) this.release(identifier);
  }

  waitHeld(names: readonly string[]): Promise<void> {
    const want = [...names].sort().join(',');
    return waitForCondition(
      this,
      'lookup',
      () => [...this.held.keys()].sort().join(',') === want,
      () => `held lookups ${want}; held ${[...this.held.keys()].sort().join(',')}`,
      WAIT_MS,
    );
  }
}

interface PendingChallenge {
  readonly identifier: string;
  readonly authorization: string;
  readonly url: string;
  readonly token: string;
}

const challengeId = (challenge: PendingChallenge): string =>
  challenge.url.split('/').at(-1) as string;

const challengeStatus = (store: AcmeStore, challenge: PendingChallenge): string | undefined =>
  store.challengeById(challengeId(challenge))?.status;

async function validationGauge(registry: Registry): Promise<Record<string, number>> {
  const metric = (await registry.getMetricsAsJSON()).find(
    (m) => m.name === 'hypermesh_acme_validations',
  );
  assert.ok(metric, 'hypermesh_acme_validations is registered');
  return Object.fromEntries(metric.values.map((v) => [String(v.labels.state), v.value]));
}

function assertProblem(reply: HttpsReply, type: string, status: number): void {
  assert.equal(reply.status, status, `status for ${type}: ${reply.text}`);
  assert.equal(reply.headers['content-type'], 'application/problem+json');
  assert.equal(reply.json?.type, PROBLEM(type), reply.text);
  assert.equal(reply.json?.status, status);
}

/** A raw ES256 client of `running`, its directory and first nonce fetched. */
async function initializedClient(running: RunningAcme, pki: TestPki): Promise<RawAcmeClient> {
  const client = new RawAcmeClient(
    running.server.directoryUrl,
    pki.rootPem,
    generateAccountKey('ES256'),
    'ES256',
  );
  await client.init();
  return client;
}

/** As `initializedClient`, with a new account registered. */
async function registeredClient(running: RunningAcme, pki: TestPki): Promise<RawAcmeClient> {
  const client = await initializedClient(running, pki);
  assert.equal((await client.newAccount()).status, 201);
  return client;
}

describe('ACME limits: validations in flight', () => {
  let pki: TestPki;
  const servers: RunningAcme[] = [];
  const resolvers: HeldTxt[] = [];

  before(async () => {
    pki = await createTestPki();
  });

  after(async () => {
    for (const resolver of resolvers) resolver.releaseAll();
    for (const server of servers) await server.close();
    pki?.cleanup();
  });

  const start = async (
    txt: HeldTxt,
    options: Parameters<typeof startTestAcme>[1],
  ): Promise<RunningAcme> => {
    resolvers.push(txt);
    const running = await startTestAcme(pki, { txtResolver: txt, ...options });
    servers.push(running);
    return running;
  };

  const account = (running: RunningAcme): Promise<RawAcmeClient> => registeredClient(running, pki);

  /** Closes `running` with validations still waiting: no new one starts, the held ones end. */
  const closeWithBacklog = async (running: RunningAcme, txt: HeldTxt): Promise<void> => {
    const closing = running.close();
    servers.splice(servers.indexOf(running), 1);
    txt.releaseAll();
    await closing;
  };

  /** An order for `identifier` and its dns-01 challenge, with the TXT value set in `txt`. */
  const dnsChallenge = async (
    client: RawAcmeClient,
    txt: HeldTxt,
    identifier: string,
  ): Promise<PendingChallenge> => {
    const order = await client.post(client.directory.newOrder as string, {
      identifiers: [{ type: 'dns', value: identifier }],
    });
    assert.equal(order.status, 201, order.text);
    const authorization = (order.json?.authorizations as string[])[0] as string;
    const authz = await client.post(authorization, '');
    const challenge = (authz.json?.challenges as Array<Record<string, string>>).find(
      (c) => c.type === 'dns-01',
    );
    assert.ok(challenge, authz.text);
    const token = challenge.token as string;
    txt.values.set(
      identifier,
      dns01TxtValue(keyAuthorization(token, jwkThumbprint(publicJwk(client.key)))),
    );
    return { identifier, authorization, url: challenge.url as string, token };
  };

  const respond = async (client: RawAcmeClient, challenge: PendingChallenge): Promise<void> => {
    const reply = await client.post(challenge.url, {});
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.json?.status, 'processing');
  };

  const waitValid = (
    running: RunningAcme,
    client: RawAcmeClient,
    challenges: readonly PendingChallenge[],
  ): Promise<void> =>
    waitForCondition(
      running.server.events,
      'change',
      async () => {
        for (const challenge of challenges) {
          if ((await client.post(challenge.url, '')).json?.status !== 'valid') return false;
        }
        return true;
      },
      `challenges ${challenges.map((c) => c.identifier).join(', ')} valid`,
      WAIT_MS,
    );

  it('runs at most maxValidations at once and starts the rest first in, first out', async () => {
    const txt = new HeldTxt();
    const registry = new Registry();
    const running = await start(txt, { maxValidations: 3, registry });
    const client = await account(running);
    const challenges: PendingChallenge[] = [];
    for (let i = 0; i < 7; i += 1) {
      challenges.push(await dnsChallenge(client, txt, `v${i}.limits.test`));
    }
    const names = challenges.map((c) => c.identifier);
    for (const challenge of challenges) await respond(client, challenge);

    await txt.waitHeld(names.slice(0, 3));
    assert.deepEqual(await validationGauge(registry), { in_flight: 3, queued: 4 });
    // Releasing the oldest running one starts exactly the oldest waiting one.
    for (let done = 1; done <= names.length; done += 1) {
      txt.release(names[done - 1] as string);
      await txt.waitHeld(names.slice(done, done + 3));
      assert.deepEqual(txt.started, names.slice(0, Math.min(done + 3, names.length)));
    }
    await waitValid(running, client, challenges);
    assert.equal(txt.peak, 3, 'never more than maxValidations lookups at once');
    assert.deepEqual(await validationGauge(registry), { in_flight: 0, queued: 0 });
  });

  it('runs at most maxValidationsPerAccount of one account, letting other accounts pass', async () => {
    const txt = new HeldTxt((name) => name.split('.')[1] as string);
    const registry = new Registry();
    const running = await start(txt, {
      maxValidations: 4,
      maxValidationsPerAccount: 2,
      registry,
    });
    const alice = await account(running);
    const bob = await account(running);
    const ofAlice: PendingChallenge[] = [];
    for (let i = 0; i < 4; i += 1) {
      ofAlice.push(await dnsChallenge(alice, txt, `a${i}.alice.test`));
    }
    const ofBob = [
      await dnsChallenge(bob, txt, 'b0.bob.test'),
      await dnsChallenge(bob, txt, 'b1.bob.test'),
    ];
    for (const challenge of ofAlice) await respond(alice, challenge);
    for (const challenge of ofBob) await respond(bob, challenge);

    // Alice's third and fourth wait; Bob's, queued after them, go ahead.
    await txt.waitHeld(['a0.alice.test', 'a1.alice.test', 'b0.bob.test', 'b1.bob.test']);
    assert.deepEqual(await validationGauge(registry), { in_flight: 4, queued: 2 });

    txt.release('b0.bob.test');
    await waitValid(running, bob, [ofBob[0] as PendingChallenge]);
    // A global slot is free, but Alice is at her cap: her third still waits.
    assert.deepEqual(await validationGauge(registry), { in_flight: 3, queued: 2 });
    assert.deepEqual([...txt.held.keys()].sort(), [
      'a0.alice.test',
      'a1.alice.test',
      'b1.bob.test',
    ]);

    txt.release('a0.alice.test');
    await txt.waitHeld(['a1.alice.test', 'a2.alice.test', 'b1.bob.test']);
    txt.release('a1.alice.test');
    await txt.waitHeld(['a2.alice.test', 'a3.alice.test', 'b1.bob.test']);
    txt.releaseAll();
    await waitValid(running, alice, ofAlice);
    await waitValid(running, bob, ofBob);
    assert.equal(txt.peakPerGroup.get('alice'), 2);
    assert.equal(txt.peakPerGroup.get('bob'), 2);
    assert.deepEqual(await validationGauge(registry), { in_flight: 0, queued: 0 });
  });

  it("takes free slots account by account: a backlog holds up another account's validation one round at most", async () => {
    const txt = new HeldTxt((name) => name.split('.')[1] as string);
    const running = await start(txt, { maxValidations: 2, maxValidationsPerAccount: 2 });
    const [x, y, victim] = [await account(running), await account(running), await account(running)];
    const ofX: PendingChallenge[] = [];
    const ofY: PendingChallenge[] = [];
    for (let i = 0; i < 5; i += 1) {
      ofX.push(await dnsChallenge(x, txt, `x${i}.x.test`));
      ofY.push(await dnsChallenge(y, txt, `y${i}.y.test`));
    }
    const ofVictim = await dnsChallenge(victim, txt, 'v0.victim.test');
    for (const challenge of ofX) await respond(x, challenge);
    for (const challenge of ofY) await respond(y, challenge);
    await respond(victim, ofVictim);
    await txt.waitHeld(['x0.x.test', 'x1.x.test']);

    // Waiting: X's 3, Y's 5, then the victim's one. First in, first out, the victim would be
    // the ninth to start; taking turns (X, Y, victim), it is the third.
    txt.release('x0.x.test');
    await txt.waitHeld(['x1.x.test', 'x2.x.test']);
    txt.release('x1.x.test');
    await txt.waitHeld(['x2.x.test', 'y0.y.test']);
    txt.release('x2.x.test');
    await txt.waitHeld(['v0.victim.test', 'y0.y.test']);
    assert.deepEqual(txt.started, [
      'x0.x.test',
      'x1.x.test',
      'x2.x.test',
      'y0.y.test',
      'v0.victim.test',
    ]);
    txt.release('v0.victim.test');
    await waitValid(running, victim, [ofVictim]);
    await closeWithBacklog(running, txt);
  });

  it('validates one challenge of an authorization at a time: a response to another is answered as it is', async () => {
    const txt = new HeldTxt();
    const registry = new Registry();
    const running = await start(txt, { registry });
    const client = await account(running);
    const dns01 = await dnsChallenge(client, txt, 'one.limits.test');
    await respond(client, dns01);
    await txt.waitHeld([dns01.identifier]);
    const authz = await client.post(dns01.authorization, '');
    const others = (authz.json?.challenges as Array<Record<string, string>>).filter(
      (c) => c.type !== 'dns-01',
    );
    assert.ok(others.length > 0, authz.text);
    for (const other of others) {
      const reply = await client.post(other.url as string, {});
      assert.equal(reply.status, 200, reply.text);
      assert.equal(reply.json?.status, 'pending', reply.text);
      assert.equal(reply.json?.url, other.url);
    }
    assert.deepEqual(await validationGauge(registry), { in_flight: 1, queued: 0 });
    txt.release(dns01.identifier);
    await waitValid(running, client, [dns01]);
    const after = await client.post(dns01.authorization, '');
    assert.equal(after.json?.status, 'valid');
    for (const other of after.json?.challenges as Array<Record<string, string>>) {
      if (other.type !== 'dns-01') assert.equal(other.status, 'pending', other.type);
    }
    assert.deepEqual(txt.started, [dns01.identifier]);
  });

  it(`refuses a response over ${DEFAULT_MAX_QUEUED_VALIDATIONS_PER_ACCOUNT} waiting validations of an account with rateLimited, the challenge left pending`, async () => {
    const txt = new HeldTxt();
    const running = await start(txt, { maxValidations: 1 });
    const client = await account(running);
    const names = (prefix: string, count: number) =>
      Array.from({ length: count }, (_, i) => ({ type: 'dns', value: `${prefix}${i}.full.test` }));
    const challenges: string[] = [];
    for (const identifiers of [names('a', 100), names('b', 2)]) {
      const order = await client.post(client.directory.newOrder as string, { identifiers });
      assert.equal(order.status, 201, order.text);
      for (const url of order.json?.authorizations as string[]) {
        const authorizationId = url.split('/').at(-1) as string;
        const dns01 = running.store
          .challengesOfAuthorization(authorizationId)
          .find((c) => c.type === 'dns-01');
        assert.ok(dns01);
        challenges.push(
          running.server.directoryUrl.replace('/directory', `/acme/chall/${dns01.id}`),
        );
      }
    }
    // One running, then DEFAULT_MAX_QUEUED_VALIDATIONS_PER_ACCOUNT waiting.
    for (const url of challenges.slice(0, DEFAULT_MAX_QUEUED_VALIDATIONS_PER_ACCOUNT + 1)) {
      const reply = await client.post(url, {});
      assert.equal(reply.status, 200, reply.text);
    }
    const over = challenges[DEFAULT_MAX_QUEUED_VALIDATIONS_PER_ACCOUNT + 1] as string;
    const refused = await client.post(over, {});
    assertProblem(refused, 'rateLimited', 429);
    assert.ok(Number(refused.headers['retry-after']) >= 1, 'a Retry-After');
    assert.equal(running.store.challengeById(over.split('/').at(-1) as string)?.status, 'pending');
    // Another account is not refused.
    const other = await account(running);
    await respond(other, await dnsChallenge(other, txt, 'other.full.test'));
    await closeWithBacklog(running, txt);
  });

  it('does not attempt a queued validation whose authorization was deactivated meanwhile', async () => {
    const txt = new HeldTxt();
    const running = await start(txt, { maxValidations: 1 });
    const client = await account(running);
    const [first, second] = [
      await dnsChallenge(client, txt, 'd0.limits.test'),
      await dnsChallenge(client, txt, 'd1.limits.test'),
    ] as [PendingChallenge, PendingChallenge];
    await respond(client, first);
    await respond(client, second);
    await txt.waitHeld([first.identifier]);
    const deactivated = await client.post(second.authorization, { status: 'deactivated' });
    assert.equal(deactivated.status, 200, deactivated.text);
    txt.release(first.identifier);
    await waitForCondition(
      running.server.events,
      'change',
      () => challengeStatus(running.store, second) === 'invalid',
      'the queued challenge invalid',
      WAIT_MS,
    );
    const reply = await client.post(second.url, '');
    assert.equal(
      (reply.json?.error as Record<string, unknown>).detail,
      'validation not attempted: the authorization is deactivated',
    );
    assert.deepEqual(txt.started, [first.identifier], 'no lookup for the deactivated one');
    assert.equal(challengeStatus(running.store, first), 'valid');
  });

  it('restarts the processing challenges of a stopped server through the same queue', async () => {
    const first = new HeldTxt();
    const running = await start(first, {});
    const client = await account(running);
    const challenges: PendingChallenge[] = [];
    for (let i = 0; i < 5; i += 1) {
      challenges.push(await dnsChallenge(client, first, `r${i}.limits.test`));
    }
    const { storePath } = running;
    await running.close();
    servers.splice(servers.indexOf(running), 1);
    // As if the server had stopped while these were being validated.
    const store = AcmeStore.open(storePath);
    for (const challenge of challenges) {
      store.updateChallenge(challengeId(challenge), { status: 'processing' });
    }
    store.close();

    const txt = new HeldTxt();
    for (const [name, value] of first.values) txt.values.set(name, value);
    const registry = new Registry();
    const restarted = await start(txt, { storePath, maxValidations: 2, registry });
    const names = challenges.map((c) => c.identifier);
    await txt.waitHeld(names.slice(0, 2));
    assert.deepEqual(await validationGauge(registry), { in_flight: 2, queued: 3 });
    for (let done = 1; done <= names.length; done += 1) {
      txt.release(names[done - 1] as string);
      await txt.waitHeld(names.slice(done, done + 2));
    }
    await waitForCondition(
      restarted.server.events,
      'change',
      () => challenges.every((c) => challengeStatus(restarted.store, c) === 'valid'),
      'the resumed challenges valid',
      WAIT_MS,
    );
    assert.deepEqual(txt.started, names);
    assert.equal(txt.peak, 2);
  });

  it('leaves queued challenges processing when the server closes, and resumes them', async () => {
    const txt = new HeldTxt();
    const running = await start(txt, { maxValidations: 1 });
    const client = await account(running);
    const challenges = [
      await dnsChallenge(client, txt, 'c0.limits.test'),
      await dnsChallenge(client, txt, 'c1.limits.test'),
    ];
    for (const challenge of challenges) await respond(client, challenge);
    await txt.waitHeld(['c0.limits.test']);
    const closing = running.close();
    servers.splice(servers.indexOf(running), 1);
    txt.release('c0.limits.test');
    await closing;
    assert.deepEqual(txt.started, ['c0.limits.test'], 'no validation starts once closing');
    const store = AcmeStore.open(running.storePath);
    assert.equal(challengeStatus(store, challenges[0] as PendingChallenge), 'valid');
    assert.equal(challengeStatus(store, challenges[1] as PendingChallenge), 'processing');
    store.close();

    const again = await start(txt, { storePath: running.storePath, maxValidations: 1 });
    await txt.waitHeld(['c1.limits.test']);
    txt.release('c1.limits.test');
    await waitForCondition(
      again.server.events,
      'change',
      () => challengeStatus(again.store, challenges[1] as PendingChallenge) === 'valid',
      'the resumed challenge valid',
      WAIT_MS,
    );
  });
});

describe('ACME limits: pending authorizations per account', () => {
  let pki: TestPki;
  let running: RunningAcme;
  let clock = 0;
  const LIFETIME_MS = 3_600_000;

  before(async () => {
    pki = await createTestPki();
    clock = Date.now();
    running = await startTestAcme(pki, {
      maxPendingAuthorizationsPerAccount: 3,
      pendingAuthorizationLifetimeMs: LIFETIME_MS,
      nonceLifetimeMs: 4 * LIFETIME_MS,
      orderLifetimeMs: 2 * LIFETIME_MS,
      now: () => clock,
    });
  });

  after(async () => {
    await running?.close();
    pki?.cleanup();
  });

  const account = (): Promise<RawAcmeClient> => registeredClient(running, pki);

  const order = (client: RawAcmeClient, ...names: string[]): Promise<HttpsReply> =>
    client.post(client.directory.newOrder as string, {
      identifiers: names.map((value) => ({ type: 'dns', value })),
    });

  const rows = (): number =>
    running.store.db.prepare('SELECT count(*) FROM acme_authz').pluck().get() as number;
  const orders = (): number =>
    running.store.db.prepare('SELECT count(*) FROM acme_order').pluck().get() as number;

  it('refuses an order over the limit with rateLimited, a Retry-After and nothing stored', async () => {
    const start = clock;
    const client = await account();
    assert.equal((await order(client, 'a.limits.test', 'b.limits.test')).status, 201);
    clock += 10_000;
    const third = await order(client, 'c.limits.test');
    assert.equal(third.status, 201, third.text);
    const [authzRows, orderRows] = [rows(), orders()];

    const refused = await order(client, 'd.limits.test');
    assertProblem(refused, 'rateLimited', 429);
    // One slot is needed: the first pending authorizations (a, b) expire LIFETIME after `start`.
    assert.equal(refused.headers['retry-after'], String((start + LIFETIME_MS - clock) / 1000));
    assert.match(
      String(refused.json?.detail),
      /has 3 pending authorizations and this order would add 1, over the limit of 3 per account/,
    );
    // Three slots needed: the third to expire is c's, 10 s later.
    const three = await order(client, 'd.limits.test', 'e.limits.test', 'f.limits.test');
    assertProblem(three, 'rateLimited', 429);
    assert.equal(three.headers['retry-after'], String(LIFETIME_MS / 1000));
    // An order that can never fit says so, without a Retry-After.
    const tooBig = await order(
      client,
      'w.limits.test',
      'x.limits.test',
      'y.limits.test',
      'z.limits.test',
    );
    assertProblem(tooBig, 'rateLimited', 429);
    assert.equal(tooBig.headers['retry-after'], undefined);
    assert.match(String(tooBig.json?.detail), /needs 4 pending authorizations; .* at most 3/);
    assert.deepEqual([rows(), orders()], [authzRows, orderRows], 'nothing stored');

    // Another account has its own allowance.
    const other = await account();
    assert.equal((await order(other, 'o.limits.test')).status, 201);

    // Deactivating one authorization (RFC 8555 §7.5.2) makes room for one.
    const authzUrl = (third.json?.authorizations as string[])[0] as string;
    assert.equal((await client.post(authzUrl, { status: 'deactivated' })).status, 200);
    assert.equal((await order(client, 'd.limits.test')).status, 201);
    assertProblem(await order(client, 'e.limits.test'), 'rateLimited', 429);

    // The count reads the (account, status, expiry) index, not every authorization ever made.
    const plan = running.store.db
      .prepare(
        "EXPLAIN QUERY PLAN SELECT count(*) FROM acme_authz WHERE account_id = ? AND status = 'pending' AND expires_ms > ?",
      )
      .all('account', 0);
    assert.match(JSON.stringify(plan), /acme_authz_by_account_status/);
    assert.equal(ACME_SCHEMA_VERSION, 5);

    // Expired authorizations no longer count.
    clock = start + LIFETIME_MS;
    assert.equal((await order(client, 'e.limits.test', 'f.limits.test')).status, 201);
  });
});

describe('ACME limits: new accounts per client address', () => {
  let pki: TestPki;
  let running: RunningAcme;
  let clock = 0;
  const WINDOW_MS = 3_600_000;

  before(async () => {
    pki = await createTestPki();
    clock = Date.now();
    running = await startTestAcme(pki, {
      maxNewAccountsPerAddress: 2,
      newAccountWindowMs: WINDOW_MS,
      nonceLifetimeMs: 4 * WINDOW_MS,
      now: () => clock,
    });
  });

  after(async () => {
    await running?.close();
    pki?.cleanup();
  });

  const client = (): Promise<RawAcmeClient> => initializedClient(running, pki);
  const accounts = (): number =>
    running.store.db.prepare('SELECT count(*) FROM acme_account').pluck().get() as number;

  it('refuses a third account from 127.0.0.1 in the window with rateLimited, then allows it', async () => {
    const start = clock;
    const first = await client();
    assert.equal((await first.newAccount()).status, 201);
    clock += 60_000;
    assert.equal((await (await client()).newAccount()).status, 201);
    const third = await client();
    const refused = await third.newAccount();
    assertProblem(refused, 'rateLimited', 429);
    assert.equal(refused.headers['retry-after'], String((start + WINDOW_MS - clock) / 1000));
    assert.match(
      String(refused.json?.detail),
      /^127\.0\.0\.1 has created 2 accounts in the last 3600 s/,
    );
    assert.equal(accounts(), 2, 'nothing stored');
    // Finding an existing account creates nothing and is not limited.
    const again = new RawAcmeClient(running.server.directoryUrl, pki.rootPem, first.key, 'ES256');
    await again.init();
    assert.equal((await again.newAccount()).status, 200);

    clock = start + WINDOW_MS;
    assert.equal((await third.newAccount()).status, 201);
    assert.equal(accounts(), 3);
  });
});

describe('ACME limits: connections', () => {
  let pki: TestPki;
  let running: RunningAcme;
  const limits = {
    headersTimeoutMs: 200,
    requestTimeoutMs: 400,
    timeoutCheckIntervalMs: 50,
    maxConnections: 1,
    handshakeTimeoutMs: 300,
  };

  before(async () => {
    pki = await createTestPki();
    running = await startTestAcme(pki, { limits });
  });

  after(async () => {
    await running?.close();
    pki?.cleanup();
  });

  it('answers headers that never finish with 408 and lets go of the connection', async () => {
    const { hostname, port } = new URL(running.server.url);
    // The client never closes its side, so only the server can free the connection. tls.connect
    // takes net.connect's `allowHalfOpen`, which @types/node leaves out of its options.
    const options: ConnectionOptions & { allowHalfOpen: boolean } = {
      host: hostname,
      port: Number(port),
      ca: pki.rootPem,
      allowHalfOpen: true,
    };
    const socket = tlsConnect(options);
    socket.on('error', () => {});
    try {
      await withDeadline(once(socket, 'secureConnect'), WAIT_MS, 'the TLS handshake');
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      const answered = once(socket, 'end');
      const started = performance.now();
      socket.write('GET /directory HTTP/1.1\r\nhost: acme.test\r\nx-slow: ');
      await withDeadline(answered, 5_000, 'an answer to a request with unfinished headers');
      const elapsed = performance.now() - started;
      assert.match(Buffer.concat(received).toString(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.ok(elapsed >= limits.headersTimeoutMs - 20, `answered after ${elapsed} ms`);
      // With room for one connection, a new one is served only if the server has destroyed
      // the first rather than half-closed it.
      const directory = await httpsRequest(running.server.directoryUrl, pki.rootPem);
      assert.equal(directory.status, 200, directory.text);
    } finally {
      socket.destroy();
    }
  });

  it('closes a connection that never starts its TLS handshake', async () => {
    const { hostname, port } = new URL(running.server.url);
    const silent = netConnect({ host: hostname, port: Number(port) });
    silent.on('error', () => {});
    const closed = once(silent, 'close');
    const started = performance.now();
    await withDeadline(closed, 5_000, 'the server to close a connection that says nothing');
    assert.ok(performance.now() - started < 4_000);
  });

  it("outlasts the node issuer's longest wait with its idle timeout", () => {
    assert.ok(ACME_IDLE_TIMEOUT_MS > DEFAULT_ACME_ISSUE_TIMEOUT_MS);
  });
});

describe('NewAccountLimit', () => {
  it('keys IPv4 addresses alone and IPv6 addresses by their /64', () => {
    assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
    assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(addressKey('2001:db8:1:2::9'), addressKey('2001:db8:1:2:ffff::1'));
    assert.notEqual(addressKey('2001:db8:1:2::9'), addressKey('2001:db8:1:3::9'));
    assert.equal(addressKey('2001:db8:1:2::9'), '20010db800010002/64');
  });

  it('counts per window and forgets the oldest addresses past its bound', () => {
    const limit = new NewAccountLimit({ maxPerWindow: 2, windowMs: 1000, maxTrackedAddresses: 2 });
    limit.record('192.0.2.1', 0);
    assert.deepEqual(limit.check('192.0.2.1', 10), { allowed: true });
    limit.record('192.0.2.1', 10);
    assert.deepEqual(limit.check('192.0.2.1', 500), {
      allowed: false,
      key: '192.0.2.1',
      retryAfterMs: 500,
    });
    assert.deepEqual(limit.check('192.0.2.2', 500), { allowed: true });
    assert.deepEqual(limit.check('192.0.2.1', 1000), { allowed: true }, 'a new window');
    limit.record('192.0.2.2', 600);
    limit.record('192.0.2.3', 700);
    assert.equal(limit.trackedAddresses, 2);
    assert.deepEqual(limit.check('192.0.2.1', 800), { allowed: true }, 'forgotten first');
    assert.throws(
      () => new NewAccountLimit({ maxPerWindow: 0, windowMs: 1, maxTrackedAddresses: 1 }),
      RangeError,
    );
  });
});

describe('ValidationQueue', () => {
  const ids = (started: ReturnType<ValidationQueue['takeStartable']>) =>
    started.map((s) => s.challengeId);

  it('starts accounts in turn, each oldest first, skips accounts at their cap and frees slots on finish', () => {
    const queue = new ValidationQueue({
      maxInFlight: 3,
      maxInFlightPerAccount: 2,
      maxQueuedPerAccount: 10,
    });
    for (const [id, accountId] of [
      ['a1', 'A'],
      ['a2', 'A'],
      ['a3', 'A'],
      ['b1', 'B'],
      ['b2', 'B'],
    ] as const) {
      assert.equal(queue.enqueue(id, accountId), 'queued');
    }
    assert.equal(queue.enqueue('a1', 'A'), 'duplicate', 'a waiting challenge is not queued twice');
    // One per account per round: A, B, then A again.
    assert.deepEqual(ids(queue.takeStartable()), ['a1', 'b1', 'a2']);
    assert.deepEqual([queue.inFlight, queue.queued], [3, 2]);
    assert.equal(queue.enqueue('a1', 'A'), 'duplicate', 'a running challenge is not queued again');
    assert.deepEqual(ids(queue.takeStartable()), []);
    queue.finish('b1');
    // A is still at its cap of 2: b2 goes.
    assert.deepEqual(ids(queue.takeStartable()), ['b2']);
    queue.finish('a1');
    queue.finish('a1');
    assert.deepEqual(ids(queue.takeStartable()), ['a3']);
    assert.equal(queue.has('a3'), true);
    queue.finish('a2');
    queue.finish('a3');
    queue.finish('b2');
    assert.deepEqual([queue.inFlight, queue.queued], [0, 0]);
    assert.equal(queue.has('a3'), false);
  });

  it("gives a newcomer the next free slot however long the others' backlogs are", () => {
    const queue = new ValidationQueue({
      maxInFlight: 4,
      maxInFlightPerAccount: 4,
      maxQueuedPerAccount: 1_000,
    });
    for (const attacker of ['X', 'Y', 'Z']) {
      for (let i = 0; i < 500; i += 1) queue.enqueue(`${attacker}${i}`, attacker);
    }
    const running = ids(queue.takeStartable());
    assert.deepEqual(running, ['X0', 'Y0', 'Z0', 'X1']);
    queue.enqueue('victim', 'V');
    // Slots free up one at a time: the turn reaches V within one round of the 4 accounts
    // (first in, first out, it would wait for the 1,497 validations queued before it).
    const order: string[] = [];
    for (const done of running) {
      queue.finish(done);
      order.push(...ids(queue.takeStartable()));
    }
    assert.deepEqual(order, ['Y1', 'Z1', 'X2', 'victim']);
  });

  it('refuses more waiting validations than an account may have, counting only waiting ones', () => {
    const queue = new ValidationQueue({
      maxInFlight: 1,
      maxInFlightPerAccount: 1,
      maxQueuedPerAccount: 2,
    });
    assert.equal(queue.enqueue('a1', 'A'), 'queued');
    assert.deepEqual(ids(queue.takeStartable()), ['a1']);
    assert.equal(queue.enqueue('a2', 'A'), 'queued');
    assert.equal(queue.enqueue('a3', 'A'), 'queued');
    assert.equal(queue.enqueue('a4', 'A'), 'full');
    assert.equal(queue.has('a4'), false);
    assert.equal(queue.queuedOf('A'), 2);
    assert.equal(queue.enqueue('b1', 'B'), 'queued', 'another account is not refused');
    assert.equal(queue.enqueue('a4', 'A', true), 'queued', 'a resumed validation is not refused');
    queue.finish('a1');
    assert.deepEqual(ids(queue.takeStartable()), ['a2']);
    assert.equal(queue.queuedOf('A'), 2);
  });

  it('drops waiting validations but keeps counting running ones', () => {
    const queue = new ValidationQueue({
      maxInFlight: 1,
      maxInFlightPerAccount: 1,
      maxQueuedPerAccount: 1,
    });
    queue.enqueue('x', 'A');
    queue.enqueue('y', 'B');
    assert.deepEqual(ids(queue.takeStartable()), ['x']);
    queue.dropWaiting();
    assert.deepEqual([queue.inFlight, queue.queued], [1, 0]);
    queue.finish('x');
    assert.deepEqual(queue.takeStartable(), []);
    assert.equal(queue.enqueue('y', 'B'), 'queued');
  });

  it('refuses caps that are not positive integers', () => {
    assert.throws(
      () =>
        new ValidationQueue({ maxInFlight: 0, maxInFlightPerAccount: 1, maxQueuedPerAccount: 1 }),
      RangeError,
    );
    assert.throws(
      () =>
        new ValidationQueue({ maxInFlight: 2, maxInFlightPerAccount: 1.5, maxQueuedPerAccount: 1 }),
      RangeError,
    );
    assert.throws(
      () =>
        new ValidationQueue({ maxInFlight: 2, maxInFlightPerAccount: 1, maxQueuedPerAccount: 0 }),
      RangeError,
    );
  });
});
