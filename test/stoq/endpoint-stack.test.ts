import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { encodeCanonical } from '../../src/codec/cbor.js';
import { createAuthenticator } from '../../src/stoq/auth/authenticator.js';
import type { AuthMode } from '../../src/stoq/auth/messages.js';
import { StoqEndpoint } from '../../src/stoq/endpoint.js';
import { StoqErrorCode } from '../../src/stoq/errors.js';
import { createStoqMetrics } from '../../src/stoq/metrics.js';
import type { PoolEvent } from '../../src/stoq/pool.js';
import { createQuicTransport } from '../../src/stoq/quic/transport.js';
import { StaticResolver } from '../../src/stoq/resolver.js';
import { RpcClient } from '../../src/stoq/rpc/client.js';
import { encodeFrame } from '../../src/stoq/rpc/framing.js';
import { createTlsTransport } from '../../src/stoq/tls/transport.js';
import type { SocketAddress, Transport, TransportKind } from '../../src/stoq/transport.js';
import { createTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';
import {
  MemoryLogger,
  counterValue,
  deferred,
  demo,
  demoHandlers,
  isStoqError,
  serverFrames,
  type DemoHandlers,
} from './rpc-fixture.js';

/**
 * The whole stack: real transports (TLS 1.3 over TCP and QUIC), the real authenticator with
 * certificates from a test CA and FALCON-1024 proofs, and the RPC layer on top.
 */

interface Stack {
  readonly kind: TransportKind;
  readonly host: string;
  transport(identity: TestIdentity): Transport;
}

const stacks: Stack[] = [
  {
    kind: 'tls',
    host: '127.0.0.1',
    transport: (identity) =>
      createTlsTransport({
        identity: {
          privateKey: identity.transportKey.privateKey,
          certificateChain: [identity.chainPem],
        },
      }),
  },
  {
    kind: 'tls',
    host: '::1',
    transport: (identity) =>
      createTlsTransport({
        identity: {
          privateKey: identity.transportKey.privateKey,
          certificateChain: [identity.chainPem],
        },
      }),
  },
  {
    kind: 'quic',
    host: '127.0.0.1',
    transport: (identity) => createQuicTransport({ privateKey: identity.transportKey.privateKey }),
  },
  {
    kind: 'quic',
    host: '::1',
    transport: (identity) => createQuicTransport({ privateKey: identity.transportKey.privateKey }),
  },
];

let pki: TestPki;
let alpha: TestIdentity;
let beta: TestIdentity;
let carol: TestIdentity;

before(async () => {
  pki = await createTestPki({ cluster: 'rpc-stack' });
  alpha = await pki.issue({ name: 'alpha', role: 'validator' });
  beta = await pki.issue({ name: 'beta', role: 'node' });
  carol = await pki.issue({ name: 'carol', role: 'client' });
});

interface Running {
  readonly endpoint: StoqEndpoint;
  readonly transport: Transport;
  readonly registry: Registry;
}

function endpointFor(
  stack: Stack,
  identity: TestIdentity,
  table: Record<string, SocketAddress[]>,
  options: { mode?: AuthMode; onEvent?: (event: PoolEvent) => void } = {},
): Running {
  const registry = new Registry();
  const metrics = createStoqMetrics(registry);
  const transport = stack.transport(identity);
  const authenticator = createAuthenticator({
    local: { chain: identity.chain, falcon: identity.falcon, falconBackend: pki.falconBackend },
    trust: { roots: pki.roots, revocation: pki.revocation },
    mode: options.mode ?? 'delegated',
    metrics,
  });
  const endpoint = new StoqEndpoint({
    transport,
    authenticator,
    resolver: new StaticResolver(table),
    metrics,
    logger: new MemoryLogger(),
    limits: { maxMessageBytes: 256 * 1024 },
    pool: {
      backoff: { initialMs: 5, maxMs: 50 },
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    },
  });
  return { endpoint, transport, registry };
}

async function stop(...nodes: Running[]): Promise<void> {
  for (const node of nodes) {
    await node.endpoint.close();
    await node.transport.close();
  }
}

async function server(
  stack: Stack,
  handlers: Partial<DemoHandlers> = {},
  port = 0,
  mode: AuthMode = 'delegated',
) {
  const node = endpointFor(stack, alpha, {}, { mode });
  node.endpoint.register(demo, demoHandlers(handlers));
  const address = await node.endpoint.listen({ host: stack.host, port });
  return { ...node, address };
}

for (const stack of stacks) {
  describe(
    `STOQ RPC over ${stack.kind} on ${stack.host} with real authentication`,
    { timeout: 60_000 },
    () => {
      it('runs every call kind between authenticated peers', async () => {
        const recorded = deferred<string>();
        const alphaNode = await server(stack, {
          record: (request, ctx) => recorded.resolve(`${ctx.peer.uri} ${request.note}`),
        });
        const betaNode = endpointFor(stack, beta, { alpha: [alphaNode.address] });
        try {
          const client = betaNode.endpoint.client(demo, 'alpha');
          assert.deepEqual(await client.call('echo', { text: 'over the wire' }), {
            text: 'over the wire',
          });

          const counted: number[] = [];
          for await (const item of client.stream('count', { from: 0, to: 100 }))
            counted.push(item.n);
          assert.equal(counted.length, 100);

          await client.notify('record', { note: 'noted' });
          assert.equal(await recorded.promise, 'spiffe://rpc-stack/node/beta noted');

          const channel = await client.openMessageStream('gossip');
          const body = new Uint8Array(100).fill(1);
          const total = 5_000;
          const receiving = (async () => {
            let seq = 0;
            for await (const message of channel) assert.equal(message.seq, seq++);
            return seq;
          })();
          for (let seq = 0; seq < total; seq++)
            if (!channel.send({ seq, body })) await channel.drain();
          await channel.close();
          assert.equal(await receiving, total);
          await channel.closed;

          assert.equal(
            await counterValue(alphaNode.registry, 'hypermesh_stoq_handshakes_total', {
              transport: stack.kind,
              outcome: 'ok',
            }),
            1,
          );
        } finally {
          await stop(betaNode, alphaNode);
        }
      });

      it('denies a client-role certificate a validators-only method', async () => {
        const alphaNode = await server(stack);
        const carolNode = endpointFor(stack, carol, { alpha: [alphaNode.address] });
        const betaNode = endpointFor(stack, beta, { alpha: [alphaNode.address] });
        try {
          const asCarol = carolNode.endpoint.client(demo, 'alpha');
          await assert.rejects(
            asCarol.call('validatorsOnly', {}),
            isStoqError(StoqErrorCode.PERMISSION_DENIED),
          );
          assert.deepEqual(await asCarol.call('echo', { text: 'allowed' }), { text: 'allowed' });
          await assert.rejects(
            betaNode.endpoint.client(demo, 'alpha').call('validatorsOnly', {}),
            isStoqError(StoqErrorCode.PERMISSION_DENIED),
          );
          const validator = endpointFor(stack, alpha, { alpha: [alphaNode.address] });
          try {
            assert.deepEqual(
              await validator.endpoint.client(demo, 'alpha').call('validatorsOnly', {}),
              { ok: true },
            );
          } finally {
            await stop(validator);
          }
        } finally {
          await stop(carolNode, betaNode, alphaNode);
        }
      });

      it('keeps serving after more cancelled calls than the stream limit', async () => {
        // Each cancelled call ends in a reset from the caller; if the server side did not
        // release its half of the stream, 256 of them would exhaust QUIC's stream credit.
        let entered = deferred();
        const alphaNode = await server(stack, {
          wait: (request, ctx) =>
            new Promise((_resolve, reject) => {
              ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), {
                once: true,
              });
              entered.resolve();
              void request;
            }),
        });
        const betaNode = endpointFor(stack, beta, {});
        try {
          const session = await betaNode.endpoint.connect(alphaNode.address);
          const client = new RpcClient(demo, session);
          for (let i = 0; i < 300; i++) {
            entered = deferred();
            const controller = new AbortController();
            const call = client.call('wait', { id: String(i) }, { signal: controller.signal });
            call.catch(() => undefined);
            await entered.promise;
            controller.abort();
            await assert.rejects(call, isStoqError(StoqErrorCode.CANCELLED));
          }
          assert.deepEqual(
            await client.call('echo', { text: 'still here' }, { deadlineMs: 10_000 }),
            {
              text: 'still here',
            },
          );
        } finally {
          await stop(betaNode, alphaNode);
        }
      });

      it('confines an oversized frame to its stream while another call is in flight', async () => {
        const gate = deferred();
        const entered = deferred();
        const alphaNode = await server(stack, {
          wait: async (request) => {
            entered.resolve();
            await gate.promise;
            return { id: request.id };
          },
        });
        const betaNode = endpointFor(stack, beta, {});
        try {
          const session = await betaNode.endpoint.connect(alphaNode.address);
          const client = new RpcClient(demo, session);
          const inFlight = client.call('wait', { id: 'survivor' });
          // Awaited below; marked handled so an earlier failure reports itself, not this call.
          inFlight.catch(() => undefined);
          await entered.promise;

          const raw = await session.connection.openStream();
          const prefix = new Uint8Array(4);
          new DataView(prefix.buffer).setUint32(0, 0x7fff_ffff, false);
          await raw.write(prefix);
          const frames = await serverFrames(raw);
          assert.equal(frames.length, 1);
          assert.ok(
            frames[0]?.type === 1 && frames[0].status.code === StoqErrorCode.FRAME_TOO_LARGE,
          );

          const garbage = await session.connection.openStream();
          await garbage.write(encodeFrame(encodeCanonical({ method: 7 }), 1024));
          const answer = await serverFrames(garbage);
          assert.ok(
            answer[0]?.type === 1 && answer[0].status.code === StoqErrorCode.MALFORMED_FRAME,
          );

          gate.resolve();
          assert.deepEqual(await inFlight, { id: 'survivor' });
          assert.deepEqual(await client.call('echo', { text: 'healthy' }), { text: 'healthy' });
        } finally {
          gate.resolve();
          await stop(betaNode, alphaNode);
        }
      });

      it('cancels and times out calls; the server observes both', async () => {
        const aborts: unknown[] = [];
        const entered = deferred();
        const twoAborts = deferred();
        const alphaNode = await server(stack, {
          wait: (_request, ctx) =>
            new Promise((_resolve, reject) => {
              entered.resolve();
              ctx.signal.addEventListener(
                'abort',
                () => {
                  aborts.push(ctx.signal.reason);
                  if (aborts.length === 2) twoAborts.resolve();
                  reject(ctx.signal.reason as Error);
                },
                { once: true },
              );
            }),
        });
        const betaNode = endpointFor(stack, beta, { alpha: [alphaNode.address] });
        try {
          const client = betaNode.endpoint.client(demo, 'alpha');
          const controller = new AbortController();
          const cancelled = client.call('wait', { id: 'c' }, { signal: controller.signal });
          await entered.promise;
          controller.abort();
          await assert.rejects(cancelled, isStoqError(StoqErrorCode.CANCELLED));
          await assert.rejects(
            client.call('wait', { id: 'd' }, { deadlineMs: 50 }),
            isStoqError(StoqErrorCode.DEADLINE_EXCEEDED),
          );
          await twoAborts.promise;
          const codes = aborts.map((reason) => (reason as { code: string }).code).sort();
          assert.ok(codes.includes(StoqErrorCode.CANCELLED), codes.join());
        } finally {
          await stop(betaNode, alphaNode);
        }
      });

      it('reconnects through the pool after the server restarts', async () => {
        // Strict mode on both sides: a fresh FALCON signature on every (re)connection.
        const first = await server(stack, {}, 0, 'strict');
        const events: PoolEvent[] = [];
        let onConnected: (() => void) | null = null;
        const betaNode = endpointFor(
          stack,
          beta,
          { alpha: [first.address] },
          {
            mode: 'strict',
            onEvent: (event) => {
              events.push(event);
              if (event.type === 'connected') onConnected?.();
            },
          },
        );
        let second: Awaited<ReturnType<typeof server>> | null = null;
        try {
          const client = betaNode.endpoint.client(demo, 'alpha');
          assert.deepEqual(await client.call('echo', { text: 'one' }), { text: 'one' });
          const lost = new Promise<void>((resolve) => {
            const session = betaNode.endpoint.pool.current('alpha');
            assert.ok(session);
            void session.connection.closed.then(resolve);
          });
          await stop(first);
          await lost;
          const reconnected = new Promise<void>((resolve) => {
            onConnected = resolve;
          });
          second = await server(stack, {}, first.address.port, 'strict');
          await reconnected;
          assert.deepEqual(await client.call('echo', { text: 'two' }), { text: 'two' });
          assert.ok(events.some((event) => event.type === 'disconnected'));
          assert.equal(events.filter((event) => event.type === 'connected').length, 2);
        } finally {
          await stop(betaNode, ...(second ? [second] : []));
        }
      });
    },
  );
}
