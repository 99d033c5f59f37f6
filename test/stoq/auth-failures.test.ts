import assert from 'node:assert/strict';
import { afterEach, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { FalconBackend } from '../../src/crypto/falcon.js';
import {
  createAuthenticator,
  type AuthenticatorOptions,
} from '../../src/stoq/auth/authenticator.js';
import { createDelegationCache } from '../../src/stoq/auth/delegation.js';
import { encodeFrame } from '../../src/stoq/auth/framing.js';
import { AuthFailureReason } from '../../src/stoq/auth/reasons.js';
import { createMemoryNetwork } from '../../src/stoq/memory.js';
import { createStoqMetrics } from '../../src/stoq/metrics.js';
import type { Transport, TransportConnection } from '../../src/stoq/transport.js';
import { createTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';
import { assertRejected } from './auth-fixture.js';
import { connectTransports } from '../helpers/transport.js';

/**
 * Failures that are nobody's malice: a FALCON library that fails, a delegation that cannot be
 * signed, a peer that hangs up mid-exchange. Each still ends in a typed, counted rejection and a
 * closed connection.
 */

let pki: TestPki;
let server: TestIdentity;
let client: TestIdentity;

before(async () => {
  pki = await createTestPki({ cluster: 'failures' });
  server = await pki.issue({ name: 'server' });
  client = await pki.issue({ name: 'client' });
});

const network = createMemoryNetwork();
const transports: Transport[] = [];

afterEach(async () => {
  await Promise.all(transports.splice(0).map((transport) => transport.close()));
});

async function connect(): Promise<{ inbound: TransportConnection; outbound: TransportConnection }> {
  const listening = network.transport({ publicKey: server.transportKey.publicKey });
  const dialing = network.transport({ publicKey: client.transportKey.publicKey });
  transports.push(listening, dialing);
  return connectTransports(listening, dialing, 'failures');
}

function authenticator(identity: TestIdentity, overrides: Partial<AuthenticatorOptions> = {}) {
  const registry = new Registry();
  const auth = createAuthenticator({
    local: { chain: identity.chain, falcon: identity.falcon, falconBackend: pki.falconBackend },
    trust: { roots: pki.roots, revocation: pki.revocation },
    mode: 'strict',
    metrics: createStoqMetrics(registry),
    ...overrides,
  });
  return { auth, registry };
}

const failingBackend = (): FalconBackend => ({
  name: 'failing',
  generateKeyPair: () => pki.falconBackend.generateKeyPair(),
  verify: (...args) => pki.falconBackend.verify(...args),
  sign: () => Promise.reject(new Error('FALCON library failure')),
});

async function count(registry: Registry, outcome: string): Promise<number> {
  const metric = registry.getSingleMetric('hypermesh_stoq_handshakes_total');
  const { values } = await metric!.get();
  return values.find((value) => value.labels.outcome === outcome)?.value ?? 0;
}

describe('authentication under local failures', () => {
  it('internal_error when the FALCON library cannot sign the proof', async () => {
    const serverSide = authenticator(server, {
      local: { chain: server.chain, falcon: server.falcon, falconBackend: failingBackend() },
    });
    const clientSide = authenticator(client);
    const { inbound, outbound } = await connect();
    const [serverResult, clientResult] = await Promise.allSettled([
      serverSide.auth.authenticate(inbound),
      clientSide.auth.authenticate(outbound),
    ]);
    assertRejected(serverResult, AuthFailureReason.INTERNAL_ERROR, 'local');
    assertRejected(clientResult, AuthFailureReason.INTERNAL_ERROR, 'peer');
    assert.equal(await count(serverSide.registry, 'internal_error'), 1);
  });

  it('internal_error when no delegation can be obtained, and the cache recovers later', async () => {
    let failures = 1;
    const flaky: FalconBackend = {
      ...failingBackend(),
      sign: (message, secretKey) =>
        failures-- > 0
          ? Promise.reject(new Error('transient'))
          : pki.falconBackend.sign(message, secretKey),
    };
    const delegation = createDelegationCache({
      backend: flaky,
      falconSecretKey: client.falcon.secretKey,
      transportKey: client.transportKey.publicKey,
      uri: client.uri,
    });
    const clientSide = authenticator(client, {
      mode: 'delegated',
      local: {
        chain: client.chain,
        falcon: client.falcon,
        falconBackend: pki.falconBackend,
        delegation,
      },
    });
    const serverSide = authenticator(server, { mode: 'delegated' });

    const first = await connect();
    const [serverResult, clientResult] = await Promise.allSettled([
      serverSide.auth.authenticate(first.inbound),
      clientSide.auth.authenticate(first.outbound),
    ]);
    assertRejected(clientResult, AuthFailureReason.INTERNAL_ERROR, 'local');
    assertRejected(serverResult, AuthFailureReason.INTERNAL_ERROR, 'peer');

    const second = await connect();
    const [serverSession, clientSession] = await Promise.all([
      serverSide.auth.authenticate(second.inbound),
      clientSide.auth.authenticate(second.outbound),
    ]);
    assert.equal(serverSession.peer.uri, client.uri);
    assert.equal(clientSession.peer.uri, server.uri);
  });

  it('protocol_error when the connection is gone before the exchange starts', async () => {
    const serverSide = authenticator(server);
    const clientSide = authenticator(client);
    const { inbound, outbound } = await connect();
    outbound.close();
    const [serverResult, clientResult] = await Promise.allSettled([
      serverSide.auth.authenticate(inbound),
      clientSide.auth.authenticate(outbound),
    ]);
    assertRejected(serverResult, AuthFailureReason.PROTOCOL_ERROR, 'local');
    assertRejected(clientResult, AuthFailureReason.PROTOCOL_ERROR, 'local');
    assert.equal(await count(serverSide.registry, 'protocol_error'), 1);
    assert.equal(await count(clientSide.registry, 'protocol_error'), 1);
  });

  it('protocol_error when the peer hangs up halfway through a message', async () => {
    const serverSide = authenticator(server);
    const { inbound, outbound } = await connect();
    const serving = serverSide.auth.authenticate(inbound);
    const stream = await outbound.openStream();
    await stream.write(encodeFrame(new Uint8Array(100)).subarray(0, 50));
    outbound.close();
    const [result] = await Promise.allSettled([serving]);
    assertRejected(result, AuthFailureReason.PROTOCOL_ERROR, 'local');
  });
});
