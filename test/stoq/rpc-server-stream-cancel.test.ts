import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import { withDeadline } from '../helpers/wait.js';
import { deferred, isStoqError, rpcPair } from './rpc-fixture.js';

/**
 * A server-stream call that ends early (the caller cancels, resets, or its connection drops)
 * must finish the handler's generator, so its `finally` releases what the handler holds.
 */

describe('STOQ RPC server streams that end early', { timeout: 20_000 }, () => {
  it('finishes a generator waiting inside its body when the caller aborts', async () => {
    const entered = deferred();
    const gate = deferred();
    const aborted = deferred<unknown>();
    const finished = deferred();
    const pair = await rpcPair({
      handlers: {
        count: async function* (request, ctx) {
          ctx.signal.addEventListener('abort', () => aborted.resolve(ctx.signal.reason), {
            once: true,
          });
          try {
            yield { n: request.from };
            entered.resolve();
            // Like a store read that ignores the signal: it ends only when the test says so.
            await gate.promise;
            yield { n: request.from + 1 };
          } finally {
            finished.resolve();
          }
        },
      },
    });
    try {
      const controller = new AbortController();
      const iterator = pair.client
        .stream('count', { from: 7, to: 9 }, { signal: controller.signal })
        [Symbol.asyncIterator]();
      assert.deepEqual((await iterator.next()).value, { n: 7 });
      await entered.promise;
      controller.abort();
      await assert.rejects(iterator.next(), isStoqError(StoqErrorCode.CANCELLED));
      isStoqError(StoqErrorCode.CANCELLED)(await aborted.promise);
      gate.resolve();
      await withDeadline(finished.promise, 5_000, 'the cancelled generator to run its finally');
      assert.deepEqual(await pair.client.call('echo', { text: 'next' }), { text: 'next' });
    } finally {
      await pair.close();
    }
  });

  it('finishes a generator held by backpressure when the caller resets the stream', async () => {
    const window = 4 * 1024;
    const finished = deferred();
    let produced = 0;
    const pair = await rpcPair({
      limits: { highWaterMark: window },
      streamWindow: window,
      handlers: {
        count: async function* () {
          try {
            // The caller reads one item, so this loop stops at the server's send buffer.
            for (let n = 0; produced < 100_000; n++) {
              produced++;
              yield { n };
            }
          } finally {
            finished.resolve();
          }
        },
      },
    });
    try {
      const controller = new AbortController();
      const iterator = pair.client
        .stream('count', { from: 0, to: 0 }, { signal: controller.signal })
        [Symbol.asyncIterator]();
      assert.deepEqual((await iterator.next()).value, { n: 0 });
      controller.abort();
      await withDeadline(finished.promise, 5_000, 'the held generator to run its finally');
      assert.ok(produced < 100_000, `the generator ran to its end (${produced} items)`);
    } finally {
      await pair.close();
    }
  });

  it('finishes a generator when the connection is lost', async () => {
    const entered = deferred();
    const gate = deferred();
    const finished = deferred();
    const pair = await rpcPair({
      handlers: {
        count: async function* (request) {
          try {
            entered.resolve();
            await gate.promise;
            yield { n: request.from };
          } finally {
            finished.resolve();
          }
        },
      },
    });
    try {
      const iterator = pair.client.stream('count', { from: 1, to: 2 })[Symbol.asyncIterator]();
      const first = iterator.next();
      await entered.promise;
      pair.clientSession.connection.close('test cuts the connection');
      await assert.rejects(first, (error: unknown) => error instanceof StoqError);
      gate.resolve();
      await withDeadline(finished.promise, 5_000, 'the generator to run its finally');
    } finally {
      await pair.close();
    }
  });
});
