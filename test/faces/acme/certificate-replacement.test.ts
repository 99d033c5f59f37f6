import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import https from 'node:https';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { AcmeError, AcmeErrorCode } from '../../../src/faces/acme/errors.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { withDeadline } from '../../helpers/wait.js';
import { createTestPki, startTestAcme, type RunningAcme, type TestPki } from './fixtures.js';

/**
 * The ACME HTTPS face switches its certificate while running (`replaceCertificate`, what the
 * node does when it renews the identity certificate the face serves): a new TLS connection,
 * verified against the CA, sees the new leaf; a keep-alive connection opened before keeps the
 * old one and still serves requests; a certificate that is not the key's is refused and the
 * current one stays.
 */

describe('ACME HTTPS certificate replacement', () => {
  let pki: TestPki;
  let acme: RunningAcme;
  let renewed: { cert: string; key: string };
  let foreignCert: string;

  /** Issues a certificate for 127.0.0.1 to `privateKey` from the test CA: leaf then chain. */
  async function issueFor(orderId: string, privateKey: ReturnType<typeof createPrivateKey>) {
    const issued = await pki.ca.issuer.issue({
      orderId,
      accountId: 'tests',
      csrDer: createCsr({ privateKey, ipAddresses: ['127.0.0.1'] }),
      identifiers: [{ type: 'ip', value: '127.0.0.1' }],
    });
    return `${issued.certificatePem}${issued.chainPem}`;
  }

  const serialOf = (chainPem: string): string => new X509Certificate(chainPem).serialNumber;

  /** The serial of the leaf a fresh TLS connection, verified against the test root, gets. */
  function handshakeSerial(): Promise<string> {
    return withDeadline(
      new Promise<string>((resolve, reject) => {
        const socket = tls.connect({
          host: '127.0.0.1',
          port: acme.server.port,
          ca: pki.rootPem,
        });
        socket.once('error', reject);
        socket.once('secureConnect', () => {
          const serial = socket.getPeerCertificate().serialNumber;
          socket.end();
          resolve(serial);
        });
      }),
      15_000,
      'a TLS handshake with the ACME server',
    );
  }

  /** GET /directory through `agent`: the status, the served leaf's serial, socket reuse. */
  function getDirectory(agent: https.Agent) {
    return withDeadline(
      new Promise<{ status: number; serial: string; reused: boolean }>((resolve, reject) => {
        const request = https.get(acme.server.directoryUrl, { agent, ca: pki.rootPem });
        request.once('error', reject);
        request.once('response', (response) => {
          const socket = response.socket as tls.TLSSocket;
          const serial = socket.getPeerCertificate().serialNumber;
          response.resume();
          response.once('end', () =>
            resolve({ status: response.statusCode ?? 0, serial, reused: request.reusedSocket }),
          );
        });
      }),
      15_000,
      'GET /directory',
    );
  }

  before(async () => {
    pki = await createTestPki();
    acme = await startTestAcme(pki);
    renewed = {
      cert: await issueFor('renewed-https-certificate', createPrivateKey(pki.tls.key)),
      key: pki.tls.key,
    };
    foreignCert = await issueFor(
      'foreign-https-certificate',
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    );
  });

  after(async () => {
    await acme?.close();
    pki?.cleanup();
  });

  it('new handshakes get the new chain, open connections keep theirs, a foreign key is refused', async () => {
    const original = serialOf(pki.tls.cert);
    const fresh = serialOf(renewed.cert);
    assert.notEqual(original, fresh);
    const keepAlive = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await getDirectory(keepAlive);
      assert.deepEqual(first, { status: 200, serial: original, reused: false });
      assert.equal(await handshakeSerial(), original);

      acme.server.replaceCertificate(renewed);
      assert.equal(await handshakeSerial(), fresh);
      // The keep-alive connection from before the switch: same socket, old leaf, still served.
      assert.deepEqual(await getDirectory(keepAlive), {
        status: 200,
        serial: original,
        reused: true,
      });
      const other = new https.Agent({ keepAlive: false });
      assert.deepEqual(await getDirectory(other), { status: 200, serial: fresh, reused: false });

      // Another key's certificate, or no certificate at all: refused, the renewed chain stays.
      for (const cert of [foreignCert, 'not a certificate']) {
        assert.throws(
          () => acme.server.replaceCertificate({ cert, key: renewed.key }),
          (error: unknown) =>
            error instanceof AcmeError && error.code === AcmeErrorCode.INVALID_OPTIONS,
        );
      }
      assert.equal(await handshakeSerial(), fresh);
    } finally {
      keepAlive.destroy();
    }
  });
});
