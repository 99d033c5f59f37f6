import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { StoqErrorCode } from '../../src/stoq/errors.js';
import { StoqEndpoint } from '../../src/stoq/endpoint.js';
import { createMemoryNetwork, type MemoryNetwork } from '../../src/stoq/memory.js';
import { createStoqMetrics } from '../../src/stoq/metrics.js';
import { StaticResolver } from '../../src/stoq/resolver.js';
import { RpcClient } from '../../src/stoq/rpc/client.js';
import type { SocketAddress, Transport } from '../../src/stoq/transport.js';
import { withDeadline } from '../helpers/wait.js';
import {
  MemoryLogger,
  TableAuthenticator,
  counterValue,
  demo,
  demoHandlers,
  identity,
  isStoqError,
} from './rpc-fixture.js';

/** The endpoint over the memory transport with the test authenticator. */

interface Node {
  readonly endpoint: StoqEndpoint;
  readonly registry: Registry;
  readonly key: Uint8Array;
}

function node(
  network: MemoryNetwork,
  auth: TableAuthenticator,
  role: 'validator' | 'node' | 'client',
  name: string,
  table: Record<string, SocketAddress[]>,
  maxInboundConnections?: number,
): Node {
  const key = new Uint8Array(randomBytes(32));
  auth.add(identity(role, name, key));
  const registry = new Registry();
  const endpoint = new StoqEndpoint({
    transport: network.transport({ publicKey: key }),
    authenticator: auth,
    resolver: new StaticResolver(table),
    metrics: createStoqMetrics(registry),
    logger: new MemoryLogger(),
    ...(maxInboundConnections === undefined ? {} : { maxInboundConnections }),
  });
  return { endpoint, registry, key };
}

interface AlphaOptions {
  /** Whether alpha serves `demo` (default true). */
  readonly serve?: boolean;
  readonly maxInboundConnections?: number;
}

/**
 * A memory network on which the validator `alpha` listens. `peer` adds a node that knows alpha
 * by name; `close` closes every endpoint, newest first.
 */
async function alphaNetwork(options: AlphaOptions = {}) {
  const network = createMemoryNetwork();
  const auth = new TableAuthenticator();
  const nodes: Node[] = [];
  const alpha = node(network, auth, 'validator', 'alpha', {}, options.maxInboundConnections);
  nodes.push(alpha);
  if (options.serve !== false) alpha.endpoint.register(demo, demoHandlers());
  const address = await alpha.endpoint.listen({ host: 'alpha.test', port: 0 });
  return {
    network,
    auth,
    alpha,
    address,
    peer(name: string): Node {
      const peer = node(network, auth, 'node', name, { alpha: [address] });
      nodes.push(peer);
      return peer;
    },
    async close(): Promise<void> {
      for (const each of [...nodes].reverse()) await each.endpoint.close();
    },
  };
}

describe('StoqEndpoint over the memory transport', { timeout: 20_000 }, () => {
  it('serves registered services to peers that address it by name', async () => {
    const net = await alphaNetwork();
    const { alpha } = net;
    const beta = net.peer('beta');
    try {
      const client = beta.endpoint.client(demo, 'alpha');
      assert.deepEqual(await client.call('echo', { text: 'hi' }), { text: 'hi' });
      const counted: number[] = [];
      for await (const item of client.stream('count', { from: 0, to: 5 })) counted.push(item.n);
      assert.deepEqual(counted, [0, 1, 2, 3, 4]);
      assert.equal(alpha.endpoint.inboundConnections, 1);
      assert.equal(
        await counterValue(alpha.registry, 'hypermesh_stoq_connections', {
          transport: 'memory',
          direction: 'inbound',
        }),
        1,
      );
      assert.equal(
        await counterValue(beta.registry, 'hypermesh_stoq_connections', {
          transport: 'memory',
          direction: 'outbound',
        }),
        1,
      );
      assert.equal(
        await counterValue(beta.registry, 'hypermesh_stoq_rpc_calls_total', {
          method: 'demo.v1/echo',
          code: 'OK',
          side: 'client',
        }),
        1,
      );
    } finally {
      await net.close();
    }
  });

  it('serves its own services on sessions it dialled', async () => {
    const net = await alphaNetwork({ serve: false });
    const beta = net.peer('beta');
    beta.endpoint.register(
      demo,
      demoHandlers({ echo: (request) => ({ text: `beta says ${request.text}` }) }),
    );
    try {
      const session = await beta.endpoint.connect(net.address);
      assert.equal(session.peer.name, 'alpha');
      // Alpha calls beta back over the connection beta opened.
      const inbound = net.auth.sessions.find((s) => s.connection.direction === 'inbound');
      assert.ok(inbound);
      assert.equal(inbound.peer.name, 'beta');
      assert.deepEqual(await new RpcClient(demo, inbound).call('echo', { text: 'hi' }), {
        text: 'beta says hi',
      });
      // Alpha registered nothing, so beta's calls to it are NOT_FOUND.
      await assert.rejects(
        new RpcClient(demo, session).call('echo', { text: 'x' }),
        isStoqError(StoqErrorCode.NOT_FOUND),
      );
    } finally {
      await net.close();
    }
  });

  it('closes connections that fail authentication before serving anything', async () => {
    const net = await alphaNetwork();
    const { alpha } = net;
    // A transport whose key is in no table: authentication fails on both ends.
    const stranger = net.network.transport({ publicKey: new Uint8Array(randomBytes(32)) });
    try {
      const connection = await stranger.dial(net.address);
      await connection.closed;
      assert.equal(alpha.endpoint.inboundConnections, 0);
      assert.equal(alpha.endpoint.server.activeCalls, 0);
    } finally {
      await stranger.close();
      await net.close();
    }
  });

  it('refuses inbound connections beyond its limit', async () => {
    const net = await alphaNetwork({ maxInboundConnections: 1 });
    const { alpha } = net;
    const beta = net.peer('beta');
    const gamma = net.peer('gamma');
    try {
      assert.deepEqual(await beta.endpoint.client(demo, 'alpha').call('echo', { text: '1' }), {
        text: '1',
      });
      await assert.rejects(
        gamma.endpoint.client(demo, 'alpha').call('echo', { text: '2' }),
        (error: unknown) => {
          assert.ok(error instanceof Error);
          return true;
        },
      );
      assert.equal(alpha.endpoint.inboundConnections, 1);
      assert.equal(
        await counterValue(alpha.registry, 'hypermesh_stoq_handshakes_total', {
          outcome: 'connection_limit',
        }),
        1,
      );
      // The admitted peer is unaffected.
      assert.deepEqual(await beta.endpoint.client(demo, 'alpha').call('echo', { text: '3' }), {
        text: '3',
      });
    } finally {
      await net.close();
    }
  });

  it('stops calling and serving once closed', async () => {
    const net = await alphaNetwork();
    const { alpha } = net;
    const beta = net.peer('beta');
    const client = beta.endpoint.client(demo, 'alpha');
    assert.deepEqual(await client.call('echo', { text: 'a' }), { text: 'a' });
    await beta.endpoint.close();
    await assert.rejects(
      client.call('echo', { text: 'b' }),
      isStoqError(StoqErrorCode.UNAVAILABLE),
    );
    await alpha.endpoint.close();
    await assert.rejects(
      alpha.endpoint.listen({ host: 'alpha.test', port: 0 }),
      isStoqError(StoqErrorCode.UNAVAILABLE),
    );
    assert.equal(alpha.endpoint.inboundConnections, 0);
  });

  it('logs an error when a listener ends that its owner did not close', async () => {
    const network = createMemoryNetwork();
    const memory = network.transport({ publicKey: new Uint8Array(randomBytes(32)) });
    let endListener = (): void => undefined;
    // A listener whose accept() ends on its own, as the QUIC listener did when a peer's
    // CONNECTION_CLOSE text read "server closed".
    const transport: Transport = {
      kind: memory.kind,
      dial: (address, options) => memory.dial(address, options),
      close: () => memory.close(),
      listen: async (address) => {
        const inner = await memory.listen(address);
        const ended = new Promise<null>((resolve) => {
          endListener = () => resolve(null);
        });
        return {
          address: inner.address,
          accept: () => Promise.race([inner.accept(), ended]),
          close: () => inner.close(),
        };
      },
    };
    const logger = new MemoryLogger();
    const endpoint = new StoqEndpoint({
      transport,
      authenticator: new TableAuthenticator(),
      resolver: new StaticResolver({}),
      logger,
    });
    try {
      await endpoint.listen({ host: 'alpha.test', port: 0 });
      const logged = new Promise<void>((resolve) => {
        const error = logger.error.bind(logger);
        logger.error = (message, fields) => {
          error(message, fields);
          resolve();
        };
      });
      endListener();
      await withDeadline(logged, 5_000, 'the error log line');
      assert.match(logger.lines[0]?.message ?? '', /no longer accepts connections/);
      assert.equal(logger.lines[0]?.level, 'error');
    } finally {
      await endpoint.close();
    }
  });

  it('logs nothing when its owner closes it', async () => {
    const network = createMemoryNetwork();
    const logger = new MemoryLogger();
    const endpoint = new StoqEndpoint({
      transport: network.transport({ publicKey: new Uint8Array(randomBytes(32)) }),
      authenticator: new TableAuthenticator(),
      resolver: new StaticResolver({}),
      logger,
    });
    await endpoint.listen({ host: 'alpha.test', port: 0 });
    await endpoint.close();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(logger.lines, []);
  });
});
