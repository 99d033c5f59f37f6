/**
 * Makes one QUIC and one TLS-over-TCP STOQ transport handshake on the given loopback ports, for
 * `bench/kex/capture.sh` to capture. Transport handshakes only: the key exchange is negotiated
 * there, before STOQ authentication.
 */
import { createQuicTransport } from '../../src/stoq/quic/transport.js';
import { createTlsTransport } from '../../src/stoq/tls/transport.js';
import { generateTestIdentity } from './identity.js';

const [quicPort, tlsPort] = process.argv.slice(2).map(Number);
if (!quicPort || !tlsPort) {
  process.stderr.write('usage: handshake.ts QUIC_PORT TLS_PORT\n');
  process.exit(2);
}
const host = '127.0.0.1';
const server = await generateTestIdentity('kex-server');
const client = await generateTestIdentity('kex-client');

const quicServer = createQuicTransport({ privateKey: server.privateKey });
const quicClient = createQuicTransport({ privateKey: client.privateKey });
const quicListener = await quicServer.listen({ host, port: quicPort });
const quicConnection = await quicClient.dial({ host, port: quicPort });
quicConnection.close();
await quicListener.close();
await Promise.all([quicServer.close(), quicClient.close()]);

const tlsServer = createTlsTransport({ identity: server.tls });
const tlsClient = createTlsTransport({ identity: client.tls });
const tlsListener = await tlsServer.listen({ host, port: tlsPort });
const tlsConnection = await tlsClient.dial({ host, port: tlsPort });
tlsConnection.close();
await tlsListener.close();
await Promise.all([tlsServer.close(), tlsClient.close()]);
process.stdout.write('handshakes done\n');
process.exit(0);
