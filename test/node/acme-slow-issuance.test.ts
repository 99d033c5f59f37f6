import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import {
  SEQUENCE_QUERY,
  TX_RESULT_QUERY,
  decodeTransaction,
} from '../../src/consensus/application/index.js';
import { encodeRecordedTxResult } from '../../src/consensus/application/tx-results.js';
import type { QueryRequest, QueryResponse } from '../../src/consensus/app.js';
import { pemToDer } from '../../src/crypto/x509.js';
import type { TxtResolver } from '../../src/faces/acme/dns-resolver.js';
import type { AcmeIssueRequest, AcmeIssuer } from '../../src/faces/acme/issuer.js';
import { jwkThumbprint } from '../../src/faces/acme/jws.js';
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
import { createCsr } from '../../src/trustchain/ca/csr.js';
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
  published?: { serial: Uint8Array; der: Uint8Array };
}

class FakeNode extends EventEmitter {
  readonly txs = new Map<string, FakeTx>();
  readonly submitted: Uint8Array[] = [];
  readonly height = 5;

  query = (request: QueryRequest): QueryResponse => {
    const hex = Buffer.from(request.data).toString('hex');
    const plain = (value: Uint8Array | null): QueryResponse => ({
      value,
      height: this.height,
      stateRoot: new Uint8Array(32),
    });
    if (request.path === SEQUENCE_QUERY) return plain(null);
    if (request.path === TX_RESULT_QUERY) {
      const result = this.txs.get(hex)?.result;
      return plain(
        result === undefined
          ? null
          : encodeRecordedTxResult({ height: this.height, index: 0, ...result }),
      );
    }
    if (request.path === caQuery('request', request.data).path) {
      const published = this.txs.get(hex)?.published;
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
          issuer: 'local',
          publishedAt: this.height,
        });
        return oneLeafAnswer(certificateKey(request.data), record, request.height ?? this.height);
      }
      return absentAnswer(request.height ?? this.height);
    }
    assert.equal(request.path, caQuery('revocation', request.data).path);
    return absentAnswer(request.height ?? this.height);
  };

  pending = (txHash: Uint8Array): boolean => {
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

  before(async () => {
    pki = await createTestPki();
    const counted: AcmeIssuer = {
      issue: (request) =>
        issuer.issue(request).finally(() => {
          settled += 1;
          issues.emit('settled');
        }),
      revoke: (request) => issuer.revoke(request),
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

    let final: Record<string, unknown> | undefined;
    await waitForCondition(
      running.server.events,
      'change',
      async () => {
        final = (await client.post(order.url, '')).json;
        return final?.status === 'valid';
      },
      'the slow order valid',
      WAIT_MS,
    );
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
    let final: Record<string, unknown> | undefined;
    await waitForCondition(
      running.server.events,
      'change',
      async () => {
        final = (await client.post(order.url, '')).json;
        return final?.status === 'invalid';
      },
      'the dropped order invalid',
      WAIT_MS,
    );
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
    let final: Record<string, unknown> | undefined;
    await waitForCondition(
      running.server.events,
      'change',
      async () => {
        final = (await client.post(order.url, '')).json;
        return final?.status === 'invalid';
      },
      'the refused order invalid',
      WAIT_MS,
    );
    const error = final?.error as Record<string, unknown>;
    assert.equal(error.type, PROBLEM('rejectedIdentifier'), JSON.stringify(error));
    assert.equal(running.store.issuanceOf(order.id), null, 'the refused record is forgotten');
    assert.equal(issuer.issuingCount, 0);
  });
});
