import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { toHex } from '../../src/crypto/bytes.js';
import { sha256 } from '../../src/crypto/hash.js';
import type { Application, TxCheckResult } from '../../src/consensus/app.js';
import { ConsensusError } from '../../src/consensus/errors.js';
import {
  DEFAULT_MEMPOOL_OPTIONS,
  Mempool,
  MempoolRejectionCode,
  type MempoolOptions,
} from '../../src/consensus/mempool.js';

const text = new TextEncoder();
const untext = new TextDecoder();

/** A fake transaction: `sender|seq|nonce|valid|pad` as text (cheap to make and parse). */
function tx(
  sender: string,
  seq: number,
  extra: { nonce?: number; valid?: boolean; pad?: number } = {},
): Uint8Array {
  const valid = (extra.valid ?? true) ? 1 : 0;
  return text.encode(`${sender}|${seq}|${extra.nonce ?? 0}|${valid}|${'.'.repeat(extra.pad ?? 0)}`);
}

function parse(bytes: Uint8Array) {
  const [sender, seq, nonce, valid, pad] = untext.decode(bytes).split('|');
  if (pad === undefined || !/^\d+$/.test(seq!)) return undefined;
  return { sender: sender!, seq: Number(seq), nonce: nonce!, valid: valid === '1' };
}

function label(bytes: Uint8Array): string {
  const parsed = parse(bytes)!;
  return `${parsed.sender}${parsed.seq}`;
}

/**
 * A stand-in application. Its txHash covers sender, seq and nonce but not the padding, so two
 * encodings can name one transaction. A sequence below the sender's committed next one is
 * refused, as the real application does.
 */
class FakeApp implements Pick<Application, 'checkTx' | 'forgetCheck'> {
  readonly next = new Map<string, number>();
  calls = 0;
  /** What the mempool said it does not keep (`forgetCheck`), as labels with their padding. */
  readonly forgotten: string[] = [];

  /** `tellsNext`: acceptances carry the sender's next sequence, as the real application's do. */
  constructor(private readonly tellsNext = false) {}

  checkTx(bytes: Uint8Array): TxCheckResult {
    this.calls++;
    const parsed = parse(bytes);
    if (parsed === undefined) return { ok: false, code: 'TX_MALFORMED', message: 'not a fake tx' };
    const { sender, seq, nonce, valid } = parsed;
    if (!valid) return { ok: false, code: 'TX_BAD_SIGNATURE', message: 'bad signature' };
    if (seq < (this.next.get(sender) ?? 0)) {
      return { ok: false, code: 'TX_SEQUENCE_USED', message: `sequence ${seq} is used` };
    }
    return {
      ok: true,
      txHash: sha256(text.encode(`${sender}|${seq}|${nonce}`)),
      sender,
      sequence: seq,
      ...(this.tellsNext ? { nextSequence: this.next.get(sender) ?? 0 } : {}),
    };
  }

  forgetCheck(bytes: Uint8Array): void {
    this.forgotten.push(untext.decode(bytes));
  }

  /** Commits `txs`: each sender's next sequence moves past what was committed. */
  commit(txs: readonly Uint8Array[]): void {
    for (const item of txs) {
      const { sender, seq } = parse(item)!;
      this.next.set(sender, Math.max(this.next.get(sender) ?? 0, seq + 1));
    }
  }
}

function setup(options: MempoolOptions = {}, tellsNext = false) {
  const app = new FakeApp(tellsNext);
  return { app, pool: new Mempool(app, options) };
}

function assertRejected(result: ReturnType<Mempool['add']>, code: string, message?: RegExp): void {
  assert.equal(result.ok, false, 'expected a rejection');
  if (result.ok) return;
  assert.equal(result.code, code);
  if (message) assert.match(result.message, message);
}

describe('mempool admission', () => {
  it('admits once per transaction and recognises duplicates without re-checking exact copies', () => {
    const { app, pool } = setup();
    const first = pool.add(tx('a', 0));
    assert.ok(first.ok && !first.duplicate);
    assert.equal(app.calls, 1);
    const again = pool.add(tx('a', 0));
    assert.ok(again.ok && again.duplicate);
    assert.equal(toHex(again.txHash), toHex(first.txHash));
    assert.equal(app.calls, 1, 'an exact duplicate is found by its byte hash');
    // Another encoding of the same transaction: checked once, then a duplicate by txHash.
    const other = pool.add(tx('a', 0, { pad: 3 }));
    assert.ok(other.ok && other.duplicate);
    assert.equal(app.calls, 2);
    assert.equal(pool.size(), 1);
    assert.ok(pool.has(first.txHash));
    assert.ok(!pool.has(new Uint8Array(32)));
    assert.ok(!pool.has('x' as unknown as Uint8Array));
    assert.equal(pool.stats().duplicates, 2);
    assert.equal(pool.stats().admitted, 1);
  });

  it('refuses bad input precisely and never throws', () => {
    const { app, pool } = setup({ maxTxBytes: 100 });
    for (const input of [undefined, null, 'tx', 7, [1, 2], { length: 1 }]) {
      assertRejected(
        pool.add(input as unknown as Uint8Array),
        MempoolRejectionCode.NOT_BYTES,
        /^transaction must be a byte string, got /,
      );
    }
    assertRejected(pool.add(new Uint8Array(0)), MempoolRejectionCode.EMPTY, /empty/);
    assertRejected(
      pool.add(tx('a', 0, { pad: 200 })),
      MempoolRejectionCode.TOO_LARGE,
      /^transaction is \d+ bytes; the limit is 100$/,
    );
    assertRejected(pool.add(Uint8Array.of(0xff)), 'TX_MALFORMED');
    assert.equal(app.calls, 1, 'only well-sized byte strings reach checkTx');
    assert.equal(pool.stats().rejected[MempoolRejectionCode.NOT_BYTES], 6);
    assert.equal(pool.size(), 0);
  });

  it("passes the application's rejection through", () => {
    const { pool } = setup();
    assertRejected(pool.add(tx('a', 0, { valid: false })), 'TX_BAD_SIGNATURE', /^bad signature$/);
    assert.deepEqual(pool.stats().rejected, { TX_BAD_SIGNATURE: 1 });
  });

  it('turns a throwing or nonsensical checkTx into CHECK_FAILED', () => {
    const throwing = new Mempool({
      checkTx: () => {
        throw new Error('boom');
      },
    });
    assertRejected(throwing.add(Uint8Array.of(1)), MempoolRejectionCode.CHECK_FAILED, /boom/);
    const nonsense = new Mempool({
      checkTx: () => ({ ok: true, txHash: new Uint8Array(3) }) as unknown as TxCheckResult,
    });
    assertRejected(nonsense.add(Uint8Array.of(1)), MempoolRejectionCode.CHECK_FAILED);
  });

  it('enforces the count, byte and per-sender limits', () => {
    const count = setup({ maxTxs: 2 });
    assert.ok(count.pool.add(tx('a', 0)).ok);
    assert.ok(count.pool.add(tx('b', 0)).ok);
    const callsBefore = count.app.calls;
    assertRejected(count.pool.add(tx('c', 0)), MempoolRejectionCode.FULL, /2 transactions/);
    assert.equal(count.app.calls, callsBefore, 'a full pool refuses before checkTx');
    assert.ok(count.pool.add(tx('a', 0)).ok, 'a duplicate is still recognised when full');

    const one = tx('a', 0).length;
    const bytes = setup({ maxBytes: 2 * one + 5 });
    assert.ok(bytes.pool.add(tx('a', 0)).ok);
    assert.ok(bytes.pool.add(tx('a', 1)).ok);
    assertRejected(bytes.pool.add(tx('a', 2, { pad: 10 })), MempoolRejectionCode.FULL, /bytes/);
    assert.equal(bytes.pool.bytes(), 2 * one);

    const sender = setup({ maxPerSender: 2 });
    assert.ok(sender.pool.add(tx('a', 0)).ok);
    assert.ok(sender.pool.add(tx('a', 1)).ok);
    const third = sender.pool.add(tx('a', 2));
    assertRejected(third, MempoolRejectionCode.SENDER_LIMIT, /2 pending/);
    assert.ok(!third.ok && third.txHash instanceof Uint8Array);
    assert.ok(sender.pool.add(tx('b', 0)).ok);
  });

  it('refuses clients above maxLocalTxs (MEMPOOL_BUSY) while peers still get in up to maxTxs', () => {
    const { pool, app } = setup({ maxTxs: 3, maxLocalTxs: 1 });
    assert.ok(pool.add(tx('a', 0)).ok);
    const callsBefore = app.calls;
    assertRejected(pool.add(tx('b', 0)), MempoolRejectionCode.BUSY, /1 transactions are ready/);
    assert.equal(app.calls, callsBefore, 'a busy pool refuses clients before checkTx');
    pool.addFromPeer('node-2', [tx('b', 0), tx('c', 0)]);
    assert.equal(pool.size(), 3);
    pool.addFromPeer('node-2', [tx('d', 0)]);
    assert.equal(pool.size(), 3, 'peers are refused at maxTxs');
    assert.equal(pool.stats().rejected[MempoolRejectionCode.BUSY], 1);
    assert.equal(pool.stats().rejected[MempoolRejectionCode.FULL], 1);
  });

  it('refuses a second transaction with a sequence the sender already has pending', () => {
    const { pool } = setup();
    assert.ok(pool.add(tx('a', 4)).ok);
    assertRejected(
      pool.add(tx('a', 4, { nonce: 1 })),
      MempoolRejectionCode.SEQUENCE_TAKEN,
      /sequence 4/,
    );
    assert.ok(pool.add(tx('b', 4)).ok);
  });

  it('rejects invalid options', () => {
    for (const options of [
      { maxTxs: 0 },
      { maxBytes: -1 },
      { seenCacheSize: 1.5 },
      { maxLocalTxs: 0 },
      { ttlBlocks: 0 },
    ]) {
      assert.throws(() => new Mempool(new FakeApp(), options), ConsensusError);
    }
    assert.equal(DEFAULT_MEMPOOL_OPTIONS.maxTxs, 20_000);
    assert.equal(DEFAULT_MEMPOOL_OPTIONS.maxTxBytes, 64 * 1024);
  });
});

describe('mempool: what it does not keep', () => {
  it('tells the application to forget the checks of duplicates, refusals, expired and displaced ones', () => {
    const { app, pool } = setup({ maxPerSender: 2, ttlBlocks: 2 });
    assert.ok(pool.add(tx('a', 0)).ok);
    // The same transaction in other bytes (one txHash): a duplicate, its check forgotten.
    const copy = pool.add(tx('a', 0, { pad: 3 }));
    assert.ok(copy.ok && copy.duplicate);
    // Another transaction at a pending sequence, and one over the per-sender limit.
    assert.equal(pool.add(tx('a', 0, { nonce: 1 })).ok, false);
    assert.ok(pool.add(tx('a', 1)).ok);
    assert.equal(pool.add(tx('a', 2)).ok, false);
    assert.deepEqual(app.forgotten, ['a|0|0|1|...', 'a|0|1|1|', 'a|2|0|1|']);
    // An exact copy of pending bytes is never checked, so there is nothing to forget.
    assert.ok(pool.add(tx('a', 0)).ok);
    assert.equal(app.forgotten.length, 3);
    // Expired after ttlBlocks blocks.
    pool.update(2, []);
    assert.equal(pool.size(), 0);
    assert.deepEqual(app.forgotten.slice(3).sort(), ['a|0|0|1|', 'a|1|0|1|']);
  });

  it('tells the application to forget a waiting transaction refused or displaced', () => {
    const { app, pool } = setup({ maxWaitingTxs: 2 }, true);
    assert.ok(pool.add(tx('a', 1)).ok, 'waits for 0');
    assert.ok(pool.add(tx('a', 2)).ok, 'waits for 0');
    assert.equal(pool.add(tx('a', 4)).ok, false, 'would wait beyond the limit');
    assert.ok(pool.add(tx('b', 1)).ok, "displaces a's last waiting one");
    assert.deepEqual(app.forgotten, ['a|4|0|1|', 'a|2|0|1|']);
  });
});

describe('mempool ready and waiting transactions', () => {
  const labels = (pool: Mempool) => [...pool.candidates()].map(label);

  it('offers only ready transactions; a waiting one becomes ready when its gap is filled', () => {
    const { pool } = setup({}, true);
    for (const seq of [0, 2, 3]) assert.ok(pool.add(tx('a', seq)).ok);
    assert.ok(pool.add(tx('b', 1)).ok);
    assert.deepEqual(labels(pool), ['a0']);
    assert.equal(pool.size(), 4);
    assert.equal(pool.readySize(), 1);
    assert.equal(pool.stats().waiting, 3);
    assert.ok(pool.add(tx('a', 1)).ok);
    assert.deepEqual(labels(pool), ['a0', 'a1', 'a2', 'a3']);
    assert.equal(pool.stats().waiting, 1, 'b1 still waits for b0');
  });

  it('tells whether a pending transaction is ready or waiting, by txHash', () => {
    const { pool, app } = setup({}, true);
    const hashOf = (bytes: Uint8Array): Uint8Array => {
      const added = pool.add(bytes);
      assert.ok(added.ok);
      return added.txHash;
    };
    const [a0, a2] = [hashOf(tx('a', 0)), hashOf(tx('a', 2))];
    assert.equal(pool.readiness(a0), 'ready');
    assert.equal(pool.readiness(a2), 'waiting', 'a2 waits for a1');
    const a1 = hashOf(tx('a', 1));
    assert.deepEqual(
      [a0, a1, a2].map((hash) => pool.readiness(hash)),
      ['ready', 'ready', 'ready'],
    );
    app.commit([tx('a', 0)]);
    pool.update(1, [tx('a', 0)]);
    assert.equal(pool.readiness(a0), null, 'committed');
    assert.equal(pool.readiness(new Uint8Array(32)), null, 'never pending');
  });

  it("names the sequence after a sender's ready run, not after the waiting ones", () => {
    const { pool, app } = setup({}, true);
    assert.equal(pool.nextSequenceAfterPending('a'), null, 'nothing pending');
    for (const seq of [0, 1, 3]) assert.ok(pool.add(tx('a', seq)).ok);
    assert.equal(pool.nextSequenceAfterPending('a'), 2, 'a3 waits for a2: a2 is what runs next');
    assert.equal(pool.nextSequenceAfterPending('b'), null);
    assert.ok(pool.add(tx('a', 2)).ok);
    assert.equal(pool.nextSequenceAfterPending('a'), 4);
    app.commit([tx('a', 0), tx('a', 1), tx('a', 2), tx('a', 3)]);
    pool.update(1, [tx('a', 0), tx('a', 1), tx('a', 2), tx('a', 3)]);
    assert.equal(pool.nextSequenceAfterPending('a'), null, 'all committed');
    // Only waiting: the sender's next sequence (the gap) comes first.
    assert.ok(pool.add(tx('a', 6)).ok);
    assert.equal(pool.nextSequenceAfterPending('a'), 4);
    // An application that does not tell the next sequence: unknown.
    const blind = setup({}, false).pool;
    assert.ok(blind.add(tx('a', 0)).ok);
    assert.equal(blind.nextSequenceAfterPending('a'), null);
  });

  it('a block that moves the sender on makes its waiting transactions ready', () => {
    const { pool, app } = setup({}, true);
    assert.ok(pool.add(tx('a', 2)).ok);
    assert.equal(pool.readySize(), 0);
    // a0 and a1 were committed through another node's mempool.
    app.commit([tx('a', 0), tx('a', 1)]);
    pool.update(1, []);
    assert.deepEqual(labels(pool), ['a2']);
    assert.equal(pool.stats().waiting, 0);
  });

  it('waiting transactions do not count towards MEMPOOL_BUSY', () => {
    const { pool } = setup({ maxLocalTxs: 2 }, true);
    for (const seq of [1, 2, 3]) assert.ok(pool.add(tx('b', seq)).ok, `b${seq} waits`);
    assert.ok(pool.add(tx('a', 0)).ok);
    assert.ok(pool.add(tx('a', 1)).ok);
    assertRejected(pool.add(tx('a', 2)), MempoolRejectionCode.BUSY, /2 transactions are ready/);
  });

  it('refuses a transaction that would wait beyond maxWaitingTxs, writing nothing', () => {
    const { pool } = setup({ maxWaitingTxs: 2 }, true);
    assert.ok(pool.add(tx('a', 1)).ok);
    assert.ok(pool.add(tx('a', 2)).ok);
    const before = pool.stats();
    assertRejected(
      pool.add(tx('a', 4)),
      MempoolRejectionCode.WAITING_FULL,
      /sequence 4 would wait for the sender's sequence 0, .*2 transactions already wait.*no sender with more waiting than this one.*submit sequence 0 first/,
    );
    assert.equal(pool.size(), before.size);
    assert.equal(pool.stats().waiting, 2);
    assert.equal(pool.stats().admitted, before.admitted);
    assert.equal(pool.stats().displaced, 0);
    // Ready transactions still get in, and filling the gap frees the waiting room.
    assert.ok(pool.add(tx('b', 0)).ok);
    assert.ok(pool.add(tx('a', 0)).ok);
    assert.equal(pool.stats().waiting, 0);
    assert.ok(pool.add(tx('a', 4)).ok, 'a4 may wait now');
    assert.ok(pool.add(tx('a', 3)).ok);
    assert.deepEqual(labels(pool), ['a0', 'b0', 'a1', 'a2', 'a3', 'a4']);
  });

  it("a full waiting room admits a sender with fewer waiting by displacing the largest holder's last one", () => {
    const { pool } = setup({ maxWaitingTxs: 5 }, true);
    for (const seq of [5, 6]) assert.ok(pool.add(tx('b', seq)).ok, `b${seq} waits`);
    for (const seq of [1, 2, 3]) assert.ok(pool.add(tx('a', seq)).ok, `a${seq} waits`);
    assert.equal(pool.stats().waiting, 5);
    // c has none waiting; a holds the most (3, b 2): a's highest sequence makes room.
    assert.ok(pool.add(tx('c', 1)).ok);
    let stats = pool.stats();
    assert.equal(stats.waiting, 5);
    assert.equal(stats.displaced, 1);
    assert.equal(stats.size, 5);
    assert.ok(!pool.has(sha256(text.encode('a|3|0'))), 'a3 displaced');
    assert.ok(pool.has(sha256(text.encode('b|6|0'))), 'b6 kept');
    // a3 was not remembered: sent again it is a new attempt, refused now (a would hold 3
    // against b's 2).
    assertRejected(pool.add(tx('a', 3)), MempoolRejectionCode.WAITING_FULL);
    // a and b hold two each; on a tie the queue that started first goes: b's.
    assert.ok(pool.add(tx('d', 7)).ok);
    stats = pool.stats();
    assert.equal(stats.displaced, 2);
    assert.ok(!pool.has(sha256(text.encode('b|6|0'))), 'b6 displaced');
    assert.ok(pool.add(tx('e', 4)).ok, 'a still holds 2: a2 goes');
    assert.ok(!pool.has(sha256(text.encode('a|2|0'))), 'a2 displaced');
    // Now every sender holds one: a newcomer of f would hold one too, so nobody has more.
    assertRejected(
      pool.add(tx('f', 1)),
      MempoolRejectionCode.WAITING_FULL,
      /no sender with more waiting/,
    );
    // The survivors become ready when their gaps fill, in order.
    for (const sender of ['a', 'c']) assert.ok(pool.add(tx(sender, 0)).ok);
    assert.deepEqual(labels(pool), ['a0', 'c0', 'a1', 'c1']);
    assert.equal(pool.stats().waiting, 3);
  });

  it('ready transactions never displace: only a transaction that would wait does', () => {
    const { pool } = setup({ maxWaitingTxs: 2 }, true);
    for (const seq of [1, 2]) assert.ok(pool.add(tx('a', seq)).ok);
    assert.ok(pool.add(tx('b', 0)).ok);
    assert.equal(pool.stats().displaced, 0);
    assert.equal(pool.stats().waiting, 2);
  });

  it('counts a sequence committed but not yet removed by update as part of the ready run', () => {
    const { pool, app } = setup({}, true);
    assert.ok(pool.add(tx('a', 0)).ok);
    // Block 1 committed a0; the driver has not called update yet when a1 arrives.
    app.commit([tx('a', 0)]);
    assert.ok(pool.add(tx('a', 1)).ok);
    assert.deepEqual(labels(pool), ['a0', 'a1']);
    assert.equal(pool.stats().waiting, 0);
    pool.update(1, [tx('a', 0)]);
    assert.deepEqual(labels(pool), ['a1']);
  });

  it('a block can leave more than maxWaitingTxs waiting; a new waiting one only displaces then', () => {
    const { pool } = setup({ maxWaitingTxs: 2, ttlBlocks: 2 }, true);
    assert.ok(pool.add(tx('a', 0)).ok);
    pool.update(1, []);
    for (const seq of [1, 2, 3]) assert.ok(pool.add(tx('a', seq)).ok, `a${seq} is ready`);
    // a0 expires (pending for ttlBlocks): a1..a3 now wait for it.
    pool.update(2, []);
    assert.equal(pool.stats().expired, 1);
    assert.equal(pool.stats().waiting, 3);
    assert.deepEqual(labels(pool), []);
    assertRejected(pool.add(tx('a', 4)), MempoolRejectionCode.WAITING_FULL);
    // b1 displaces a3: the count stays above the limit, it does not grow.
    assert.ok(pool.add(tx('b', 1)).ok);
    assert.equal(pool.stats().waiting, 3);
    assert.equal(pool.stats().displaced, 1);
    assert.ok(pool.add(tx('a', 3)).ok === false, "a would hold 3 against b's 1 once more: refused");
    // Resubmitting a0 makes a's run ready again (a3 was displaced).
    assert.ok(pool.add(tx('a', 0)).ok);
    assert.deepEqual(labels(pool), ['a0', 'a1', 'a2']);
    assert.equal(pool.stats().waiting, 1);
  });

  it('refuses a checkTx answer whose nextSequence is not a whole number', () => {
    const pool = new Mempool({
      checkTx: () => ({
        ok: true,
        txHash: new Uint8Array(32),
        sender: 'a',
        sequence: 0,
        nextSequence: -1,
      }),
    });
    assertRejected(pool.add(tx('a', 0)), MempoolRejectionCode.CHECK_FAILED);
  });
});

describe('mempool ordering', () => {
  it('keeps each sender in sequence order and interleaves senders round-robin', () => {
    const { pool } = setup();
    for (const [sender, seq] of [
      ['a', 3],
      ['a', 1],
      ['b', 1],
      ['a', 2],
      ['c', 5],
      ['b', 2],
    ] as const) {
      assert.ok(pool.add(tx(sender, seq)).ok);
    }
    assert.deepEqual([...pool.candidates()].map(label), ['a1', 'b1', 'c5', 'a2', 'b2', 'a3']);
  });

  it('a sender whose queue emptied goes to the back', () => {
    const { app, pool } = setup();
    const a0 = tx('a', 0);
    pool.add(a0);
    pool.add(tx('b', 0));
    app.commit([a0]);
    pool.update(1, [a0]);
    pool.add(tx('a', 1));
    pool.add(tx('c', 0));
    assert.deepEqual([...pool.candidates()].map(label), ['b0', 'a1', 'c0']);
  });
});

describe('mempool update', () => {
  it('removes committed transactions, re-checks the rest once each, and drops refused ones', () => {
    const { app, pool } = setup();
    const block = [tx('a', 0), tx('b', 0)];
    const added = [...block, tx('a', 1), tx('b', 1), tx('c', 0)].map((item) => pool.add(item));
    const b1Added = added[3]!;
    assert.ok(b1Added.ok);
    // A different encoding of b's sequence 1 is committed (another node's copy): b1 is now
    // refused by the re-check (sequence used), not matched by bytes.
    const b1Elsewhere = tx('b', 1, { pad: 1 });
    const committed = [...block, b1Elsewhere];
    app.commit(committed);
    app.calls = 0;
    pool.update(1, committed);
    assert.equal(app.calls, 3, 'the three remaining pending transactions are re-checked once each');
    assert.deepEqual([...pool.candidates()].map(label), ['a1', 'c0']);
    assert.equal(pool.size(), 2);
    assert.equal(pool.bytes(), tx('a', 1).length + tx('c', 0).length);
    const stats = pool.stats();
    assert.equal(stats.committed, 2);
    assert.equal(stats.evicted, 1);
    // The refusal that evicted b1 is kept by its txHash for whoever waits for it.
    assert.equal(pool.evictionOf(b1Added.txHash)?.code, 'TX_SEQUENCE_USED');
    assert.equal(pool.evictionOf((added[4] as { txHash: Uint8Array }).txHash), undefined);
  });

  it('drops transactions pending for ttlBlocks blocks, and admits them again afterwards', () => {
    const { pool } = setup({ ttlBlocks: 2 });
    // b1 waits for b0, which never comes: it can never run.
    assert.ok(pool.add(tx('b', 1)).ok);
    pool.update(1, []);
    assert.ok(pool.add(tx('a', 0)).ok);
    pool.update(2, []);
    assert.deepEqual([...pool.candidates()].map(label), ['a0'], 'b1 expired after 2 blocks');
    assert.equal(pool.stats().expired, 1);
    assert.equal(pool.stats().evicted, 0);
    pool.update(3, []);
    assert.equal(pool.size(), 0, 'a0 expired too');
    assert.ok(pool.add(tx('b', 1)).ok, 'an expired transaction is a new attempt');
  });

  it('remembers committed transactions, so the same bytes are not checked again', () => {
    const { app, pool } = setup();
    const a0 = tx('a', 0);
    pool.add(a0);
    app.commit([a0]);
    pool.update(1, [a0]);
    app.calls = 0;
    assertRejected(pool.add(a0), MempoolRejectionCode.ALREADY_COMMITTED);
    pool.addFromPeer('peer-1', [a0]);
    assert.equal(app.calls, 0);
    assert.equal(pool.stats().rejected[MempoolRejectionCode.ALREADY_COMMITTED], 2);
  });

  it('remembers a rejection until the next block, within a bounded cache', () => {
    const { app, pool } = setup({ seenCacheSize: 2 });
    const bad = [0, 1, 2].map((i) => tx(`s${i}`, 0, { valid: false }));
    pool.add(bad[0]!);
    pool.add(bad[0]!);
    assert.equal(app.calls, 1, 'a rejected transaction gossiped again is not re-checked');
    pool.add(bad[1]!);
    pool.add(bad[2]!);
    assert.equal(app.calls, 3);
    pool.add(bad[0]!);
    assert.equal(app.calls, 4, 'the oldest entry was evicted from the two-entry cache');
    pool.add(bad[2]!);
    assert.equal(app.calls, 4);
    pool.update(1, []);
    pool.add(bad[2]!);
    assert.equal(app.calls, 5, 'after a block the state changed, so it is checked again');
    assert.equal(pool.stats().rejected.TX_BAD_SIGNATURE, 7);
  });

  it('re-checks 20,000 pending transactions in one pass', () => {
    const { app, pool } = setup();
    const senders = 200;
    const txs: Uint8Array[] = [];
    for (let seq = 0; seq < 100; seq++) {
      for (let s = 0; s < senders; s++) txs.push(tx(`sender-${s}`, seq));
    }
    for (const item of txs) assert.ok(pool.add(item).ok);
    assert.equal(pool.size(), 20_000);
    assertRejected(pool.add(tx('late', 0)), MempoolRejectionCode.FULL);
    const block = txs.slice(0, senders);
    app.commit(block);
    app.calls = 0;
    pool.update(1, block);
    assert.equal(app.calls, 20_000 - senders);
    assert.equal(pool.size(), 20_000 - senders);
    assert.equal(label([...pool.candidates()][0]!), 'sender-01');
  });
});

describe('mempool listeners and peers', () => {
  it('tells listeners about admitted transactions and where they came from', () => {
    const { pool } = setup();
    const seen: string[] = [];
    const stop = pool.onAdmitted((bytes, origin) => seen.push(`${label(bytes)}@${origin}`));
    pool.onAdmitted(() => {
      throw new Error('a broken listener');
    });
    assert.ok(pool.add(tx('a', 0)).ok);
    pool.add(tx('a', 0));
    pool.add(tx('a', 1, { valid: false }));
    pool.addFromPeer('peer-7', [tx('b', 0), tx('a', 0), Uint8Array.of(0xff)]);
    stop();
    pool.add(tx('c', 0));
    assert.deepEqual(seen, ['a0@local', 'b0@peer-7']);
    const stats = pool.stats();
    assert.equal(stats.listenerErrors, 3);
    assert.equal(stats.rejected.TX_MALFORMED, 1);
    assert.equal(pool.size(), 3);
  });

  it('ignores a peer message that is not a list, counting it', () => {
    const { pool } = setup();
    pool.addFromPeer('peer-1', 'nonsense' as unknown as Uint8Array[]);
    assert.equal(pool.stats().rejected[MempoolRejectionCode.NOT_BYTES], 1);
  });

  it('keeps its own copy of admitted bytes', () => {
    const { pool } = setup();
    const bytes = tx('a', 0);
    pool.add(bytes);
    bytes.fill(0);
    assert.equal(label([...pool.candidates()][0]!), 'a0');
  });
});

describe('mempool accounting (property)', () => {
  type Op =
    | { op: 'add'; sender: number; seq: number; valid: boolean; pad: number; peer: boolean }
    | { op: 'commit'; take: number };

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record(
        {
          op: fc.constant('add' as const),
          sender: fc.integer({ min: 0, max: 4 }),
          seq: fc.integer({ min: 0, max: 6 }),
          valid: fc.boolean(),
          pad: fc.integer({ min: 0, max: 40 }),
          peer: fc.boolean(),
        },
        { noNullPrototype: true },
      ),
    },
    {
      weight: 1,
      arbitrary: fc.record(
        { op: fc.constant('commit' as const), take: fc.integer({ min: 0, max: 4 }) },
        { noNullPrototype: true },
      ),
    },
  );

  it('size, bytes, limits and order stay consistent under any sequence of operations', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const options = { maxTxs: 8, maxBytes: 500, maxPerSender: 3, seenCacheSize: 5 };
        const { app, pool } = setup(options);
        let height = 0;
        for (const step of ops) {
          if (step.op === 'add') {
            const bytes = tx(`s${step.sender}`, step.seq, { valid: step.valid, pad: step.pad });
            if (step.peer) pool.addFromPeer('peer', [bytes]);
            else pool.add(bytes);
          } else {
            // The proposer takes the first candidates; the block commits them.
            const block = [...pool.candidates()].slice(0, step.take);
            app.commit(block);
            pool.update(++height, block);
          }
          const candidates = [...pool.candidates()];
          assert.equal(candidates.length, pool.size());
          assert.equal(
            candidates.reduce((sum, item) => sum + item.length, 0),
            pool.bytes(),
          );
          assert.ok(pool.size() <= options.maxTxs);
          assert.ok(pool.bytes() <= options.maxBytes);
          const bySender = new Map<string, number[]>();
          for (const item of candidates) {
            const { sender, seq } = parse(item)!;
            bySender.set(sender, [...(bySender.get(sender) ?? []), seq]);
            const check = app.checkTx(item);
            assert.ok(check.ok && pool.has(check.txHash), 'every candidate is valid and indexed');
          }
          for (const seqs of bySender.values()) {
            assert.ok(seqs.length <= options.maxPerSender);
            assert.deepEqual(
              seqs,
              [...seqs].sort((x, y) => x - y),
            );
            assert.equal(new Set(seqs).size, seqs.length);
          }
          const stats = pool.stats();
          assert.equal(stats.size, pool.size());
          assert.equal(stats.admitted - stats.committed - stats.evicted, pool.size());
        }
      }),
      { numRuns: 150 },
    );
  });

  it('with the next sequence known, exactly the gap-free runs are offered and waiting stays bounded', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const options = {
          maxTxs: 8,
          maxLocalTxs: 5,
          maxWaitingTxs: 2,
          maxPerSender: 4,
          ttlBlocks: 1_000,
        };
        const { app, pool } = setup(options, true);
        // The model: every admitted transaction, by sender and sequence.
        const pending = new Map<string, Set<number>>();
        /** A sender's waiting count: its pending sequences outside the run from its next one. */
        const waitingIn = (seqs: ReadonlySet<number>, who: string): number => {
          let ready = 0;
          for (let seq = app.next.get(who) ?? 0; seqs.has(seq); seq++) ready++;
          return [...seqs].filter((seq) => seq >= (app.next.get(who) ?? 0)).length - ready;
        };
        let height = 0;
        for (const step of ops) {
          if (step.op === 'add') {
            const sender = `s${step.sender}`;
            const bytes = tx(sender, step.seq, { valid: step.valid, pad: step.pad });
            const waitingBefore = pool.stats().waiting;
            const displacedBefore = pool.stats().displaced;
            const readyBefore = pool.readySize();
            const result = step.peer ? pool.add(bytes, 'peer') : pool.add(bytes);
            // The model's waiting counts, with the newcomer counted for its sender.
            const withNewcomer = new Set(pending.get(sender) ?? []).add(step.seq);
            const waitingOf = (who: string): number =>
              waitingIn(who === sender ? withNewcomer : (pending.get(who) ?? new Set()), who);
            const largestOther = Math.max(
              0,
              ...[...pending.keys()].filter((who) => who !== sender).map(waitingOf),
            );
            if (result.ok && !result.duplicate) {
              pending.set(sender, withNewcomer);
            }
            if (!result.ok && result.code === MempoolRejectionCode.BUSY) {
              assert.ok(!step.peer && readyBefore >= options.maxLocalTxs);
            }
            if (!result.ok && result.code === MempoolRejectionCode.WAITING_FULL) {
              assert.ok(waitingBefore >= options.maxWaitingTxs);
              assert.ok(largestOther <= waitingOf(sender), 'refused while a larger holder existed');
            }
            if (pool.stats().displaced > displacedBefore) {
              // Exactly one sender other than the newcomer's, holding the most waiting (more
              // than the newcomer's would), lost its highest sequence.
              assert.ok(result.ok && !result.duplicate);
              assert.equal(pool.stats().displaced, displacedBefore + 1);
              assert.ok(largestOther > waitingOf(sender));
              const losers = [...pending.entries()].filter(([who, seqs]) => {
                if (who === sender || seqs.size === 0) return false;
                const top = Math.max(...seqs);
                return !pool.has(sha256(text.encode(`${who}|${top}|0`)));
              });
              assert.equal(losers.length, 1);
              const [loser, seqs] = losers[0]!;
              assert.equal(waitingOf(loser), largestOther);
              seqs.delete(Math.max(...seqs));
            }
          } else {
            const block = [...pool.candidates()].slice(0, step.take);
            app.commit(block);
            pool.update(++height, block);
            for (const item of block) {
              const { sender, seq } = parse(item)!;
              pending.get(sender)!.delete(seq);
            }
          }
          // Expected ready runs: each sender's consecutive sequences from its next one.
          const expected = new Set<string>();
          let size = 0;
          for (const [sender, seqs] of pending) {
            const next = app.next.get(sender) ?? 0;
            for (const seq of seqs) if (seq < next) seqs.delete(seq); // re-check evicted these
            size += seqs.size;
            for (let seq = next; seqs.has(seq); seq++) expected.add(`${sender}${seq}`);
          }
          const offered = [...pool.candidates()].map(label);
          assert.deepEqual(new Set(offered), expected);
          assert.equal(offered.length, expected.size);
          assert.equal(pool.size(), size);
          assert.equal(pool.readySize(), expected.size);
          assert.equal(pool.stats().waiting, size - expected.size);
          assert.ok(pool.stats().waiting <= options.maxWaitingTxs);
        }
      }),
      { numRuns: 600 },
    );
  });
});
