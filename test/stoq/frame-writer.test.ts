import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { FrameWriter } from '../../src/stoq/rpc/frame-writer.js';
import type { TransportStream } from '../../src/stoq/transport.js';

/**
 * A stream like QUIC's: `write` resolves as soon as the bytes are queued in the transport, and
 * `finish` only once the peer's flow control let them all out — never, for a peer that reads
 * nothing.
 */
function bufferingStream(): TransportStream & { written: number; finishCalls: number } {
  const stream = {
    id: '0',
    written: 0,
    finishCalls: 0,
    read: () => new Promise<Uint8Array | null>(() => undefined),
    write: (data: Uint8Array) => {
      stream.written += data.length;
      return Promise.resolve();
    },
    finish: () => {
      stream.finishCalls++;
      return new Promise<void>(() => undefined);
    },
    reset: () => undefined,
  };
  return stream;
}

describe('FrameWriter stall detection', () => {
  it('counts waiting for the finish as a write in flight (QUIC holds the answer until read)', async () => {
    const stream = bufferingStream();
    const writer = new FrameWriter(stream, { maxMessageBytes: 1 << 22, highWaterMark: 1 << 20 });
    writer.enqueueEncoded(new Uint8Array(4 << 20));
    void writer.finish().catch(() => undefined);
    await nextMacrotask();
    assert.equal(stream.written > 4 << 20, true, 'the whole answer went to the transport');
    assert.equal(stream.finishCalls, 1);
    // The answer sits in the transport until the caller reads: the server's sweep must see a
    // write in flight, or it never resets the stream and the answer is held for good.
    assert.notEqual(writer.writeStartedAt, 0);
  });
});
