import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TxResult } from '../../src/consensus/app.js';
import { blockReceipts, senderAccount } from '../../src/consensus/application/tx-results.js';
import { sha256 } from '../../src/crypto/hash.js';
import { accountHistoryPage } from '../../src/node/tx-receipts.js';
import { openStore, type NodeStore } from '../../src/storage/store.js';
import { hex, nextBlock, temporaryDirectory, text } from '../storage/chain-fixture.js';

/**
 * The account history the node serves (`accountHistory`, Caesar `history`, `wallet history`):
 * every transaction is indexed under its sender's account as well as under the accounts its
 * events name, so a refused transaction (no events) is in its sender's history, and an applied
 * one whose events name the sender is there once.
 */
describe('account history: receipts indexed by sender and events', () => {
  let dir: Awaited<ReturnType<typeof temporaryDirectory>>;
  let store: NodeStore;

  before(async () => {
    dir = await temporaryDirectory('tx-receipts');
    store = openStore(dir.file('store.db'));
  });
  after(async () => {
    store.close();
    await dir.cleanup();
  });

  const alice = sha256(text('alice key')).subarray(0, 32);
  const bob = sha256(text('bob key')).subarray(0, 32);
  const aliceAccount = senderAccount(alice);
  const bobAccount = senderAccount(bob);
  const carol = sha256(text('carol account'));
  const hashOf = (tag: string) => sha256(text(tag));
  const transfer = (from: Uint8Array, to: Uint8Array) => ({
    type: 'caesar/transfer',
    attributes: { from: hex(from), to: hex(to), amount: '5' },
    accounts: [from, to],
  });

  it('lists applied and refused transactions of the sender, each once, newest first, paged', () => {
    assert.equal(
      hex(aliceAccount),
      hex(sha256(alice)),
      "the sender's account is SHA-256 of its key",
    );
    const first: TxResult[] = [
      // Applied; its events name the sender's account and carol: one entry each.
      {
        txHash: hashOf('a0'),
        code: 0,
        log: '',
        events: [transfer(aliceAccount, carol)],
        sender: alice,
      },
      // Refused: no events, found under its sender's account only.
      {
        txHash: hashOf('a1'),
        code: 4,
        log: 'CAESAR_INSUFFICIENT_FUNDS: balance 1 is below 99',
        sender: alice,
      },
      // Applied without events (another module): under its sender only.
      { txHash: hashOf('b0'), code: 0, log: '', sender: bob },
    ];
    store.saveBlock({ ...nextBlock(store), receipts: blockReceipts(1, first) });
    const second: TxResult[] = [
      // Sent by bob to alice: in both histories, once each.
      {
        txHash: hashOf('b1'),
        code: 0,
        log: '',
        events: [transfer(bobAccount, aliceAccount)],
        sender: bob,
      },
      // A result built by hand, without a sender: indexed under no account.
      { txHash: hashOf('x0'), code: 7, log: 'X: refused' },
    ];
    store.saveBlock({ ...nextBlock(store), receipts: blockReceipts(2, second) });

    const history = (account: Uint8Array, limit = 10, before?: { height: number; index: number }) =>
      accountHistoryPage(store, account, before, limit);
    const summary = (account: Uint8Array) =>
      history(account).receipts.map((receipt) => [
        `${receipt.height}.${receipt.index}`,
        hex(receipt.txHash),
        receipt.code,
        receipt.log,
        receipt.events.length,
      ]);
    assert.deepEqual(summary(aliceAccount), [
      ['2.0', hex(hashOf('b1')), 0, '', 1],
      ['1.1', hex(hashOf('a1')), 4, 'CAESAR_INSUFFICIENT_FUNDS: balance 1 is below 99', 0],
      ['1.0', hex(hashOf('a0')), 0, '', 1],
    ]);
    assert.deepEqual(
      summary(bobAccount).map(([position]) => position),
      ['2.0', '1.2'],
    );
    assert.deepEqual(
      summary(carol).map(([position]) => position),
      ['1.0'],
      'the refused transaction is not in the history of the account it would have paid',
    );
    assert.deepEqual(
      summary(alice).map(([position]) => position),
      [],
      'indexed by the account, not by the raw key',
    );

    // Pages of one walk the same entries, and the last full page says where to go on.
    const walked: string[] = [];
    let before: { height: number; index: number } | undefined;
    for (;;) {
      const page = history(aliceAccount, 1, before);
      walked.push(...page.receipts.map((receipt) => `${receipt.height}.${receipt.index}`));
      if (page.next === null) break;
      before = page.next;
    }
    assert.deepEqual(walked, ['2.0', '1.1', '1.0']);
  });
});
