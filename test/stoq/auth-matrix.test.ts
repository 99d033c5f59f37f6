import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { FalconKeyPair } from '../../src/crypto/falcon.js';
import { parseTrustRoots } from '../../src/crypto/x509.js';
import {
  channelBinding,
  createAuthenticator,
  type AuthenticatorOptions,
} from '../../src/stoq/auth/authenticator.js';
import { createDelegation } from '../../src/stoq/auth/delegation.js';
import {
  buildClientHello,
  buildClientProof,
  checkServerHello,
} from '../../src/stoq/auth/exchange.js';
import { localCredentials } from '../../src/stoq/auth/authenticator.js';
import { FrameReader, encodeFrame } from '../../src/stoq/auth/framing.js';
import {
  AUTH_PROTOCOL_VERSION,
  decodeAuthMessage,
  encodeAuthMessage,
  type AuthMessage,
  type AuthMode,
  type ClientProof,
  type ServerHello,
} from '../../src/stoq/auth/messages.js';
import { AuthFailureReason } from '../../src/stoq/auth/reasons.js';
import type { Authenticator } from '../../src/stoq/identity.js';
import { createMemoryNetwork } from '../../src/stoq/memory.js';
import { createStoqMetrics } from '../../src/stoq/metrics.js';
import { createQuicTransport } from '../../src/stoq/quic/transport.js';
import { createTlsTransport } from '../../src/stoq/tls/transport.js';
import type {
  Transport,
  TransportConnection,
  TransportKind,
  TransportStream,
} from '../../src/stoq/transport.js';
import {
  createTestPki,
  type TestIdentity,
  type TestPki,
  type TestTransportKey,
} from '../helpers/pki.js';
import { assertRejected } from './auth-fixture.js';
import { connectTransports } from '../helpers/transport.js';

/**
 * The authentication matrix (issue §4), run over every transport: each broken peer is refused
 * with its own reason, on both sides, and counted under that reason in the metrics registry.
 * Every wait is for an event (a settled handshake, a received message); node:test's timeout is
 * the deadline.
 */

interface Harness {
  readonly kind: TransportKind;
  readonly host: string;
  /** A transport that proves `key` (the TLS one also shows `chainPem` in its handshake). */
  transport(key: TestTransportKey, chainPem: string): Transport;
  /** A dialer proving no key, where the transport allows one. */
  anonymous?(): Transport;
}

const memory = createMemoryNetwork();
const harnesses: Harness[] = [
  {
    kind: 'memory',
    host: '127.0.0.1',
    transport: (key) => memory.transport({ publicKey: key.publicKey }),
    anonymous: () => memory.transport(),
  },
  {
    kind: 'tls',
    host: '127.0.0.1',
    transport: (key, chainPem) =>
      createTlsTransport({
        identity: { privateKey: key.privateKey, certificateChain: [chainPem] },
      }),
    anonymous: () => createTlsTransport(),
  },
  {
    kind: 'quic',
    host: '127.0.0.1',
    transport: (key) => createQuicTransport({ privateKey: key.privateKey }),
  },
];

let pki: TestPki;
let server: TestIdentity;
let client: TestIdentity;
/** Variants of `client`: same transport key and FALCON key, broken certificate. */
let expired: TestIdentity;
let notYetValid: TestIdentity;
let revoked: TestIdentity;
let foreignCa: TestIdentity;
let otherCluster: TestIdentity;
/** Another node entirely (own keys). */
let stranger: TestIdentity;
let otherFalcon: FalconKeyPair;

before(async () => {
  pki = await createTestPki({ cluster: 'matrix' });
  server = await pki.issue({ name: 'server', role: 'validator' });
  client = await pki.issue({ name: 'client', role: 'node' });
  const same = { name: 'client', falcon: client.falcon, transportKey: client.transportKey };
  expired = await pki.issue({ ...same, validity: 'expired' });
  notYetValid = await pki.issue({ ...same, validity: 'not-yet-valid' });
  revoked = await pki.issue(same);
  pki.revoke(revoked);
  otherCluster = await pki.issue({ ...same, cluster: 'elsewhere' });
  const foreign = await createTestPki({ cluster: 'matrix', falconBackend: pki.falconBackend });
  foreignCa = await foreign.issue(same);
  stranger = await pki.issue({ name: 'stranger' });
  otherFalcon = await pki.falconBackend.generateKeyPair();
});

interface Side {
  readonly authenticator: Authenticator;
  readonly registry: Registry;
}

interface SideOptions {
  readonly identity: TestIdentity;
  readonly mode?: AuthMode;
  readonly local?: Partial<AuthenticatorOptions['local']>;
  readonly timeoutMs?: number;
}

function side(options: SideOptions): Side {
  const registry = new Registry();
  const authenticator = createAuthenticator({
    local: {
      chain: options.identity.chain,
      falcon: options.identity.falcon,
      falconBackend: pki.falconBackend,
      ...options.local,
    },
    trust: { roots: pki.roots, revocation: pki.revocation },
    mode: options.mode ?? 'strict',
    metrics: createStoqMetrics(registry),
    // Generous unless a test is about timeouts: CI machines can be slow under coverage.
    timeoutMs: options.timeoutMs ?? 30_000,
  });
  return { authenticator, registry };
}

async function outcomes(registry: Registry, kind: TransportKind): Promise<Record<string, number>> {
  const metric = registry.getSingleMetric('hypermesh_stoq_handshakes_total');
  assert.ok(metric, 'handshake counter registered');
  const { values } = await metric.get();
  const counts: Record<string, number> = {};
  for (const { labels, value } of values) {
    assert.equal(labels.transport, kind);
    counts[String(labels.outcome)] = value;
  }
  return counts;
}

/** A hand-driven dialer for crafting messages a correct authenticator never sends. */
class ScriptedPeer {
  private readonly reader: FrameReader;

  constructor(
    readonly connection: TransportConnection,
    readonly stream: TransportStream,
  ) {
    this.reader = new FrameReader(stream, 1 << 20);
  }

  static async open(connection: TransportConnection): Promise<ScriptedPeer> {
    return new ScriptedPeer(connection, await connection.openStream());
  }

  async send(message: AuthMessage): Promise<void> {
    await this.stream.write(encodeFrame(encodeAuthMessage(message)));
  }

  async receive(): Promise<AuthMessage> {
    return decodeAuthMessage(await this.reader.next());
  }

  /** Reads the listener's verdict and hangs up, as a well-behaved rejected peer does. */
  async expectFailure(reason: AuthFailureReason): Promise<void> {
    const result = await this.receive();
    assert.deepEqual(result, { t: 'result', v: AUTH_PROTOCOL_VERSION, ok: false, reason });
    this.connection.close();
  }
}

for (const harness of harnesses) {
  describe(`STOQ authentication over ${harness.kind}`, () => {
    const transports: Transport[] = [];

    afterEach(async () => {
      await Promise.all(transports.splice(0).map((transport) => transport.close()));
    });

    /** A listener for `serverIdentity` and a connected dialer proving `dialer`'s key (or none). */
    async function connect(
      dialer: TestIdentity | 'anonymous',
      serverIdentity: TestIdentity = server,
    ): Promise<{ inbound: TransportConnection; outbound: TransportConnection }> {
      const listening = harness.transport(serverIdentity.transportKey, serverIdentity.chainPem);
      transports.push(listening);
      let dialing: Transport;
      if (dialer === 'anonymous') {
        assert.ok(harness.anonymous, `${harness.kind} has no anonymous dialer`);
        dialing = harness.anonymous();
      } else {
        dialing = harness.transport(dialer.transportKey, dialer.chainPem);
      }
      transports.push(dialing);
      return connectTransports(listening, dialing, harness.host);
    }

    interface Case {
      readonly reason: AuthFailureReason;
      /** Defaults to the honest server. */
      readonly server?: SideOptions;
      readonly client: SideOptions;
      /** Whose key the dialing transport proves; defaults to the client identity's. */
      readonly dialer?: TestIdentity | 'anonymous';
      /** Which side detects the failure; default the listener. */
      readonly detectedBy?: 'server' | 'client';
    }

    async function rejects(test: Case): Promise<void> {
      const serverSide = side(test.server ?? { identity: server });
      const clientSide = side(test.client);
      const { inbound, outbound } = await connect(
        test.dialer ?? test.client.identity,
        test.server?.identity,
      );
      const [serverResult, clientResult] = await Promise.allSettled([
        serverSide.authenticator.authenticate(inbound),
        clientSide.authenticator.authenticate(outbound),
      ]);
      const detectedByServer = (test.detectedBy ?? 'server') === 'server';
      assertRejected(serverResult, test.reason, detectedByServer ? 'local' : 'peer');
      assertRejected(clientResult, test.reason, detectedByServer ? 'peer' : 'local');
      assert.deepEqual(await outcomes(serverSide.registry, harness.kind), { [test.reason]: 1 });
      assert.deepEqual(await outcomes(clientSide.registry, harness.kind), { [test.reason]: 1 });
      await Promise.all([inbound.closed, outbound.closed]);
    }

    for (const mode of ['strict', 'delegated'] as const) {
      it(`${mode}: both sides see the other's identity, then the connection carries data`, async () => {
        const serverSide = side({ identity: server, mode });
        const clientSide = side({ identity: client, mode });
        const { inbound, outbound } = await connect(client);
        const [serverSession, clientSession] = await Promise.all([
          serverSide.authenticator.authenticate(inbound),
          clientSide.authenticator.authenticate(outbound),
        ]);
        assert.equal(serverSession.peer.uri, 'spiffe://matrix/node/client');
        assert.equal(serverSession.peer.role, 'node');
        assert.equal(serverSession.peer.name, 'client');
        assert.equal(serverSession.peer.cluster, 'matrix');
        assert.equal(serverSession.peer.certificateFingerprint, client.fingerprint);
        assert.deepEqual(serverSession.peer.transportKey, client.transportKey.publicKey);
        assert.deepEqual(serverSession.peer.falconPublicKey, client.falcon.publicKey);
        assert.equal(serverSession.peer.notAfter.getTime(), client.notAfter.getTime());
        assert.equal(clientSession.peer.uri, 'spiffe://matrix/validator/server');
        assert.equal(clientSession.peer.role, 'validator');
        assert.deepEqual(clientSession.peer.transportKey, server.transportKey.publicKey);
        assert.deepEqual(clientSession.peer.falconPublicKey, server.falcon.publicKey);
        assert.deepEqual(await outcomes(serverSide.registry, harness.kind), { ok: 1 });
        assert.deepEqual(await outcomes(clientSide.registry, harness.kind), { ok: 1 });
        const seconds = await serverSide.registry.getSingleMetricAsString(
          'hypermesh_stoq_handshake_seconds',
        );
        assert.match(
          seconds,
          new RegExp(
            `^hypermesh_stoq_handshake_seconds_count\\{transport="${harness.kind}"\\} 1$`,
            'm',
          ),
        );

        // The authenticated connection serves the next stream.
        const stream = await outbound.openStream();
        await stream.write(new TextEncoder().encode('after auth'));
        await stream.finish();
        const accepted = await inbound.acceptStream();
        assert.ok(accepted);
        assert.equal(
          new TextDecoder().decode((await accepted.read()) ?? new Uint8Array()),
          'after auth',
        );
      });
    }

    if (harness.anonymous) {
      it('no_certificate: a dialer whose transport proved no key', () =>
        rejects({
          reason: AuthFailureReason.NO_CERTIFICATE,
          client: { identity: client },
          dialer: 'anonymous',
        }));
    }

    it('no_certificate: a client hello with an empty chain', async () => {
      const serverSide = side({ identity: server });
      const { inbound, outbound } = await connect(client);
      const serving = serverSide.authenticator.authenticate(inbound);
      const peer = await ScriptedPeer.open(outbound);
      await peer.send(
        buildClientHello({
          mode: 'strict',
          nonce: new Uint8Array(randomBytes(32)),
          local: { chain: [] },
        }),
      );
      await peer.expectFailure(AuthFailureReason.NO_CERTIFICATE);
      assertRejected(await settle(serving), AuthFailureReason.NO_CERTIFICATE, 'local');
      assert.deepEqual(await outcomes(serverSide.registry, harness.kind), { no_certificate: 1 });
    });

    it('unknown_ca: a certificate from another CA', () =>
      rejects({ reason: AuthFailureReason.UNKNOWN_CA, client: { identity: foreignCa } }));

    it('expired: an expired client certificate', () =>
      rejects({ reason: AuthFailureReason.EXPIRED, client: { identity: expired } }));

    it('not_yet_valid: a client certificate from the future', () =>
      rejects({ reason: AuthFailureReason.NOT_YET_VALID, client: { identity: notYetValid } }));

    it('revoked: a revoked client certificate', () =>
      rejects({ reason: AuthFailureReason.REVOKED, client: { identity: revoked } }));

    it('wrong_cluster: a certificate for another cluster under the same root', () =>
      rejects({ reason: AuthFailureReason.WRONG_CLUSTER, client: { identity: otherCluster } }));

    it('key_mismatch: a valid certificate for a key the transport did not prove', () =>
      rejects({
        reason: AuthFailureReason.KEY_MISMATCH,
        client: { identity: stranger },
        dialer: client,
      }));

    it('falcon_proof_invalid: a proof signed by a different FALCON key', () =>
      rejects({
        reason: AuthFailureReason.FALCON_PROOF_INVALID,
        client: {
          identity: client,
          local: {
            falcon: { publicKey: client.falcon.publicKey, secretKey: otherFalcon.secretKey },
          },
        },
      }));

    it('falcon_proof_replayed: a proof captured from an earlier successful connection', async () => {
      const credentials = localCredentials({
        chain: client.chain,
        falcon: client.falcon,
        falconBackend: pki.falconBackend,
      });
      const serverSide = side({ identity: server });
      const trust = {
        roots: parseTrustRoots(pki.roots),
        cluster: pki.cluster,
        revocation: pki.revocation,
      };

      /** Hello and server hello on a fresh connection; returns what a proof needs. */
      const begin = async () => {
        const { inbound, outbound } = await connect(client);
        const serving = serverSide.authenticator.authenticate(inbound);
        const peer = await ScriptedPeer.open(outbound);
        const clientNonce = new Uint8Array(randomBytes(32));
        await peer.send(
          buildClientHello({ mode: 'strict', nonce: clientNonce, local: credentials }),
        );
        const serverHello = (await peer.receive()) as ServerHello;
        assert.equal(serverHello.t, 'server_hello');
        return { peer, serving, clientNonce, serverHello };
      };

      const first = await begin();
      const serverPeer = await checkServerHello(first.serverHello, {
        mode: 'strict',
        trust,
        now: new Date(),
        provenKey: first.peer.connection.peerKey,
        backend: pki.falconBackend,
        clientNonce: first.clientNonce,
        local: credentials,
        channelBinding: channelBinding(first.peer.connection),
      });
      const captured: ClientProof = await buildClientProof({
        mode: 'strict',
        clientNonce: first.clientNonce,
        serverHello: first.serverHello,
        server: serverPeer,
        local: credentials,
        channelBinding: channelBinding(first.peer.connection),
      });
      await first.peer.send(captured);
      assert.deepEqual(await first.peer.receive(), {
        t: 'result',
        v: AUTH_PROTOCOL_VERSION,
        ok: true,
      });
      assert.equal((await first.serving).peer.uri, client.uri);

      const second = await begin();
      await second.peer.send(captured);
      await second.peer.expectFailure(AuthFailureReason.FALCON_PROOF_REPLAYED);
      assertRejected(
        await settle(second.serving),
        AuthFailureReason.FALCON_PROOF_REPLAYED,
        'local',
      );
      assert.deepEqual(await outcomes(serverSide.registry, harness.kind), {
        ok: 1,
        falcon_proof_replayed: 1,
      });
    });

    it('delegation_expired: a delegation past its notAfter', () =>
      rejects({
        reason: AuthFailureReason.DELEGATION_EXPIRED,
        server: { identity: server, mode: 'delegated' },
        client: {
          identity: client,
          mode: 'delegated',
          local: {
            delegation: {
              current: () =>
                createDelegation({
                  backend: pki.falconBackend,
                  falconSecretKey: client.falcon.secretKey,
                  transportKey: client.transportKey.publicKey,
                  uri: client.uri,
                  notAfter: new Date(Date.now() - 1000),
                }),
            },
          },
        },
      }));

    it('mode_mismatch: a strict client meets a delegated server', () =>
      rejects({
        reason: AuthFailureReason.MODE_MISMATCH,
        server: { identity: server, mode: 'delegated' },
        client: { identity: client, mode: 'strict' },
      }));

    it('the client refuses an expired server certificate', async () => {
      const expiredServer = await pki.issue({
        name: 'server',
        role: 'validator',
        validity: 'expired',
        falcon: server.falcon,
        transportKey: server.transportKey,
      });
      await rejects({
        reason: AuthFailureReason.EXPIRED,
        server: { identity: expiredServer },
        client: { identity: client },
        detectedBy: 'client',
      });
    });

    for (const [label, garbage] of [
      ['an HTTP request', new TextEncoder().encode('GET / HTTP/1.1\r\nHost: stoq\r\n\r\n')],
      ['a frame of non-CBOR bytes', encodeFrame(Uint8Array.of(0xff, 0xfe, 0x00, 0x1c, 0x99))],
      [
        'a well-formed result',
        encodeFrame(encodeAuthMessage({ t: 'result', v: AUTH_PROTOCOL_VERSION, ok: true })),
      ],
    ] as const) {
      it(`protocol_error: ${label} instead of a hello`, async () => {
        const serverSide = side({ identity: server });
        const { inbound, outbound } = await connect(client);
        const serving = serverSide.authenticator.authenticate(inbound);
        const peer = await ScriptedPeer.open(outbound);
        await peer.stream.write(garbage);
        await peer.expectFailure(AuthFailureReason.PROTOCOL_ERROR);
        assertRejected(await settle(serving), AuthFailureReason.PROTOCOL_ERROR, 'local');
        assert.deepEqual(await outcomes(serverSide.registry, harness.kind), { protocol_error: 1 });
        await inbound.closed;
      });
    }

    it('timeout: a dialer that stalls mid-hello is cut off', async () => {
      const serverSide = side({ identity: server, timeoutMs: 300 });
      const { inbound, outbound } = await connect(client);
      const serving = serverSide.authenticator.authenticate(inbound);
      const peer = await ScriptedPeer.open(outbound);
      await peer.stream.write(Uint8Array.of(0x00, 0x00)); // half a length prefix, then silence
      assertRejected(await settle(serving), AuthFailureReason.TIMEOUT, 'local');
      assert.deepEqual(await outcomes(serverSide.registry, harness.kind), { timeout: 1 });
      await Promise.all([inbound.closed, outbound.closed]);
    });

    it('timeout: a listener that never answers the hello', async () => {
      const clientSide = side({ identity: client, timeoutMs: 300 });
      const { inbound, outbound } = await connect(client);
      const dialing = clientSide.authenticator.authenticate(outbound);
      const stream = await inbound.acceptStream();
      assert.ok(stream, 'the hello stream arrives');
      assert.ok((await stream.read())?.length, 'the hello starts arriving, and is never answered');
      assertRejected(await settle(dialing), AuthFailureReason.TIMEOUT, 'local');
      assert.deepEqual(await outcomes(clientSide.registry, harness.kind), { timeout: 1 });
      await Promise.all([inbound.closed, outbound.closed]);
    });
  });
}

function settle<T>(promise: Promise<T>): Promise<PromiseSettledResult<T>> {
  return promise.then(
    (value) => ({ status: 'fulfilled', value }),
    (reason: unknown) => ({ status: 'rejected', reason }),
  );
}
