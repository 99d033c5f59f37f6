import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeCanonical } from '../../src/codec/cbor.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import { RpcClient, type ClientLimits } from '../../src/stoq/rpc/client.js';
import { encodeFrame, FrameDecoder } from '../../src/stoq/rpc/framing.js';
import { messageFrame, OK, statusFrame } from '../../src/stoq/rpc/wire.js';
import { MuxConnection } from '../../src/stoq/tls/mux.js';
import type { TransportConnection, TransportStream } from '../../src/stoq/transport.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';
import { deferred, demo, identity } from './rpc-fixture.js';

/**
 * The client's own bounds on a misbehaving server, for calls without deadline or signal: a
 * server that answers but never ends its side of the stream, and one that stops in the middle
 * of a frame. The server here is hand-made, over the TLS multiplexer on plain TCP.
 */

const DEADLINE_MS = 10_000;

function frame(value: unknown): Uint8Array {
  return encodeFrame(encodeCanonical(value), 1 << 20);
}

/** Reads the call header (the first frame) off a server stream. */
async function readHeader(stream: TransportStream): Promise<void> {
  const decoder = new FrameDecoder(1 << 20);
  for (;;) {
    const chunk = await stream.read();
    assert.ok(chunk, 'the caller sent a header');
    if (decoder.push(chunk).length > 0) return;
  }
}

interface Connected {
  readonly client: RpcClient<typeof demo>;
  readonly clientMux: MuxConnection;
  readonly serverMux: MuxConnection;
  readonly serverSocket: Socket;
}

describe('STOQ RPC client: bounds on a misbehaving server', { timeout: 30_000 }, () => {
  let tcp: Server;
  const sockets: Socket[] = [];

  before(async () => {
    tcp = createServer();
    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    tcp.close();
    await once(tcp, 'close');
  });

  async function connected(limits: Partial<ClientLimits>): Promise<Connected> {
    const port = (tcp.address() as AddressInfo).port;
    const accepted = once(tcp, 'connection') as Promise<[Socket]>;
    const clientSocket = connect(port, '127.0.0.1');
    await once(clientSocket, 'connect');
    const [serverSocket] = await accepted;
    sockets.push(clientSocket, serverSocket);
    const common = {
      kind: 'tls' as const,
      localAddress: { host: '127.0.0.1', port },
      remoteAddress: { host: '127.0.0.1', port },
      peerKey: null,
      streamWindow: 256 * 1024,
      maxInboundStreams: 1024,
      closeGraceMs: 1000,
    };
    const clientMux = new MuxConnection(clientSocket, { ...common, direction: 'outbound' });
    const serverMux = new MuxConnection(serverSocket, { ...common, direction: 'inbound' });
    const peer = identity('validator', 'server', new Uint8Array(randomBytes(32)));
    const client = new RpcClient(demo, { connection: clientMux, peer }, { limits });
    return { client, clientMux, serverMux, serverSocket };
  }

  /** Answers every call on `mux` with `answer(stream)`, and never ends a stream itself. */
  function serve(mux: MuxConnection, answer: (stream: TransportStream) => Promise<void>): void {
    void (async () => {
      for (;;) {
        const stream = await mux.acceptStream();
        if (!stream) return;
        void answer(stream).catch(() => undefined);
      }
    })();
  }

  it('resets a stream whose server sent its status but never its FIN', async () => {
    const { client, clientMux, serverMux, serverSocket } = await connected({ lingerMs: 50 });
    serve(serverMux, async (stream) => {
      await readHeader(stream);
      await stream.write(frame(messageFrame({ text: 'answer' })));
      await stream.write(frame(statusFrame({ code: OK, message: '', detail: {} })));
    });
    const calls = 20;
    for (let i = 0; i < calls; i++) {
      const response = await withDeadline(
        client.call('echo', { text: 'question' }),
        DEADLINE_MS,
        `call ${i}`,
      );
      assert.deepEqual(response, { text: 'answer' });
    }
    // Each reset reaches the server as a frame: check again whenever the server hears something.
    await waitForCondition(
      serverSocket,
      'data',
      () => clientMux.openStreams === 0,
      () => `${clientMux.openStreams} of ${calls} streams still open on the client's connection`,
      DEADLINE_MS,
    );
    assert.equal(clientMux.closeReason, null, 'only the streams were given up');
  });

  it('keeps a stream whose server ends it in time', async () => {
    const { client, clientMux, serverMux, serverSocket } = await connected({ lingerMs: 60_000 });
    serve(serverMux, async (stream) => {
      await readHeader(stream);
      await stream.write(frame(messageFrame({ text: 'answer' })));
      await stream.write(frame(statusFrame({ code: OK, message: '', detail: {} })));
      await stream.finish();
    });
    assert.deepEqual(await client.call('echo', { text: 'question' }), { text: 'answer' });
    await waitForCondition(
      serverSocket,
      'data',
      () => clientMux.openStreams === 0,
      'the stream was released after both FINs',
      DEADLINE_MS,
    );
  });

  it('fails a call whose response stops mid-frame after the stall timeout', async () => {
    const { client, clientMux, serverMux } = await connected({ stallTimeoutMs: 100 });
    serve(serverMux, async (stream) => {
      await readHeader(stream);
      const whole = frame(messageFrame({ text: 'x'.repeat(100) }));
      // The length prefix and a few bytes of the body, then nothing.
      await stream.write(whole.subarray(0, 10));
    });
    const started = Date.now();
    const failure = await withDeadline(
      client.call('echo', { text: 'question' }).then(
        () => assert.fail('the call succeeded'),
        (error: unknown) => error,
      ),
      DEADLINE_MS,
      'the stalled call fails',
    );
    assert.ok(failure instanceof StoqError, String(failure));
    assert.equal(failure.code, StoqErrorCode.DEADLINE_EXCEEDED);
    assert.equal(failure.detail.reason, 'stalled-read');
    assert.ok(Date.now() - started >= 100);
    assert.equal(clientMux.openStreams, 0, 'the stalled stream was reset');
    assert.equal(clientMux.closeReason, null);
  });
});

describe('STOQ RPC client: a stream opened after the call gave up', { timeout: 30_000 }, () => {
  /** A connection whose `openStream` resolves only when the test says so. */
  function slowConnection() {
    const opened = deferred<TransportStream>();
    const wasReset = deferred();
    let resets = 0;
    const stream: TransportStream = {
      id: 'late',
      read: () => new Promise<never>(() => undefined),
      write: () => Promise.resolve(),
      finish: () => Promise.resolve(),
      reset: () => {
        resets += 1;
        wasReset.resolve();
      },
    };
    const connection: TransportConnection = {
      id: 'slow',
      kind: 'memory',
      direction: 'outbound',
      localAddress: { host: 'client', port: 1 },
      remoteAddress: { host: 'server', port: 2 },
      peerKey: null,
      openStream: () => opened.promise,
      acceptStream: () => Promise.resolve(null),
      close: () => undefined,
      closed: new Promise<void>(() => undefined),
    };
    return { connection, stream, opened, wasReset: wasReset.promise, resets: () => resets };
  }

  for (const cause of ['deadline', 'abort'] as const) {
    it(`resets a stream that opens after the ${cause} ended the call`, async () => {
      const slow = slowConnection();
      const peer = identity('validator', 'server', new Uint8Array(randomBytes(32)));
      const client = new RpcClient(demo, { connection: slow.connection, peer });
      const controller = new AbortController();
      const calling = client.call(
        'echo',
        { text: 'x' },
        cause === 'deadline' ? { deadlineMs: 20 } : { signal: controller.signal },
      );
      if (cause === 'abort') controller.abort();
      await assert.rejects(calling, (error: unknown) => {
        assert.ok(error instanceof StoqError);
        assert.equal(
          error.code,
          cause === 'deadline' ? StoqErrorCode.DEADLINE_EXCEEDED : StoqErrorCode.CANCELLED,
        );
        return true;
      });
      assert.equal(slow.resets(), 0, 'no stream yet');
      slow.opened.resolve(slow.stream);
      await withDeadline(slow.wasReset, 5_000, 'the late stream is reset');
      assert.equal(slow.resets(), 1);
    });
  }
});
