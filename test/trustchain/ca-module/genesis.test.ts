import assert from 'node:assert/strict';
import { createPublicKey, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { toBase64, toHex } from '../../../src/crypto/bytes.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { leafHash, rootFromLeafHashes } from '../../../src/crypto/merkle.js';
import type { NodeIdentityKeys } from '../../../src/crypto/keyfile.js';
import { parseCertificate } from '../../../src/crypto/x509.js';
import { createCaStoqTrust } from '../../../src/node/ca-service.js';
import { generateNodeIdentity } from '../../../src/node/dev-ca.js';
import { issueGenesisCertificate, type GenesisIssuer } from '../../../src/node/ca-genesis.js';
import {
  assembleCertificate,
  basicConstraints,
  buildTbs,
  createRandomizedSigner,
  encodeName,
  keyUsage,
} from '../../../src/trustchain/ca/certificate.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { KeyUsageBit } from '../../../src/trustchain/ca/profiles.js';
import {
  CaGenesisError,
  CaModuleErrorCode,
  MAX_GENESIS_CERTIFICATES,
  caInitialState,
  caRenewBody,
  caRequestBody,
  caRevokeBody,
  caStateKey,
  signRevocation,
  treeHeadRoot,
  type CaGenesisJson,
} from '../../../src/trustchain/ca-module/index.js';
import { encodeMerkleTreeLeaf } from '../../../src/trustchain/ct/index.js';
import { makeSender } from '../../consensus/application/fixture.js';
import { BLOCK_TIME, CHAIN_ID, CLUSTER, generateKey } from '../ca/fixtures.js';
import {
  GENESIS_TIME,
  GRANTED_ZONE,
  caTx,
  createCaFixture,
  publication,
  publishTx,
  type CaFixture,
  type CaNode,
  assertRefused,
} from './fixture.js';

/** Genesis bootstrap certificates (src/trustchain/ca-module/genesis.ts). */

type Entry = NonNullable<CaGenesisJson['genesisCertificates']>[number];

describe('ca module: genesis bootstrap certificates', () => {
  let base: CaFixture;
  let identities: NodeIdentityKeys[];
  const owner = makeSender();
  /** val-a's node certificate, val-b's node certificate, val-a's client certificate. */
  let ders: Uint8Array[];
  let entries: Entry[];

  const issuerOf = (name: 'val-a' | 'val-b'): GenesisIssuer => {
    const validator = base.ca.validators[name]!;
    return {
      certificate: validator.issuer.certificate,
      privateKey: validator.keys.ecdsa.privateKey,
    };
  };
  const issue = (name: 'val-a' | 'val-b', role: 'validator' | 'client', keys: NodeIdentityKeys) =>
    issueGenesisCertificate({
      issuer: issuerOf(name),
      chainId: CLUSTER,
      role,
      name: role === 'client' ? 'operator' : name,
      keys,
      validityDays: 30,
      now: new Date(BLOCK_TIME),
    })[0]!;
  const entry = (issuer: string, der: Uint8Array): Entry => ({
    issuer,
    account: toHex(owner.publicKey),
    certificate: toBase64(der),
  });
  const rejects = async (list: Entry[], pattern: RegExp): Promise<void> => {
    await assert.rejects(
      createCaFixture({ genesisCertificates: list }, base.ca),
      (error: unknown) => error instanceof CaGenesisError && pattern.test(error.message),
    );
  };

  before(async () => {
    base = await createCaFixture();
    identities = [
      await generateNodeIdentity(base.ca.falcon),
      await generateNodeIdentity(base.ca.falcon),
      await generateNodeIdentity(base.ca.falcon),
    ];
    ders = [
      issue('val-a', 'validator', identities[0]!),
      issue('val-b', 'validator', identities[1]!),
      issue('val-a', 'client', identities[2]!),
    ];
    entries = [entry('val-a', ders[0]!), entry('val-b', ders[1]!), entry('val-a', ders[2]!)];
  });

  it('config: parsed in order; absent means none', async () => {
    assert.deepEqual(base.config.genesisCertificates, []);
    const fixture = await createCaFixture({ genesisCertificates: entries }, base.ca);
    const parsed = fixture.config.genesisCertificates;
    assert.deepEqual(
      parsed.map((c) => c.issuer),
      ['val-a', 'val-b', 'val-a'],
    );
    assert.deepEqual(
      parsed.map((c) => c.der),
      ders,
    );
    assert.ok(
      parsed.every((c) => c.serial.length === 16 && toHex(c.account) === entries[0]!.account),
    );
  });

  it('config: refuses bad DER, unknown issuer, wrong signer, duplicate serial, CA certificate, too many', async () => {
    await rejects(
      [entries[0]!, { ...entries[1]!, certificate: toBase64(randomBytes(64)) }],
      /genesisCertificates\[1\]\.certificate is not a DER X\.509/,
    );
    await rejects(
      [{ ...entries[0]!, certificate: 'not base64!' }],
      /genesisCertificates\[0\]\.certificate is not canonical/,
    );
    await rejects(
      [{ ...entries[0]!, issuer: 'val-z' }],
      /genesisCertificates\[0\]\.issuer "val-z" has no genesis intermediate/,
    );
    await rejects(
      [entries[0]!, { ...entries[1]!, issuer: 'val-a' }],
      /genesisCertificates\[1\]: the certificate is not signed by val-a's intermediate/,
    );
    await rejects(
      [entries[0]!, entries[1]!, entries[0]!],
      /genesisCertificates\[2\]: serial [0-9a-f]{32} is also the serial of genesisCertificates\[0\]/,
    );
    // A CA certificate signed by val-a's intermediate.
    const issuer = base.ca.validators['val-a']!.issuer;
    const tbs = buildTbs({
      serial: Uint8Array.from([0x11, ...randomBytes(15)]),
      issuerName: issuer.subjectName,
      notBefore: new Date(Math.floor(BLOCK_TIME / 1000) * 1000),
      notAfter: new Date(Math.floor(BLOCK_TIME / 1000) * 1000 + 86_400_000),
      subjectName: encodeName([
        ['CN', 'sub-ca'],
        ['O', CLUSTER],
      ]),
      subjectPublicKeyInfo: new Uint8Array(
        createPublicKey(generateKey('p256')).export({ format: 'der', type: 'spki' }),
      ),
      extensions: [basicConstraints(true), keyUsage([KeyUsageBit.keyCertSign])],
    });
    const subCa = assembleCertificate(
      tbs,
      createRandomizedSigner(base.ca.validators['val-a']!.keys.ecdsa.privateKey).sign(tbs),
    );
    await rejects(
      [entry('val-a', subCa)],
      /genesisCertificates\[0\]: a CA certificate cannot be a genesis bootstrap certificate/,
    );
    await rejects(
      Array.from({ length: MAX_GENESIS_CERTIFICATES + 1 }, () => entries[0]!),
      /genesisCertificates/,
    );
  });

  describe('state', () => {
    let fixture: CaFixture;
    let node: CaNode;

    before(async () => {
      fixture = await createCaFixture({ genesisCertificates: entries }, base.ca);
      node = await fixture.openCaNode();
    });
    after(() => node.close());

    it('caInitialState: records and a tree head over the RFC 6962 leaves', () => {
      const written = caInitialState(fixture.config, GENESIS_TIME);
      // Per certificate: its record and its owner; then ca/pub/1 and ca/ct/head.
      assert.equal(written.length, 2 * ders.length + 2);
      assert.deepEqual(caInitialState(base.config, GENESIS_TIME), []);
      const keys = written.map((e) => toHex(e.key));
      assert.equal(new Set(keys).size, keys.length);
      assert.ok(keys.every((key) => key.startsWith(toHex(caStateKey(new Uint8Array(0))))));
    });

    it('block 1 writes them: published at height 1, logged, same root on every node', async () => {
      const other = await fixture.openCaNode();
      const { operator } = fixture;
      // Block 1 also holds a request: its batch must not touch the genesis records.
      const request = caTx(
        operator,
        caRequestBody({
          profile: 'service',
          csr: createCsr({ privateKey: generateKey('p256') }),
          dnsNames: [`one.${GRANTED_ZONE}`],
        }),
      );
      const input = node.input([request]);
      const first = node.node.app.executeBlock(input);
      const second = other.node.app.executeBlock(input);
      assert.deepEqual(first.stateRoot, second.stateRoot);
      await other.close();
      node.node.commit(first);
      assert.equal(first.txResults[0]?.code, 0, first.txResults[0]?.log);

      const state = node.state();
      for (const [index, c] of fixture.config.genesisCertificates.entries()) {
        const record = state.certificate(c.serial);
        assert.ok(record !== null);
        assert.deepEqual(record.der, ders[index]);
        assert.equal(record.issuer, c.issuer);
        assert.equal(record.publishedAt, 1);
        assert.deepEqual(record.txHash, sha256(c.der));
        assert.equal(state.issuanceTx(c.serial), null, 'no transaction issued it');
        assert.deepEqual(state.genesisCertificate(c.serial)?.account, owner.publicKey);
      }
      const published = state.published(1);
      assert.equal(published?.time, GENESIS_TIME);
      assert.deepEqual(
        published?.serials,
        fixture.config.genesisCertificates.map((c) => c.serial),
      );
      const leaves = ders.map((der) =>
        leafHash(
          encodeMerkleTreeLeaf({
            timestamp: GENESIS_TIME,
            entry: { type: 'x509', certificate: der },
          }),
        ),
      );
      const head = state.treeHead();
      assert.equal(head.range.size, 3);
      assert.equal(head.height, 1);
      assert.equal(head.time, GENESIS_TIME);
      assert.deepEqual(treeHeadRoot(head), rootFromLeafHashes(leaves));

      // Block 2 publishes block 1's certificate after them.
      const { tx, certificates } = await publication(fixture, node, 1, 'val-a');
      const block2 = node.block([publishTx(fixture, 'val-a', tx)]);
      assert.equal(block2.txResults[0]?.code, 0, block2.txResults[0]?.log);
      const time2 = BLOCK_TIME + 2 * 1000;
      const after2 = node.state().treeHead();
      assert.equal(after2.range.size, 4);
      assert.deepEqual(
        treeHeadRoot(after2),
        rootFromLeafHashes([
          ...leaves,
          leafHash(
            encodeMerkleTreeLeaf({
              timestamp: time2,
              entry: { type: 'x509', certificate: certificates[0]! },
            }),
          ),
        ]),
      );
      assert.deepEqual(node.state().published(1), published);
    });

    it('revocation: the entry account or the subject key; nobody else; no renewal without a request', () => {
      const [nodeA, nodeB, client] = fixture.config.genesisCertificates;
      const stranger = makeSender();
      assertRefused(
        node.block([caTx(stranger, caRevokeBody(nodeA!.serial, 1))]).txResults[0]!,
        CaModuleErrorCode.NOT_AUTHORIZED,
      );
      // Another certificate's key is no proof for this one.
      const wrongKey = signRevocation(
        identities[1]!.ed25519.privateKey,
        CHAIN_ID,
        nodeA!.serial,
        1,
      );
      assertRefused(
        node.block([caTx(stranger, caRevokeBody(nodeA!.serial, 1, wrongKey))]).txResults[0]!,
        CaModuleErrorCode.NOT_AUTHORIZED,
      );
      // A genesis certificate has no committed request: a renew must carry one
      // (genesis-renewal.test.ts).
      assertRefused(
        node.block([caTx(owner, caRenewBody(client!.serial))]).txResults[0]!,
        CaModuleErrorCode.RENEWAL_MISMATCH,
      );
      assert.equal(node.state().revocation(nodeA!.serial), null);

      const byOwner = node.block([caTx(owner, caRevokeBody(client!.serial, 1))]);
      assert.equal(byOwner.txResults[0]?.code, 0, byOwner.txResults[0]?.log);
      const proof = signRevocation(identities[1]!.ed25519.privateKey, CHAIN_ID, nodeB!.serial, 4);
      const byKey = node.block([caTx(stranger, caRevokeBody(nodeB!.serial, 4, proof))]);
      assert.equal(byKey.txResults[0]?.code, 0, byKey.txResults[0]?.log);

      assert.equal(node.state().revocation(client!.serial)?.reason, 1);
      assert.equal(node.state().revocation(nodeB!.serial)?.reason, 4);
      // STOQ's revocation check (ca-service.ts) refuses the revoked ones, accepts the other.
      const stoq = createCaStoqTrust({
        ca: fixture.config,
        state: { get: (key) => node.node.store.state.get(key) },
      });
      const intermediate = (name: string) =>
        parseCertificate(fixture.ca.validators[name]!.issuer.certificate);
      const answer = (c: typeof nodeA) =>
        stoq.revocation({
          certificate: parseCertificate(c!.der),
          issuer: intermediate(c!.issuer),
          depth: 0,
        });
      assert.deepEqual(answer(nodeB), { status: 'revoked', reason: 'superseded' });
      assert.deepEqual(answer(client), { status: 'revoked', reason: 'keyCompromise' });
      assert.equal(answer(nodeA), 'good');
      // What each intermediate's CRL lists.
      assert.deepEqual(node.state().revokedBy('val-a'), [client!.serial]);
      assert.deepEqual(node.state().revokedBy('val-b'), [nodeB!.serial]);
      assertRefused(
        node.block([caTx(owner, caRevokeBody(client!.serial, 0))]).txResults[0]!,
        CaModuleErrorCode.REVOKED,
      );
    });
  });
});
