import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AcmeError, AcmeErrorCode } from '../../../src/faces/acme/errors.js';
import type { AddressResolver, ExternalNames } from '../../../src/faces/acme/external-resolver.js';
import {
  keyAuthorization,
  validateChallenge,
  type ValidationOptions,
} from '../../../src/faces/acme/validation.js';
import { jwkThumbprint } from '../../../src/faces/acme/jws.js';
import { waitForCondition } from '../../helpers/wait.js';
import {
  Http01Responder,
  PROBLEM,
  RawAcmeClient,
  createTestPki,
  freePort,
  generateAccountKey,
  publicJwk,
  startTestAcme,
  type RunningAcme,
  type TestPki,
} from './fixtures.js';

/**
 * Names in the cluster's zones get the address filter of external names (docs/acme.md,
 * "Challenges"): under the default open zone policy anyone can register `x.<zone>` with an A
 * record of 127.0.0.1, 10.x or 169.254.169.254, so a validation connects only to globally
 * routable addresses, and its errors name no address it reached.
 */

const NAME = 'x.zone.test';
const dns = (value: string) => ({ type: 'dns' as const, value });
const token = 'zone-address-token';
const keyAuth = `${token}.thumbprint`;

/** A resolver answering `addresses` for every name, recording the names. */
function fixedAddresses(addresses: string[], asked: string[] = []): AddressResolver {
  return {
    lookupAddresses: (name) => {
      asked.push(name);
      return Promise.resolve(addresses);
    },
  };
}

describe('ACME: the address filter for names in the cluster’s zones', () => {
  let responder: Http01Responder;
  let connections = 0;
  const count = (): void => {
    connections += 1;
  };

  before(async () => {
    responder = await Http01Responder.start();
    responder.tokens.set(token, keyAuth);
    responder.server.on('connection', count);
  });

  after(async () => {
    responder?.server.off('connection', count);
    await responder?.close();
  });

  const options = (extra: Partial<ValidationOptions> = {}): ValidationOptions => ({
    http01Port: responder.port,
    tlsAlpn01Port: responder.port,
    timeoutMs: 5_000,
    ...extra,
  });

  it('a zone name resolving only to loopback, private, link-local or mapped addresses is refused unconnected', async () => {
    // The name is the cluster's: not external, or no external names configured at all.
    const notExternal: ExternalNames = {
      isExternal: () => false,
      resolver: {
        lookupAddresses: () => Promise.reject(new Error('external resolver asked')),
        lookupTxt: () => Promise.reject(new Error('external resolver asked')),
        lookupCaa: () => Promise.reject(new Error('external resolver asked')),
      },
    };
    const before = connections;
    for (const address of ['127.0.0.1', '10.0.0.1', '169.254.169.254', '::ffff:127.0.0.1']) {
      for (const external of [undefined, notExternal]) {
        for (const type of ['http-01', 'tls-alpn-01'] as const) {
          const asked: string[] = [];
          const outcome = await validateChallenge(
            type,
            dns(NAME),
            token,
            keyAuth,
            options({
              addressResolver: fixedAddresses([address], asked),
              ...(external === undefined ? {} : { external }),
            }),
          );
          const what = `${type} ${address}${external === undefined ? '' : ' (not external)'}`;
          assert.deepEqual(asked, [NAME], what);
          assert.equal(outcome?.code, 'dns', what);
          assert.match(outcome?.message ?? '', /not globally routable/, what);
          assert.ok(!(outcome?.message ?? '').includes(address), what);
          assert.deepEqual(outcome?.options.identifier, dns(NAME), what);
        }
      }
    }
    assert.equal(connections, before, 'nothing was connected to');
  });

  it('with the test-only allowNonPublicAddresses, the same name is connected to and validates', async () => {
    const hosts = responder.hosts.length;
    const outcome = await validateChallenge(
      'http-01',
      dns(NAME),
      token,
      keyAuth,
      options({ addressResolver: fixedAddresses(['127.0.0.1']), allowNonPublicAddresses: true }),
    );
    assert.equal(outcome, null);
    assert.deepEqual(responder.hosts.slice(hosts), [`${NAME}:${responder.port}`]);
  });

  it('a failed or unanswered lookup is the dns problem', async () => {
    const failed = await validateChallenge(
      'http-01',
      dns(NAME),
      token,
      keyAuth,
      options({
        addressResolver: {
          lookupAddresses: () =>
            Promise.reject(new AcmeError(AcmeErrorCode.DNS_LOOKUP_FAILED, 'SERVFAIL')),
        },
      }),
    );
    assert.equal(failed?.code, 'dns', failed?.message);
    assert.match(failed?.message ?? '', /A\/AAAA lookup of x\.zone\.test failed: SERVFAIL/);
    const none = await validateChallenge(
      'http-01',
      dns(NAME),
      token,
      keyAuth,
      options({ addressResolver: fixedAddresses([]) }),
    );
    assert.equal(none?.code, 'dns');
    assert.match(none?.message ?? '', /has no A or AAAA record/);
    const silent = await validateChallenge(
      'http-01',
      dns(NAME),
      token,
      keyAuth,
      options({
        timeoutMs: 300,
        addressResolver: { lookupAddresses: () => new Promise(() => undefined) },
      }),
    );
    assert.equal(silent?.code, 'dns');
    assert.match(
      silent?.message ?? '',
      /A\/AAAA lookup of x\.zone\.test did not finish within 300 ms/,
    );
  });

  it('connection errors name no address (the error code only)', async () => {
    const closed = await freePort();
    const allowed = options({
      addressResolver: fixedAddresses(['127.0.0.1']),
      allowNonPublicAddresses: true,
      http01Port: closed,
      tlsAlpn01Port: closed,
    });
    const http = await validateChallenge('http-01', dns(NAME), token, keyAuth, allowed);
    assert.equal(http?.code, 'connection');
    assert.match(http?.message ?? '', /connection failed \(ECONNREFUSED\)/);
    assert.doesNotMatch(http?.message ?? '', /127\.0\.0\.1/);
    const tls = await validateChallenge('tls-alpn-01', dns(NAME), token, keyAuth, allowed);
    assert.equal(tls?.code, 'tls');
    assert.match(tls?.message ?? '', /ECONNREFUSED/);
    assert.doesNotMatch(tls?.message ?? '', /127\.0\.0\.1/);
  });
});

describe('ACME server: a zone name whose A record is loopback (the operating system’s resolver)', () => {
  let pki: TestPki;
  let running: RunningAcme;
  let responder: Http01Responder;

  before(async () => {
    pki = await createTestPki();
    responder = await Http01Responder.start();
    // `localhost` stands for a name registered in the cluster's zone with A 127.0.0.1; no
    // external names, no allowNonPublicAddresses, no testOnlyConnectAddress.
    running = await startTestAcme(pki, {
      http01Port: responder.port,
      identifiers: { dnsZones: ['localhost'] },
    });
  });

  after(async () => {
    await running?.close();
    await responder?.close();
    pki?.cleanup();
  });

  it('the challenge fails with dns and the responder on loopback sees no request', async () => {
    const client = new RawAcmeClient(
      running.server.directoryUrl,
      pki.rootPem,
      generateAccountKey('ES256'),
      'ES256',
    );
    await client.init();
    assert.equal((await client.newAccount()).status, 201);
    const order = await client.post(client.directory.newOrder as string, {
      identifiers: [{ type: 'dns', value: 'localhost' }],
    });
    assert.equal(order.status, 201, order.text);
    const authzUrl = (order.json?.authorizations as string[])[0] as string;
    const authz = await client.post(authzUrl, '');
    const challenge = (authz.json?.challenges as Array<Record<string, string>>).find(
      (c) => c.type === 'http-01',
    );
    assert.ok(challenge, authz.text);
    responder.tokens.set(
      challenge.token!,
      keyAuthorization(challenge.token!, jwkThumbprint(publicJwk(client.key))),
    );
    assert.equal((await client.post(challenge.url!, {})).status, 200);
    let reply = await client.post(challenge.url!, '');
    await waitForCondition(
      running.server.events,
      'change',
      async () => {
        reply = await client.post(challenge.url!, '');
        return reply.json?.status !== 'processing';
      },
      'the validation ends',
      20_000,
    );
    assert.equal(reply.json?.status, 'invalid');
    const error = reply.json?.error as Record<string, unknown>;
    assert.equal(error.type, PROBLEM('dns'), JSON.stringify(error));
    assert.match(String(error.detail), /not globally routable/);
    assert.deepEqual(responder.hosts, [], 'no request reached the loopback responder');
  });
});
