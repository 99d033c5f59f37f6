import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { FalconBackend } from '../../src/crypto/falcon.js';
import { createAuthenticator } from '../../src/stoq/auth/authenticator.js';
import type { AuthMode } from '../../src/stoq/auth/messages.js';
import { AuthFailureReason } from '../../src/stoq/auth/reasons.js';
import { StoqEndpoint } from '../../src/stoq/endpoint.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import type { Session } from '../../src/stoq/identity.js';
import { createMemoryNetwork, type MemoryNetwork } from '../../src/stoq/memory.js';
import { createStoqMetrics } from '../../src/stoq/metrics.js';
import { StaticResolver } from '../../src/stoq/resolver.js';
import type { SocketAddress } from '../../src/stoq/transport.js';
import { createTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';
import { MemoryLogger, counterValue } from './rpc-fixture.js';

/**
 * Inbound limits that hold after authentication: one identity cannot take every slot of the
 * endpoint, and a dialer refused for a full listener learns that (RESOURCE_EXHAUSTED,
 * `connection_limit`) instead of an authentication failure.
 */

let pki: TestPki;
let alpha: TestIdentity;
let carol: TestIdentity;
let dave: TestIdentity;

before(async () => {
  pki = await createTestPki({ cluster: 'limits' });
  alpha = await pki.issue({ name: 'alpha', role: 'validator' });
  carol = await pki.issue({ name: 'carol', role: 'client' });
  dave = await pki.issue({ name: 'dave', role: 'validator' });
});

const endpoints: StoqEndpoint[] = [];
after(async () => {
  for (const endpoint of endpoints.reverse()) await endpoint.close();
});

function endpoint(
  network: MemoryNetwork,
  identity: TestIdentity,
  options: {
    maxInboundSessionsPerPeer?: number;
    maxInboundConnections?: number;
    registry?: Registry;
    mode?: AuthMode;
    falconBackend?: FalconBackend;
    logger?: MemoryLogger;
  } = {},
): StoqEndpoint {
  const registry = options.registry ?? new Registry();
  const made = new StoqEndpoint({
    transport: network.transport({ publicKey: identity.transportKey.publicKey }),
    authenticator: createAuthenticator({
      local: {
        chain: identity.chain,
        falcon: identity.falcon,
        falconBackend: options.falconBackend ?? pki.falconBackend,
      },
      trust: { roots: pki.roots, revocation: pki.revocation },
      mode: options.mode ?? 'delegated',
      metrics: createStoqMetrics(registry),
    }),
    resolver: new StaticResolver({}),
    logger: options.logger ?? new MemoryLogger(),
    metrics: createStoqMetrics(new Registry()),
    ...(options.maxInboundSessionsPerPeer === undefined
      ? {}
      : { maxInboundSessionsPerPeer: options.maxInboundSessionsPerPeer }),
    ...(options.maxInboundConnections === undefined
      ? {}
      : { maxInboundConnections: options.maxInboundConnections }),
  });
  endpoints.push(made);
  return made;
}

/** `backend`, counting the FALCON signatures it makes and verifies. */
function countingBackend(backend: FalconBackend): FalconBackend & {
  readonly calls: { sign: number; verify: number };
} {
  const calls = { sign: 0, verify: 0 };
  return {
    name: backend.name,
    calls,
    generateKeyPair: () => backend.generateKeyPair(),
    sign: (message, secretKey) => {
      calls.sign++;
      return backend.sign(message, secretKey);
    },
    verify: (signature, message, publicKey) => {
      calls.verify++;
      return backend.verify(signature, message, publicKey);
    },
  };
}

/** A RESOURCE_EXHAUSTED refusal with reason `connection_limit`, told by `origin`. */
function refusedForLimit(origin: 'local' | 'peer') {
  return (error: unknown): boolean => {
    assert.ok(error instanceof StoqError, String(error));
    assert.equal(error.code, StoqErrorCode.RESOURCE_EXHAUSTED, error.message);
    assert.equal(error.detail.reason, AuthFailureReason.CONNECTION_LIMIT);
    assert.equal(error.detail.origin, origin);
    return true;
  };
}

describe('StoqEndpoint inbound limits per identity', { timeout: 60_000 }, () => {
  it('refuses one identity its N+1st session with RESOURCE_EXHAUSTED; others still connect', async () => {
    const network = createMemoryNetwork();
    const registry = new Registry();
    const server = endpoint(network, alpha, { maxInboundSessionsPerPeer: 3, registry });
    const address: SocketAddress = await server.listen({ host: 'alpha.test', port: 0 });
    const client = endpoint(network, carol);
    const sessions: Session[] = [];
    for (let i = 0; i < 3; i++) sessions.push(await client.connect(address));
    await assert.rejects(client.connect(address), refusedForLimit('peer'));
    assert.equal(server.inboundConnections, 3, 'the refused connection is not held');
    assert.equal(
      await counterValue(registry, 'hypermesh_stoq_handshakes_total', {
        outcome: 'connection_limit',
      }),
      1,
    );

    // Another identity is not affected by carol's sessions.
    const validator = endpoint(network, dave);
    const daves = await validator.connect(address);
    assert.equal(daves.peer.uri, alpha.uri);

    // A session that ends gives its slot back to its identity.
    const first = sessions[0] as Session;
    first.connection.close('done');
    // The memory transport closes both ends at once; the listener counted its end off first.
    await first.connection.closed;
    assert.equal(server.inboundConnections, 3);
    const again = await client.connect(address);
    assert.equal(again.peer.uri, alpha.uri);
    await assert.rejects(client.connect(address), refusedForLimit('peer'));
  });

  it('refuses an identity at its limit before any FALCON work, with one log line per 10 s', async () => {
    const network = createMemoryNetwork();
    const registry = new Registry();
    const logger = new MemoryLogger();
    const falcon = countingBackend(pki.falconBackend);
    // Strict mode: an admitted session costs the listener a FALCON signature (ServerHello) and
    // a verification (ClientProof).
    const server = endpoint(network, alpha, {
      maxInboundSessionsPerPeer: 1,
      registry,
      logger,
      mode: 'strict',
      falconBackend: falcon,
    });
    const address = await server.listen({ host: 'alpha.test', port: 0 });
    const client = endpoint(network, carol, { mode: 'strict' });
    await client.connect(address);
    assert.ok(falcon.calls.sign > 0, 'the admitted session was signed for');
    assert.ok(falcon.calls.verify > 0, 'the admitted session was verified');
    const admitted = { ...falcon.calls };

    const refusals = 5;
    for (let i = 0; i < refusals; i++) {
      await assert.rejects(client.connect(address), refusedForLimit('peer'));
    }
    assert.deepEqual(falcon.calls, admitted, 'a refused session costs the listener no FALCON');
    assert.equal(server.inboundConnections, 1);
    assert.equal(
      await counterValue(registry, 'hypermesh_stoq_handshakes_total', {
        outcome: 'connection_limit',
      }),
      refusals,
    );
    const lines = logger.lines.filter((line) => line.message.startsWith('refusing STOQ sessions'));
    assert.equal(lines.length, 1, JSON.stringify(logger.lines));
    assert.equal(lines[0]?.level, 'warn');
    assert.equal(lines[0]?.fields.lastPeer, carol.uri);
    assert.equal(lines[0]?.fields.refusals, 1);
  });

  it('tells a dialer RESOURCE_EXHAUSTED when the listener holds maxInboundConnections', async () => {
    const network = createMemoryNetwork();
    const server = endpoint(network, alpha, { maxInboundConnections: 1 });
    const address = await server.listen({ host: 'alpha.test', port: 0 });
    await endpoint(network, carol).connect(address);
    await assert.rejects(endpoint(network, dave).connect(address), refusedForLimit('peer'));
    assert.equal(server.inboundConnections, 1);
  });
});
