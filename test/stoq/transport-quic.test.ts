import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { isIP } from 'node:net';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import {
  createQuicTransport,
  DEFAULT_QUIC_MAX_STREAM_DATA,
} from '../../src/stoq/quic/transport.js';
import { transportContract } from './transport-contract.js';

function udpSocket(host: string) {
  return createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
}

transportContract('quic', {
  hosts: ['127.0.0.1', '::1'],
  create: () => {
    const { privateKey } = generateEd25519KeyPair();
    return Promise.resolve({
      // A short handshake deadline keeps the "nothing listens" tests quick: UDP has no refusal.
      transport: createQuicTransport({ privateKey, handshakeTimeoutMs: 1500 }),
      publicKey: ed25519RawPublicKey(privateKey),
    });
  },
  closedAddress: async (host) => {
    const socket = udpSocket(host);
    socket.bind(0, host);
    await once(socket, 'listening');
    const { port } = socket.address();
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    return { host, port };
  },
  unresponsive: async (host) => {
    const socket = udpSocket(host);
    const reached = once(socket, 'message').then(() => undefined);
    socket.bind(0, host);
    await once(socket, 'listening');
    return {
      address: { host, port: socket.address().port },
      reached,
      close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
    };
  },
  // quinn's stream receive window (DEFAULT_QUIC_MAX_STREAM_DATA, 2 MiB) plus what is in flight
  // (our 256 KiB write buffer and quinn's send side).
  maxUnreadBytes: DEFAULT_QUIC_MAX_STREAM_DATA + 2 * 1024 * 1024,
  timeoutMs: 60_000,
});
