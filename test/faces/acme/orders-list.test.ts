import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MAX_LISTED_ORDERS } from '../../../src/faces/acme/service.js';
import {
  RawAcmeClient,
  createTestPki,
  generateAccountKey,
  startTestAcme,
  type RunningAcme,
  type TestPki,
} from './fixtures.js';

/**
 * An account's orders list (RFC 8555 §7.1.2.1, docs/acme.md "Resources"): newest first,
 * `MAX_LISTED_ORDERS` per page, a `Link: rel="next"` to the older ones.
 */

describe('ACME: the orders list of an account', () => {
  let pki: TestPki;
  let running: RunningAcme;
  let client: RawAcmeClient;

  before(async () => {
    pki = await createTestPki();
    running = await startTestAcme(pki);
    client = new RawAcmeClient(
      running.server.directoryUrl,
      pki.rootPem,
      generateAccountKey('ES256'),
      'ES256',
    );
    await client.init();
    assert.equal((await client.newAccount()).status, 201);
  });

  after(async () => {
    await running?.close();
    pki?.cleanup();
  });

  /** The `rel="next"` URL among the Link header's (the server also sends `rel="index"`). */
  const nextOf = (link: unknown): string | undefined => {
    const match = /<([^>]+)>;rel="next"/.exec(String(link ?? ''));
    return match?.[1];
  };

  it(`pages the orders ${MAX_LISTED_ORDERS} at a time, newest first, with Link rel="next"`, async () => {
    const accountId = (client.kid as string).split('/').at(-1) as string;
    // More old orders than one page holds, written straight to the store; all in one
    // millisecond but the first, so insertion order has to break the ties.
    const old: string[] = [];
    const createdMs = Date.now() - 60_000;
    for (let i = 0; i <= MAX_LISTED_ORDERS; i += 1) {
      const id = `old-order-${String(i).padStart(4, '0')}`;
      old.push(id);
      running.store.insertOrder({
        order: {
          id,
          accountId,
          status: 'pending',
          expiresMs: Date.now() + 3_600_000,
          identifiers: [{ type: 'ip', value: '127.0.0.1' }],
          createdMs: i === 0 ? createdMs - 1 : createdMs,
        },
        authorizations: [],
      });
    }
    const made = await client.post(client.directory.newOrder as string, {
      identifiers: [{ type: 'ip', value: '127.0.0.1' }],
    });
    assert.equal(made.status, 201, made.text);
    const newest = made.headers.location as string;

    const account = await client.post(client.kid as string, '');
    const first = await client.post(account.json?.orders as string, '');
    assert.equal(first.status, 200, first.text);
    const firstPage = first.json?.orders as string[];
    assert.equal(firstPage.length, MAX_LISTED_ORDERS);
    assert.equal(firstPage[0], newest, 'the order just made comes first');
    const ids = (urls: string[]) => urls.map((url) => url.split('/').at(-1));
    assert.deepEqual(ids(firstPage.slice(1)), old.slice(2).reverse());

    const next = nextOf(first.headers.link);
    assert.ok(next, `a next link: ${String(first.headers.link)}`);
    const second = await client.post(next, '');
    assert.equal(second.status, 200, second.text);
    assert.deepEqual(ids(second.json?.orders as string[]), [old[1], old[0]]);
    assert.equal(nextOf(second.headers.link), undefined, 'the last page has no next link');

    // A cursor that is no order of this account.
    const bad = await client.post(next.replace(/cursor=.*$/, 'cursor=no-such-order'), '');
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json?.type, 'urn:ietf:params:acme:error:malformed');
  });
});
