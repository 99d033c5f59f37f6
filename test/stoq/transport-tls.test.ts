import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { createTlsTransport } from '../../src/stoq/tls/transport.js';
import { createTestCertificate } from '../helpers/certs.js';
import { transportContract } from './transport-contract.js';

function identity() {
  const certificate = createTestCertificate();
  return {
    certificate,
    transport: createTlsTransport({
      identity: {
        privateKey: certificate.privateKey,
        certificateChain: [certificate.certificatePem],
      },
      handshakeTimeoutMs: 5_000,
    }),
  };
}

transportContract('tls', {
  hosts: ['127.0.0.1', '::1'],
  create: () => {
    const { certificate, transport } = identity();
    return Promise.resolve({ transport, publicKey: certificate.publicKey });
  },
  createAnonymous: () => Promise.resolve({ transport: createTlsTransport(), publicKey: null }),
  closedAddress: async (host) => {
    const server = createServer();
    server.listen({ host, port: 0 });
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return { host, port };
  },
  unresponsive: async (host) => {
    const sockets = new Set<Socket>();
    let reached: () => void = () => undefined;
    const arrival = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      reached();
    });
    server.listen({ host, port: 0 });
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    return {
      address: { host, port },
      reached: arrival,
      close: async () => {
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => server.close(resolve));
      },
    };
  },
  maxUnreadBytes: 4 * 1024 * 1024,
});
