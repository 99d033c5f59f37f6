import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { encodeSequence } from '../../src/consensus/application/accounts.js';
import { decodeTransaction } from '../../src/consensus/application/envelope.js';
import type { MempoolAddResult } from '../../src/consensus/mempool.js';
import { toHex } from '../../src/crypto/bytes.js';
import { NodeTxSender } from '../../src/node/discovery-submit.js';

/**
 * The node's own transaction sender (src/node/discovery-submit.ts): a round of up to
 * `maxPerRound` queued bodies with consecutive sequences after a commit, the next round only
 * once the last one left the mempool, and a refusal ending the round without losing what was
 * not submitted.
 */

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/** A mempool that admits, refuses chosen sequences, and commits on request. */
class FakeNode {
  committedSequence = 5;
  readonly pendingTxs = new Map<string, number>();
  readonly submitted: { sequence: number; body: string }[] = [];
  /** Refusals by sequence: the code to answer with. */
  readonly refuse = new Map<number, string>();
  /** Runs during a submission (before it is answered). */
  duringSubmit: (() => void) | null = null;

  submit(tx: Uint8Array): Promise<MempoolAddResult> {
    const envelope = decodeTransaction(tx);
    this.duringSubmit?.();
    const code = this.refuse.get(envelope.sequence);
    if (code !== undefined) return Promise.resolve({ ok: false, code, message: code });
    this.submitted.push({
      sequence: envelope.sequence,
      body: new TextDecoder().decode(envelope.body),
    });
    this.pendingTxs.set(toHex(envelope.txHash), envelope.sequence);
    return Promise.resolve({ ok: true, txHash: envelope.txHash, duplicate: false });
  }

  /** Commits every pending transaction. */
  commitAll(): void {
    this.committedSequence += this.pendingTxs.size;
    this.pendingTxs.clear();
  }

  sender(maxPerRound?: number): NodeTxSender {
    return new NodeTxSender({
      chainId: 'test-chain',
      stampDifficulty: 0,
      privateKey: generateKeyPairSync('ed25519').privateKey,
      query: () => ({
        height: 1,
        value: encodeSequence(this.committedSequence),
        stateRoot: new Uint8Array(32),
      }),
      submit: (tx) => this.submit(tx),
      pending: (txHash) => this.pendingTxs.has(toHex(txHash)),
      ...(maxPerRound === undefined ? {} : { maxPerRound }),
    });
  }
}

describe('NodeTxSender', () => {
  it('submits a round of queued bodies with consecutive sequences, then waits for it', async () => {
    const node = new FakeNode();
    const sender = node.sender(4);
    for (let i = 0; i < 10; i++) sender.enqueue(`svc/${i}`, text(`renew-${i}`));

    await sender.pump();
    assert.deepEqual(
      node.submitted.map((entry) => [entry.sequence, entry.body]),
      [
        [5, 'renew-0'],
        [6, 'renew-1'],
        [7, 'renew-2'],
        [8, 'renew-3'],
      ],
    );
    // The round is still in the mempool: nothing more goes out.
    await sender.pump();
    assert.equal(node.submitted.length, 4);

    node.commitAll();
    await sender.pump();
    assert.deepEqual(
      node.submitted.slice(4).map((entry) => entry.sequence),
      [9, 10, 11, 12],
    );
    node.commitAll();
    await sender.pump();
    node.commitAll();
    await sender.pump();
    assert.deepEqual(
      node.submitted.map((entry) => entry.body),
      Array.from({ length: 10 }, (_, i) => `renew-${i}`),
    );
    assert.equal(sender.queued('svc/9'), false);
  });

  it('a transient refusal ends the round and keeps the refused body and the rest queued', async () => {
    const node = new FakeNode();
    const sender = node.sender(8);
    for (let i = 0; i < 6; i++) sender.enqueue(`svc/${i}`, text(`renew-${i}`));
    node.refuse.set(7, 'MEMPOOL_SEQUENCE_TAKEN');

    await sender.pump();
    assert.deepEqual(
      node.submitted.map((entry) => entry.body),
      ['renew-0', 'renew-1'],
    );
    for (let i = 2; i < 6; i++) assert.equal(sender.queued(`svc/${i}`), true, `svc/${i}`);

    node.refuse.clear();
    node.commitAll();
    await sender.pump();
    assert.deepEqual(
      node.submitted.slice(2).map((entry) => [entry.sequence, entry.body]),
      [
        [7, 'renew-2'],
        [8, 'renew-3'],
        [9, 'renew-4'],
        [10, 'renew-5'],
      ],
    );
  });

  it('a permanent refusal drops that body only', async () => {
    const node = new FakeNode();
    const sender = node.sender(8);
    for (let i = 0; i < 4; i++) sender.enqueue(`svc/${i}`, text(`renew-${i}`));
    node.refuse.set(6, 'DISCOVERY_NOT_OWNER');

    await sender.pump();
    assert.deepEqual(
      node.submitted.map((entry) => entry.body),
      ['renew-0'],
    );
    assert.equal(sender.queued('svc/1'), false);
    assert.equal(sender.queued('svc/2'), true);
    assert.equal(sender.queued('svc/3'), true);

    node.refuse.clear();
    node.commitAll();
    await sender.pump();
    assert.deepEqual(
      node.submitted.slice(1).map((entry) => [entry.sequence, entry.body]),
      [
        [6, 'renew-2'],
        [7, 'renew-3'],
      ],
    );
  });

  it('a body queued again during a round is newer and is not replaced by a retried one', async () => {
    const node = new FakeNode();
    const sender = node.sender(8);
    sender.enqueue('svc/a', text('old-a'));
    sender.enqueue('svc/b', text('old-b'));
    node.refuse.set(5, 'MEMPOOL_BUSY');
    node.duringSubmit = () => {
      node.duringSubmit = null;
      sender.enqueue('svc/b', text('new-b'));
    };

    await sender.pump();
    assert.equal(node.submitted.length, 0);
    node.refuse.clear();
    await sender.pump();
    assert.deepEqual(node.submitted.map((entry) => entry.body).sort(), ['new-b', 'old-a']);
  });

  it('refuses a round size outside 1..64', () => {
    const node = new FakeNode();
    assert.throws(() => node.sender(0), RangeError);
    assert.throws(() => node.sender(65), RangeError);
    assert.throws(() => node.sender(1.5), RangeError);
  });
});
