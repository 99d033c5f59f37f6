import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { blockTemplate, buildBlock } from '../../../src/consensus/block.js';
import { genesisHeightContext } from '../../../src/consensus/genesis.js';
import { proposerAt } from '../../../src/consensus/proposer.js';
import { signProposal, signVote } from '../../../src/consensus/signer.js';
import type { GossipMessage } from '../../../src/consensus/driver/ports.js';
import { generateEd25519KeyPair } from '../../../src/crypto/ed25519.js';
import {
  chainSummary,
  conflictingMessages,
  makeGenesisDocument,
  makeIdentities,
  TestCluster,
  waitUntil,
  type ValidatorIdentity,
} from './fixtures.js';
import type { Delivery } from './memory-network.js';

const MALLORY = 'mallory';

describe('ConsensusDriver: hostile input', () => {
  let identities: ValidatorIdentity[];
  before(async () => {
    identities = await makeIdentities(4);
  });

  it('survives garbage and forged messages and a peer lying about its height', async () => {
    const genesis = makeGenesisDocument(identities);
    const cluster = new TestCluster(identities, genesis);
    try {
      await cluster.startAll();
      await cluster.waitForHeight(1);
      const chainId = genesis.chainId;
      const mallory = cluster.hub.join(MALLORY, null);
      // Mallory claims to be far ahead, then serves blocks that are garbage or forged.
      let served = 0;
      mallory.serve = (from) => {
        served++;
        const real = cluster.node(0).store.blocks.range(1, 1)[0];
        return served % 2 === 1
          ? [{ height: from, block: randomBytes(200), commit: randomBytes(50) }]
          : [{ height: from, block: real!.block.bytes, commit: real!.commit }];
      };
      const wrongKey = generateEd25519KeyPair().privateKey;
      const context = genesisHeightContext(genesis);
      const forged = (to: number): unknown[] => {
        const height = cluster.node(to).driver.status().committedHeight + 1;
        const real = identities[1]!;
        const proposer = proposerAt(context.schedule, 0).address;
        const block = buildBlock(blockTemplate(chainId, context, proposer), {
          transactions: [],
          evidence: [],
          appStateRoot: randomBytes(32),
          consensusProof: randomBytes(32),
        });
        const vote = (overrides: Partial<Parameters<typeof signVote>[1]> = {}, key = wrongKey) =>
          signVote(
            chainId,
            {
              type: 'prevote',
              height,
              round: 0,
              blockHash: randomBytes(32),
              validator: real.address,
              notBefore: 0,
              pq: false,
              ...overrides,
            },
            Date.now(),
            key,
          );
        return [
          null,
          42,
          'vote',
          { kind: 'unknown' },
          { kind: 'vote' },
          { kind: 'vote', vote: 'x' },
          { kind: 'vote', vote: { height: 'one' } },
          { kind: 'proposal', proposal: { height: height, block: null } },
          { kind: 'proposal', proposal: { height: height, block: { header: 7 } } },
          { kind: 'status', committedHeight: -1, height: 1, round: 0 },
          { kind: 'status', committedHeight: 1.5, height: 1, round: 0 },
          { kind: 'txs', txs: [1, 2, 3] },
          { kind: 'txs', txs: 'abc' },
          // Well-formed but forged: a validator's name with another key.
          { kind: 'vote', vote: vote() },
          { kind: 'vote', vote: vote({ type: 'precommit' }) },
          // An unknown validator.
          { kind: 'vote', vote: vote({ validator: 'ab'.repeat(20) }) },
          // Far-future rounds and heights, a stale height.
          { kind: 'vote', vote: vote({ round: 2 ** 31 - 1 }) },
          { kind: 'vote', vote: vote({ height: height + 1 }) },
          { kind: 'vote', vote: vote({ height: height + 1000 }) },
          { kind: 'vote', vote: vote({ height: 1 }) },
          // A precommit with a garbage FALCON signature, signed with the real key.
          {
            kind: 'vote',
            vote: {
              ...vote({ type: 'precommit' }, real.privateKey),
              pqSignature: randomBytes(700),
            },
          },
          // A proposal from the wrong proposer, and one signed with the wrong key.
          {
            kind: 'proposal',
            proposal: signProposal(
              chainId,
              { height, round: 0, block, validRound: -1, proposer: real.address },
              wrongKey,
            ),
          },
          {
            kind: 'proposal',
            proposal: {
              ...signProposal(
                chainId,
                { height, round: 5, block, validRound: 9, proposer: proposer },
                wrongKey,
              ),
            },
          },
          // A status far ahead: every node tries to sync from Mallory and must refuse her blocks.
          { kind: 'status', committedHeight: 1_000_000, height: 1_000_001, round: 0 },
        ];
      };
      const count = forged(0).length;
      for (let repeat = 0; repeat < 3; repeat++) {
        for (const node of cluster.running()) {
          for (let i = 0; i < count; i++) {
            // Made when delivered, for the height the recipient is deciding then.
            cluster.hub.inject(MALLORY, node.id, () => forged(node.index)[i]);
          }
        }
      }
      // Garbage bytes through the real wire decoder never reach a driver.
      assert.throws(() => cluster.hub.deliver(MALLORY, 'node-0', randomBytes(64)));
      await waitUntil(
        () =>
          cluster.running().every((node) => (node.driver.status().rejected.SYNC_FAILED ?? 0) > 0),
        'every node to refuse to sync from Mallory',
      );
      // A forged vote is made for the height its recipient was deciding when it was delivered;
      // a node that moved on before handling it counts it stale instead. Such nodes get the
      // messages again (not the status: sync refusals are counted below), a height at a time.
      const reasons = ['MALFORMED_GOSSIP', 'BAD_SIGNATURE', 'UNKNOWN_VALIDATOR', 'SYNC_FAILED'];
      const lacking = () =>
        cluster
          .running()
          .filter((node) =>
            reasons.some((reason) => (node.driver.status().rejected[reason] ?? 0) === 0),
          );
      const statusAt = forged(0).findIndex(
        (message) => (message as { kind?: unknown } | null)?.kind === 'status',
      );
      for (let again = 0; again < 10 && lacking().length > 0; again++) {
        for (const node of lacking()) {
          for (let i = 0; i < count; i++) {
            if (i !== statusAt) cluster.hub.inject(MALLORY, node.id, () => forged(node.index)[i]);
          }
        }
        await cluster.waitForHeight(cluster.node(0).height + 1);
      }
      const start = cluster.node(0).height;
      await cluster.waitForHeight(start + 3);
      const reference = chainSummary(cluster.node(0).store, start + 3);
      for (const node of cluster.running()) {
        assert.deepEqual(chainSummary(node.store, start + 3), reference, `${node.id} agrees`);
        const { rejected, halted, running } = node.driver.status();
        assert.equal(halted, null);
        assert.equal(running, true);
        for (const reason of reasons) {
          assert.ok(
            (rejected[reason] ?? 0) > 0,
            `${node.id} counted ${reason}: ${JSON.stringify(rejected)}`,
          );
        }
      }
      assert.deepEqual(conflictingMessages(cluster.hub), []);
      // Sync refusals back off: Mallory was asked a handful of times, not once per message.
      assert.ok(served < 40, `Mallory served ${served} sync requests`);
    } finally {
      await cluster.close();
    }
  });

  it('turns a double vote into evidence that exactly one committed block carries', async () => {
    const genesis = makeGenesisDocument(identities);
    const cluster = new TestCluster(identities, genesis);
    try {
      // Validator 3 is faulty: no driver, its key signs two prevotes for one height and round.
      for (let i = 0; i < 3; i++) await cluster.start(i);
      await cluster.waitForHeight(1);
      const faulty = identities[3]!;
      const evidenceSeen: string[] = [];
      for (const node of cluster.running()) {
        node.driver.on('evidence', () => evidenceSeen.push(node.id));
      }
      const doubleVote = (to: number, value: number) => () =>
        ({
          kind: 'vote',
          vote: signVote(
            genesis.chainId,
            {
              type: 'prevote',
              height: cluster.node(to).driver.status().committedHeight + 1,
              round: 0,
              blockHash: new Uint8Array(32).fill(value),
              validator: faulty.address,
              notBefore: 0,
              pq: false,
            },
            Date.now(),
            faulty.privateKey,
          ),
        }) as const;
      // Sent together, so both votes are for the height each recipient is deciding.
      for (const node of cluster.running()) {
        cluster.hub.inject(MALLORY, node.id, doubleVote(node.index, 1));
        cluster.hub.inject(MALLORY, node.id, doubleVote(node.index, 2));
      }
      await waitUntil(() => evidenceSeen.length > 0, 'the double vote to be detected');
      const withEvidence = () => {
        const store = cluster.node(0).store;
        const heights: number[] = [];
        for (let h = 1; h <= (store.blocks.latestHeight() ?? 0); h++) {
          if (store.blocks.evidenceAt(h).length > 0) heights.push(h);
        }
        return heights;
      };
      await waitUntil(() => withEvidence().length > 0, 'a block to include the evidence');
      const target = cluster.node(0).height + 2;
      await cluster.waitForHeight(target);
      assert.equal(withEvidence().length, 1, 'the offence is included once');
      const reference = chainSummary(cluster.node(0).store, target);
      for (const node of cluster.running()) {
        assert.deepEqual(chainSummary(node.store, target), reference, `${node.id} agrees`);
        assert.equal(node.driver.status().pendingEvidence, 0);
        assert.equal(node.driver.status().halted, null);
      }
    } finally {
      await cluster.close();
    }
  });

  it('re-sends its held messages to a peer that reconnects in a loop at most once per gossip period', async () => {
    const genesis = makeGenesisDocument(identities);
    const cluster = new TestCluster(identities, genesis);
    const gossipIntervalMs = 100;
    // The driver's clock stands still unless the test moves it; its gossip timer still ticks.
    let clock = Date.now();
    try {
      // One validator of four: it proposes or prevotes nil at height 1, round 0, and then waits
      // there for prevotes that never come, so what it holds does not change.
      const node = await cluster.start(0, { now: () => clock, gossipIntervalMs });
      const ownVote = (): GossipMessage | undefined =>
        cluster.hub.sent.find((d) => d.from === node.id && d.message.kind === 'vote')?.message;
      await waitUntil(() => ownVote() !== undefined, 'node-0 to prevote');
      const toMallory = (kinds: readonly GossipMessage['kind'][]): Delivery[] =>
        cluster.hub.sent.filter(
          (d) => d.from === node.id && d.to === MALLORY && kinds.includes(d.message.kind),
        );
      const held = (): number => toMallory(['proposal', 'vote']).length;
      const ticks = (): number =>
        cluster.hub.sent.filter(
          (d) => d.from === node.id && d.to === '*' && d.message.kind === 'status',
        ).length;
      cluster.hub.join(MALLORY, null);
      await waitUntil(() => held() > 0, 'Mallory to get the held messages when she connects');
      const once = held();
      const statuses = toMallory(['status']).length;

      // Mallory opens stream after stream: each one gets our status, none the held messages.
      for (let i = 0; i < 50; i++) node.endpoint.connected(MALLORY);
      assert.equal(toMallory(['status']).length, statuses + 50);
      assert.equal(held(), once);
      // They are owed to her, once however often she reconnected, at the next gossip tick.
      await waitUntil(() => held() === 2 * once, 'the owed held messages at the next tick');
      const seen = ticks();
      await waitUntil(() => ticks() >= seen + 2, 'two more gossip ticks');
      assert.equal(held(), 2 * once);

      // A peer that reconnects a gossip period later (a real restart) gets them again at once.
      clock += gossipIntervalMs;
      node.endpoint.connected(MALLORY);
      assert.equal(held(), 3 * once);
      const vote = ownVote();
      assert.ok(vote?.kind === 'vote');
      assert.ok(
        toMallory(['vote'])
          .slice(-once)
          .some(
            (d) =>
              d.message.kind === 'vote' &&
              Buffer.from(d.message.vote.signature).equals(vote.vote.signature),
          ),
        'the reconnected peer gets our own vote again',
      );
    } finally {
      await cluster.close();
    }
  });
});
