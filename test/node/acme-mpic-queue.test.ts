import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { validatorAddress } from '../../src/consensus/validator-set.js';
import { ed25519RawPublicKey } from '../../src/crypto/ed25519.js';
import type { CaaResolver } from '../../src/faces/acme/caa-resolver.js';
import { jwkThumbprint } from '../../src/faces/acme/jws.js';
import { keyAuthorization, type ValidationOptions } from '../../src/faces/acme/validation.js';
import type { CaCorroborateRequest } from '../../src/faces/ca-rpc.js';
import {
  MAX_CORROBORATIONS_PER_PEER,
  createCorroborationCollector,
  createCorroborator,
  grantCorroborationAuthorizer,
  type Corroborator,
} from '../../src/node/acme-mpic.js';
import { StoqErrorCode } from '../../src/stoq/errors.js';
import { decodeDcvAttestation } from '../../src/trustchain/ca-module/dcv.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';
import {
  RawAcmeClient,
  createTestPki,
  generateAccountKey,
  publicJwk,
  startTestAcme,
  type RunningAcme,
  type TestPki,
} from '../faces/acme/fixtures.js';
import { isStoqError } from '../stoq/rpc-fixture.js';
import { GRANTED_ZONE, createCaFixture, type CaFixture } from '../trustchain/ca-module/fixture.js';

/**
 * The corroborator's concurrency (docs/acme.md, "Multi-perspective validation"): a caller's
 * corroborations up to its ACME server's validation cap run, more wait their turn (a bounded
 * queue per caller, callers in turn), and only beyond that are they refused — so an order with
 * many names, or an account whose http-01 answers the validators slowly, does not make other
 * challenges fail multi-perspective validation. The node's own ACME server, its corroborator
 * and its collector are wired as in src/node/acme-node.ts.
 */

const WAIT_MS = 20_000;

/**
 * An http-01 responder whose answers the test holds: a token's requests from `holdFrom` on
 * (0: all, 1: all but the first — the ACME server's own check comes first, the corroborator's
 * after it) wait for `release`.
 */
class HeldResponder extends EventEmitter {
  readonly tokens = new Map<string, { body: string; holdFrom: number; seen: number }>();
  /** Tokens in the order their requests arrived. */
  readonly requests: string[] = [];
  private readonly held: Array<{ token: string; answer: () => void }> = [];

  private constructor(readonly server: http.Server) {
    super();
    server.on('request', (request, response) => {
      const token = (request.url ?? '').split('/').at(-1) ?? '';
      this.requests.push(token);
      const entry = this.tokens.get(token);
      if (entry === undefined) {
        response.writeHead(404).end();
        return;
      }
      const answer = (): void => void response.writeHead(200).end(entry.body);
      entry.seen += 1;
      if (entry.seen <= entry.holdFrom) {
        answer();
        return;
      }
      this.held.push({ token, answer });
      this.emit('held');
    });
  }

  static async start(): Promise<HeldResponder> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new HeldResponder(server);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  heldTokens(): string[] {
    return this.held.map((entry) => entry.token);
  }

  /** Answers the held request for `token` (all of them without one). */
  release(token?: string): void {
    for (const entry of [...this.held]) {
      if (token !== undefined && entry.token !== token) continue;
      this.held.splice(this.held.indexOf(entry), 1);
      entry.answer();
    }
  }

  waitHeld(count: number, what: string): Promise<void> {
    return waitForCondition(
      this,
      'held',
      () => this.held.length >= count,
      () => `${what} (${this.held.length} held)`,
      WAIT_MS,
    );
  }

  close(): Promise<void> {
    this.release();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

describe('acme-mpic: the node’s own ACME server and its corroborator under load', () => {
  let fixture: CaFixture;
  let pki: TestPki;
  let responder: HeldResponder;
  let running: RunningAcme;
  /** Emits `progress` when a corroboration is held at the responder or fails. */
  const progress = new EventEmitter();
  const failed: string[] = [];

  before(async () => {
    fixture = await createCaFixture();
    pki = await createTestPki();
    responder = await HeldResponder.start();
    responder.on('held', () => progress.emit('progress'));
    const identityKey = generateKeyPairSync('ed25519').privateKey;
    const self = ed25519RawPublicKey(identityKey);
    const corroborator = createCorroborator({
      chainId: fixture.config.chainId,
      identityKey,
      validation: {
        http01Port: responder.port,
        tlsAlpn01Port: 1,
        timeoutMs: 10_000,
        testOnlyConnectAddress: '127.0.0.1',
      },
      authorize: grantCorroborationAuthorizer(fixture.config),
      latestHeight: () => 1,
      isHolder: () => true,
    });
    // As acme-node.ts: the node's server asks its own corroborator as caller `local`.
    const selfCaller = { role: 'validator' as const, name: 'node-1', uri: 'local' };
    const corroborate = createCorroborationCollector({
      chainId: fixture.config.chainId,
      account: fixture.dcvOperator.publicKey,
      holders: () => [{ ...fixture.config.issuers[0]!, name: 'node-1', account: self }],
      electorate: () => ({ powers: new Map([[validatorAddress(self), 1]]), totalPower: 1 }),
      self,
      latestHeight: () => 1,
      local: (request) => corroborator(request, selfCaller),
      remote: () => Promise.reject(new Error('no remote holder in this test')),
      onFailure: (holder, reason) => {
        failed.push(`${holder}: ${reason}`);
        progress.emit('progress');
      },
    });
    running = await startTestAcme(pki, {
      http01Port: responder.port,
      testOnlyConnectAddress: '127.0.0.1',
      identifiers: { dnsZones: [GRANTED_ZONE] },
      corroborate,
    });
  });

  after(async () => {
    await responder?.close();
    await running?.close();
    pki?.cleanup();
  });

  const account = async (): Promise<RawAcmeClient> => {
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

  /**
   * Orders `names`, serves each http-01 key authorization (the corroborator's requests held
   * unless `holdCorroborations` is false) and answers every challenge; the order URL and the
   * authorization URLs.
   */
  async function answered(
    client: RawAcmeClient,
    names: readonly string[],
    holdCorroborations = true,
  ): Promise<{ orderUrl: string; authzUrls: string[] }> {
    const order = await client.post(client.directory.newOrder as string, {
      identifiers: names.map((value) => ({ type: 'dns', value })),
    });
    assert.equal(order.status, 201, order.text);
    const authzUrls = order.json?.authorizations as string[];
    const challengeUrls: string[] = [];
    for (const authzUrl of authzUrls) {
      const authz = await client.post(authzUrl, '');
      const challenge = (authz.json?.challenges as Array<Record<string, string>>).find(
        (c) => c.type === 'http-01',
      );
      assert.ok(challenge, authz.text);
      responder.tokens.set(challenge.token!, {
        body: keyAuthorization(challenge.token!, jwkThumbprint(publicJwk(client.key))),
        holdFrom: holdCorroborations ? 1 : Infinity,
        seen: 0,
      });
      challengeUrls.push(challenge.url!);
    }
    for (const url of challengeUrls) assert.equal((await client.post(url, {})).status, 200);
    return { orderUrl: order.headers.location as string, authzUrls };
  }

  const statuses = async (client: RawAcmeClient, urls: readonly string[]): Promise<string[]> => {
    const out: string[] = [];
    for (const url of urls) out.push(String((await client.post(url, '')).json?.status));
    return out;
  };

  it('a 6-name order answered at once: all 6 corroborations run together, the order is ready', async () => {
    const client = await account();
    const names = Array.from({ length: 6 }, (_, i) => `a${i}.${GRANTED_ZONE}`);
    assert.ok(names.length > 4);
    const { orderUrl, authzUrls } = await answered(client, names);
    // Every corroboration is at the responder at once (or one failed: then stop waiting).
    await waitForCondition(
      progress,
      'progress',
      () => failed.length > 0 || responder.heldTokens().length >= names.length,
      () => `${names.length} corroborations held at once (${responder.heldTokens().length} are)`,
      WAIT_MS,
    );
    assert.deepEqual(failed, [], 'no corroboration failed');
    responder.release();
    await waitForCondition(
      running.server.events,
      'change',
      async () => !(await statuses(client, authzUrls)).includes('pending'),
      'the authorizations decided',
      WAIT_MS,
    );
    assert.deepEqual(failed, []);
    assert.deepEqual(
      await statuses(client, authzUrls),
      names.map(() => 'valid'),
    );
    assert.equal((await client.post(orderUrl, '')).json?.status, 'ready');
  });

  it('an account whose corroborations hang does not make another account’s challenge fail', async () => {
    const failedBefore = failed.length;
    const slow = await account();
    // As many validations as the server runs for one account (its default cap), all held.
    const slowNames = Array.from({ length: 8 }, (_, i) => `slow${i}.${GRANTED_ZONE}`);
    await answered(slow, slowNames);
    await responder.waitHeld(slowNames.length, 'the slow account’s corroborations held');
    const other = await account();
    const { authzUrls } = await answered(other, [`other.${GRANTED_ZONE}`], false);
    await waitForCondition(
      running.server.events,
      'change',
      async () => (await statuses(other, authzUrls))[0] !== 'pending',
      'the other account’s authorization decided',
      WAIT_MS,
    );
    assert.deepEqual(await statuses(other, authzUrls), ['valid'], failed.join('; '));
    assert.deepEqual(failed.slice(failedBefore), []);
    assert.equal(responder.heldTokens().length, slowNames.length, 'the slow ones still held');
    responder.release();
  });
});

describe('acme-mpic: the corroborator’s slots, queue and deadline', () => {
  let fixture: CaFixture;
  let responder: HeldResponder;
  const identityKey = generateKeyPairSync('ed25519').privateKey;
  const callerA = { role: 'validator' as const, name: 'node-a', uri: 'spiffe://test/node/a' };
  const callerB = { role: 'validator' as const, name: 'node-b', uri: 'spiffe://test/node/b' };

  before(async () => {
    fixture = await createCaFixture();
    responder = await HeldResponder.start();
  });

  after(async () => {
    await responder?.close();
  });

  const corroboratorWith = (
    limits: { maxPerPeer: number; maxQueuedPerPeer: number; maxRunning: number },
    extra: { timeoutMs?: number; caa?: CaaResolver } = {},
  ): Corroborator => {
    const validation: ValidationOptions = {
      http01Port: responder.port,
      tlsAlpn01Port: 1,
      timeoutMs: extra.timeoutMs ?? 10_000,
      // The granted zone's names are not resolved: every check stays on loopback.
      testOnlyConnectAddress: '127.0.0.1',
    };
    return createCorroborator({
      chainId: fixture.config.chainId,
      identityKey,
      validation,
      ...(extra.caa === undefined
        ? {}
        : { caa: { resolver: extra.caa, identities: ['hypermesh'] } }),
      authorize: grantCorroborationAuthorizer(fixture.config),
      latestHeight: () => 1,
      isHolder: () => true,
      ...limits,
    });
  };

  /** An http-01 request (default for 127.0.0.1, in the grant's range); every answer is held. */
  const request = (
    identifier: CaCorroborateRequest['identifier'] = { type: 'ip', value: '127.0.0.1' },
  ): CaCorroborateRequest => {
    const token = randomBytes(32).toString('base64url');
    const keyAuthorization = `${token}.${randomBytes(32).toString('base64url')}`;
    responder.tokens.set(token, { body: keyAuthorization, holdFrom: 0, seen: 0 });
    return {
      account: fixture.dcvOperator.publicKey,
      identifier,
      method: 'http-01',
      token,
      keyAuthorization,
    };
  };

  it('the default lets a caller run as many as an ACME server validates at once', () => {
    assert.ok(MAX_CORROBORATIONS_PER_PEER >= 32);
  });

  it('over its running cap a caller waits, callers take turns, and beyond its queue it is refused', async () => {
    const corroborator = corroboratorWith({ maxPerPeer: 1, maxQueuedPerPeer: 2, maxRunning: 1 });
    const [a1, a2, a3, a4, b1] = [request(), request(), request(), request(), request()];
    const start = responder.requests.length;
    const answers = [
      corroborator(a1, callerA),
      corroborator(a2, callerA),
      corroborator(a3, callerA),
    ];
    await responder.waitHeld(1, 'a1 running');
    answers.push(corroborator(b1, callerB));
    // a1 runs, a2 and a3 wait: a fourth of caller A is refused at once.
    await assert.rejects(corroborator(a4, callerA), (error: unknown) => {
      assert.ok(isStoqError(StoqErrorCode.RESOURCE_EXHAUSTED)(error), String(error));
      assert.match((error as Error).message, /node-a are running and 2 waiting already/);
      return true;
    });
    // One at a time (maxRunning 1): release each running request once it is at the responder.
    for (let i = 0; i < 4; i++) {
      await responder.waitHeld(1, `request ${i + 1} running`);
      assert.equal(responder.heldTokens().length, 1, 'one at a time');
      responder.release();
    }
    const attestations = await withDeadline(Promise.all(answers), WAIT_MS, 'all answered');
    for (const bytes of attestations) assert.equal(decodeDcvAttestation(bytes).body.ok, true);
    // Caller A's backlog does not hold caller B up: B runs right after A's next one.
    assert.deepEqual(responder.requests.slice(start), [a1.token, a2.token, b1.token, a3.token]);
  });

  it('a caller that cancels leaves the queue at once, and its place is free again', async () => {
    const corroborator = corroboratorWith({ maxPerPeer: 1, maxQueuedPerPeer: 1, maxRunning: 1 });
    const [running, queued, next] = [request(), request(), request()];
    const first = corroborator(running, callerA);
    await responder.waitHeld(1, 'the first running');
    const cancel = new AbortController();
    const waiting = corroborator(queued, callerA, cancel.signal);
    // Caller A's one queue place is taken.
    await assert.rejects(corroborator(request(), callerA), /1 waiting already/);
    cancel.abort();
    await assert.rejects(withDeadline(waiting, WAIT_MS, 'the cancelled one'), (error: unknown) =>
      isStoqError(StoqErrorCode.RESOURCE_EXHAUSTED)(error),
    );
    // Without the caller's signal it stayed queued for its own 10 s deadline.
    const again = corroborator(next, callerA);
    responder.release();
    await responder.waitHeld(1, 'the next one running');
    responder.release();
    const answers = await withDeadline(Promise.all([first, again]), WAIT_MS, 'both answered');
    for (const bytes of answers) assert.equal(decodeDcvAttestation(bytes).body.ok, true);
    assert.ok(!responder.requests.includes(queued.token), 'the cancelled one never ran');
  });

  it('one deadline covers the CAA climb: a CAA lookup that never answers → ok = false in time', async () => {
    const lookups: string[] = [];
    const corroborator = corroboratorWith(
      { maxPerPeer: 4, maxQueuedPerPeer: 4, maxRunning: 4 },
      {
        timeoutMs: 500,
        caa: {
          lookupCaa: (domain) => {
            lookups.push(domain);
            return new Promise(() => undefined);
          },
        },
      },
    );
    const name = `a.b.c.${GRANTED_ZONE}`;
    const asked = request({ type: 'dns', value: name });
    responder.tokens.set(asked.token, {
      body: asked.keyAuthorization,
      holdFrom: Infinity,
      seen: 0,
    });
    const attestation = await withDeadline(
      corroborator(asked, callerA).then(decodeDcvAttestation),
      WAIT_MS,
      'the corroboration',
    );
    assert.equal(attestation.body.ok, false);
    assert.deepEqual(lookups, [name], 'the climb stopped at the deadline');
  });
});
