import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import {
  IdentityServerErrorCode,
  REFUSED_LOG_MESSAGE,
  SWITCHED_LOG_MESSAGE,
  identityServers,
  type IdentityCertificateServer,
} from '../../src/node/identity-servers.js';
import { createLogger } from '../../src/node/log.js';
import { createTestPki, type TestIdentity } from '../helpers/pki.js';

/**
 * The servers besides STOQ follow renewals of the identity certificate
 * (src/node/identity-servers.ts): a renewed chain is checked against the identity key and the
 * clock, then handed to every followed server; one that refuses is logged and counted without
 * stopping the others; a server that started before a renewal catches up when followed.
 */

interface FakeServer extends IdentityCertificateServer {
  readonly received: { cert: string; key: string }[];
}

function fakeServer(startedWith: string, refuse = false): FakeServer {
  const received: { cert: string; key: string }[] = [];
  return {
    startedWith,
    received,
    replaceCertificate(tls) {
      if (refuse) throw new Error('the TLS stack refused it');
      received.push({ ...tls });
    },
  };
}

describe('identity certificate followers (identity-servers.ts)', () => {
  let first: TestIdentity;
  let renewed: TestIdentity;
  let foreign: TestIdentity;
  let expired: TestIdentity;

  before(async () => {
    const pki = await createTestPki({ cluster: 'identity-servers' });
    first = await pki.issue({ name: 'node-1' });
    const same = { transportKey: first.transportKey, falcon: first.falcon };
    renewed = await pki.issue({ name: 'node-1', ...same });
    expired = await pki.issue({ name: 'node-1', validity: 'expired', ...same });
    foreign = await pki.issue({ name: 'node-1', falcon: first.falcon });
  });

  function setUp() {
    const lines: Record<string, unknown>[] = [];
    const registry = new Registry();
    const followers = identityServers({
      privateKey: first.transportKey.privateKey,
      registry,
      logger: createLogger(
        {},
        (line) => void lines.push(JSON.parse(line) as Record<string, unknown>),
      ),
    });
    const count = async (server: string, result: string) =>
      (
        await registry
          .getSingleMetric('hypermesh_identity_certificate_server_switches_total')!
          .get()
      ).values.find((value) => value.labels.server === server && value.labels.result === result)
        ?.value;
    return { lines, followers, count };
  }

  it('hands a renewed chain with the identity key to every server; a refusing one is logged', async () => {
    const { lines, followers, count } = setUp();
    const doq = fakeServer(first.chainPem);
    const acme = fakeServer(first.chainPem, true);
    followers.follow('doq', doq);
    followers.follow('acme', acme);
    assert.equal(await count('doq', 'switched'), 0);

    followers.renewed(renewed.chain);
    assert.deepEqual(doq.received, [
      { cert: renewed.chainPem, key: first.transportKey.privateKeyPem },
    ]);
    assert.equal(await count('doq', 'switched'), 1);
    assert.equal(await count('acme', 'refused'), 1);
    assert.equal(await count('acme', 'switched'), 0);
    const switched = lines.find((line) => line.msg === SWITCHED_LOG_MESSAGE);
    assert.equal(switched?.level, 'info');
    assert.equal(switched?.server, 'doq');
    assert.equal(switched?.serial, renewed.serialNumber);
    const refused = lines.find((line) => line.msg === REFUSED_LOG_MESSAGE);
    assert.equal(refused?.level, 'error');
    assert.equal(refused?.server, 'acme');
    assert.match(String(refused?.error), /the TLS stack refused it/);

    assert.throws(() => followers.follow('doq', fakeServer(first.chainPem)), RangeError);
  });

  it('refuses a chain that does not certify the identity key, or has expired: no server switches', async () => {
    const { lines, followers, count } = setUp();
    const doq = fakeServer(first.chainPem);
    followers.follow('doq', doq);
    followers.renewed(foreign.chain);
    followers.renewed(expired.chain);
    followers.renewed([]);
    assert.deepEqual(doq.received, []);
    assert.equal(await count('doq', 'refused'), 3);
    assert.deepEqual(
      lines.map((line) => [line.level, line.msg]),
      [
        ['error', REFUSED_LOG_MESSAGE],
        ['error', REFUSED_LOG_MESSAGE],
        ['error', REFUSED_LOG_MESSAGE],
      ],
    );
    assert.match(String(lines[0]!.error), new RegExp(IdentityServerErrorCode.KEY_MISMATCH));
    assert.match(String(lines[1]!.error), new RegExp(IdentityServerErrorCode.EXPIRED));
    assert.match(String(lines[2]!.error), new RegExp(IdentityServerErrorCode.EMPTY_CHAIN));
    assert.deepEqual(lines[0]!.servers, ['doq']);
  });

  it('a server followed after a renewal catches up, unless it started with the renewed chain', () => {
    const { followers } = setUp();
    followers.renewed(renewed.chain);
    const stale = fakeServer(first.chainPem);
    const current = fakeServer(renewed.chainPem);
    followers.follow('doq', stale);
    followers.follow('acme', current);
    assert.deepEqual(
      stale.received.map((tls) => tls.cert),
      [renewed.chainPem],
    );
    assert.deepEqual(current.received, []);
  });
});
