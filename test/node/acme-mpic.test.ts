import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { toHex } from '../../src/crypto/bytes.js';
import { ed25519RawPublicKey } from '../../src/crypto/ed25519.js';
import { sha256 } from '../../src/crypto/hash.js';
import {
  RecursiveResolver,
  SplitCaaResolver,
  dns01TxtValue,
  type TxtResolver,
} from '../../src/faces/acme/index.js';
import type { CaCorroborateRequest } from '../../src/faces/ca-rpc.js';
import {
  createCorroborationCollector,
  createCorroborator,
  grantCorroborationAuthorizer,
  type Corroborator,
} from '../../src/node/acme-mpic.js';
import { StoqErrorCode } from '../../src/stoq/errors.js';
import { decodeDcvAttestation, verifyDcvAttestation } from '../../src/trustchain/ca-module/dcv.js';
import {
  EXTERNAL_ZONE,
  a,
  caa,
  startExternalDns,
  txt,
  type ExternalDns,
} from '../faces/acme/external-dns.js';
import { Http01Responder } from '../faces/acme/fixtures.js';
import { makeSender } from '../consensus/application/fixture.js';
import { isStoqError } from '../stoq/rpc-fixture.js';
import { GRANTED_ZONE, createCaFixture, type CaFixture } from '../trustchain/ca-module/fixture.js';

/**
 * The corroborator's least privilege (docs/acme.md, "Multi-perspective validation"): it
 * validates only for an account whose genesis grant has `requireDcv`, and only identifiers that
 * grant allows; every refusal comes before any HTTP request or DNS lookup.
 */
describe('acme-mpic: the corroborator validates only what a requireDcv grant allows', () => {
  let fixture: CaFixture;
  let responder: Http01Responder;
  let corroborator: Corroborator;
  const validatorKey = generateKeyPairSync('ed25519').privateKey;
  const caller = { role: 'validator' as const, name: 'node-2', uri: 'spiffe://test/node/node-2' };
  /** dns-01 records by name; every lookup is recorded. */
  const txt = new Map<string, string>();
  const lookups: string[] = [];
  const txtResolver: TxtResolver = {
    lookupTxt: (name) => {
      lookups.push(name);
      const value = txt.get(name);
      return Promise.resolve(value === undefined ? [] : [value]);
    },
  };

  before(async () => {
    fixture = await createCaFixture();
    responder = await Http01Responder.start();
    corroborator = createCorroborator({
      chainId: fixture.config.chainId,
      identityKey: validatorKey,
      validation: {
        http01Port: responder.port,
        tlsAlpn01Port: 1,
        timeoutMs: 5_000,
        txtResolver,
        // Should a refusal ever let an identifier through, its check still stays on loopback.
        testOnlyConnectAddress: '127.0.0.1',
      },
      authorize: grantCorroborationAuthorizer(fixture.config),
      latestHeight: () => 3,
      isHolder: () => true,
    });
  });

  after(async () => {
    await responder?.close();
  });

  /** An http-01 request for `identifier` whose token the responder serves. */
  const http01 = (
    account: Uint8Array,
    identifier: CaCorroborateRequest['identifier'],
  ): CaCorroborateRequest => {
    const token = Buffer.from(randomBytes(32)).toString('base64url');
    const keyAuthorization = `${token}.${Buffer.from(randomBytes(32)).toString('base64url')}`;
    responder.tokens.set(token, keyAuthorization);
    return { account, identifier, method: 'http-01', token, keyAuthorization };
  };

  /** Refused with PERMISSION_DENIED naming the account and identifier, with no network request. */
  const assertRefused = async (request: CaCorroborateRequest, reason: RegExp): Promise<void> => {
    const hosts = responder.hosts.length;
    const looked = lookups.length;
    await assert.rejects(corroborator(request, caller), (error: unknown) => {
      assert.ok(isStoqError(StoqErrorCode.PERMISSION_DENIED)(error), String(error));
      const message = (error as Error).message;
      assert.ok(message.includes(`account ${toHex(request.account)}`), message);
      assert.ok(
        message.includes(
          `${request.identifier.type} identifier ${JSON.stringify(request.identifier.value)}`,
        ),
        message,
      );
      assert.match(message, reason);
      return true;
    });
    assert.equal(responder.hosts.length, hosts, 'no http-01 request was made');
    assert.equal(lookups.length, looked, 'no dns-01 lookup was made');
  };

  it('an account without a grant is refused', async () => {
    const unknown = ed25519RawPublicKey(generateKeyPairSync('ed25519').privateKey);
    await assertRefused(http01(unknown, { type: 'ip', value: '127.0.0.1' }), /has no grant/);
  });

  it('a grant without requireDcv (the operator’s) is refused, even for its own names', async () => {
    const operator = fixture.operator.publicKey;
    assert.equal(fixture.config.grants.get(toHex(operator))?.requireDcv, false);
    await assertRefused(http01(operator, { type: 'ip', value: '127.0.0.1' }), /requireDcv/);
    await assertRefused(
      http01(operator, { type: 'dns', value: `www.${GRANTED_ZONE}` }),
      /requireDcv/,
    );
  });

  it('identifiers outside the requireDcv grant are refused', async () => {
    const account = fixture.dcvOperator.publicKey;
    // The grant: DNS zone example.com (wildcards), IP range 127.0.0.0/8.
    for (const identifier of [
      { type: 'ip' as const, value: '10.0.0.1' },
      { type: 'ip' as const, value: '::1' },
      { type: 'dns' as const, value: 'hypermesh.test' },
      { type: 'dns' as const, value: `bad${GRANTED_ZONE}` },
      { type: 'dns' as const, value: `${GRANTED_ZONE}.evil.test` },
      // Not in the CA's name syntax (upper case): no grant allows it.
      { type: 'dns' as const, value: `WWW.${GRANTED_ZONE}` },
    ]) {
      await assertRefused(http01(account, identifier), /grant does not allow it/);
    }
    const token = Buffer.from(randomBytes(32)).toString('base64url');
    await assertRefused(
      {
        account,
        identifier: { type: 'dns', value: 'attacker.test' },
        method: 'dns-01',
        token,
        keyAuthorization: `${token}.thumbprint`,
      },
      /not in a zone/,
    );
  });

  it('allowed identifiers validate and are attested as before', async () => {
    const account = fixture.dcvOperator.publicKey;
    const request = http01(account, { type: 'ip', value: '127.0.0.1' });
    const hosts = responder.hosts.length;
    const attestation = decodeDcvAttestation(await corroborator(request, caller));
    assert.equal(verifyDcvAttestation(attestation), true);
    assert.deepEqual(attestation.body, {
      chainId: fixture.config.chainId,
      account,
      identifier: 'ip:127.0.0.1',
      wildcard: false,
      method: 'http-01',
      keyAuthorizationHash: sha256(new TextEncoder().encode(request.keyAuthorization)),
      height: 3,
      ok: true,
      validator: ed25519RawPublicKey(validatorKey),
    });
    assert.deepEqual(responder.hosts.slice(hosts), [`127.0.0.1:${responder.port}`]);

    // A name below the granted zone over dns-01 (the TXT record from the fake resolver); a
    // wildcard's authorization is for its base name, which the grant covers too.
    const name = `www.${GRANTED_ZONE}`;
    const token = Buffer.from(randomBytes(32)).toString('base64url');
    const keyAuthorization = `${token}.${Buffer.from(randomBytes(32)).toString('base64url')}`;
    txt.set(`_acme-challenge.${name}`, dns01TxtValue(keyAuthorization));
    const dns = decodeDcvAttestation(
      await corroborator(
        {
          account,
          identifier: { type: 'dns', value: name },
          method: 'dns-01',
          token,
          keyAuthorization,
        },
        caller,
      ),
    );
    assert.equal(dns.body.identifier, `dns:${name}`);
    assert.equal(dns.body.ok, true);
    assert.deepEqual(lookups.slice(-1), [`_acme-challenge.${name}`]);

    // Not met (no TXT record for the zone apex): still attested, ok = false.
    const missing = decodeDcvAttestation(
      await corroborator(
        {
          account,
          identifier: { type: 'dns', value: GRANTED_ZONE },
          method: 'dns-01',
          token,
          keyAuthorization,
        },
        caller,
      ),
    );
    assert.equal(missing.body.ok, false);
  });

  it('the authorizer reads the grant: zone, wildcard base, range', () => {
    const authorize = grantCorroborationAuthorizer(fixture.config);
    const account = fixture.dcvOperator.publicKey;
    assert.equal(authorize(account, { type: 'dns', value: GRANTED_ZONE }), null);
    assert.equal(authorize(account, { type: 'dns', value: `a.b.${GRANTED_ZONE}` }), null);
    assert.equal(authorize(account, { type: 'dns', value: `*.${GRANTED_ZONE}` }), null);
    assert.equal(authorize(account, { type: 'ip', value: '127.1.2.3' }), null);
    assert.match(authorize(account, { type: 'ip', value: '128.0.0.1' }) ?? '', /address range/);
  });
});

/**
 * External names in the corroborator (docs/acme.md, "External names"): an account whose grant
 * has `externalDns` may have names outside its zones validated, through the node's recursive
 * resolver, and each perspective runs the ACME server's CAA check too — `ok` is "challenge met
 * and CAA permits issuance".
 */
describe('acme-mpic: external names and CAA in every perspective', () => {
  let fixture: CaFixture;
  let world: ExternalDns;
  let resolver: RecursiveResolver;
  let responder: Http01Responder;
  let corroborator: Corroborator;
  /** As `corroborator`, without the test-only allowNonPublicAddresses (production's setting). */
  let strictCorroborator: Corroborator;
  const validatorKey = generateKeyPairSync('ed25519').privateKey;
  const caller = { role: 'validator' as const, name: 'node-2', uri: 'spiffe://test/node/node-2' };
  const externalAccount = makeSender();
  const zoneAccount = makeSender();
  const ACCOUNT_URI = 'https://acme.test/acme/acct/7';
  /** The dns-01 key authorization the zone's TXT records below publish. */
  const DNS01_TOKEN = Buffer.from(randomBytes(32)).toString('base64url');
  const DNS01_KEY_AUTHORIZATION = `${DNS01_TOKEN}.${Buffer.from(randomBytes(32)).toString('base64url')}`;

  before(async () => {
    const grant = (account: Uint8Array, externalDns: boolean) => ({
      account: toHex(account),
      profiles: ['service' as const],
      dnsZones: [GRANTED_ZONE],
      wildcards: true,
      requireDcv: true,
      externalDns,
    });
    fixture = await createCaFixture({
      grants: [grant(externalAccount.publicKey, true), grant(zoneAccount.publicKey, false)],
    });
    world = await startExternalDns([
      a(`shop.${EXTERNAL_ZONE}`),
      a(`forbidden.${EXTERNAL_ZONE}`),
      caa(`forbidden.${EXTERNAL_ZONE}`, 'other-ca.example'),
      a(`pinned.${EXTERNAL_ZONE}`),
      caa(`pinned.${EXTERNAL_ZONE}`, `hypermesh; accounturi=${ACCOUNT_URI}`),
      caa(`pinned.${EXTERNAL_ZONE}`, 'other-ca.example', 'issuewild'),
      txt(`_acme-challenge.pinned.${EXTERNAL_ZONE}`, dns01TxtValue(DNS01_KEY_AUTHORIZATION)),
      txt(`_acme-challenge.shop.${EXTERNAL_ZONE}`, dns01TxtValue(DNS01_KEY_AUTHORIZATION)),
    ]);
    resolver = new RecursiveResolver({ servers: [world.resolver], timeoutMs: 1_000, tries: 1 });
    responder = await Http01Responder.start();
    const external = { isExternal: (name: string) => !name.endsWith(GRANTED_ZONE), resolver };
    const corroboratorWith = (allowNonPublicAddresses: boolean): Corroborator =>
      createCorroborator({
        chainId: fixture.config.chainId,
        identityKey: validatorKey,
        validation: {
          http01Port: responder.port,
          tlsAlpn01Port: 1,
          timeoutMs: 5_000,
          external,
          txtResolver: resolver,
          allowNonPublicAddresses,
        },
        caa: { resolver: new SplitCaaResolver(external, undefined), identities: ['hypermesh'] },
        authorize: grantCorroborationAuthorizer(fixture.config),
        latestHeight: () => 3,
        isHolder: () => true,
      });
    // The "internet" of these tests is 127.0.0.1 (TEST ONLY).
    corroborator = corroboratorWith(true);
    strictCorroborator = corroboratorWith(false);
  });

  after(async () => {
    resolver?.cancel();
    await responder?.close();
    await world?.close();
  });

  const http01 = (
    account: Uint8Array,
    value: string,
    extra: Partial<CaCorroborateRequest> = {},
  ): CaCorroborateRequest => {
    const token = Buffer.from(randomBytes(32)).toString('base64url');
    const keyAuthorization = `${token}.${Buffer.from(randomBytes(32)).toString('base64url')}`;
    responder.tokens.set(token, keyAuthorization);
    return {
      account,
      identifier: { type: 'dns', value },
      method: 'http-01',
      token,
      keyAuthorization,
      accountUri: ACCOUNT_URI,
      ...extra,
    };
  };
  const attestOk = async (request: CaCorroborateRequest): Promise<boolean> => {
    const attestation = decodeDcvAttestation(await corroborator(request, caller));
    assert.equal(verifyDcvAttestation(attestation), true);
    return attestation.body.ok;
  };

  it('the authorizer accepts external names only for an externalDns grant', () => {
    const authorize = grantCorroborationAuthorizer(fixture.config);
    const shop = { type: 'dns' as const, value: `shop.${EXTERNAL_ZONE}` };
    assert.equal(authorize(externalAccount.publicKey, shop), null);
    assert.match(authorize(zoneAccount.publicKey, shop) ?? '', /not in a zone/);
  });

  it('an external name over http-01 (A record from the resolver), CAA silent → ok', async () => {
    const hosts = responder.hosts.length;
    assert.equal(await attestOk(http01(externalAccount.publicKey, `shop.${EXTERNAL_ZONE}`)), true);
    assert.deepEqual(responder.hosts.slice(hosts), [`shop.${EXTERNAL_ZONE}:${responder.port}`]);
  });

  it('without allowNonPublicAddresses, a name resolving to 127.0.0.1 → ok = false, no connection', async () => {
    let connections = 0;
    const count = (): void => {
      connections += 1;
    };
    responder.server.on('connection', count);
    try {
      const request = http01(externalAccount.publicKey, `shop.${EXTERNAL_ZONE}`);
      const attestation = decodeDcvAttestation(await strictCorroborator(request, caller));
      assert.equal(verifyDcvAttestation(attestation), true);
      assert.equal(attestation.body.ok, false);
      assert.equal(connections, 0, 'the loopback responder saw no connection');
      assert.equal(await attestOk(request), true, 'the same request, the test-only option on');
      assert.equal(connections, 1);
    } finally {
      responder.server.off('connection', count);
    }
  });

  it('the challenge is met but CAA forbids this CA → attested with ok = false', async () => {
    const hosts = responder.hosts.length;
    assert.equal(
      await attestOk(http01(externalAccount.publicKey, `forbidden.${EXTERNAL_ZONE}`)),
      false,
    );
    assert.equal(responder.hosts.length, hosts + 1, 'the challenge itself was checked');
  });

  it('accounturi and issuewild come from the request', async () => {
    const name = `pinned.${EXTERNAL_ZONE}`;
    assert.equal(await attestOk(http01(externalAccount.publicKey, name)), true);
    const elsewhere = { accountUri: 'https://acme.test/acme/acct/8' };
    assert.equal(await attestOk(http01(externalAccount.publicKey, name, elsewhere)), false);
    const { accountUri: _omitted, ...anonymous } = http01(externalAccount.publicKey, name);
    assert.equal(await attestOk(anonymous), false);
  });

  const dns01 = (value: string, wildcard: boolean): CaCorroborateRequest => ({
    account: externalAccount.publicKey,
    identifier: { type: 'dns', value },
    method: 'dns-01',
    token: DNS01_TOKEN,
    keyAuthorization: DNS01_KEY_AUTHORIZATION,
    accountUri: ACCOUNT_URI,
    wildcard,
  });

  it('a wildcard authorization is attested as such, with CAA checked for issuewild', async () => {
    // pinned.example: `issue` allows this CA for the account, `issuewild` only another CA.
    const name = `pinned.${EXTERNAL_ZONE}`;
    const plain = decodeDcvAttestation(await corroborator(dns01(name, false), caller));
    assert.equal(verifyDcvAttestation(plain), true);
    assert.deepEqual(
      [plain.body.identifier, plain.body.wildcard, plain.body.method, plain.body.ok],
      [`dns:${name}`, false, 'dns-01', true],
    );
    const wild = decodeDcvAttestation(await corroborator(dns01(name, true), caller));
    assert.equal(verifyDcvAttestation(wild), true);
    assert.deepEqual(
      [wild.body.identifier, wild.body.wildcard, wild.body.ok],
      [`dns:${name}`, true, false],
    );
    // No CAA at all: the wildcard is attested ok, and says so.
    const shop = decodeDcvAttestation(
      await corroborator(dns01(`shop.${EXTERNAL_ZONE}`, true), caller),
    );
    assert.deepEqual([shop.body.wildcard, shop.body.method, shop.body.ok], [true, 'dns-01', true]);
  });

  it('the collector keeps only attestations of the form it asked for (name or wildcard)', async () => {
    const self = ed25519RawPublicKey(validatorKey);
    const holder = { ...fixture.config.issuers[0]!, account: self };
    const collect = (local: (request: CaCorroborateRequest) => Promise<Uint8Array>) => {
      const failures: string[] = [];
      const collector = createCorroborationCollector({
        chainId: fixture.config.chainId,
        account: externalAccount.publicKey,
        holders: () => [holder],
        electorate: () => ({ powers: new Map(), totalPower: 1 }),
        self,
        latestHeight: () => 3,
        local,
        remote: () => Promise.reject(new Error('no remote holder in this test')),
        onFailure: (_holder, reason) => failures.push(reason),
      });
      return { failures, collector };
    };
    const identifier = { type: 'dns' as const, value: `shop.${EXTERNAL_ZONE}` };
    const context = { wildcard: true, accountUri: ACCOUNT_URI };
    const honest = collect((request) => corroborator(request, caller));
    const answer = await honest.collector(
      identifier,
      'dns-01',
      DNS01_TOKEN,
      DNS01_KEY_AUTHORIZATION,
      context,
    );
    assert.deepEqual(honest.failures, []);
    assert.equal(answer.attestations.length, 1);
    assert.equal(decodeDcvAttestation(answer.attestations[0]!.bytes).body.wildcard, true);
    // A holder that attests the name when the wildcard was asked for is not counted.
    const plain = collect((request) => corroborator({ ...request, wildcard: false }, caller));
    const refused = await plain.collector(
      identifier,
      'dns-01',
      DNS01_TOKEN,
      DNS01_KEY_AUTHORIZATION,
      context,
    );
    assert.equal(refused.attestations.length, 0);
    assert.deepEqual(plain.failures, ['for the name, not its wildcard']);
  });

  it('a wildcard authorization by http-01 or for an IP address is refused, unvalidated', async () => {
    const hosts = responder.hosts.length;
    await assert.rejects(
      corroborator(
        http01(externalAccount.publicKey, `shop.${EXTERNAL_ZONE}`, { wildcard: true }),
        caller,
      ),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
    await assert.rejects(
      corroborator(
        {
          ...http01(externalAccount.publicKey, '127.0.0.1', { wildcard: true, method: 'dns-01' }),
          identifier: { type: 'ip', value: '127.0.0.1' },
        },
        caller,
      ),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
    assert.equal(responder.hosts.length, hosts, 'nothing was connected to');
  });

  it('a value with "*." is refused: the wildcard is the flag, so *.x is never attested as x', async () => {
    const hosts = responder.hosts.length;
    const name = `*.shop.${EXTERNAL_ZONE}`;
    for (const request of [
      {
        ...http01(externalAccount.publicKey, `shop.${EXTERNAL_ZONE}`),
        identifier: { type: 'dns', value: name },
      },
      { ...dns01(name, true) },
      { ...dns01(name, false) },
    ] as CaCorroborateRequest[]) {
      await assert.rejects(
        corroborator(request, caller),
        (error: unknown) =>
          isStoqError(StoqErrorCode.INVALID_ARGUMENT)(error) &&
          /name the base name and set wildcard/.test((error as Error).message),
      );
    }
    assert.equal(responder.hosts.length, hosts, 'nothing was connected to');
  });
});
