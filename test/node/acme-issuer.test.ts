import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  SEQUENCE_QUERY,
  TX_RESULT_QUERY,
  decodeTransaction,
} from '../../src/consensus/application/index.js';
import { encodeRecordedTxResult } from '../../src/consensus/application/tx-results.js';
import type { QueryRequest, QueryResponse } from '../../src/consensus/app.js';
import { bytesEqual } from '../../src/crypto/bytes.js';
import { createRootCa, parseCertificate } from '../../src/crypto/x509.js';
import { AcmeIssuerError, AcmeIssuerErrorCode, AcmeStore } from '../../src/faces/acme/index.js';
import { ConsensusAcmeIssuer, type AcmeSubmitResult } from '../../src/node/acme-issuer.js';
import type { TrustBundle } from '../../src/trustchain/ca/bundle.js';
import { CA_MODULE_NAME, CA_QUERIES } from '../../src/trustchain/ca-module/index.js';
import { createCsr } from '../../src/trustchain/ca/csr.js';
import { waitForCondition } from '../helpers/wait.js';

/**
 * The ACME issuer across restarts (docs/acme.md, "Restarts"): the transaction an order was sent
 * as is kept in the ACME store, so a resumed order waits for it instead of sending another; one
 * that was lost with the mempool is sent again; stopping keeps the record.
 */

const answer = (value: Uint8Array | null): QueryResponse =>
  ({ value, height: 1, stateRoot: new Uint8Array(32), proof: null }) as unknown as QueryResponse;

describe('ACME issuer records', () => {
  let dir: string;
  let store: AcmeStore;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'hm-acme-issuer-'));
    store = AcmeStore.open(path.join(dir, 'acme.sqlite'));
  });
  after(async () => {
    store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const order = (orderId: string) => {
    const privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    return {
      orderId,
      accountId: 'account-1',
      csrDer: createCsr({ privateKey, dnsNames: ['www.hypermesh'] }),
      identifiers: [{ type: 'dns' as const, value: 'www.hypermesh' }],
    };
  };

  /** An issuer over fake node reads: `known` is the mempool; nothing is ever committed. */
  const issuerWith = (
    known: Uint8Array[],
    submitted: Uint8Array[],
    evictionOf?: (txHash: Uint8Array) => { code: string; message: string } | undefined,
  ) =>
    new ConsensusAcmeIssuer({
      chainId: 'test-chain',
      stampDifficulty: 0,
      accountKey: generateKeyPairSync('ed25519').privateKey,
      bundle: {} as TrustBundle,
      query: (request: QueryRequest) => {
        // Nothing is committed: no transaction result, no issuance record in the CA state.
        assert.ok(
          request.path === TX_RESULT_QUERY ||
            request.path === SEQUENCE_QUERY ||
            request.path === `${CA_MODULE_NAME}/${CA_QUERIES.request}`,
          request.path,
        );
        return answer(null);
      },
      pending: (txHash) => known.some((hash) => bytesEqual(hash, txHash)),
      submit: (tx): Promise<AcmeSubmitResult> => {
        submitted.push(tx);
        return Promise.resolve({
          ok: false,
          code: 'CA_POLICY_REFUSED',
          message: 'refused: name_not_allowed',
        });
      },
      issuances: store,
      ...(evictionOf === undefined ? {} : { evictionOf }),
    });

  it('keeps, replaces and forgets an order’s transaction, across reopening', () => {
    const first = new Uint8Array(32).fill(1);
    const second = new Uint8Array(32).fill(2);
    assert.equal(store.issuanceOf('order-a'), null);
    store.recordIssuance('order-a', first);
    store.recordIssuance('order-a', second);
    const reopened = AcmeStore.open(path.join(dir, 'acme.sqlite'));
    assert.deepEqual(reopened.issuanceOf('order-a'), second);
    reopened.forgetIssuance('order-a');
    assert.equal(reopened.issuanceOf('order-a'), null);
    reopened.close();
  });

  it('a resumed order waits for the transaction it was sent as, and stopping keeps the record', async () => {
    const sent = new Uint8Array(32).fill(7);
    store.recordIssuance('order-b', sent);
    const submitted: Uint8Array[] = [];
    const issuer = issuerWith([sent], submitted);
    const waiting = issuer.issue(order('order-b'));
    issuer.committed(); // still in the mempool: keeps waiting
    issuer.close();
    await assert.rejects(waiting, (error: unknown) => {
      assert.ok(error instanceof AcmeIssuerError);
      assert.equal(error.code, AcmeIssuerErrorCode.UNAVAILABLE);
      return true;
    });
    assert.equal(submitted.length, 0, 'no new request was sent');
    assert.deepEqual(store.issuanceOf('order-b'), sent);
  });

  it('a transaction the mempool threw out after a commit gets its refusal: rate limited, not unavailable', async () => {
    const sent = new Uint8Array(32).fill(5);
    store.recordIssuance('order-e', sent);
    const known = [sent];
    const issuer = issuerWith(known, [], (txHash) =>
      bytesEqual(txHash, sent)
        ? { code: 'CA_RATE_LIMITED', message: 'issuance rate limit reached' }
        : undefined,
    );
    const waiting = issuer.issue(order('order-e'));
    issuer.committed(); // still pending
    known.length = 0; // the re-check after the next commit evicted it
    issuer.committed();
    await assert.rejects(waiting, (error: unknown) => {
      assert.ok(error instanceof AcmeIssuerError);
      assert.equal(error.code, AcmeIssuerErrorCode.RATE_LIMITED);
      return true;
    });
    issuer.close();
  });

  it('an order whose transaction was lost with the mempool is sent again; a refusal forgets it', async () => {
    store.recordIssuance('order-c', new Uint8Array(32).fill(9));
    const submitted: Uint8Array[] = [];
    const issuer = issuerWith([], submitted);
    await assert.rejects(issuer.issue(order('order-c')), (error: unknown) => {
      assert.ok(error instanceof AcmeIssuerError);
      assert.equal(error.code, AcmeIssuerErrorCode.REJECTED_IDENTIFIER);
      return true;
    });
    assert.equal(submitted.length, 1, 'the order was sent again');
    assert.equal(store.issuanceOf('order-c'), null);
    issuer.close();
  });
});

describe('ACME issuer: revocations on the chain', () => {
  it('reads ca/rev/<serial> from committed state, whoever revoked the certificate', () => {
    const revokedSerial = 'a1'.repeat(16);
    const asked: QueryRequest[] = [];
    const issuer = new ConsensusAcmeIssuer({
      chainId: 'test-chain',
      stampDifficulty: 0,
      accountKey: generateKeyPairSync('ed25519').privateKey,
      bundle: {} as TrustBundle,
      query: (request: QueryRequest) => {
        asked.push(request);
        const hit =
          request.path === `${CA_MODULE_NAME}/${CA_QUERIES.revocation}` &&
          Buffer.from(request.data).toString('hex') === revokedSerial;
        return answer(hit ? new Uint8Array([1]) : null);
      },
      pending: () => false,
      submit: () => Promise.reject(new Error('nothing is submitted here')),
    });
    assert.equal(issuer.isRevoked(revokedSerial), true);
    assert.equal(issuer.isRevoked('b2'.repeat(16)), false);
    assert.equal(asked.length, 2);
    // Not a 16-byte serial of this CA (or not canonical hex): no lookup, not revoked.
    for (const serial of ['a1'.repeat(15), 'a1'.repeat(17), 'zz'.repeat(16), 'A1'.repeat(16)]) {
      assert.equal(issuer.isRevoked(serial), false, serial);
    }
    assert.equal(asked.length, 2);
    issuer.close();
  });
});

describe('ACME issuer: revoking a revoked certificate', () => {
  const REVOCATION_QUERY = `${CA_MODULE_NAME}/${CA_QUERIES.revocation}`;
  /** Emits `submitted` after each transaction the fake mempool admits. */
  const mempool = new EventEmitter();
  const submittedCount = (submitted: Uint8Array[], count: number) =>
    waitForCondition(
      mempool,
      'submitted',
      () => submitted.length === count,
      `${count} admitted transactions`,
      10_000,
    );
  /** A certificate with a 16-byte serial, as the CA's (a random one may have a leading 00). */
  const certificate = async (): Promise<Uint8Array> => {
    for (;;) {
      const der = (await createRootCa({ cluster: 'test' })).certificate;
      if (parseCertificate(der).serialNumber.length === 32) return der;
    }
  };
  const isAlreadyRevoked = (error: unknown): boolean => {
    assert.ok(error instanceof AcmeIssuerError);
    assert.equal(error.code, AcmeIssuerErrorCode.ALREADY_REVOKED, error.message);
    return true;
  };

  /**
   * An issuer over fake node reads: `revoked` answers `ca/rev/<serial>`, `results` the committed
   * transaction results, `refusal` (when set) the mempool's answer; every transaction the
   * mempool admits stays pending.
   */
  const issuerWith = (options: {
    revoked: boolean;
    results?: Map<string, Uint8Array>;
    refusal?: () => { code: string; message: string } | undefined;
    submitted: Uint8Array[];
  }) =>
    new ConsensusAcmeIssuer({
      chainId: 'test-chain',
      stampDifficulty: 0,
      accountKey: generateKeyPairSync('ed25519').privateKey,
      bundle: {} as TrustBundle,
      query: (request: QueryRequest) => {
        if (request.path === REVOCATION_QUERY) {
          return answer(options.revoked ? new Uint8Array([1]) : null);
        }
        if (request.path === TX_RESULT_QUERY) {
          return answer(options.results?.get(Buffer.from(request.data).toString('hex')) ?? null);
        }
        assert.equal(request.path, SEQUENCE_QUERY);
        return answer(null);
      },
      pending: (txHash) => !(options.results?.has(Buffer.from(txHash).toString('hex')) ?? false),
      submit: (tx): Promise<AcmeSubmitResult> => {
        const refused = options.refusal?.();
        if (refused !== undefined) return Promise.resolve({ ok: false, ...refused });
        options.submitted.push(tx);
        mempool.emit('submitted');
        return Promise.resolve({ ok: true });
      },
    });

  it('a serial the committed state records as revoked: alreadyRevoked, nothing submitted', async () => {
    const der = await certificate();
    const submitted: Uint8Array[] = [];
    const issuer = issuerWith({ revoked: true, submitted });
    await assert.rejects(
      issuer.revoke({ serialHex: 'unused', certDer: der, reason: 0 }),
      isAlreadyRevoked,
    );
    assert.equal(submitted.length, 0);
    issuer.close();
  });

  it('a CA_REVOKED refusal at admission is alreadyRevoked and keeps the sequence', async () => {
    const submitted: Uint8Array[] = [];
    let refuse = false;
    const issuer = issuerWith({
      revoked: false,
      submitted,
      refusal: () =>
        refuse ? { code: 'CA_REVOKED', message: 'certificate 01 is revoked' } : undefined,
    });
    // The first revocation is admitted and stays pending (sequence 0).
    const first = issuer.revoke({ serialHex: 'unused', certDer: await certificate(), reason: 0 });
    first.catch(() => undefined);
    await submittedCount(submitted, 1);
    refuse = true;
    await assert.rejects(
      issuer.revoke({ serialHex: 'unused', certDer: await certificate(), reason: 0 }),
      isAlreadyRevoked,
    );
    refuse = false;
    const third = issuer.revoke({ serialHex: 'unused', certDer: await certificate(), reason: 0 });
    third.catch(() => undefined);
    await submittedCount(submitted, 2);
    assert.deepEqual(
      submitted.map((tx) => decodeTransaction(tx).sequence),
      [0, 1],
      'the refusal did not reset the sequence under the pending transaction',
    );
    issuer.close();
    await assert.rejects(first);
    await assert.rejects(third);
  });

  it('a revocation committed with CA_REVOKED (a concurrent one won) is alreadyRevoked', async () => {
    const submitted: Uint8Array[] = [];
    const results = new Map<string, Uint8Array>();
    const issuer = issuerWith({ revoked: false, submitted, results });
    const waiting = issuer.revoke({ serialHex: 'unused', certDer: await certificate(), reason: 0 });
    await submittedCount(submitted, 1);
    // The issuer registers its wait in the microtasks after the admission: let them run.
    await new Promise((resolve) => setImmediate(resolve));
    const txHash = decodeTransaction(submitted[0] as Uint8Array).txHash;
    results.set(
      Buffer.from(txHash).toString('hex'),
      encodeRecordedTxResult({ height: 2, index: 0, code: 1, log: 'CA_REVOKED: revoked' }),
    );
    issuer.committed();
    await assert.rejects(waiting, isAlreadyRevoked);
    issuer.close();
  });
});
