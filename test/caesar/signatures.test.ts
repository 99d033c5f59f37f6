import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeCanonical, encodeCanonical } from '../../src/codec/cbor.js';
import {
  caesarBalanceQuery,
  caesarFeePoolQuery,
  encodeTransfer,
  verifyCaesarBalance,
  verifyCaesarFeePool,
} from '../../src/caesar/index.js';
import type { CaesarGenesis } from '../../src/caesar/index.js';
import {
  SEQUENCE_QUERY,
  TransactionErrorCode,
  decodeSequence,
  decodeTransaction,
} from '../../src/consensus/application/index.js';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import { mintStamp } from '../../src/consensus/proof/hashcash.js';
import { blockAt, DIFFICULTY, makeSender, tx } from '../consensus/application/fixture.js';
import type { TestNode } from '../consensus/application/fixture.js';
import { TOKEN, addressOf, openCaesarNode, transfer } from './caesar-fixture.js';

/**
 * Issue 6 §4, bad input: mis-signed Caesar transactions. The router checks the envelope's
 * Ed25519 signature before the Caesar module sees the body, so a transfer whose signature does
 * not verify under its sender's key is refused at admission (`TX_BAD_SIGNATURE`), a block
 * holding it is invalid as a whole, and nothing of that block is recorded: balances, the fee
 * pool, the sender's sequence and the state root stay where they were.
 */

/** Envelope field positions: [version, chainId, sender, sequence, module, body, nonce, signature]. */
const SENDER = 2;
const BODY = 5;
const NONCE = 6;
const SIGNATURE = 7;

function withField(bytes: Uint8Array, index: number, value: unknown): Uint8Array {
  const fields = decodeCanonical(bytes) as unknown[];
  fields[index] = value;
  return encodeCanonical(fields);
}

/** The transaction with a fresh stamp over its (changed) hash, so only the signature is wrong. */
function restamped(bytes: Uint8Array): Uint8Array {
  const { txHash } = decodeTransaction(bytes);
  return withField(bytes, NONCE, mintStamp(txHash, DIFFICULTY));
}

describe('mis-signed caesar transactions', () => {
  const alice = makeSender();
  const bob = makeSender();
  const mallory = makeSender();
  const genesis: CaesarGenesis = {
    token: { ...TOKEN, supply: 1_000_000n },
    allocations: [
      { address: addressOf(alice), amount: 700_000n },
      { address: addressOf(bob), amount: 300_000n },
    ],
  };
  let node: TestNode;
  before(async () => {
    node = await openCaesarNode(genesis);
    node.executeAndCommit([]);
  });
  after(async () => {
    await node.close();
  });

  const ledger = () => ({
    alice: verifyCaesarBalance(
      addressOf(alice),
      node.app.query(caesarBalanceQuery(addressOf(alice))),
    ),
    bob: verifyCaesarBalance(addressOf(bob), node.app.query(caesarBalanceQuery(addressOf(bob)))),
    mallory: verifyCaesarBalance(
      addressOf(mallory),
      node.app.query(caesarBalanceQuery(addressOf(mallory))),
    ),
    pool: verifyCaesarFeePool(node.app.query(caesarFeePoolQuery())),
    aliceSequence: decodeSequence(
      node.app.query({ path: SEQUENCE_QUERY, data: alice.publicKey }).value,
    ),
    root: Buffer.from(node.store.state.root()).toString('hex'),
  });

  /** Refused at admission with BAD_SIGNATURE; any block holding it is invalid; nothing moves. */
  function refusedEverywhere(bad: Uint8Array, what: string): void {
    const before = ledger();
    const check = node.app.checkTx(bad);
    assert.equal(check.ok ? 'admitted' : check.code, TransactionErrorCode.BAD_SIGNATURE, what);
    // Alone, and behind a valid transfer of bob's: the whole block is refused.
    const valid = transfer(bob, { to: addressOf(alice), amount: 10n, fee: 1n }, bob.sequence);
    for (const [transactions, index] of [
      [[bad], 0],
      [[valid, bad], 1],
    ] as const) {
      assert.throws(
        () => node.app.executeBlock(blockAt(node.nextHeight(), transactions)),
        (error: unknown) =>
          error instanceof ConsensusError &&
          error.code === ConsensusErrorCode.INVALID_BLOCK &&
          error.detail['reason'] === TransactionErrorCode.BAD_SIGNATURE &&
          error.detail['index'] === index,
        `${what}: a block with it at index ${index} is invalid`,
      );
    }
    // A proposer leaves it out and keeps the valid one.
    const { transactions } = node.app.prepareProposal(
      blockAt(node.nextHeight(), []),
      [bad, valid],
      Number.MAX_SAFE_INTEGER,
    );
    assert.deepEqual(transactions, [valid], `${what}: the proposal leaves it out`);
    assert.deepEqual(ledger(), before, `${what}: nothing recorded`);
  }

  it('a transfer with a flipped signature bit is refused, and so is every block holding it', () => {
    const genuine = transfer(alice, { to: addressOf(bob), amount: 1_000n, fee: 5n }, 0);
    const signature = Uint8Array.from(decodeTransaction(genuine).signature);
    for (const at of [0, 31, 63]) {
      const flipped = signature.slice();
      flipped[at] = (flipped[at] as number) ^ 0x01;
      const bad = withField(genuine, SIGNATURE, flipped);
      // Same transaction hash, so the stamp still holds: only the signature is wrong.
      assert.deepEqual(decodeTransaction(bad).txHash, decodeTransaction(genuine).txHash);
      refusedEverywhere(bad, `signature byte ${at} flipped`);
    }
  });

  it("a transfer out of alice's account signed by mallory's key is refused", () => {
    // Mallory signs a transfer from alice's sequence 0 to herself, then names alice as sender.
    const forged = tx(mallory, encodeTransfer({ to: addressOf(mallory), amount: 500_000n }), {
      module: 'caesar',
      sequence: 0,
    });
    const asAlice = restamped(withField(forged, SENDER, alice.publicKey));
    assert.deepEqual(decodeTransaction(asAlice).sender, alice.publicKey);
    refusedEverywhere(asAlice, "mallory's signature under alice's key");
  });

  it('a transfer alice signed, with its body changed, is refused (her signature covers the body)', () => {
    const signed = transfer(alice, { to: addressOf(bob), amount: 1n }, 0);
    const redirected = restamped(
      withField(signed, BODY, encodeTransfer({ to: addressOf(mallory), amount: 600_000n })),
    );
    refusedEverywhere(redirected, 'a redirected body');
  });

  it('after the refusals the sequence they named is still free: the genuine transfer applies', () => {
    const genuine = transfer(alice, { to: addressOf(bob), amount: 1_000n, fee: 5n }, 0);
    const before = ledger();
    assert.equal(before.aliceSequence, 0);
    const result = node.executeAndCommit([genuine]);
    assert.deepEqual(
      result.txResults.map((r) => r.code),
      [0],
    );
    const afterwards = ledger();
    assert.equal(afterwards.alice, before.alice - 1_005n);
    assert.equal(afterwards.bob, before.bob + 1_000n);
    assert.equal(afterwards.pool, before.pool + 5n);
    assert.equal(afterwards.mallory, 0n);
    assert.equal(afterwards.aliceSequence, 1);
  });
});
