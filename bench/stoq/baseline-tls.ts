/**
 * The handshake baseline: plain `node:tls` TLS 1.3 with mutual authentication, the same
 * Ed25519 certificates, and chains verified against the dev CA root inside the handshake
 * (`requestCert` + `rejectUnauthorized` on both sides). No STOQ framing, no FALCON.
 *
 * One handshake = TCP connect + TLS 1.3 handshake + a 1-byte echo. In TLS 1.3 the client
 * finishes before the server has checked the client's certificate (RFC 8446 §4.4.4), so the
 * echo is what proves the server accepted it — as STOQ's `Result` message does.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createSecureContext, createServer, type Server, type TLSSocket } from 'node:tls';
import type { BenchIdentity } from './pki.js';

export interface MtlsEchoServer {
  readonly port: number;
  close(): Promise<void>;
}

function credentials(identity: BenchIdentity) {
  return {
    key: identity.ed25519PrivateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    cert: identity.chainPem,
    ca: identity.rootPem,
    minVersion: 'TLSv1.3' as const,
    maxVersion: 'TLSv1.3' as const,
  };
}

export async function startMtlsEchoServer(
  identity: BenchIdentity,
  host: string,
): Promise<MtlsEchoServer> {
  const sockets = new Set<TLSSocket>();
  const server: Server = createServer(
    { ...credentials(identity), requestCert: true, rejectUnauthorized: true },
    (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      socket.on('data', (data) => socket.write(data));
      socket.on('end', () => socket.end());
    },
  );
  // A client that gives up mid-handshake must not take the server down.
  server.on('tlsClientError', () => undefined);
  server.listen({ host, port: 0 });
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export type MtlsHandshake = () => Promise<void>;

/**
 * A function that runs one complete mTLS handshake (plus the echo) against the server. The
 * client's secure context is made once and reused, as a well-written client does: building one
 * per connection (what passing `key`/`cert` to every `tls.connect` does) costs ~2 ms here.
 */
export function mtlsClient(identity: BenchIdentity, host: string, port: number): MtlsHandshake {
  const options = {
    host,
    port,
    secureContext: createSecureContext(credentials(identity)),
    rejectUnauthorized: true,
    // The chain is verified against the CA; the SPIFFE URI is not a host name to match.
    checkServerIdentity: () => undefined,
  };
  return () =>
    new Promise<void>((resolve, reject) => {
      const socket = connect(options);
      const timer = setTimeout(() => fail(new Error('mTLS handshake timed out')), 10_000);
      const fail = (error: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      socket.once('error', fail);
      socket.once('secureConnect', () => socket.write('x'));
      socket.once('data', () => {
        clearTimeout(timer);
        socket.off('error', fail);
        socket.on('error', () => undefined);
        socket.destroy();
        resolve();
      });
    });
}
