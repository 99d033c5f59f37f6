import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { toHex } from '../../../src/crypto/bytes.js';
import { splitCertificate, withoutExtension } from '../../../src/trustchain/ca/certificate.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { BATCH_INCLUSION_OID } from '../../../src/trustchain/ca/extensions.js';
import { verifyIssuedCertificate } from '../../../src/trustchain/ca/verify.js';
import {
  CaModuleErrorCode,
  CaPublicationError,
  MAX_BATCH_CERTIFICATES,
  MAX_PENDING_BATCHES,
  caRenewBody,
  caRequestBody,
  caRevokeBody,
  encodeCaBody,
  findPublishedCertificate,
  signRevocation,
  type CaPublishTx,
} from '../../../src/trustchain/ca-module/index.js';
import { Mempool } from '../../../src/consensus/mempool.js';
import { makeSender } from '../../consensus/application/fixture.js';
import { BLOCK_TIME, CLUSTER, generateKey } from '../ca/fixtures.js';
import {
  GRANTED_ZONE,
  caTry,
  caTx,
  createCaFixture,
  publication,
  publishTx,
  type CaFixture,
  type CaNode,
  assertRefused,
  resultOf,
} from './fixture.js';

const NOW = new Date(BLOCK_TIME + 3_600_000);

function serviceBody(names: readonly string[], key = generateKey('p256')): Uint8Array {
  return caRequestBody({
    profile: 'service',
    csr: createCsr({ privateKey: key }),
    dnsNames: names,
  });
}

function refusedWith(code: CaModuleErrorCode) {
  return (result: { code: number; log: string }): void => assertRefused(result, code);
}

describe('ca module', () => {
  let fixture: CaFixture;
  let node: CaNode;

  before(async () => {
    fixture = await createCaFixture();
  });

  after(async () => {
    await node?.close();
  });

  it('admission: policy and stateless checks refuse at checkTx', async () => {
    node = await fixture.openCaNode();
    const { operator } = fixture;
    const stranger = makeSender();
    const granted = node.node.app.checkTx(caTry(operator, serviceBody([`www.${GRANTED_ZONE}`])));
    assert.equal(granted.ok, true, JSON.stringify(granted));
    const outside = node.node.app.checkTx(caTry(operator, serviceBody(['www.other.org'])));
    assert.equal(outside.ok, false);
    assert.equal(!outside.ok && outside.code, CaModuleErrorCode.POLICY_REFUSED);
    assert.match(!outside.ok ? outside.message : '', /name_not_allowed/);
    const noGrant = node.node.app.checkTx(caTry(stranger, serviceBody([`www.${GRANTED_ZONE}`])));
    assert.equal(!noGrant.ok && noGrant.code, CaModuleErrorCode.POLICY_REFUSED);

    // Any account: a client certificate for a SPIFFE ID under its own account prefix only.
    const own = `spiffe://${CLUSTER}/account/${toHex(stranger.publicKey)}/svc`;
    const other = `spiffe://${CLUSTER}/account/${toHex(operator.publicKey)}/svc`;
    const clientBody = (uri: string) =>
      caRequestBody({
        profile: 'client',
        csr: createCsr({ privateKey: generateKey('ed25519') }),
        uris: [uri],
      });
    assert.equal(node.node.app.checkTx(caTry(stranger, clientBody(own))).ok, true);
    const foreign = node.node.app.checkTx(caTry(stranger, clientBody(other)));
    assert.equal(!foreign.ok && foreign.code, CaModuleErrorCode.POLICY_REFUSED);

    // A CSR whose signature does not verify: refused before any policy.
    const csr = createCsr({ privateKey: generateKey('p256') });
    csr[csr.length - 5] = (csr[csr.length - 5] as number) ^ 0xff;
    const { encodeCanonical } = await import('../../../src/codec/cbor.js');
    const tampered = encodeCanonical({
      v: 1,
      profile: 'service',
      csr,
      dns: [`a.${GRANTED_ZONE}`],
      ip: [],
      uri: [],
    });
    const bad = node.node.app.checkTx(
      caTry(operator, encodeCaBody({ op: 'request', request: tampered })),
    );
    assert.equal(!bad.ok && bad.code, CaModuleErrorCode.INVALID_REQUEST);
    // Too long a lifetime for the profile.
    const long = caRequestBody({
      profile: 'service',
      csr: createCsr({ privateKey: generateKey('p256') }),
      dnsNames: [`b.${GRANTED_ZONE}`],
      lifetimeSeconds: 8 * 86_400,
    });
    const tooLong = node.node.app.checkTx(caTry(operator, long));
    assert.match(!tooLong.ok ? tooLong.message : '', /lifetime_too_long/);
  });

  it('requests committed in block h are published by the next block with valid certificates', async () => {
    const { operator } = fixture;
    const key = generateKey('p256');
    const requestTx = caTx(
      operator,
      serviceBody([`api.${GRANTED_ZONE}`, `*.${GRANTED_ZONE}`], key),
    );
    const committed = node.block([requestTx], 'val-b');
    assert.equal(resultOf(committed).code, 0, resultOf(committed).log);
    const h = node.node.store.blocks.latestHeight() as number;
    assert.deepEqual(node.state().pending(), [h]);
    assert.equal(node.state().batch(h)?.first, 1, 'the rotation starts at the proposer (val-b)');

    // val-a's turn has not come yet: refused (not a fault).
    const early = await publication(fixture, node, h, 'val-a');
    const earlyResult = node.node.app.executeBlock(
      node.input([publishTx(fixture, 'val-a', early.tx, { commit: false })]),
    );
    refusedWith(CaModuleErrorCode.NOT_ISSUER)(resultOf(earlyResult));

    const { tx, certificates } = await publication(fixture, node, h, 'val-b');
    const published = node.block([publishTx(fixture, 'val-b', tx)]);
    assert.equal(resultOf(published).code, 0, resultOf(published).log);
    assert.deepEqual(node.state().pending(), []);
    const status = await findPublishedCertificate(
      (q) => node.node.app.query(q),
      committedHash(committed),
    );
    assert.equal(status.status, 'published');
    assert.ok(status.status === 'published');
    assert.deepEqual(status.certificate, certificates[0]);
    assert.equal(status.issuer, 'val-b');
    const verified = verifyIssuedCertificate(status.certificate, fixture.ca.bundle, {
      now: NOW,
      purpose: 'serverAuth',
    });
    assert.equal(verified.validator, 'val-b');
    const pub = node.state().published(h + 1);
    assert.deepEqual(pub?.serials, [status.serial]);
  });

  it('an invalid publication is a fault: left out by the proposer, refused by validators', async () => {
    const { operator } = fixture;
    node.block([
      caTx(operator, serviceBody([`x.${GRANTED_ZONE}`])),
      caTx(operator, serviceBody([`y.${GRANTED_ZONE}`])),
    ]);
    const h = node.node.store.blocks.latestHeight() as number;
    const { tx } = await publication(fixture, node, h, 'val-a');
    // Swap the two certificates' signatures: each is a valid signature, of the other TBS.
    const swapped: CaPublishTx = { ...tx, signatures: [tx.signatures[1]!, tx.signatures[0]!] };
    const wrong = publishTx(fixture, 'val-a', swapped, { commit: false });
    const admitted = node.node.app.checkTx(wrong);
    assert.equal(admitted.ok, false);
    assert.match(!admitted.ok ? admitted.message : '', /CA_PUBLICATION_INVALID/);
    assert.throws(
      () => node.node.app.executeBlock(node.input([wrong])),
      (error: unknown) => error instanceof CaPublicationError,
    );
    const proposal = node.node.app.prepareProposal({ ...node.input([]) }, [wrong], 1_000_000);
    assert.equal(proposal.transactions.length, 0);
    // A publication with one signature missing, and one with another batch signature, too.
    const short = publishTx(
      fixture,
      'val-a',
      { ...tx, signatures: [tx.signatures[0]!] },
      { commit: false },
    );
    assert.throws(() => node.node.app.executeBlock(node.input([short])), CaPublicationError);
    const other = await publication(fixture, node, h, 'val-b');
    const foreignBatch = publishTx(
      fixture,
      'val-a',
      { ...tx, batch: other.tx.batch },
      { commit: false },
    );
    assert.throws(() => node.node.app.executeBlock(node.input([foreignBatch])), CaPublicationError);
    const good = node.block([publishTx(fixture, 'val-a', tx)]);
    assert.equal(resultOf(good).code, 0, resultOf(good).log);
    // Published once: a second publication is refused (not pending).
    const again = node.node.app.executeBlock(
      node.input([publishTx(fixture, 'val-a', tx, { commit: false })]),
    );
    refusedWith(CaModuleErrorCode.NOT_PENDING)(resultOf(again));
  });

  it('when the first issuer does not publish, the next one may after the window', async () => {
    const { operator } = fixture;
    node.block([caTx(operator, serviceBody([`late.${GRANTED_ZONE}`]))], 'val-a');
    const h = node.node.store.blocks.latestHeight() as number;
    const byB = await publication(fixture, node, h, 'val-b');
    // Heights h+1 .. h+3: only val-a (window 3).
    const refused = node.node.app.executeBlock(
      node.input([publishTx(fixture, 'val-b', byB.tx, { commit: false })]),
    );
    refusedWith(CaModuleErrorCode.NOT_ISSUER)(resultOf(refused));
    node.block([]);
    node.block([]);
    node.block([]);
    const published = node.block([publishTx(fixture, 'val-b', byB.tx)]);
    assert.equal(resultOf(published).code, 0, resultOf(published).log);
  });

  it('revoke: by the requesting account or with the subject key; renew: a new certificate', async () => {
    const { operator } = fixture;
    const stranger = makeSender();
    const keys = [generateKey('p256'), generateKey('ed25519'), generateKey('p256')];
    const requests = keys.map((key, i) =>
      caTx(operator, serviceBody([`r${i}.${GRANTED_ZONE}`], key)),
    );
    const committed = node.block(requests);
    const h = node.node.store.blocks.latestHeight() as number;
    const { tx } = await publication(fixture, node, h, 'val-a');
    node.block([publishTx(fixture, 'val-a', tx)]);
    const serials = committed.txResults.map((r) => node.state().issuance(r.txHash)!.serial);

    // A stranger without a proof, or with a proof by another key: refused.
    const noProof = node.block([caTx(stranger, caRevokeBody(serials[0]!, 1))]);
    refusedWith(CaModuleErrorCode.NOT_AUTHORIZED)(resultOf(noProof));
    const wrongKey = signRevocation(keys[2]!, 'test-chain', serials[0]!, 1);
    const forged = node.block([caTx(stranger, caRevokeBody(serials[0]!, 1, wrongKey))]);
    refusedWith(CaModuleErrorCode.NOT_AUTHORIZED)(resultOf(forged));
    const badReason = node.block([caTx(operator, caRevokeBody(serials[0]!, 6))]);
    refusedWith(CaModuleErrorCode.BAD_REASON)(resultOf(badReason));

    // The subject key holders (P-256, Ed25519) and the requesting account may.
    const byKey = node.block([
      caTx(
        stranger,
        caRevokeBody(serials[0]!, 1, signRevocation(keys[0]!, 'test-chain', serials[0]!, 1)),
      ),
      caTx(
        stranger,
        caRevokeBody(serials[1]!, 4, signRevocation(keys[1]!, 'test-chain', serials[1]!, 4)),
      ),
    ]);
    assert.deepEqual(
      byKey.txResults.map((r) => r.code),
      [0, 0],
    );
    assert.equal(node.state().revocation(serials[0]!)?.reason, 1);
    // What val-a's CRL lists: the serials its intermediate issued and that are revoked.
    assert.deepEqual(node.state().revokedBy('val-a'), [serials[0], serials[1]]);
    assert.deepEqual(node.state().revokedBy('val-b'), []);
    const twice = node.block([caTx(operator, caRevokeBody(serials[0]!, 0))]);
    refusedWith(CaModuleErrorCode.REVOKED)(resultOf(twice));

    // Renewal: only the requester, only unrevoked; same key and names, new serial.
    refusedWith(CaModuleErrorCode.NOT_AUTHORIZED)(
      resultOf(node.block([caTx(stranger, caRenewBody(serials[2]!))])),
    );
    refusedWith(CaModuleErrorCode.REVOKED)(
      resultOf(node.block([caTx(operator, caRenewBody(serials[1]!))])),
    );
    const renewed = node.block([caTx(operator, caRenewBody(serials[2]!, 7200))]);
    assert.equal(resultOf(renewed).code, 0, resultOf(renewed).log);
    const renewal = node.state().issuance(renewed.txResults[0]!.txHash)!;
    assert.deepEqual(renewal.renews, serials[2]);
    assert.equal(renewal.lifetimeSeconds, 7200);
    const h2 = node.node.store.blocks.latestHeight() as number;
    const second = await publication(fixture, node, h2, 'val-a');
    node.block([publishTx(fixture, 'val-a', second.tx)]);
    const old = node.state().certificate(serials[2]!)!;
    const fresh = node.state().certificate(renewal.serial)!;
    const { parseCertificate } = await import('../../../src/crypto/x509.js');
    assert.deepEqual(parseCertificate(fresh.der).dnsNames, parseCertificate(old.der).dnsNames);
    assert.ok(parseCertificate(fresh.der).publicKey.equals(parseCertificate(old.der).publicKey));
    verifyIssuedCertificate(fresh.der, fixture.ca.bundle, { now: NOW, purpose: 'serverAuth' });
  });

  it('rate limit: an account gets at most max issuances per window (at execution)', async () => {
    const limited = await createCaFixture({ rateLimit: { max: 2, windowSeconds: 3600 } });
    const fresh = await limited.openCaNode();
    try {
      const { operator } = limited;
      const result = fresh.block(
        [1, 2, 3].map((i) => caTx(operator, serviceBody([`n${i}.${GRANTED_ZONE}`]))),
      );
      assert.deepEqual(
        result.txResults.slice(0, 2).map((r) => r.code),
        [0, 0],
      );
      refusedWith(CaModuleErrorCode.RATE_LIMITED)(result.txResults[2]!);
    } finally {
      await fresh.close();
    }
  });

  it('rate limit at admission: a used-up window is refused before the mempool, nothing written or counted twice', async () => {
    const windowSeconds = 3600;
    const limited = await createCaFixture({ rateLimit: { max: 2, windowSeconds } });
    const fresh = await limited.openCaNode();
    try {
      const { operator } = limited;
      const issued = fresh.block(
        [1, 2].map((i) => caTx(operator, serviceBody([`n${i}.${GRANTED_ZONE}`]))),
      );
      assert.deepEqual(
        issued.txResults.map((r) => r.code),
        [0, 0],
      );
      const window = fresh.state().rateWindow(operator.publicKey);
      assert.equal(window?.count, 2);
      const windowEnd = window.start + windowSeconds;
      const rootBefore = fresh.node.store.state.root();
      const mempool = new Mempool(fresh.node.app);
      const third = caTry(operator, serviceBody([`n3.${GRANTED_ZONE}`]));
      const admission = mempool.add(third);
      assert.equal(!admission.ok && admission.code, CaModuleErrorCode.RATE_LIMITED);
      assert.match(
        !admission.ok ? admission.message : '',
        new RegExp(
          `issuance rate limit reached: 2 of 2 in the window ending ${new Date(windowEnd * 1000).toISOString()}`,
        ),
      );
      assert.equal(mempool.size(), 0);
      assert.equal(mempool.stats().rejected[CaModuleErrorCode.RATE_LIMITED], 1);
      // Nothing written, and the refusal does not count as an issuance.
      assert.deepEqual(fresh.node.store.state.root(), rootBefore);
      assert.deepEqual(fresh.state().rateWindow(operator.publicKey), window);
      // Another account is admitted.
      const stranger = makeSender();
      const own = caRequestBody({
        profile: 'client',
        csr: createCsr({ privateKey: generateKey('ed25519') }),
        uris: [`spiffe://${CLUSTER}/account/${toHex(stranger.publicKey)}/svc`],
      });
      const admitted = mempool.add(caTry(stranger, own));
      assert.equal(admitted.ok, true, JSON.stringify(admitted));
      // In a block the request is refused as before (execution keeps its own check), once.
      refusedWith(CaModuleErrorCode.RATE_LIMITED)(fresh.block([third]).txResults[0]!);
      assert.deepEqual(fresh.state().rateWindow(operator.publicKey), window);
    } finally {
      await fresh.close();
    }
  });

  it('rate limit at admission: once a block opens a new window, the account is admitted again', async () => {
    const limited = await createCaFixture({ rateLimit: { max: 1, windowSeconds: 5 } });
    const fresh = await limited.openCaNode();
    try {
      const { operator } = limited;
      assert.equal(
        fresh.block([caTx(operator, serviceBody([`a.${GRANTED_ZONE}`]))]).txResults[0]!.code,
        0,
      );
      const next = () => caTry(operator, serviceBody([`b.${GRANTED_ZONE}`]));
      const refused = fresh.node.app.checkTx(next());
      assert.equal(!refused.ok && refused.code, CaModuleErrorCode.RATE_LIMITED);
      const start = fresh.state().rateWindowStart();
      // Empty blocks, one second apart, until one lies in the next window.
      for (let i = 0; i < 5 && fresh.state().rateWindowStart() === start; i++) fresh.block([]);
      assert.equal(fresh.state().rateWindowStart(), (start as number) + 5);
      const admitted = fresh.node.app.checkTx(next());
      assert.equal(admitted.ok, true, JSON.stringify(admitted));
    } finally {
      await fresh.close();
    }
  });

  it('capacity: a proposal holds MAX_BATCH_CERTIFICATES requests, the rest wait for the next block', async () => {
    const roomy = await createCaFixture({ rateLimit: { max: 10_000, windowSeconds: 3600 } });
    const fresh = await roomy.openCaNode();
    try {
      const { operator } = roomy;
      const extra = 2;
      // One key each: a key may have at most MAX_CERTIFICATES_PER_KEY live certificates.
      const requests = Array.from({ length: MAX_BATCH_CERTIFICATES + extra }, (_, i) =>
        caTx(operator, serviceBody([`cap${i}.${GRANTED_ZONE}`], generateKey('p256'))),
      );
      const app = fresh.node.app;
      // A block some proposer made with one too many: the last is refused at execution.
      const overfull = app.executeBlock(fresh.input(requests.slice(0, MAX_BATCH_CERTIFICATES + 1)));
      refusedWith(CaModuleErrorCode.BLOCK_FULL)(overfull.txResults[MAX_BATCH_CERTIFICATES]!);

      const proposal = app.prepareProposal(fresh.input([]), requests, 1 << 24);
      assert.deepEqual(proposal.transactions, requests.slice(0, MAX_BATCH_CERTIFICATES));
      assert.ok(proposal.result.txResults.every((result) => result.code === 0));
      const height = fresh.node.commit(proposal.result);
      assert.equal(fresh.state().batch(height)!.items.length, MAX_BATCH_CERTIFICATES);
      // The left-out requests used no sequence: they are the next block's.
      const next = app.prepareProposal(fresh.input([]), requests, 1 << 24);
      assert.deepEqual(next.transactions, requests.slice(MAX_BATCH_CERTIFICATES));
      assert.ok(next.result.txResults.every((result) => result.code === 0));
    } finally {
      await fresh.close();
    }
  });

  it('capacity: with MAX_PENDING_BATCHES blocks unpublished, a request is admitted and waits', async () => {
    const roomy = await createCaFixture({ rateLimit: { max: 10_000, windowSeconds: 3600 } });
    const fresh = await roomy.openCaNode();
    try {
      const { operator } = roomy;
      const key = generateKey('p256');
      const request = (i: number) => caTx(operator, serviceBody([`b${i}.${GRANTED_ZONE}`], key));
      for (let i = 0; i < MAX_PENDING_BATCHES; i++) {
        assert.equal(resultOf(fresh.block([request(i)])).code, 0);
      }
      assert.equal(fresh.state().pending().length, MAX_PENDING_BATCHES);
      const waiting = request(MAX_PENDING_BATCHES);
      const app = fresh.node.app;
      assert.ok(app.checkTx(waiting).ok, "admitted: the backlog is not the request's fault");
      const proposal = app.prepareProposal(fresh.input([]), [waiting], 1 << 20);
      assert.deepEqual(proposal.transactions, [], 'left out until an issuer publishes');
      // A block some proposer made with it: refused at execution, as before.
      refusedWith(CaModuleErrorCode.BACKLOG)(resultOf(app.executeBlock(fresh.input([waiting]))));
    } finally {
      await fresh.close();
    }
  });

  it('determinism: two nodes reach the same roots, publication gives every node the same certificates', async () => {
    const [a, b] = [await fixture.openCaNode(), await fixture.openCaNode()];
    try {
      const { operator } = fixture;
      const saved = operator.sequence;
      operator.sequence = 0;
      const requests = [0, 1, 2].map((i) => caTx(operator, serviceBody([`d${i}.${GRANTED_ZONE}`])));
      const ra = a.block(requests);
      const rb = b.block(requests);
      assert.deepEqual(ra.stateRoot, rb.stateRoot);
      const h = a.node.store.blocks.latestHeight() as number;
      const first = await publication(fixture, a, h, 'val-a');
      const second = await publication(fixture, b, h, 'val-a');
      // FALCON signatures are randomized, so two signing runs differ in the embedded batch
      // signature; the leaves (everything else) are the same.
      const leaves = (certificates: readonly Uint8Array[]) =>
        certificates.map((der) => withoutExtension(splitCertificate(der).tbs, BATCH_INCLUSION_OID));
      assert.deepEqual(leaves(second.certificates), leaves(first.certificates));
      const saveA = fixture.validators['val-a'].sequence;
      fixture.validators['val-a'].sequence = 0;
      const publish = publishTx(fixture, 'val-a', first.tx);
      fixture.validators['val-a'].sequence = saveA;
      const pa = a.block([publish]);
      const pb = b.block([publish]);
      assert.equal(resultOf(pa).code, 0, resultOf(pa).log);
      assert.deepEqual(pa.stateRoot, pb.stateRoot);
      // Every node stores exactly the issuer's certificates, rebuilt from the signatures.
      const serials = ra.txResults.map((r) => a.state().issuance(r.txHash)!.serial);
      assert.deepEqual(
        serials.map((serial) => b.state().certificate(serial)!.der),
        first.certificates,
      );
      operator.sequence = saved;
    } finally {
      await a.close();
      await b.close();
    }
  });
});

function committedHash(result: { txResults: readonly { txHash: Uint8Array }[] }): Uint8Array {
  return result.txResults[0]!.txHash;
}
