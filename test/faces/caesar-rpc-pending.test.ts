import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeTransaction } from '../../src/consensus/application/index.js';
import type { Mempool } from '../../src/consensus/mempool.js';
import { toHex } from '../../src/crypto/bytes.js';
import { type CaesarRpcClient } from '../../src/faces/caesar-rpc.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/index.js';
import { makeSender, type TestNode } from '../consensus/application/fixture.js';
import { addressOf, transfer } from '../caesar/caesar-fixture.js';
import { makeValidator, stakingGenesis } from '../caesar/staking-fixture.js';
import { openCaesarRpcFixture, type CaesarRpcFixture } from './caesar-rpc-fixture.js';

/**
 * `receipt` of `hypermesh.caesar.v1` tells "wait" from "lost" (over the in-memory STOQ
 * transport): a transaction admitted to the node's mempool and not yet in a block answers
 * `pending`, the same one after its block commits answers its receipt, and a transaction the
 * node has never seen is `NOT_FOUND`. The server reads a real Caesar application, a real
 * mempool over it, and the receipts stored with each block, as caesar-service.ts wires them.
 */
const alice = makeSender();
const bob = makeSender();

let fixture: CaesarRpcFixture;
let app: TestNode;
let mempool: Mempool;
let caesar: CaesarRpcClient;
let commitBlock: CaesarRpcFixture['commitBlock'];

before(async () => {
  fixture = await openCaesarRpcFixture(
    stakingGenesis({
      validators: [{ validator: makeValidator(), selfBond: 10_000n }],
      balances: [{ address: addressOf(alice), amount: 5_000n }],
    }),
  );
  ({ app, mempool, caesar, commitBlock } = fixture);
});

after(() => fixture.close());

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
    assert.equal(admitted.ok && admitted.duplicate, false);
    assert.equal(mempool.has(txHash), true);
    // The same bytes again: already pending, and said so (nothing new was admitted).
    const again = await caesar.submitTx(tx);
    assert.equal(again.ok && toHex(again.txHash), toHex(txHash));
    assert.equal(again.ok && again.duplicate, true);
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
