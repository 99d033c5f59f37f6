import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { encodeCanonical } from '../../../src/codec/cbor.js';
import { toBase64, toHex } from '../../../src/crypto/bytes.js';
import { ed25519RawPublicKey } from '../../../src/crypto/ed25519.js';
import type { NodeIdentityKeys } from '../../../src/crypto/keyfile.js';
import { certificateFalconKey, parseCertificate } from '../../../src/crypto/x509.js';
import { issueGenesisCertificate, type GenesisIssuer } from '../../../src/node/ca-genesis.js';
import { generateNodeIdentity } from '../../../src/node/dev-ca.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import {
  proveFalconPossession,
  type CertificateRequestInput,
} from '../../../src/trustchain/ca/request.js';
import {
  CaModuleError,
  CaModuleErrorCode,
  caRenewBody,
  caRevokeBody,
  decodeCaBody,
  encodeCaBody,
  genesisRenewalRequest,
  lacksIssuanceExtensions,
  type CaGenesisJson,
} from '../../../src/trustchain/ca-module/index.js';
import { makeSender, type Sender } from '../../consensus/application/fixture.js';
import { BLOCK_TIME, CLUSTER } from '../ca/fixtures.js';
import {
  GRANTED_ZONE,
  assertRefused,
  caTry,
  caTx,
  createCaFixture,
  publication,
  publishTx,
  resultOf,
  type CaFixture,
  type CaNode,
} from './fixture.js';

/**
 * Renewal of genesis bootstrap certificates through consensus (genesis-renewal.ts, module.ts):
 * the renew carries a request that must re-issue exactly the certificate, from the genesis
 * entry's account or the certificate's own key; the result is an ordinary issued certificate.
 */

type Entry = NonNullable<CaGenesisJson['genesisCertificates']>[number];

/** The account of an identity's Ed25519 key, one per identity (it keeps the sequence). */
const senders = new WeakMap<NodeIdentityKeys, Sender>();
const senderOf = (keys: NodeIdentityKeys): Sender => {
  let sender = senders.get(keys);
  if (sender === undefined) {
    sender = {
      privateKey: keys.ed25519.privateKey,
      publicKey: ed25519RawPublicKey(keys.ed25519.privateKey),
      sequence: 0,
    };
    senders.set(keys, sender);
  }
  return sender;
};

const serialOf = (der: Uint8Array): Uint8Array =>
  Uint8Array.from(Buffer.from(parseCertificate(der).serialNumber, 'hex'));

const spkiOf = (keys: NodeIdentityKeys): Uint8Array =>
  new Uint8Array(createPublicKey(keys.ed25519.privateKey).export({ format: 'der', type: 'spki' }));

describe('ca module: renewal of genesis bootstrap certificates', () => {
  let fixture: CaFixture;
  let node: CaNode;
  /** The genesis entries' account (`cluster init`: the operator). */
  const owner = makeSender();
  const stranger = makeSender();
  /** val-a's and val-b's node identities, the operator's client identity, an unrelated one. */
  let ids: {
    a: NodeIdentityKeys;
    b: NodeIdentityKeys;
    client: NodeIdentityKeys;
    x: NodeIdentityKeys;
  };
  let ders: { a: Uint8Array; b: Uint8Array; client: Uint8Array };

  const latest = (): number => node.node.store.blocks.latestHeight() as number;

  /** The request `genesisRenewalRequest` builds for `der` with `keys`. */
  const requestFor = (der: Uint8Array, keys: NodeIdentityKeys) =>
    genesisRenewalRequest(
      der,
      { privateKey: keys.ed25519.privateKey, falconSecretKey: keys.falcon.secretKey },
      fixture.ca.falcon,
    );
  const renewBody = (serial: Uint8Array, request?: CertificateRequestInput, lifetime?: number) =>
    caRenewBody(serial, lifetime, request, fixture.ca.falcon);

  /** Commits `transactions`, then val-a's publication of that block; the first result. */
  async function commitAndPublish(transactions: Uint8Array[]) {
    const committed = node.block(transactions);
    const { tx } = await publication(fixture, node, latest(), 'val-a');
    const published = node.block([publishTx(fixture, 'val-a', tx)]);
    assert.equal(resultOf(published).code, 0, resultOf(published).log);
    return committed.txResults[0] as { code: number; log: string; txHash: Uint8Array };
  }

  /**
   * Refused with `code` at admission (checkTx) and again in a block, where it writes nothing:
   * no issuance record, no batch, the genesis account's rate window unchanged.
   */
  function refusedEverywhere(sender: Sender, body: Uint8Array, code: string, message?: RegExp) {
    const checked = node.node.app.checkTx(caTry(sender, body));
    assert.equal(checked.ok, false, `checkTx admitted what should be ${code}`);
    assert.equal(!checked.ok && checked.code, code, !checked.ok ? checked.message : '');
    if (message !== undefined) assert.match(!checked.ok ? checked.message : '', message);
    const window = node.state().rateWindow(owner.publicKey);
    const result = node.block([caTx(sender, body)]);
    assertRefused(resultOf(result), code);
    assert.equal(node.state().issuance(result.txResults[0]!.txHash), null);
    assert.equal(node.state().batch(latest()), null);
    assert.deepEqual(node.state().rateWindow(owner.publicKey), window);
  }

  before(async () => {
    const base = await createCaFixture();
    ids = {
      a: await generateNodeIdentity(base.ca.falcon),
      b: await generateNodeIdentity(base.ca.falcon),
      client: await generateNodeIdentity(base.ca.falcon),
      x: await generateNodeIdentity(base.ca.falcon),
    };
    const issuerOf = (name: 'val-a' | 'val-b'): GenesisIssuer => ({
      certificate: base.ca.validators[name]!.issuer.certificate,
      privateKey: base.ca.validators[name]!.keys.ecdsa.privateKey,
    });
    const issue = (
      issuer: 'val-a' | 'val-b',
      role: 'validator' | 'client',
      name: string,
      keys: NodeIdentityKeys,
      ipAddresses: string[] = [],
    ) =>
      issueGenesisCertificate({
        issuer: issuerOf(issuer),
        chainId: CLUSTER,
        role,
        name,
        keys,
        validityDays: 365,
        now: new Date(BLOCK_TIME),
        ipAddresses,
      })[0]!;
    ders = {
      a: issue('val-a', 'validator', 'val-a', ids.a, ['127.0.0.1', '::1']),
      b: issue('val-b', 'validator', 'val-b', ids.b),
      client: issue('val-a', 'client', 'operator', ids.client),
    };
    const entry = (issuer: string, der: Uint8Array): Entry => ({
      issuer,
      account: toHex(owner.publicKey),
      certificate: toBase64(der),
    });
    // Four issuances per window for the genesis account: what runs out is its window. Its
    // grant covers val-a's identity only: a genesis renewal does not consult it, a later
    // renewal (of an issued certificate) does.
    fixture = await createCaFixture(
      {
        rateLimit: { max: 4, windowSeconds: 3600 },
        grants: [
          {
            account: toHex(owner.publicKey),
            profiles: ['node'],
            ipRanges: ['127.0.0.1', '::1'],
            uriPrefixes: [`spiffe://${CLUSTER}/validator/val-a`],
          },
        ],
        genesisCertificates: [
          entry('val-a', ders.a),
          entry('val-b', ders.b),
          entry('val-a', ders.client),
        ],
      },
      base.ca,
    );
    node = await fixture.openCaNode();
    node.block([]);
  });

  after(async () => {
    await node?.close();
  });

  it('the body: req only when given; a renew without it encodes as before', async () => {
    const serial = serialOf(ders.a);
    assert.deepEqual(
      caRenewBody(serial, 3600),
      encodeCanonical({ op: 'renew', serial, lifetime: 3600 }),
    );
    const body = renewBody(serial, await requestFor(ders.a, ids.a));
    const decoded = decodeCaBody(body);
    assert.ok(decoded.op === 'renew' && decoded.request !== undefined);
    assert.deepEqual(encodeCaBody(decoded), body);
    assert.equal(decodeCaBody(caRenewBody(serial)).op === 'renew', true);
    assert.ok(!('request' in decodeCaBody(caRenewBody(serial))));
  });

  it('the request builder refuses a key that is not the certificate’s', async () => {
    await assert.rejects(
      requestFor(ders.a, ids.x),
      (error: unknown) =>
        error instanceof CaModuleError &&
        error.code === CaModuleErrorCode.RENEWAL_MISMATCH &&
        error.detail.field === 'key',
    );
    await assert.rejects(
      genesisRenewalRequest(ders.a, { privateKey: ids.a.ed25519.privateKey }, fixture.ca.falcon),
      (error: unknown) => error instanceof CaModuleError && error.detail.field === 'falcon',
    );
  });

  it('refuses what would not re-issue the certificate exactly, and writes nothing', async () => {
    const serial = serialOf(ders.a);
    const request = await requestFor(ders.a, ids.a);
    const parsed = parseCertificate(ders.a);
    const names = { ipAddresses: [...parsed.ipAddresses], uris: [...parsed.uris] };
    const mismatch = CaModuleErrorCode.RENEWAL_MISMATCH;

    // Neither the genesis account nor the certificate's key.
    refusedEverywhere(stranger, renewBody(serial, request), CaModuleErrorCode.NOT_AUTHORIZED);
    // Another identity's key is not this certificate's.
    refusedEverywhere(
      senderOf(ids.b),
      renewBody(serial, request),
      CaModuleErrorCode.NOT_AUTHORIZED,
    );
    // No request: a genesis certificate has none committed.
    refusedEverywhere(owner, renewBody(serial), mismatch, /carries one/);
    // A lifetime inside the request (the renew's own is the renewal's).
    refusedEverywhere(owner, renewBody(serial, { ...request, lifetimeSeconds: 3600 }), mismatch);
    // Another subject key (with its own valid FALCON proof).
    const otherCsr = createCsr({ privateKey: ids.x.ed25519.privateKey, ...names });
    refusedEverywhere(
      owner,
      renewBody(serial, {
        ...request,
        csr: otherCsr,
        falcon: {
          publicKey: ids.a.falcon.publicKey,
          proof: await proveFalconPossession(
            spkiOf(ids.x),
            ids.a.falcon.secretKey,
            fixture.ca.falcon,
          ),
        },
      }),
      mismatch,
      /subject key/,
    );
    // One more name (the CSR names it too), and one fewer.
    refusedEverywhere(
      owner,
      renewBody(serial, {
        ...request,
        csr: createCsr({
          privateKey: ids.a.ed25519.privateKey,
          ...names,
          dnsNames: [`extra.${GRANTED_ZONE}`],
        }),
        dnsNames: [`extra.${GRANTED_ZONE}`],
      }),
      mismatch,
      /names/,
    );
    refusedEverywhere(
      owner,
      renewBody(serial, {
        ...request,
        csr: createCsr({ privateKey: ids.a.ed25519.privateKey, uris: names.uris }),
        ipAddresses: [],
      }),
      mismatch,
      /names/,
    );
    // Another profile (service: serverAuth only).
    refusedEverywhere(
      owner,
      renewBody(serial, { ...request, profile: 'service' }),
      mismatch,
      /profile/,
    );
    // Another FALCON key (with a valid proof for the certificate's subject key).
    refusedEverywhere(
      owner,
      renewBody(serial, {
        ...request,
        falcon: {
          publicKey: ids.x.falcon.publicKey,
          proof: await proveFalconPossession(
            parsed.subjectPublicKeyInfo,
            ids.x.falcon.secretKey,
            fixture.ca.falcon,
          ),
        },
      }),
      mismatch,
      /FALCON/,
    );
    // The node profile's lifetime limit (30 days) applies.
    refusedEverywhere(
      senderOf(ids.a),
      renewBody(serial, request, 31 * 86_400),
      CaModuleErrorCode.POLICY_REFUSED,
      /lifetime_too_long/,
    );
    // The operator's client certificate has a client URI: not a node profile identity.
    refusedEverywhere(
      owner,
      renewBody(serialOf(ders.client), await requestFor(ders.client, ids.client)),
      CaModuleErrorCode.POLICY_REFUSED,
      /uri_role_not_allowed/,
    );
    // An unknown serial.
    const unknown = Uint8Array.from(serial, (byte, i) => (i === 15 ? byte ^ 1 : byte));
    refusedEverywhere(owner, renewBody(unknown, request), CaModuleErrorCode.UNKNOWN_SERIAL);
  });

  it('by its own key and by the genesis account: issued, published, same key and names; later renewals take the usual path; the account’s window counts', async () => {
    const serialA = serialOf(ders.a);
    const original = parseCertificate(ders.a);

    // val-a's key renews its genesis certificate.
    const byKey = await commitAndPublish([
      caTx(senderOf(ids.a), renewBody(serialA, await requestFor(ders.a, ids.a))),
    ]);
    assert.equal(byKey.code, 0, byKey.log);
    const record = node.state().issuance(byKey.txHash)!;
    assert.deepEqual(record.renews, serialA);
    assert.deepEqual(record.account, owner.publicKey, "the genesis entry's account");
    assert.equal(record.lifetimeSeconds, 30 * 86_400, "the node profile's longest");
    assert.notEqual(toHex(record.serial), toHex(serialA));
    const published = node.state().certificate(record.serial);
    assert.ok(published !== null, 'published');
    const fresh = parseCertificate(published.der);
    assert.equal(lacksIssuanceExtensions(fresh.der), false, 'an ordinary issued certificate');
    assert.deepEqual(fresh.subjectPublicKeyInfo, original.subjectPublicKeyInfo);
    assert.deepEqual(fresh.uris, original.uris);
    assert.deepEqual([...fresh.ipAddresses].sort(), [...original.ipAddresses].sort());
    assert.deepEqual(fresh.extendedKeyUsage, original.extendedKeyUsage);
    assert.deepEqual(certificateFalconKey(fresh), ids.a.falcon.publicKey);
    assert.equal(node.state().rateWindow(owner.publicKey)?.count, 1);
    assert.equal(node.state().rateWindow(senderOf(ids.a).publicKey), null);

    // The renewed certificate has a committed request: it renews like any issued one, and a
    // request attached to that renewal is refused.
    const again = renewBody(record.serial, await requestFor(published.der, ids.a));
    refusedEverywhere(
      senderOf(ids.a),
      again,
      CaModuleErrorCode.RENEWAL_MISMATCH,
      /committed request/,
    );
    const second = await commitAndPublish([caTx(senderOf(ids.a), caRenewBody(record.serial))]);
    assert.equal(second.code, 0, second.log);
    assert.deepEqual(node.state().issuance(second.txHash)!.renews, record.serial);

    // The genesis account renews val-b's certificate (its grant does not name val-b).
    const serialB = serialOf(ders.b);
    const byOwner = await commitAndPublish([
      caTx(owner, renewBody(serialB, await requestFor(ders.b, ids.b), 7 * 86_400)),
    ]);
    assert.equal(byOwner.code, 0, byOwner.log);
    const recordB = node.state().issuance(byOwner.txHash)!;
    assert.deepEqual(recordB.renews, serialB);
    const freshB = parseCertificate(node.state().certificate(recordB.serial)!.der);
    assert.deepEqual(freshB.subjectPublicKeyInfo, parseCertificate(ders.b).subjectPublicKeyInfo);
    assert.equal(freshB.notAfter.getTime() - freshB.notBefore.getTime(), 7 * 86_400_000);
    assert.equal(node.state().rateWindow(owner.publicKey)?.count, 3);
    // Its renewal is an ordinary one: the account's grant, which lacks val-b, applies.
    refusedEverywhere(
      senderOf(ids.b),
      caRenewBody(recordB.serial),
      CaModuleErrorCode.POLICY_REFUSED,
      /name_not_allowed/,
    );

    // A genesis certificate may be renewed more than once (each renewal a new serial) until
    // the genesis account's window runs out.
    const repeat = await commitAndPublish([
      caTx(owner, renewBody(serialB, await requestFor(ders.b, ids.b))),
    ]);
    assert.equal(repeat.code, 0, repeat.log);
    // The rate limit is decided in the block (the block time), as for every issuance.
    const window = node.state().rateWindow(owner.publicKey);
    const limited = node.block([
      caTx(senderOf(ids.b), renewBody(serialB, await requestFor(ders.b, ids.b))),
    ]);
    assertRefused(resultOf(limited), CaModuleErrorCode.RATE_LIMITED);
    assert.equal(node.state().issuance(limited.txResults[0]!.txHash), null);
    assert.equal(node.state().batch(latest()), null);
    assert.deepEqual(node.state().rateWindow(owner.publicKey), window);
  });

  it('a revoked genesis certificate is not renewed', async () => {
    const serial = serialOf(ders.client);
    const revoked = node.block([caTx(owner, caRevokeBody(serial, 4))]);
    assert.equal(resultOf(revoked).code, 0, resultOf(revoked).log);
    refusedEverywhere(
      owner,
      renewBody(serial, await requestFor(ders.client, ids.client)),
      CaModuleErrorCode.REVOKED,
    );
  });
});
