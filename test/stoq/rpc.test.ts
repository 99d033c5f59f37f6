import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import type { PeerIdentity } from '../../src/stoq/identity.js';
import { RpcServer } from '../../src/stoq/rpc/server.js';
import { defineService, unary, type CallContext } from '../../src/stoq/rpc/service.js';
import { counterValue, deferred, isStoqError, rpcPair } from './rpc-fixture.js';

/** Basic RPC semantics over the memory transport: each call kind, typed errors crossing the wire. */
describe('STOQ RPC calls', { timeout: 20_000 }, () => {
  it('answers a unary echo and counts it on both sides', async () => {
    const pair = await rpcPair();
    try {
      const reply = await pair.client.call('echo', { text: 'hello' });
      assert.deepEqual(reply, { text: 'hello' });
      const many = await Promise.all(
        Array.from({ length: 50 }, (_, i) => pair.client.call('echo', { text: `n${i}` })),
      );
      assert.deepEqual(
        many.map((r) => r.text),
        Array.from({ length: 50 }, (_, i) => `n${i}`),
      );
      const labels = { method: 'demo.v1/echo', code: 'OK' };
      assert.equal(
        await counterValue(pair.registry, 'hypermesh_stoq_rpc_calls_total', {
          ...labels,
          side: 'server',
        }),
        51,
      );
      assert.equal(
        await counterValue(pair.registry, 'hypermesh_stoq_rpc_calls_total', {
          ...labels,
          side: 'client',
        }),
        51,
      );
      assert.ok(
        (await counterValue(pair.registry, 'hypermesh_stoq_bytes_total', { direction: 'in' })) > 0,
      );
    } finally {
      await pair.close();
    }
  });

  it('gives handlers the authenticated peer and the deadline', async () => {
    const seen = deferred<CallContext>();
    const pair = await rpcPair({
      handlers: {
        echo: (request, ctx) => {
          seen.resolve(ctx);
          return request;
        },
      },
    });
    try {
      const before = Date.now();
      await pair.client.call('echo', { text: 'x' }, { deadlineMs: 60_000 });
      const ctx = await seen.promise;
      assert.equal(ctx.peer.uri, 'spiffe://test/node/caller');
      assert.equal(ctx.method, 'demo.v1/echo');
      assert.ok(
        ctx.deadline !== null &&
          ctx.deadline >= before + 59_000 &&
          ctx.deadline <= Date.now() + 60_000,
      );
      assert.equal(ctx.signal.aborted, false);
    } finally {
      await pair.close();
    }
  });

  it('streams server responses in order and ends cleanly', async () => {
    const pair = await rpcPair();
    try {
      const received: number[] = [];
      for await (const item of pair.client.stream('count', { from: 3, to: 500 }))
        received.push(item.n);
      assert.deepEqual(
        received,
        Array.from({ length: 497 }, (_, i) => i + 3),
      );
      assert.equal(
        await counterValue(pair.registry, 'hypermesh_stoq_rpc_calls_total', {
          method: 'demo.v1/count',
          code: 'OK',
          side: 'server',
        }),
        1,
      );
    } finally {
      await pair.close();
    }
  });

  it('cancels a server stream when the loop is left early (the server sees the abort)', async () => {
    const aborted = deferred<unknown>();
    const pair = await rpcPair({
      handlers: {
        count: async function* (request, ctx) {
          ctx.signal.addEventListener('abort', () => aborted.resolve(ctx.signal.reason), {
            once: true,
          });
          for (let n = request.from; ; n++) yield { n };
        },
      },
    });
    try {
      const received: number[] = [];
      for await (const item of pair.client.stream('count', { from: 0, to: 0 })) {
        received.push(item.n);
        if (received.length === 10) break;
      }
      assert.deepEqual(received, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      isStoqError(StoqErrorCode.CANCELLED)(await aborted.promise);
    } finally {
      await pair.close();
    }
  });

  it('delivers one-way messages to the server', async () => {
    const notes: string[] = [];
    const all = deferred();
    const pair = await rpcPair({
      handlers: {
        record: (request, ctx) => {
          assert.equal(ctx.peer.name, 'caller');
          notes.push(request.note);
          if (notes.length === 20) all.resolve();
        },
      },
    });
    try {
      for (let i = 0; i < 20; i++) await pair.client.notify('record', { note: `note ${i}` });
      await all.promise;
      assert.deepEqual([...notes].sort(), Array.from({ length: 20 }, (_, i) => `note ${i}`).sort());
    } finally {
      await pair.close();
    }
  });

  it('carries a StoqError thrown by a handler across the wire with its code', async () => {
    const pair = await rpcPair({
      handlers: {
        echo: () => {
          throw new StoqError(StoqErrorCode.UNAVAILABLE, 'try another node', { retryAfterMs: 50 });
        },
      },
    });
    try {
      await assert.rejects(pair.client.call('echo', { text: 'x' }), (error: unknown) => {
        isStoqError(StoqErrorCode.UNAVAILABLE)(error);
        assert.equal((error as StoqError).message, 'try another node');
        assert.equal((error as StoqError).detail.retryAfterMs, 50);
        assert.equal((error as StoqError).detail.remote, true);
        return true;
      });
    } finally {
      await pair.close();
    }
  });

  it('reports other handler exceptions as INTERNAL without leaking them, and logs them', async () => {
    const pair = await rpcPair({
      handlers: {
        echo: () => {
          throw new Error('database password is hunter2');
        },
        blob: () => ({ data: 'not bytes' as never }),
      },
    });
    try {
      await assert.rejects(pair.client.call('echo', { text: 'x' }), (error: unknown) => {
        isStoqError(StoqErrorCode.INTERNAL)(error);
        assert.doesNotMatch((error as StoqError).message, /hunter2/);
        return true;
      });
      assert.ok(
        pair.logger.lines.some(
          (line) => line.level === 'error' && String(line.fields.error).includes('hunter2'),
        ),
      );
      // A response that fails its own schema is a server bug: INTERNAL too.
      await assert.rejects(
        pair.client.call('blob', { size: 1 }),
        isStoqError(StoqErrorCode.INTERNAL),
      );
      assert.deepEqual(
        await pair.client.call('echo', { text: 'x' }).catch((e: StoqError) => e.code),
        'INTERNAL',
      );
    } finally {
      await pair.close();
    }
  });

  it('answers NOT_FOUND for a method the server does not have', async () => {
    const pair = await rpcPair();
    const other = defineService({
      name: 'other.v1',
      methods: {
        ping: unary({ request: z.strictObject({}), response: z.strictObject({}), allow: ['node'] }),
      },
    });
    try {
      await assert.rejects(
        pair.clientFor(other).call('ping', {}),
        isStoqError(StoqErrorCode.NOT_FOUND),
      );
      assert.equal(
        await counterValue(pair.registry, 'hypermesh_stoq_rpc_calls_total', {
          method: 'unknown',
          code: 'NOT_FOUND',
          side: 'server',
        }),
        1,
      );
      assert.deepEqual(await pair.client.call('echo', { text: 'still fine' }), {
        text: 'still fine',
      });
    } finally {
      await pair.close();
    }
  });

  it('answers INVALID_ARGUMENT with the failing path when the request breaks the schema', async () => {
    const pair = await rpcPair();
    // A client built from a looser definition of the same service gets past local checks.
    const loose = defineService({
      name: 'demo.v1',
      methods: {
        echo: unary({ request: z.unknown(), response: z.unknown(), allow: ['node'] }),
        count: unary({ request: z.unknown(), response: z.unknown(), allow: ['node'] }),
      },
    });
    try {
      await assert.rejects(pair.clientFor(loose).call('echo', { text: 42 }), (error: unknown) => {
        isStoqError(StoqErrorCode.INVALID_ARGUMENT)(error);
        const issues = (error as StoqError).detail.issues as { path: string }[];
        assert.equal(issues[0]?.path, 'text');
        return true;
      });
      // Calling a server-stream method as unary is refused too.
      await assert.rejects(
        pair.clientFor(loose).call('count', { from: 0, to: 1 }),
        (error: unknown) => {
          isStoqError(StoqErrorCode.INVALID_ARGUMENT)(error);
          assert.equal((error as StoqError).detail.reason, 'kind');
          return true;
        },
      );
      // The typed client refuses locally, before sending anything.
      await assert.rejects(
        pair.client.call('echo', { text: 7 as unknown as string }),
        isStoqError(StoqErrorCode.INVALID_ARGUMENT),
      );
    } finally {
      await pair.close();
    }
  });

  it('denies a client-role peer a validators-only method (PERMISSION_DENIED)', async () => {
    const called = { count: 0 };
    const pair = await rpcPair({
      role: 'client',
      handlers: {
        validatorsOnly: () => {
          called.count++;
          return { ok: true };
        },
      },
    });
    try {
      await assert.rejects(
        pair.client.call('validatorsOnly', {}),
        isStoqError(StoqErrorCode.PERMISSION_DENIED),
      );
      assert.equal(called.count, 0, 'the handler must not run');
      // The same peer may still call what it is allowed to.
      assert.deepEqual(await pair.client.call('echo', { text: 'ok' }), { text: 'ok' });
    } finally {
      await pair.close();
    }
  });

  it('lets a validator call the validators-only method', async () => {
    const pair = await rpcPair({ role: 'validator' });
    try {
      assert.deepEqual(await pair.client.call('validatorsOnly', {}), { ok: true });
    } finally {
      await pair.close();
    }
  });

  it('supports predicate authorization over the whole identity', async () => {
    const service = defineService({
      name: 'pred.v1',
      methods: {
        mine: unary({
          request: z.strictObject({}),
          response: z.strictObject({}),
          allow: (peer: PeerIdentity) => peer.name === 'someone-else',
        }),
      },
    });
    const pair = await rpcPair();
    try {
      pair.server.register(service, { mine: () => ({}) });
      await assert.rejects(
        pair.clientFor(service).call('mine', {}),
        isStoqError(StoqErrorCode.PERMISSION_DENIED),
      );
    } finally {
      await pair.close();
    }
  });

  it('refuses service definitions and registrations that are not sound', () => {
    assert.throws(
      () => defineService({ name: 'Bad Name', methods: {} }),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
    const noAllow = { kind: 'unary', request: z.strictObject({}), response: z.strictObject({}) };
    assert.throws(
      () => defineService({ name: 'x.v1', methods: { a: noAllow as never } }),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
    const service = defineService({
      name: 'x.v1',
      methods: {
        a: unary({ request: z.strictObject({}), response: z.strictObject({}), allow: ['node'] }),
      },
    });
    const server = new RpcServer();
    assert.throws(
      () => server.register(service, {} as never),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
    server.register(service, { a: () => ({}) });
    assert.throws(
      () => server.register(service, { a: () => ({}) }),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
    assert.throws(
      () => new RpcServer({ limits: { maxMessageBytes: 0 } }),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
  });
});
