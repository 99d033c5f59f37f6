import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { BlockRefusal } from '../../../src/consensus/driver/block-checks.js';
import type { BlockProofs } from '../../../src/consensus/driver/ports.js';
import { ConsensusError } from '../../../src/consensus/errors.js';
import { blockHash } from '../../../src/consensus/messages.js';
import { decodeBlockProof, encodeBlockProof } from '../../../src/consensus/pos/index.js';
import { decodeBlock } from '../../../src/consensus/wire.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { conflictingMessages, waitUntil, type TestNode } from './fixtures.js';
import {
  makeProvingValidators,
  realPartsCluster,
  type ProvingValidators,
} from './real-parts-fixture.js';

/** The validator whose proposals carry a forged consensus proof. */
const FORGER = 1;

/**
 * `proofs` with a forged time part: the sequential hash chain's last checkpoint has one byte
 * flipped. The proposer still signs the proposal (the driver signs whatever header it built), so
 * only the consensus-proof check can catch it.
 */
function forgingTimePart(proofs: BlockProofs): BlockProofs {
  return {
    build(template, transactions) {
      const proof = decodeBlockProof(proofs.build(template, transactions));
      const checkpoints = proof.sequentialWork.checkpoints.map((checkpoint) =>
        Uint8Array.from(checkpoint),
      );
      const last = checkpoints[checkpoints.length - 1] as Uint8Array;
      last[0] = (last[0] as number) ^ 0x01;
      return encodeBlockProof({
        ...proof,
        sequentialWork: { ...proof.sequentialWork, checkpoints },
      });
    },
    checkProposal: (context, block) => proofs.checkProposal(context, block),
  };
}

/** Large enough that decoding it would cost every validator ~0.3 s and ~90 MB; small enough to gossip quickly. */
const JUNK_PROOF_BYTES = 1024 * 1024;

/**
 * `proofs` whose proofs are 1 MiB of junk: a CBOR array of empty maps (`a0`), each one byte yet
 * an object to decode. The proposer still signs the proposal; the proof check must refuse it by
 * its length, before decoding it (docs/consensus-proof.md, "Size limit").
 */
function junkProof(proofs: BlockProofs): BlockProofs {
  const count = JUNK_PROOF_BYTES - 5;
  const junk = new Uint8Array(JUNK_PROOF_BYTES).fill(0xa0);
  junk.set([0x9a, count >>> 24, (count >>> 16) & 0xff, (count >>> 8) & 0xff, count & 0xff]);
  return {
    build: () => junk,
    checkProposal: (context, block) => proofs.checkProposal(context, block),
  };
}

function proofRefusals(node: TestNode, height: number): ConsensusError[] {
  return node.rejections
    .filter((info) => info.reason === BlockRefusal.PROOF_INVALID && info.height === height)
    .map((info) => info.error as ConsensusError);
}

describe('a live proposal whose consensus proof is forged', () => {
  let validators: ProvingValidators;
  before(async () => {
    validators = await makeProvingValidators(4);
  });

  it('is refused as PROOF_INVALID, gets no honest prevote, and a later round decides the height', async () => {
    await forgedProposalRefused(validators, forgingTimePart, (refusal) => {
      assert.equal(refusal.detail.part, 'time', refusal.message);
    });
  });

  it('is refused by its length when the proof is 1 MiB of junk, and a later round decides', async () => {
    await forgedProposalRefused(validators, junkProof, (refusal) => {
      assert.equal(refusal.detail.reason, 'undecodable-proof', refusal.message);
      assert.equal(refusal.detail.code, 'PROOF_MALFORMED', refusal.message);
      assert.match(
        refusal.message,
        new RegExp(
          `consensus proof is ${JUNK_PROOF_BYTES} bytes; a proof for this block is at most`,
        ),
      );
    });
  });
});

/**
 * Runs a cluster whose validator `FORGER` proposes with `forge(real)` proofs, and checks that
 * every honest node refuses its first proposal as PROOF_INVALID (`assertRefusal` on the error),
 * prevotes nil for it, and decides the height in a later round with an honest proposer's block.
 */
async function forgedProposalRefused(
  validators: ProvingValidators,
  forge: (real: BlockProofs) => BlockProofs,
  assertRefusal: (refusal: ConsensusError) => void,
): Promise<void> {
  const { identities } = validators;
  const { cluster } = realPartsCluster(validators, (index, real) =>
    index === FORGER ? forge(real) : real,
  );
  const forger = identities[FORGER]!.address;
  const honest = () => cluster.running().filter((node) => node.index !== FORGER);
  const forgedProposals = () =>
    cluster.hub.sent.flatMap(({ from, message }) =>
      // Nodes also pass on others' proposals, and a proposer re-proposes a block that got a
      // prevote quorum in an earlier round (its validValue): forged are the blocks it built.
      from === identities[FORGER]!.name &&
      message.kind === 'proposal' &&
      message.proposal.proposer === forger &&
      message.proposal.block.header.proposer === forger
        ? [message.proposal]
        : [],
    );
  try {
    await cluster.startAll();
    // Equal power: the forger's turn to propose comes within the first few heights.
    await waitUntil(
      () => forgedProposals().length > 0,
      'the forging validator to propose a block',
      30_000,
    );
    const forged = forgedProposals()[0]!;
    const { height, round } = forged;
    assert.equal(forged.proposer, forger);
    const forgedHash = toHex(blockHash(forged.block.header));
    await waitUntil(
      () => honest().every((node) => node.height >= height),
      () =>
        `honest nodes ${honest()
          .map((node) => `${node.id}@${node.height}`)
          .join(', ')} to decide height ${height}`,
      30_000,
    );

    for (const node of honest()) {
      const refusals = proofRefusals(node, height);
      assert.ok(refusals.length > 0, `${node.id} refused the forged proposal as PROOF_INVALID`);
      assert.ok(refusals[0] instanceof ConsensusError);
      assertRefusal(refusals[0]);
    }

    const honestAddresses = new Set(
      identities.filter((_, index) => index !== FORGER).map((identity) => identity.address),
    );
    const honestPrevotes = cluster.hub.sent.flatMap(({ message }) =>
      message.kind === 'vote' &&
      honestAddresses.has(message.vote.validator) &&
      message.vote.type === 'prevote' &&
      message.vote.height === height &&
      message.vote.round === round
        ? [message.vote]
        : [],
    );
    assert.deepEqual(
      new Set(honestPrevotes.map((vote) => vote.validator)),
      honestAddresses,
      'every honest validator prevoted in the forged round',
    );
    for (const vote of honestPrevotes) {
      assert.equal(vote.blockHash, null, `${vote.validator} prevoted nil, not the forged block`);
    }

    for (const node of honest()) {
      const decided = node.store.blocks.byHeight(height)!;
      assert.notEqual(toHex(decided.hash), forgedHash, `${node.id} did not store the forgery`);
      assert.notEqual(
        decodeBlock(decided.bytes).header.proposer,
        forger,
        `${node.id}: an honest proposer`,
      );
      const commit = node.commits.find((info) => info.height === height);
      if (commit !== undefined) {
        assert.ok(commit.round > round, `${node.id} decided in a later round than ${round}`);
      }
    }
    const reference = toHex(cluster.node(0).store.blocks.byHeight(height)!.hash);
    for (const node of honest()) {
      assert.equal(toHex(node.store.blocks.byHeight(height)!.hash), reference);
    }
    assert.deepEqual(conflictingMessages(cluster.hub), []);
  } finally {
    await cluster.close();
  }
}
