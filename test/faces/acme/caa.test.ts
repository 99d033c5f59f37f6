import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AcmeError, AcmeErrorCode } from '../../../src/faces/acme/errors.js';
import { ZoneSourceCaaResolver } from '../../../src/faces/acme/caa-resolver.js';
import { checkCaa } from '../../../src/faces/acme/caa-check.js';
import type { TxtResolver } from '../../../src/faces/acme/dns-resolver.js';
import { jwkThumbprint } from '../../../src/faces/acme/jws.js';
import { dns01TxtValue, keyAuthorization } from '../../../src/faces/acme/validation.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import {
  MemoryZone,
  ZoneSet,
  parseRecord,
  type RecordInput,
} from '../../../src/trustchain/dns/index.js';
import { waitForCondition } from '../../helpers/wait.js';
import {
  PROBLEM,
  RawAcmeClient,
  createTestPki,
  generateAccountKey,
  publicJwk,
  startTestAcme,
  type HttpsReply,
  type RunningAcme,
  type TestPki,
} from './fixtures.js';

/**
 * CAA (RFC 8659, RFC 8657) in the ACME server: the records come from an in-memory zone through
 * `ZoneSourceCaaResolver` (the answer engine the node's DNS servers use), dns-01 from an
 * in-memory TXT table. Each case orders one name and checks where it ends: issued, or refused
 * with the `caa` problem naming the identifier and nothing issued.
 */

const ZONE = 'caa.test.';
const THIS_CA = 'hypermesh';

const soa: RecordInput = {
  name: ZONE,
  type: 'SOA',
  ttl: 3600,
  data: {
    mname: `ns.${ZONE}`,
    rname: `hostmaster.${ZONE}`,
    serial: 1,
    refresh: 3600,
    retry: 600,
    expire: 86400,
    minimum: 60,
  },
};

const caa = (name: string, value: string, tag = 'issue', flags = 0): RecordInput => ({
  name: `${name}.`,
  type: 'CAA',
  ttl: 300,
  data: { flags, tag, value },
});

class MemoryTxt implements TxtResolver {
  readonly values = new Map<string, string[]>();
  lookupTxt(name: string): Promise<string[]> {
    return Promise.resolve(this.values.get(name.replace(/\.$/, '')) ?? []);
  }
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

describe('ACME: CAA from the cluster zones', () => {
  let pki: TestPki;
  let running: RunningAcme;
  let client: RawAcmeClient;
  const zones = new ZoneSet();
  const txt = new MemoryTxt();
  let records: RecordInput[] = [];

  const setZone = (extra: RecordInput[]): void => {
    records = extra;
    zones.set(
      MemoryZone.build(
        ZONE,
        [soa, { name: ZONE, type: 'NS', ttl: 3600, data: { host: `ns.${ZONE}` } }, ...extra].map(
          (r) => parseRecord(r),
        ),
      ),
    );
  };
  const addRecords = (extra: RecordInput[]): void => setZone([...records, ...extra]);

  before(async () => {
    pki = await createTestPki();
    setZone([]);
    running = await startTestAcme(pki, {
      txtResolver: txt,
      caaIdentities: [THIS_CA],
      caaResolver: new ZoneSourceCaaResolver(() => zones),
    });
    client = new RawAcmeClient(
      running.server.directoryUrl,
      pki.rootPem,
      generateAccountKey('ES256'),
      'ES256',
    );
    await client.init();
    assert.equal((await client.newAccount()).status, 201);
  });

  after(async () => {
    await running?.close();
    pki?.cleanup();
  });

  const json = async (url: string): Promise<Record<string, unknown>> =>
    (await client.post(url, '')).json ?? {};

  /** Orders `name` and answers its dns-01 challenge; resolves once the authorization settles. */
  async function validated(name: string): Promise<{
    orderUrl: string;
    authz: Record<string, unknown>;
    challenge: Record<string, unknown>;
  }> {
    const created = await client.post(client.directory.newOrder as string, {
      identifiers: [{ type: 'dns', value: name }],
    });
    assert.equal(created.status, 201, created.text);
    const orderUrl = created.headers.location as string;
    const authzUrl = (created.json?.authorizations as string[])[0] as string;
    const pending = await json(authzUrl);
    const challenge = (pending.challenges as Array<Record<string, string>>).find(
      (c) => c.type === 'dns-01',
    );
    assert.ok(challenge, 'dns-01 offered');
    const keyAuth = keyAuthorization(challenge.token!, jwkThumbprint(publicJwk(client.key)));
    const base = name.replace(/^\*\./, '');
    txt.values.set(`_acme-challenge.${base}`, [dns01TxtValue(keyAuth)]);
    assert.equal((await client.post(challenge.url!, {})).status, 200);
    await waitForCondition(
      running.server.events,
      'change',
      async () => (await json(authzUrl)).status !== 'pending',
      `authorization of ${name} settled`,
      20_000,
    );
    const authz = await json(authzUrl);
    const settled = (authz.challenges as Array<Record<string, unknown>>).find(
      (c) => c.type === 'dns-01',
    ) as Record<string, unknown>;
    return { orderUrl, authz, challenge: settled };
  }

  async function finalize(orderUrl: string, name: string): Promise<HttpsReply> {
    const order = await json(orderUrl);
    assert.equal(order.status, 'ready', JSON.stringify(order));
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    return client.post(order.finalize as string, {
      csr: b64(createCsr({ privateKey: key, dnsNames: [name] })),
    });
  }

  async function issued(name: string): Promise<void> {
    const { orderUrl, authz } = await validated(name);
    assert.equal(authz.status, 'valid', JSON.stringify(authz));
    const finalized = await finalize(orderUrl, name);
    assert.equal(finalized.status, 200, finalized.text);
    await waitForCondition(
      running.server.events,
      'change',
      async () => (await json(orderUrl)).status === 'valid',
      `order for ${name} valid`,
      20_000,
    );
    assert.equal(typeof (await json(orderUrl)).certificate, 'string');
  }

  /** The authorization is refused with `caa` naming `name`; the order is invalid, no certificate. */
  async function refusedAtValidation(name: string, detail: RegExp): Promise<void> {
    const { orderUrl, authz, challenge } = await validated(name);
    assert.equal(authz.status, 'invalid', JSON.stringify(authz));
    assert.equal(challenge.status, 'invalid');
    const error = challenge.error as Record<string, unknown>;
    assert.equal(error.type, PROBLEM('caa'), JSON.stringify(error));
    assert.deepEqual(error.identifier, { type: 'dns', value: name.replace(/^\*\./, '') });
    assert.match(String(error.detail), detail);
    const order = await json(orderUrl);
    assert.equal(order.status, 'invalid');
    assert.equal(order.certificate, undefined);
  }

  it('issues for a name without CAA records anywhere above it', async () => {
    await issued('plain.caa.test');
  });

  it('refuses a name whose CAA names another CA (issue "other-ca.example")', async () => {
    addRecords([caa('other.caa.test', 'other-ca.example')]);
    await refusedAtValidation('other.caa.test', /at other\.caa\.test forbid issuance/);
  });

  it('issues for a name whose CAA names this CA', async () => {
    addRecords([caa('ok.caa.test', THIS_CA), caa('ok.caa.test', 'other-ca.example')]);
    await issued('ok.caa.test');
  });

  it('applies a parent CAA to its children (RFC 8659 §3 climbing)', async () => {
    addRecords([caa('parent.caa.test', 'other-ca.example')]);
    await refusedAtValidation('www.sub.parent.caa.test', /at parent\.caa\.test/);
    // A child with its own CAA naming this CA is not bound by the parent's.
    addRecords([caa('own.parent.caa.test', THIS_CA)]);
    await issued('own.parent.caa.test');
  });

  it('honours accounturi (RFC 8657 §3): the matching account issues, another is refused', async () => {
    const accountUrl = client.kid as string;
    addRecords([
      caa('acct.caa.test', `${THIS_CA}; accounturi=${accountUrl}`),
      caa('other-acct.caa.test', `${THIS_CA}; accounturi=${accountUrl}x`),
    ]);
    await issued('acct.caa.test');
    await refusedAtValidation('other-acct.caa.test', /for this account/);
  });

  it('honours validationmethods (RFC 8657 §4)', async () => {
    addRecords([
      caa('vm-ok.caa.test', `${THIS_CA}; validationmethods=http-01,dns-01`),
      caa('vm-no.caa.test', `${THIS_CA}; validationmethods=http-01`),
    ]);
    await issued('vm-ok.caa.test');
    await refusedAtValidation('vm-no.caa.test', /validation method/);
  });

  it('uses issuewild for a wildcard, issue for the name itself', async () => {
    addRecords([
      caa('wild.caa.test', THIS_CA),
      caa('wild.caa.test', 'other-ca.example', 'issuewild'),
    ]);
    await refusedAtValidation('*.wild.caa.test', /\*\.wild\.caa\.test/);
    await issued('wild.caa.test');
  });

  it('refuses an unknown critical property', async () => {
    addRecords([caa('critical.caa.test', 'whatever', 'futuretag', 128)]);
    await refusedAtValidation('critical.caa.test', /unknown critical property/);
  });

  it('re-checks at finalize: CAA added after validation refuses, nothing issued, the order stays ready', async () => {
    const { orderUrl, authz } = await validated('late.caa.test');
    assert.equal(authz.status, 'valid');
    addRecords([caa('late.caa.test', 'other-ca.example')]);
    const refused = await finalize(orderUrl, 'late.caa.test');
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.json?.type, PROBLEM('caa'));
    assert.deepEqual(refused.json?.identifier, { type: 'dns', value: 'late.caa.test' });
    const order = await json(orderUrl);
    assert.equal(order.status, 'ready');
    assert.equal(order.certificate, undefined);
    // Once the records allow it, the same order finalizes.
    setZone(records.filter((r) => r.name !== 'late.caa.test.'));
    const finalized = await finalize(orderUrl, 'late.caa.test');
    assert.equal(finalized.status, 200, finalized.text);
    await waitForCondition(
      running.server.events,
      'change',
      async () => (await json(orderUrl)).status === 'valid',
      'late order valid',
      20_000,
    );
  });

  it('advertises caaIdentities in the directory', () => {
    assert.deepEqual((client.directory.meta as unknown as Record<string, unknown>).caaIdentities, [
      THIS_CA,
    ]);
  });
});

describe('ZoneSourceCaaResolver', () => {
  const zoneWith = (extra: RecordInput[]): ZoneSet =>
    new ZoneSet([
      MemoryZone.build(
        ZONE,
        [soa, { name: ZONE, type: 'NS', ttl: 3600, data: { host: `ns.${ZONE}` } }, ...extra].map(
          (r) => parseRecord(r),
        ),
      ),
    ]);

  it('reads CAA RRsets, follows CNAMEs, and has nothing outside the zones', async () => {
    const zones = zoneWith([
      caa('a.caa.test', 'hypermesh; accounturi=https://x/acct/1'),
      caa('a.caa.test', 'mailto:ops@x.test', 'iodef'),
      { name: 'alias.caa.test.', type: 'CNAME', ttl: 60, data: { target: 'a.caa.test.' } },
      { name: 'b.caa.test.', type: 'A', ttl: 60, data: { address: '192.0.2.1' } },
    ]);
    const resolver = new ZoneSourceCaaResolver(() => zones);
    const a = await resolver.lookupCaa('a.caa.test');
    assert.deepEqual(
      [...a].sort((x, y) => x.tag.localeCompare(y.tag)),
      [
        { flags: 0, tag: 'iodef', value: 'mailto:ops@x.test' },
        { flags: 0, tag: 'issue', value: 'hypermesh; accounturi=https://x/acct/1' },
      ],
    );
    assert.equal((await resolver.lookupCaa('alias.caa.test')).length, 2, 'CNAME followed');
    assert.deepEqual(await resolver.lookupCaa('b.caa.test'), [], 'NODATA');
    assert.deepEqual(await resolver.lookupCaa('missing.caa.test'), [], 'NXDOMAIN');
    assert.deepEqual(await resolver.lookupCaa('example.org'), [], 'not a cluster zone');
  });

  it('fails the lookup of a name whose CNAMEs loop (a resolver would answer SERVFAIL)', async () => {
    const cname = (name: string, target: string): RecordInput => ({
      name: `${name}.`,
      type: 'CNAME',
      ttl: 60,
      data: { target: `${target}.` },
    });
    const zones = zoneWith([
      cname('x.caa.test', 'y.caa.test'),
      cname('y.caa.test', 'x.caa.test'),
      cname('self.caa.test', 'self.caa.test'),
      cname('into.caa.test', 'x.caa.test'),
    ]);
    const resolver = new ZoneSourceCaaResolver(() => zones);
    for (const name of ['x.caa.test', 'y.caa.test', 'self.caa.test', 'into.caa.test']) {
      await assert.rejects(
        resolver.lookupCaa(name),
        (error: unknown) =>
          error instanceof AcmeError &&
          error.code === AcmeErrorCode.DNS_LOOKUP_FAILED &&
          error.detail?.reason === 'cname_loop',
        name,
      );
    }
  });

  it('turns a failing zone source into DNS_LOOKUP_FAILED', async () => {
    const resolver = new ZoneSourceCaaResolver(() => {
      throw new AcmeError(AcmeErrorCode.DNS_LOOKUP_FAILED, 'no zones');
    });
    await assert.rejects(
      resolver.lookupCaa('a.caa.test'),
      (error: unknown) =>
        error instanceof AcmeError && error.code === AcmeErrorCode.DNS_LOOKUP_FAILED,
    );
  });
});

describe('CAA check edges', () => {
  it('a failed lookup is a dns problem naming the identifier; IP identifiers have no CAA', async () => {
    const failing = {
      lookupCaa: () =>
        Promise.reject(new AcmeError(AcmeErrorCode.DNS_LOOKUP_FAILED, 'zones unreadable')),
    };
    const refusal = await checkCaa(
      { resolver: failing, identities: [THIS_CA] },
      {
        identifier: { type: 'dns', value: 'x.caa.test' },
        wildcard: false,
        accountUri: 'https://acme.test/acme/acct/1',
        validationMethod: 'dns-01',
      },
    );
    assert.equal(refusal?.code, 'dns');
    assert.deepEqual(refusal?.asDocument().identifier, { type: 'dns', value: 'x.caa.test' });
    assert.equal(
      await checkCaa(
        { resolver: failing, identities: [THIS_CA] },
        {
          identifier: { type: 'ip', value: '192.0.2.1' },
          wildcard: false,
          accountUri: 'https://acme.test/acme/acct/1',
          validationMethod: 'http-01',
        },
      ),
      null,
    );
  });

  it('refuses a CAA resolver without issuer domain names, and names that are not domains', async () => {
    const pki = await createTestPki();
    try {
      const resolver = new ZoneSourceCaaResolver(() => new ZoneSet());
      for (const caaIdentities of [undefined, [], ['not a domain'], ['trailing.dot.']]) {
        await assert.rejects(
          startTestAcme(pki, {
            caaResolver: resolver,
            ...(caaIdentities === undefined ? {} : { caaIdentities }),
          }),
          (error: unknown) =>
            error instanceof AcmeError && error.code === AcmeErrorCode.INVALID_OPTIONS,
          JSON.stringify(caaIdentities),
        );
      }
    } finally {
      pki.cleanup();
    }
  });
});
