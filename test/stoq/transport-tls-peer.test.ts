import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import {
  encodeFrame,
  FrameDecoder,
  FrameType,
  GoAwayCode,
  MAX_DATA_PAYLOAD,
  type Frame,
} from '../../src/stoq/tls/frame.js';
import { INITIAL_STREAM_WINDOW } from '../../src/stoq/tls/mux-stream.js';
import { createTlsTransport, type TlsTransportOptions } from '../../src/stoq/tls/transport.js';
import type { Transport, TransportListener } from '../../src/stoq/transport.js';
import { createTestCertificate, type TestCertificate } from '../helpers/certs.js';
import { isStoqError } from '../helpers/stoq-error.js';
import { rawTlsSocket } from './tls-raw-peer.js';

function tlsTransport(
  certificate: TestCertificate = createTestCertificate(),
  options: Omit<TlsTransportOptions, 'identity'> = {},
): Transport {
  return createTlsTransport({
    ...options,
    identity: {
      privateKey: certificate.privateKey,
      certificateChain: [certificate.certificatePem],
    },
  });
}

const rawPeer = rawTlsSocket;

/** Every frame the raw peer receives until the server closes the connection. */
async function framesUntilClose(socket: TLSSocket): Promise<Frame[]> {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  socket.on('data', (chunk: Buffer) => frames.push(...decoder.push(chunk)));
  await once(socket, 'close');
  return frames;
}

/** Dials `listener` from `client`: both ends of the new connection. */
async function connectTo(listener: TransportListener, client: Transport) {
  const [outbound, inbound] = await Promise.all([client.dial(listener.address), listener.accept()]);
  assert.ok(inbound, 'the listener accepted no connection');
  return { outbound, inbound };
}

async function echoWorks(listener: TransportListener): Promise<void> {
  const client = tlsTransport();
  try {
    const { outbound, inbound } = await connectTo(listener, client);
    const stream = await outbound.openStream();
    await stream.write(Uint8Array.of(42));
    await stream.finish();
    const accepted = await inbound.acceptStream();
    assert.ok(accepted);
    assert.deepEqual(await accepted.read(), Uint8Array.of(42));
    assert.equal(await accepted.read(), null);
  } finally {
    await client.close();
  }
}

const frame = encodeFrame;
const data = (streamId: number, length: number): Buffer =>
  frame({ type: FrameType.DATA, streamId, data: new Uint8Array(length) });
const open = (streamId: number): Buffer => frame({ type: FrameType.OPEN, streamId });

function rawHeader(type: number, streamId: number, length: number): Buffer {
  const bytes = Buffer.alloc(9);
  bytes[0] = type;
  bytes.writeUInt32BE(streamId, 1);
  bytes.writeUInt32BE(length, 5);
  return bytes;
}

describe('TLS transport: a peer that breaks the framing', { timeout: 30_000 }, () => {
  // Stream 1 is already open and valid when these arrive (see below).
  const windowOverrun = [open(3)];
  for (let sent = 0; sent <= INITIAL_STREAM_WINDOW; sent += MAX_DATA_PAYLOAD) {
    windowOverrun.push(data(3, MAX_DATA_PAYLOAD));
  }
  const fin = (streamId: number): Buffer => frame({ type: FrameType.FIN, streamId });
  const cases: [string, Buffer[], RegExp][] = [
    ['an unknown frame type', [rawHeader(0x7f, 1, 0)], /unknown frame type/],
    ['an oversize DATA frame', [rawHeader(FrameType.DATA, 1, 1 << 30)], /size limit/],
    ['DATA on a stream never opened', [data(5, 10)], /never opened/],
    ['OPEN with a listener-side stream id', [open(2)], /out of order/],
    ['OPEN of a stream id twice', [open(3), open(3)], /out of order/],
    ['DATA beyond the stream window', windowOverrun, /overran the window/],
    ['DATA after FIN', [open(3), fin(3), data(3, 1)], /after FIN/],
  ];

  for (const [name, bytes, reason] of cases) {
    it(`closes the connection on ${name} and keeps serving others`, async () => {
      const server = tlsTransport();
      try {
        const listener = await server.listen({ host: '127.0.0.1', port: 0 });
        const [peer, inbound] = await Promise.all([rawPeer(listener.address), listener.accept()]);
        assert.ok(inbound);
        const received = framesUntilClose(peer);
        const pendingAccept = inbound.acceptStream();
        peer.write(Buffer.concat([open(1), data(1, 3)]));
        const stream = await pendingAccept;
        assert.ok(stream, 'the valid stream before the bad frame was accepted');
        peer.write(Buffer.concat(bytes));
        await inbound.closed;
        assert.equal(await inbound.acceptStream(), null);
        await assert.rejects(stream.read(), (error: unknown) => {
          assert.ok(error instanceof StoqError);
          assert.equal(error.code, StoqErrorCode.CONNECTION_CLOSED);
          assert.match(error.message, reason);
          assert.ok(error.cause instanceof StoqError);
          return true;
        });
        const goAway = (await received).find((f) => f.type === FrameType.GOAWAY);
        assert.ok(goAway && goAway.type === FrameType.GOAWAY, 'the peer was told why');
        assert.equal(goAway.code, GoAwayCode.PROTOCOL_ERROR);
        assert.match(goAway.reason, reason);
        await echoWorks(listener);
      } finally {
        await server.close();
      }
    });
  }

  it('refuses a client that does not offer the stoq/1 ALPN', async () => {
    const server = tlsTransport();
    try {
      const listener = await server.listen({ host: '127.0.0.1', port: 0 });
      await assert.rejects(rawPeer(listener.address, 'h2'));
      await echoWorks(listener);
    } finally {
      await server.close();
    }
  });
});

describe('TLS transport: identity and options', { timeout: 30_000 }, () => {
  it('accepts a PEM private key and a DER certificate chain', async () => {
    const certificate = createTestCertificate();
    const server = createTlsTransport({
      identity: {
        privateKey: certificate.privateKeyPem,
        certificateChain: [certificate.certificateDer],
      },
    });
    const client = tlsTransport();
    try {
      const listener = await server.listen({ host: '127.0.0.1', port: 0 });
      const outbound = await client.dial(listener.address);
      assert.deepEqual(outbound.peerKey?.publicKey, certificate.publicKey);
    } finally {
      await Promise.all([client.close(), server.close()]);
    }
  });

  it('rejects a certificate that does not match the private key', () => {
    const certificate = createTestCertificate();
    const other = createTestCertificate();
    assert.throws(
      () =>
        createTlsTransport({
          identity: {
            privateKey: other.privateKey,
            certificateChain: [certificate.certificatePem],
          },
        }),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
  });

  it('rejects a private key that is not Ed25519', () => {
    const certificate = createTestCertificate();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.throws(
      () =>
        createTlsTransport({
          identity: { privateKey, certificateChain: [certificate.certificatePem] },
        }),
      /Ed25519 private key/,
    );
  });

  it('rejects an empty or unreadable certificate chain', () => {
    const certificate = createTestCertificate();
    for (const certificateChain of [[], ['not a certificate'], [randomBytes(64)]]) {
      assert.throws(
        () =>
          createTlsTransport({
            identity: { privateKey: certificate.privateKey, certificateChain },
          }),
        isStoqError(StoqErrorCode.INVALID_ARGUMENT),
      );
    }
    assert.throws(
      () => createTlsTransport({ identity: { privateKey: 'garbage', certificateChain: [] } }),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
  });

  it('rejects a stream window below the protocol minimum', () => {
    assert.throws(
      () => tlsTransport(undefined, { streamWindow: INITIAL_STREAM_WINDOW - 1 }),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
    assert.throws(() => tlsTransport(undefined, { handshakeTimeoutMs: 0 }), /handshakeTimeoutMs/);
  });

  it('needs an identity to listen', async () => {
    const anonymous = createTlsTransport();
    try {
      await assert.rejects(
        anonymous.listen({ host: '127.0.0.1', port: 0 }),
        isStoqError(StoqErrorCode.INVALID_ARGUMENT),
      );
    } finally {
      await anonymous.close();
    }
  });

  it('fails the handshake with a server that does not speak TLS', async () => {
    const sockets = new Set<Socket>();
    const plain = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    });
    plain.listen({ host: '127.0.0.1', port: 0 });
    await once(plain, 'listening');
    const client = tlsTransport();
    try {
      const { port } = plain.address() as AddressInfo;
      await assert.rejects(
        client.dial({ host: '127.0.0.1', port }),
        isStoqError(StoqErrorCode.HANDSHAKE_FAILED),
      );
    } finally {
      await client.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => plain.close(resolve));
    }
  });

  it('moves data intact with a stream window larger than the initial one', async () => {
    const server = tlsTransport(undefined, { streamWindow: 1024 * 1024 });
    const client = tlsTransport(undefined, { streamWindow: 1024 * 1024 });
    try {
      const listener = await server.listen({ host: '127.0.0.1', port: 0 });
      const { outbound, inbound } = await connectTo(listener, client);
      const payload = randomBytes(4 * 1024 * 1024);
      const stream = await outbound.openStream();
      const accepted = await inbound.acceptStream();
      assert.ok(accepted);
      const reading = (async () => {
        const parts: Uint8Array[] = [];
        for (let chunk = await accepted.read(); chunk; chunk = await accepted.read()) {
          parts.push(chunk);
        }
        return Buffer.concat(parts);
      })();
      await stream.write(payload);
      await stream.finish();
      assert.ok((await reading).equals(payload));
    } finally {
      await Promise.all([client.close(), server.close()]);
    }
  });

  it('refuses streams beyond maxInboundStreams with a reset', async () => {
    const server = tlsTransport(undefined, { maxInboundStreams: 2 });
    const client = tlsTransport();
    try {
      const listener = await server.listen({ host: '127.0.0.1', port: 0 });
      const { outbound, inbound } = await connectTo(listener, client);
      const streams = await Promise.all([1, 2, 3].map(() => outbound.openStream()));
      const refused = streams[2];
      assert.ok(refused);
      await assert.rejects(refused.read(), isStoqError(StoqErrorCode.STREAM_RESET));
      const first = await inbound.acceptStream();
      const second = await inbound.acceptStream();
      assert.deepEqual([first?.id, second?.id], [streams[0]?.id, streams[1]?.id]);
    } finally {
      await Promise.all([client.close(), server.close()]);
    }
  });
});
