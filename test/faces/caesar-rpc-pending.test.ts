import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { blockReceipts } from '../../src/consensus/application/tx-results.js';
import { decodeTransaction } from '../../src/consensus/application/index.js';
import { Mempool } from '../../src/consensus/mempool.js';
import { toHex } from '../../src/crypto/bytes.js';
import {
  createCaesarRpcClient,
  registerCaesarRpc,
  type CaesarRpcClient,
} from '../../src/faces/caesar-rpc.js';
import { accountHistoryPage, storedReceipt } from '../../src/node/tx-receipts.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/index.js';
import { makeSender, type TestNode } from '../consensus/application/fixture.js';
import { Cluster } from '../consensus/net/net-fixture.js';
import { addressOf, transfer } from '../caesar/caesar-fixture.js';
import {
  blockInput,
  makeValidator,
  openStakingNode,
  stakingGenesis,
} from '../caesar/staking-fixture.js';
import { nextBlock } from '../storage/chain-fixture.js';

/**
 * `receipt` of `hypermesh.caesar.v1` tells "wait" from "lost" (over the in-memory STOQ
 * transport): a transaction admitted to the node's mempool and not yet in a block answers
 * `pending`, the same one after its block commits answers its receipt, and a transaction the
 * node has never seen is `NOT_FOUND`. The server reads a real Caesar application, a real
 * mempool over it, and the receipts stored with each block, as caesar-service.ts wires them.
 */
let cluster: Cluster;
let app: TestNode;
let mempool: Mempool;
let caesar: CaesarRpcClient;

const alice = makeSender();
const bob = makeSender();

/** Executes and stores the next block with `txs` and their receipts, as the driver does. */
function commitBlock(txs: readonly Uint8Array[]): void {
  const height = app.nextHeight();
  const result = app.app.executeBlock(blockInput(height, txs, {}));
  app.store.saveBlock({
    ...nextBlock(app.store, { stateChanges: result.changes }),
    receipts: blockReceipts(height, result.txResults),
  });
  app.app.committed(height, result);
  mempool.update(height, txs);
}

before(async () => {
  app = await openStakingNode(
    stakingGenesis({
      validators: [{ validator: makeValidator(), selfBond: 10_000n }],
      balances: [{ address: addressOf(alice), amount: 5_000n }],
    }),
  );
  mempool = new Mempool(app.app);
  commitBlock([]);
  cluster = await Cluster.create('memory', ['n1', { name: 'carol', role: 'client' }]);
  const server = await cluster.endpoint('n1');
  registerCaesarRpc(server.endpoint, {
    query: (request) => app.app.query(request),
    submit: (tx) => mempool.add(tx),
    receipt: (txHash) => storedReceipt(app.store, txHash),
    pending: (txHash) => mempool.has(txHash),
    history: (account, from, limit) => accountHistoryPage(app.store, account, from, limit),
  });
  const caller = await cluster.endpoint('carol', undefined, { n1: [server.address] });
  caesar = createCaesarRpcClient({ endpoint: caller.endpoint, peer: 'n1' });
});

after(async () => {
  await cluster.close();
  await app.close();
});

const isNotFound = (error: unknown): boolean =>
  error instanceof StoqError &&
  error.code === StoqErrorCode.NOT_FOUND &&
  error.detail['reason'] === 'no-receipt';

describe('hypermesh.caesar.v1 receipt', () => {
  it('answers pending while the mempool holds a transaction, then its receipt', async () => {
    const tx = transfer(alice, { to: addressOf(bob), amount: 700n });
    const txHash = decodeTransaction(tx).txHash;
    await assert.rejects(caesar.receipt(txHash), isNotFound, 'not yet submitted: unknown');

    const admitted = await caesar.submitTx(tx);
    assert.equal(admitted.ok, true, JSON.stringify(admitted));
    assert.equal(admitted.ok && toHex(admitted.txHash), toHex(txHash));
    assert.equal(mempool.has(txHash), true);
    assert.deepEqual(await caesar.receipt(txHash), { status: 'pending' });

    commitBlock([tx]);
    assert.equal(mempool.has(txHash), false);
    const answer = await caesar.receipt(txHash);
    assert.equal(answer.status, 'committed');
    assert.equal(toHex(answer.receipt.txHash), toHex(txHash));
    assert.equal(answer.receipt.height, app.nextHeight() - 1);
    assert.equal(answer.receipt.index, 0);
    assert.equal(answer.receipt.code, 0, answer.receipt.log);
    assert.ok(answer.receipt.events.some((event) => event.type === 'caesar/transfer'));
  });

  it('answers NOT_FOUND for a transaction the node has never seen', async () => {
    await assert.rejects(caesar.receipt(new Uint8Array(32).fill(7)), isNotFound);
    const neverSent = decodeTransaction(transfer(alice, { to: addressOf(bob), amount: 1n })).txHash;
    await assert.rejects(caesar.receipt(neverSent), isNotFound);
  });
});
