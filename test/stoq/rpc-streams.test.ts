import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoqErrorCode } from '../../src/stoq/errors.js';
import { deferred, isStoqError, rpcPair } from './rpc-fixture.js';

/** Message streams (both directions, many messages) and backpressure with slow readers. */

const BODY = new Uint8Array(100).fill(7);

/** Yields one event-loop turn: a reader that is slower than its sender, without sleeping. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('STOQ RPC message streams', { timeout: 30_000 }, () => {
  it('carries many messages both ways on one stream, in order', async () => {
    const total = 20_000;
    const serverSaw = deferred<number>();
    const pair = await rpcPair({
      handlers: {
        gossip: async (channel, ctx) => {
          assert.equal(ctx.peer.role, 'node');
          let count = 0;
          for await (const message of channel) {
            assert.equal(message.seq, count);
            count++;
            // Every message is answered; the server's sends obey backpressure too.
            if (!channel.send({ seq: message.seq, body: message.body.subarray(0, 10) }))
              await channel.drain();
          }
          serverSaw.resolve(count);
        },
      },
    });
    try {
      const channel = await pair.client.openMessageStream('gossip');
      const receiving = (async () => {
        let expected = 0;
        for await (const message of channel) {
          assert.equal(message.seq, expected);
          assert.equal(message.body.length, 10);
          expected++;
        }
        return expected;
      })();
      for (let seq = 0; seq < total; seq++) {
        if (!channel.send({ seq, body: BODY })) await channel.drain();
      }
      await channel.close();
      assert.equal(await serverSaw.promise, total);
      assert.equal(await receiving, total);
      await channel.closed;
    } finally {
      await pair.close();
    }
  });

  it('lets the server end a message stream with an error status the caller sees', async () => {
    const pair = await rpcPair({
      handlers: {
        gossip: async (channel) => {
          for await (const message of channel) {
            if (message.seq === 3) throw new Error('boom');
            channel.send(message);
          }
        },
      },
    });
    try {
      const channel = await pair.client.openMessageStream('gossip');
      for (let seq = 0; seq < 5; seq++) channel.send({ seq, body: BODY });
      const seen: number[] = [];
      await assert.rejects(
        (async () => {
          for await (const message of channel) seen.push(message.seq);
        })(),
        isStoqError(StoqErrorCode.INTERNAL),
      );
      assert.deepEqual(seen, [0, 1, 2]);
      await assert.rejects(channel.closed, isStoqError(StoqErrorCode.INTERNAL));
      assert.throws(
        () => channel.send({ seq: 9, body: BODY }),
        isStoqError(StoqErrorCode.INTERNAL),
      );
    } finally {
      await pair.close();
    }
  });

  it('refuses a message stream to a peer without the role, and sends fail with that code', async () => {
    const pair = await rpcPair({ role: 'client' });
    try {
      const channel = await pair.client.openMessageStream('gossip');
      await assert.rejects(
        (async () => {
          for await (const _message of channel) assert.fail('no message expected');
        })(),
        isStoqError(StoqErrorCode.PERMISSION_DENIED),
      );
      await assert.rejects(channel.closed, isStoqError(StoqErrorCode.PERMISSION_DENIED));
      assert.throws(
        () => channel.send({ seq: 0, body: BODY }),
        isStoqError(StoqErrorCode.PERMISSION_DENIED),
      );
    } finally {
      await pair.close();
    }
  });

  it('answers a message that breaks the schema with INVALID_ARGUMENT', async () => {
    const pair = await rpcPair();
    try {
      const channel = await pair.client.openMessageStream('gossip');
      // The sender checks first: a bad message never leaves.
      assert.throws(
        () => channel.send({ seq: -1, body: BODY }),
        isStoqError(StoqErrorCode.INVALID_ARGUMENT),
      );
      channel.abort();
      await assert.rejects(channel.closed, isStoqError(StoqErrorCode.CANCELLED));
    } finally {
      await pair.close();
    }
  });

  it('cancels the server side when the caller aborts the channel', async () => {
    const aborted = deferred<unknown>();
    const first = deferred();
    const pair = await rpcPair({
      handlers: {
        gossip: async (channel, ctx) => {
          ctx.signal.addEventListener('abort', () => aborted.resolve(ctx.signal.reason), {
            once: true,
          });
          try {
            for await (const _message of channel) first.resolve();
          } catch {
            // The reset fails the iterator as well.
          }
        },
      },
    });
    try {
      const channel = await pair.client.openMessageStream('gossip');
      channel.send({ seq: 0, body: BODY });
      await first.promise;
      channel.abort();
      isStoqError(StoqErrorCode.CANCELLED)(await aborted.promise);
    } finally {
      await pair.close();
    }
  });

  it('bounds the sender and receiver buffers when the server reads slowly', async () => {
    const highWaterMark = 16 * 1024;
    const total = 3_000;
    let serverMaxQueued = 0;
    const done = deferred<number>();
    const pair = await rpcPair({
      limits: { highWaterMark },
      streamWindow: 8 * 1024,
      handlers: {
        gossip: async (channel) => {
          let count = 0;
          for await (const message of channel) {
            assert.equal(message.seq, count);
            count++;
            serverMaxQueued = Math.max(serverMaxQueued, channel.receivedBufferedAmount);
            await turn();
          }
          done.resolve(count);
        },
      },
    });
    try {
      const channel = await pair.client.openMessageStream('gossip');
      let clientMaxBuffered = 0;
      let refused = 0;
      for (let seq = 0; seq < total; seq++) {
        const accepted = channel.send({ seq, body: BODY });
        clientMaxBuffered = Math.max(clientMaxBuffered, channel.bufferedAmount);
        if (!accepted) {
          refused++;
          await channel.drain();
        }
      }
      await channel.close();
      assert.equal(await done.promise, total);
      // ~120 bytes per framed message; the buffers stay within one message of their marks.
      assert.ok(refused > 0, 'the slow reader must push back on the sender');
      assert.ok(clientMaxBuffered <= highWaterMark + 200, `sender buffered ${clientMaxBuffered}`);
      assert.ok(serverMaxQueued <= highWaterMark + 8 * 1024, `receiver queued ${serverMaxQueued}`);
      for await (const _message of channel) assert.fail('the server sent nothing');
    } finally {
      await pair.close();
    }
  });

  it('stops a server stream from producing ahead of a client that does not pull', async () => {
    const window = 4 * 1024;
    let produced = 0;
    let consumed = 0;
    const pair = await rpcPair({
      limits: { highWaterMark: window },
      streamWindow: window,
      handlers: {
        count: async function* () {
          // Without backpressure this loop would never yield to the event loop; it gives up
          // far beyond any sane bound so the test fails instead of hanging.
          for (let n = 0; produced - consumed < 100_000; n++) {
            produced++;
            yield { n };
          }
        },
      },
    });
    try {
      let maxAhead = 0;
      for await (const item of pair.client.stream('count', { from: 0, to: 0 })) {
        assert.equal(item.n, consumed);
        consumed++;
        maxAhead = Math.max(maxAhead, produced - consumed);
        if (consumed === 5_000) break;
        await turn();
      }
      // Items frame to at least 10 bytes. In flight at most: the server's send buffer (mark
      // plus one item), the transport window, and the client's read-ahead (mark plus a chunk).
      const bound = Math.ceil((4 * window) / 10) + 2;
      assert.ok(maxAhead <= bound, `server ran ${maxAhead} items ahead (bound ${bound})`);
    } finally {
      await pair.close();
    }
  });
});
