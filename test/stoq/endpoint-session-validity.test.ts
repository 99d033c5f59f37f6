import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import {
  parseCertificate,
  parseTrustRoots,
  type ParsedCertificate,
} from '../../src/crypto/x509.js';
import { createAuthenticator } from '../../src/stoq/auth/authenticator.js';
import type { RevocationCheck } from '../../src/stoq/auth/peer.js';
import { AuthFailureReason } from '../../src/stoq/auth/reasons.js';
import { StoqEndpoint } from '../../src/stoq/endpoint.js';
import type { Authenticator, PeerIdentity, Session } from '../../src/stoq/identity.js';
import { createMemoryNetwork, type MemoryNetwork } from '../../src/stoq/memory.js';
import { createStoqMetrics } from '../../src/stoq/metrics.js';
import { StaticResolver } from '../../src/stoq/resolver.js';
import {
  MAX_TIMER_DELAY_MS,
  onExpiry,
  sessionNotAfter,
  type DelegatedSession,
  type SessionClock,
} from '../../src/stoq/session-expiry.js';
import { createTlsTransport } from '../../src/stoq/tls/transport.js';
import type { Transport, TransportConnection } from '../../src/stoq/transport.js';
import { createTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';
import { withDeadline } from '../helpers/wait.js';
import { rejectsWith } from './auth-fixture.js';
import { MemoryLogger, counterValue, deferred } from './rpc-fixture.js';

/**
 * An authenticated session lasts no longer than its peer's certificate path, and no revocation
 * slips through between the handshake's revocation read and the moment the session opens.
 */

/** Timers that fire only when the test advances the clock. */
class FakeClock implements SessionClock {
  private nextId = 1;
  readonly timers = new Map<number, { readonly at: number; readonly callback: () => void }>();
  readonly delays: number[] = [];

  constructor(public time: number) {}

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, delayMs: number): unknown {
    const id = this.nextId++;
    this.delays.push(delayMs);
    this.timers.set(id, { at: this.time + delayMs, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Moves time forward, firing every timer that falls due (re-armed ones included). */
  advance(ms: number): void {
    this.time += ms;
    for (;;) {
      const due = [...this.timers].find(([, timer]) => timer.at <= this.time);
      if (due === undefined) return;
      this.timers.delete(due[0]);
      due[1].callback();
    }
  }
}

describe('onExpiry', () => {
  it('fires once just after notAfter, re-arming across the 2^31-1 ms timer limit', () => {
    const clock = new FakeClock(0);
    const notAfter = new Date(3 * MAX_TIMER_DELAY_MS + 5);
    let fired = 0;
    onExpiry(notAfter, () => fired++, clock);
    assert.deepEqual(clock.delays, [MAX_TIMER_DELAY_MS]);
    clock.advance(MAX_TIMER_DELAY_MS);
    clock.advance(MAX_TIMER_DELAY_MS);
    clock.advance(MAX_TIMER_DELAY_MS);
    assert.equal(fired, 0);
    assert.deepEqual(clock.delays, [
      MAX_TIMER_DELAY_MS,
      MAX_TIMER_DELAY_MS,
      MAX_TIMER_DELAY_MS,
      6, // notAfter itself is still valid (RFC 5280 §4.1.2.5): the end is 1 ms after it
    ]);
    clock.advance(5);
    assert.equal(fired, 0, 'still valid at notAfter');
    clock.advance(1);
    assert.equal(fired, 1);
    clock.advance(10 * MAX_TIMER_DELAY_MS);
    assert.equal(fired, 1);
    assert.equal(clock.timers.size, 0);
  });

  it('fires at once for a date already past, never after cancel', () => {
    const clock = new FakeClock(1_000);
    let fired = 0;
    onExpiry(new Date(999), () => fired++, clock);
    assert.equal(fired, 1);
    const cancel = onExpiry(new Date(2_000), () => fired++, clock);
    cancel();
    clock.advance(5_000);
    assert.equal(fired, 1);
    assert.equal(clock.timers.size, 0);
  });
});

let pki: TestPki;
let alpha: TestIdentity;
let beta: TestIdentity;
let path: (identity: TestIdentity) => ParsedCertificate[];

before(async () => {
  pki = await createTestPki({ cluster: 'validity' });
  alpha = await pki.issue({ name: 'alpha', role: 'validator' });
  beta = await pki.issue({ name: 'beta', role: 'node' });
  const roots = parseTrustRoots(pki.roots);
  path = (identity) => [...identity.chain.map((der) => parseCertificate(der)), ...roots];
});

function peerIdentity(identity: TestIdentity): PeerIdentity {
  return {
    cluster: identity.cluster,
    role: identity.role,
    name: identity.name,
    uri: identity.uri,
    certificateFingerprint: identity.fingerprint,
    transportKey: identity.transportKey.publicKey,
    falconPublicKey: identity.falcon.publicKey,
    notAfter: identity.notAfter,
  };
}

/**
 * Test-only: sessions with real certificate paths, looked up by the proven key; an inbound
 * exchange can be held open (`hold`) until the test releases it.
 */
class PathAuthenticator implements Authenticator {
  readonly entered = deferred();
  readonly release = deferred();

  constructor(
    private readonly identities: readonly TestIdentity[],
    private readonly hold = false,
  ) {}

  async authenticate(connection: TransportConnection): Promise<Session> {
    const key = connection.peerKey?.publicKey;
    const identity = this.identities.find(
      (each) => key !== undefined && Buffer.from(each.transportKey.publicKey).equals(key),
    );
    assert.ok(identity, 'a known peer');
    if (this.hold && connection.direction === 'inbound') {
      this.entered.resolve();
      await this.release.promise;
    }
    return { connection, peer: peerIdentity(identity), path: path(identity) };
  }
}

interface MemoryPair {
  readonly alpha: StoqEndpoint;
  readonly beta: StoqEndpoint;
  readonly logger: MemoryLogger;
  readonly authenticator: PathAuthenticator;
  connect(): Promise<Session>;
  close(): Promise<void>;
}

/**
 * Alpha listens on a memory network, `peer` (default beta) dials it; `clock` drives alpha's
 * expiry timers.
 */
async function memoryPair(options: {
  clock?: SessionClock;
  hold?: boolean;
  peer?: TestIdentity;
}): Promise<MemoryPair> {
  const peer = options.peer ?? beta;
  const network = createMemoryNetwork();
  const logger = new MemoryLogger();
  const authenticator = new PathAuthenticator([alpha, peer], options.hold);
  const alphaEndpoint = new StoqEndpoint({
    transport: network.transport({ publicKey: alpha.transportKey.publicKey }),
    authenticator,
    resolver: new StaticResolver({}),
    logger,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const address = await alphaEndpoint.listen({ host: 'alpha.test', port: 0 });
  const betaEndpoint = new StoqEndpoint({
    transport: network.transport({ publicKey: peer.transportKey.publicKey }),
    authenticator: new PathAuthenticator([alpha, peer]),
    resolver: new StaticResolver({}),
    logger: new MemoryLogger(),
  });
  return {
    alpha: alphaEndpoint,
    beta: betaEndpoint,
    logger,
    authenticator,
    connect: () => betaEndpoint.connect(address),
    async close() {
      await betaEndpoint.close();
      await alphaEndpoint.close();
    },
  };
}

describe('sessions end when the peer certificate expires', { timeout: 30_000 }, () => {
  it('closes the session at the earliest notAfter on the path (injected clock)', async () => {
    const clock = new FakeClock(Date.now());
    const pair = await memoryPair({ clock });
    try {
      const session = await pair.connect();
      // Alpha's session with beta (the one alpha's clock arms): `session` is beta's view, whose
      // peer is alpha, issued just before beta and so possibly a second earlier.
      const notAfter = sessionNotAfter({ ...session, peer: peerIdentity(beta), path: path(beta) });
      assert.equal(notAfter.getTime(), beta.notAfter.getTime(), 'the leaf ends first here');
      assert.deepEqual(clock.delays, [notAfter.getTime() - clock.time + 1]);
      clock.advance(notAfter.getTime() - clock.time);
      assert.equal(pair.logger.lines.length, 0, 'still valid at notAfter');
      clock.advance(1);
      await withDeadline(session.connection.closed, 5_000, 'alpha closes the expired session');
      const line = pair.logger.lines.find((each) => /peer certificate expired/.test(each.message));
      assert.ok(line, 'the close is logged with its reason');
      assert.equal(line.fields.peer, beta.uri);
      assert.equal(line.fields.notAfter, notAfter.toISOString());
      assert.equal(clock.timers.size, 0, 'nothing left armed');
    } finally {
      await pair.close();
    }
  });

  it('the recheck closes a session past its validity, too', async () => {
    const clock = new FakeClock(Date.now());
    const pair = await memoryPair({ clock });
    try {
      const session = await pair.connect();
      assert.deepEqual(await pair.alpha.recheckRevocation(pki.revocation), []);
      // Time passes without the timer (e.g. a suspended process): the next recheck notices.
      clock.time = beta.notAfter.getTime() + 1;
      const closed = await pair.alpha.recheckRevocation(pki.revocation);
      assert.deepEqual(
        closed.map((each) => each.peer.uri),
        [beta.uri],
      );
      await withDeadline(session.connection.closed, 5_000, 'the recheck closes the session');
      await withDeadline(
        closed[0]!.connection.closed.then(() => clock.timers.size),
        5_000,
        'alpha forgets the session',
      );
      assert.equal(clock.timers.size, 0, 'the closed session disarmed its timer');
    } finally {
      await pair.close();
    }
  });

  it('a real certificate expiring in ~2 s ends its TLS session (real clock)', async () => {
    const notAfter = new Date(Math.floor(Date.now() / 1000) * 1000 + 3_000);
    const shortLived = await pki.issue({
      name: 'short-lived',
      role: 'node',
      validity: { notBefore: new Date(Date.now() - 60_000), notAfter },
    });
    const transports: Transport[] = [];
    const endpoint = (identity: TestIdentity, logger: MemoryLogger) => {
      const transport = createTlsTransport({
        identity: {
          privateKey: identity.transportKey.privateKey,
          certificateChain: [identity.chainPem],
        },
      });
      transports.push(transport);
      return new StoqEndpoint({
        transport,
        authenticator: createAuthenticator({
          local: {
            chain: identity.chain,
            falcon: identity.falcon,
            falconBackend: pki.falconBackend,
          },
          trust: { roots: pki.roots, revocation: pki.revocation },
          mode: 'delegated',
        }),
        resolver: new StaticResolver({}),
        logger,
      });
    };
    const serverLogger = new MemoryLogger();
    const server = endpoint(alpha, serverLogger);
    const client = endpoint(shortLived, new MemoryLogger());
    try {
      const address = await server.listen({ host: '127.0.0.1', port: 0 });
      const session = await client.connect(address);
      assert.equal(session.peer.uri, alpha.uri);
      await withDeadline(session.connection.closed, 20_000, 'the server ends the session');
      assert.ok(Date.now() > notAfter.getTime(), 'not before the certificate expired');
      const line = serverLogger.lines.find((each) => /peer certificate expired/.test(each.message));
      assert.ok(line, 'the server says why');
      assert.equal(line.fields.peer, shortLived.uri);
      assert.equal(line.fields.notAfter, notAfter.toISOString());
    } finally {
      await client.close();
      await server.close();
      await Promise.all(transports.map((transport) => transport.close()));
    }
  });
});

describe('delegated sessions end when the delegation expires', { timeout: 30_000 }, () => {
  const DELEGATION_LIFETIME_MS = 60_000;

  /** Alpha listens and beta dials on a memory network, both in delegated mode. */
  function delegatedEndpoint(identity: TestIdentity, network: MemoryNetwork, clock: FakeClock) {
    const logger = new MemoryLogger();
    const endpoint = new StoqEndpoint({
      transport: network.transport({ publicKey: identity.transportKey.publicKey }),
      authenticator: createAuthenticator({
        local: {
          chain: identity.chain,
          falcon: identity.falcon,
          falconBackend: pki.falconBackend,
          delegationLifetimeMs: DELEGATION_LIFETIME_MS,
        },
        // The same clock signs and checks delegations and times the sessions.
        trust: { roots: pki.roots, revocation: pki.revocation, now: () => new Date(clock.time) },
        mode: 'delegated',
      }),
      resolver: new StaticResolver({}),
      logger,
      clock,
    });
    return { endpoint, logger };
  }

  it('a session made 1 ms before the delegation ends gets a fresh one, a full lifetime ahead', async () => {
    const network = createMemoryNetwork();
    const clock = new FakeClock(Date.now());
    const alphaSide = delegatedEndpoint(alpha, network, clock);
    const betaSide = delegatedEndpoint(beta, network, clock);
    try {
      const address = await alphaSide.endpoint.listen({ host: 'alpha.test', port: 0 });
      const first = (await betaSide.endpoint.connect(address)) as DelegatedSession;
      const firstEnd = first.delegationNotAfter.getTime();
      assert.equal(firstEnd, clock.time + DELEGATION_LIFETIME_MS);
      assert.equal(clock.delays.length, 2, 'both sides armed an expiry timer');

      clock.advance(firstEnd - 1 - clock.time);
      assert.equal(clock.delays.length, 2, 'no timer fired yet');
      const second = (await betaSide.endpoint.connect(address)) as DelegatedSession;
      // The dialer holds alpha's delegation, the listener beta's: both renewed, neither the old
      // one a millisecond from its end.
      assert.equal(second.delegationNotAfter.getTime(), clock.time + DELEGATION_LIFETIME_MS);
      assert.deepEqual(
        clock.delays.slice(2),
        [DELEGATION_LIFETIME_MS + 1, DELEGATION_LIFETIME_MS + 1],
        'both sides armed for the renewed delegation',
      );

      let secondClosed = false;
      void second.connection.closed.then(() => (secondClosed = true));
      clock.advance(2);
      await withDeadline(
        first.connection.closed,
        5_000,
        'the first session ends with its delegation',
      );
      assert.equal(secondClosed, false, 'the renewed session stays open');
      assert.ok(
        [...clock.timers.values()].some(
          (timer) => timer.at > clock.time + DELEGATION_LIFETIME_MS - 2,
        ),
        "the renewed session's timer is still armed",
      );
    } finally {
      await betaSide.endpoint.close();
      await alphaSide.endpoint.close();
    }
  });

  for (const side of ['listener', 'dialer'] as const) {
    it(`the ${side} closes the session past the delegation's notAfter, long before the certificate's`, async () => {
      const started = Date.now();
      const network = createMemoryNetwork();
      const alphaClock = new FakeClock(Date.now());
      const betaClock = new FakeClock(Date.now());
      const alphaSide = delegatedEndpoint(alpha, network, alphaClock);
      const betaSide = delegatedEndpoint(beta, network, betaClock);
      try {
        const address = await alphaSide.endpoint.listen({ host: 'alpha.test', port: 0 });
        const session = await betaSide.endpoint.connect(address);
        const { clock, logger, peerCertificate } =
          side === 'listener'
            ? { clock: alphaClock, logger: alphaSide.logger, peerCertificate: beta.notAfter }
            : { clock: betaClock, logger: betaSide.logger, peerCertificate: alpha.notAfter };
        assert.equal(clock.delays.length, 1, 'one expiry timer armed');
        const expiresAt = clock.time + (clock.delays[0] as number) - 1;
        assert.ok(
          expiresAt >= started + DELEGATION_LIFETIME_MS &&
            expiresAt <= Date.now() + DELEGATION_LIFETIME_MS,
          "armed for the delegation's end, not the certificate's",
        );
        assert.ok(expiresAt < peerCertificate.getTime() - DELEGATION_LIFETIME_MS);
        clock.advance(expiresAt - clock.time);
        assert.equal(logger.lines.length, 0, 'still valid at the delegation notAfter');
        clock.advance(1);
        await withDeadline(session.connection.closed, 5_000, `the ${side} closes the session`);
        const line = logger.lines.find((each) => /peer delegation expired/.test(each.message));
        assert.ok(line, 'the close is logged with its reason');
        assert.equal(line.fields.peer, side === 'listener' ? beta.uri : alpha.uri);
        assert.equal(line.fields.notAfter, new Date(expiresAt).toISOString());
        assert.ok(clock.time < peerCertificate.getTime(), 'the certificate is still valid');
      } finally {
        await betaSide.endpoint.close();
        await alphaSide.endpoint.close();
      }
    });
  }
});

describe('a revocation committed during the handshake is not missed', { timeout: 30_000 }, () => {
  const transports: Transport[] = [];

  after(async () => {
    await Promise.all(transports.map((transport) => transport.close()));
  });

  it('revoked after the hello was checked, before the proof: the handshake is refused', async () => {
    const victim = await pki.issue({ name: 'victim', role: 'node' });
    const registry = new Registry();
    let recheckedAtCommit: Promise<Session[]> | null = null;
    let server: StoqEndpoint | null = null;
    // The node's revocation source, whose state a commit changes right after the handshake
    // read it for the client hello; the node rechecks its sessions at that commit.
    const revocation: RevocationCheck = (query) => {
      const answer = pki.revocation(query);
      if (recheckedAtCommit === null && query.certificate.fingerprint === victim.fingerprint) {
        pki.revoke(victim);
        recheckedAtCommit = server!.recheckRevocation(pki.revocation);
      }
      return answer;
    };
    const tls = (identity: TestIdentity) => {
      const transport = createTlsTransport({
        identity: {
          privateKey: identity.transportKey.privateKey,
          certificateChain: [identity.chainPem],
        },
      });
      transports.push(transport);
      return transport;
    };
    server = new StoqEndpoint({
      transport: tls(alpha),
      authenticator: createAuthenticator({
        local: { chain: alpha.chain, falcon: alpha.falcon, falconBackend: pki.falconBackend },
        trust: { roots: pki.roots, revocation },
        mode: 'strict',
        metrics: createStoqMetrics(registry),
      }),
      resolver: new StaticResolver({}),
      logger: new MemoryLogger(),
      metrics: createStoqMetrics(new Registry()),
    });
    const client = new StoqEndpoint({
      transport: tls(victim),
      authenticator: createAuthenticator({
        local: { chain: victim.chain, falcon: victim.falcon, falconBackend: pki.falconBackend },
        trust: { roots: pki.roots, revocation: pki.revocation },
        mode: 'strict',
      }),
      resolver: new StaticResolver({}),
      logger: new MemoryLogger(),
    });
    try {
      const address = await server.listen({ host: '127.0.0.1', port: 0 });
      await assert.rejects(client.connect(address), rejectsWith(AuthFailureReason.REVOKED));
      assert.ok(recheckedAtCommit, 'the commit happened during the handshake');
      assert.deepEqual(await recheckedAtCommit, [], 'the recheck at the commit saw no session');
      assert.equal(
        await counterValue(registry, 'hypermesh_stoq_handshakes_total', {
          transport: 'tls',
          outcome: 'revoked',
        }),
        1,
      );
      assert.equal(
        await counterValue(registry, 'hypermesh_stoq_handshakes_total', {
          transport: 'tls',
          outcome: 'ok',
        }),
        0,
      );
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('revoked after the exchange checked it, before the session opened: closed at once', async () => {
    const victim = await pki.issue({ name: 'late-victim', role: 'node', falcon: beta.falcon });
    const pair = await memoryPair({ hold: true, peer: victim });
    try {
      const connecting = pair.connect();
      await withDeadline(pair.authenticator.entered.promise, 5_000, 'alpha authenticates beta');
      pki.revoke(victim);
      // The commit's recheck: alpha's session with beta does not exist yet.
      assert.deepEqual(await pair.alpha.recheckRevocation(pki.revocation), []);
      pair.authenticator.release.resolve();
      const session = await connecting;
      await withDeadline(
        session.connection.closed,
        5_000,
        'alpha closes the session revoked during its handshake',
      );
    } finally {
      await pair.close();
    }
  });
});
