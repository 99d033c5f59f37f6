import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { blockTemplate, buildBlock } from '../../../src/consensus/block.js';
import { genesisHeightContext } from '../../../src/consensus/genesis.js';
import type { Block, Proposal, Vote } from '../../../src/consensus/types.js';
import { MAX_VOTE_WIRE_BYTES } from '../../../src/consensus/wire.js';
import {
  makeGenesisDocument,
  makeIdentities,
  TestCluster,
  waitUntil,
  type TestNode,
  type ValidatorIdentity,
} from './fixtures.js';

const MALLORY = 'mallory';
const TRENT = 'trent';
const MAX_BLOCK_BYTES = 64 * 1024;
const MAX_BLOCK_TXS = 1_000;
const FLOOD = 200;

/**
 * What one peer can make a driver hold in its buffer of later-height messages. Only validator 0
 * of four runs, so it stays at height 1 (no quorum) and everything for height 2 is buffered.
 */
describe('ConsensusDriver: buffer of later-height messages', () => {
  let identities: ValidatorIdentity[];
  before(async () => {
    identities = await makeIdentities(4);
  });

  it('bounds a flood of large proposals by bytes, collapses repeats, refuses cheap fakes', async () => {
    const genesis = makeGenesisDocument(identities, {
      maxBlockBytes: MAX_BLOCK_BYTES,
      maxBlockTxs: MAX_BLOCK_TXS,
    });
    const cluster = new TestCluster(identities, genesis);
    try {
      const node: TestNode = await cluster.start(0);
      cluster.hub.join(MALLORY, null);
      cluster.hub.join(TRENT, null);
      const context = genesisHeightContext(genesis);
      const proposer = identities[1]!.address;
      const base = buildBlock(blockTemplate(genesis.chainId, context, proposer), {
        transactions: [],
        evidence: [],
        appStateRoot: randomBytes(32),
        consensusProof: randomBytes(32),
      });
      const blockWith = (txBytes: number): Block => ({
        ...base,
        header: { ...base.header, height: 2 },
        transactions: [randomBytes(txBytes)],
      });
      // Unsigned (a random signature): the buffer checks no signature, the engine will.
      const proposal = (round: number, txBytes: number, by = proposer): Proposal => ({
        height: 2,
        round,
        block: blockWith(txBytes),
        validRound: -1,
        proposer: by,
        signature: randomBytes(64),
      });
      const status = () => node.driver.status();
      const rejected = (reason: string) => status().rejected[reason] ?? 0;

      // Mallory: a proposal of almost a whole block for each of FLOOD rounds of height 2.
      for (let round = 0; round < FLOOD; round++) {
        cluster.hub.inject(MALLORY, node.id, {
          kind: 'proposal',
          proposal: proposal(round, MAX_BLOCK_BYTES - 1024),
        });
      }
      await waitUntil(
        () => status().bufferedMessages + rejected('BUFFER_FULL') === FLOOD,
        () => `every proposal buffered or refused: ${JSON.stringify(status().rejected)}`,
      );
      const parked = status().bufferedMessages;
      // Two blocks' worth plus the votes' allowance, at most; 256 per peer before the byte cap.
      const budget = 2 * (MAX_BLOCK_BYTES + 16 * MAX_BLOCK_TXS + 1024) + 256 * MAX_VOTE_WIRE_BYTES;
      assert.ok(
        parked * (MAX_BLOCK_BYTES - 1024) <= budget,
        `${parked} proposals of ${MAX_BLOCK_BYTES - 1024} bytes parked (budget ${budget})`,
      );
      assert.ok(parked >= 2, `two whole blocks fit, got ${parked}`);
      assert.equal(rejected('BUFFER_FULL'), FLOOD - parked);

      // A block over the genesis limit is invalid whoever signed it: refused, not buffered.
      cluster.hub.inject(TRENT, node.id, {
        kind: 'proposal',
        proposal: proposal(0, MAX_BLOCK_BYTES + 1),
      });
      // A proposer or voter that is no validator of height 2.
      const stranger = 'ee'.repeat(20);
      cluster.hub.inject(TRENT, node.id, { kind: 'proposal', proposal: proposal(1, 10, stranger) });
      const vote = (round: number, validator: string, hash = 1): Vote => ({
        type: 'prevote',
        height: 2,
        round,
        blockHash: new Uint8Array(32).fill(hash),
        timestamp: Date.now(),
        validator,
        signature: new Uint8Array(64).fill(hash),
      });
      cluster.hub.inject(TRENT, node.id, { kind: 'vote', vote: vote(0, stranger) });
      await waitUntil(
        () => rejected('BLOCK_TOO_LARGE') === 1 && rejected('UNKNOWN_VALIDATOR') === 2,
        () => `the fakes refused: ${JSON.stringify(status().rejected)}`,
      );
      assert.equal(status().bufferedMessages, parked);

      // Trent repeats one proposal and one vote (gossip re-sends each period): one of each held.
      const repeated = proposal(0, 1000);
      const validator = identities[2]!.address;
      for (let i = 0; i < 20; i++) {
        cluster.hub.inject(TRENT, node.id, { kind: 'proposal', proposal: repeated });
        cluster.hub.inject(TRENT, node.id, { kind: 'vote', vote: vote(0, validator) });
      }
      // Then another proposal for the same proposer and round, and three different votes for
      // one slot: the first vote and one conflicting vote are kept (evidence), the rest refused.
      cluster.hub.inject(TRENT, node.id, { kind: 'proposal', proposal: proposal(0, 2000) });
      cluster.hub.inject(TRENT, node.id, { kind: 'vote', vote: vote(0, validator, 2) });
      cluster.hub.inject(TRENT, node.id, { kind: 'vote', vote: vote(0, validator, 3) });
      const fullBefore = rejected('BUFFER_FULL');
      await waitUntil(
        () => rejected('BUFFER_FULL') === fullBefore + 2,
        () => `the conflicting proposal and third vote refused: ${JSON.stringify(status())}`,
      );
      assert.equal(status().bufferedMessages, parked + 3);
      assert.equal(status().halted, null);
    } finally {
      await cluster.close();
    }
  });
});
