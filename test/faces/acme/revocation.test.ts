import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fingerprint, parseCertificate, type ParsedCertificate } from '../../../src/crypto/x509.js';
import {
  AcmeIssuerError,
  AcmeIssuerErrorCode,
  type AcmeIssuer,
  type AcmeRevokeRequest,
} from '../../../src/faces/acme/issuer.js';
import { jwkThumbprint } from '../../../src/faces/acme/jws.js';
import { keyAuthorization } from '../../../src/faces/acme/validation.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { waitForCondition } from '../../helpers/wait.js';
import {
  Http01Responder,
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
 * revokeCert for a certificate the CA already records as revoked (RFC 8555 §7.6,
 * docs/acme.md "Revocation"): revoked by another route (`hypermesh cert revoke`, a `ca/revoke`
 * signed with the certificate's key) or by a concurrent request. The answer is `alreadyRevoked`,
 * no second revocation is sent, and the server records the revocation.
 */

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

function assertAlreadyRevoked(reply: HttpsReply): void {
  assert.equal(reply.status, 400, reply.text);
  assert.equal(reply.headers['content-type'], 'application/problem+json');
  assert.equal(reply.json?.type, PROBLEM('alreadyRevoked'), reply.text);
}

describe('ACME revokeCert of a certificate revoked elsewhere', () => {
  let pki: TestPki;
  let responder: Http01Responder;
  let running: RunningAcme;
  let owner: RawAcmeClient;
  /** Serials the CA records as revoked although this server never revoked them. */
  const revokedElsewhere = new Set<string>();
  /** Serials whose revocation the CA refuses as already done (a concurrent revocation won). */
  const revokedConcurrently = new Set<string>();
  const revocationsSent: AcmeRevokeRequest[] = [];

  before(async () => {
    pki = await createTestPki();
    responder = await Http01Responder.start();
    const ca = pki.ca.issuer;
    const issuer: AcmeIssuer = {
      issue: (request) => ca.issue(request),
      revoke: (request) => {
        revocationsSent.push(request);
        if (revokedConcurrently.has(request.serialHex)) {
          return Promise.reject(
            new AcmeIssuerError(
              AcmeIssuerErrorCode.ALREADY_REVOKED,
              `certificate ${request.serialHex} is revoked`,
            ),
          );
        }
        return ca.revoke(request);
      },
      isRevoked: (serialHex) => revokedElsewhere.has(serialHex),
    };
    running = await startTestAcme(pki, { http01Port: responder.port, issuer });
    owner = new RawAcmeClient(
      running.server.directoryUrl,
      pki.rootPem,
      generateAccountKey('ES256'),
      'ES256',
    );
    await owner.init();
    const reply = await owner.newAccount();
    assert.equal(reply.status, 201, reply.text);
  });

  after(async () => {
    await running?.close();
    await responder?.close();
    pki?.cleanup();
  });

  const orderStatus = async (url: string): Promise<unknown> =>
    (await owner.post(url, '')).json?.status;

  /** Orders, validates (http-01), finalizes and downloads a certificate for 127.0.0.1. */
  async function issueCertificate(): Promise<ParsedCertificate> {
    const created = await owner.post(owner.directory.newOrder as string, {
      identifiers: [{ type: 'ip', value: '127.0.0.1' }],
    });
    assert.equal(created.status, 201, created.text);
    const orderUrl = created.headers.location as string;
    const authz = await owner.post((created.json?.authorizations as string[])[0] as string, '');
    const challenge = (authz.json?.challenges as Array<Record<string, string>>).find(
      (c) => c.type === 'http-01',
    );
    assert.ok(challenge);
    const token = challenge.token as string;
    responder.tokens.set(token, keyAuthorization(token, jwkThumbprint(publicJwk(owner.key))));
    assert.equal((await owner.post(challenge.url as string, {})).status, 200);
    await waitForCondition(
      running.server.events,
      'change',
      async () => (await orderStatus(orderUrl)) === 'ready',
      'order ready',
      20_000,
    );
    const certKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const finalized = await owner.post(created.json?.finalize as string, {
      csr: b64(createCsr({ privateKey: certKey, ipAddresses: ['127.0.0.1'] })),
    });
    assert.equal(finalized.status, 200, finalized.text);
    await waitForCondition(
      running.server.events,
      'change',
      async () => (await orderStatus(orderUrl)) === 'valid',
      'order valid',
      20_000,
    );
    const valid = await owner.post(orderUrl, '');
    const download = await owner.post(valid.json?.certificate as string, '');
    assert.equal(download.status, 200, download.text);
    return parseCertificate(leafDerOf(download.text));
  }

  const revokedMsOf = (leaf: ParsedCertificate): number | null => {
    const record = running.store.certificateByFingerprint(fingerprint(leaf.der));
    assert.ok(record !== undefined);
    return record.revokedMs;
  };

  it('answers alreadyRevoked without sending a revocation, and records it', async () => {
    const leaf = await issueCertificate();
    revokedElsewhere.add(leaf.serialNumber);
    const sentBefore = revocationsSent.length;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      assertAlreadyRevoked(
        await owner.post(owner.directory.revokeCert as string, {
          certificate: b64(leaf.der),
          reason: 1,
        }),
      );
    }
    assert.equal(revocationsSent.length, sentBefore, 'no revocation was sent to the CA');
    assert.notEqual(revokedMsOf(leaf), null, 'the server records the revocation');
  });

  it('answers alreadyRevoked when the CA refuses a revocation as already done', async () => {
    const leaf = await issueCertificate();
    revokedConcurrently.add(leaf.serialNumber);
    const sentBefore = revocationsSent.length;
    assertAlreadyRevoked(
      await owner.post(owner.directory.revokeCert as string, {
        certificate: b64(leaf.der),
        reason: 4,
      }),
    );
    assert.equal(revocationsSent.length, sentBefore + 1);
    assert.notEqual(revokedMsOf(leaf), null, 'the server records the revocation');
    // Recorded: a retry is answered from the server's record, with no second submission.
    assertAlreadyRevoked(
      await owner.post(owner.directory.revokeCert as string, { certificate: b64(leaf.der) }),
    );
    assert.equal(revocationsSent.length, sentBefore + 1);
  });
});
