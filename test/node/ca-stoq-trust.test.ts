import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { toBase64, toHex } from '../../src/crypto/bytes.js';
import { ed25519RawPublicKey } from '../../src/crypto/ed25519.js';
import type { NodeIdentityKeys } from '../../src/crypto/keyfile.js';
import { parseCertificate } from '../../src/crypto/x509.js';
import { issueGenesisCertificate, type GenesisIssuer } from '../../src/node/ca-genesis.js';
import { NOT_ISSUED_REASON, createCaStoqTrust } from '../../src/node/ca-service.js';
import { generateNodeIdentity } from '../../src/node/dev-ca.js';
import { verifyPeerCertificate, type CertifiedPeer } from '../../src/stoq/auth/peer.js';
import { AuthFailureReason } from '../../src/stoq/auth/reasons.js';
import { StoqError } from '../../src/stoq/errors.js';
import {
  assembleCertificate,
  buildTbs,
  createRandomizedSigner,
  readTbs,
  splitCertificate,
} from '../../src/trustchain/ca/certificate.js';
import { createCsr } from '../../src/trustchain/ca/csr.js';
import {
  createValidatorCaRequest,
  issueValidatorIntermediate,
  loadRootSigningKeys,
} from '../../src/trustchain/ca/hierarchy.js';
import { proveFalconPossession } from '../../src/trustchain/ca/index.js';
import { caRequestBody, caRevokeBody } from '../../src/trustchain/ca-module/index.js';
import { BLOCK_TIME, CEREMONY_TIME, CLUSTER, PASSPHRASE } from '../trustchain/ca/fixtures.js';
import {
  caTx,
  createCaFixture,
  publication,
  publishTx,
  type CaFixture,
  type CaNode,
} from '../trustchain/ca-module/fixture.js';

/** When the fixture's certificates are all valid. */
const CERT_TIME = BLOCK_TIME + 600_000;

/**
 * STOQ accepts a TrustChain leaf only if consensus issued it (ca-service.ts
 * `createCaStoqTrust`): a genesis bootstrap certificate, or a certificate the committed state
 * holds as published with the same bytes. Every validator holds its intermediate's key, so a
 * leaf one validator signs on its own chains to the root but is refused; so is a leaf under an
 * intermediate the root signed that consensus never put into effect.
 */
describe('TrustChain leaves in STOQ: only what consensus issued', () => {
  let fixture: CaFixture;
  let node: CaNode;
  let genesisKeys: NodeIdentityKeys;
  let addedKeys: NodeIdentityKeys;
  let forgerKeys: NodeIdentityKeys;
  let genesisLeaf: Uint8Array;
  let published: Uint8Array;
  let publishedSerial: Uint8Array;
  let failingReads = false;
  /** The node's view of whether it is catching up (`createCaStoqTrust` `caughtUp`). */
  let caughtUp: (() => boolean) | undefined;

  const issuerOf = (name: 'val-a' | 'val-b'): GenesisIssuer => ({
    certificate: fixture.ca.validators[name]!.issuer.certificate,
    privateKey: fixture.ca.validators[name]!.keys.ecdsa.privateKey,
  });
  const intermediate = (name: 'val-a' | 'val-b'): Uint8Array =>
    fixture.ca.validators[name]!.issuer.certificate;

  /** The node's STOQ certificate check (chain, identity, revocation) with `createCaStoqTrust`. */
  const verify = (chain: readonly Uint8Array[], keys: NodeIdentityKeys): Promise<CertifiedPeer> => {
    const trust = createCaStoqTrust({
      ca: fixture.config,
      state: {
        get: (key) => {
          if (failingReads) throw new Error('state unreadable');
          return node.node.store.state.get(key);
        },
      },
      ...(caughtUp === undefined ? {} : { caughtUp }),
    });
    return verifyPeerCertificate({
      chain,
      provenKey: { algorithm: 'ed25519', publicKey: ed25519RawPublicKey(keys.ed25519.publicKey) },
      trust: {
        roots: [parseCertificate(fixture.config.bundle.root.certificate)],
        cluster: CLUSTER,
        revocation: trust.revocation,
        identityCheck: trust.identityCheck,
      },
      now: new Date(CERT_TIME),
      purpose: 'clientAuth',
    });
  };

  const refusedAs =
    (reason: AuthFailureReason, revocationReason?: string) =>
    (error: unknown): boolean => {
      assert.ok(error instanceof StoqError, String(error));
      assert.equal(error.detail.reason, reason, error.message);
      if (revocationReason !== undefined) {
        assert.equal(error.detail.revocationReason, revocationReason);
      }
      return true;
    };

  before(async () => {
    const base = await createCaFixture();
    genesisKeys = await generateNodeIdentity(base.ca.falcon);
    addedKeys = await generateNodeIdentity(base.ca.falcon);
    forgerKeys = await generateNodeIdentity(base.ca.falcon);
    genesisLeaf = issueGenesisCertificate({
      issuer: {
        certificate: base.ca.validators['val-a']!.issuer.certificate,
        privateKey: base.ca.validators['val-a']!.keys.ecdsa.privateKey,
      },
      chainId: CLUSTER,
      role: 'validator',
      name: 'val-a',
      keys: genesisKeys,
      validityDays: 30,
      now: new Date(BLOCK_TIME),
    })[0]!;
    fixture = await createCaFixture(
      {
        genesisCertificates: [
          {
            issuer: 'val-a',
            account: toHex(base.operator.publicKey),
            certificate: toBase64(genesisLeaf),
          },
        ],
      },
      base.ca,
    );
    // The operator may request node certificates, as `cluster init`'s grant allows.
    const account = toHex(fixture.operator.publicKey);
    const grant = fixture.config.grants.get(account)!;
    (fixture.config.grants as Map<string, typeof grant>).set(account, {
      ...grant,
      profiles: ['node', 'service', 'client'],
      uriPrefixes: [`spiffe://${CLUSTER}/`],
    });
    node = await fixture.openCaNode();
  });

  after(() => node?.close());

  it('a genesis bootstrap certificate passes before block 1 writes its record, and after', async () => {
    assert.equal(node.node.nextHeight(), 1);
    const before = await verify([genesisLeaf, intermediate('val-a')], genesisKeys);
    assert.equal(before.identity.uri, `spiffe://${CLUSTER}/validator/val-a`);
    const first = node.block([]);
    assert.deepEqual(first.txResults, []);
    assert.notEqual(
      node.state().genesisCertificate(readTbs(splitCertificate(genesisLeaf).tbs).serial),
      null,
    );
    await verify([genesisLeaf, intermediate('val-a')], genesisKeys);
  });

  it('a consensus-published node certificate passes', async () => {
    const spki = new Uint8Array(
      createPublicKey(addedKeys.ed25519.privateKey).export({ format: 'der', type: 'spki' }),
    );
    const request = caTx(
      fixture.operator,
      caRequestBody(
        {
          profile: 'node',
          csr: createCsr({ privateKey: addedKeys.ed25519.privateKey }),
          uris: [`spiffe://${CLUSTER}/node/added-1`],
          falcon: {
            publicKey: addedKeys.falcon.publicKey,
            proof: await proveFalconPossession(spki, addedKeys.falcon.secretKey, fixture.ca.falcon),
          },
        },
        fixture.ca.falcon,
      ),
    );
    const requested = node.block([request]);
    assert.equal(requested.txResults[0]?.code, 0, requested.txResults[0]?.log);
    const height = node.node.nextHeight() - 1;
    const made = await publication(fixture, node, height, 'val-a');
    const result = node.block([publishTx(fixture, 'val-a', made.tx)]);
    assert.equal(result.txResults[0]?.code, 0, result.txResults[0]?.log);
    published = made.certificates[0]!;
    publishedSerial = node.state().published(node.node.nextHeight() - 1)!.serials[0]!;
    const peer = await verify([published, intermediate('val-a')], addedKeys);
    assert.equal(peer.identity.uri, `spiffe://${CLUSTER}/node/added-1`);
  });

  it('a node certificate one validator signed itself is refused, and cannot be revoked', async () => {
    // val-b signs a node-profile leaf for the added node's name with keys of its choosing.
    const forged = issueGenesisCertificate({
      issuer: issuerOf('val-b'),
      chainId: CLUSTER,
      role: 'node',
      name: 'added-1',
      keys: forgerKeys,
      validityDays: 30,
      now: new Date(BLOCK_TIME),
    })[0]!;
    await assert.rejects(
      verify([forged, intermediate('val-b')], forgerKeys),
      refusedAs(AuthFailureReason.REVOKED, NOT_ISSUED_REASON),
    );
    // An unlisted name, a validator name, the client role: all the same.
    for (const [role, name] of [
      ['node', 'nobody'],
      ['validator', 'val-b'],
      ['client', 'operator'],
    ] as const) {
      const leaf = issueGenesisCertificate({
        issuer: issuerOf('val-b'),
        chainId: CLUSTER,
        role,
        name,
        keys: forgerKeys,
        validityDays: 30,
        now: new Date(BLOCK_TIME),
      })[0]!;
      await assert.rejects(
        verify([leaf, intermediate('val-b')], forgerKeys),
        refusedAs(AuthFailureReason.REVOKED, NOT_ISSUED_REASON),
        `${role}/${name}`,
      );
    }
    // Nothing to revoke: the module has no record of it.
    const serial = readTbs(splitCertificate(forged).tbs).serial;
    const revoke = node.block([caTx(fixture.operator, caRevokeBody(serial, 1))]);
    assert.notEqual(revoke.txResults[0]?.code, 0);
  });

  it('while catching up, an unknown leaf is taken on its chain; once current it is refused', async () => {
    // A node behind the block that published a peer's (renewed) certificate must still reach
    // that peer to sync; sessions are re-checked at every commit, so it is dropped once current.
    const unknown = issueGenesisCertificate({
      issuer: issuerOf('val-b'),
      chainId: CLUSTER,
      role: 'node',
      name: 'renewed-elsewhere',
      keys: forgerKeys,
      validityDays: 30,
      now: new Date(BLOCK_TIME),
    })[0]!;
    try {
      caughtUp = () => false;
      const peer = await verify([unknown, intermediate('val-b')], forgerKeys);
      assert.equal(peer.identity.uri, `spiffe://${CLUSTER}/node/renewed-elsewhere`);
      caughtUp = () => true;
      await assert.rejects(
        verify([unknown, intermediate('val-b')], forgerKeys),
        refusedAs(AuthFailureReason.REVOKED, NOT_ISSUED_REASON),
      );
    } finally {
      caughtUp = undefined;
    }
  });

  it('a self-signed leaf reusing a published serial is refused (the bytes differ)', async () => {
    const issuer = fixture.ca.validators['val-a']!;
    const copied = readTbs(splitCertificate(published).tbs);
    const parsed = parseCertificate(published);
    const spki = new Uint8Array(
      createPublicKey(forgerKeys.ed25519.privateKey).export({ format: 'der', type: 'spki' }),
    );
    // The published certificate with the forger's Ed25519 key in place of the node's.
    const tbs = buildTbs({
      serial: publishedSerial,
      issuerName: copied.issuerName,
      notBefore: parsed.notBefore,
      notAfter: parsed.notAfter,
      subjectName: copied.subjectName,
      subjectPublicKeyInfo: spki,
      extensions: copied.extensions,
    });
    const twin = assembleCertificate(
      tbs,
      createRandomizedSigner(issuer.keys.ecdsa.privateKey).sign(tbs),
    );
    assert.deepEqual(readTbs(splitCertificate(twin).tbs).serial, publishedSerial);
    await assert.rejects(
      verify([twin, intermediate('val-a')], { ...forgerKeys, falcon: addedKeys.falcon }),
      refusedAs(AuthFailureReason.REVOKED, NOT_ISSUED_REASON),
    );
  });

  it('a leaf under an intermediate the root signed outside consensus is refused', async () => {
    const { request, keys } = await createValidatorCaRequest({
      name: 'val-x',
      falcon: fixture.ca.falcon,
    });
    const root = await loadRootSigningKeys({
      bundle: fixture.ca.bundle,
      ecdsaKeyFile: fixture.ca.rootKeyFiles.ecdsa,
      falconKeyFile: fixture.ca.rootKeyFiles.falcon,
      passphrase: PASSPHRASE,
    });
    const issued = await issueValidatorIntermediate({
      cluster: fixture.ca.bundle.cluster,
      root,
      request,
      notBefore: CEREMONY_TIME,
      falcon: fixture.ca.falcon,
    });
    const leaf = issueGenesisCertificate({
      issuer: { certificate: issued.certificate, privateKey: keys.ecdsa.privateKey },
      chainId: CLUSTER,
      role: 'node',
      name: 'added-1',
      keys: forgerKeys,
      validityDays: 30,
      now: new Date(BLOCK_TIME),
    })[0]!;
    await assert.rejects(
      verify([leaf, issued.certificate], forgerKeys),
      refusedAs(AuthFailureReason.REVOKED, NOT_ISSUED_REASON),
    );
  });

  it('fails closed when the committed state cannot be read', async () => {
    failingReads = true;
    try {
      await assert.rejects(
        verify([published, intermediate('val-a')], addedKeys),
        refusedAs(AuthFailureReason.REVOCATION_UNKNOWN),
      );
    } finally {
      failingReads = false;
    }
    await verify([published, intermediate('val-a')], addedKeys);
  });
});
