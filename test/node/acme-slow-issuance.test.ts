import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { ed25519RawPublicKey } from '../../src/crypto/ed25519.js';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import {
  SEQUENCE_QUERY,
  TX_RESULT_QUERY,
  decodeTransaction,
} from '../../src/consensus/application/index.js';
import { encodeRecordedTxResult } from '../../src/consensus/application/tx-results.js';
import type { QueryRequest, QueryResponse } from '../../src/consensus/app.js';
import { encodeCanonical } from '../../src/codec/cbor.js';
import { derToPem, pemToDer } from '../../src/crypto/x509.js';
import type { TxtResolver } from '../../src/faces/acme/dns-resolver.js';
import type { AcmeIssueRequest } from '../../src/faces/acme/issuer.js';
import { jwkThumbprint } from '../../src/faces/acme/jws.js';
import type { ResumingAcmeIssuer } from '../../src/faces/acme/service.js';
import { dns01TxtValue, keyAuthorization } from '../../src/faces/acme/validation.js';
import { ConsensusAcmeIssuer, type AcmeSubmitResult } from '../../src/node/acme-issuer.js';
import {
  encodeStateProof,
  stateKeyHash,
  stateLeafHash,
  stateValueHash,
} from '../../src/storage/state-proof.js';
import { caQuery } from '../../src/trustchain/ca-module/client.js';
import {
  caStateKey,
  certificateKey,
  encodeCertificateRecord,
  encodeIssuance,
  requestKey,
} from '../../src/trustchain/ca-module/state.js';
import {
  ADDED_INTERMEDIATES_KEY,
  addedIntermediateKey,
  encodeAddedIntermediate,
  type AddedIntermediateRecord,
} from '../../src/trustchain/ca-module/intermediates.js';
import { createCsr } from '../../src/trustchain/ca/csr.js';
import {
  createValidatorCaRequest,
  issueValidatorIntermediate,
  loadRootSigningKeys,
} from '../../src/trustchain/ca/hierarchy.js';
import { waitForCondition } from '../helpers/wait.js';
import {
  PROBLEM,
  RawAcmeClient,
  createTestPki,
  generateAccountKey,
  publicJwk,
  startTestAcme,
  type RunningAcme,
  type TestPki,
} from '../faces/acme/fixtures.js';

/**
 * A slow issuance (docs/acme.md, "In the node"): when the issuer's wait runs out while the
 * order's `ca/request` is still in the mempool, the order stays `processing` with its issuance
 * record, and a later poll finishes it once the certificate is published — no second request is
 * sent. Only a refusal (or a transaction that left the mempool uncommitted) fails the order.
 * With no poll at all, the node's next commits finish it in the background (`onResumable`). A
 * certificate published by an intermediate added after genesis gets that intermediate as its
 * chain; one whose issuer is in no bundle in effect, or whose reads keep failing, fails the
 * order instead of leaving it `processing`.
 * The node is faked at its reads: the mempool, the transaction results and the `ca` state
 * (answers carry proofs rooted at roots of their own, which a node's own reads accept).
 */

const WAIT_MS = 20_000;
const ISSUE_TIMEOUT_MS = 100;

/** An answer proving `value` at the module-relative `key` in a one-key state. */
function oneLeafAnswer(key: Uint8Array, value: Uint8Array, height: number): QueryResponse {
  const leaf = { keyHash: stateKeyHash(caStateKey(key)), valueHash: stateValueHash(value) };
  const root = stateLeafHash(leaf.keyHash, leaf.valueHash);
  return { height, value, stateRoot: root, proof: encodeStateProof({ siblings: [], leaf }) };
}

/** An answer proving `key` absent: the one-key state holds another key. */
function absentAnswer(height: number): QueryResponse {
  const other = oneLeafAnswer(new Uint8Array([0xff]), new Uint8Array([1]), height);
  return { ...other, value: null };
}

/** What the fake node knows of one `ca/request` transaction. */
interface FakeTx {
  result?: { code: number; log: string };
  /** `issuer`: the intermediate's name in the certificate record (default `local`). */
  published?: { serial: Uint8Array; der: Uint8Array; issuer?: string };
  /** Applied (its issuance record is in the CA state) but not published yet. */
  applied?: { serial: Uint8Array };
}

class FakeNode extends EventEmitter {
  readonly txs = new Map<string, FakeTx>();
  readonly submitted: Uint8Array[] = [];
  readonly height = 5;
  /** Intermediates added after genesis (`ca/ints`, `ca/int/<name>`). */
  readonly added: AddedIntermediateRecord[] = [];
  /** While set, every read throws, as a node's store that is busy or closing. */
  failing = false;
  /**
   * While set, the node has just restarted: its recent transaction results and its mempool are
   * empty (neither is kept), while the CA state still holds what was committed.
   */
  restarted = false;

  query = (request: QueryRequest): QueryResponse => {
    if (this.failing) throw new Error('the state store is busy');
    const hex = Buffer.from(request.data).toString('hex');
    const plain = (value: Uint8Array | null): QueryResponse => ({
      value,
      height: this.height,
      stateRoot: new Uint8Array(32),
    });
    if (request.path === SEQUENCE_QUERY) return plain(null);
    if (request.path === TX_RESULT_QUERY) {
      const result = this.restarted ? undefined : this.txs.get(hex)?.result;
      return plain(
        result === undefined
          ? null
          : encodeRecordedTxResult({ height: this.height, index: 0, ...result }),
      );
    }
    if (request.path === caQuery('request', request.data).path) {
      const known = this.txs.get(hex);
      const published = known?.published ?? known?.applied;
      if (published === undefined) return absentAnswer(this.height);
      const issuance = encodeIssuance({
        account: new Uint8Array(32).fill(3),
        request: new Uint8Array([1]),
        height: this.height,
        lifetimeSeconds: 86_400,
        serial: published.serial,
        renews: null,
        validatedAt: null,
      });
      return oneLeafAnswer(requestKey(request.data), issuance, this.height);
    }
    if (request.path === caQuery('certificate', request.data).path) {
      for (const [txHex, tx] of this.txs) {
        if (tx.published === undefined) continue;
        if (Buffer.from(tx.published.serial).toString('hex') !== hex) continue;
        const record = encodeCertificateRecord({
          der: tx.published.der,
          txHash: Buffer.from(txHex, 'hex'),
          issuer: tx.published.issuer ?? 'local',
          publishedAt: this.height,
        });
        return oneLeafAnswer(certificateKey(request.data), record, request.height ?? this.height);
      }
      return absentAnswer(request.height ?? this.height);
    }
    const height = request.height ?? this.height;
    if (request.path === caQuery('intermediateProposals', request.data).path) {
      return absentAnswer(height);
    }
    if (request.path === caQuery('addedIntermediates', request.data).path) {
      if (this.added.length === 0) return absentAnswer(height);
      const names = encodeCanonical(this.added.map((added) => added.name));
      return oneLeafAnswer(ADDED_INTERMEDIATES_KEY, names, height);
    }
    if (request.path === caQuery('addedIntermediate', request.data).path) {
      const name = Buffer.from(request.data).toString('utf8');
      const added = this.added.find((record) => record.name === name);
      if (added === undefined) return absentAnswer(height);
      return oneLeafAnswer(addedIntermediateKey(name), encodeAddedIntermediate(added), height);
    }
    assert.equal(request.path, caQuery('revocation', request.data).path);
    return absentAnswer(request.height ?? this.height);
  };

  pending = (txHash: Uint8Array): boolean => {
    if (this.restarted) return false;
    const tx = this.txs.get(Buffer.from(txHash).toString('hex'));
    return tx !== undefined && tx.result === undefined;
  };

  submit = (tx: Uint8Array): Promise<AcmeSubmitResult> => {
    this.submitted.push(tx);
    this.txs.set(Buffer.from(decodeTransaction(tx).txHash).toString('hex'), {});
    return Promise.resolve({ ok: true });
  };

  txOf(index: number): FakeTx {
    const tx = this.submitted[index];
    assert.ok(tx, `transaction ${index} was submitted`);
    const known = this.txs.get(Buffer.from(decodeTransaction(tx).txHash).toString('hex'));
    assert.ok(known);
    return known;
  }
}

/** A dns-01 resolver that answers at once from `values`. */
class MemoryTxt implements TxtResolver {
  readonly values = new Map<string, string>();
  lookupTxt(name: string): Promise<string[]> {
    const identifier = name.replace(/^_acme-challenge\./, '').replace(/\.$/, '');
    return Promise.resolve([this.values.get(identifier) ?? '']);
  }
}

describe('ACME in the node: an issuance slower than the issuer waits', () => {
  let pki: TestPki;
  let running: RunningAcme;
  let client: RawAcmeClient;
  let issuer: ConsensusAcmeIssuer;
  const node = new FakeNode();
  const txt = new MemoryTxt();
  /** Emits `settled` after every `issue` of the server's issuer ends, whichever way. */
  const issues = new EventEmitter();
  let settled = 0;
  let resumed: ((orderId: string) => void) | undefined;

  before(async () => {
    pki = await createTestPki();
    const counted: ResumingAcmeIssuer = {
      issue: (request) =>
        issuer.issue(request).finally(() => {
          settled += 1;
          issues.emit('settled');
        }),
      revoke: (request) => issuer.revoke(request),
      // The server subscribes at its start, before the issuer (which needs its store) exists.
      onResumable: (listener: (orderId: string) => void) => {
        resumed = listener;
      },
    };
    running = await startTestAcme(pki, { issuer: counted, txtResolver: txt });
    // The issuer keeps its order → transaction records in the server's store, as in the node.
    issuer = new ConsensusAcmeIssuer({
      chainId: 'acme-test-chain',
      stampDifficulty: 0,
      accountKey: generateKeyPairSync('ed25519').privateKey,
      bundle: pki.ca.bundle,
      query: node.query,
      submit: node.submit,
      pending: node.pending,
      timeoutMs: ISSUE_TIMEOUT_MS,
      issuances: running.store,
    });
    issuer.onResumable((orderId) => resumed?.(orderId));
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
    issuer?.close();
    await running?.close();
    pki?.cleanup();
  });

  const waitSettled = (count: number): Promise<void> =>
    waitForCondition(issues, 'settled', () => settled >= count, `${count} issuances`, WAIT_MS);

  /** Polls the order at each change of the server until its status is `status`; its JSON. */
  const orderStatus = async (
    url: string,
    status: string,
    what: string,
  ): Promise<Record<string, unknown> | undefined> => {
    let final: Record<string, unknown> | undefined;
    await waitForCondition(
      running.server.events,
      'change',
      async () => {
        final = (await client.post(url, '')).json;
        return final?.status === status;
      },
      what,
      WAIT_MS,
    );
    return final;
  };

  /** Orders `name`, validates it with dns-01 and finalizes: the order is `processing`. */
  const finalizedOrder = async (
    name: string,
  ): Promise<{ url: string; csrDer: Uint8Array; id: string }> => {
    const order = await client.post(client.directory.newOrder as string, {
      identifiers: [{ type: 'dns', value: name }],
    });
    assert.equal(order.status, 201, order.text);
    const url = order.headers.location as string;
    const authz = await client.post((order.json?.authorizations as string[])[0] as string, '');
    const challenge = (authz.json?.challenges as Array<Record<string, string>>).find(
      (c) => c.type === 'dns-01',
    );
    assert.ok(challenge, authz.text);
    txt.values.set(
      name,
      dns01TxtValue(
        keyAuthorization(challenge.token as string, jwkThumbprint(publicJwk(client.key))),
      ),
    );
    assert.equal((await client.post(challenge.url as string, {})).status, 200);
    await waitForCondition(
      running.server.events,
      'change',
      async () => (await client.post(url, '')).json?.status === 'ready',
      `order for ${name} ready`,
      WAIT_MS,
    );
    const csrDer = createCsr({
      privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
      dnsNames: [name],
    });
    const finalized = await client.post(order.json?.finalize as string, {
      csr: Buffer.from(csrDer).toString('base64url'),
    });
    assert.equal(finalized.status, 200, finalized.text);
    assert.equal(finalized.json?.status, 'processing');
    return { url, csrDer, id: url.split('/').at(-1) as string };
  };

  it('keeps the order processing past the wait, then finishes it on a poll once published', async () => {
    const order = await finalizedOrder('slow.acme.test');
    // The request stays in the mempool past the issuer's wait.
    await waitSettled(1);
    assert.equal(node.submitted.length, 1);
    const stillWaiting = await client.post(order.url, '');
    assert.equal(stillWaiting.json?.status, 'processing', stillWaiting.text);
    assert.equal(stillWaiting.headers['retry-after'], '1');
    assert.notEqual(running.store.issuanceOf(order.id), null, 'the issuance record is kept');

    // That poll waited again: the transaction is still pending, so it times out once more.
    await waitSettled(2);
    assert.equal((await client.post(order.url, '')).json?.status, 'processing');

    // Committed, then published (the CA's batch, signed by the `local` intermediate).
    const tx = node.txOf(0);
    tx.result = { code: 0, log: '' };
    const issued = await pki.ca.issuer.issue({
      orderId: 'published-by-the-fake-chain',
      accountId: 'tests',
      csrDer: order.csrDer,
      identifiers: [{ type: 'dns', value: 'slow.acme.test' }],
    } satisfies AcmeIssueRequest);
    tx.published = { serial: randomBytes(16), der: pemToDer(issued.certificatePem) };

    const final = await orderStatus(order.url, 'valid', 'the slow order valid');
    const download = await client.post(final?.certificate as string, '');
    assert.equal(download.status, 200, download.text);
    assert.equal(download.text, `${issued.certificatePem.trim()}\n${issued.chainPem.trim()}\n`);
    assert.equal(node.submitted.length, 1, 'no second ca/request was sent');
    assert.equal(issuer.issuingCount, 0, 'the settled issuance is not kept in memory');
  });

  it('fails the order, sending nothing new, when the transaction pending past the wait is dropped', async () => {
    const order = await finalizedOrder('dropped.acme.test');
    const before = settled;
    await waitSettled(before + 1);
    assert.equal((await client.post(order.url, '')).json?.status, 'processing');
    // That poll's wait runs out too: no wait is left when the transaction goes.
    await waitSettled(before + 2);
    const sent = node.submitted.length;
    // Gone from the mempool uncommitted (expired, say); the next poll finds it gone.
    const tx = node.submitted[sent - 1] as Uint8Array;
    node.txs.delete(Buffer.from(decodeTransaction(tx).txHash).toString('hex'));
    const final = await orderStatus(order.url, 'invalid', 'the dropped order invalid');
    const error = final?.error as Record<string, unknown>;
    assert.equal(error.type, PROBLEM('serverInternal'), JSON.stringify(error));
    assert.match(String(error.detail), /left the mempool without being committed/);
    assert.equal(node.submitted.length, sent, 'no new ca/request was sent');
    assert.equal(running.store.issuanceOf(order.id), null);
  });

  it('fails the order when the transaction pending past the wait is then refused', async () => {
    const order = await finalizedOrder('refused.acme.test');
    const before = settled;
    await waitSettled(before + 1);
    assert.equal((await client.post(order.url, '')).json?.status, 'processing');
    node.txOf(node.submitted.length - 1).result = {
      code: 1,
      log: 'CA_POLICY_REFUSED: refused: name_not_allowed',
    };
    const final = await orderStatus(order.url, 'invalid', 'the refused order invalid');
    const error = final?.error as Record<string, unknown>;
    assert.equal(error.type, PROBLEM('rejectedIdentifier'), JSON.stringify(error));
    assert.equal(running.store.issuanceOf(order.id), null, 'the refused record is forgotten');
    assert.equal(issuer.issuingCount, 0);
  });
  /** The order's status in the server's store, once it is `status` (no poll of the order). */
  const waitStatus = (id: string, status: string): Promise<void> =>
    waitForCondition(
      running.server.events,
      'change',
      () => running.store.orderById(id)?.status === status,
      `order ${id} ${status}`,
      WAIT_MS,
    );

  /** A leaf for `csrDer` (signed by the test CA; the fake chain names its issuer). */
  const leafFor = async (name: string, csrDer: Uint8Array): Promise<Uint8Array> =>
    pemToDer(
      (
        await pki.ca.issuer.issue({
          orderId: `published-for-${name}`,
          accountId: 'tests',
          csrDer,
          identifiers: [{ type: 'dns', value: name }],
        })
      ).certificatePem,
    );

  it('finishes an order whose wait ran out at the commits that publish it, with no poll', async () => {
    const order = await finalizedOrder('unpolled.acme.test');
    const before = settled;
    await waitSettled(before + 1);
    const sent = node.submitted.length;
    assert.equal(running.store.orderById(order.id)?.status, 'processing');
    assert.notEqual(running.store.issuanceOf(order.id), null);

    // A block commits the request: the server waits for the publication again, unasked.
    const tx = node.txOf(sent - 1);
    tx.result = { code: 0, log: '' };
    issuer.committed();
    // A block later the CA's batch is published.
    tx.published = {
      serial: randomBytes(16),
      der: await leafFor('unpolled.acme.test', order.csrDer),
    };
    issuer.committed();
    await waitStatus(order.id, 'valid');
    assert.equal(node.submitted.length, sent, 'no second ca/request was sent');
    assert.equal(issuer.issuingCount, 0);
  });

  it('chains a certificate published by an intermediate added after genesis to that intermediate', async () => {
    // The governed addition (docs/ca.md): root-issued, root-FALCON-endorsed, bound to a node key.
    const root = await loadRootSigningKeys({
      bundle: pki.ca.bundle,
      ecdsaKeyFile: pki.ca.rootKeyFiles.ecdsa,
      falconKeyFile: pki.ca.rootKeyFiles.falcon,
      passphrase: 'acme test passphrase',
    });
    const { request } = await createValidatorCaRequest({ name: 'late' });
    const account = ed25519RawPublicKey(generateKeyPairSync('ed25519').privateKey);
    const late = await issueValidatorIntermediate({
      cluster: pki.ca.bundle.cluster,
      root,
      request,
      account,
      notBefore: new Date(Date.now() - 60_000),
    });
    assert.ok(!pki.ca.bundle.validators.some((validator) => validator.name === 'late'));
    node.added.push({
      name: 'late',
      account,
      certificate: late.certificate,
      endorsement: late.endorsement,
      proposedAt: 2,
      activatedAt: 3,
      approvals: ['local'],
    });

    const order = await finalizedOrder('late.acme.test');
    const before = settled;
    await waitSettled(before + 1);
    const tx = node.txOf(node.submitted.length - 1);
    const leaf = await leafFor('late.acme.test', order.csrDer);
    tx.result = { code: 0, log: '' };
    tx.published = { serial: randomBytes(16), der: leaf, issuer: 'late' };
    issuer.committed();
    await waitStatus(order.id, 'valid');
    const final = (await client.post(order.url, '')).json;
    const download = await client.post(final?.certificate as string, '');
    assert.equal(download.status, 200, download.text);
    assert.equal(
      download.text,
      `${derToPem(leaf).trim()}\n${derToPem(late.certificate).trim()}\n`,
      'the leaf, then the added intermediate',
    );
  });

  it('fails the order when its certificate names an issuer in no trust bundle in effect', async () => {
    const order = await finalizedOrder('nowhere.acme.test');
    const before = settled;
    await waitSettled(before + 1);
    const tx = node.txOf(node.submitted.length - 1);
    tx.result = { code: 0, log: '' };
    tx.published = {
      serial: randomBytes(16),
      der: await leafFor('nowhere.acme.test', order.csrDer),
      issuer: 'nowhere',
    };
    // Polls look again; none of them may leave the order processing for good.
    const final = await orderStatus(
      order.url,
      'invalid',
      'the order with an unknown issuer invalid',
    );
    const error = final?.error as Record<string, unknown>;
    assert.equal(error.type, PROBLEM('serverInternal'), JSON.stringify(error));
    assert.match(
      String(error.detail),
      /intermediate "nowhere", which is neither in the genesis trust bundle nor added/,
    );
    assert.equal(running.store.issuanceOf(order.id), null, 'the record is forgotten');
    for (let poll = 0; poll < 3; poll += 1) {
      assert.equal((await client.post(order.url, '')).json?.status, 'invalid');
    }
    assert.equal(issuer.issuingCount, 0);
  });

  it('fails the order after five attempts in a row whose reads of the state fail', async () => {
    const order = await finalizedOrder('unreadable.acme.test');
    let count = settled;
    await waitSettled(count + 1);
    count += 1;
    node.txOf(node.submitted.length - 1).result = { code: 0, log: '' };
    node.failing = true;
    try {
      for (let attempt = 1; attempt <= 5; attempt += 1) {
        assert.equal(running.store.orderById(order.id)?.status, 'processing', `attempt ${attempt}`);
        // Each commit hands the kept order back; each attempt's reads throw.
        issuer.committed();
        await waitSettled(count + 1);
        count += 1;
      }
    } finally {
      node.failing = false;
    }
    await waitStatus(order.id, 'invalid');
    const error = running.store.orderById(order.id)?.error as unknown as Record<string, unknown>;
    assert.equal(error.type, PROBLEM('serverInternal'), JSON.stringify(error));
    assert.match(String(error.detail), /5 attempts in a row: .*the state store is busy/);
    assert.equal(running.store.issuanceOf(order.id), null);
  });

  it('after a restart, waits for a request committed before it instead of sending another', async () => {
    const order = await finalizedOrder('restarted.acme.test');
    const before = settled;
    await waitSettled(before + 1);
    const sentBefore = node.submitted.length;
    // Committed and applied (its issuance record is in the CA state), not published yet; then
    // the node restarts: its recent results and its mempool start empty, and so does the
    // issuer's memory of what it sent.
    const tx = node.txOf(sentBefore - 1);
    tx.result = { code: 0, log: '' };
    tx.applied = { serial: randomBytes(16) };
    node.restarted = true;
    const first = issuer;
    first.close();
    issuer = new ConsensusAcmeIssuer({
      chainId: 'acme-test-chain',
      stampDifficulty: 0,
      accountKey: generateKeyPairSync('ed25519').privateKey,
      bundle: pki.ca.bundle,
      query: node.query,
      submit: node.submit,
      pending: node.pending,
      timeoutMs: ISSUE_TIMEOUT_MS,
      issuances: running.store,
    });
    try {
      // A poll runs the issuance again on the restarted issuer: it must wait, not resend.
      assert.equal((await client.post(order.url, '')).json?.status, 'processing');
      await waitSettled(before + 2);
      assert.equal(node.submitted.length, sentBefore, 'no second ca/request was sent');
      const issued = await pki.ca.issuer.issue({
        orderId: 'published-after-the-restart',
        accountId: 'tests',
        csrDer: order.csrDer,
        identifiers: [{ type: 'dns', value: 'restarted.acme.test' }],
      } satisfies AcmeIssueRequest);
      tx.published = { serial: tx.applied.serial, der: pemToDer(issued.certificatePem) };
      await orderStatus(order.url, 'valid', 'the order valid after the restart');
      assert.equal(node.submitted.length, sentBefore, 'still one ca/request');
    } finally {
      node.restarted = false;
    }
  });
});
