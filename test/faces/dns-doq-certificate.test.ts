import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { QUICClient } from '@matrixai/quic';
import Logger, { LogLevel } from '@matrixai/logger';
import { derToPem, parseCertificate } from '../../src/crypto/x509.js';
import {
  DnsServerError,
  DnsServerErrorCode,
  startDnsServers,
  type DnsServers,
} from '../../src/faces/dns/index.js';
import { decodeMessage } from '../../src/trustchain/dns/index.js';
import { createTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';
import { withDeadline } from '../helpers/wait.js';
import { frame, query, testZones } from './dns-fixture.js';

/**
 * A running DoQ server switches its certificate (`replaceDoqCertificate`, what the node does
 * when it renews its identity certificate): new connections see the new leaf, verified against
 * the CA by the QUIC client; a connection opened before keeps working; a certificate that is
 * not the key's is refused and the current one stays.
 */

const A = 1;
/** The name the client checks the server's certificate against (BoringSSL matches DNS names). */
const SERVER_NAME = 'dns.srv.test';
const silent = new Logger('doq-certificate-test', LogLevel.SILENT);

describe('DoQ certificate replacement', () => {
  let pki: TestPki;
  let first: TestIdentity;
  let renewed: TestIdentity;
  let foreign: TestIdentity;
  let servers: DnsServers;
  let port: number;
  const clients: QUICClient[] = [];

  const tlsOf = (identity: TestIdentity) => ({
    cert: identity.chainPem,
    key: identity.transportKey.privateKeyPem,
  });

  /** A DoQ client that verifies the server's chain against the test root. */
  async function connect(): Promise<QUICClient> {
    const client = await withDeadline(
      QUICClient.createQUICClient({
        host: '127.0.0.1',
        port,
        serverName: SERVER_NAME,
        crypto: {
          ops: {
            randomBytes: async (data: ArrayBuffer) => void randomFillSync(new Uint8Array(data)),
          },
        },
        config: {
          verifyPeer: true,
          ca: derToPem(pki.root.certificate),
          applicationProtos: ['doq'],
        },
        logger: silent,
      }),
      20_000,
      'a DoQ connection',
    );
    clients.push(client);
    return client;
  }

  const servedSerial = (client: QUICClient): string => {
    const [leaf] = client.connection.getRemoteCertsChain();
    assert.ok(leaf !== undefined, 'the server presented a certificate');
    return parseCertificate(leaf).serialNumber;
  };

  async function ask(client: QUICClient): Promise<number> {
    const stream = client.connection.newStream();
    const writer = stream.writable.getWriter();
    await writer.write(frame(query('www.srv.test.', A, 0)));
    await writer.close();
    const chunks: Uint8Array[] = [];
    for await (const chunk of stream.readable) chunks.push(chunk);
    const bytes = Buffer.concat(chunks);
    return decodeMessage(bytes.subarray(2)).answers.length;
  }

  before(async () => {
    pki = await createTestPki({ cluster: 'doq-certificate' });
    first = await pki.issue({ name: 'dns-1', dnsNames: [SERVER_NAME] });
    renewed = await pki.issue({
      name: 'dns-1',
      dnsNames: [SERVER_NAME],
      transportKey: first.transportKey,
      falcon: first.falcon,
    });
    foreign = await pki.issue({ name: 'dns-2', dnsNames: [SERVER_NAME], falcon: first.falcon });
    servers = await startDnsServers({
      zones: testZones(),
      doq: { addresses: [{ host: '127.0.0.1', port: 0 }], ...tlsOf(first) },
    });
    port = servers.doq[0]!.port;
  });

  after(async () => {
    for (const client of clients) await client.destroy({ force: true }).catch(() => {});
    await servers?.close();
  });

  it('new connections get the new chain, open ones keep theirs, a foreign key is refused', async () => {
    assert.notEqual(first.serialNumber, renewed.serialNumber);
    const before = await connect();
    assert.equal(servedSerial(before), first.serialNumber);
    assert.equal(await ask(before), 1);

    servers.replaceDoqCertificate(tlsOf(renewed));
    const afterSwitch = await connect();
    assert.equal(servedSerial(afterSwitch), renewed.serialNumber);
    assert.equal(await ask(afterSwitch), 1);
    // The connection set up before the switch is untouched.
    assert.equal(servedSerial(before), first.serialNumber);
    assert.equal(await ask(before), 1);

    // Another key's certificate with this server's key: refused, the renewed chain stays.
    assert.throws(
      () => servers.replaceDoqCertificate({ cert: foreign.chainPem, key: tlsOf(renewed).key }),
      (error: unknown) =>
        error instanceof DnsServerError && error.code === DnsServerErrorCode.DOQ_CONFIG_INVALID,
    );
    assert.throws(
      () => servers.replaceDoqCertificate({ cert: 'not a certificate', key: tlsOf(renewed).key }),
      (error: unknown) =>
        error instanceof DnsServerError && error.code === DnsServerErrorCode.DOQ_CONFIG_INVALID,
    );
    const afterRefusal = await connect();
    assert.equal(servedSerial(afterRefusal), renewed.serialNumber);
    assert.equal(await ask(afterRefusal), 1);
  });
});
