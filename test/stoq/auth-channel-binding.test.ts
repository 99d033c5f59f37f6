import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CHANNEL_BINDING_BYTES,
  channelBinding,
  createAuthenticator,
} from '../../src/stoq/auth/authenticator.js';
import type { AuthMode } from '../../src/stoq/auth/messages.js';
import { AuthFailureReason } from '../../src/stoq/auth/reasons.js';
import type { Authenticator } from '../../src/stoq/identity.js';
import { createTlsTransport } from '../../src/stoq/tls/transport.js';
import type { Transport, TransportConnection, TransportStream } from '../../src/stoq/transport.js';
import { createTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';
import { withDeadline } from '../helpers/wait.js';
import { assertRejected } from './auth-fixture.js';
import { connectTransports } from '../helpers/transport.js';

/**
 * Strict mode over TLS signs the TLS exporter value (RFC 5705 / RFC 9266) of the session it
 * runs on. The attacker here holds both Ed25519 transport keys (what a quantum computer would
 * give them) but neither FALCON key: it terminates the client's TLS session as the server and
 * opens its own to the server as the client, then forwards the authentication frames between
 * the two unchanged. Without channel binding every check passes on both sides (same nonces,
 * same keys, same certificates) and the attacker sits in the middle of an authenticated session.
 */

let pki: TestPki;
let server: TestIdentity;
let client: TestIdentity;
const transports: Transport[] = [];

before(async () => {
  pki = await createTestPki({ cluster: 'binding' });
  server = await pki.issue({ name: 'server', role: 'validator' });
  client = await pki.issue({ name: 'client', role: 'node' });
});

after(async () => {
  await Promise.all(transports.map((transport) => transport.close()));
});

/** A TLS transport proving `identity`'s Ed25519 key (whoever holds it, honest or not). */
function tls(identity: TestIdentity): Transport {
  const transport = createTlsTransport({
    identity: {
      privateKey: identity.transportKey.privateKey,
      certificateChain: [identity.chainPem],
    },
  });
  transports.push(transport);
  return transport;
}

function authenticator(identity: TestIdentity, mode: AuthMode): Authenticator {
  return createAuthenticator({
    local: { chain: identity.chain, falcon: identity.falcon, falconBackend: pki.falconBackend },
    trust: { roots: pki.roots, revocation: pki.revocation },
    mode,
    timeoutMs: 30_000,
  });
}

/** Copies `from` into `to` until `from` ends, then ends `to`; a broken stream ends both. */
async function pump(from: TransportStream, to: TransportStream): Promise<void> {
  try {
    for (let chunk = await from.read(); chunk !== null; chunk = await from.read()) {
      await to.write(chunk);
    }
    await to.finish();
  } catch {
    from.reset();
    to.reset();
  }
}

describe('strict mode is bound to the TLS session', () => {
  it('both ends of one connection derive the same binding; another connection another', async () => {
    const first = await connectTransports(tls(server), tls(client), '127.0.0.1');
    const second = await connectTransports(tls(server), tls(client), '127.0.0.1');
    const binding = channelBinding(first.inbound);
    assert.equal(binding.length, CHANNEL_BINDING_BYTES);
    assert.deepEqual(channelBinding(first.outbound), binding);
    assert.notDeepEqual(channelBinding(second.inbound), binding);
    assert.deepEqual(channelBinding(second.outbound), channelBinding(second.inbound));
  });

  it('the direct connection authenticates', async () => {
    const { inbound, outbound } = await connectTransports(tls(server), tls(client), '127.0.0.1');
    const [serverSession, clientSession] = await Promise.all([
      authenticator(server, 'strict').authenticate(inbound),
      authenticator(client, 'strict').authenticate(outbound),
    ]);
    assert.equal(serverSession.peer.uri, client.uri);
    assert.equal(clientSession.peer.uri, server.uri);
  });

  it('a relay holding both Ed25519 keys that forwards the frames unchanged is refused', async () => {
    // The honest server, listening.
    const serverListener = await tls(server).listen({ host: '127.0.0.1', port: 0 });
    // The attacker: listens with the server's Ed25519 key, dials with the client's.
    const relayListener = await tls(server).listen({ host: '127.0.0.1', port: 0 });
    const relayDialer = tls(client);

    const [toRelay, fromClient] = await Promise.all([
      tls(client).dial(relayListener.address),
      relayListener.accept(),
    ]);
    assert.ok(fromClient, 'the relay accepted the client');
    const [toServer, atServer] = await Promise.all([
      relayDialer.dial(serverListener.address),
      serverListener.accept(),
    ]);
    assert.ok(atServer, 'the server accepted the relay');
    // Both TLS sessions prove exactly the keys the honest peers expect.
    assert.deepEqual(toRelay.peerKey?.publicKey, server.transportKey.publicKey);
    assert.deepEqual(atServer.peerKey?.publicKey, client.transportKey.publicKey);

    const serving = authenticator(server, 'strict').authenticate(atServer);
    const dialing = authenticator(client, 'strict').authenticate(toRelay);
    const relaying = relay(fromClient, toServer);

    const [serverResult, clientResult] = await withDeadline(
      Promise.allSettled([serving, dialing]),
      30_000,
      'both ends of the relayed exchange settle',
    );
    // The client checks the server's proof first: it signed the relay-server session.
    assertRejected(clientResult, AuthFailureReason.FALCON_PROOF_INVALID, 'local');
    assertRejected(serverResult, AuthFailureReason.FALCON_PROOF_INVALID, 'peer');
    await Promise.all([toRelay.closed, atServer.closed]);
    await relaying;
  });
});

/** The attacker's relay: the first stream each way, bytes copied unchanged in both directions. */
async function relay(client: TransportConnection, server: TransportConnection): Promise<void> {
  const fromClient = await client.acceptStream();
  if (fromClient === null) return;
  const toServer = await server.openStream();
  await Promise.all([pump(fromClient, toServer), pump(toServer, fromClient)]);
  client.close();
  server.close();
}
