import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { evidenceKey } from '../../../src/consensus/evidence.js';
import { signVote } from '../../../src/consensus/signer.js';
import type { DuplicateVoteEvidence } from '../../../src/consensus/types.js';
import {
  chainSummary,
  makeGenesisDocument,
  makeIdentities,
  TestCluster,
  waitUntil,
  type TestNode,
  type ValidatorIdentity,
} from './fixtures.js';

const MALLORY = 'mallory';
const WITNESS = 0;
const FAULTY = 3;

/** The offences of every stored block up to the latest, in height order, with their proposer. */
function includedOffences(node: TestNode): { height: number; proposer: string; keys: string[] }[] {
  const found = [];
  for (let height = 1; height <= node.height; height++) {
    const committed = node.driver.committedBlock(height);
    assert.ok(committed !== null, `block ${height} of ${node.id}`);
    const { header, evidence } = committed.block;
    found.push({ height, proposer: header.proposer, keys: evidence.map(evidenceKey) });
  }
  return found;
}

describe('ConsensusDriver: the evidence pool survives a restart', () => {
  let identities: ValidatorIdentity[];
  before(async () => {
    identities = await makeIdentities(4);
  });

  it('proposes evidence found before a crash in its first block after the restart', async () => {
    const genesis = makeGenesisDocument(identities);
    const cluster = new TestCluster(identities, genesis);
    try {
      // Validator 3 is faulty (no driver). Without the witness, 1 and 2 hold 20 of 40 power:
      // nothing commits while the witness is down.
      for (const index of [0, 1, 2]) await cluster.start(index);
      await cluster.waitForHeight(1);
      const faulty = identities[FAULTY]!;
      const witness = cluster.node(WITNESS);
      let found: DuplicateVoteEvidence | null = null;
      let crashed: Promise<void> | null = null;
      witness.driver.on('evidence', (evidence) => {
        if (crashed !== null) return;
        found = evidence;
        // A crash right after the pool took the evidence, before this node proposes again.
        crashed = cluster.stop(WITNESS);
      });
      const doubleVote = (value: number) => () =>
        ({
          kind: 'vote',
          vote: signVote(
            genesis.chainId,
            {
              type: 'prevote',
              height: witness.driver.status().committedHeight + 1,
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
      // Only the witness sees both votes: no other node can turn them into evidence.
      cluster.hub.inject(MALLORY, witness.id, doubleVote(1));
      cluster.hub.inject(MALLORY, witness.id, doubleVote(2));
      await waitUntil(() => crashed !== null, 'the witness to detect the double vote');
      await crashed;
      const offence = found as DuplicateVoteEvidence | null;
      assert.ok(offence !== null);
      assert.equal(offence.voteA.validator, faulty.address);
      const offenceHeight = offence.voteA.height;
      const key = evidenceKey(offence);
      for (const index of [1, 2]) {
        assert.equal(cluster.node(index).driver.status().pendingEvidence, 0, `node ${index}`);
        assert.ok(cluster.node(index).height < offenceHeight, 'nothing committed without it');
      }

      const restarted = await cluster.start(WITNESS);
      assert.equal(restarted.driver.status().pendingEvidence, 1, 'loaded from the store');
      const self = identities[WITNESS]!.address;
      const proposedAfter = () =>
        includedOffences(restarted).filter(
          (block) => block.proposer === self && block.height > offenceHeight,
        );
      await waitUntil(
        () => proposedAfter().length > 0,
        () =>
          `the witness to propose a block after height ${offenceHeight} (at ${restarted.height})`,
        30_000,
      );
      const first = proposedAfter()[0]!;
      assert.deepEqual(first.keys, [key], `block ${first.height}, the witness's first proposal`);
      // Included once, agreed by everyone, and gone from every pool.
      const target = restarted.height + 1;
      await cluster.waitForHeight(target);
      const offences = includedOffences(restarted).flatMap((block) => block.keys);
      assert.deepEqual(offences, [key]);
      const reference = chainSummary(restarted.store, target);
      for (const node of cluster.running()) {
        assert.deepEqual(chainSummary(node.store, target), reference, `${node.id} agrees`);
        assert.equal(node.driver.status().pendingEvidence, 0);
        assert.equal(node.driver.status().halted, null);
      }
      assert.deepEqual(restarted.store.pendingEvidence.list(), []);
    } finally {
      await cluster.close();
    }
  });
});
