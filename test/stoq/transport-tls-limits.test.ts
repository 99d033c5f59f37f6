import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { createAuthenticator } from '../../src/stoq/auth/authenticator.js';
import { AuthFailureReason } from '../../src/stoq/auth/reasons.js';
import { StoqErrorCode, type StoqError } from '../../src/stoq/errors.js';
import {
  encodeFrame,
  FrameDecoder,
  FrameType,
  GoAwayCode,
  MAX_DATA_PAYLOAD,
  type Frame,
} from '../../src/stoq/tls/frame.js';
import { INITIAL_STREAM_WINDOW } from '../../src/stoq/tls/mux-stream.js';
import {
  defaultConnectionWindow,
  DEFAULT_MAX_QUEUED_CONTROL_BYTES,
  INITIAL_CONNECTION_WINDOW,
  type MuxConnection,
} from '../../src/stoq/tls/mux.js';
import { createTlsTransport, type TlsTransportOptions } from '../../src/stoq/tls/transport.js';
import type {
  SocketAddress,
  Transport,
  TransportListener,
  TransportStream,
} from '../../src/stoq/transport.js';
import { createTestCertificate } from '../helpers/certs.js';
import { createTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';
import { rejectsWith } from './auth-fixture.js';
import { rawTlsSocket } from './tls-raw-peer.js';

/**
 * What a peer that completed TLS but never authenticated can make a listener hold: received
 * bytes (connection window), streams (accept backlog, one stream while authenticating) and
 * queued replies (control-frame bound). Each test drives the multiplexer with a raw hostile peer.
 */

const DEADLINE_MS = 20_000;

const open = (streamId: number): Buffer => encodeFrame({ type: FrameType.OPEN, streamId });
const reset = (streamId: number): Buffer => encodeFrame({ type: FrameType.RESET, streamId });
const data = (streamId: number, length: number): Buffer =>
  encodeFrame({ type: FrameType.DATA, streamId, data: new Uint8Array(length) });

function tlsTransport(options: TlsTransportOptions = {}): Transport {
  const certificate = createTestCertificate();
  return createTlsTransport({
    ...options,
    identity: {
      privateKey: certificate.privateKey,
      certificateChain: [certificate.certificatePem],
    },
  });
}

/** A TLS client that speaks raw multiplexer frames; `frames` collects what the server sends. */
interface RawPeer {
  readonly socket: TLSSocket;
  readonly frames: Frame[];
  readonly closed: Promise<void>;
}

async function rawPeer(address: SocketAddress): Promise<RawPeer> {
  const socket = await rawTlsSocket(address);
  // Not events.once, which rejects on 'error': a reset is how some of these connections end.
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  socket.on('data', (chunk: Buffer) => frames.push(...decoder.push(chunk)));
  return { socket, frames, closed };
}

/** A raw peer connected to `listener`, and the listener's side of that connection. */
async function connectRaw(
  listener: TransportListener,
): Promise<{ peer: RawPeer; inbound: MuxConnection }> {
  const [peer, inbound] = await Promise.all([rawPeer(listener.address), listener.accept()]);
  assert.ok(inbound, 'the listener accepted the connection');
  return { peer, inbound: inbound as MuxConnection };
}

/**
 * Writes `frames` with the socket's backpressure until they run out or the connection closes;
 * returns the bytes written.
 */
async function writeUntilClosed(peer: RawPeer, frames: Iterable<Buffer>): Promise<number> {
  let sent = 0;
  let isClosed = false;
  void peer.closed.then(() => (isClosed = true));
  for (const frame of frames) {
    if (isClosed || !peer.socket.writable) break;
    sent += frame.length;
    if (!peer.socket.write(frame)) {
      // Not events.once: it rejects on 'error', and a reset connection is what ends the flood.
      const drained = new Promise<void>((resolve) => peer.socket.once('drain', resolve));
      await Promise.race([drained, peer.closed]);
    }
  }
  return sent;
}

describe('TLS multiplexer: bounds on an unauthenticated peer', { timeout: 60_000 }, () => {
  let server: Transport;

  before(() => {
    server = tlsTransport();
  });

  after(async () => {
    await server.close();
  });

  it('holds exactly the connection window unread and closes on one byte more', async () => {
    assert.equal(defaultConnectionWindow(INITIAL_STREAM_WINDOW), INITIAL_CONNECTION_WINDOW);
    const listener = await server.listen({ host: '127.0.0.1', port: 0 });
    const { peer, inbound } = await connectRaw(listener);
    const streams = INITIAL_CONNECTION_WINDOW / MAX_DATA_PAYLOAD;
    const frames: Buffer[] = [];
    for (let index = 0; index < streams; index += 1) {
      frames.push(open(2 * index + 1), data(2 * index + 1, MAX_DATA_PAYLOAD));
    }
    const last = 2 * streams + 1;
    peer.socket.write(Buffer.concat([...frames, open(last)]));
    // Streams arrive in order, so once the last one is accepted every DATA before it was taken.
    let accepted = null;
    for (let index = 0; index <= streams; index += 1) accepted = await inbound.acceptStream();
    assert.equal(accepted?.id, String(last));
    assert.equal(inbound.unreadBytes, INITIAL_CONNECTION_WINDOW);
    assert.ok(inbound.closeReason === null, 'a peer within the window keeps its connection');

    peer.socket.write(data(last, 1));
    await withDeadline(inbound.closed, DEADLINE_MS, 'the server closes the connection');
    const reason = inbound.closeReason as StoqError | null;
    assert.equal(reason?.code, StoqErrorCode.CONNECTION_CLOSED);
    assert.match(reason?.message ?? '', /overran the connection window/);
    await withDeadline(peer.closed, DEADLINE_MS, 'the peer sees the close');
    const goAway = peer.frames.find((frame) => frame.type === FrameType.GOAWAY);
    assert.ok(goAway && goAway.type === FrameType.GOAWAY, 'the peer was told why');
    assert.equal(goAway.code, GoAwayCode.FLOW_CONTROL_ERROR);
    await listener.close();
  });

  it('cuts off a peer that fills 1024 streams at the connection window', async () => {
    const listener = await server.listen({ host: '127.0.0.1', port: 0 });
    const { peer, inbound } = await connectRaw(listener);
    // Every stream filled to its own window, as a peer that ignores the connection window would:
    // 256 MiB if only stream windows applied.
    function* flood(): Generator<Buffer> {
      for (let index = 0; index < 1024; index += 1) {
        const id = 2 * index + 1;
        yield open(id);
        for (let sent = 0; sent < INITIAL_STREAM_WINDOW; sent += MAX_DATA_PAYLOAD) {
          yield data(id, MAX_DATA_PAYLOAD);
        }
      }
    }
    const sending = writeUntilClosed(peer, flood());
    await withDeadline(inbound.closed, DEADLINE_MS, 'the server closes the flooding connection');
    assert.match(inbound.closeReason?.message ?? '', /overran the connection window/);
    assert.ok(
      inbound.unreadBytes <= INITIAL_CONNECTION_WINDOW,
      `${inbound.unreadBytes} bytes held for the peer`,
    );
    const sent = await withDeadline(sending, DEADLINE_MS, 'the flood stops');
    assert.ok(sent < 256 * 1024 * 1024, `the peer got to send all ${sent} bytes`);
    await listener.close();
  });

  it('drops streams reset before they were accepted from the backlog', async () => {
    const listener = await server.listen({ host: '127.0.0.1', port: 0 });
    const { peer, inbound } = await connectRaw(listener);
    // Stream 1 stays open and tells when the server has taken everything sent before its byte.
    peer.socket.write(open(1));
    const marker = await withDeadline(inbound.acceptStream(), DEADLINE_MS, 'the marker stream');
    assert.equal(marker?.id, '1');
    const churn = 20_000;
    const frames: Buffer[] = [];
    for (let index = 1; index <= churn; index += 1) {
      frames.push(open(2 * index + 1), reset(2 * index + 1));
    }
    const last = 2 * churn + 3;
    frames.push(open(last), data(last, 1), data(1, 1));
    peer.socket.write(Buffer.concat(frames));
    assert.deepEqual(
      await withDeadline(marker.read(), DEADLINE_MS, 'the marker'),
      Uint8Array.of(0),
    );
    assert.equal(inbound.acceptBacklog, 1, 'only the stream still open waits to be accepted');
    const accepted = await inbound.acceptStream();
    assert.equal(accepted?.id, String(last));
    assert.deepEqual(await accepted?.read(), Uint8Array.of(0));
    assert.equal(inbound.closeReason, null);
    peer.socket.destroy();
    await listener.close();
  });

  it('closes the connection of a peer that floods refused OPENs and reads nothing', async () => {
    const limited = tlsTransport({ maxInboundStreams: 1 });
    try {
      const listener = await limited.listen({ host: '127.0.0.1', port: 0 });
      const { peer, inbound } = await connectRaw(listener);
      peer.socket.pause();
      // Each refused OPEN costs the server a 9-byte RESET it cannot deliver.
      const limit = 256 * 1024 * 1024;
      function* flood(): Generator<Buffer> {
        let id = 1;
        for (let sent = 0; sent < limit; sent += 10_000 * 9) {
          const batch: Buffer[] = [];
          for (let index = 0; index < 10_000; index += 1, id += 2) batch.push(open(id));
          yield Buffer.concat(batch);
        }
      }
      const sending = writeUntilClosed(peer, flood());
      await withDeadline(inbound.closed, 60_000, 'the server gives up on the peer');
      assert.equal(inbound.closeReason?.code, StoqErrorCode.RESOURCE_EXHAUSTED);
      assert.match(inbound.closeReason?.message ?? '', /does not read/);
      assert.equal(inbound.closeReason?.detail.limit, DEFAULT_MAX_QUEUED_CONTROL_BYTES);
      await withDeadline(sending, DEADLINE_MS, 'the flood stops');
    } finally {
      await limited.close();
    }
  });
});

describe('TLS multiplexer: one stream while authenticating', { timeout: 120_000 }, () => {
  let pki: TestPki;
  let serverIdentity: TestIdentity;
  let clientIdentity: TestIdentity;

  before(async () => {
    pki = await createTestPki({ cluster: 'mux-limits' });
    serverIdentity = await pki.issue({ name: 'server', role: 'node' });
    clientIdentity = await pki.issue({ name: 'client', role: 'node' });
  });

  function authenticator(identity: TestIdentity) {
    return createAuthenticator({
      local: { chain: identity.chain, falcon: identity.falcon, falconBackend: pki.falconBackend },
      trust: { roots: pki.roots, revocation: pki.revocation },
      mode: 'strict',
      timeoutMs: 30_000,
    });
  }

  function transport(identity: TestIdentity): Transport {
    return createTlsTransport({
      identity: {
        privateKey: identity.transportKey.privateKey,
        certificateChain: [identity.chainPem],
      },
    });
  }

  it('resets the streams a peer opens beyond the authentication stream', async () => {
    const server = transport(serverIdentity);
    try {
      const listener = await server.listen({ host: '127.0.0.1', port: 0 });
      const { peer, inbound } = await connectRaw(listener);
      const authenticating = authenticator(serverIdentity).authenticate(inbound);
      authenticating.catch(() => undefined);
      peer.socket.write(Buffer.concat([open(1), open(3), open(5), data(3, 100)]));
      const resets = (): number[] =>
        peer.frames.filter((frame) => frame.type === FrameType.RESET).map((f) => f.streamId);
      await waitForCondition(
        peer.socket,
        'data',
        () => resets().length >= 2,
        () => `RESETs for streams 3 and 5, got ${JSON.stringify(resets())}`,
        DEADLINE_MS,
      );
      assert.deepEqual(resets(), [3, 5]);
      assert.equal(inbound.unreadBytes, 0, 'no bytes of a refused stream are kept');
      assert.equal(inbound.acceptBacklog, 0, 'the authenticator took the one stream');
      peer.socket.destroy();
      await assert.rejects(authenticating, rejectsWith(AuthFailureReason.PROTOCOL_ERROR));
    } finally {
      await server.close();
    }
  });

  it('lets an authenticated peer open many streams', async () => {
    const server = transport(serverIdentity);
    const client = transport(clientIdentity);
    try {
      const listener = await server.listen({ host: '127.0.0.1', port: 0 });
      const [outbound, inbound] = await Promise.all([
        client.dial(listener.address),
        listener.accept(),
      ]);
      assert.ok(inbound);
      await Promise.all([
        authenticator(clientIdentity).authenticate(outbound),
        authenticator(serverIdentity).authenticate(inbound),
      ]);
      const streams = await Promise.all([1, 2, 3, 4].map(() => outbound.openStream()));
      await Promise.all(streams.map((stream, index) => stream.write(Uint8Array.of(index))));
      for (let index = 0; index < streams.length; index += 1) {
        const accepted: TransportStream | null = await inbound.acceptStream();
        assert.deepEqual(await accepted?.read(), Uint8Array.of(index));
      }
    } finally {
      await Promise.all([client.close(), server.close()]);
    }
  });
});
