import assert from 'node:assert/strict';
import { afterEach, before, describe, it } from 'node:test';
import { createAuthenticator } from '../../src/stoq/auth/authenticator.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import { createMemoryNetwork } from '../../src/stoq/memory.js';
import type { Transport, TransportConnection } from '../../src/stoq/transport.js';
import { createTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';
import { connectTransports } from '../helpers/transport.js';

/**
 * Replacing the local certificate chain (a renewed certificate, docs/stoq-auth.md): handshakes
 * started afterwards present the new leaf, sessions already open keep theirs, and a chain for
 * another key or identity is refused.
 */

let pki: TestPki;
let server: TestIdentity;
let renewed: TestIdentity;
let client: TestIdentity;

before(async () => {
  pki = await createTestPki({ cluster: 'renewal' });
  server = await pki.issue({ name: 'server', role: 'validator' });
  renewed = await pki.issue({
    name: 'server',
    role: 'validator',
    transportKey: server.transportKey,
    falcon: server.falcon,
  });
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
  return connectTransports(listening, dialing, 'renewal');
}

const authenticator = (identity: TestIdentity) =>
  createAuthenticator({
    local: { chain: identity.chain, falcon: identity.falcon, falconBackend: pki.falconBackend },
    trust: { roots: pki.roots, revocation: pki.revocation },
    mode: 'strict',
  });

function invalidArgument(pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof StoqError, String(error));
    assert.equal(error.code, StoqErrorCode.INVALID_ARGUMENT);
    assert.match(error.message, pattern);
    return true;
  };
}

describe('replacing the local certificate chain', () => {
  it('new handshakes present the renewed leaf; open sessions keep theirs', async () => {
    const serverAuth = authenticator(server);
    const clientAuth = authenticator(client);
    const first = await connect();
    const [, before] = await Promise.all([
      serverAuth.authenticate(first.inbound),
      clientAuth.authenticate(first.outbound),
    ]);
    assert.equal(before.peer.certificateFingerprint, server.fingerprint);

    serverAuth.replaceLocalChain(renewed.chain);
    const second = await connect();
    const [, after] = await Promise.all([
      serverAuth.authenticate(second.inbound),
      clientAuth.authenticate(second.outbound),
    ]);
    assert.equal(after.peer.certificateFingerprint, renewed.fingerprint);
    assert.equal(after.peer.uri, server.uri);
    assert.equal(after.peer.notAfter.getTime(), renewed.notAfter.getTime());
    // The first session is untouched: its peer is still the old leaf.
    assert.equal(before.peer.certificateFingerprint, server.fingerprint);
  });

  it('refuses a chain for another key or another identity, keeping the old one', async () => {
    const serverAuth = authenticator(server);
    const otherKey = await pki.issue({ name: 'server', role: 'validator' });
    const otherName = await pki.issue({
      name: 'elsewhere',
      role: 'validator',
      transportKey: server.transportKey,
      falcon: server.falcon,
    });
    const otherRole = await pki.issue({
      name: 'server',
      role: 'client',
      transportKey: server.transportKey,
      falcon: server.falcon,
    });
    const otherFalcon = await pki.issue({
      name: 'server',
      role: 'validator',
      transportKey: server.transportKey,
    });
    assert.throws(
      () => serverAuth.replaceLocalChain(otherKey.chain),
      // A new Ed25519 key with the old FALCON key pair: the FALCON check fails first.
      invalidArgument(/different (Ed25519|FALCON) key/),
    );
    assert.throws(
      () => serverAuth.replaceLocalChain(otherName.chain),
      invalidArgument(/names spiffe:\/\/renewal\/validator\/elsewhere/),
    );
    assert.throws(
      () => serverAuth.replaceLocalChain(otherRole.chain),
      invalidArgument(/only a renewal of the same identity/),
    );
    assert.throws(
      () => serverAuth.replaceLocalChain(otherFalcon.chain),
      invalidArgument(/different FALCON key/),
    );
    assert.throws(() => serverAuth.replaceLocalChain([]), invalidArgument(/chain is empty/));

    const clientAuth = authenticator(client);
    const { inbound, outbound } = await connect();
    const [, session] = await Promise.all([
      serverAuth.authenticate(inbound),
      clientAuth.authenticate(outbound),
    ]);
    assert.equal(session.peer.certificateFingerprint, server.fingerprint);
  });
});
