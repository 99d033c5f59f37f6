import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameReader as AuthFrameReader } from '../../src/stoq/auth/framing.js';
import { retainable } from '../../src/stoq/retained-bytes.js';
import { FrameDecoder } from '../../src/stoq/rpc/framing.js';
import type { TransportStream } from '../../src/stoq/transport.js';

/**
 * A kept view pins its whole buffer. Decoders that keep received bytes (a complete frame handed
 * up, the pieces of an incomplete one) must not hold a large chunk for a few bytes of it.
 */

const CHUNK = 16 * 1024;

/** `bytes` at the end of a fresh `CHUNK`-byte buffer, as a piece of a socket chunk would be. */
function tail(bytes: readonly number[]): Uint8Array {
  const chunk = new Uint8Array(CHUNK);
  chunk.set(bytes, CHUNK - bytes.length);
  return chunk.subarray(CHUNK - bytes.length);
}

function heldBytes(views: readonly Uint8Array[]): number {
  let held = 0;
  for (const buffer of new Set(views.map((view) => view.buffer))) held += buffer.byteLength;
  return held;
}

describe('received bytes kept without pinning their chunk', () => {
  it('copies a view that covers less than half its buffer, and only that', () => {
    const chunk = new Uint8Array(CHUNK).fill(9);
    const small = retainable(chunk.subarray(0, 10));
    assert.notEqual(small.buffer, chunk.buffer);
    assert.equal(small.buffer.byteLength, 10);
    assert.deepEqual([...small], new Array(10).fill(9));
    const large = chunk.subarray(0, CHUNK / 2);
    assert.equal(retainable(large), large);
  });

  it('RPC frames: a small frame and the pieces of an incomplete one do not pin chunks', () => {
    const decoder = new FrameDecoder(1024);
    // A 1-byte frame, then the prefix and first byte of a 3-byte frame, at a chunk's end.
    const frames = decoder.push(tail([0, 0, 0, 1, 42, 0, 0, 0, 3, 7]));
    assert.equal(frames.length, 1);
    assert.deepEqual([...(frames[0] as Uint8Array)], [42]);
    assert.ok(heldBytes(frames) <= 2, 'the complete frame was copied');
    // The incomplete frame's piece is what the decoder keeps until the rest arrives.
    const pieces = (decoder as unknown as { bodyPieces: Uint8Array[] }).bodyPieces;
    assert.equal(pieces.length, 1);
    assert.ok(heldBytes(pieces) <= 2, `the kept piece holds ${heldBytes(pieces)} bytes`);
    const rest = decoder.push(tail([8, 9]));
    assert.deepEqual(
      rest.map((frame) => [...frame]),
      [[7, 8, 9]],
    );
  });

  it('authentication frames: chunks kept while a frame is incomplete do not pin', async () => {
    const chunks = [tail([0, 0]), tail([0, 3]), tail([1]), tail([2])];
    const pending: ((chunk: Uint8Array | null) => void)[] = [];
    let starved: () => void = () => undefined;
    const waiting = new Promise<void>((resolve) => (starved = resolve));
    const stream = {
      read: () =>
        new Promise<Uint8Array | null>((resolve) => {
          const next = chunks.shift();
          if (next) {
            resolve(next);
          } else {
            pending.push(resolve);
            starved();
          }
        }),
    } as unknown as TransportStream;
    const reader = new AuthFrameReader(stream, 1024);
    const body = reader.next();
    // Three of the four chunks are in; the reader waits for the last.
    await waiting;
    const kept = (reader as unknown as { chunks: Uint8Array[] }).chunks;
    assert.ok(kept.length > 0);
    assert.ok(heldBytes(kept) <= 4, `kept chunks hold ${heldBytes(kept)} bytes`);
    pending[0]?.(tail([3]));
    assert.deepEqual([...(await body)], [1, 2, 3]);
  });
});
