import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeCanonical } from '../../../src/codec/cbor.js';
import type { BlockExecutionResult, TxCheckResult } from '../../../src/consensus/app.js';
import {
  ApplicationError,
  ApplicationErrorCode,
  SEQUENCE_QUERY,
  TX_RESULT_QUERY,
  TransactionErrorCode,
  createApplication,
  decodeRecordedTxResult,
  decodeSequence,
  decodeTransaction,
  sequenceKey,
} from '../../../src/consensus/application/index.js';
import { ConsensusError, ConsensusErrorCode } from '../../../src/consensus/errors.js';
import { Mempool } from '../../../src/consensus/mempool.js';
import { stampWork } from '../../../src/consensus/proof/hashcash.js';
import { CborErrorCode, encodeCanonical } from '../../../src/codec/cbor.js';
import { isHyperMeshError } from '../../../src/codec/error.js';
import {
  KvErrorCode,
  KV_RESULT_CODES,
  createKvModule,
  kvDelete,
  kvSet,
} from '../../../src/kv/index.js';
import { decodeStateProof, verifyStateProof } from '../../../src/storage/index.js';
import { CHAIN_ID, blockAt, hex, makeSender, openNode, tx, utf8 } from './fixture.js';
import type { Sender, TestNode } from './fixture.js';
import { createProbeModule, probeBody } from './probe-module.js';
import { encodeSequence } from '../../../src/consensus/application/accounts.js';

const rejected = (result: TxCheckResult, code: string): void => {
  assert.equal(result.ok, false, `expected a rejection with ${code}`);
  if (!result.ok) assert.equal(result.code, code, result.message);
};

const invalidBlock =
  (index: number, reason: TransactionErrorCode) =>
  (error: unknown): boolean => {
    assert.ok(error instanceof ConsensusError, String(error));
    assert.equal(error.code, ConsensusErrorCode.INVALID_BLOCK);
    assert.equal(error.detail.index, index, error.message);
    assert.equal(error.detail.reason, reason, error.message);
    return true;
  };

/** Same changes, root and results, byte for byte. */
function assertSameExecution(a: BlockExecutionResult, b: BlockExecutionResult): void {
  assert.equal(hex(a.stateRoot), hex(b.stateRoot));
  assert.deepEqual(
    a.changes.map((c) => [hex(c.key), c.value === null ? null : hex(c.value)]),
    b.changes.map((c) => [hex(c.key), c.value === null ? null : hex(c.value)]),
  );
  assert.deepEqual(
    a.txResults.map((r) => [hex(r.txHash), r.code, r.log]),
    b.txResults.map((r) => [hex(r.txHash), r.code, r.log]),
  );
}

/** The transaction with one bit of its signature flipped. */
function withBadSignature(bytes: Uint8Array): Uint8Array {
  const fields = decodeCanonical(bytes) as unknown[];
  const signature = (fields[7] as Uint8Array).slice();
  signature[0] = (signature[0] as number) ^ 1;
  fields[7] = signature;
  return encodeCanonical(fields);
}

/** A transaction whose stamp (minted at difficulty 0) has fewer than 4 bits. */
function weaklyStamped(sender: Sender): Uint8Array {
  for (let i = 0; ; i++) {
    const bytes = tx(sender, kvSet(`weak-${i}`, 'v'), { sequence: 0, stampDifficulty: 0 });
    const { txHash, nonce } = decodeTransaction(bytes);
    if (stampWork(txHash, nonce) < 4) return bytes;
  }
}

describe('application router', () => {
  const nodes: TestNode[] = [];
  const open = async (...args: Parameters<typeof openNode>): Promise<TestNode> => {
    const node = await openNode(...args);
    nodes.push(node);
    return node;
  };
  after(async () => {
    for (const node of nodes) await node.close();
  });

  it('checkTx admits a valid transaction with its hash, sender and sequence', async () => {
    const { app } = await open();
    const alice = makeSender();
    const bytes = tx(alice, kvSet('k', 'v'));
    const result = app.checkTx(bytes);
    assert.ok(result.ok, 'admitted');
    assert.deepEqual(result.txHash, decodeTransaction(bytes).txHash);
    assert.equal(result.sender, hex(alice.publicKey));
    assert.equal(result.sequence, 0);
    // Later sequences are admitted too (the mempool orders them), up to the lead limit.
    const later = app.checkTx(tx(alice, kvSet('k2', 'v'), { sequence: 5 }));
    assert.ok(later.ok, 'a later sequence is admitted');
    assert.equal(later.sequence, 5);
  });

  it('remembers checked transactions by their bytes, not by the array that held them', async () => {
    const { app } = await open();
    const alice = makeSender();
    const good = tx(alice, kvSet('x', 'y'));
    assert.ok(app.checkTx(good).ok);
    assert.ok(app.checkTx(good.slice()).ok, 'an equal copy is the same transaction');
    // The caller changes the array it passed: the remembered outcome does not apply to it.
    const bad = withBadSignature(good);
    good.set(bad);
    rejected(app.checkTx(good), TransactionErrorCode.BAD_SIGNATURE);
    assert.throws(
      () => app.executeBlock(blockAt(1, [good])),
      (error: unknown) =>
        error instanceof ConsensusError && /BAD_SIGNATURE|signature/.test(error.message),
    );
  });

  it("gives the sender's next sequence, so the mempool holds a later one back until the gap fills", async () => {
    const node = await open();
    const pool = new Mempool(node.app);
    const alice = makeSender();
    const second = tx(alice, kvSet('b', '2'), { sequence: 1 });
    const first = tx(alice, kvSet('a', '1'));
    const check = node.app.checkTx(second);
    assert.ok(check.ok);
    assert.equal(check.nextSequence, 0);
    assert.ok(pool.add(second).ok);
    assert.equal(pool.stats().waiting, 1);
    assert.deepEqual([...pool.candidates()], [], 'nothing to propose while sequence 0 is missing');
    assert.ok(pool.add(first).ok);
    assert.equal(pool.readySize(), 2);
    const proposal = node.app.prepareProposal(
      blockAt(node.nextHeight(), []),
      pool.candidates(),
      1 << 20,
    );
    assert.deepEqual(proposal.transactions, [first, second]);
    pool.update(node.commit(proposal.result), proposal.transactions);
    assert.equal(pool.size(), 0);
    const later = tx(alice, kvSet('c', '3'), { sequence: 3 });
    const answer = node.app.checkTx(later);
    assert.ok(answer.ok && answer.nextSequence === 2, 'the committed block moved the sender on');
  });

  it('forgets the checks of committed transactions, proposed or executed', async () => {
    const node = await open();
    const cached = (): number =>
      (node.app as unknown as { admittedCacheSize(): number }).admittedCacheSize();
    const alice = makeSender();
    const bob = makeSender();
    const first = tx(alice, kvSet('a', '1'));
    const pending = tx(alice, kvSet('b', '2'), { sequence: 1 });
    const other = tx(bob, kvSet('c', '3'));
    for (const bytes of [first, pending, other]) assert.ok(node.app.checkTx(bytes).ok);
    assert.equal(cached(), 3);
    node.executeAndCommit([first]);
    assert.equal(cached(), 2, 'the executed block forgot its transaction');
    assert.ok(node.app.checkTx(pending).ok, 'the pending one still passes');
    const proposal = node.app.prepareProposal(blockAt(node.nextHeight(), []), [other], 1 << 20);
    assert.equal(proposal.transactions.length, 1);
    node.commit(proposal.result);
    assert.equal(cached(), 1, "the proposer's block forgot its transaction");
    rejected(node.app.checkTx(first), TransactionErrorCode.SEQUENCE_USED);
  });

  it('forgets the check of what the mempool does not keep after checkTx accepted it', async () => {
    // Each variant at a pending sequence passes checkTx (other bytes, a valid stamp and
    // signature) and is then refused by the mempool: its decoded envelope must not stay.
    const node = await open();
    const cached = (): number =>
      (node.app as unknown as { admittedCacheSize(): number }).admittedCacheSize();
    const pool = new Mempool(node.app);
    const alice = makeSender();
    assert.ok(pool.add(tx(alice, kvSet('a', 'first'), { sequence: 0 })).ok);
    assert.equal(cached(), 1);
    for (let variant = 0; variant < 20; variant++) {
      const answer = pool.add(tx(alice, kvSet('a', `variant ${variant}`), { sequence: 0 }));
      assert.equal(answer.ok, false);
    }
    assert.equal(pool.size(), 1);
    assert.equal(cached(), 1, 'only the pending transaction is remembered');
  });

  it('remembers only the checks of transactions it admits', async () => {
    // A refused transaction (a sequence far ahead, a module's refusal) is not kept: a client
    // could otherwise pin 50,000 decoded envelopes of its choosing, of any size, per node.
    const node = await open({ maxSequenceLead: 3 });
    const cached = (): number =>
      (node.app as unknown as { admittedCacheSize(): number }).admittedCacheSize();
    const alice = makeSender();
    const bob = makeSender();
    node.executeAndCommit([tx(alice, kvSet('owned', 'by alice'))]);
    const big = 'v'.repeat(4_000);
    for (let sequence = 10; sequence < 40; sequence++) {
      rejected(
        node.app.checkTx(tx(bob, kvSet(`k${sequence}`, big), { sequence })),
        TransactionErrorCode.SEQUENCE_TOO_FAR,
      );
    }
    assert.equal(node.app.checkTx(tx(bob, kvSet('owned', 'by bob'))).ok, false);
    assert.equal(cached(), 0);
    // An admitted one is kept, also when it is large.
    assert.ok(node.app.checkTx(tx(bob, kvSet('mine', big))).ok);
    assert.equal(cached(), 1);
  });

  it('checkTx refuses with stable codes and never throws', async () => {
    const node = await open({ maxSequenceLead: 3 });
    const { app } = node;
    const alice = makeSender();
    const bob = makeSender();
    node.executeAndCommit([tx(alice, kvSet('owned', 'by alice'))]);
    const good = tx(alice, kvSet('x', 'y'));
    const badSig = withBadSignature(good);

    rejected(app.checkTx(utf8('garbage')), TransactionErrorCode.MALFORMED);
    rejected(app.checkTx(badSig), TransactionErrorCode.BAD_SIGNATURE);
    rejected(
      app.checkTx(tx(bob, kvSet('a', 'b'), { chainId: 'other', sequence: 0 })),
      TransactionErrorCode.WRONG_CHAIN,
    );
    rejected(app.checkTx(weaklyStamped(bob)), TransactionErrorCode.INSUFFICIENT_STAMP);
    rejected(
      app.checkTx(tx(bob, kvSet('a', 'b'), { module: 'nope', sequence: 0 })),
      TransactionErrorCode.UNKNOWN_MODULE,
    );
    rejected(
      app.checkTx(tx(alice, kvSet('a', 'b'), { sequence: 0 })),
      TransactionErrorCode.SEQUENCE_USED,
    );
    assert.ok(app.checkTx(tx(alice, kvSet('a', 'b'), { sequence: 4 })).ok);
    rejected(
      app.checkTx(tx(alice, kvSet('a', 'b'), { sequence: 5 })),
      TransactionErrorCode.SEQUENCE_TOO_FAR,
    );
    rejected(app.checkTx(tx(bob, kvSet('owned', 'mine'), { sequence: 0 })), KvErrorCode.NOT_OWNER);
    rejected(app.checkTx(tx(bob, utf8('not cbor'), { sequence: 0 })), KvErrorCode.MALFORMED_BODY);
    rejected(app.checkTx(tx(bob, kvDelete('missing'), { sequence: 0 })), KvErrorCode.NOT_FOUND);
    // Stateful rules apply only to the sender's next transaction: a later one may delete a
    // key its predecessor creates.
    assert.ok(
      app.checkTx(tx(bob, kvDelete('missing'), { sequence: 1 })).ok,
      'a later delete is not checked against the committed state',
    );
    rejected(app.checkTx('nope' as unknown as Uint8Array), TransactionErrorCode.MALFORMED);

    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const result = app.checkTx(bytes);
        assert.equal(result.ok, false);
      }),
      { numRuns: 200 },
    );
  });

  it('sequences run in order per sender, and refused transactions still use theirs', async () => {
    const node = await open();
    const alice = makeSender();
    const bob = makeSender();
    const first = node.executeAndCommit([
      tx(alice, kvSet('k', 'alice')),
      tx(bob, kvSet('k', 'bob')), // refused: alice owns k
      tx(bob, kvSet('k2', 'bob')), // sequence 1: applied
    ]);
    assert.deepEqual(
      first.txResults.map((r) => r.code),
      [0, KV_RESULT_CODES[KvErrorCode.NOT_OWNER], 0],
    );
    assert.match(first.txResults[1]?.log ?? '', /^KV_NOT_OWNER: /);

    const answer = node.app.query({ path: SEQUENCE_QUERY, data: bob.publicKey });
    assert.equal(answer.height, 1);
    assert.equal(decodeSequence(answer.value), 2);
    assert.ok(
      verifyStateProof(
        answer.stateRoot,
        sequenceKey(bob.publicKey),
        answer.value,
        decodeStateProof(answer.proof!),
      ),
      'the sequence proof verifies',
    );
    // A sender with no transactions yet: no key, proven absent.
    const fresh = makeSender();
    const none = node.app.query({ path: SEQUENCE_QUERY, data: fresh.publicKey });
    assert.equal(none.value, null);
    assert.ok(
      verifyStateProof(
        none.stateRoot,
        sequenceKey(fresh.publicKey),
        null,
        decodeStateProof(none.proof!),
      ),
      'the absence proof verifies',
    );
    assert.deepEqual(none.stateRoot, node.store.state.root());
  });

  it('executeBlock refuses a block holding an inadmissible transaction', async () => {
    const node = await open();
    const { app, store } = node;
    const alice = makeSender();
    const bob = makeSender();
    const ok0 = tx(alice, kvSet('a', '1'));
    const ok1 = tx(alice, kvSet('b', '2'));
    const badSig = withBadSignature(tx(bob, kvSet('c', '3')));
    const height = node.nextHeight();
    const cases: [Uint8Array[], number, TransactionErrorCode][] = [
      [[ok0, badSig], 1, TransactionErrorCode.BAD_SIGNATURE],
      [[ok0, ok0], 1, TransactionErrorCode.SEQUENCE_USED],
      [[ok1], 0, TransactionErrorCode.SEQUENCE_GAP],
      [[ok0, ok1, utf8('junk')], 2, TransactionErrorCode.MALFORMED],
      [
        [tx(bob, kvSet('z', '1'), { chainId: 'other', sequence: 0 })],
        0,
        TransactionErrorCode.WRONG_CHAIN,
      ],
      [[weaklyStamped(bob)], 0, TransactionErrorCode.INSUFFICIENT_STAMP],
      [
        [tx(bob, kvSet('z', '1'), { module: 'bank', sequence: 0 })],
        0,
        TransactionErrorCode.UNKNOWN_MODULE,
      ],
    ];
    for (const [transactions, index, reason] of cases) {
      assert.throws(
        () => app.executeBlock(blockAt(height, transactions)),
        invalidBlock(index, reason),
      );
    }
    assert.throws(
      () => app.executeBlock({ ...blockAt(height, [ok0]), chainId: 'other-chain' }),
      (error: unknown) =>
        error instanceof ConsensusError && error.code === ConsensusErrorCode.INVALID_BLOCK,
    );
    // Nothing was written, and the valid order executes.
    assert.equal(store.blocks.latestHeight(), null);
    const result = node.executeAndCommit([ok0, ok1]);
    assert.deepEqual(
      result.txResults.map((r) => r.code),
      [0, 0],
    );
  });

  it('is deterministic: fresh stores executing the same blocks agree byte for byte', async () => {
    const a = await open();
    // b keeps nothing in memory: every read goes to the store, every signature is verified.
    const b = await open({
      stateCacheEntries: 0,
      verificationCache: { maxVerified: 0 },
    });
    const c = await open();
    const senders = Array.from({ length: 4 }, makeSender);
    const blocks: Uint8Array[][] = [];
    for (let height = 1; height <= 3; height++) {
      const block: Uint8Array[] = [];
      for (const [i, sender] of senders.entries()) {
        block.push(tx(sender, kvSet(`shared-${height % 2}`, `from ${i} at ${height}`)));
        block.push(tx(sender, kvSet(`own-${i}-${height}`, `v${height}`)));
        if (height === 3) block.push(tx(sender, kvDelete(`own-${i}-1`)));
      }
      blocks.push(block);
    }
    for (const block of blocks) {
      // a: admitted through checkTx first (cached signatures); b: cold; c: as the proposer.
      for (const bytes of block) {
        const admitted = a.app.checkTx(bytes);
        // At height 3, "shared-1" belongs to the first sender: the others' sets are refused.
        if (!admitted.ok) assert.equal(admitted.code, KvErrorCode.NOT_OWNER, admitted.message);
      }
      const height = a.nextHeight();
      const ra = a.app.executeBlock(blockAt(height, block));
      const rb = b.app.executeBlock(blockAt(height, block));
      const proposal = c.app.prepareProposal(blockAt(height, []), block, 1 << 20);
      assert.equal(proposal.transactions.length, block.length);
      assertSameExecution(ra, rb);
      assertSameExecution(ra, proposal.result);
      assertSameExecution(ra, a.app.executeBlock(blockAt(height, block)));
      assert.ok(
        ra.txResults.some((r) => r.code !== 0),
        'some shared-key writes are refused',
      );
      a.commit(ra);
      b.commit(rb);
      c.commit(proposal.result);
    }
    assert.deepEqual(a.store.state.root(), b.store.state.root());
    assert.deepEqual(a.store.state.root(), c.store.state.root());
    // Changes are sorted by key and hold no no-op writes.
    const last = a.app.executeBlock(blockAt(4, [tx(senders[0]!, kvSet('own-0-2', 'v2'))]));
    const keys = last.changes.map((change) => Buffer.from(change.key).toString('latin1'));
    assert.deepEqual(keys, [...keys].sort());
    assert.equal(last.changes.length, 1, 'rewriting a value unchanged changes only the sequence');
  });

  it('prepareProposal leaves out inadmissible and out-of-sequence candidates, within maxBytes', async () => {
    const node = await open();
    const alice = makeSender();
    const bob = makeSender();
    const a0 = tx(alice, kvSet('a0', 'v'));
    const a1 = tx(alice, kvSet('a1', 'v'));
    const a2 = tx(alice, kvSet('a2', 'v'));
    const b0 = tx(bob, kvSet('b0', 'v'));
    const bGap = tx(bob, kvSet('b5', 'v'), { sequence: 5 });
    const badSig = withBadSignature(tx(bob, kvSet('bx', 'v'), { sequence: 1 }));
    const candidates = [
      utf8('garbage'),
      a0,
      bGap,
      a2, // before a1: out of sequence here
      badSig,
      tx(bob, kvSet('w', 'v'), { chainId: 'other', sequence: 0 }),
      b0,
      a0, // duplicate
      a1,
      tx(alice, probeBody('write', 'k'), { module: 'probe', sequence: 2 }), // no such module
    ];
    const block = blockAt(node.nextHeight(), []);
    const proposal = node.app.prepareProposal(block, candidates, 1 << 20);
    assert.deepEqual(proposal.transactions, [a0, b0, a1]);
    assert.deepEqual(
      proposal.result.txResults.map((r) => r.code),
      [0, 0, 0],
    );
    // The proposal executes to the same result on a validator.
    assertSameExecution(
      node.app.executeBlock(blockAt(block.height, proposal.transactions)),
      proposal.result,
    );
    // maxBytes: only what fits.
    const limited = node.app.prepareProposal(block, [a0, a1, a2, b0], a0.length + a1.length + 10);
    assert.deepEqual(limited.transactions, [a0, a1]);
    // maxTxs: only that many, however many bytes are left.
    const counted = node.app.prepareProposal(block, [a0, a1, a2, b0], 1 << 20, 2);
    assert.deepEqual(counted.transactions, [a0, a1]);
    assert.throws(
      () => node.app.prepareProposal(block, [a0], 1 << 20, 1.5),
      (error: unknown) => error instanceof ApplicationError && /maxTxs/.test(error.message),
    );
    const empty = node.app.prepareProposal(block, [a0], 0);
    assert.deepEqual(empty.transactions, []);
    assert.deepEqual(empty.result.changes, []);
    assert.deepEqual(empty.result.stateRoot, node.store.state.root());
    assert.throws(
      () => node.app.prepareProposal(block, [a0], -1),
      (error: unknown) => error instanceof ApplicationError,
    );
  });

  it('a module refusal keeps only the sequence; a module fault is left out or fails the block', async () => {
    const probe = createProbeModule();
    const node = await open({ modules: [createKvModule(), probe] });
    const alice = makeSender();
    const refuse = tx(alice, probeBody('refuse', 'r', 'written then refused'), { module: 'probe' });
    const checkFail = tx(alice, probeBody('check-fail', 'c', 'x'), { module: 'probe' });
    const malformed = tx(alice, utf8('not cbor'), { module: 'probe' });
    const write = tx(alice, probeBody('write', 'w', 'kept'), { module: 'probe' });
    const result = node.executeAndCommit([refuse, checkFail, malformed, write]);
    assert.deepEqual(
      result.txResults.map((r) => r.code),
      [7, 3, 1, 0],
    );
    assert.deepEqual(
      result.txResults.map((r) => r.log.split(':')[0]),
      ['PROBE_REFUSED', 'PROBE_CHECK_FAILED', 'PROBE_MALFORMED', ''],
    );
    const keys = result.changes.map((c) => Buffer.from(c.key).toString('latin1'));
    assert.deepEqual(keys, [`acct/${hex(alice.publicKey)}/seq`, 'probe/w']);

    const fault = tx(alice, probeBody('fault', 'f', 'x'), { module: 'probe' });
    const after = tx(alice, probeBody('write', 'after', 'x'), { module: 'probe' });
    const proposal = node.app.prepareProposal(blockAt(2, []), [fault, after], 1 << 20);
    assert.deepEqual(
      proposal.transactions,
      [],
      'the fault is left out, so its successor is out of sequence',
    );
    assert.throws(() => node.app.executeBlock(blockAt(2, [fault])), /probe module bug/);

    // A view kept past its call cannot be used.
    node.executeAndCommit([
      tx(alice, probeBody('stash', 's', 'x'), { module: 'probe', sequence: 4 }),
    ]);
    assert.throws(
      () => probe.stashed?.set(utf8('late'), utf8('write')),
      (error: unknown) =>
        error instanceof ApplicationError && error.code === ApplicationErrorCode.STATE_VIEW_CLOSED,
    );
  });

  it('impossible module writes are faults; a damaged stored sequence is reported, not guessed', async () => {
    const alice = makeSender();
    const damaged = { key: sequenceKey(alice.publicKey), value: utf8('not a number') };
    const node = await open({
      modules: [createKvModule(), createProbeModule()],
      initialState: [damaged],
    });
    node.executeAndCommit([]);
    const isAppError = (code: ApplicationErrorCode) => (error: unknown) =>
      error instanceof ApplicationError && error.code === code;
    rejected(node.app.checkTx(tx(alice, kvSet('k', 'v'))), ApplicationErrorCode.INTERNAL);
    assert.throws(
      () => node.app.executeBlock(blockAt(2, [tx(alice, kvSet('k', 'v'), { sequence: 0 })])),
      isAppError(ApplicationErrorCode.INTERNAL),
    );

    const bob = makeSender();
    const longKey = tx(bob, probeBody('write', 'k'.repeat(1100), 'v'), { module: 'probe' });
    assert.throws(
      () => node.app.executeBlock(blockAt(2, [longKey])),
      isAppError(ApplicationErrorCode.INVALID_STATE_WRITE),
    );
    const proposal = node.app.prepareProposal(blockAt(2, []), [longKey], 1 << 20);
    assert.deepEqual(proposal.transactions, []);
  });

  it('modules only see their own keys', async () => {
    const node = await open({ modules: [createKvModule(), createProbeModule()] });
    const alice = makeSender();
    node.executeAndCommit([
      tx(alice, kvSet('shared', 'kv value')),
      tx(alice, probeBody('write', 'kv/shared', 'probe value'), { module: 'probe' }),
    ]);
    const probeRead = node.app.query({ path: 'probe/get', data: utf8('shared') });
    assert.equal(probeRead.value, null, "the probe module cannot read kv's key");
    const probeOwn = node.app.query({ path: 'probe/get', data: utf8('kv/shared') });
    assert.deepEqual(probeOwn.value, utf8('probe value'));
    assert.ok(
      verifyStateProof(
        probeOwn.stateRoot,
        utf8('probe/kv/shared'),
        probeOwn.value,
        decodeStateProof(probeOwn.proof!),
      ),
      'the probe key proof verifies',
    );
    assert.notEqual(node.app.query({ path: 'kv/get', data: utf8('shared') }).value, null);
  });

  it('initialState is written by the first block', async () => {
    const initialState = [{ key: utf8('kv/genesis'), value: utf8('from genesis') }];
    const node = await open({ initialState });
    const first = node.executeAndCommit([]);
    assert.equal(first.changes.length, 1);
    assert.deepEqual(node.store.state.get(utf8('kv/genesis')), utf8('from genesis'));
    const second = node.executeAndCommit([]);
    assert.deepEqual(second.changes, []);
  });

  it('tx/result answers for recent committed transactions only', async () => {
    const node = await open({ recentResults: 2 });
    const alice = makeSender();
    const txs = [
      tx(alice, kvSet('a', '1')),
      tx(alice, kvDelete('nothing')),
      tx(alice, kvSet('b', '2')),
    ];
    const hashes = txs.map((bytes) => decodeTransaction(bytes).txHash);
    node.executeAndCommit(txs.slice(0, 2));
    const refused = node.app.query({ path: TX_RESULT_QUERY, data: hashes[1]! });
    assert.equal(refused.height, 1);
    const decoded = decodeRecordedTxResult(refused.value!);
    assert.deepEqual(
      { ...decoded, log: decoded.log.split(':')[0] },
      { height: 1, index: 1, code: KV_RESULT_CODES[KvErrorCode.NOT_FOUND], log: 'KV_NOT_FOUND' },
    );
    assert.deepEqual(refused.stateRoot, node.store.state.root(1));
    node.executeAndCommit(txs.slice(2));
    const latest = decodeRecordedTxResult(
      node.app.query({ path: TX_RESULT_QUERY, data: hashes[2]! }).value!,
    );
    assert.deepEqual(latest, { height: 2, index: 0, code: 0, log: '' });
    // The answer carries no proof: its decoder reads at most the schema's 9 data items.
    for (const answer of [
      encodeCanonical({ ...latest, x: [] }),
      Uint8Array.from([0x99, 0x0f, 0xfd, ...new Uint8Array(4093).fill(0xa0)]),
    ]) {
      assert.throws(
        () => decodeRecordedTxResult(answer),
        (error: unknown) => isHyperMeshError(error, CborErrorCode.TOO_MANY_ITEMS),
      );
    }
    const forgotten = node.app.query({ path: TX_RESULT_QUERY, data: hashes[0]! });
    assert.equal(forgotten.value, null, 'beyond the limit of 2 results');
    assert.equal(forgotten.height, null);
  });

  it('queries: unknown paths and bad data are typed errors', async () => {
    const { app } = await open();
    const code = (expected: string) => (error: unknown) =>
      (error as { code?: unknown }).code === expected;
    assert.throws(
      () => app.query({ path: 'bank/balance', data: utf8('x') }),
      code(ApplicationErrorCode.UNKNOWN_QUERY),
    );
    assert.throws(
      () => app.query({ path: 'kv', data: utf8('x') }),
      code(ApplicationErrorCode.UNKNOWN_QUERY),
    );
    assert.throws(
      () => app.query({ path: 'kv/list', data: utf8('x') }),
      code(ApplicationErrorCode.UNKNOWN_QUERY),
    );
    assert.throws(
      () => app.query({ path: 'kv/get', data: new Uint8Array(0) }),
      code(KvErrorCode.INVALID_QUERY),
    );
    assert.throws(
      () => app.query({ path: TX_RESULT_QUERY, data: utf8('short') }),
      code(ApplicationErrorCode.INVALID_QUERY),
    );
    assert.throws(
      () => app.query({ path: SEQUENCE_QUERY, data: utf8('short') }),
      code(ApplicationErrorCode.INVALID_QUERY),
    );
    assert.throws(
      () => app.query({ path: 'kv/get', data: 'k' as unknown as Uint8Array }),
      code(ApplicationErrorCode.INVALID_QUERY),
    );
    assert.throws(
      () => app.query({ path: 'kv/get', data: utf8('k'), height: -1 }),
      code(ApplicationErrorCode.INVALID_QUERY),
    );
  });

  it('createApplication refuses bad configuration', async () => {
    const node = await open();
    const base = {
      chainId: CHAIN_ID,
      state: node.store.state,
      modules: [createKvModule()],
      stampDifficulty: 4,
    };
    const bad: [string, object][] = [
      ['empty chain id', { chainId: '' }],
      ['difficulty above the maximum', { stampDifficulty: 41 }],
      ['fractional difficulty', { stampDifficulty: 1.5 }],
      ['duplicate module', { modules: [createKvModule(), createKvModule()] }],
      ['reserved name', { modules: [{ ...createKvModule(), name: 'acct' }] }],
      ['bad name', { modules: [{ ...createKvModule(), name: 'Kv' }] }],
      ['negative lead', { maxSequenceLead: -1 }],
      [
        'duplicate initial key',
        {
          initialState: [
            { key: utf8('k'), value: utf8('1') },
            { key: utf8('k'), value: utf8('2') },
          ],
        },
      ],
      ['empty initial key', { initialState: [{ key: new Uint8Array(0), value: utf8('1') }] }],
    ];
    for (const [name, override] of bad) {
      assert.throws(
        () => createApplication({ ...base, ...override }),
        (error: unknown) =>
          error instanceof ApplicationError && error.code === ApplicationErrorCode.INVALID_CONFIG,
        name,
      );
    }
  });
});

describe('stored sequence numbers', () => {
  it('round-trip through their 8-byte big-endian form', () => {
    for (const next of [0, 1, 255, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      const stored = encodeSequence(next);
      assert.equal(stored.length, 8);
      assert.equal(decodeSequence(stored), next);
    }
    assert.equal(decodeSequence(null), 0);
    assert.deepEqual(encodeSequence(258), Uint8Array.of(0, 0, 0, 0, 0, 0, 1, 2));
    assert.throws(() => decodeSequence(new Uint8Array(7)), ApplicationError);
    assert.throws(() => decodeSequence(new Uint8Array(8).fill(0xff)), ApplicationError);
  });
});

describe('application router on a store that fails', () => {
  let node: TestNode;
  before(async () => {
    node = await openNode();
  });
  after(async () => {
    await node.close();
  });

  it('checkTx reports a store failure as APP_INTERNAL instead of throwing', () => {
    const alice = makeSender();
    const bytes = tx(alice, kvSet('k', 'v'));
    node.store.close();
    rejected(node.app.checkTx(bytes), ApplicationErrorCode.INTERNAL);
    assert.throws(() => node.app.prepareProposal(blockAt(1, []), [bytes], 1 << 20), /closed/);
  });
});
