import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { HyperMeshError } from '../../../src/codec/error.js';
import {
  TransactionErrorCode,
  decodeTransaction,
} from '../../../src/consensus/application/index.js';
import { Mempool } from '../../../src/consensus/mempool.js';
import {
  MAX_QUERY_DATA_BYTES,
  MAX_SUBMIT_BATCH,
  MAX_SUBMIT_BATCH_BYTES,
  MAX_HISTORY_PAGE_SIZE,
  MAX_VALIDATOR_UPDATE_SPAN,
  NODE_API_SERVICE_NAME,
  SubmitBatchRefusal,
  createNodeRpcClient,
  defaultWireCode,
  registerNodeRpc,
  wireError,
  type NodeRpcClient,
  type NodeRpcHandlers,
  type TxSubmitResult,
} from '../../../src/consensus/net/node-rpc.js';
import { MAX_TX_BYTES } from '../../../src/consensus/wire.js';
import { kvSet } from '../../../src/kv/index.js';
import { StoqError, StoqErrorCode } from '../../../src/stoq/errors.js';
import { createClient } from '../../../src/stoq/rpc/client.js';
import { defineService, unary } from '../../../src/stoq/rpc/service.js';
import { isStoqError } from '../../helpers/stoq-error.js';
import { makeSender, openNode, tx as signedTx, type TestNode } from '../application/fixture.js';
import { Cluster, type RunningEndpoint } from './net-fixture.js';

/** The node's client-facing API over STOQ: round trips, schema limits, error mapping. */

let cluster: Cluster;
let server: RunningEndpoint;
let caller: RunningEndpoint;
let client: NodeRpcClient;
const calls: string[] = [];
/** n2 admits into a real mempool over a real application (kv module, temporary store). */
let appNode: TestNode;
let mempool: Mempool;
let mempoolClient: NodeRpcClient;
let withMempoolAddress: RunningEndpoint['address'];

const sha256 = (data: Uint8Array): Uint8Array =>
  new Uint8Array(createHash('sha256').update(data).digest());
const root = new Uint8Array(32).fill(0xab);

const sampleReceipt = {
  txHash: new Uint8Array(32).fill(7),
  height: 4,
  index: 1,
  code: 0,
  log: '',
  events: [
    {
      type: 'caesar/transfer',
      attributes: { amount: '5' },
      accounts: [new Uint8Array(32).fill(1)],
    },
  ],
};

/** Validator updates of heights 3, 5 and 8, one MiB each: a response carries two of them. */
const storedUpdates = [3, 5, 8].map((height) => ({
  height,
  bytes: new Uint8Array(1024 * 1024).fill(height),
}));

/** Why the mock's mempool evicted transactions whose hash starts with 3. */
const evicted = { code: 'TX_SEQUENCE_USED', message: 'sequence 4 is already used' };

/** The mock's admission verdict for transactions starting with 1 or 2 (others: refused). */
function verdict(tx: Uint8Array): TxSubmitResult & Record<string, unknown> {
  switch (tx[0]) {
    case 1:
      // An application's TxAcceptance: sender and sequence stay on the server.
      return { ok: true, txHash: sha256(tx), sender: 'ab'.repeat(32), sequence: 3 };
    case 2:
      return { ok: false, code: 'TX_BAD_SIGNATURE', message: 'signature does not verify' };
    default:
      return { ok: false, code: 'TX_MALFORMED', message: 'not a transaction', txHash: sha256(tx) };
  }
}

const handlers: NodeRpcHandlers = {
  submitTx: (tx, ctx) => {
    calls.push(`submitTx ${ctx.peer.role}`);
    switch (tx[0]) {
      case 1:
      case 2:
        return verdict(tx);
      case 3:
        throw new HyperMeshError('MEMPOOL_FULL', 'the mempool is full', { limit: 10 });
      case 4:
        throw new Error('a bug in the mempool');
      default:
        throw new HyperMeshError('MEMPOOL_STORE_BROKEN', 'disk says no');
    }
  },
  submitTxs: (txs, ctx) => {
    calls.push(`submitTxs ${ctx.peer.role} ${txs.length}`);
    // A broken handler that answers one result too few.
    if (txs[0]?.[0] === 9) return txs.slice(1).map(verdict);
    return txs.map(verdict);
  },
  txStatus: (txHash) => {
    calls.push('txStatus');
    if (txHash[0] === 0) return { status: 'unknown' };
    if (txHash[0] === 1) return { status: 'pending' };
    if (txHash[0] === 3) return { status: 'unknown', evicted };
    return { status: 'committed', height: 5, index: 2, code: 0, log: 'applied' };
  },
  pendingSequence: (owner) => {
    calls.push(
      'sender' in owner
        ? `pendingSequence sender ${owner.sender.length}`
        : `pendingSequence ${owner.account.module} ${owner.account.account.length}`,
    );
    return 'sender' in owner ? 12 : null;
  },
  query: (request) => {
    calls.push('query');
    if (!request.path.startsWith('kv/')) {
      throw new HyperMeshError('APP_UNKNOWN_QUERY', `no query ${request.path}`, {
        path: request.path,
      });
    }
    if (request.data.length === 0) return { height: null, value: null, stateRoot: root };
    return {
      height: request.height ?? 7,
      value: Uint8Array.from(request.data).reverse(),
      proof: Uint8Array.of(9, 9),
      stateRoot: root,
    };
  },
  status: () => {
    calls.push('status');
    return {
      chainId: 'test-chain',
      committedHeight: 7,
      syncing: false,
      peers: ['a', 'b'],
      appHash: root,
      mempool: { size: 3, bytes: 1200 },
      lastError: null,
    };
  },
  getBlock: (height) => {
    calls.push('getBlock');
    return height === 1 ? { height: 1, block: Uint8Array.of(1), commit: Uint8Array.of(2) } : null;
  },
  blockWitness: (height) => {
    calls.push('blockWitness');
    return height === 1 ? Uint8Array.of(9, 9) : null;
  },
  receipt: (txHash) => {
    calls.push('receipt');
    return txHash[0] === 7 ? { ...sampleReceipt, txHash, extra: 'stays on the server' } : null;
  },
  accountHistory: (account, before, limit) => {
    calls.push(`accountHistory ${account.length} ${before?.height ?? '-'} ${limit}`);
    return {
      receipts: [sampleReceipt],
      next: before === undefined ? { height: 4, index: 0 } : null,
    };
  },
  validatorUpdates: (fromHeight, toHeight) => {
    calls.push(`validatorUpdates ${fromHeight}..${toHeight}`);
    return storedUpdates.filter((entry) => entry.height >= fromHeight && entry.height <= toHeight);
  },
};

before(async () => {
  cluster = await Cluster.create('memory', ['n1', 'n2', { name: 'carol', role: 'client' }]);
  server = await cluster.endpoint('n1');
  registerNodeRpc(server.endpoint, handlers);
  appNode = await openNode();
  mempool = new Mempool(appNode.app);
  const withMempool = await cluster.endpoint('n2');
  withMempoolAddress = withMempool.address;
  registerNodeRpc(withMempool.endpoint, {
    ...handlers,
    submitTx: (tx) => mempool.add(tx),
    submitTxs: (txs) => txs.map((tx) => mempool.add(tx)),
  });
  caller = await cluster.endpoint('carol', undefined, {
    n1: [server.address],
    n2: [withMempool.address],
  });
  client = createNodeRpcClient({ endpoint: caller.endpoint, peer: 'n1' });
  mempoolClient = createNodeRpcClient({ endpoint: caller.endpoint, peer: 'n2' });
});

after(async () => {
  await cluster.close();
  await appNode.close();
});

/** The same service name with lax request schemas, to put bad requests on the wire. */
const laxMethod = () => unary({ request: z.unknown(), response: z.unknown(), allow: ['client'] });
const lax = defineService({
  name: NODE_API_SERVICE_NAME,
  methods: {
    submitTx: laxMethod(),
    submitTxs: laxMethod(),
    txStatus: laxMethod(),
    pendingSequence: laxMethod(),
    query: laxMethod(),
    status: laxMethod(),
    getBlock: laxMethod(),
    blockWitness: laxMethod(),
    validatorUpdates: laxMethod(),
    receipt: laxMethod(),
    accountHistory: laxMethod(),
  },
});

describe('node RPC over STOQ', { timeout: 20_000 }, () => {
  it('round-trips every method for a client-role caller', async () => {
    const tx = Uint8Array.of(1, 2, 3);
    assert.deepEqual(await client.submitTx(tx), { ok: true, txHash: sha256(tx), duplicate: false });
    assert.deepEqual(await client.submitTx(Uint8Array.of(2)), {
      ok: false,
      code: 'TX_BAD_SIGNATURE',
      message: 'signature does not verify',
    });
    assert.equal(calls[0], 'submitTx client');

    assert.deepEqual(await client.txStatus(new Uint8Array(32)), { status: 'unknown' });
    assert.deepEqual(await client.txStatus(new Uint8Array(32).fill(1)), { status: 'pending' });
    assert.deepEqual(await client.txStatus(new Uint8Array(32).fill(3)), {
      status: 'unknown',
      evicted,
    });
    assert.equal(await client.pendingSequence({ sender: new Uint8Array(32) }), 12);
    assert.equal(
      await client.pendingSequence({
        account: { module: 'caesar', account: new Uint8Array(32) },
      }),
      null,
    );
    assert.deepEqual(await client.txStatus(new Uint8Array(32).fill(2)), {
      status: 'committed',
      height: 5,
      index: 2,
      code: 0,
      log: 'applied',
    });

    assert.deepEqual(await client.query({ path: 'kv/get', data: Uint8Array.of(1, 2) }), {
      height: 7,
      value: Uint8Array.of(2, 1),
      proof: Uint8Array.of(9, 9),
      stateRoot: root,
    });
    assert.deepEqual(await client.query({ path: 'kv/get', data: Uint8Array.of(5), height: 3 }), {
      height: 3,
      value: Uint8Array.of(5),
      proof: Uint8Array.of(9, 9),
      stateRoot: root,
    });
    assert.deepEqual(await client.query({ path: 'kv/get', data: new Uint8Array(0) }), {
      height: null,
      value: null,
      stateRoot: root,
    });

    assert.deepEqual(await client.status(), {
      chainId: 'test-chain',
      committedHeight: 7,
      syncing: false,
      peers: ['a', 'b'],
      appHash: root,
      mempool: { size: 3, bytes: 1200 },
      lastError: null,
    });

    assert.deepEqual(await client.getBlock(1), {
      height: 1,
      block: Uint8Array.of(1),
      commit: Uint8Array.of(2),
    });
    await assert.rejects(client.getBlock(2), (error: unknown) => {
      isStoqError(StoqErrorCode.NOT_FOUND)(error);
      assert.equal((error as StoqError).detail.reason, 'no-block');
      return true;
    });

    assert.deepEqual(await client.blockWitness(1), Uint8Array.of(9, 9));
    await assert.rejects(client.blockWitness(2), (error: unknown) => {
      isStoqError(StoqErrorCode.NOT_FOUND)(error);
      assert.equal((error as StoqError).detail.reason, 'no-block');
      return true;
    });
  });

  it('serves receipts and account history, schema-checked both ways', async () => {
    const receipt = await client.receipt(new Uint8Array(32).fill(7));
    assert.deepEqual(receipt, sampleReceipt, 'only the schema fields travel');
    await assert.rejects(client.receipt(new Uint8Array(32)), (error: unknown) => {
      isStoqError(StoqErrorCode.NOT_FOUND)(error);
      assert.equal((error as StoqError).detail.reason, 'no-receipt');
      return true;
    });
    calls.length = 0;
    const account = new Uint8Array(32).fill(1);
    assert.deepEqual(await client.accountHistory({ account, limit: 10 }), {
      receipts: [sampleReceipt],
      next: { height: 4, index: 0 },
    });
    assert.deepEqual(
      await client.accountHistory({ account, limit: 1, before: { height: 4, index: 0 } }),
      { receipts: [sampleReceipt], next: null },
    );
    assert.deepEqual(calls, ['accountHistory 32 - 10', 'accountHistory 32 4 1']);
    for (const request of [
      { account, limit: 0 },
      { account, limit: MAX_HISTORY_PAGE_SIZE + 1 },
      { account: new Uint8Array(0), limit: 1 },
      { account: new Uint8Array(65), limit: 1 },
    ]) {
      await assert.rejects(
        client.accountHistory(request),
        isStoqError(StoqErrorCode.INVALID_ARGUMENT),
      );
    }
  });

  it('pages validator updates by size, and refuses ranges outside the schema', async () => {
    calls.length = 0;
    const all = await client.validatorUpdates(1, 10);
    assert.deepEqual(
      all.map((entry) => [entry.height, entry.bytes.length, entry.bytes[0]]),
      [
        [3, 1024 * 1024, 3],
        [5, 1024 * 1024, 5],
        [8, 1024 * 1024, 8],
      ],
    );
    // Two MiB per response: heights 3 and 5, then the rest from 8.
    assert.deepEqual(calls, ['validatorUpdates 1..10', 'validatorUpdates 8..10']);
    assert.deepEqual(await client.validatorUpdates(6, 7), []);
    assert.deepEqual(
      (await client.validatorUpdates(5, 5)).map((entry) => entry.height),
      [5],
    );
    await assert.rejects(
      client.validatorUpdates(5, 4),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
    // A longer range goes out in windows of MAX_VALIDATOR_UPDATE_SPAN heights.
    calls.length = 0;
    const long = await client.validatorUpdates(1, MAX_VALIDATOR_UPDATE_SPAN + 1);
    assert.deepEqual(
      long.map((entry) => entry.height),
      [3, 5, 8],
    );
    assert.deepEqual(calls, [
      `validatorUpdates 1..${MAX_VALIDATOR_UPDATE_SPAN}`,
      `validatorUpdates 8..${MAX_VALIDATOR_UPDATE_SPAN + 1}`,
    ]);
    calls.length = 0;
    assert.deepEqual(await client.validatorUpdates(9, 2 * MAX_VALIDATOR_UPDATE_SPAN + 8), []);
    assert.deepEqual(calls, [
      `validatorUpdates 9..${MAX_VALIDATOR_UPDATE_SPAN + 8}`,
      `validatorUpdates ${MAX_VALIDATOR_UPDATE_SPAN + 9}..${2 * MAX_VALIDATOR_UPDATE_SPAN + 8}`,
    ]);
  });

  it('turns handler failures into typed wire errors', async () => {
    await assert.rejects(client.submitTx(Uint8Array.of(3)), (error: unknown) => {
      isStoqError(StoqErrorCode.RESOURCE_EXHAUSTED)(error);
      assert.equal((error as StoqError).message, 'the mempool is full');
      assert.equal((error as StoqError).detail.domainCode, 'MEMPOOL_FULL');
      assert.equal((error as StoqError).detail.limit, 10);
      return true;
    });
    await assert.rejects(
      client.query({ path: 'bank/balance', data: Uint8Array.of(1) }),
      (error: unknown) => {
        isStoqError(StoqErrorCode.NOT_FOUND)(error);
        assert.equal((error as StoqError).detail.domainCode, 'APP_UNKNOWN_QUERY');
        return true;
      },
    );
    // A domain error without a recognisable code, and a plain exception: INTERNAL, no internals.
    await assert.rejects(client.submitTx(Uint8Array.of(5)), (error: unknown) => {
      isStoqError(StoqErrorCode.INTERNAL)(error);
      assert.equal((error as StoqError).message, 'internal error (MEMPOOL_STORE_BROKEN)');
      return true;
    });
    await assert.rejects(client.submitTx(Uint8Array.of(4)), (error: unknown) => {
      isStoqError(StoqErrorCode.INTERNAL)(error);
      assert.doesNotMatch((error as StoqError).message, /bug/);
      return true;
    });
  });

  it('rejects requests outside the schemas, at the caller and at the server', async () => {
    const before = calls.length;
    // The caller checks what it sends.
    await assert.rejects(
      client.submitTx(new Uint8Array(MAX_TX_BYTES + 1)),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
    await assert.rejects(
      client.txStatus(new Uint8Array(31)),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
    await assert.rejects(
      client.query({ path: 'no-slash', data: new Uint8Array(0) }),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
    await assert.rejects(client.getBlock(0), isStoqError(StoqErrorCode.INVALID_ARGUMENT));

    // The server checks what arrives, whatever the caller's schemas said.
    const session = await caller.endpoint.connect(server.address);
    const raw = createClient(lax, session);
    const refused: [keyof typeof lax.methods, unknown][] = [
      ['submitTx', { tx: new Uint8Array(MAX_TX_BYTES + 1) }],
      ['submitTx', { tx: new Uint8Array(0) }],
      ['submitTx', { tx: 'not bytes' }],
      ['submitTx', { tx: Uint8Array.of(1), extra: true }],
      ['txStatus', { txHash: new Uint8Array(31) }],
      ['txStatus', { txHash: new Uint8Array(32), reportEviction: false }],
      ['submitTx', { tx: Uint8Array.of(1), reportDuplicate: false }],
      ['pendingSequence', {}],
      ['pendingSequence', { sender: new Uint8Array(31) }],
      [
        'pendingSequence',
        { sender: new Uint8Array(32), account: { module: 'caesar', account: Uint8Array.of(1) } },
      ],
      ['pendingSequence', { account: { module: 'Caesar', account: Uint8Array.of(1) } }],
      ['pendingSequence', { account: { module: 'caesar', account: new Uint8Array(65) } }],
      ['query', { path: '../../etc', data: new Uint8Array(0) }],
      ['query', { path: 'kv/get', data: new Uint8Array(MAX_QUERY_DATA_BYTES + 1) }],
      ['query', { path: 'kv/get', data: new Uint8Array(0), height: 0 }],
      ['status', { verbose: true }],
      ['getBlock', { height: 1.5 }],
      ['getBlock', {}],
      ['validatorUpdates', { fromHeight: 4, toHeight: 3 }],
      ['validatorUpdates', { fromHeight: 0, toHeight: 3 }],
      ['validatorUpdates', { fromHeight: 1, toHeight: 1 + MAX_VALIDATOR_UPDATE_SPAN }],
    ];
    try {
      for (const [method, request] of refused) {
        await assert.rejects(
          raw.call(method, request),
          isStoqError(StoqErrorCode.INVALID_ARGUMENT),
          `${method} ${JSON.stringify(request, (_k, v: unknown) => (v instanceof Uint8Array ? v.length : v))}`,
        );
      }
    } finally {
      session.connection.close();
    }
    assert.equal(calls.length, before, 'no handler ran for a refused request');
  });

  it('submits a batch: one result per transaction, in order, each as submitTx answers', async () => {
    const txs = [Uint8Array.of(1, 1), Uint8Array.of(2), Uint8Array.of(7, 7), Uint8Array.of(1, 2)];
    const results = await client.submitTxs(txs);
    assert.deepEqual(results, [
      { ok: true, txHash: sha256(txs[0] as Uint8Array) },
      { ok: false, code: 'TX_BAD_SIGNATURE', message: 'signature does not verify' },
      {
        ok: false,
        code: 'TX_MALFORMED',
        message: 'not a transaction',
        txHash: sha256(txs[2] as Uint8Array),
      },
      { ok: true, txHash: sha256(txs[3] as Uint8Array) },
    ]);
    assert.equal(calls.at(-1), 'submitTxs client 4');

    // The largest batch: MAX_SUBMIT_BATCH transactions of MAX_SUBMIT_BATCH_BYTES in all fit the
    // default message limit.
    const size = MAX_SUBMIT_BATCH_BYTES / MAX_SUBMIT_BATCH;
    assert.ok(Number.isInteger(size));
    const largest = Array.from({ length: MAX_SUBMIT_BATCH }, (_, i) => {
      const tx = new Uint8Array(size);
      tx[0] = 1;
      tx[1] = i >> 8;
      tx[2] = i & 0xff;
      return tx;
    });
    const answered = await client.submitTxs(largest);
    assert.equal(answered.length, MAX_SUBMIT_BATCH);
    answered.forEach((result, i) =>
      assert.deepEqual(result, { ok: true, txHash: sha256(largest[i] as Uint8Array) }),
    );

    // A handler that answers the wrong number of results is a server bug: INTERNAL.
    await assert.rejects(
      client.submitTxs([Uint8Array.of(9), Uint8Array.of(1)]),
      isStoqError(StoqErrorCode.INTERNAL),
    );
  });

  it('admits a mixed batch into a real mempool, each transaction on its own', async () => {
    const alice = makeSender();
    const bob = makeSender();
    const valid = signedTx(alice, kvSet('batch/a', 'one'));
    const next = signedTx(alice, kvSet('batch/b', 'two'));
    const forged = signedTx(bob, kvSet('batch/c', 'three'));
    forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1;
    const otherChain = signedTx(bob, kvSet('batch/d', 'four'), { chainId: 'another-chain' });
    const txs = [valid, forged, valid, otherChain, next];

    const results = await mempoolClient.submitTxs(txs);
    assert.equal(results.length, txs.length);
    const hashOf = (tx: Uint8Array): Uint8Array => decodeTransaction(tx).txHash;
    assert.deepEqual(results[0], { ok: true, txHash: hashOf(valid) });
    assert.equal(results[1]?.ok, false);
    assert.equal(results[1]?.ok === false && results[1].code, TransactionErrorCode.BAD_SIGNATURE);
    // The same bytes again: already pending, answered as submitTx answers a duplicate.
    assert.deepEqual(results[2], { ok: true, txHash: hashOf(valid) });
    assert.equal(results[3]?.ok === false && results[3].code, TransactionErrorCode.WRONG_CHAIN);
    assert.deepEqual(results[4], { ok: true, txHash: hashOf(next) });

    assert.equal(mempool.size(), 2, 'the two valid transactions, once each');
    assert.ok(mempool.has(hashOf(valid)) && mempool.has(hashOf(next)));
    // Each result is what submitTx answers for that transaction (now: pending or refused); the
    // client asks submitTx to say a pending one is a duplicate, the batch does not.
    for (const [i, tx] of txs.entries()) {
      const result = results[i]!;
      assert.deepEqual(
        await mempoolClient.submitTx(tx),
        result.ok ? { ...result, duplicate: true } : result,
        `transaction ${i}`,
      );
    }
    assert.equal(mempool.size(), 2);
  });

  it('says duplicate and evicted only to callers that ask (a client from before them)', async () => {
    const session = await caller.endpoint.connect(withMempoolAddress);
    const raw = createClient(lax, session);
    try {
      const tx = signedTx(makeSender(), kvSet('asked/a', 'one'));
      const txHash = decodeTransaction(tx).txHash;
      assert.deepEqual(await raw.call('submitTx', { tx }), { ok: true, txHash });
      assert.deepEqual(await raw.call('submitTx', { tx }), { ok: true, txHash });
      assert.deepEqual(await raw.call('submitTx', { tx, reportDuplicate: true }), {
        ok: true,
        txHash,
        duplicate: true,
      });
      assert.deepEqual(await mempoolClient.submitTx(tx), { ok: true, txHash, duplicate: true });
    } finally {
      session.connection.close();
    }
    const old = await caller.endpoint.connect(server.address);
    try {
      const evictedHash = new Uint8Array(32).fill(3);
      assert.deepEqual(await createClient(lax, old).call('txStatus', { txHash: evictedHash }), {
        status: 'unknown',
      });
      assert.deepEqual(
        await createClient(lax, old).call('txStatus', {
          txHash: evictedHash,
          reportEviction: true,
        }),
        { status: 'unknown', evicted },
      );
    } finally {
      old.connection.close();
    }
  });

  it('refuses empty and oversized batches before sending, and the server refuses them too', async () => {
    const before = calls.length;
    const refusedWith = (reason: SubmitBatchRefusal) => (error: unknown) => {
      isStoqError(StoqErrorCode.INVALID_ARGUMENT)(error);
      assert.equal((error as StoqError).detail.reason, reason);
      return true;
    };
    await assert.rejects(client.submitTxs([]), refusedWith(SubmitBatchRefusal.EMPTY));
    await assert.rejects(
      client.submitTxs(Array.from({ length: MAX_SUBMIT_BATCH + 1 }, () => Uint8Array.of(1))),
      refusedWith(SubmitBatchRefusal.TOO_MANY_TXS),
    );
    // 1,024 transactions one byte over the byte limit in all, below the message limit.
    const overBytes = Array.from({ length: MAX_SUBMIT_BATCH }, () =>
      new Uint8Array(MAX_SUBMIT_BATCH_BYTES / MAX_SUBMIT_BATCH + 1).fill(1),
    );
    await assert.rejects(
      client.submitTxs(overBytes),
      refusedWith(SubmitBatchRefusal.TOO_MANY_BYTES),
    );
    // One bad transaction refuses the whole request (schema), as for submitTx.
    await assert.rejects(
      client.submitTxs([Uint8Array.of(1), new Uint8Array(0)]),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
    await assert.rejects(
      client.submitTxs([Uint8Array.of(1), new Uint8Array(MAX_TX_BYTES + 1)]),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );

    const session = await caller.endpoint.connect(server.address);
    const raw = createClient(lax, session);
    const refused: unknown[] = [
      { txs: [] },
      { txs: Array.from({ length: MAX_SUBMIT_BATCH + 1 }, () => Uint8Array.of(1)) },
      { txs: overBytes },
      { txs: Uint8Array.of(1) },
      { txs: 'not an array' },
      { txs: [Uint8Array.of(1), 'not bytes'] },
      { txs: [Uint8Array.of(1), 2] },
      { txs: [new Uint8Array(0)] },
      { txs: [new Uint8Array(MAX_TX_BYTES + 1)] },
      { txs: [Uint8Array.of(1)], extra: true },
      {},
    ];
    try {
      for (const request of refused) {
        await assert.rejects(
          raw.call('submitTxs', request),
          isStoqError(StoqErrorCode.INVALID_ARGUMENT),
          JSON.stringify(request, (_k, v: unknown) =>
            v instanceof Uint8Array ? `${v.length} bytes` : v,
          ).slice(0, 200),
        );
      }
    } finally {
      session.connection.close();
    }
    assert.equal(calls.length, before, 'no handler ran: nothing was admitted');
  });

  it('maps domain error codes by their words, and can be told otherwise', () => {
    const domain = (code: string): HyperMeshError => new HyperMeshError(code, code);
    assert.equal(defaultWireCode(domain('KV_KEY_NOT_FOUND')), StoqErrorCode.NOT_FOUND);
    assert.equal(defaultWireCode(domain('TX_MALFORMED')), StoqErrorCode.INVALID_ARGUMENT);
    assert.equal(defaultWireCode(domain('TX_WRONG_CHAIN')), StoqErrorCode.INVALID_ARGUMENT);
    assert.equal(defaultWireCode(domain('MEMPOOL_SENDER_LIMIT')), StoqErrorCode.RESOURCE_EXHAUSTED);
    assert.equal(defaultWireCode(domain('NODE_SYNCING')), StoqErrorCode.UNAVAILABLE);
    assert.equal(defaultWireCode(domain('STORAGE_IO')), StoqErrorCode.INTERNAL);
    const custom = wireError(domain('STORAGE_IO'), () => StoqErrorCode.UNAVAILABLE);
    assert.ok(custom instanceof StoqError && custom.code === StoqErrorCode.UNAVAILABLE);
    const passed = new StoqError(StoqErrorCode.CANCELLED, 'x');
    assert.equal(wireError(passed), passed);
    const plain = new Error('plain');
    assert.equal(wireError(plain), plain);
  });
});
