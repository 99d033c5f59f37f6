import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeMessage } from '../../src/codec/cbor.js';
import { StoqErrorCode } from '../../src/stoq/errors.js';
import { DEFAULT_MAX_MESSAGE_BYTES, encodeFrame } from '../../src/stoq/rpc/framing.js';
import type { TransportStream } from '../../src/stoq/transport.js';
import { STATUS_FRAME, type WireFrame, type WireStatus } from '../../src/stoq/rpc/wire.js';
import { counterValue, rpcPair, serverFrames } from './rpc-fixture.js';

/**
 * The server authorizes a call from its header before it builds the request or reads anything
 * after it: a peer that may not call a method (or names none that exists) cannot make the node
 * decode millions of CBOR items, and an authorized one is held to `maxFrameItems`.
 */

/** Items in a request that fills a default-size frame with empty maps (`a0`, one byte each). */
const EMPTY_MAPS = DEFAULT_MAX_MESSAGE_BYTES - 256;

/**
 * A call-header frame `{method, kind: 'unary', request: [{}, {}, …]}` with `count` empty maps,
 * built by hand: encoding 4 Mi objects would take the test longer than the server.
 */
function emptyMapsHeader(method: string, count: number): Uint8Array {
  const head = encodeMessage({ kind: 'unary', method });
  const requestKey = encodeMessage('request');
  const body = new Uint8Array(head.length + requestKey.length + 5 + count);
  body.set(head, 0);
  // One more entry than `head` has (its first byte is a small map head, `a2`).
  body[0] = 0xa3;
  body.set(requestKey, head.length);
  const arrayAt = head.length + requestKey.length;
  body[arrayAt] = 0x9a;
  new DataView(body.buffer).setUint32(arrayAt + 1, count, false);
  body.fill(0xa0, arrayAt + 5);
  return encodeFrame(body, DEFAULT_MAX_MESSAGE_BYTES);
}

function onlyStatus(frames: readonly WireFrame[]): WireStatus {
  assert.equal(frames.length, 1, 'the answer is one status frame');
  const [frame] = frames;
  assert.ok(frame?.type === STATUS_FRAME);
  return frame.status;
}

/**
 * Sends `frame` on `raw` and returns the server's status, and how long the answer took. Server
 * and caller share this process and its event loop, so a server that decodes synchronously for
 * long shows up as a slow answer.
 */
async function statusAndElapsed(
  raw: TransportStream,
  frame: Uint8Array,
): Promise<{ status: WireStatus; elapsedMs: number }> {
  const started = performance.now();
  void raw.write(frame).catch(() => undefined);
  const status = onlyStatus(await serverFrames(raw));
  return { status, elapsedMs: performance.now() - started };
}

describe('STOQ RPC: authorization before decoding', { timeout: 60_000 }, () => {
  it('a request of 4 Mi empty maps fails fast on its item count, whatever the method', async () => {
    const pair = await rpcPair({ role: 'client' });
    try {
      for (const method of ['demo.v1/validatorsOnly', 'demo.v1/missing', 'demo.v1/echo']) {
        const { status, elapsedMs } = await statusAndElapsed(
          await pair.rawStream(),
          emptyMapsHeader(method, EMPTY_MAPS),
        );
        assert.equal(status.code, StoqErrorCode.MALFORMED_FRAME, method);
        assert.equal(status.detail.reason, 'too-many-items', method);
        assert.ok(elapsedMs < 100, `${method}: answered after ${elapsedMs.toFixed(1)} ms`);
      }
      assert.equal(
        await counterValue(pair.registry, 'hypermesh_stoq_rejected_frames_total', {
          reason: 'too-many-items',
        }),
        3,
      );
      assert.deepEqual(await pair.client.call('echo', { text: 'after' }), { text: 'after' });
    } finally {
      await pair.close();
    }
  });

  it('within the item budget, a forbidden or unknown method is refused before its request is built', async () => {
    // A budget above the request's size, so only the order of the checks keeps the node fast:
    // building 1 Mi empty maps takes ~200 ms, delimiting them a few.
    const count = 1024 * 1024;
    const pair = await rpcPair({ role: 'client', limits: { maxFrameItems: 2 * count } });
    try {
      const cases = [
        ['demo.v1/validatorsOnly', StoqErrorCode.PERMISSION_DENIED],
        ['demo.v1/missing', StoqErrorCode.NOT_FOUND],
      ] as const;
      for (const [method, code] of cases) {
        const { status, elapsedMs } = await statusAndElapsed(
          await pair.rawStream(),
          emptyMapsHeader(method, count),
        );
        assert.equal(status.code, code, method);
        assert.ok(elapsedMs < 100, `${method}: answered after ${elapsedMs.toFixed(1)} ms`);
      }
      assert.deepEqual(await pair.client.call('echo', { text: 'after' }), { text: 'after' });
    } finally {
      await pair.close();
    }
  });

  it("reads none of a message stream's later frames before the caller is authorized", async () => {
    const pair = await rpcPair({ role: 'client' });
    try {
      const raw = await pair.rawStream();
      // The header and, in the same write, a frame that is not CBOR: decoding it would fail the
      // call as MALFORMED_FRAME; refusing the caller first never looks at it.
      const header = encodeFrame(
        encodeMessage({ method: 'demo.v1/gossip', kind: 'messageStream' }),
        1024,
      );
      const garbage = encodeFrame(Uint8Array.of(0xff, 0x00), 1024);
      const both = new Uint8Array(header.length + garbage.length);
      both.set(header, 0);
      both.set(garbage, header.length);
      const { status } = await statusAndElapsed(raw, both);
      assert.equal(status.code, StoqErrorCode.PERMISSION_DENIED);
      assert.equal(
        await counterValue(pair.registry, 'hypermesh_stoq_rejected_frames_total', {
          reason: 'cbor',
        }),
        0,
        'the frame after the header was never decoded',
      );
    } finally {
      await pair.close();
    }
  });

  it('decodes an authorized request after the check, refusing one that is not CBOR', async () => {
    const pair = await rpcPair({ role: 'node' });
    try {
      // `request` is the text 'a' with its byte replaced by an ill-formed UTF-8 byte.
      const good = encodeMessage({ kind: 'unary', method: 'demo.v1/echo', request: 'a' });
      const bad = good.slice();
      bad[bad.length - 1] = 0xff;
      const { status } = await statusAndElapsed(
        await pair.rawStream(),
        encodeFrame(bad, DEFAULT_MAX_MESSAGE_BYTES),
      );
      assert.equal(status.code, StoqErrorCode.MALFORMED_FRAME);
      assert.equal(status.detail.reason, 'cbor');
      assert.equal(
        await counterValue(pair.registry, 'hypermesh_stoq_rejected_frames_total', {
          reason: 'cbor',
        }),
        1,
      );
      const { status: wrongShape } = await statusAndElapsed(
        await pair.rawStream(),
        encodeFrame(good, DEFAULT_MAX_MESSAGE_BYTES),
      );
      assert.equal(wrongShape.code, StoqErrorCode.INVALID_ARGUMENT, 'decoded, then validated');
    } finally {
      await pair.close();
    }
  });
});
