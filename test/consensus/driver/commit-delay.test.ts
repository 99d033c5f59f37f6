import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it, mock } from 'node:test';
import type {
  BlockExecutionInput,
  BlockExecutionResult,
  LastCommitInfo,
} from '../../../src/consensus/app.js';
import { loadChain } from '../../../src/consensus/driver/chain.js';
import { CommitGathering } from '../../../src/consensus/driver/late-precommits.js';
import type { GossipMessage } from '../../../src/consensus/driver/ports.js';
import { proposerAt } from '../../../src/consensus/proposer.js';
import { precommitPqMessage, signVote } from '../../../src/consensus/signer.js';
import type { Block, Vote } from '../../../src/consensus/types.js';
import { decodeBlock, decodeGossip, decodeQuorumCertificate } from '../../../src/consensus/wire.js';
import { fromHex } from '../../../src/crypto/bytes.js';
import { generateEd25519KeyPair } from '../../../src/crypto/ed25519.js';
import type { NodeStore } from '../../../src/storage/index.js';
import {
  chainSummary,
  conflictingMessages,
  falcon,
  makeGenesisDocument,
  makeIdentities,
  TestCluster,
  TEST_TIMEOUTS,
  waitUntil,
  type TestNode,
  type ValidatorIdentity,
} from './fixtures.js';
import { KvTestApp } from './test-app.js';

/**
 * Late precommits gathered while the driver waits `commitDelayMs` (late-precommits.ts): the
 * fourth validator's precommits reach the other three only after they decided.
 */

const HEIGHTS = 7;
/** Long enough that a message released when a node stores a block arrives before it moves on. */
const COMMIT_DELAY_MS = 500;

/** Records the `LastCommitInfo` each height was executed with. */
class RecordingApp extends KvTestApp {
  readonly executed = new Map<number, LastCommitInfo | undefined>();

  constructor(store: NodeStore) {
    super(store);
  }

  override executeBlock(block: BlockExecutionInput): BlockExecutionResult {
    if (!this.executed.has(block.height)) this.executed.set(block.height, block.lastCommit);
    return super.executeBlock(block);
  }
}

interface Held {
  readonly from: string;
  readonly to: string;
  readonly bytes: Uint8Array;
  readonly height: number;
}

/**
 * The cluster's network holds every precommit `slow` sends to another node until `release` is
 * called for that node with the precommit's height or a later one; from then on such precommits
 * go through at once (a slow validator's precommit may be signed after the others decided).
 */
function holdPrecommits(cluster: TestCluster, slow: string) {
  const hub = cluster.hub;
  const deliver = hub.deliver.bind(hub);
  const held: Held[] = [];
  const releasedUpTo = new Map<string, number>();
  let released = 0;
  hub.deliver = (from: string, to: string, bytes: Uint8Array) => {
    const message: GossipMessage = decodeGossip(bytes);
    if (from === slow && message.kind === 'vote' && message.vote.type === 'precommit') {
      const height = message.vote.height;
      if (height > (releasedUpTo.get(to) ?? 0)) {
        held.push({ from, to, bytes, height });
        return;
      }
      released++;
    }
    deliver(from, to, bytes);
  };
  return {
    release(to: string, height: number): void {
      releasedUpTo.set(to, Math.max(height, releasedUpTo.get(to) ?? 0));
      for (let i = 0; i < held.length;) {
        const entry = held[i] as Held;
        if (entry.to === to && entry.height <= height) {
          held.splice(i, 1);
          released++;
          deliver(entry.from, entry.to, entry.bytes);
        } else {
          i++;
        }
      }
    },
    get released(): number {
      return released;
    },
  };
}

function storedBlock(node: TestNode, height: number): Block {
  const stored = node.store.blocks.byHeight(height);
  assert.ok(stored !== null, `block ${height} is stored on ${node.id}`);
  return decodeBlock(stored.bytes);
}

/** Both signatures of a vote: a forgery may reuse one of a genuine vote's. */
function voteKey(vote: Vote): string {
  return `${Buffer.from(vote.signature).toString('hex')}/${Buffer.from(vote.pqSignature ?? []).toString('hex')}`;
}

/** The node that proposed `block`. */
function proposerOf(nodes: readonly TestNode[], block: Block): TestNode {
  const node = nodes.find(
    (candidate) => candidate.driver.status().validator === block.header.proposer,
  );
  assert.ok(node !== undefined, 'the proposer is a cluster node');
  return node;
}

/** `node` decided `height` itself (a block stored by sync comes with the serving peer's commit). */
function decidedHere(node: TestNode, height: number): boolean {
  return node.commits.some((info) => info.height === height && info.source === 'consensus');
}

/** How each node stored `height`: round and source (for failure messages). */
function decisions(nodes: readonly TestNode[], height: number): string {
  return nodes
    .map((node) => {
      const info = node.commits.find((commit) => commit.height === height);
      return `${node.id} r${info?.round}/${info?.source}`;
    })
    .join(', ');
}

/** The rounds of the precommits `from` sent for `height` (for failure messages). */
function sentPrecommits(cluster: TestCluster, from: string, height: number): string {
  return cluster.hub.sent
    .filter(
      ({ from: sender, message }) =>
        sender === from &&
        message.kind === 'vote' &&
        message.vote.type === 'precommit' &&
        message.vote.height === height,
    )
    .map(({ message }) => (message.kind === 'vote' ? `r${message.vote.round}` : ''))
    .join(' ');
}

function signers(block: Block): string[] {
  return (block.lastCommit?.precommits ?? []).map((vote) => vote.validator);
}

function assertSameChain(cluster: TestCluster): void {
  const reference = chainSummary(cluster.node(0).store, HEIGHTS);
  for (const node of cluster.running()) {
    assert.deepEqual(chainSummary(node.store, HEIGHTS), reference, node.id);
  }
  assert.deepEqual(conflictingMessages(cluster.hub), []);
}

describe('ConsensusDriver: precommits gathered during the commit delay', () => {
  let identities: ValidatorIdentity[];
  let slow: ValidatorIdentity;
  let sorted: string[];
  before(async () => {
    identities = await makeIdentities(4);
    slow = identities[3] as ValidatorIdentity;
    sorted = identities.map((identity) => identity.address).sort();
  });

  function makeCluster(apps: RecordingApp[]): TestCluster {
    return new TestCluster(
      identities,
      // A long propose timeout: a node a little behind waits for the decision, not block sync.
      makeGenesisDocument(identities, {
        commitDelayMs: COMMIT_DELAY_MS,
        timeouts: { ...TEST_TIMEOUTS, proposeMs: 1_000 },
      }),
      {
        app: (store, index) => {
          const app = new RecordingApp(store);
          apps[index] = app;
          return app;
        },
      },
    );
  }

  it('a precommit arriving after the decision, within the delay, is in the next lastCommit', async () => {
    const apps: RecordingApp[] = [];
    const cluster = makeCluster(apps);
    try {
      const network = holdPrecommits(cluster, slow.name);
      const nodes = identities.map((_, index) => cluster.create(index));
      // Each node gets the slow validator's precommits of a height once it stored that height.
      for (const node of nodes) {
        node.driver.on('commit', (info) => network.release(node.id, info.height));
      }
      for (const node of [...nodes].reverse()) await node.driver.start(); // the slow one first
      await cluster.waitForHeight(HEIGHTS);
      assert.ok(network.released > 0, 'held precommits were delivered');
      assertSameChain(cluster);
      const fast = nodes.slice(0, 3);
      // The three others decided without the slow validator: the commits they stored (and
      // serve to syncing peers) are their decisions, without it...
      for (const node of fast) {
        for (let height = 1; height < HEIGHTS; height++) {
          if (!decidedHere(node, height)) continue;
          const commit = decodeQuorumCertificate(node.store.blocks.commitAt(height) as Uint8Array);
          assert.ok(
            !commit.precommits.some((vote) => vote.validator === slow.address),
            `${node.id} decided ${height} without the slow validator`,
          );
        }
      }
      // ...yet the blocks they proposed carry all four precommits of the parent.
      let checked = 0;
      for (let height = 2; height <= HEIGHTS; height++) {
        const block = storedBlock(cluster.node(0), height);
        // Every node precommitted only if every node decided (one that stored the parent by
        // block sync, e.g. at start-up while the others joined one by one, may not have).
        if (!nodes.every((node) => decidedHere(node, height - 1))) continue;
        checked++;
        assert.deepEqual(
          signers(block),
          sorted,
          `lastCommit of block ${height} (proposer ${proposerOf(nodes, block).id}; ${decisions(nodes, height - 1)}; slow sent ${sentPrecommits(cluster, slow.name, height - 1)})`,
        );
        for (const [index, app] of apps.entries()) {
          assert.deepEqual(
            app.executed.get(height)?.votes.map((vote) => [vote.validator, vote.signed]),
            sorted.map((address) => [address, true]),
            `node ${index} executed block ${height} with all four signed`,
          );
        }
      }
      assert.ok(checked >= 3, `${checked} blocks checked`);
      for (const node of fast) {
        assert.ok(node.driver.status().latePrecommits >= 1, `${node.id} gathered`);
      }
    } finally {
      await cluster.close();
    }
  });

  it('a validator restarted during the delay proposes with its stored commit, and nothing breaks', async () => {
    const apps: RecordingApp[] = [];
    const cluster = makeCluster(apps);
    try {
      const network = holdPrecommits(cluster, slow.name);
      const release = (node: TestNode) =>
        node.driver.on('commit', (info) => network.release(node.id, info.height));
      const nodes = identities.map((_, index) => cluster.create(index));
      for (const node of nodes) release(node);
      for (const node of [...nodes].reverse()) await node.driver.start(); // the slow one first
      // One of the three others crashes while it waits out a delay, after it gathered a late
      // precommit, when it proposes the next height's round 0.
      const proposesNext = (node: TestNode): boolean => {
        const status = node.driver.status();
        if (status.latePrecommits < 1 || status.height !== status.committedHeight) return false;
        const next = loadChain(cluster.genesis, node.store).context;
        return proposerAt(next.schedule, 0).address === status.validator;
      };
      let crashing: TestNode | undefined;
      await waitUntil(() => {
        crashing = nodes.slice(0, 3).find(proposesNext);
        return crashing !== undefined;
      }, 'one of the others to gather a late precommit before its own proposal');
      const { index } = crashing as TestNode;
      const stoppedAt = (crashing as TestNode).driver.status().committedHeight;
      await cluster.stop(index);
      const restarted = cluster.create(index);
      release(restarted);
      await restarted.driver.start();
      assert.equal(restarted.driver.status().committedHeight, stoppedAt);
      assert.equal(restarted.driver.status().latePrecommits, 0);
      await cluster.waitForHeight(HEIGHTS);
      assertSameChain(cluster);
      assert.equal(restarted.driver.status().halted, null);
      // Its proposal of the next height carries the commit it stored: the decision's.
      const stored = decodeQuorumCertificate(
        restarted.store.blocks.commitAt(stoppedAt) as Uint8Array,
      );
      const proposal = cluster.hub.sent.find(
        ({ from, message }) =>
          from === restarted.id &&
          message.kind === 'proposal' &&
          message.proposal.height === stoppedAt + 1 &&
          message.proposal.round === 0,
      );
      assert.ok(proposal?.message.kind === 'proposal', 'the restarted node proposed');
      assert.deepEqual(proposal.message.proposal.block.lastCommit, stored);
    } finally {
      await cluster.close();
    }
  });

  it('a precommit arriving once the next height started is not added, and nothing breaks', async () => {
    const apps: RecordingApp[] = [];
    const cluster = makeCluster(apps);
    try {
      const network = holdPrecommits(cluster, slow.name);
      const nodes = identities.map((_, index) => cluster.create(index));
      // Released only when the recipient's engine is past the precommit's height.
      for (const node of nodes) {
        node.driver.on('round', (info) => network.release(node.id, info.height - 1));
      }
      for (const node of [...nodes].reverse()) await node.driver.start(); // the slow one first
      await cluster.waitForHeight(HEIGHTS);
      assert.ok(network.released > 0, 'held precommits were delivered');
      assertSameChain(cluster);
      let checked = 0;
      for (let height = 2; height <= HEIGHTS; height++) {
        const block = storedBlock(cluster.node(0), height);
        const proposer = proposerOf(nodes, block);
        // The slow one has its own precommit; a node that synced the parent has a peer's commit.
        if (proposer.index === 3 || !decidedHere(proposer, height - 1)) continue;
        checked++;
        assert.ok(!signers(block).includes(slow.address), `block ${height} lacks the slow one`);
        assert.equal(signers(block).length, 3);
        for (const app of apps) {
          const vote = app.executed.get(height)?.votes.find((v) => v.validator === slow.address);
          assert.equal(vote?.signed, false, `block ${height}: the slow validator did not sign`);
        }
      }
      assert.ok(checked >= 3, 'blocks proposed by the three others were checked');
      for (const node of nodes.slice(0, 3)) {
        assert.equal(node.driver.status().latePrecommits, 0, node.id);
        assert.ok(
          node.rejections.some((r) => r.reason === 'STALE_HEIGHT' && r.peer === slow.name),
          `${node.id} counted the slow validator's precommits stale`,
        );
      }
    } finally {
      await cluster.close();
    }
  });

  it('a forged late precommit (bad signature or attestation, nil, another block or round) is not added', async () => {
    const apps: RecordingApp[] = [];
    const cluster = makeCluster(apps);
    const chainId = cluster.genesis.chainId;
    const wrongKey = generateEd25519KeyPair().privateKey;
    const genuine = new Map<number, Vote>();
    const forgedSignatures = new Set<string>();
    try {
      // The slow validator's own precommits never reach the others; the test sends them forged
      // ones, then a genuine one, while they wait out the delay.
      holdPrecommits(cluster, slow.name);
      const sign = async (
        height: number,
        round: number,
        blockHash: Uint8Array | null,
        pq: boolean,
        key = slow.privateKey,
      ): Promise<Vote> => {
        const request = {
          type: 'precommit' as const,
          height,
          round,
          blockHash,
          validator: slow.address,
          notBefore: 0,
          pq,
        };
        const vote = signVote(chainId, request, Date.now(), key);
        if (!pq) return vote;
        const message = precommitPqMessage(chainId, vote) as Uint8Array;
        return { ...vote, pqSignature: await falcon.sign(message, slow.pqSecretKey) };
      };
      const lateVotes = new Map<number, Promise<Vote[]>>();
      const votesFor = (height: number, round: number, hash: Uint8Array): Promise<Vote[]> => {
        let votes = lateVotes.get(height);
        if (votes === undefined) {
          votes = (async () => {
            const real = await sign(height, round, hash, true);
            const forged = [
              await sign(height, round, randomBytes(32), true), // another block
              await sign(height, round + 1, hash, true), // another round
              await sign(height, round, null, false), // nil
              await sign(height, round, hash, true, wrongKey), // bad Ed25519 signature
              { ...real, signature: new Uint8Array(64) },
              { ...real, pqSignature: randomBytes(real.pqSignature?.length ?? 1280) }, // bad FALCON
              await sign(height, round, hash, false), // no FALCON attestation
            ];
            for (const vote of forged) forgedSignatures.add(voteKey(vote));
            genuine.set(height, real);
            return [...forged, real];
          })();
          lateVotes.set(height, votes);
        }
        return votes;
      };
      const nodes = identities.map((_, index) => cluster.create(index));
      for (const node of nodes.slice(0, 3)) {
        node.driver.on('commit', (info) => {
          if (info.source !== 'consensus') return;
          void votesFor(info.height, info.round, fromHex(info.blockHash)).then((votes) => {
            for (const vote of votes)
              cluster.hub.inject(slow.name, node.id, { kind: 'vote', vote });
          });
        });
      }
      for (const node of [...nodes].reverse()) await node.driver.start(); // the slow one first
      await cluster.waitForHeight(HEIGHTS);
      assertSameChain(cluster);
      let checked = 0;
      for (let height = 2; height <= HEIGHTS; height++) {
        const block = storedBlock(cluster.node(0), height);
        for (const vote of block.lastCommit?.precommits ?? []) {
          assert.ok(
            !forgedSignatures.has(voteKey(vote)),
            `block ${height} carries no forged precommit`,
          );
        }
        const proposer = proposerOf(nodes, block);
        if (proposer.index === 3 || !decidedHere(proposer, height - 1)) continue;
        checked++;
        // The genuine one, sent after all the forged ones, made it: they arrived in time.
        assert.deepEqual(signers(block), sorted, `lastCommit of block ${height}`);
        const carried = block.lastCommit?.precommits.find((v) => v.validator === slow.address);
        assert.deepEqual(carried, genuine.get(height - 1), `block ${height}: the genuine one`);
      }
      assert.ok(checked >= 3, 'blocks proposed by the three others were checked');
      for (const node of nodes.slice(0, 3)) {
        const reasons = new Set(
          node.rejections.filter((r) => r.peer === slow.name).map((r) => r.reason),
        );
        for (const reason of ['BAD_SIGNATURE', 'BAD_PQ_SIGNATURE', 'MISSING_PQ_SIGNATURE']) {
          assert.ok(reasons.has(reason), `${node.id} counted ${reason}: ${[...reasons].join()}`);
        }
        const status = node.driver.status();
        assert.ok(status.latePrecommits >= 1 && status.latePrecommits <= HEIGHTS, node.id);
      }
    } finally {
      await cluster.close();
    }
  });

  it('the decision’s own precommits are not offered to the gathering again', async () => {
    const apps: RecordingApp[] = [];
    const cluster = makeCluster(apps);
    // An offer of a precommit the commit holds already — the very object, the engine's — is the
    // decision's offered again: refused as a duplicate, but 6,667 of them at 10,000 validators.
    const offer = CommitGathering.prototype.offer;
    const reoffered: string[] = [];
    let offers = 0;
    const spy = mock.method(
      CommitGathering.prototype,
      'offer',
      function (this: CommitGathering, vote: Vote) {
        offers++;
        if (this.commit.precommits.includes(vote))
          reoffered.push(`${vote.height}/${vote.validator}`);
        return offer.call(this, vote);
      },
    );
    try {
      const network = holdPrecommits(cluster, slow.name);
      const nodes = identities.map((_, index) => cluster.create(index));
      for (const node of nodes) {
        node.driver.on('commit', (info) => network.release(node.id, info.height));
      }
      for (const node of [...nodes].reverse()) await node.driver.start(); // the slow one first
      await cluster.waitForHeight(4);
      assert.deepEqual(reoffered, [], 'precommits of the decision offered again');
      assert.ok(offers > 0, 'late precommits were offered');
      assert.ok(
        nodes.some((node) => node.driver.status().latePrecommits >= 1),
        'a late precommit was gathered',
      );
    } finally {
      spy.mock.restore();
      await cluster.close();
    }
  });
});
