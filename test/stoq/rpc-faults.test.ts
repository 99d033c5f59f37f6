import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { encodeCanonical } from '../../src/codec/cbor.js';
import { z } from 'zod';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import { RpcClient } from '../../src/stoq/rpc/client.js';
import { defineService, unary } from '../../src/stoq/rpc/service.js';
import { encodeFrame } from '../../src/stoq/rpc/framing.js';
import type { WireFrame } from '../../src/stoq/rpc/wire.js';
import {
  counterValue,
  deferred,
  isStoqError,
  rpcPair,
  serverFrames,
  watchedWait,
} from './rpc-fixture.js';

/**
 * Faults confined to one stream: oversized and malformed frames, deadlines, cancellation,
 * silent callers, lost connections and per-peer limits. The connection and every other call
 * must stay healthy.
 */

const MAX = 64 * 1024;

function frame(value: unknown): Uint8Array {
  return encodeFrame(encodeCanonical(value), 1 << 30);
}

function onlyStatus(frames: readonly WireFrame[]): {
  code: string;
  message: string;
  detail: Record<string, unknown>;
} {
  assert.equal(frames.length, 1, `expected one status frame, got ${JSON.stringify(frames)}`);
  const [only] = frames;
  assert.ok(only && only.type === 1, 'expected a status frame');
  return { ...only.status, detail: { ...only.status.detail } };
}

describe('STOQ RPC faults', { timeout: 20_000 }, () => {
  it('answers an oversized frame with FRAME_TOO_LARGE; the connection and other calls stay healthy', async () => {
    const gate = deferred();
    const entered = deferred();
    const pair = await rpcPair({
      limits: { maxMessageBytes: MAX },
      handlers: {
        wait: async (request) => {
          entered.resolve();
          await gate.promise;
          return { id: request.id };
        },
      },
    });
    try {
      const inFlight = pair.client.call('wait', { id: 'survivor' });
      await entered.promise;

      const raw = await pair.rawStream();
      const prefix = new Uint8Array(4);
      new DataView(prefix.buffer).setUint32(0, MAX + 1, false);
      await raw.write(prefix);
      const status = onlyStatus(await serverFrames(raw));
      assert.equal(status.code, StoqErrorCode.FRAME_TOO_LARGE);
      assert.equal(status.detail.length, MAX + 1);

      gate.resolve();
      assert.deepEqual(await inFlight, { id: 'survivor' });
      assert.deepEqual(await pair.client.call('echo', { text: 'after' }), { text: 'after' });
      assert.equal(
        await counterValue(pair.registry, 'hypermesh_stoq_rejected_frames_total', {
          reason: 'too_large',
        }),
        1,
      );
    } finally {
      gate.resolve();
      await pair.close();
    }
  });

  it('refuses oversized requests and responses with FRAME_TOO_LARGE at either end', async () => {
    const pair = await rpcPair({ limits: { maxMessageBytes: MAX } });
    const loose = defineService({
      name: 'demo.v1',
      methods: { echo: unary({ request: z.unknown(), response: z.unknown(), allow: ['node'] }) },
    });
    try {
      const big = { text: 'x'.repeat(MAX) };
      // The client refuses to send what the server would refuse, before sending anything.
      await assert.rejects(
        pair.clientFor(loose).call('echo', big),
        isStoqError(StoqErrorCode.FRAME_TOO_LARGE),
      );
      // A client with a larger limit sends it; the server refuses it from the length prefix.
      const generous = new RpcClient(loose, pair.clientSession, {
        limits: { maxMessageBytes: 4 * MAX },
      });
      await assert.rejects(generous.call('echo', big), isStoqError(StoqErrorCode.FRAME_TOO_LARGE));
      // A response over the limit fails the call, not the connection.
      await assert.rejects(
        pair.client.call('blob', { size: MAX + 100 }),
        isStoqError(StoqErrorCode.FRAME_TOO_LARGE),
      );
      assert.deepEqual(await pair.client.call('blob', { size: 10 }), { data: new Uint8Array(10) });
    } finally {
      await pair.close();
    }
  });

  it('answers garbage CBOR with MALFORMED_FRAME and keeps serving', async () => {
    const pair = await rpcPair();
    try {
      const raw = await pair.rawStream();
      await raw.write(encodeFrame(Uint8Array.of(0xff, 0x00, 0x1c, 0x9f), 1024));
      const status = onlyStatus(await serverFrames(raw));
      assert.equal(status.code, StoqErrorCode.MALFORMED_FRAME);
      assert.equal(status.detail.reason, 'cbor');
      assert.deepEqual(await pair.client.call('echo', { text: 'fine' }), { text: 'fine' });
      assert.equal(
        await counterValue(pair.registry, 'hypermesh_stoq_rejected_frames_total', {
          reason: 'cbor',
        }),
        1,
      );
    } finally {
      await pair.close();
    }
  });

  it('answers a call header of the wrong shape with MALFORMED_FRAME', async () => {
    const pair = await rpcPair();
    try {
      for (const header of [
        { method: 42, kind: 'unary', request: {} },
        { method: 'demo.v1/echo', kind: 'unary' },
        [0, { text: 'a message before any header' }],
        'just a string',
      ]) {
        const raw = await pair.rawStream();
        await raw.write(frame(header));
        const status = onlyStatus(await serverFrames(raw));
        assert.equal(status.code, StoqErrorCode.MALFORMED_FRAME);
        assert.equal(status.detail.reason, 'header');
      }
      assert.equal(
        await counterValue(pair.registry, 'hypermesh_stoq_rejected_frames_total', {
          reason: 'header',
        }),
        4,
      );
      assert.deepEqual(await pair.client.call('echo', { text: 'fine' }), { text: 'fine' });
    } finally {
      await pair.close();
    }
  });

  it('answers a frame after a unary request with MALFORMED_FRAME and aborts the handler', async () => {
    const { handler, entered, aborted } = watchedWait();
    const pair = await rpcPair({ handlers: { wait: handler } });
    try {
      const raw = await pair.rawStream();
      await raw.write(frame({ method: 'demo.v1/wait', kind: 'unary', request: { id: 'a' } }));
      await entered.promise;
      await raw.write(frame([0, { id: 'b' }]));
      const status = onlyStatus(await serverFrames(raw));
      assert.equal(status.code, StoqErrorCode.MALFORMED_FRAME);
      assert.equal(status.detail.reason, 'unexpected-frame');
      isStoqError(StoqErrorCode.MALFORMED_FRAME)(await aborted.promise);
    } finally {
      await pair.close();
    }
  });

  it('answers a stream that ends mid-frame with MALFORMED_FRAME', async () => {
    const pair = await rpcPair();
    try {
      const raw = await pair.rawStream();
      const whole = frame({ method: 'demo.v1/echo', kind: 'unary', request: { text: 'cut' } });
      await raw.write(whole.subarray(0, whole.length - 3));
      await raw.finish();
      const status = onlyStatus(await serverFrames(raw));
      assert.equal(status.code, StoqErrorCode.MALFORMED_FRAME);
      assert.equal(status.detail.reason, 'truncated');
    } finally {
      await pair.close();
    }
  });

  it('gives DEADLINE_EXCEEDED to the caller even if the server never answers', async () => {
    const entered = deferred();
    const pair = await rpcPair({
      handlers: {
        // Ignores its signal entirely: only the client's own timer can end the call.
        wait: () => {
          entered.resolve();
          return new Promise(() => undefined);
        },
      },
    });
    try {
      await assert.rejects(
        pair.client.call('wait', { id: 'x' }, { deadlineMs: 30 }),
        isStoqError(StoqErrorCode.DEADLINE_EXCEEDED),
      );
      await entered.promise;
      assert.deepEqual(await pair.client.call('echo', { text: 'next' }), { text: 'next' });
    } finally {
      await pair.close();
    }
  });

  it('aborts the handler at the deadline and answers DEADLINE_EXCEEDED from the server', async () => {
    const { handler, aborted } = watchedWait();
    const pair = await rpcPair({ handlers: { wait: handler } });
    try {
      // A raw caller without its own timer sees the server's verdict.
      const raw = await pair.rawStream();
      await raw.write(
        frame({ method: 'demo.v1/wait', kind: 'unary', request: { id: 'x' }, deadlineMs: 20 }),
      );
      const status = onlyStatus(await serverFrames(raw));
      assert.equal(status.code, StoqErrorCode.DEADLINE_EXCEEDED);
      isStoqError(StoqErrorCode.DEADLINE_EXCEEDED)(await aborted.promise);
    } finally {
      await pair.close();
    }
  });

  it('cancels a call through its AbortSignal; the server handler observes the abort', async () => {
    const { handler, entered, aborted } = watchedWait();
    const pair = await rpcPair({ handlers: { wait: handler } });
    try {
      const controller = new AbortController();
      const call = pair.client.call('wait', { id: 'x' }, { signal: controller.signal });
      await entered.promise;
      controller.abort();
      await assert.rejects(call, isStoqError(StoqErrorCode.CANCELLED));
      isStoqError(StoqErrorCode.CANCELLED)(await aborted.promise);
      // An already-aborted signal fails at once.
      await assert.rejects(
        pair.client.call('echo', { text: 'x' }, { signal: controller.signal }),
        isStoqError(StoqErrorCode.CANCELLED),
      );
      assert.deepEqual(await pair.client.call('echo', { text: 'next' }), { text: 'next' });
    } finally {
      await pair.close();
    }
  });

  it('limits concurrent calls per peer (RESOURCE_EXHAUSTED) and frees slots when calls end', async () => {
    const gate = deferred();
    let entered = 0;
    const twoIn = deferred();
    const pair = await rpcPair({
      limits: { maxConcurrentCallsPerPeer: 2 },
      handlers: {
        wait: async (request) => {
          entered++;
          if (entered === 2) twoIn.resolve();
          await gate.promise;
          return { id: request.id };
        },
      },
    });
    try {
      const first = pair.client.call('wait', { id: 'a' });
      const second = pair.client.call('wait', { id: 'b' });
      await twoIn.promise;
      assert.equal(pair.server.callsOf('spiffe://test/node/caller'), 2);
      await assert.rejects(
        pair.client.call('echo', { text: 'third' }),
        isStoqError(StoqErrorCode.RESOURCE_EXHAUSTED),
      );
      gate.resolve();
      assert.deepEqual(await Promise.all([first, second]), [{ id: 'a' }, { id: 'b' }]);
      // Slots are released when the caller ends its side, which follows the status at once.
      assert.deepEqual(await pair.client.call('echo', { text: 'fourth' }), { text: 'fourth' });
    } finally {
      gate.resolve();
      await pair.close();
    }
  });

  it('resets a stream whose caller never sends a header', async () => {
    const pair = await rpcPair({ limits: { headerTimeoutMs: 30, lingerMs: 30 } });
    try {
      const raw = await pair.rawStream();
      // Nothing written: a silent caller must not pin the stream.
      const status = onlyStatus(await serverFrames(raw));
      assert.equal(status.code, StoqErrorCode.DEADLINE_EXCEEDED);
      assert.equal(status.detail.reason, 'header-timeout');
      assert.deepEqual(await pair.client.call('echo', { text: 'fine' }), { text: 'fine' });
    } finally {
      await pair.close();
    }
  });

  it('resets a stream on which a frame stalls half-sent', async () => {
    const pair = await rpcPair({ limits: { stallTimeoutMs: 30, lingerMs: 30 } });
    try {
      const channel = await pair.client.openMessageStream('gossip');
      channel.send({ seq: 0, body: new Uint8Array(4) });
      const [echoed] = await takeAsync(channel, 1);
      assert.equal(echoed?.seq, 0);
      const raw = await pair.rawStream();
      await raw.write(frame({ method: 'demo.v1/gossip', kind: 'messageStream' }));
      await raw.write(Uint8Array.of(0, 0, 1)); // three bytes of a length prefix, then silence
      const status = onlyStatus(await serverFrames(raw));
      assert.equal(status.code, StoqErrorCode.DEADLINE_EXCEEDED);
      assert.equal(status.detail.reason, 'stalled-read');
      channel.abort();
    } finally {
      await pair.close();
    }
  });

  it('resets a stream whose caller stops reading, and aborts its handler', async () => {
    const aborted = deferred<unknown>();
    const pair = await rpcPair({
      limits: { stallTimeoutMs: 30, lingerMs: 30, highWaterMark: 1024 },
      streamWindow: 1024,
      handlers: {
        count: async function* (_request, ctx) {
          ctx.signal.addEventListener('abort', () => aborted.resolve(ctx.signal.reason), {
            once: true,
          });
          for (let n = 0; !ctx.signal.aborted; n++) yield { n };
        },
      },
    });
    try {
      const iterator = pair.client.stream('count', { from: 0, to: 0 })[Symbol.asyncIterator]();
      assert.deepEqual(await iterator.next(), { done: false, value: { n: 0 } });
      // No more pulls: the windows fill and the server's write stalls.
      const reason = await aborted.promise;
      isStoqError(StoqErrorCode.DEADLINE_EXCEEDED)(reason);
      assert.equal((reason as StoqError).detail.reason, 'stalled-write');
      await iterator.return?.();
      assert.deepEqual(await pair.client.call('echo', { text: 'fine' }), { text: 'fine' });
    } finally {
      await pair.close();
    }
  });

  it('holds unread answers against the caller limit and releases them after the stall timeout', async () => {
    const stallTimeoutMs = 1_000;
    const calls = 256; // the default per-peer limit
    const allAnswered = deferred();
    let answered = 0;
    const pair = await rpcPair({
      limits: { stallTimeoutMs, lingerMs: stallTimeoutMs },
      streamWindow: 1024,
      handlers: {
        blob: (request) => {
          if (++answered === calls) allAnswered.resolve();
          return { data: new Uint8Array(request.size) };
        },
      },
    });
    // A fake clock for the server's sweep, so "after the stall timeout" is exact, not slept.
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: Date.now() });
    try {
      assert.equal(pair.server.limits.maxConcurrentCallsPerPeer, calls);
      const header = frame({ method: 'demo.v1/blob', kind: 'unary', request: { size: 8192 } });
      const raws = await Promise.all(
        Array.from({ length: calls }, async () => {
          const raw = await pair.rawStream();
          await raw.write(header);
          await raw.finish(); // our side is done, and we never read the answer
          return raw;
        }),
      );
      await allAnswered.promise;
      await nextMacrotask(); // each handler's answer is queued in the microtasks after it returns
      // Every answer is queued and larger than the window: all calls still count.
      assert.equal(pair.server.activeCalls, calls);
      assert.equal(pair.server.callsOf('spiffe://test/node/caller'), calls);
      await assert.rejects(
        pair.client.call('echo', { text: 'one too many' }),
        isStoqError(StoqErrorCode.RESOURCE_EXHAUSTED),
      );

      mock.timers.tick(stallTimeoutMs);
      assert.equal(pair.server.activeCalls, 0);
      assert.equal(pair.server.callsOf('spiffe://test/node/caller'), 0);
      for (const raw of raws) {
        await assert.rejects(raw.read(), isStoqError(StoqErrorCode.STREAM_RESET));
      }
      mock.timers.reset();
      assert.deepEqual(await pair.client.call('echo', { text: 'fine' }), { text: 'fine' });
    } finally {
      mock.timers.reset();
      await pair.close();
    }
  });

  it('aborts handlers when the connection is lost', async () => {
    const { handler, entered, aborted } = watchedWait();
    const pair = await rpcPair({ handlers: { wait: handler } });
    try {
      const call = pair.client.call('wait', { id: 'x' });
      await entered.promise;
      pair.clientSession.connection.close('test cuts the connection');
      await assert.rejects(call, (error: unknown) => error instanceof StoqError);
      const reason = await aborted.promise;
      assert.ok(reason instanceof StoqError);
      assert.ok(
        [StoqErrorCode.UNAVAILABLE, StoqErrorCode.CANCELLED].includes(reason.code),
        reason.code,
      );
      await pair.server.close();
      assert.equal(pair.server.activeCalls, 0);
    } finally {
      await pair.close();
    }
  });
});

async function takeAsync<T>(iterable: AsyncIterable<T>, count: number): Promise<T[]> {
  const out: T[] = [];
  const iterator = iterable[Symbol.asyncIterator]();
  while (out.length < count) {
    const step = await iterator.next();
    if (step.done) break;
    out.push(step.value);
  }
  return out;
}
