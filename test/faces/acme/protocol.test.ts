import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { parseCertificate } from '../../../src/crypto/x509.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { keyAuthorization } from '../../../src/faces/acme/validation.js';
import { jwkThumbprint } from '../../../src/faces/acme/jws.js';
import { waitForCondition } from '../../helpers/wait.js';
import {
  Http01Responder,
  PROBLEM,
  RawAcmeClient,
  SKIP_WITHOUT_OPENSSL,
  createTestPki,
  generateAccountKey,
  httpsRequest,
  leafDerOf,
  opensslVerify,
  publicJwk,
  signJws,
  startTestAcme,
  type HttpsReply,
  type RunningAcme,
  type TestPki,
} from './fixtures.js';

/**
 * The protocol with hand-built JWS: EdDSA accounts (acme-client has none), revocation with the
 * certificate's own key, and one request per refusal — every RFC 8555 problem type the server
 * sends, with its HTTP status, and garbage that must never crash it.
 */

function assertProblem(reply: HttpsReply, type: string, status: number): void {
  assert.equal(reply.status, status, `status for ${type}: ${reply.text}`);
  assert.equal(reply.headers['content-type'], 'application/problem+json');
  assert.equal(reply.json?.type, PROBLEM(type), reply.text);
  assert.equal(reply.json?.status, status);
  assert.equal(typeof reply.json?.detail, 'string');
  assert.equal(typeof reply.headers['replay-nonce'], 'string', 'Replay-Nonce on errors too');
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

describe('ACME protocol: hand-built requests', () => {
  let pki: TestPki;
  let responder: Http01Responder;
  let running: RunningAcme;
  let directoryUrl: string;

  before(async () => {
    pki = await createTestPki();
    responder = await Http01Responder.start();
    running = await startTestAcme(pki, {
      http01Port: responder.port,
      termsOfService: 'https://acme.test/terms',
    });
    directoryUrl = running.server.directoryUrl;
  });

  after(async () => {
    await running?.close();
    await responder?.close();
    pki?.cleanup();
  });

  const newClient = async (alg: 'ES256' | 'EdDSA' | 'RS256' | 'ES384' = 'ES256') => {
    const client = new RawAcmeClient(directoryUrl, pki.rootPem, generateAccountKey(alg), alg);
    await client.init();
    return client;
  };

  const registered = async (alg: 'ES256' | 'EdDSA' | 'RS256' = 'ES256') => {
    const client = await newClient(alg);
    const reply = await client.newAccount();
    assert.equal(reply.status, 201, reply.text);
    return client;
  };

  /** Creates an order for 127.0.0.1 and validates its http-01 challenge. */
  async function readyOrder(client: RawAcmeClient): Promise<Record<string, unknown>> {
    const created = await client.post(client.directory.newOrder as string, {
      identifiers: [{ type: 'ip', value: '127.0.0.1' }],
    });
    assert.equal(created.status, 201, created.text);
    const orderUrl = created.headers.location as string;
    const authzUrl = (created.json?.authorizations as string[])[0] as string;
    const authz = await client.post(authzUrl, '');
    const challenge = (authz.json?.challenges as Array<Record<string, string>>).find(
      (c) => c.type === 'http-01',
    );
    assert.ok(challenge);
    assert.deepEqual(
      (authz.json?.challenges as Array<Record<string, string>>).map((c) => c.type),
      ['http-01', 'tls-alpn-01'],
      'an IP identifier offers no dns-01 (RFC 8738 §7)',
    );
    const token = challenge.token as string;
    responder.tokens.set(token, keyAuthorization(token, jwkThumbprint(publicJwk(client.key))));
    const responded = await client.post(challenge.url as string, {});
    assert.equal(responded.status, 200, responded.text);
    assert.match(String(responded.headers.link), /rel="up"/);
    await waitForCondition(
      running.server.events,
      'change',
      async () => (await client.post(orderUrl, '')).json?.status === 'ready',
      'order ready',
      20_000,
    );
    return { ...(await client.post(orderUrl, '')).json, url: orderUrl };
  }

  it('serves the directory and nonces with Replay-Nonce and the index link', async () => {
    const directory = await httpsRequest(directoryUrl, pki.rootPem);
    assert.equal(directory.status, 200);
    for (const field of ['newNonce', 'newAccount', 'newOrder', 'revokeCert', 'keyChange']) {
      assert.match(String(directory.json?.[field]), /^https:\/\/127\.0\.0\.1:\d+\/acme\//);
    }
    assert.deepEqual(directory.json?.meta, {
      termsOfService: 'https://acme.test/terms',
      externalAccountRequired: false,
    });
    assert.equal(typeof directory.headers['replay-nonce'], 'string');
    assert.equal(directory.headers.link, `<${directoryUrl}>;rel="index"`);
    const newNonce = String(directory.json?.newNonce);
    const head = await httpsRequest(newNonce, pki.rootPem, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['cache-control'], 'no-store');
    const get = await httpsRequest(newNonce, pki.rootPem);
    assert.equal(get.status, 204);
    assert.notEqual(head.headers['replay-nonce'], get.headers['replay-nonce']);
    assertProblem(
      await httpsRequest(directoryUrl, pki.rootPem, { method: 'POST' }),
      'malformed',
      405,
    );
    assertProblem(
      await httpsRequest(`${running.server.url}/nowhere`, pki.rootPem),
      'malformed',
      404,
    );
    assertProblem(
      await httpsRequest(`${running.server.url}/acme/new-order`, pki.rootPem),
      'malformed',
      405,
    );
  });

  it('runs a whole EdDSA account: order, http-01, finalize with an Ed25519 CSR, download', async () => {
    const client = await registered('EdDSA');
    const order = await readyOrder(client);
    const certKey = generateKeyPairSync('ed25519').privateKey;
    const finalized = await client.post(order.finalize as string, {
      csr: b64(createCsr({ privateKey: certKey, ipAddresses: ['127.0.0.1'] })),
    });
    assert.equal(finalized.status, 200, finalized.text);
    await waitForCondition(
      running.server.events,
      'change',
      async () => (await client.post(order.url as string, '')).json?.status === 'valid',
      'order valid',
      20_000,
    );
    const valid = await client.post(order.url as string, '');
    const download = await client.post(valid.json?.certificate as string, '');
    assert.equal(download.status, 200);
    assert.equal(download.headers['content-type'], 'application/pem-certificate-chain');
    assert.equal((download.text.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
    const leaf = parseCertificate(leafDerOf(download.text));
    assert.equal(leaf.publicKey.asymmetricKeyType, 'ed25519');
    if (SKIP_WITHOUT_OPENSSL === false) {
      const verified = opensslVerify(pki, download.text);
      assert.equal(verified.status, 0, verified.output);
    }
    // Revocation signed by the certificate's own key (jwk, RFC 8555 §7.6).
    const certHolder = new RawAcmeClient(directoryUrl, pki.rootPem, certKey, 'EdDSA');
    await certHolder.init();
    const revokeUrl = client.directory.revokeCert as string;
    const wrongKey = await newClient('EdDSA');
    assertProblem(
      await wrongKey.post(revokeUrl, { certificate: b64(leafDerOf(download.text)) }),
      'unauthorized',
      403,
    );
    const revoked = await certHolder.post(revokeUrl, {
      certificate: b64(leafDerOf(download.text)),
      reason: 1,
    });
    assert.equal(revoked.status, 200, revoked.text);
    assertProblem(
      await certHolder.post(revokeUrl, { certificate: b64(leafDerOf(download.text)) }),
      'alreadyRevoked',
      400,
    );
    // Another account's certificate, order and authorization are not readable.
    const stranger = await registered();
    assertProblem(await stranger.post(valid.json?.certificate as string, ''), 'unauthorized', 403);
    assertProblem(await stranger.post(order.url as string, ''), 'unauthorized', 403);
  });

  it('refuses bad nonces: unknown, reused, missing (badNonce) and offers a fresh one', async () => {
    const client = await registered();
    const url = client.directory.newOrder as string;
    const payload = { identifiers: [{ type: 'ip', value: '127.0.0.1' }] };
    const unknown = await client.post(url, payload, {
      nonce: randomBytes(16).toString('base64url'),
    });
    assertProblem(unknown, 'badNonce', 400);
    const nonce = await client.freshNonce();
    assert.equal((await client.post(url, payload, { nonce })).status, 201);
    assertProblem(await client.post(url, payload, { nonce }), 'badNonce', 400);
    assertProblem(await client.post(url, payload, { nonce: undefined }), 'badNonce', 400);
    // The Replay-Nonce of the refusal works (RFC 8555 §6.5).
    assert.equal((await client.post(url, payload)).status, 201);
  });

  it('keeps at most maxNonces live, forgetting the oldest', async () => {
    const small = await startTestAcme(pki, { maxNonces: 8 });
    try {
      const client = new RawAcmeClient(
        small.server.directoryUrl,
        pki.rootPem,
        generateAccountKey('ES256'),
        'ES256',
      );
      await client.init();
      const first = await client.freshNonce();
      for (let i = 0; i < 20; i++) await client.freshNonce();
      assert.ok(small.server.nonceCount() <= 8, `live nonces: ${small.server.nonceCount()}`);
      const last = await client.freshNonce();
      assertProblem(
        await client.post(client.directory.newAccount as string, {}, { nonce: first }),
        'badNonce',
        400,
      );
      const created = await client.post(client.directory.newAccount as string, {}, { nonce: last });
      assert.equal(created.status, 201, created.text);
    } finally {
      await small.close();
    }
  });

  it('refuses a url that is not the request URL (unauthorized)', async () => {
    const client = await registered();
    const reply = await client.post(
      client.directory.newOrder as string,
      { identifiers: [] },
      {
        url: client.directory.newAccount,
      },
    );
    assertProblem(reply, 'unauthorized', 403);
  });

  it('refuses a bad signature and malformed JWS (malformed)', async () => {
    const client = await registered();
    const url = client.directory.newOrder as string;
    const jws = signJws(
      client.key,
      'ES256',
      { nonce: await client.freshNonce(), url, kid: client.kid },
      {
        identifiers: [{ type: 'ip', value: '127.0.0.1' }],
      },
    );
    const signature = Buffer.from(jws.signature, 'base64url');
    signature[5] = (signature[5] as number) ^ 0x01;
    assertProblem(
      await client.postBody(
        url,
        JSON.stringify({ ...jws, signature: signature.toString('base64url') }),
      ),
      'malformed',
      400,
    );
    assertProblem(await client.postBody(url, '{"protected":'), 'malformed', 400);
    assertProblem(await client.postBody(url, '[1,2,3]'), 'malformed', 400);
    assertProblem(
      await client.postBody(url, `${jws.protected}.${jws.payload}.${jws.signature}`),
      'malformed',
      400,
    );
    assertProblem(
      await client.postBody(url, JSON.stringify({ ...jws, header: { kid: 'x' } })),
      'malformed',
      400,
    );
    assertProblem(
      await client.postBody(url, JSON.stringify({ ...jws, payload: `${jws.payload}=` })),
      'malformed',
      400,
    );
    assertProblem(
      await client.postBody(
        url,
        JSON.stringify({ ...jws, protected: Buffer.from('not json').toString('base64url') }),
      ),
      'malformed',
      400,
    );
    assertProblem(
      await client.postBody(url, JSON.stringify(jws), 'application/json'),
      'malformed',
      415,
    );
    // Both jwk and kid; kid where a jwk is required.
    assertProblem(await client.post(url, {}, { jwk: publicJwk(client.key) }), 'malformed', 400);
    assertProblem(
      await client.post(
        client.directory.newAccount as string,
        {},
        { kid: client.kid, jwk: undefined },
      ),
      'malformed',
      400,
    );
    // A payload that is not JSON, and one with members the schema does not know.
    const header = async () => ({ nonce: await client.freshNonce(), url, kid: client.kid });
    const notJson = signJws(client.key, 'ES256', await header(), Buffer.from('{nope'));
    assertProblem(await client.postBody(url, JSON.stringify(notJson)), 'malformed', 400);
    const postAsGet = signJws(client.key, 'ES256', await header(), '');
    assertProblem(await client.postBody(url, JSON.stringify(postAsGet)), 'malformed', 400);
    assertProblem(
      await client.post(url, { identifiers: [{ type: 'ip', value: '127.0.0.1' }], extra: 1 }),
      'malformed',
      400,
    );
    assertProblem(
      await client.post(url, {
        identifiers: [{ type: 'ip', value: '127.0.0.1' }],
        notAfter: '2030-01-01T00:00:00Z',
      }),
      'malformed',
      400,
    );
  });

  it('refuses an unknown account (accountDoesNotExist)', async () => {
    const client = await registered();
    client.kid = `${running.server.url}/acme/acct/${randomBytes(16).toString('base64url')}`;
    assertProblem(
      await client.post(client.directory.newOrder as string, { identifiers: [] }),
      'accountDoesNotExist',
      400,
    );
    client.kid = 'https://elsewhere.test/acct/1';
    assertProblem(
      await client.post(client.directory.newOrder as string, { identifiers: [] }),
      'accountDoesNotExist',
      400,
    );
  });

  it('refuses unsupported algorithms and keys (badSignatureAlgorithm, badPublicKey)', async () => {
    const url = (await newClient()).directory.newAccount as string;
    const p384 = await newClient('ES384');
    const refused = await p384.newAccount();
    assertProblem(refused, 'badSignatureAlgorithm', 400);
    assert.deepEqual(refused.json?.algorithms, ['ES256', 'EdDSA', 'RS256']);
    const ed = await newClient('EdDSA');
    // The header says ES256 but the key is Ed25519.
    const mismatch = signJws(
      ed.key,
      'EdDSA',
      { alg: 'ES256', nonce: await ed.freshNonce(), url, jwk: publicJwk(ed.key) },
      {},
    );
    assertProblem(await ed.postBody(url, JSON.stringify(mismatch)), 'badSignatureAlgorithm', 400);
    for (const alg of ['HS256', 'none', 'RS512']) {
      const jws = signJws(
        ed.key,
        'EdDSA',
        { alg, nonce: await ed.freshNonce(), url, jwk: publicJwk(ed.key) },
        {},
      );
      assertProblem(await ed.postBody(url, JSON.stringify(jws)), 'badSignatureAlgorithm', 400);
    }
    const withPrivate = { ...(ed.key.export({ format: 'jwk' }) as Record<string, string>) };
    assertProblem(await ed.post(url, {}, { jwk: withPrivate }), 'badPublicKey', 400);
    const weak = new RawAcmeClient(
      directoryUrl,
      pki.rootPem,
      generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey,
      'RS256',
    );
    await weak.init();
    assertProblem(await weak.newAccount(), 'badPublicKey', 400);
  });

  it('refuses bodies above the size limit (413)', async () => {
    const client = await registered();
    const huge = JSON.stringify({ protected: 'a'.repeat(70_000), payload: '', signature: 'b' });
    assertProblem(
      await client.postBody(client.directory.newOrder as string, huge),
      'malformed',
      413,
    );
  });

  it('refuses contacts, identifiers and orders it cannot accept', async () => {
    const unagreed = await newClient();
    assertProblem(await unagreed.newAccount({}), 'malformed', 400);
    assertProblem(
      await unagreed.newAccount({ termsOfServiceAgreed: true, contact: ['mailto:no-at-sign'] }),
      'invalidContact',
      400,
    );
    assertProblem(
      await unagreed.newAccount({ termsOfServiceAgreed: true, contact: ['tel:+15555550100'] }),
      'unsupportedContact',
      400,
    );
    const client = await registered();
    const url = client.directory.newOrder as string;
    const order = (identifiers: unknown) => client.post(url, { identifiers });
    assertProblem(
      await order([{ type: 'email', value: 'a@example.test' }]),
      'unsupportedIdentifier',
      400,
    );
    assertProblem(
      await order([{ type: 'dns', value: 'WWW.Example.COM' }]),
      'rejectedIdentifier',
      400,
    );
    assertProblem(await order([{ type: 'dns', value: '*.com' }]), 'rejectedIdentifier', 400);
    assertProblem(await order([{ type: 'ip', value: '127.0.0.01' }]), 'rejectedIdentifier', 400);
    const several = await order([
      { type: 'dns', value: 'a..example.test' },
      { type: 'ip', value: '::ffff:1.2.3.4' },
      { type: 'dns', value: 'fine.example.test' },
    ]);
    assertProblem(several, 'rejectedIdentifier', 400);
    const subproblems = several.json?.subproblems as Array<Record<string, unknown>>;
    assert.equal(subproblems.length, 2);
    assert.deepEqual(subproblems[1]?.identifier, { type: 'ip', value: '::ffff:1.2.3.4' });
    assertProblem(await order([]), 'malformed', 400);
    assertProblem(
      await order([
        { type: 'ip', value: '127.0.0.1' },
        { type: 'ip', value: '127.0.0.1' },
      ]),
      'malformed',
      400,
    );
    // Without a TXT resolver this server offers no dns-01, so a wildcard cannot be validated.
    assertProblem(
      await order([{ type: 'dns', value: '*.www.example.test' }]),
      'rejectedIdentifier',
      400,
    );
  });

  it('refuses finalize before the order is ready (orderNotReady) and bad CSRs (badCSR)', async () => {
    const client = await registered('RS256');
    const pending = await client.post(client.directory.newOrder as string, {
      identifiers: [{ type: 'ip', value: '127.0.0.1' }],
    });
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const csr = b64(createCsr({ privateKey: key, ipAddresses: ['127.0.0.1'] }));
    assertProblem(
      await client.post(pending.json?.finalize as string, { csr }),
      'orderNotReady',
      403,
    );

    const order = await readyOrder(client);
    const finalize = order.finalize as string;
    const otherNames = b64(createCsr({ privateKey: key, ipAddresses: ['127.0.0.2'] }));
    assertProblem(await client.post(finalize, { csr: otherNames }), 'badCSR', 400);
    const extraCn = b64(
      createCsr({ privateKey: key, commonName: 'extra.example.test', ipAddresses: ['127.0.0.1'] }),
    );
    assertProblem(await client.post(finalize, { csr: extraCn }), 'badCSR', 400);
    const weakKey = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    assertProblem(
      await client.post(finalize, {
        csr: b64(createCsr({ privateKey: weakKey, ipAddresses: ['127.0.0.1'] })),
      }),
      'badCSR',
      400,
    );
    const broken = Buffer.from(createCsr({ privateKey: key, ipAddresses: ['127.0.0.1'] }));
    broken[broken.length - 3] = (broken[broken.length - 3] as number) ^ 0xff;
    assertProblem(await client.post(finalize, { csr: b64(broken) }), 'badCSR', 400);
    assertProblem(await client.post(finalize, { csr: b64(randomBytes(40)) }), 'badCSR', 400);
    // The account's own key as the certificate's key (refused as by Boulder).
    const accountKeyCsr = b64(createCsr({ privateKey: client.key, ipAddresses: ['127.0.0.1'] }));
    const ownKey = await client.post(finalize, { csr: accountKeyCsr });
    assertProblem(ownKey, 'badCSR', 400);
    assert.match(String(ownKey.json?.detail), /the account's key/);
    // The order is still ready after refusals, and a good CSR finalizes it.
    const good = await client.post(finalize, { csr });
    assert.equal(good.status, 200, good.text);
    assert.ok(['processing', 'valid'].includes(String(good.json?.status)));
    assertProblem(await client.post(finalize, { csr }), 'orderNotReady', 403);
    await waitForCondition(
      running.server.events,
      'change',
      async () => (await client.post(order.url as string, '')).json?.status === 'valid',
      'order valid',
      20_000,
    );
  });

  it('deactivates an authorization; its order becomes invalid', async () => {
    const client = await registered();
    const created = await client.post(client.directory.newOrder as string, {
      identifiers: [{ type: 'ip', value: '127.0.0.1' }],
    });
    const authzUrl = (created.json?.authorizations as string[])[0] as string;
    assertProblem(await client.post(authzUrl, { status: 'valid' }), 'malformed', 400);
    const deactivated = await client.post(authzUrl, { status: 'deactivated' });
    assert.equal(deactivated.json?.status, 'deactivated');
    const order = await client.post(created.headers.location as string, '');
    assert.equal(order.json?.status, 'invalid');
    assert.equal((order.json?.error as Record<string, string>).type, PROBLEM('unauthorized'));
  });

  it('never crashes on garbage: every reply is a problem document, and the server keeps serving', async () => {
    const client = await registered();
    const urls = [
      client.directory.newAccount,
      client.directory.newOrder,
      client.directory.revokeCert,
      client.directory.keyChange,
      client.kid,
    ] as string[];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...urls),
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.json().map((j) => j),
          fc
            .record({
              protected: fc.base64String(),
              payload: fc.base64String(),
              signature: fc.base64String(),
            })
            .map((r) => JSON.stringify(r)),
          fc
            .jsonValue()
            .map((payload) =>
              JSON.stringify(
                signJws(client.key, 'ES256', { nonce: 'x', url: 'u', kid: client.kid }, payload),
              ),
            ),
        ),
        async (url, body) => {
          const reply = await client.postBody(url, body);
          assert.ok(reply.status >= 400 && reply.status < 500, `${reply.status} ${reply.text}`);
          assert.match(String(reply.json?.type), /^urn:ietf:params:acme:error:/);
        },
      ),
      { numRuns: 60 },
    );
    // Signed garbage payloads for every endpoint, with fresh nonces.
    for (const url of urls) {
      for (const payload of [[], 'x', 7, null, { csr: 5 }, { identifiers: 'x' }]) {
        const reply = await client.post(url, payload);
        assert.ok(
          reply.status >= 400 && reply.status < 500,
          `${url} ${reply.status} ${reply.text}`,
        );
      }
    }
    assert.equal((await httpsRequest(directoryUrl, pki.rootPem)).status, 200);
  });
});
