import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  chainSummary,
  conflictingMessages,
  makeGenesisDocument,
  makeIdentities,
  TestCluster,
  waitUntil,
  type ValidatorIdentity,
} from './fixtures.js';
import { kvTx, type TestMempool } from './test-app.js';

describe('ConsensusDriver: a four-validator cluster', () => {
  let identities: ValidatorIdentity[];
  before(async () => {
    identities = await makeIdentities(4);
  });

  it('commits five heights with identical blocks and state roots on every validator', async () => {
    const cluster = new TestCluster(identities, makeGenesisDocument(identities));
    try {
      await cluster.startAll();
      // A listener that throws is the listener's problem, not the driver's.
      for (const event of ['commit', 'round', 'signed', 'rejected'] as const) {
        cluster.node(1).driver.on(event, () => {
          throw new Error(`listener of ${event} fails`);
        });
      }
      for (const [index, node] of cluster.running().entries()) {
        (node.mempool as TestMempool).add(kvTx(`key${index}`, `value${index}`));
      }
      await cluster.waitForHeight(5);
      const reference = chainSummary(cluster.node(0).store, 5);
      for (const node of cluster.running())
        assert.deepEqual(chainSummary(node.store, 5), reference);
      // Every transaction was committed once somewhere in the chain.
      const committed = cluster.running()[0]!.commits.reduce((sum, commit) => sum + commit.txs, 0);
      assert.ok(committed >= 1, 'transactions were included');
      const status = cluster.node(1).driver.status();
      assert.ok(status.committedHeight >= 5);
      assert.equal(status.validators.count, 4);
      assert.equal(status.peers.length, 3);
      assert.equal(status.halted, null);
      // Most received votes change nothing the WAL holds: their fsync is skipped.
      assert.ok(
        status.wal.unchanged + status.wal.internal > 0,
        'unchanged WAL records are not appended',
      );
      assert.deepEqual(conflictingMessages(cluster.hub), []);
      const block = cluster.node(2).driver.committedBlock(3);
      assert.ok(block !== null);
      assert.equal(block.block.header.height, 3);
      assert.equal(block.commit.height, 3);
    } finally {
      await cluster.close();
    }
  });
});

describe('ConsensusDriver: faults', () => {
  let identities: ValidatorIdentity[];
  before(async () => {
    identities = await makeIdentities(4);
  });

  it('keeps committing with one validator down, which catches up by sync after a restart', async () => {
    const cluster = new TestCluster(identities, makeGenesisDocument(identities));
    try {
      await cluster.startAll();
      await cluster.waitForHeight(2);
      await cluster.stop(3);
      const stoppedAt = cluster.node(0).height;
      await cluster.waitForHeight(stoppedAt + 4);
      const restarted = await cluster.start(3);
      const target = cluster.node(0).height + 2;
      await cluster.waitForHeight(target);
      assert.ok(
        restarted.commits.some((commit) => commit.source === 'sync'),
        'the restarted validator stored blocks it fetched from peers',
      );
      const reference = chainSummary(cluster.node(0).store, target);
      for (const node of cluster.running()) {
        assert.deepEqual(chainSummary(node.store, target), reference, `${node.id} agrees`);
      }
      assert.deepEqual(conflictingMessages(cluster.hub), []);
    } finally {
      await cluster.close();
    }
  });

  it('stops committing with two of four down, without forking, and resumes when one returns', async () => {
    const cluster = new TestCluster(
      identities,
      makeGenesisDocument(identities, {
        timeouts: {
          proposeMs: 120,
          proposeDeltaMs: 40,
          prevoteMs: 60,
          prevoteDeltaMs: 20,
          precommitMs: 60,
          precommitDeltaMs: 20,
        },
      }),
      { options: { gossipIntervalMs: 100 } },
    );
    try {
      await cluster.startAll();
      await cluster.waitForHeight(2);
      await cluster.stop(2);
      await cluster.stop(3);
      const [a, b] = [cluster.node(0), cluster.node(1)];
      // Whatever was in flight settles; then nothing can be decided: two of four have no quorum.
      await waitUntil(
        () => a.height === b.height && a.driver.status().height === a.height + 1,
        'the two survivors to agree on the last committed height',
      );
      const stalledAt = a.height;
      const statusCount = () =>
        cluster.hub.sent.filter(({ from, message }) => from === a.id && message.kind === 'status')
          .length;
      const before = statusCount();
      // Several gossip periods (each re-broadcasts the survivors' votes) and the round timeouts
      // they can still reach pass without a decision.
      await waitUntil(() => statusCount() >= before + 5, 'five gossip periods to pass');
      assert.equal(a.height, stalledAt);
      assert.equal(b.height, stalledAt);
      assert.ok(
        a.rounds.some((info) => info.height === stalledAt + 1 && info.step !== 'propose'),
        'the survivors moved past the propose step (their propose timeout fired)',
      );
      await cluster.start(2);
      await cluster.waitForHeight(stalledAt + 2);
      const reference = chainSummary(a.store, stalledAt + 2);
      for (const node of cluster.running()) {
        assert.deepEqual(chainSummary(node.store, stalledAt + 2), reference, `${node.id} agrees`);
      }
      assert.deepEqual(conflictingMessages(cluster.hub), []);
    } finally {
      await cluster.close();
    }
  });
});
