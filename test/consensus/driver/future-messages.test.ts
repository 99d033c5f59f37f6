import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConsensusEvent } from '../../../src/consensus/events.js';
import {
  bufferSlot,
  defaultBufferedBytesPerPeer,
  FutureMessages,
  PROPOSAL_FIXED_BYTES,
  TRANSACTION_OVERHEAD_BYTES,
  type BufferOutcome,
} from '../../../src/consensus/driver/future-messages.js';
import type { Block, Proposal, Vote } from '../../../src/consensus/types.js';
import { MAX_VOTE_WIRE_BYTES } from '../../../src/consensus/wire.js';

const VALIDATOR_A = 'aa'.repeat(20);
const VALIDATOR_B = 'bb'.repeat(20);

function signature(fill: number, length = 64): Uint8Array {
  return new Uint8Array(length).fill(fill);
}

function voteEvent(
  height: number,
  overrides: Partial<Vote> = {},
): ConsensusEvent & { type: 'vote-received' } {
  return {
    type: 'vote-received',
    vote: {
      type: 'prevote',
      height,
      round: 0,
      blockHash: new Uint8Array(32).fill(1),
      timestamp: 1,
      validator: VALIDATOR_A,
      signature: signature(1),
      ...overrides,
    },
  };
}

function block(height: number, txBytes: readonly number[]): Block {
  return {
    header: {
      chainId: 'future-test',
      height,
      time: 1,
      parentHash: new Uint8Array(32),
      transactionsRoot: new Uint8Array(32),
      evidenceRoot: new Uint8Array(32),
      lastCommitHash: new Uint8Array(32),
      appStateRoot: new Uint8Array(32),
      validatorsHash: new Uint8Array(32),
      proposer: VALIDATOR_A,
      consensusProof: new Uint8Array(100),
    },
    transactions: txBytes.map((length) => new Uint8Array(length)),
    evidence: [],
    lastCommit: null,
  };
}

function proposalEvent(
  height: number,
  round: number,
  txBytes: readonly number[],
  overrides: Partial<Proposal> = {},
): ConsensusEvent & { type: 'proposal-received' } {
  return {
    type: 'proposal-received',
    proposal: {
      height,
      round,
      block: block(height, txBytes),
      validRound: -1,
      proposer: VALIDATOR_A,
      signature: signature(round + 1),
      ...overrides,
    },
  };
}

function park(buffer: FutureMessages, peer: string, event: ConsensusEvent): BufferOutcome {
  const slot = bufferSlot(event);
  assert.ok(slot !== null, 'a measurable message');
  const height = event.type === 'vote-received' ? event.vote.height : 0;
  return buffer.add(
    { peer, height: event.type === 'proposal-received' ? event.proposal.height : height, event },
    slot,
  );
}

describe('FutureMessages: what one peer can make a node hold', () => {
  it('measures proposals by the bytes they carry and refuses shapes it cannot measure', () => {
    const slot = bufferSlot(proposalEvent(2, 0, [1000, 2000]));
    assert.ok(slot !== null);
    assert.equal(
      slot.bytes,
      PROPOSAL_FIXED_BYTES + 64 + 100 + 3000 + 2 * TRANSACTION_OVERHEAD_BYTES,
    );
    const vote = bufferSlot(voteEvent(2, { pqSignature: signature(2, 1280) }));
    assert.ok(vote !== null && vote.bytes > 64 + 1280 && vote.bytes <= MAX_VOTE_WIRE_BYTES);
    assert.equal(vote.key, `vote/${VALIDATOR_A}/2/0/prevote`);
    for (const bad of [
      { type: 'vote-received', vote: null },
      { type: 'vote-received', vote: { ...voteEvent(2).vote, signature: 'x' } },
      { type: 'vote-received', vote: { ...voteEvent(2).vote, validator: 7 } },
      { type: 'proposal-received', proposal: { ...proposalEvent(2, 0, []).proposal, block: 1 } },
      {
        type: 'proposal-received',
        proposal: {
          ...proposalEvent(2, 0, []).proposal,
          block: { ...block(2, []), transactions: [1, 2] },
        },
      },
      {
        type: 'proposal-received',
        proposal: {
          ...proposalEvent(2, 0, []).proposal,
          block: { ...block(2, []), lastCommit: { precommits: [{ signature: null }] } },
        },
      },
      { type: 'timeout-fired', height: 2, round: 0, step: 'propose' },
    ]) {
      assert.equal(bufferSlot(bad as ConsensusEvent), null, JSON.stringify(bad));
    }
  });

  it('bounds a peer by bytes under a flood of large proposals, not only by count', () => {
    const maxBlockBytes = 64 * 1024;
    const bytesPerPeer = defaultBufferedBytesPerPeer(maxBlockBytes, 1_000, 256);
    const buffer = new FutureMessages({ messagesPerPeer: 256, bytesPerPeer });
    const outcomes: BufferOutcome[] = [];
    // 256 proposals of almost a full block each, every one in its own round (its own slot).
    for (let round = 0; round < 256; round++) {
      outcomes.push(park(buffer, 'mallory', proposalEvent(2, round, [60 * 1024])));
    }
    assert.ok(buffer.bytesOf('mallory') <= bytesPerPeer, `${buffer.bytesOf('mallory')} bytes`);
    assert.ok(buffer.size < 32, `${buffer.size} proposals parked`);
    assert.equal(outcomes.filter((outcome) => outcome === 'added').length, buffer.size);
    assert.equal(outcomes.filter((outcome) => outcome === 'full').length, 256 - buffer.size);
    const parked = buffer.size;
    // Another peer's share is its own: an honest peer's proposal and votes still fit.
    assert.equal(park(buffer, 'honest', proposalEvent(2, 0, [60 * 1024])), 'added');
    for (let round = 0; round < 100; round++) {
      assert.equal(park(buffer, 'honest', voteEvent(2, { round })), 'added');
    }
    // Taking the height frees the bytes.
    const taken = buffer.take(2);
    assert.equal(taken.length, parked + 101);
    assert.equal(buffer.bytes, 0);
    assert.equal(buffer.bytesOf('mallory'), 0);
    assert.equal(park(buffer, 'mallory', proposalEvent(3, 0, [60 * 1024])), 'added');
  });

  it('still bounds by count when messages are small', () => {
    const buffer = new FutureMessages({ messagesPerPeer: 4, bytesPerPeer: 1 << 30 });
    for (let round = 0; round < 4; round++) {
      assert.equal(park(buffer, 'p', voteEvent(2, { round })), 'added');
    }
    assert.equal(park(buffer, 'p', voteEvent(2, { round: 4 })), 'full');
  });

  it('collapses repeats, keeps one proposal per proposer and round, and a vote and one conflict', () => {
    const buffer = new FutureMessages({ messagesPerPeer: 256, bytesPerPeer: 1 << 30 });
    assert.equal(park(buffer, 'p', voteEvent(2)), 'added');
    // Gossip re-sends the same vote every period: held once, not counted again.
    for (let i = 0; i < 10; i++) assert.equal(park(buffer, 'p', voteEvent(2)), 'held');
    assert.equal(buffer.size, 1);
    // A second, different vote for the slot is kept (it may be equivocation evidence) ...
    const conflict = voteEvent(2, {
      blockHash: new Uint8Array(32).fill(2),
      signature: signature(9),
    });
    assert.equal(park(buffer, 'p', conflict), 'added');
    assert.equal(park(buffer, 'p', conflict), 'held');
    // ... a third is not.
    assert.equal(
      park(buffer, 'p', voteEvent(2, { blockHash: null, signature: signature(10) })),
      'conflicting',
    );
    // Other slots: another type, round, validator, height; and another peer.
    assert.equal(park(buffer, 'p', voteEvent(2, { type: 'precommit' })), 'added');
    assert.equal(park(buffer, 'p', voteEvent(2, { round: 1 })), 'added');
    assert.equal(park(buffer, 'p', voteEvent(2, { validator: VALIDATOR_B })), 'added');
    assert.equal(park(buffer, 'q', voteEvent(2)), 'added');

    const proposal = proposalEvent(2, 0, [500]);
    assert.equal(park(buffer, 'p', proposal), 'added');
    assert.equal(park(buffer, 'p', proposalEvent(2, 0, [500])), 'held');
    assert.equal(
      park(buffer, 'p', proposalEvent(2, 0, [600], { signature: signature(77) })),
      'conflicting',
    );
    assert.equal(park(buffer, 'p', proposalEvent(2, 1, [600])), 'added');
    assert.equal(park(buffer, 'p', proposalEvent(2, 0, [600], { proposer: VALIDATOR_B })), 'added');
    const sizeBefore = buffer.size;
    assert.equal(sizeBefore, 9);

    // Arrival order per peer survives; lower heights are dropped, higher ones kept.
    assert.equal(park(buffer, 'p', voteEvent(3)), 'added');
    assert.equal(park(buffer, 'p', voteEvent(1)), 'added');
    const taken = buffer.take(2);
    assert.equal(taken.length, sizeBefore);
    const fromP = taken.filter((message) => message.peer === 'p').map((message) => message.event);
    assert.deepEqual(
      fromP.map((event) => (event.type === 'vote-received' ? event.vote.signature[0] : 'p')),
      [1, 9, 1, 1, 1, 'p', 'p', 'p'],
    );
    assert.equal(buffer.size, 1);
    // The slot of the height-3 vote is still taken after the take.
    assert.equal(park(buffer, 'p', voteEvent(3)), 'held');
    buffer.clear();
    assert.equal(buffer.size, 0);
    assert.equal(buffer.bytes, 0);
  });
});
