import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import type { FalconKeyPair } from '../../src/crypto/falcon.js';
import { parseCertificate, parseTrustRoots } from '../../src/crypto/x509.js';
import { localCredentials } from '../../src/stoq/auth/authenticator.js';
import { createDelegation } from '../../src/stoq/auth/delegation.js';
import {
  buildClientHello,
  buildClientProof,
  buildServerHello,
  checkClientHello,
  checkClientProof,
  checkServerHello,
  type LocalCredentials,
  type PeerCheckContext,
} from '../../src/stoq/auth/exchange.js';
import {
  AUTH_PROTOCOL_VERSION,
  type AuthMode,
  type ClientHello,
  type ClientProof,
  type ServerHello,
} from '../../src/stoq/auth/messages.js';
import type { CertifiedPeer, RevocationCheck, TrustPolicy } from '../../src/stoq/auth/peer.js';
import { AuthFailureReason } from '../../src/stoq/auth/reasons.js';
import type { StoqError } from '../../src/stoq/errors.js';
import type { ProvenKey } from '../../src/stoq/transport.js';
import { createTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';
import { nonce, rejectsWith } from './auth-fixture.js';

/**
 * The pure steps of the exchange, driven directly so hostile messages can be crafted: replayed
 * and reflected proofs, foreign signatures, chains for other keys, bad delegations.
 */

const proven = (identity: TestIdentity): ProvenKey => ({
  algorithm: 'ed25519',
  publicKey: identity.transportKey.publicKey,
});

let pki: TestPki;
let serverIdentity: TestIdentity;
let clientIdentity: TestIdentity;
let server: LocalCredentials;
let client: LocalCredentials;
let otherFalcon: FalconKeyPair;
let trust: TrustPolicy;

before(async () => {
  pki = await createTestPki({ cluster: 'exchange-test' });
  serverIdentity = await pki.issue({ name: 'server', role: 'validator' });
  clientIdentity = await pki.issue({ name: 'client', role: 'client' });
  otherFalcon = await pki.falconBackend.generateKeyPair();
  server = localCredentials({
    chain: serverIdentity.chain,
    falcon: serverIdentity.falcon,
    falconBackend: pki.falconBackend,
  });
  client = localCredentials({
    chain: clientIdentity.chain,
    falcon: clientIdentity.falcon,
    falconBackend: pki.falconBackend,
  });
  trust = { roots: parseTrustRoots(pki.roots), cluster: pki.cluster, revocation: pki.revocation };
});

function context(
  mode: AuthMode,
  provenKey: ProvenKey | null,
  overrides: Partial<PeerCheckContext> = {},
): PeerCheckContext {
  return { mode, trust, now: new Date(), provenKey, backend: pki.falconBackend, ...overrides };
}

interface Exchange {
  /** The transport session's channel binding both sides signed (a TLS exporter value). */
  readonly channelBinding: Uint8Array;
  readonly clientNonce: Uint8Array;
  readonly serverNonce: Uint8Array;
  readonly hello: ClientHello;
  readonly clientPeer: CertifiedPeer;
  readonly serverHello: ServerHello;
  readonly serverPeer: CertifiedPeer;
  readonly proof: ClientProof;
}

async function delegationFor(local: LocalCredentials) {
  return createDelegation({
    backend: pki.falconBackend,
    falconSecretKey: local.falcon.secretKey,
    transportKey: local.transportKey,
    uri: local.uri,
    notAfter: new Date(Date.now() + 60_000),
  });
}

/** One honest exchange, each check run by the side that would run it. */
async function exchange(mode: AuthMode): Promise<Exchange> {
  const channelBinding = nonce();
  const clientNonce = nonce();
  const serverNonce = nonce();
  const hello = buildClientHello({
    mode,
    nonce: clientNonce,
    local: client,
    ...(mode === 'delegated' ? { delegation: await delegationFor(client) } : {}),
  });
  const clientPeer = await checkClientHello(hello, context(mode, proven(clientIdentity)));
  const serverHello = await buildServerHello({
    mode,
    nonce: serverNonce,
    clientHello: hello,
    client: clientPeer,
    local: server,
    ...(mode === 'delegated' ? { delegation: await delegationFor(server) } : {}),
    channelBinding,
  });
  const serverPeer = await checkServerHello(serverHello, {
    ...context(mode, proven(serverIdentity)),
    clientNonce,
    local: client,
    channelBinding,
  });
  const proof = await buildClientProof({
    mode,
    clientNonce,
    serverHello,
    server: serverPeer,
    local: client,
    channelBinding,
  });
  checkClientProof(proof, {
    mode,
    clientNonce,
    serverNonce,
    client: clientPeer,
    local: server,
    backend: pki.falconBackend,
    channelBinding,
  });
  return {
    channelBinding,
    clientNonce,
    serverNonce,
    hello,
    clientPeer,
    serverHello,
    serverPeer,
    proof,
  };
}

function checkProofAgainst(
  current: Exchange,
  proof: ClientProof,
  mode: AuthMode = 'strict',
  channelBinding: Uint8Array = current.channelBinding,
): void {
  checkClientProof(proof, {
    mode,
    clientNonce: current.clientNonce,
    serverNonce: current.serverNonce,
    client: current.clientPeer,
    local: server,
    backend: pki.falconBackend,
    channelBinding,
  });
}

describe('exchange (pure steps)', () => {
  for (const mode of ['strict', 'delegated'] as const) {
    it(`${mode}: both sides learn the other's certified identity`, async () => {
      const { clientPeer, serverPeer, serverHello, proof } = await exchange(mode);
      assert.equal(clientPeer.identity.uri, 'spiffe://exchange-test/client/client');
      assert.equal(clientPeer.identity.role, 'client');
      assert.deepEqual(clientPeer.identity.transportKey, clientIdentity.transportKey.publicKey);
      assert.deepEqual(clientPeer.identity.falconPublicKey, clientIdentity.falcon.publicKey);
      assert.equal(clientPeer.identity.certificateFingerprint, clientIdentity.fingerprint);
      assert.equal(serverPeer.identity.uri, 'spiffe://exchange-test/validator/server');
      assert.equal(serverPeer.identity.role, 'validator');
      assert.equal(serverPeer.identity.notAfter.getTime(), serverIdentity.notAfter.getTime());
      assert.equal(serverHello.proof !== undefined, mode === 'strict');
      assert.equal(proof.proof !== undefined, mode === 'strict');
      assert.equal(serverHello.delegation !== undefined, mode === 'delegated');
    });
  }

  it('falcon_proof_replayed: a client proof captured on an earlier connection', async () => {
    const earlier = await exchange('strict');
    const now = await exchange('strict');
    assert.throws(
      () => checkProofAgainst(now, earlier.proof),
      rejectsWith(AuthFailureReason.FALCON_PROOF_REPLAYED),
    );
  });

  it('falcon_proof_invalid: a replayed proof with the echo rewritten to this connection', async () => {
    const earlier = await exchange('strict');
    const now = await exchange('strict');
    const rewritten = { ...earlier.proof, echo: now.serverNonce };
    assert.throws(
      () => checkProofAgainst(now, rewritten),
      rejectsWith(AuthFailureReason.FALCON_PROOF_INVALID),
    );
  });

  it('falcon_proof_invalid: signed by a FALCON key other than the certified one', async () => {
    const now = await exchange('strict');
    const forged = await buildClientProof({
      mode: 'strict',
      clientNonce: now.clientNonce,
      serverHello: now.serverHello,
      server: now.serverPeer,
      local: {
        ...client,
        falcon: { publicKey: client.falcon.publicKey, secretKey: otherFalcon.secretKey },
      },
      channelBinding: now.channelBinding,
    });
    assert.throws(
      () => checkProofAgainst(now, forged),
      rejectsWith(AuthFailureReason.FALCON_PROOF_INVALID),
    );
  });

  it("falcon_proof_invalid: the server's proof reflected back as the client's, or no proof", async () => {
    const now = await exchange('strict');
    const reflected: ClientProof = {
      t: 'client_proof',
      v: AUTH_PROTOCOL_VERSION,
      echo: now.serverNonce,
      proof: now.serverHello.proof!,
    };
    assert.throws(
      () => checkProofAgainst(now, reflected),
      rejectsWith(AuthFailureReason.FALCON_PROOF_INVALID),
    );
    const missing: ClientProof = {
      t: 'client_proof',
      v: AUTH_PROTOCOL_VERSION,
      echo: now.serverNonce,
    };
    assert.throws(
      () => checkProofAgainst(now, missing),
      rejectsWith(AuthFailureReason.FALCON_PROOF_INVALID),
    );
  });

  it('falcon_proof_invalid: both proofs of one exchange, checked on another channel (a relay)', async () => {
    // A relay holding both Ed25519 keys forwards every message unchanged: nonces, echoes and
    // keys all match, only the transport session (its channel binding) differs.
    const relayed = await exchange('strict');
    const otherChannel = nonce();
    assert.throws(
      () => checkProofAgainst(relayed, relayed.proof, 'strict', otherChannel),
      rejectsWith(AuthFailureReason.FALCON_PROOF_INVALID),
    );
    await assert.rejects(
      checkServerHello(relayed.serverHello, {
        ...context('strict', proven(serverIdentity)),
        clientNonce: relayed.clientNonce,
        local: client,
        channelBinding: otherChannel,
      }),
      rejectsWith(AuthFailureReason.FALCON_PROOF_INVALID),
    );
  });

  it('protocol_error: a per-connection proof in delegated mode', async () => {
    const now = await exchange('delegated');
    const strictProof = (await exchange('strict')).proof;
    assert.throws(
      () => checkProofAgainst(now, { ...strictProof, echo: now.serverNonce }, 'delegated'),
      rejectsWith(AuthFailureReason.PROTOCOL_ERROR),
    );
    assert.throws(
      () => checkProofAgainst(now, { ...now.proof, echo: nonce() }, 'delegated'),
      rejectsWith(AuthFailureReason.FALCON_PROOF_REPLAYED),
    );
  });

  it('the client refuses a server hello from another connection or with a foreign proof', async () => {
    const earlier = await exchange('strict');
    const clientNonce = nonce();
    const serverContext = {
      ...context('strict', proven(serverIdentity)),
      clientNonce,
      local: client,
      channelBinding: earlier.channelBinding,
    };
    await assert.rejects(
      checkServerHello(earlier.serverHello, serverContext),
      rejectsWith(AuthFailureReason.FALCON_PROOF_REPLAYED),
    );
    await assert.rejects(
      checkServerHello({ ...earlier.serverHello, echo: clientNonce }, serverContext),
      rejectsWith(AuthFailureReason.FALCON_PROOF_INVALID),
    );
    const { proof: _, ...withoutProof } = earlier.serverHello;
    await assert.rejects(
      checkServerHello({ ...withoutProof, echo: clientNonce }, serverContext),
      rejectsWith(AuthFailureReason.FALCON_PROOF_INVALID),
    );
  });

  it('key_mismatch: a valid chain for a key the transport did not prove', async () => {
    const hello = buildClientHello({ mode: 'strict', nonce: nonce(), local: client });
    await assert.rejects(
      checkClientHello(hello, context('strict', proven(serverIdentity))),
      rejectsWith(AuthFailureReason.KEY_MISMATCH),
    );
  });

  it('no_certificate: no proven key, or an empty chain', async () => {
    const hello = buildClientHello({ mode: 'strict', nonce: nonce(), local: client });
    await assert.rejects(
      checkClientHello(hello, context('strict', null)),
      rejectsWith(AuthFailureReason.NO_CERTIFICATE),
    );
    await assert.rejects(
      checkClientHello({ ...hello, chain: [] }, context('strict', proven(clientIdentity))),
      rejectsWith(AuthFailureReason.NO_CERTIFICATE),
    );
  });

  it('mode_mismatch in either direction', async () => {
    const hello = buildClientHello({ mode: 'strict', nonce: nonce(), local: client });
    await assert.rejects(
      checkClientHello(hello, context('delegated', proven(clientIdentity))),
      rejectsWith(AuthFailureReason.MODE_MISMATCH),
    );
    const now = await exchange('delegated');
    await assert.rejects(
      checkServerHello(now.serverHello, {
        ...context('strict', proven(serverIdentity)),
        clientNonce: now.clientNonce,
        local: client,
        channelBinding: now.channelBinding,
      }),
      rejectsWith(AuthFailureReason.MODE_MISMATCH),
    );
  });

  it('delegated mode: a missing, foreign or expired delegation', async () => {
    const ctx = context('delegated', proven(clientIdentity));
    const base = buildClientHello({ mode: 'delegated', nonce: nonce(), local: client });
    await assert.rejects(
      checkClientHello(base, ctx),
      rejectsWith(AuthFailureReason.DELEGATION_INVALID),
    );
    const serverDelegation = await delegationFor(server);
    await assert.rejects(
      checkClientHello({ ...base, delegation: serverDelegation }, ctx),
      rejectsWith(AuthFailureReason.DELEGATION_INVALID),
    );
    const expired = await createDelegation({
      backend: pki.falconBackend,
      falconSecretKey: client.falcon.secretKey,
      transportKey: client.transportKey,
      uri: client.uri,
      notAfter: new Date(Date.now() - 1000),
    });
    await assert.rejects(
      checkClientHello({ ...base, delegation: expired }, ctx),
      rejectsWith(AuthFailureReason.DELEGATION_EXPIRED),
    );
  });

  it('certificate checks: wrong cluster, malformed, revoked, revocation unknown', async () => {
    const elsewhere = await pki.issue({
      name: 'client',
      cluster: 'other-cluster',
      falcon: clientIdentity.falcon,
      transportKey: clientIdentity.transportKey,
    });
    const helloFor = (chain: readonly Uint8Array[]) =>
      buildClientHello({ mode: 'strict', nonce: nonce(), local: { chain } });
    const ctx = context('strict', proven(clientIdentity));
    await assert.rejects(
      checkClientHello(helloFor(elsewhere.chain), ctx),
      rejectsWith(AuthFailureReason.WRONG_CLUSTER),
    );
    await assert.rejects(
      checkClientHello(
        helloFor([new Uint8Array(randomBytes(100)), ...clientIdentity.chain.slice(1)]),
        ctx,
      ),
      rejectsWith(AuthFailureReason.MALFORMED_CERTIFICATE),
    );

    const queried: number[] = [];
    const revokeIntermediate: RevocationCheck = ({ certificate, depth }) => {
      queried.push(depth);
      return certificate.fingerprint === parseCertificate(pki.intermediate.certificate).fingerprint
        ? 'revoked'
        : 'good';
    };
    await assert.rejects(
      checkClientHello(
        helloFor(clientIdentity.chain),
        context('strict', proven(clientIdentity), {
          trust: { ...trust, revocation: revokeIntermediate },
        }),
      ),
      (error: unknown) =>
        rejectsWith(AuthFailureReason.REVOKED)(error) && (error as StoqError).detail.depth === 1,
    );
    assert.deepEqual(queried, [0, 1], 'leaf and intermediate are checked, the trust root is not');

    for (const revocation of [
      () => 'unknown' as const,
      () => Promise.reject(new Error('CRL unreachable')),
    ]) {
      await assert.rejects(
        checkClientHello(
          helloFor(clientIdentity.chain),
          context('strict', proven(clientIdentity), { trust: { ...trust, revocation } }),
        ),
        rejectsWith(AuthFailureReason.REVOCATION_UNKNOWN),
      );
    }
  });

  it('a certificate cache hook is used for every certificate of the chain', async () => {
    const parsed: string[] = [];
    const hello = buildClientHello({ mode: 'strict', nonce: nonce(), local: client });
    await checkClientHello(
      hello,
      context('strict', proven(clientIdentity), {
        parse: (der) => {
          const certificate = parseCertificate(der);
          parsed.push(certificate.fingerprint);
          return certificate;
        },
      }),
    );
    assert.equal(parsed.length, clientIdentity.chain.length);
  });
});
