import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mapItem, textItem, bytesItem, amountItem } from '../../src/caesar/cbor.js';
import {
  CAESAR_RESULT_CODES,
  CaesarError,
  CaesarErrorCode,
  CaesarStateError,
  FEE_POOL_KEY,
  PARAMS_KEY,
  balanceKey,
  caesarBalanceQuery,
  caesarFeePoolQuery,
  caesarParamsQuery,
  caesarStateKey,
  encodeStoredAmount,
  verifyCaesarBalance,
  verifyCaesarFeePool,
  verifyCaesarParams,
} from '../../src/caesar/index.js';
import type { CaesarGenesis } from '../../src/caesar/index.js';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import {
  ApplicationError,
  ApplicationErrorCode,
  TransactionErrorCode,
} from '../../src/consensus/application/index.js';
import type { BlockExecutionResult } from '../../src/consensus/app.js';
import { decodeStateProof, verifyStateProof } from '../../src/storage/index.js';
import { blockAt, makeSender } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';
import { TOKEN, addressOf, openCaesarNode, rawCaesarTx, transfer } from './caesar-fixture.js';

const codes = (result: BlockExecutionResult) => result.txResults.map((r) => r.code);

/** The state keys a block changed, as text: only `acct/…` (sequences) for refused transactions. */
const changedPrefixes = (result: BlockExecutionResult) =>
  result.changes.map(({ key }) => new TextDecoder().decode(key.subarray(0, key.indexOf(0x2f) + 1)));

describe('caesar module in the application', () => {
  const alice = makeSender();
  const bob = makeSender();
  const carol = makeSender();
  const dave = makeSender();
  const genesis: CaesarGenesis = {
    token: { ...TOKEN, supply: 1_000_000n },
    allocations: [
      { address: addressOf(alice), amount: 600_000n },
      { address: addressOf(bob), amount: 400_000n },
    ],
  };
  let node: TestNode;
  before(async () => {
    node = await openCaesarNode(genesis);
  });
  after(async () => {
    await node.close();
  });

  const balance = (sender: Sender, height?: number) =>
    verifyCaesarBalance(
      addressOf(sender),
      node.app.query(caesarBalanceQuery(addressOf(sender), height)),
    );
  const feePool = () => verifyCaesarFeePool(node.app.query(caesarFeePoolQuery()));

  it('genesis writes the parameters and the allocations at height 1, proven', () => {
    const first = node.executeAndCommit([]);
    assert.deepEqual(codes(first), []);
    assert.equal(balance(alice), 600_000n);
    assert.equal(balance(bob), 400_000n);
    assert.equal(balance(carol), 0n, 'an unknown account is proven absent: zero');
    assert.equal(feePool(), 0n);
    assert.deepEqual(verifyCaesarParams(node.app.query(caesarParamsQuery())), genesis.token);
  });

  it('a transfer debits amount + fee, credits the recipient (creating its account), pools the fee', () => {
    const result = node.executeAndCommit([
      transfer(alice, {
        to: addressOf(carol),
        amount: 1_000n,
        fee: 7n,
        memo: new Uint8Array([1, 2]),
      }),
      // Carol spends what she received in the same block.
      transfer(carol, { to: addressOf(bob), amount: 990n, fee: 10n }),
    ]);
    assert.deepEqual(codes(result), [0, 0]);
    assert.deepEqual(
      result.txResults.map((r) => r.log),
      ['', ''],
    );
    assert.equal(balance(alice), 600_000n - 1_007n);
    assert.equal(balance(bob), 400_990n);
    assert.equal(balance(carol), 0n, 'emptied: the key is deleted, absence proves zero');
    assert.equal(feePool(), 17n);
    assert.equal(node.store.state.get(caesarStateKey(balanceKey(addressOf(carol)))), null);
  });

  it('balances are answered with proofs that verify, at the latest and at earlier heights', () => {
    const address = addressOf(alice);
    const response = node.app.query(caesarBalanceQuery(address));
    assert.deepEqual(response.stateRoot, node.store.state.root());
    const key = caesarStateKey(balanceKey(address));
    const proof = decodeStateProof(response.proof!);
    assert.ok(verifyStateProof(response.stateRoot, key, response.value, proof));
    assert.deepEqual(response.value, encodeStoredAmount(600_000n - 1_007n));
    // The proof fails for another value, another key, or another root.
    assert.ok(!verifyStateProof(response.stateRoot, key, encodeStoredAmount(600_000n), proof));
    assert.ok(
      !verifyStateProof(
        response.stateRoot,
        caesarStateKey(balanceKey(addressOf(bob))),
        response.value,
        proof,
      ),
    );
    assert.ok(!verifyStateProof(node.store.state.root(1), key, response.value, proof));
    assert.throws(
      () => verifyCaesarBalance(address, { ...response, value: encodeStoredAmount(10n ** 30n) }),
      (error: unknown) =>
        error instanceof CaesarStateError && error.code === 'CAESAR_PROOF_INVALID',
    );
    assert.throws(
      () => verifyCaesarBalance(addressOf(bob), response),
      (error: unknown) =>
        error instanceof CaesarStateError && error.code === 'CAESAR_PROOF_INVALID',
    );
    assert.throws(
      () => verifyCaesarBalance(address, { ...response, proof: undefined }),
      CaesarStateError,
    );
    assert.equal(balance(alice, 1), 600_000n, 'height 1 still answers with its own value');
    assert.equal(balance(carol, 1), 0n);
  });

  it('insufficient funds: refused with a stable code and log, nothing moved, no fee charged', () => {
    const before = { alice: balance(alice), bob: balance(bob), pool: feePool() };
    const result = node.executeAndCommit([
      // The amount alone is covered, amount + fee is not.
      transfer(bob, { to: addressOf(dave), amount: before.bob, fee: 1n }),
      transfer(dave, { to: addressOf(alice), amount: 1n }),
    ]);
    const insufficient = CAESAR_RESULT_CODES[CaesarErrorCode.INSUFFICIENT_FUNDS];
    assert.equal(insufficient, 8);
    assert.deepEqual(codes(result), [insufficient, insufficient]);
    assert.equal(
      result.txResults[0]!.log,
      `CAESAR_INSUFFICIENT_FUNDS: transfer: balance ${before.bob} is below amount ${before.bob} + fee 1`,
    );
    assert.deepEqual(
      new Set(changedPrefixes(result)),
      new Set(['acct/']),
      'only the sequences moved',
    );
    assert.deepEqual({ alice: balance(alice), bob: balance(bob), pool: feePool() }, before);
    assert.equal(balance(dave), 0n);
    // The mempool refuses it too, with the string code.
    const check = node.app.checkTx(
      transfer(bob, { to: addressOf(dave), amount: before.bob + 1n }, bob.sequence),
    );
    assert.equal(check.ok ? 'admitted' : check.code, CaesarErrorCode.INSUFFICIENT_FUNDS);
    // Exactly the whole balance goes through.
    const exact = node.executeAndCommit([
      transfer(bob, { to: addressOf(dave), amount: before.bob - 5n, fee: 5n }),
    ]);
    assert.deepEqual(codes(exact), [0]);
    assert.equal(balance(bob), 0n);
    assert.equal(balance(dave), before.bob - 5n);
  });

  it('a self-transfer is refused', () => {
    const result = node.executeAndCommit([
      transfer(alice, { to: addressOf(alice), amount: 1n, fee: 1n }),
    ]);
    assert.deepEqual(codes(result), [CAESAR_RESULT_CODES[CaesarErrorCode.SELF_TRANSFER]]);
    assert.match(result.txResults[0]!.log, /^CAESAR_SELF_TRANSFER: /);
    assert.deepEqual(new Set(changedPrefixes(result)), new Set(['acct/']));
  });

  it('bad bodies in a block are refused with their codes and write nothing', () => {
    const to = bytesItem(addressOf(bob));
    const body = (fields: Record<string, Uint8Array>) =>
      mapItem({ op: textItem('transfer'), to, fee: amountItem(0n), ...fields });
    const cases: [Uint8Array, CaesarErrorCode][] = [
      [Uint8Array.of(0xff), CaesarErrorCode.MALFORMED_BODY],
      [body({ amount: amountItem(1n), from: to }), CaesarErrorCode.UNKNOWN_FIELD],
      [body({ amount: Uint8Array.of(0x20) }), CaesarErrorCode.INVALID_AMOUNT],
      [
        body({ amount: Uint8Array.of(0xfb, 0x40, 0x14, 0, 0, 0, 0, 0, 0) }),
        CaesarErrorCode.INVALID_AMOUNT,
      ],
      [
        body({ amount: Uint8Array.of(0xc2, 0x51, 1, ...new Uint8Array(16)) }),
        CaesarErrorCode.AMOUNT_TOO_LARGE,
      ],
      [body({ amount: amountItem(0n) }), CaesarErrorCode.ZERO_AMOUNT],
    ];
    const before = { alice: balance(alice), bob: balance(bob), pool: feePool() };
    const result = node.executeAndCommit(cases.map(([bytes]) => rawCaesarTx(alice, bytes)));
    assert.deepEqual(
      codes(result),
      cases.map(([, code]) => CAESAR_RESULT_CODES[code]),
    );
    assert.deepEqual(
      result.txResults.map((r) => r.log.slice(0, r.log.indexOf(':'))),
      cases.map(([, code]) => code),
    );
    assert.deepEqual(new Set(changedPrefixes(result)), new Set(['acct/']), 'nothing but sequences');
    assert.deepEqual({ alice: balance(alice), bob: balance(bob), pool: feePool() }, before);
    // The mempool refuses them before they reach a block.
    for (const [bytes, code] of cases) {
      const check = node.app.checkTx(rawCaesarTx(alice, bytes, alice.sequence));
      assert.equal(check.ok ? 'admitted' : check.code, code);
    }
  });

  it('a replayed transfer is rejected by the router: the block holding it is invalid', () => {
    const paid = transfer(alice, { to: addressOf(dave), amount: 50n, fee: 1n });
    assert.deepEqual(codes(node.executeAndCommit([paid])), [0]);
    const afterFirst = balance(dave);
    const replay = node.app.checkTx(paid);
    assert.equal(replay.ok ? 'admitted' : replay.code, TransactionErrorCode.SEQUENCE_USED);
    assert.throws(
      () => node.app.executeBlock(blockAt(node.nextHeight(), [paid])),
      (error: unknown) =>
        error instanceof ConsensusError &&
        error.code === ConsensusErrorCode.INVALID_BLOCK &&
        error.detail['reason'] === TransactionErrorCode.SEQUENCE_USED,
    );
    // Twice in one block: the second copy is the replay.
    const once = transfer(alice, { to: addressOf(dave), amount: 50n });
    assert.throws(
      () => node.app.executeBlock(blockAt(node.nextHeight(), [once, once])),
      (error: unknown) => error instanceof ConsensusError && error.detail['index'] === 1,
    );
    // Out of order: a later sequence before an earlier one is a gap.
    const later = transfer(alice, { to: addressOf(dave), amount: 1n });
    assert.throws(
      () => node.app.executeBlock(blockAt(node.nextHeight(), [later, once])),
      (error: unknown) =>
        error instanceof ConsensusError &&
        error.detail['reason'] === TransactionErrorCode.SEQUENCE_GAP,
    );
    assert.equal(balance(dave), afterFirst, 'nothing executed twice');
    assert.deepEqual(codes(node.executeAndCommit([once, later])), [0, 0]);
    assert.equal(balance(dave), afterFirst + 51n);
  });

  it('the fee pool and the parameters are proven from one key each; bad query data is refused', () => {
    const pool = node.app.query(caesarFeePoolQuery());
    assert.ok(
      verifyStateProof(
        pool.stateRoot,
        caesarStateKey(FEE_POOL_KEY),
        pool.value,
        decodeStateProof(pool.proof!),
      ),
    );
    const params = node.app.query(caesarParamsQuery());
    assert.ok(
      verifyStateProof(
        params.stateRoot,
        caesarStateKey(PARAMS_KEY),
        params.value,
        decodeStateProof(params.proof!),
      ),
    );
    // Conservation across everything above: the four accounts and the pool hold the supply.
    const total = [alice, bob, carol, dave].reduce((sum, s) => sum + balance(s), 0n) + feePool();
    assert.equal(total, genesis.token.supply);

    const invalidQuery = (error: unknown) =>
      error instanceof CaesarError && error.code === CaesarErrorCode.INVALID_QUERY;
    assert.throws(
      () => node.app.query({ path: 'caesar/balance', data: new Uint8Array(31) }),
      invalidQuery,
    );
    assert.throws(
      () => node.app.query({ path: 'caesar/params', data: new Uint8Array(1) }),
      invalidQuery,
    );
    assert.throws(
      () => node.app.query({ path: 'caesar/fees', data: new Uint8Array(1) }),
      invalidQuery,
    );
    assert.throws(() => caesarBalanceQuery(new Uint8Array(33)), invalidQuery);
    assert.throws(
      () => node.app.query({ path: 'caesar/supply', data: new Uint8Array(0) }),
      (error: unknown) =>
        error instanceof ApplicationError && error.code === ApplicationErrorCode.UNKNOWN_QUERY,
    );
  });
});
