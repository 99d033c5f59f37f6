import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Application, TxCheckResult } from '../../src/consensus/app.js';
import { sha256 } from '../../src/crypto/hash.js';
import { Mempool, MempoolRejectionCode } from '../../src/consensus/mempool.js';
import { peerSubmitter, submitterOf } from '../../src/consensus/net/index.js';
import {
  createTxIntake,
  DEFAULT_INTAKE_MAX_QUEUED_PER_CALLER,
  TURN_TXS,
} from '../../src/node/tx-intake.js';

const text = new TextEncoder();

/** `sender:seq` transactions; "bad" ones are refused. */
class FakeApp implements Pick<Application, 'checkTx'> {
  checkTx(bytes: Uint8Array): TxCheckResult {
    const [sender, seq] = new TextDecoder().decode(bytes).split(':');
    if (sender === 'bad') return { ok: false, code: 'TX_BAD', message: 'refused' };
    return { ok: true, txHash: sha256(bytes), sender: sender ?? '', sequence: Number(seq) };
  }
}

const tx = (sender: string, seq = 0): Uint8Array => text.encode(`${sender}:${seq}`);

/** A clock that moves one unit every time it is read. */
function tickingClock(): () => number {
  let t = 0;
  return () => t++;
}

describe('transaction intake', () => {
  it('admits a batch through the mempool and answers per transaction, in order', async () => {
    const mempool = new Mempool(new FakeApp());
    const intake = createTxIntake(mempool);
    const results = await intake.submit([tx('a'), tx('bad'), tx('a'), tx('b')]);
    assert.deepEqual(
      results.map((r) => (r.ok ? `ok${r.duplicate ? '-dup' : ''}` : r.code)),
      ['ok', 'TX_BAD', 'ok-dup', 'ok'],
    );
    assert.equal(intake.size(), 2);
    assert.equal(intake.readySize(), 2, "the mempool's ready count passes through");
    assert.equal(intake.stats().queued, 0);
    intake.close();
  });

  it('yields to the event loop between slices of a long batch', async () => {
    const mempool = new Mempool(new FakeApp());
    // Every admission reads the clock past the 3-unit slice after a few transactions.
    const intake = createTxIntake(mempool, { sliceMs: 3, now: tickingClock() });
    const order: string[] = [];
    const batch = Array.from({ length: 12 }, (_, i) => tx(`s${i}`));
    const done = intake.submit(batch).then(() => order.push('batch admitted'));
    // Scheduled after the first slice was: runs between two slices, before the batch is done.
    setImmediate(() => {
      order.push(`event with ${mempool.size()} admitted`);
    });
    await done;
    assert.equal(mempool.size(), 12);
    assert.ok(intake.stats().slices > 2, `slices: ${intake.stats().slices}`);
    assert.equal(order.length, 2);
    assert.match(order[0] as string, /^event with \d+ admitted$/);
    const admittedBefore = Number(/(\d+)/.exec(order[0] as string)?.[1]);
    assert.ok(admittedBefore < 12, 'the event ran before the batch finished');
    assert.equal(order[1], 'batch admitted');
    intake.close();
  });

  it('refuses clients and drops peer batches beyond the queue bound', async () => {
    const mempool = new Mempool(new FakeApp());
    // A clock that stands still: every queued transaction fits in one slice, however slow
    // the machine (the slice boundary is the test above's subject).
    const intake = createTxIntake(mempool, { maxQueued: 3, now: () => 0 });
    const first = intake.submit([tx('a'), tx('b')]);
    const refused = await intake.submit([tx('c'), tx('d')]);
    assert.equal(refused.length, 2);
    for (const result of refused) {
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.code, MempoolRejectionCode.BUSY);
      assert.match(!result.ok ? result.message : '', /2 transactions are waiting/);
    }
    intake.addFromPeer('node-2', [tx('e'), tx('f')]);
    intake.addFromPeer('node-2', [tx('g')]);
    assert.deepEqual(intake.stats().busy, 2);
    assert.deepEqual(intake.stats().droppedFromPeers, 2);
    await first;
    // The peer's queued transaction is admitted after the client's batch, in the same slice.
    assert.equal(intake.stats().queued, 0);
    assert.equal(mempool.size(), 3);
    intake.close();
  });

  it('holds at most maxQueuedPerCaller of one caller, client or peer, and keeps room for others', async () => {
    const mempool = new Mempool(new FakeApp());
    const intake = createTxIntake(mempool, { maxQueued: 10, maxQueuedPerCaller: 3, now: () => 0 });
    const flood = intake.submit([tx('a1'), tx('a2'), tx('a3')], 'spiffe://c/client/flood');
    const [over] = await intake.submit([tx('a4')], 'spiffe://c/client/flood');
    assert.equal(over?.ok === false && over.code, MempoolRejectionCode.BUSY);
    assert.match(over?.ok === false ? over.message : '', /3 of this caller's transactions/);
    // Another client, and the node's own submissions, still get in.
    const other = intake.submit([tx('b1'), tx('b2')], 'spiffe://c/client/other');
    const own = intake.submit([tx('n1')]);
    intake.addFromPeer('node-2', [tx('p1'), tx('p2'), tx('p3')]);
    intake.addFromPeer('node-2', [tx('p4')]);
    assert.equal(intake.stats().droppedFromPeers, 1, "the peer's fourth is over its share");
    await Promise.all([flood, other, own]);
    assert.equal(mempool.size(), 9);
    assert.equal(intake.stats().queued, 0);
    intake.close();
  });

  it("counts a consensus peer's gossip and its own submissions as one caller", async () => {
    const mempool = new Mempool(new FakeApp());
    const intake = createTxIntake(mempool, { now: () => 0 });
    assert.equal(DEFAULT_INTAKE_MAX_QUEUED_PER_CALLER, 1_024);
    const batch = (prefix: string, count: number) =>
      Array.from({ length: count }, (_, i) => tx(`${prefix}${i}`));
    intake.addFromPeer('node-2', batch('g', 1_000));
    intake.addFromPeer('node-2', batch('h', 24));
    // Its own submitTxs (a node certificate: submitterOf gives peerSubmitter(name)) is over.
    const [own] = await intake.submit([tx('own')], peerSubmitter('node-2'));
    assert.equal(own?.ok === false && own.code, MempoolRejectionCode.BUSY);
    const [alice] = await intake.submit([tx('alice')], 'spiffe://c/client/alice');
    assert.ok(alice?.ok, 'another caller still gets in');
    const uri = (role: string, name: string) => `spiffe://c/${role}/${name}`;
    for (const role of ['node', 'validator']) {
      assert.equal(
        submitterOf({ role, name: 'node-2', uri: uri(role, 'node-2') }),
        peerSubmitter('node-2'),
      );
    }
    assert.equal(
      submitterOf({ role: 'client', name: 'node-2', uri: uri('client', 'node-2') }),
      uri('client', 'node-2'),
      'a client named like a node is its own caller',
    );
    intake.close();
  });

  it('lets callers take turns, so a long queue of one does not hold up another', async () => {
    const mempool = new Mempool(new FakeApp());
    const admitted: string[] = [];
    mempool.onAdmitted((bytes) => admitted.push(new TextDecoder().decode(bytes).split(':')[0]!));
    const intake = createTxIntake(mempool, { now: () => 0 });
    const long = Array.from({ length: TURN_TXS * 3 }, (_, i) => tx(`l${i}`));
    const first = intake.submit(long, 'spiffe://c/client/long');
    const second = intake.submit([tx('short')], 'spiffe://c/client/short');
    await Promise.all([first, second]);
    assert.equal(admitted.indexOf('short'), TURN_TXS, 'after one turn of the long queue');
    assert.equal(admitted.length, TURN_TXS * 3 + 1);
    intake.close();
  });

  it("counts a turn in transactions, not calls: one-transaction calls get a batch's share", async () => {
    const mempool = new Mempool(new FakeApp());
    const admitted: string[] = [];
    mempool.onAdmitted((bytes) => admitted.push(new TextDecoder().decode(bytes).split(':')[0]!));
    const intake = createTxIntake(mempool, { now: () => 0 });
    // A peer's gossip in batches, and a client sending one transaction per call.
    const gossip = Array.from({ length: TURN_TXS * 4 }, (_, i) => tx(`g${i}`));
    intake.addFromPeer('node-2', gossip);
    const calls = Array.from({ length: TURN_TXS * 2 }, (_, i) =>
      intake.submit([tx(`c${i}`)], 'spiffe://c/client/one-by-one'),
    );
    await Promise.all(calls);
    // Turns alternate: 64 of the peer, 64 of the client, 64 of the peer, 64 of the client.
    const clientBefore = (end: number): number =>
      admitted.slice(0, end).filter((name) => name.startsWith('c')).length;
    assert.equal(clientBefore(TURN_TXS * 2), TURN_TXS, "the client's first turn is 64 calls");
    assert.equal(clientBefore(TURN_TXS * 4), TURN_TXS * 2);
    intake.close();
  });

  it('answers MEMPOOL_BUSY for what is queued when it closes, and for everything after', async () => {
    const mempool = new Mempool(new FakeApp());
    const intake = createTxIntake(mempool);
    const pending = intake.submit([tx('a')]);
    intake.close();
    const [result] = await pending;
    assert.equal(result?.ok === false && result.code, MempoolRejectionCode.BUSY);
    const [after] = await intake.submit([tx('b')]);
    assert.equal(after?.ok === false && after.code, MempoolRejectionCode.BUSY);
    intake.addFromPeer('node-2', [tx('c')]);
    assert.equal(mempool.size(), 0);
  });

  it('rejects invalid options', () => {
    const mempool = new Mempool(new FakeApp());
    assert.throws(() => createTxIntake(mempool, { maxQueued: 0 }), /maxQueued/);
    assert.throws(() => createTxIntake(mempool, { sliceMs: Number.NaN }), /sliceMs/);
    assert.throws(() => createTxIntake(mempool, { maxQueuedPerCaller: 0 }), /maxQueuedPerCaller/);
  });
});
