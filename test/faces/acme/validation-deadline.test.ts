import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import type { CaaResolver } from '../../../src/faces/acme/caa-resolver.js';
import type { TxtResolver } from '../../../src/faces/acme/dns-resolver.js';
import { jwkThumbprint } from '../../../src/faces/acme/jws.js';
import type { AcmeCorroborate, AcmeCorroborationContext } from '../../../src/faces/acme/mpic.js';
import { MAX_PARALLEL_CAA_CHECKS } from '../../../src/faces/acme/service.js';
import { dns01TxtValue, keyAuthorization } from '../../../src/faces/acme/validation.js';
import type { CaaRecord } from '../../../src/trustchain/ca/caa.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { waitForCondition, withDeadline } from '../../helpers/wait.js';
import {
  PROBLEM,
  RawAcmeClient,
  createTestPki,
  generateAccountKey,
  publicJwk,
  startTestAcme,
  type HttpsReply,
  type RunningAcme,
  type TestPki,
} from './fixtures.js';

/**
 * One deadline over a whole validation (docs/acme.md, "Limits and what is not there"): the CAA
 * climb after the check and the corroboration run within `validationTimeoutMs`, and finalize's
 * CAA re-check runs its authorizations in parallel under one such deadline. The lookups and
 * corroborations here never answer unless the test lets them, so without the deadline the
 * validations would never end.
 */

const WAIT_MS = 20_000;
const TIMEOUT_MS = 1_000;
const ZONE = 'deadline.test';

class MemoryTxt implements TxtResolver {
  readonly values = new Map<string, string>();
  lookupTxt(name: string): Promise<string[]> {
    const value = this.values.get(name);
    return Promise.resolve(value === undefined ? [] : [value]);
  }
}

/** CAA lookups: none recorded (`[]`) unless `holding`, when each waits for `release`. */
class HeldCaa extends EventEmitter implements CaaResolver {
  holding = false;
  readonly lookups: string[] = [];
  private readonly held: Array<() => void> = [];

  get waiting(): number {
    return this.held.length;
  }

  lookupCaa(domain: string): Promise<readonly CaaRecord[]> {
    this.lookups.push(domain);
    if (!this.holding) return Promise.resolve([]);
    return new Promise((resolve) => {
      this.held.push(() => resolve([]));
      this.emit('held');
    });
  }

  release(): void {
    this.holding = false;
    for (const resolve of this.held.splice(0)) resolve();
  }
}

describe('ACME: one deadline over a validation and over finalize’s CAA re-check', () => {
  let pki: TestPki;
  const txt = new MemoryTxt();
  const caa = new HeldCaa();
  const servers: RunningAcme[] = [];
  /** Corroborations the server asked for, with their context; none ever answers. */
  const corroborations: Array<AcmeCorroborationContext | undefined> = [];
  const silentValidators: AcmeCorroborate = (_identifier, _method, _token, _keyAuth, context) => {
    corroborations.push(context);
    return new Promise(() => undefined);
  };

  before(async () => {
    pki = await createTestPki();
  });

  after(async () => {
    caa.release();
    for (const server of servers) await server.close();
    pki?.cleanup();
  });

  const start = async (withValidators: boolean): Promise<RunningAcme> => {
    const running = await startTestAcme(pki, {
      txtResolver: txt,
      caaIdentities: ['hypermesh'],
      caaResolver: caa,
      validationTimeoutMs: TIMEOUT_MS,
      ...(withValidators ? { corroborate: silentValidators } : {}),
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

  /** Orders `names`, publishes and answers each dns-01 challenge; the order URL. */
  async function answered(client: RawAcmeClient, names: readonly string[]): Promise<string> {
    const created = await client.post(client.directory.newOrder as string, {
      identifiers: names.map((value) => ({ type: 'dns', value })),
    });
    assert.equal(created.status, 201, created.text);
    for (const authzUrl of created.json?.authorizations as string[]) {
      const authz = await client.post(authzUrl, '');
      const identifier = (authz.json?.identifier as { value: string }).value;
      const challenge = (authz.json?.challenges as Array<Record<string, string>>).find(
        (c) => c.type === 'dns-01',
      );
      assert.ok(challenge, authz.text);
      const keyAuth = keyAuthorization(challenge.token!, jwkThumbprint(publicJwk(client.key)));
      txt.values.set(`_acme-challenge.${identifier}`, dns01TxtValue(keyAuth));
      assert.equal((await client.post(challenge.url!, {})).status, 200);
    }
    return created.headers.location as string;
  }

  /** The order once it has left `pending`. */
  async function settled(running: RunningAcme, client: RawAcmeClient, orderUrl: string) {
    let order: Record<string, unknown> = {};
    await waitForCondition(
      running.server.events,
      'change',
      async () => {
        order = (await client.post(orderUrl, '')).json ?? {};
        return order.status !== 'pending';
      },
      `order ${orderUrl} settled`,
      WAIT_MS,
    );
    return order;
  }

  /** The first challenge of the order's only authorization. */
  async function onlyChallenge(client: RawAcmeClient, order: Record<string, unknown>) {
    const authzUrl = (order.authorizations as string[])[0] as string;
    const authz = (await client.post(authzUrl, '')).json ?? {};
    const challenge = (authz.challenges as Array<Record<string, unknown>>).find(
      (c) => c.type === 'dns-01',
    );
    return { authz, error: challenge?.error as Record<string, unknown> | undefined };
  }

  it('a CAA climb still going at the deadline ends the validation: invalid, dns, no more lookups', async () => {
    const running = await start(false);
    const client = await account(running);
    // 40 labels: 40 lookups to climb; the first never answers.
    const name = `${'a.'.repeat(37)}stuck.${ZONE}`;
    caa.holding = true;
    let order: Record<string, unknown>;
    try {
      order = await settled(running, client, await answered(client, [name]));
    } finally {
      caa.release();
    }
    assert.equal(order.status, 'invalid');
    const { authz, error } = await onlyChallenge(client, order);
    assert.equal(authz.status, 'invalid');
    assert.equal(error?.type, PROBLEM('dns'));
    assert.match(
      String(error?.detail),
      new RegExp(
        `CAA lookups for ${name.replace(/\./g, '\\.')} did not finish within ${TIMEOUT_MS} ms`,
      ),
    );
    assert.deepEqual(
      caa.lookups.filter((domain) => domain.endsWith(`stuck.${ZONE}`)),
      [name],
    );
  });

  it('validators that do not answer: the challenge fails at the deadline, and the collector was told it', async () => {
    const running = await start(true);
    const client = await account(running);
    const orderUrl = await answered(client, [`mpic.${ZONE}`]);
    const order = await settled(running, client, orderUrl);
    assert.equal(order.status, 'invalid');
    const { error } = await onlyChallenge(client, order);
    assert.equal(error?.type, PROBLEM('incorrectResponse'));
    assert.match(String(error?.detail), /the validators did not answer within .*1000 ms/);
    assert.equal(corroborations.length, 1);
    const left = corroborations[0]?.deadlineMs ?? Infinity;
    assert.ok(left > 0 && left <= TIMEOUT_MS, `deadlineMs ${left}`);
  });

  it('finalize checks CAA for its authorizations in parallel, under one deadline', async () => {
    const running = await start(false);
    const client = await account(running);
    const names = Array.from({ length: 3 }, (_, i) => `n${i}.final.${ZONE}`);
    const orderUrl = await answered(client, names);
    const order = await settled(running, client, orderUrl);
    assert.equal(order.status, 'ready', JSON.stringify(order));
    caa.holding = true;
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    let reply: HttpsReply;
    try {
      const finalizing = client.post(order.finalize as string, {
        csr: Buffer.from(createCsr({ privateKey: key, dnsNames: names })).toString('base64url'),
      });
      // Every authorization's first lookup is out at once (at most MAX_PARALLEL_CAA_CHECKS).
      assert.ok(names.length <= MAX_PARALLEL_CAA_CHECKS);
      await waitForCondition(
        caa,
        'held',
        () => caa.waiting === names.length,
        () => `${names.length} CAA lookups held at once (${caa.waiting} are)`,
        WAIT_MS,
      );
      reply = await withDeadline(finalizing, WAIT_MS, 'finalize');
    } finally {
      caa.release();
    }
    assert.equal(reply.json?.type, PROBLEM('caa'), reply.text);
    const subproblems = reply.json?.subproblems as Array<Record<string, unknown>>;
    assert.deepEqual(
      subproblems.map((sub) => [sub.type, (sub.identifier as { value: string }).value]),
      names.map((name) => [PROBLEM('dns'), name]),
    );
    for (const sub of subproblems) {
      assert.match(String(sub.detail), new RegExp(`did not finish within ${TIMEOUT_MS} ms`));
    }
    assert.equal((await client.post(orderUrl, '')).json?.status, 'ready');
  });
});
