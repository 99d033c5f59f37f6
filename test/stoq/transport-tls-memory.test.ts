import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { StoqErrorCode } from '../../src/stoq/errors.js';
import {
  encodeFrame,
  FrameDecoder,
  FrameType,
  MAX_DATA_PAYLOAD,
} from '../../src/stoq/tls/frame.js';
import { CONGESTION_BYTES, MuxConnection, type MuxOptions } from '../../src/stoq/tls/mux.js';
import type { TransportStream } from '../../src/stoq/transport.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';

/**
 * What a hostile peer can make the multiplexer hold in memory beyond what its windows count:
 * DATA queued for a peer that grants itself credit and stops reading, and received payloads
 * that pin the much larger socket chunks they arrived in. The multiplexer runs over plain TCP
 * here (it does not care what carries its bytes), driven by a raw peer socket.
 */

const DEADLINE_MS = 20_000;
const STREAM_WINDOW = 256 * 1024;

/** A multiplexer on the accepting end of a loopback TCP connection, and the raw peer's socket. */
interface Pair {
  readonly mux: MuxConnection;
  readonly peer: Socket;
  readonly socket: Socket;
}

const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('TLS multiplexer: memory a peer can make it hold', { timeout: 60_000 }, () => {
  let server: Server;
  const pairs: Pair[] = [];

  before(async () => {
    server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });

  after(async () => {
    for (const { peer, socket } of pairs) {
      peer.destroy();
      socket.destroy();
    }
    server.close();
    await once(server, 'close');
  });

  async function pair(options: Partial<MuxOptions> = {}): Promise<Pair> {
    const port = (server.address() as AddressInfo).port;
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const peer = connect(port, '127.0.0.1');
    peer.on('error', () => undefined);
    await once(peer, 'connect');
    const [socket] = await accepted;
    const mux = new MuxConnection(socket, {
      kind: 'tls',
      direction: 'inbound',
      localAddress: { host: '127.0.0.1', port },
      remoteAddress: { host: '127.0.0.1', port: peer.localPort ?? 0 },
      peerKey: null,
      streamWindow: STREAM_WINDOW,
      maxInboundStreams: 1024,
      closeGraceMs: 1000,
      ...options,
    });
    const result = { mux, peer, socket };
    pairs.push(result);
    return result;
  }

  /** Frames of a peer that opens `count` streams and grants itself nearly 2^32 credit on each. */
  function selfCreditingStreams(count: number): Buffer {
    const frames = [
      encodeFrame({ type: FrameType.WINDOW_UPDATE, streamId: 0, credit: 0xffffffff }),
    ];
    for (let i = 0; i < count; i++) {
      const streamId = 2 * i + 1;
      frames.push(encodeFrame({ type: FrameType.OPEN, streamId }));
      frames.push(
        encodeFrame({
          type: FrameType.WINDOW_UPDATE,
          streamId,
          credit: 0xffffffff - STREAM_WINDOW,
        }),
      );
    }
    return Buffer.concat(frames);
  }

  async function acceptAll(mux: MuxConnection, count: number): Promise<TransportStream[]> {
    const streams: TransportStream[] = [];
    for (let i = 0; i < count; i++) {
      const stream = await withDeadline(mux.acceptStream(), DEADLINE_MS, `stream ${i}`);
      assert.ok(stream);
      streams.push(stream);
    }
    return streams;
  }

  it('holds DATA for a peer that stops reading to the congestion bound, resets included', async () => {
    const { mux, peer } = await pair();
    const count = 40;
    peer.write(selfCreditingStreams(count));
    peer.pause();
    const streams = await acceptAll(mux, count);
    const payload = new Uint8Array(4 * 1024 * 1024);
    let most = 0;
    for (const stream of streams) {
      // What a server's stall timeout does: the write never completes, the stream is reset.
      void stream.write(payload).catch(() => undefined);
      await immediate();
      most = Math.max(most, mux.queuedBytes);
      stream.reset();
    }
    await immediate();
    most = Math.max(most, mux.queuedBytes);
    // Without the bound this was every write in full (160 MiB); one frame may cross it.
    assert.ok(
      most <= CONGESTION_BYTES + 2 * MAX_DATA_PAYLOAD,
      `held ${most} bytes for a peer that does not read`,
    );
    assert.equal(mux.closeReason, null, 'a slow reader is held back, not cut off');
  });

  it('drops the unsent DATA of a reset stream', async () => {
    const { mux, peer } = await pair();
    peer.write(selfCreditingStreams(1));
    peer.pause();
    const [stream] = await acceptAll(mux, 1);
    assert.ok(stream);
    await immediate();
    const before = mux.queuedBytes;
    // Below the congestion bound: queued as DATA at once, and the write resolves.
    void stream.write(new Uint8Array(512 * 1024)).catch(() => undefined);
    assert.ok(mux.queuedBytes > before + 256 * 1024, 'the write was queued as DATA');
    stream.reset();
    // The RESET frame (9 bytes) is all that is left to send for it.
    assert.ok(mux.queuedBytes <= before + 64, `${mux.queuedBytes - before} bytes left queued`);
  });

  it('sends every byte of a stream finished both ways even if it is reset at once', async () => {
    const { mux, peer } = await pair();
    const decoder = new FrameDecoder();
    let received = 0;
    let finished = false;
    const fin = new Promise<void>((resolve) => {
      peer.on('data', (chunk: Buffer) => {
        for (const frame of decoder.push(chunk)) {
          if (frame.streamId !== 1) continue;
          if (frame.type === FrameType.DATA) received += frame.data.length;
          if (frame.type === FrameType.FIN) {
            finished = true;
            resolve();
          }
          assert.notEqual(frame.type, FrameType.RESET);
        }
      });
    });
    peer.write(
      Buffer.concat([
        encodeFrame({ type: FrameType.OPEN, streamId: 1 }),
        encodeFrame({ type: FrameType.FIN, streamId: 1 }),
      ]),
    );
    const [stream] = await acceptAll(mux, 1);
    assert.ok(stream);
    assert.equal(await stream.read(), null);
    const size = 200 * 1024;
    void stream.write(new Uint8Array(size));
    void stream.finish();
    // Done both ways: a reset now is a no-op, and must not drop the DATA queued before the FIN.
    stream.reset();
    await withDeadline(fin, DEADLINE_MS, 'the FIN arrives');
    assert.ok(finished);
    assert.equal(received, size);
  });

  it('a stream finished here but reset before its data left ends by RESET, not a shorter FIN', async () => {
    const { mux, peer } = await pair();
    const decoder = new FrameDecoder();
    const seen: string[] = [];
    let received = 0;
    const reset = new Promise<void>((resolve) => {
      peer.on('data', (chunk: Buffer) => {
        for (const frame of decoder.push(chunk)) {
          if (frame.streamId !== 1) continue;
          if (frame.type === FrameType.DATA) received += frame.data.length;
          if (frame.type === FrameType.FIN) seen.push('fin');
          if (frame.type === FrameType.RESET) {
            seen.push('reset');
            resolve();
          }
        }
      });
    });
    // The peer opened the stream and keeps its side open.
    peer.write(encodeFrame({ type: FrameType.OPEN, streamId: 1 }));
    const [stream] = await acceptAll(mux, 1);
    assert.ok(stream);
    await stream.write(new Uint8Array(5));
    if (received < 5) {
      await waitForCondition(
        peer,
        'data',
        () => received === 5,
        'the first write arrives',
        DEADLINE_MS,
      );
    }
    // Same tick: more data, the end, then a reset — the queued DATA is dropped, and so must be
    // the FIN behind it.
    void stream.write(new Uint8Array(5)).catch(() => undefined);
    void stream.finish().catch(() => undefined);
    stream.reset();
    await withDeadline(reset, DEADLINE_MS, 'the RESET arrives');
    assert.deepEqual(seen, ['reset'], 'no FIN before the RESET');
    assert.equal(received, 5);
  });

  it('lets writes through once a congested peer reads again', async () => {
    const { mux, peer } = await pair();
    peer.write(selfCreditingStreams(1));
    peer.pause();
    const [stream] = await acceptAll(mux, 1);
    assert.ok(stream);
    const size = 8 * 1024 * 1024;
    let done = false;
    const written = stream.write(new Uint8Array(size)).then(() => (done = true));
    await immediate();
    assert.equal(done, false);
    assert.ok(mux.queuedBytes <= CONGESTION_BYTES + 2 * MAX_DATA_PAYLOAD);
    let received = 0;
    peer.on('data', (chunk: Buffer) => (received += chunk.length));
    peer.resume();
    await withDeadline(written, DEADLINE_MS, 'the write completes');
    assert.equal(mux.closeReason, null);
    assert.ok(received > 0);
  });

  it('closes the connection when more than maxQueuedBytes is queued for the peer', async () => {
    const { mux, peer } = await pair({ maxQueuedBytes: 256 * 1024 });
    peer.write(selfCreditingStreams(1));
    peer.pause();
    const [stream] = await acceptAll(mux, 1);
    assert.ok(stream);
    const written = stream.write(new Uint8Array(512 * 1024));
    await assert.rejects(written, { code: StoqErrorCode.RESOURCE_EXHAUSTED });
    assert.equal(mux.closeReason?.code, StoqErrorCode.RESOURCE_EXHAUSTED);
    assert.equal(mux.queuedBytes, 0);
  });

  it('holds about the bytes it counts when tiny DATA frames arrive in large records', async () => {
    const { mux, peer } = await pair();
    peer.setNoDelay(true);
    peer.on('data', () => undefined);
    peer.write(
      Buffer.concat([
        encodeFrame({ type: FrameType.OPEN, streamId: 1 }),
        encodeFrame({ type: FrameType.OPEN, streamId: 3 }),
      ]),
    );
    const [kept1, padding] = await acceptAll(mux, 2);
    assert.ok(kept1 && padding);
    // DATA on a reset stream is dropped and its credit returned, so the padding costs nothing.
    padding.reset();
    const kept: Uint8Array[] = [];
    let arrived: () => void = () => undefined;
    void (async () => {
      for (;;) {
        const chunk = await kept1.read().catch(() => null);
        if (!chunk) return;
        kept.push(chunk);
        arrived();
      }
    })();
    const records = 300;
    const recordBytes = 16 * 1024;
    for (let i = 0; i < records; i++) {
      const one = encodeFrame({ type: FrameType.DATA, streamId: 1, data: new Uint8Array([i]) });
      const pad = encodeFrame({
        type: FrameType.DATA,
        streamId: 3,
        data: new Uint8Array(recordBytes - one.length - 9),
      });
      // One record per socket chunk: the next is written once this one's byte was read.
      const read = new Promise<void>((resolve) => (arrived = resolve));
      peer.write(Buffer.concat([one, pad]));
      await withDeadline(read, DEADLINE_MS, `record ${i}`);
    }
    const counted = kept.reduce((sum, chunk) => sum + chunk.length, 0);
    assert.equal(counted, records);
    let held = 0;
    for (const buffer of new Set(kept.map((chunk) => chunk.buffer))) held += buffer.byteLength;
    assert.ok(held <= 2 * counted + 1024, `${counted} bytes counted, ${held} held`);
    assert.equal(mux.closeReason, null);
  });
});
