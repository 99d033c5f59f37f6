import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CAESAR_MODULE_NAME,
  CAESAR_RESULT_CODES,
  CaesarErrorCode,
  HYBRID_OP,
  HYBRID_SIGNATURE_TAG,
  caesarBalanceQuery,
  caesarInitialState,
  createCaesarModule,
  decodeCaesarBody,
  encodeHybridTx,
  encodeTransfer,
  hybridAddress,
  hybridSigningMessage,
  signHybridTransfer,
  verifyCaesarBalance,
} from '../../src/caesar/index.js';
import type { CaesarGenesis, HybridTx, TransferInput } from '../../src/caesar/index.js';
import type { BlockExecutionResult, TxCheckResult } from '../../src/consensus/app.js';
import {
  SEQUENCE_QUERY,
  TransactionErrorCode,
  accountSequenceKey,
  accountSequenceQuery,
  decodeSequence,
  decodeTransaction,
  sequenceKey,
} from '../../src/consensus/application/index.js';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import { Mempool } from '../../src/consensus/mempool.js';
import { tagPrefix } from '../../src/consensus/proof/hashing.js';
import { concatBytes } from '../../src/crypto/bytes.js';
import { createFalcon } from '../../src/crypto/falcon.js';
import type { FalconBackend, FalconKeyPair } from '../../src/crypto/falcon.js';
import { decodeStateProof, verifyStateProof } from '../../src/storage/index.js';
import {
  CHAIN_ID,
  blockAt,
  hex,
  makeSender,
  openNode,
  tx,
} from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';
import { TOKEN, addressOf, transfer } from './caesar-fixture.js';

/**
 * A hybrid account's sequence numbers are its own (docs/caesar.md, "Hybrid accounts"): whoever
 * holds only its Ed25519 key (the threat a hybrid account exists for) can neither spend from
 * it nor freeze it by using up the key's sequence numbers.
 */

interface HybridAccount {
  readonly sender: Sender;
  readonly falcon: FalconKeyPair;
  readonly address: Uint8Array;
}

const codes = (result: BlockExecutionResult) => result.txResults.map((r) => r.code);
const refusal = (result: TxCheckResult): string => (result.ok ? 'ok' : result.code);
const refusalMessage = (result: TxCheckResult): string => (result.ok ? '' : result.message);

describe('a hybrid account has a sequence of its own', () => {
  let falcon: FalconBackend;
  let victim: HybridAccount;
  /** The attacker: the victim's Ed25519 key with a FALCON key of its own, funded. */
  let attacker: HybridAccount;
  const bob = makeSender();
  let node: TestNode;

  before(async () => {
    falcon = createFalcon();
    const sender = makeSender();
    const keys = await falcon.generateKeyPair();
    const own = await falcon.generateKeyPair();
    victim = { sender, falcon: keys, address: hybridAddress(sender.publicKey, keys.publicKey) };
    attacker = { sender, falcon: own, address: hybridAddress(sender.publicKey, own.publicKey) };
    const genesis: CaesarGenesis = {
      token: { ...TOKEN, supply: 1_000_010n },
      allocations: [
        { address: victim.address, amount: 1_000_000n },
        { address: attacker.address, amount: 10n },
      ],
    };
    node = await openNode({
      modules: [createCaesarModule({ falcon })],
      initialState: caesarInitialState(genesis),
    });
    node.executeAndCommit([]);
  });
  after(async () => {
    await node?.close();
  });

  const balanceOf = (address: Uint8Array) =>
    verifyCaesarBalance(address, node.app.query(caesarBalanceQuery(address)));

  async function hybridTx(
    account: HybridAccount,
    input: TransferInput,
    sequence: number,
  ): Promise<Uint8Array> {
    const body = await signHybridTransfer({
      chainId: CHAIN_ID,
      sender: account.sender.publicKey,
      sequence,
      transfer: encodeTransfer(input),
      falcon: account.falcon,
      backend: falcon,
    });
    return tx(account.sender, body, { module: CAESAR_MODULE_NAME, sequence });
  }

  /** The next sequence `node` proves for the state key `key` (checked against its root). */
  function provenAt(query: { path: string; data: Uint8Array }, key: Uint8Array): number {
    const answer = node.app.query(query);
    assert.ok(answer.proof !== undefined);
    assert.ok(
      verifyStateProof(answer.stateRoot, key, answer.value, decodeStateProof(answer.proof)),
      'the sequence answer proves its value',
    );
    return decodeSequence(answer.value);
  }

  it('whoever holds only the Ed25519 key cannot use up, skip or refuse its sequence numbers', async () => {
    const to = addressOf(bob);
    const pool = new Mempool(node.app, { maxPerSender: 3 });

    // 1. Plain envelopes of the key, put in a block by a proposer: refused (its Ed25519 address
    //    has nothing), yet each uses one of the key's sequence numbers.
    const plain = [0, 1, 2].map((sequence) =>
      transfer(victim.sender, { to, amount: 1n }, sequence),
    );
    assert.deepEqual(
      codes(node.executeAndCommit(plain)),
      plain.map(() => CAESAR_RESULT_CODES[CaesarErrorCode.INSUFFICIENT_FUNDS]),
    );

    // 2. Zero-fee transfers from the key paired with the attacker's own FALCON key, at the
    //    sequence numbers the victim would use next; they fill their sender's mempool quota.
    const squatting = await Promise.all(
      [0, 1, 2].map((sequence) => hybridTx(attacker, { to, amount: 1n }, sequence)),
    );
    for (const bytes of squatting) assert.ok(pool.add(bytes).ok);
    assert.equal(refusal(node.app.checkTx(await hybridTx(attacker, { to, amount: 1n }, 3))), 'ok');

    // 3. A body naming the victim's FALCON key, signed with the attacker's: not admissible.
    const forged = decodeTransaction(await hybridTx(attacker, { to, amount: 1n }, 0));
    const claimed = tx(
      victim.sender,
      encodeHybridTx({
        ...(decodeCaesarBody(forged.body) as HybridTx),
        pqKey: victim.falcon.publicKey,
      }),
      { module: CAESAR_MODULE_NAME, sequence: 0 },
    );
    const added = pool.add(claimed);
    assert.equal(added.ok ? 'ok' : added.code, TransactionErrorCode.BAD_ACCOUNT_PROOF);

    // The victim's transfer at its account's sequence 0 is admitted under its own account...
    const first = await hybridTx(victim, { to, amount: 100n, fee: 1n }, 0);
    const checked = node.app.checkTx(first);
    assert.ok(checked.ok, refusalMessage(checked));
    assert.equal(checked.sender, `${CAESAR_MODULE_NAME}:${hex(victim.address)}`);
    assert.notEqual(checked.sender, hex(victim.sender.publicKey));
    assert.equal(checked.nextSequence, 0);
    assert.ok(pool.add(first).ok, 'the attacker did not use up the victim account’s quota');

    // ...and proposed and applied alongside the attacker's.
    const height = node.nextHeight();
    const proposal = node.app.prepareProposal(blockAt(height, []), pool.candidates(), 1 << 20);
    assert.equal(proposal.transactions.length, 4);
    assert.deepEqual(codes(proposal.result), [0, 0, 0, 0]);
    node.commit(proposal.result);
    pool.update(height, proposal.transactions);
    assert.equal(balanceOf(victim.address), 1_000_000n - 101n);
    assert.equal(balanceOf(attacker.address), 10n - 3n);

    // A refused hybrid transaction of the attacker's uses only the attacker's account's number.
    const broke = await hybridTx(attacker, { to, amount: 1_000n }, 3);
    assert.deepEqual(codes(node.executeAndCommit([broke])), [
      CAESAR_RESULT_CODES[CaesarErrorCode.INSUFFICIENT_FUNDS],
    ]);

    // The victim goes on with 1, 2: its numbering never saw the attacker's transactions.
    for (const sequence of [1, 2]) {
      const next = await hybridTx(victim, { to, amount: 1n }, sequence);
      assert.equal(refusal(node.app.checkTx(next)), 'ok');
      assert.deepEqual(codes(node.executeAndCommit([next])), [0]);
    }
    assert.equal(balanceOf(victim.address), 1_000_000n - 103n);

    // Every account's sequence, proven: the victim's 3, the attacker's 4, the key's own 3.
    assert.equal(
      provenAt(
        accountSequenceQuery(CAESAR_MODULE_NAME, victim.address),
        accountSequenceKey(CAESAR_MODULE_NAME, victim.address),
      ),
      3,
    );
    assert.equal(
      provenAt(
        accountSequenceQuery(CAESAR_MODULE_NAME, attacker.address),
        accountSequenceKey(CAESAR_MODULE_NAME, attacker.address),
      ),
      4,
    );
    assert.equal(
      provenAt(
        { path: SEQUENCE_QUERY, data: victim.sender.publicKey },
        sequenceKey(victim.sender.publicKey),
      ),
      3,
    );
    // The address's bytes as a sender key name another, empty, sequence.
    assert.equal(
      provenAt({ path: SEQUENCE_QUERY, data: victim.address }, sequenceKey(victim.address)),
      0,
    );
  });

  it('refuses the replay of an executed hybrid transaction: its sequence is used', async () => {
    const sequence = provenAt(
      accountSequenceQuery(CAESAR_MODULE_NAME, victim.address),
      accountSequenceKey(CAESAR_MODULE_NAME, victim.address),
    );
    const bytes = await hybridTx(victim, { to: addressOf(bob), amount: 5n }, sequence);
    assert.deepEqual(codes(node.executeAndCommit([bytes])), [0]);
    assert.equal(refusal(node.app.checkTx(bytes)), TransactionErrorCode.SEQUENCE_USED);
    // Its FALCON signature broken: the hybrid account's used sequence is read first (the module's
    // claimedSequenceAccount), before any signature is checked.
    const executed = decodeTransaction(bytes);
    const body = decodeCaesarBody(executed.body) as HybridTx;
    const pqSig = body.pqSig.slice();
    pqSig[40] = (pqSig[40] ?? 0) ^ 0x04;
    const forged = tx(victim.sender, encodeHybridTx({ ...body, pqSig }), {
      module: CAESAR_MODULE_NAME,
      sequence,
    });
    assert.equal(refusal(node.app.checkTx(forged)), TransactionErrorCode.SEQUENCE_USED);
    const height = node.nextHeight();
    assert.throws(
      () => node.executeAndCommit([bytes]),
      (error: unknown) =>
        error instanceof ConsensusError &&
        error.code === ConsensusErrorCode.INVALID_BLOCK &&
        error.detail['reason'] === TransactionErrorCode.SEQUENCE_USED,
    );
    assert.equal(node.nextHeight(), height, 'nothing stored');
  });

  it('a bad FALCON signature is inadmissible: a block holding it is invalid and writes nothing', async () => {
    const sequence = provenAt(
      accountSequenceQuery(CAESAR_MODULE_NAME, victim.address),
      accountSequenceKey(CAESAR_MODULE_NAME, victim.address),
    );
    const good = decodeTransaction(
      await hybridTx(victim, { to: addressOf(bob), amount: 5n }, sequence),
    );
    const body = decodeCaesarBody(good.body) as HybridTx;
    const pqSig = body.pqSig.slice();
    pqSig[40] = (pqSig[40] ?? 0) ^ 0x04;
    const bad = tx(victim.sender, encodeHybridTx({ ...body, pqSig }), {
      module: CAESAR_MODULE_NAME,
      sequence,
    });
    const checked = node.app.checkTx(bad);
    assert.equal(refusal(checked), TransactionErrorCode.BAD_ACCOUNT_PROOF);
    assert.match(refusalMessage(checked), new RegExp(CaesarErrorCode.HYBRID_BAD_SIGNATURE));
    const root = hex(node.store.state.root());
    const height = node.nextHeight();
    assert.throws(
      () => node.app.executeBlock(blockAt(height, [bad])),
      (error: unknown) =>
        error instanceof ConsensusError &&
        error.code === ConsensusErrorCode.INVALID_BLOCK &&
        error.detail['index'] === 0 &&
        error.detail['reason'] === TransactionErrorCode.BAD_ACCOUNT_PROOF,
    );
    const proposal = node.app.prepareProposal(blockAt(height, []), [bad], 1 << 20);
    assert.deepEqual(proposal.transactions, [], 'a proposer leaves it out');
    assert.equal(hex(node.store.state.root()), root);
    assert.equal(
      provenAt(
        accountSequenceQuery(CAESAR_MODULE_NAME, victim.address),
        accountSequenceKey(CAESAR_MODULE_NAME, victim.address),
      ),
      sequence,
      'its sequence is still free',
    );
  });

  it('a FALCON signature made under the shared-sequence rule (the old tag) does not verify', async () => {
    assert.equal(HYBRID_SIGNATURE_TAG, 'hypermesh/caesar/hybrid-signature/v2');
    const sequence = provenAt(
      accountSequenceQuery(CAESAR_MODULE_NAME, victim.address),
      accountSequenceKey(CAESAR_MODULE_NAME, victim.address),
    );
    const unsigned = {
      tx: encodeTransfer({ to: addressOf(bob), amount: 9n }),
      seq: sequence,
      pqKey: victim.falcon.publicKey,
    };
    const message = hybridSigningMessage(CHAIN_ID, victim.sender.publicKey, unsigned);
    const newPrefix = tagPrefix(HYBRID_SIGNATURE_TAG);
    assert.deepEqual(message.subarray(0, newPrefix.length), newPrefix);
    const oldMessage = concatBytes(
      tagPrefix('hypermesh/caesar/hybrid-signature'),
      message.subarray(newPrefix.length),
    );
    const signedWith = async (signed: Uint8Array) =>
      tx(
        victim.sender,
        encodeHybridTx({ ...unsigned, pqSig: await falcon.sign(signed, victim.falcon.secretKey) }),
        { module: CAESAR_MODULE_NAME, sequence },
      );
    const old = await signedWith(oldMessage);
    assert.equal((decodeCaesarBody(decodeTransaction(old).body) as HybridTx).op, HYBRID_OP);
    const checked = node.app.checkTx(old);
    assert.equal(refusal(checked), TransactionErrorCode.BAD_ACCOUNT_PROOF);
    assert.match(refusalMessage(checked), new RegExp(CaesarErrorCode.HYBRID_BAD_SIGNATURE));
    // The same fields signed under the current tag are admitted.
    assert.equal(refusal(node.app.checkTx(await signedWith(message))), 'ok');
  });
});
