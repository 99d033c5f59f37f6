import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  ModuleError,
  decodeSequence,
  sequenceKey,
  type Module,
} from '../../../src/consensus/application/index.js';
import { Mempool } from '../../../src/consensus/mempool.js';
import { createKvModule, kvSet } from '../../../src/kv/index.js';
import { blockAt, makeSender, openNode, tx, utf8, type Sender, type TestNode } from './fixture.js';

/** Seats per block of the toy module. */
const SEATS = 3;

const TAKE = 1;
const CLOSE = 2;
const OPEN = 3;

/**
 * A module with a per-block capacity: `take` uses one of the block's `SEATS` seats, `close`
 * and `open` stop and resume taking. Both "no seat" refusals depend on the block and the
 * module's state, never on the transaction, so they are deferrable.
 */
function createSeatsModule(): Module<number> {
  const closedKey = utf8('closed');
  const takenKey = (height: number): Uint8Array => utf8(`taken/${height}`);
  const taken = (state: { get(key: Uint8Array): Uint8Array | null }, height: number): number =>
    state.get(takenKey(height))?.[0] ?? 0;
  return {
    name: 'seats',
    decodeBody(body) {
      if (body.length !== 1 || ![TAKE, CLOSE, OPEN].includes(body[0]!)) {
        throw new ModuleError('SEATS_MALFORMED', 1, 'a seats body is one byte: 1, 2 or 3');
      }
      return body[0]!;
    },
    check(ctx, op) {
      if (op !== TAKE) return;
      if (ctx.state.get(closedKey) !== null) {
        throw new ModuleError('SEATS_CLOSED', 3, 'seats are closed', {}, { deferrable: true });
      }
      if (taken(ctx.state, ctx.height) >= SEATS) {
        throw new ModuleError(
          'SEATS_FULL',
          2,
          `block ${ctx.height} has no seat left`,
          {},
          { deferrable: true },
        );
      }
    },
    apply(ctx, op) {
      if (op === TAKE) {
        ctx.state.set(takenKey(ctx.height), new Uint8Array([taken(ctx.state, ctx.height) + 1]));
      } else if (op === CLOSE) {
        ctx.state.set(closedKey, new Uint8Array([1]));
      } else {
        ctx.state.delete(closedKey);
      }
    },
    query: () => undefined,
  };
}

const seats = (sender: Sender, op: number, sequence?: number): Uint8Array =>
  tx(sender, new Uint8Array([op]), {
    module: 'seats',
    ...(sequence === undefined ? {} : { sequence }),
  });

describe('deferrable module refusals', () => {
  const nodes: TestNode[] = [];
  const open = async (): Promise<TestNode> => {
    const node = await openNode({ modules: [createKvModule(), createSeatsModule()] });
    nodes.push(node);
    return node;
  };
  after(async () => {
    for (const node of nodes) await node.close();
  });

  const nextSequence = (node: TestNode, sender: Sender): number =>
    decodeSequence(node.store.state.get(sequenceKey(sender.publicKey)));

  it('a proposal holds what fits; the rest stay unexecuted in the mempool for the next block', async () => {
    const node = await open();
    const mempool = new Mempool(node.app);
    const senders = Array.from({ length: 2 * SEATS }, () => makeSender());
    const takes = senders.map((sender) => seats(sender, TAKE));
    // The first sender's second take: after its first, which is left out, it is out of sequence.
    const followUp = seats(senders[SEATS]!, TAKE);
    for (const bytes of [...takes, followUp]) assert.ok(mempool.add(bytes).ok);

    const proposal = node.app.prepareProposal(
      blockAt(node.nextHeight(), []),
      mempool.candidates(),
      1 << 20,
    );
    assert.deepEqual(proposal.transactions, takes.slice(0, SEATS));
    assert.deepEqual(
      proposal.result.txResults.map((result) => result.code),
      Array<number>(SEATS).fill(0),
    );
    const height = node.commit(proposal.result);
    mempool.update(height, proposal.transactions);
    for (const sender of senders.slice(0, SEATS)) assert.equal(nextSequence(node, sender), 1);
    for (const sender of senders.slice(SEATS)) {
      assert.equal(nextSequence(node, sender), 0, 'a left-out transaction uses no sequence');
    }
    assert.equal(mempool.size(), SEATS + 1, 'the left-out ones are still pending');
    assert.equal(mempool.stats().evicted, 0);

    // The next block has room: they are proposed again, the follow-up after its predecessor.
    const next = node.app.prepareProposal(
      blockAt(node.nextHeight(), []),
      mempool.candidates(),
      1 << 20,
    );
    assert.deepEqual(next.transactions, takes.slice(SEATS));
    mempool.update(node.commit(next.result), next.transactions);
    const last = node.app.prepareProposal(
      blockAt(node.nextHeight(), []),
      mempool.candidates(),
      1 << 20,
    );
    assert.deepEqual(last.transactions, [followUp]);
  });

  it('the proposer goes on past deferred candidates, within maxTxs', async () => {
    const node = await open();
    const takers = Array.from({ length: SEATS + 2 }, () => makeSender());
    const other = makeSender();
    const takes = takers.map((sender) => seats(sender, TAKE));
    const write = tx(other, kvSet('after', 'v'));
    const block = blockAt(node.nextHeight(), []);
    const proposal = node.app.prepareProposal(block, [...takes, write], 1 << 20);
    assert.deepEqual(proposal.transactions, [...takes.slice(0, SEATS), write]);
    // Deferred candidates do not count towards maxTxs.
    const counted = node.app.prepareProposal(block, [...takes, write], 1 << 20, SEATS + 1);
    assert.deepEqual(counted.transactions, [...takes.slice(0, SEATS), write]);
    // The proposal is what a validator executes.
    assert.deepEqual(
      node.app.executeBlock(blockAt(block.height, proposal.transactions)).stateRoot,
      proposal.result.stateRoot,
    );
  });

  it('in a block some proposer made, an over-capacity transaction is refused and uses its sequence', async () => {
    const node = await open();
    const senders = Array.from({ length: SEATS + 1 }, () => makeSender());
    const result = node.executeAndCommit(senders.map((sender) => seats(sender, TAKE)));
    assert.deepEqual(
      result.txResults.map((r) => r.code),
      [...Array<number>(SEATS).fill(0), 2],
    );
    assert.match(result.txResults[SEATS]!.log, /^SEATS_FULL: block 1 has no seat left$/);
    assert.equal(nextSequence(node, senders[SEATS]!), 1, 'the refusal used the sequence');
  });

  it('checkTx admits a deferred transaction and the mempool keeps it until there is room', async () => {
    const node = await open();
    const admin = makeSender();
    const alice = makeSender();
    node.executeAndCommit([seats(admin, CLOSE)]);
    const mempool = new Mempool(node.app);
    const take = seats(alice, TAKE);
    assert.ok(node.app.checkTx(take).ok, 'a deferrable refusal is not a rejection');
    assert.ok(mempool.add(take).ok);
    const refused = node.app.checkTx(seats(makeSender(), 9));
    assert.equal(refused.ok ? 'admitted' : refused.code, 'SEATS_MALFORMED', 'others still reject');

    const closed = node.app.prepareProposal(
      blockAt(node.nextHeight(), []),
      mempool.candidates(),
      1 << 20,
    );
    assert.deepEqual(closed.transactions, []);
    mempool.update(node.commit(closed.result), closed.transactions);
    assert.equal(mempool.size(), 1, 'kept by the re-check after the block');

    const reopen = seats(admin, OPEN);
    assert.ok(mempool.add(reopen).ok);
    const opened = node.app.prepareProposal(
      blockAt(node.nextHeight(), []),
      mempool.candidates(),
      1 << 20,
    );
    // `take` came first and is still closed at that point; `open` follows it in this block.
    assert.deepEqual(opened.transactions, [reopen]);
    mempool.update(node.commit(opened.result), opened.transactions);
    const taken = node.app.prepareProposal(
      blockAt(node.nextHeight(), []),
      mempool.candidates(),
      1 << 20,
    );
    assert.deepEqual(taken.transactions, [take]);
    assert.deepEqual(
      taken.result.txResults.map((r) => r.code),
      [0],
    );
  });
});
