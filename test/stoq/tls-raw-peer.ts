import { once } from 'node:events';
import { connect, type TLSSocket } from 'node:tls';
import { STOQ_ALPN } from '../../src/stoq/tls/transport.js';
import type { SocketAddress } from '../../src/stoq/transport.js';
import { createTestCertificate } from '../helpers/certs.js';

/**
 * A TLS client with a throwaway certificate that trusts anything, connected to `address` with
 * `alpn`: it then speaks raw multiplexer frames, to misbehave in ways the real multiplexer
 * never does. Socket errors are swallowed: a reset is how some of these connections end.
 */
export async function rawTlsSocket(address: SocketAddress, alpn = STOQ_ALPN): Promise<TLSSocket> {
  const certificate = createTestCertificate();
  const socket = connect({
    host: address.host,
    port: address.port,
    key: certificate.privateKeyPem,
    cert: certificate.certificatePem,
    minVersion: 'TLSv1.3',
    rejectUnauthorized: false,
    ALPNProtocols: [alpn],
  });
  socket.on('error', () => undefined);
  await once(socket, 'secureConnect');
  return socket;
}
