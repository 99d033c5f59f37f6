import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeCanonical } from '../../src/codec/cbor.js';
import { ed25519Sign } from '../../src/crypto/ed25519.js';
import { bftTime } from '../../src/consensus/commit.js';
import { buildBlock, type BlockTemplate } from '../../src/consensus/block.js';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import { blockHash, precommitPqSignBytes } from '../../src/consensus/messages.js';
import {
  blockAnchor,
  blockProofOutput,
  createBlockProofs,
  decodeBlockProof,
  encodeBlockProof,
  genesisProofOutput,
  verifyCommittedBlock,
  type BlockProof,
  type BlockProofVerdict,
  type CommittedBlockInput,
} from '../../src/consensus/pos/index.js';
import { ProofError, ProofErrorCode } from '../../src/consensus/proof/errors.js';
import { verifyStamp } from '../../src/consensus/proof/hashcash.js';
import {
  computeSequentialWork,
  sequentialWorkSeed,
} from '../../src/consensus/proof/sequential-work.js';
import { addressSignBytes, buildSpaceProof } from '../../src/consensus/proof/space.js';
import { StoragePlot } from '../../src/consensus/proof/storage-plot.js';
import {
  SpaceFailure,
  StakeFailure,
  TimeFailure,
  WorkFailure,
  type ProofPart,
} from '../../src/consensus/proof/verdict.js';
import type { BlockHeader, QuorumCertificate, Vote } from '../../src/consensus/types.js';
import { createValidatorSet, validatorAddress } from '../../src/consensus/validator-set.js';
import {
  blockProofsOf,
  buildChain,
  CHAIN_ID,
  envelope,
  makeTestChain,
  signCommit,
  stampOf,
  TEST_PROOF_PARAMS,
  toyStateRoot,
  validatorOf,
  type ChainBlock,
  type TestChain,
} from './pos-fixture.js';

let chain: TestChain;
let blocks: ChainBlock[];

before(async () => {
  chain = await makeTestChain(4);
  blocks = await buildChain(chain, 3);
});

function verify(
  base: ChainBlock,
  block = base.block,
  commit = base.commit,
  extra: Partial<CommittedBlockInput> = {},
): BlockProofVerdict {
  return verifyCommittedBlock({
    genesis: chain.genesis,
    genesisHash: chain.genesisHash,
    block,
    commit,
    context: base.context,
    stampOf,
    reexecute: () => toyStateRoot(base.parentStateRoot, block.transactions),
    falcon: chain.falcon,
    ...extra,
  });
}

function partOf(verdict: BlockProofVerdict, part: ProofPart) {
  const found = verdict.parts.find((entry) => entry.part === part);
  assert.ok(found !== undefined, `the verdict lists ${part}`);
  return found;
}

/** `part` fails with `reason`, and every other part holds. */
function assertOnlyPartFails(verdict: BlockProofVerdict, part: ProofPart, reason: string): void {
  assert.equal(verdict.ok, false, `expected ${part}/${reason}, the block verified`);
  assert.deepEqual(
    verdict.parts.map((entry) => entry.part),
    ['space', 'stake', 'work', 'time'],
  );
  for (const entry of verdict.parts) {
    if (entry.part === part) {
      assert.equal(entry.ok, false, `${part} should fail with ${reason}`);
      if (!entry.ok) assert.equal(entry.reason, reason, entry.message);
    } else {
      assert.equal(entry.ok, true, `${entry.part} should hold: ${JSON.stringify(entry)}`);
    }
  }
}

function templateOf(header: BlockHeader, lastCommit: QuorumCertificate | null): BlockTemplate {
  const { chainId, height, time, parentHash, validatorsHash, proposer } = header;
  return { chainId, height, time, parentHash, lastCommit, validatorsHash, proposer };
}

interface Forgery {
  readonly proof?: (proof: BlockProof) => BlockProof;
  readonly proofBytes?: Uint8Array;
  readonly transactions?: readonly Uint8Array[];
  readonly header?: Partial<BlockHeader>;
  readonly lastCommit?: QuorumCertificate | null;
}

/**
 * A Byzantine proposer's variant of `base.block`, committed anyway by every validator (a
 * Byzantine quorum), so that only the forged part can make it fail.
 */
async function forge(base: ChainBlock, forgery: Forgery) {
  const honest = base.block;
  const transactions = forgery.transactions ?? honest.transactions;
  const consensusProof =
    forgery.proofBytes ??
    (forgery.proof === undefined
      ? honest.header.consensusProof
      : encodeBlockProof(forgery.proof(decodeBlockProof(honest.header.consensusProof))));
  const lastCommit = forgery.lastCommit === undefined ? honest.lastCommit : forgery.lastCommit;
  const built = buildBlock(templateOf(honest.header, lastCommit), {
    transactions,
    evidence: [],
    appStateRoot: toyStateRoot(base.parentStateRoot, transactions),
    consensusProof,
  });
  const block = { ...built, header: { ...built.header, ...forgery.header } };
  return { block, commit: await signCommit(chain, block) };
}

function anchorOf(base: ChainBlock) {
  const { header } = base.block;
  return blockAnchor({
    chainId: CHAIN_ID,
    height: header.height,
    parentHash: header.parentHash,
    genesisHash: chain.genesisHash,
    proposer: validatorOf(chain, header.proposer).publicKey,
  });
}

function assertProofError(run: () => unknown, code: ProofErrorCode, pattern?: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ProofError, `expected ProofError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (pattern !== undefined) assert.match(error.message, pattern);
    return true;
  });
}

describe('consensus proof over engine blocks: a valid chain', () => {
  it('verifies three committed blocks built with real keys, every part in full', () => {
    assert.equal(blocks.length, 3);
    for (const base of blocks) {
      const verdict = verify(base);
      assert.equal(verdict.ok, true, JSON.stringify(verdict));
      assert.deepEqual(verdict.block, { ok: true });
      assert.deepEqual(verdict.blockHash, base.commit.blockHash);
      assert.equal(verdict.height, base.block.header.height);
      assert.deepEqual(
        verdict.parts.map((part) => [part.part, part.ok, part.ok && part.coverage]),
        [
          ['space', true, 'full'],
          ['stake', true, 'full'],
          ['work', true, 'full'],
          ['time', true, 'full'],
        ],
      );
    }
  });

  it('passes every proposal check of every validator', () => {
    for (const base of blocks) {
      for (const validator of chain.validators) {
        assert.equal(
          blockProofsOf(chain, validator).checkProposal(base.context, base.block),
          undefined,
        );
      }
      assert.equal(blockProofsOf(chain).checkProposal(base.context, base.block), undefined);
    }
  });

  it('chains each proof to its parent: anchors from the genesis, then from the parent hash', () => {
    const [first, second, third] = blocks as [ChainBlock, ChainBlock, ChainBlock];
    assert.deepEqual(
      anchorOf(first).previousProofOutput,
      genesisProofOutput(CHAIN_ID, chain.genesisHash),
    );
    assert.deepEqual(
      anchorOf(second).previousProofOutput,
      blockProofOutput(first.commit.blockHash),
    );
    assert.deepEqual(
      anchorOf(third).previousProofOutput,
      blockProofOutput(second.commit.blockHash),
    );
    for (const base of blocks) {
      const proof = decodeBlockProof(base.block.header.consensusProof);
      assert.deepEqual(proof.sequentialWork.seed, sequentialWorkSeed(anchorOf(base)));
      assert.equal(proof.stamps.length, base.block.transactions.length);
    }
  });

  it('reports work as stamps-only without re-execution, and a sampled chain check as sampled', () => {
    const base = blocks[1] as ChainBlock;
    const verdict = verifyCommittedBlock({
      genesis: chain.genesis,
      genesisHash: chain.genesisHash,
      block: base.block,
      commit: base.commit,
      context: base.context,
      stampOf,
      falcon: chain.falcon,
      sequentialWork: { mode: 'sampled', segments: 4 },
    });
    assert.equal(verdict.ok, true);
    assert.deepEqual(partOf(verdict, 'work'), { ok: true, part: 'work', coverage: 'stamps-only' });
    assert.deepEqual(partOf(verdict, 'time'), { ok: true, part: 'time', coverage: 'sampled' });
  });

  it('round-trips the proof bytes through the canonical encoding', () => {
    for (const base of blocks) {
      const bytes = base.block.header.consensusProof;
      assert.deepEqual(encodeBlockProof(decodeBlockProof(bytes)), bytes);
    }
  });
});

describe('forged PoSpace is rejected', () => {
  it('an answer for another challenge, and an answer whose Merkle path is wrong', async () => {
    const base = blocks[1] as ChainBlock;
    const plot = validatorOf(chain, base.block.header.proposer).plot;
    const otherIndex = (proof: BlockProof) =>
      ((proof.space.answers[0]?.index as number) + 1) % TEST_PROOF_PARAMS.space.blockCount;
    const wrongChallenge = await forge(base, {
      proof: (proof) => ({
        ...proof,
        space: {
          ...proof.space,
          answers: [plot.answer(otherIndex(proof)), ...proof.space.answers.slice(1)],
        },
      }),
    });
    assertOnlyPartFails(
      verify(base, wrongChallenge.block, wrongChallenge.commit),
      'space',
      SpaceFailure.WRONG_CHALLENGE_INDEX,
    );
    const badPath = await forge(base, {
      proof: (proof) => {
        const [first, ...rest] = proof.space.answers;
        assert.ok(first !== undefined && first.path.length > 0);
        const path = first.path.map((hash, i) => (i === 0 ? hash.map((b) => b ^ 1) : hash));
        return { ...proof, space: { ...proof.space, answers: [{ ...first, path }, ...rest] } };
      },
    });
    assertOnlyPartFails(
      verify(base, badPath.block, badPath.commit),
      'space',
      SpaceFailure.INVALID_MERKLE_PATH,
    );
  });

  it('answers from a plot whose root is not the registered one', async () => {
    const base = blocks[2] as ChainBlock;
    const proposer = validatorOf(chain, base.block.header.proposer);
    // Built at a higher difficulty, its blocks are valid at the chain's difficulty too.
    const unregistered = StoragePlot.build(proposer.publicKey, {
      ...TEST_PROOF_PARAMS.space,
      slotDifficulty: 7,
    });
    const forged = await forge(base, {
      proof: (proof) => ({
        ...proof,
        space: buildSpaceProof({
          plot: unregistered,
          anchor: anchorOf(base),
          address: proposer.networkAddress,
          privateKey: proposer.privateKey,
        }),
      }),
    });
    assertOnlyPartFails(
      verify(base, forged.block, forged.commit),
      'space',
      SpaceFailure.UNREGISTERED_COMMITMENT,
    );
  });

  it('an address signed by another validator’s key', async () => {
    const base = blocks[0] as ChainBlock;
    const other = chain.validators.find((v) => v.address !== base.block.header.proposer);
    assert.ok(other !== undefined);
    const forged = await forge(base, {
      proof: (proof) => ({
        ...proof,
        space: {
          ...proof.space,
          address: 'stoq://elsewhere.test:9292',
          addressSignature: ed25519Sign(
            addressSignBytes(
              anchorOf(base),
              'stoq://elsewhere.test:9292',
              proof.space.commitmentRoot,
            ),
            other.privateKey,
          ),
        },
      }),
    });
    assertOnlyPartFails(
      verify(base, forged.block, forged.commit),
      'space',
      SpaceFailure.INVALID_ADDRESS_SIGNATURE,
    );
    const error = blockProofsOf(chain).checkProposal(base.context, forged.block);
    assert.ok(error instanceof ConsensusError);
    assert.equal(error.code, ConsensusErrorCode.INVALID_BLOCK);
    assert.equal(error.detail.part, 'space');
    assert.equal(error.detail.reason, SpaceFailure.INVALID_ADDRESS_SIGNATURE);
  });

  it('proof bytes that do not decode fail every part they carry', async () => {
    const base = blocks[0] as ChainBlock;
    const forged = await forge(base, { proofBytes: Uint8Array.of(0xa1, 0x61, 0x76, 0x01) });
    const verdict = verify(base, forged.block, forged.commit);
    assert.equal(verdict.ok, false);
    assert.equal(partOf(verdict, 'stake').ok, true);
    for (const part of ['space', 'work', 'time'] as const) {
      const entry = partOf(verdict, part);
      assert.ok(!entry.ok && entry.reason === 'undecodable-proof', JSON.stringify(entry));
    }
    const error = blockProofsOf(chain).checkProposal(base.context, forged.block);
    assert.equal(error?.detail.reason, 'undecodable-proof');
  });
});

describe('forged PoStake is rejected', () => {
  it('a commit holding no more than 2/3 of the voting power', async () => {
    const base = blocks[1] as ChainBlock;
    const half = await signCommit(chain, base.block, { signers: chain.validators.slice(0, 2) });
    assertOnlyPartFails(
      verify(base, base.block, half),
      'stake',
      StakeFailure.INSUFFICIENT_VOTING_POWER,
    );
    const threeQuarters = await signCommit(chain, base.block, {
      signers: chain.validators.slice(0, 3),
    });
    assert.equal(verify(base, base.block, threeQuarters).ok, true);
  });

  it('a bad Ed25519 signature', () => {
    const base = blocks[1] as ChainBlock;
    const precommits = base.commit.precommits.map((vote, i) =>
      i === 1 ? { ...vote, signature: vote.signature.map((b, j) => (j === 0 ? b ^ 1 : b)) } : vote,
    );
    assertOnlyPartFails(
      verify(base, base.block, { ...base.commit, precommits }),
      'stake',
      StakeFailure.INVALID_SIGNATURE,
    );
  });

  it('a missing or bad FALCON-1024 signature', async () => {
    const base = blocks[2] as ChainBlock;
    const withPq = (pq: (vote: Vote, i: number) => Vote) => ({
      ...base.commit,
      precommits: base.commit.precommits.map(pq),
    });
    const missing = withPq((vote, i) => {
      if (i !== 0) return vote;
      const { pqSignature: _dropped, ...rest } = vote;
      return rest;
    });
    assertOnlyPartFails(
      verify(base, base.block, missing),
      'stake',
      StakeFailure.MISSING_FALCON_SIGNATURE,
    );
    const borrowed = withPq((vote, i) =>
      i === 0
        ? { ...vote, pqSignature: base.commit.precommits[1]?.pqSignature as Uint8Array }
        : vote,
    );
    assertOnlyPartFails(
      verify(base, base.block, borrowed),
      'stake',
      StakeFailure.INVALID_FALCON_SIGNATURE,
    );
    const signer = validatorOf(chain, base.commit.precommits[0]?.validator as string);
    const otherBlock = await chain.falcon.sign(
      precommitPqSignBytes(CHAIN_ID, { height: 3, round: 0, blockHash: new Uint8Array(32) }),
      signer.pq.secretKey,
    );
    const misplaced = withPq((vote, i) => (i === 0 ? { ...vote, pqSignature: otherBlock } : vote));
    assertOnlyPartFails(
      verify(base, base.block, misplaced),
      'stake',
      StakeFailure.INVALID_FALCON_SIGNATURE,
    );
  });

  it('votes for another block: a sibling’s commit, or one precommit for the sibling', async () => {
    const base = blocks[1] as ChainBlock;
    const sibling = await forge(base, { header: { appStateRoot: new Uint8Array(32).fill(5) } });
    assertOnlyPartFails(
      verify(base, base.block, sibling.commit),
      'stake',
      StakeFailure.WRONG_BLOCK,
    );
    const strayVote = sibling.commit.precommits[2] as Vote;
    const precommits = base.commit.precommits.map((vote, i) => (i === 2 ? strayVote : vote));
    assertOnlyPartFails(
      verify(base, base.block, { ...base.commit, precommits }),
      'stake',
      StakeFailure.PRECOMMIT_FOR_ANOTHER_BLOCK,
    );
    const previous = blocks[0] as ChainBlock;
    assertOnlyPartFails(
      verify(base, base.block, previous.commit),
      'stake',
      StakeFailure.WRONG_HEIGHT,
    );
  });

  it('a header naming another validator set', async () => {
    const base = blocks[0] as ChainBlock;
    const forged = await forge(base, { header: { validatorsHash: new Uint8Array(32).fill(1) } });
    const verdict = verify(base, forged.block, forged.commit);
    const stake = partOf(verdict, 'stake');
    assert.ok(!stake.ok && stake.reason === StakeFailure.VALIDATOR_SET_MISMATCH);
    assert.equal(verdict.block.ok, false);
  });
});

describe('forged PoWork is rejected', () => {
  it('a transaction without a valid envelope, hence without a stamp', async () => {
    const base = blocks[1] as ChainBlock;
    const junk = Uint8Array.of(1, 2, 3);
    const forged = await forge(base, {
      transactions: [...base.block.transactions, junk],
      proof: (proof) => ({
        ...proof,
        stamps: [...proof.stamps, { txHash: new Uint8Array(32), nonce: 0 }],
      }),
    });
    assertOnlyPartFails(
      verify(base, forged.block, forged.commit),
      'work',
      WorkFailure.TRANSACTION_WITHOUT_STAMP,
    );
  });

  it('a transactions root that is not the transactions’', async () => {
    const base = blocks[2] as ChainBlock;
    const forged = await forge(base, { header: { transactionsRoot: new Uint8Array(32) } });
    const verdict = verify(base, forged.block, forged.commit);
    const work = partOf(verdict, 'work');
    assert.ok(!work.ok && work.reason === WorkFailure.TRANSACTIONS_ROOT_MISMATCH);
    assert.equal(verdict.block.ok, false);
    for (const part of ['space', 'stake', 'time'] as const) {
      assert.equal(partOf(verdict, part).ok, true);
    }
  });

  it('a stamp below the genesis difficulty', async () => {
    const base = blocks[1] as ChainBlock;
    const payload = new Uint8Array(randomBytes(24));
    let nonce = 0;
    while (
      verifyStamp(
        stampOf(envelope(payload, nonce))?.txHash as Uint8Array,
        nonce,
        TEST_PROOF_PARAMS.work.stampDifficulty,
      )
    ) {
      nonce++;
    }
    const cheap = envelope(payload, nonce);
    const forged = await forge(base, {
      transactions: [cheap],
      proof: (proof) => ({
        ...proof,
        stamps: [stampOf(cheap) as NonNullable<ReturnType<typeof stampOf>>],
      }),
    });
    assertOnlyPartFails(
      verify(base, forged.block, forged.commit),
      'work',
      WorkFailure.INSUFFICIENT_STAMP_WORK,
    );
  });

  it('stamps that are not exactly the block’s transactions', async () => {
    const base = blocks[2] as ChainBlock;
    assert.ok(base.block.transactions.length >= 2);
    const reordered = await forge(base, {
      proof: (proof) => ({ ...proof, stamps: [...proof.stamps].reverse() }),
    });
    assertOnlyPartFails(
      verify(base, reordered.block, reordered.commit),
      'work',
      WorkFailure.STAMP_MISMATCH,
    );
    const dropped = await forge(base, {
      proof: (proof) => ({ ...proof, stamps: proof.stamps.slice(1) }),
    });
    assertOnlyPartFails(
      verify(base, dropped.block, dropped.commit),
      'work',
      WorkFailure.STAMP_COUNT_MISMATCH,
    );
    const error = blockProofsOf(chain).checkProposal(base.context, dropped.block);
    assert.equal(error?.detail.part, 'work');
    assert.equal(error?.detail.reason, WorkFailure.STAMP_COUNT_MISMATCH);
  });

  it('a state root that re-execution does not reproduce, or a failing re-execution', async () => {
    const base = blocks[2] as ChainBlock;
    const forged = await forge(base, { header: { appStateRoot: new Uint8Array(32).fill(9) } });
    // The proposer's own checks cannot see it: re-execution is the driver's.
    assert.equal(blockProofsOf(chain).checkProposal(base.context, forged.block), undefined);
    assertOnlyPartFails(
      verify(base, forged.block, forged.commit),
      'work',
      WorkFailure.STATE_ROOT_MISMATCH,
    );
    assertOnlyPartFails(
      verify(base, base.block, base.commit, { reexecute: () => new Uint8Array(32) }),
      'work',
      WorkFailure.STATE_ROOT_MISMATCH,
    );
    assertOnlyPartFails(
      verify(base, base.block, base.commit, {
        reexecute: () => {
          throw new Error('sequence gap');
        },
      }),
      'work',
      WorkFailure.REEXECUTION_FAILED,
    );
    assertOnlyPartFails(
      verify(base, base.block, base.commit, { reexecute: () => new Uint8Array(31) }),
      'work',
      WorkFailure.REEXECUTION_FAILED,
    );
  });

  it('never re-executes a block another part refutes', async () => {
    const base = blocks[1] as ChainBlock;
    const half = await signCommit(chain, base.block, { signers: chain.validators.slice(0, 2) });
    let executed = 0;
    const verdict = verify(base, base.block, half, {
      reexecute: () => {
        executed++;
        return base.stateRoot;
      },
    });
    assert.equal(verdict.ok, false);
    assert.equal(executed, 0);
    assert.deepEqual(partOf(verdict, 'work'), { ok: true, part: 'work', coverage: 'stamps-only' });
  });
});

describe('forged PoTime is rejected', () => {
  it('a header time that is not the BFT median of the last commit', async () => {
    const base = blocks[2] as ChainBlock;
    const forged = await forge(base, { header: { time: base.block.header.time + 1 } });
    const verdict = verify(base, forged.block, forged.commit);
    const time = partOf(verdict, 'time');
    assert.ok(!time.ok && time.reason === TimeFailure.BFT_TIME_NOT_WEIGHTED_MEDIAN);
    assert.deepEqual(time.detail, {
      expected: base.block.header.time,
      actual: base.block.header.time + 1,
    });
    for (const part of ['space', 'stake', 'work'] as const)
      assert.equal(partOf(verdict, part).ok, true);
    assert.equal(verdict.block.ok, false, 'the engine rules refuse it too');
  });

  it('a last commit that does not commit the parent', async () => {
    const base = blocks[1] as ChainBlock;
    const parent = blocks[0] as ChainBlock;
    const weak = await signCommit(chain, parent.block, { signers: chain.validators.slice(0, 2) });
    const forged = await forge(base, { lastCommit: weak });
    const time = partOf(verify(base, forged.block, forged.commit), 'time');
    assert.ok(!time.ok && time.reason === TimeFailure.INVALID_LAST_COMMIT, JSON.stringify(time));
    const missing = await forge(base, { lastCommit: null });
    const withoutParent = partOf(verify(base, missing.block, missing.commit), 'time');
    assert.ok(!withoutParent.ok && withoutParent.reason === TimeFailure.INVALID_LAST_COMMIT);
    const extra = await forge(parent, { lastCommit: parent.commit });
    const atGenesis = partOf(verify(parent, extra.block, extra.commit), 'time');
    assert.ok(!atGenesis.ok && atGenesis.reason === TimeFailure.INVALID_LAST_COMMIT);
  });

  it('a proposer outside the validator set has no chain position', async () => {
    const base = blocks[0] as ChainBlock;
    const forged = await forge(base, { header: { proposer: 'ab'.repeat(20) } });
    const verdict = verify(base, forged.block, forged.commit);
    const space = partOf(verdict, 'space');
    const time = partOf(verdict, 'time');
    assert.ok(!space.ok && space.reason === SpaceFailure.PROPOSER_NOT_A_VALIDATOR);
    assert.ok(!time.ok && time.reason === TimeFailure.PROPOSER_NOT_A_VALIDATOR);
    assert.equal(partOf(verdict, 'stake').ok, true);
  });

  it('a tampered hash chain', async () => {
    const base = blocks[1] as ChainBlock;
    const forged = await forge(base, {
      proof: (proof) => ({
        ...proof,
        sequentialWork: {
          ...proof.sequentialWork,
          checkpoints: proof.sequentialWork.checkpoints.map((c, i) =>
            i === 5 ? new Uint8Array(32) : c,
          ),
        },
      }),
    });
    const verdict = verify(base, forged.block, forged.commit);
    assertOnlyPartFails(verdict, 'time', TimeFailure.CHECKPOINT_MISMATCH);
    const time = partOf(verdict, 'time');
    assert.ok(!time.ok && time.detail.segment === 5);
    const error = blockProofsOf(chain).checkProposal(base.context, forged.block);
    assert.equal(error?.detail.part, 'time');
    assert.equal(error?.detail.reason, TimeFailure.CHECKPOINT_MISMATCH);
  });

  it('a hash chain seeded from another parent (prepared before the parent existed)', async () => {
    const base = blocks[2] as ChainBlock;
    const elsewhere = { ...anchorOf(base), parentHash: (blocks[0] as ChainBlock).commit.blockHash };
    elsewhere.previousProofOutput = blockProofOutput(elsewhere.parentHash);
    const early = computeSequentialWork(sequentialWorkSeed(elsewhere), TEST_PROOF_PARAMS.time);
    const forged = await forge(base, { proof: (proof) => ({ ...proof, sequentialWork: early }) });
    assertOnlyPartFails(
      verify(base, forged.block, forged.commit),
      'time',
      TimeFailure.WRONG_CHAIN_SEED,
    );
    // Relabelled with the right seed, its first segment does not follow from it.
    const relabelled = await forge(base, {
      proof: (proof) => ({
        ...proof,
        sequentialWork: { ...early, seed: proof.sequentialWork.seed },
      }),
    });
    assertOnlyPartFails(
      verify(base, relabelled.block, relabelled.commit),
      'time',
      TimeFailure.CHECKPOINT_MISMATCH,
    );
  });

  it('BFT time lies between honest timestamps when faulty power is below 1/3 (property)', () => {
    const member = fc.record({
      power: fc.integer({ min: 1, max: 100 }),
      time: fc.integer({ min: 1_000, max: 1_000_000 }),
      faulty: fc.boolean(),
      signs: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(member, { minLength: 1, maxLength: 10 }), (members) => {
        const total = members.reduce((sum, m) => sum + m.power, 0);
        const faultyPower = members.filter((m) => m.faulty).reduce((s, m) => s + m.power, 0);
        // Honest signers plus every faulty one must hold more than 2/3.
        const signing = members.filter((m) => m.faulty || m.signs);
        const signed = signing.reduce((sum, m) => sum + m.power, 0);
        fc.pre(3 * faultyPower < total && 3 * signed > 2 * total);
        const honest = signing.filter((m) => !m.faulty);
        fc.pre(honest.length > 0);
        const keys = members.map(() => new Uint8Array(randomBytes(32)));
        const set = createValidatorSet(
          members.map((m, i) => ({ publicKey: keys[i] as Uint8Array, power: m.power })),
        );
        const precommits = members
          .map((m, i) => ({ m, address: validatorAddress(keys[i] as Uint8Array) }))
          .filter(({ m }) => m.faulty || m.signs)
          .map(({ m, address }) => ({ validator: address, timestamp: m.time }) as Vote);
        const commit: QuorumCertificate = {
          height: 1,
          round: 0,
          blockHash: new Uint8Array(32),
          precommits,
        };
        const time = bftTime(commit, set, 0);
        assert.ok(time >= Math.min(...honest.map((m) => m.time)));
        assert.ok(time <= Math.max(...honest.map((m) => m.time)));
      }),
      { numRuns: 200 },
    );
  });
});

describe('building proofs', () => {
  it('refuses a node that is not a validator, and a block it does not propose', () => {
    const base = blocks[0] as ChainBlock;
    const template = templateOf(base.block.header, base.block.lastCommit);
    assertProofError(
      () => blockProofsOf(chain).build(template, []),
      ProofErrorCode.NOT_THE_PROPOSER,
      /not a validator/,
    );
    const other = chain.validators.find((v) => v.address !== template.proposer);
    assert.ok(other !== undefined);
    assertProofError(
      () => blockProofsOf(chain, other).build(template, []),
      ProofErrorCode.NOT_THE_PROPOSER,
    );
  });

  it('refuses a transaction without a stamp of the genesis difficulty', () => {
    const base = blocks[0] as ChainBlock;
    const template = templateOf(base.block.header, base.block.lastCommit);
    const proposer = validatorOf(chain, template.proposer);
    assertProofError(
      () => blockProofsOf(chain, proposer).build(template, [Uint8Array.of(1)]),
      ProofErrorCode.INVALID_INPUT,
      /transaction 0/,
    );
  });

  it('refuses a plot of another key, of other parameters, or not the registered one', () => {
    const [a, b] = chain.validators as [TestChain['validators'][0], TestChain['validators'][0]];
    const make = (plot: StoragePlot, networkAddress = 'stoq://a.test:9292') =>
      createBlockProofs({
        genesis: chain.genesis,
        genesisHash: chain.genesisHash,
        stampOf,
        self: { privateKey: a.privateKey, plot, networkAddress },
      });
    assertProofError(() => make(b.plot), ProofErrorCode.INVALID_INPUT, /another key/);
    const otherParams = StoragePlot.build(a.publicKey, {
      ...TEST_PROOF_PARAMS.space,
      blockCount: 8,
    });
    assertProofError(() => make(otherParams), ProofErrorCode.INVALID_INPUT, /space parameters/);
    const harder = StoragePlot.build(a.publicKey, {
      ...TEST_PROOF_PARAMS.space,
      slotDifficulty: 7,
    });
    const unregistered = StoragePlot.fromData(a.publicKey, TEST_PROOF_PARAMS.space, harder.data);
    assertProofError(() => make(unregistered), ProofErrorCode.INVALID_INPUT, /storage root/);
    assertProofError(() => make(a.plot, ''), ProofErrorCode.INVALID_INPUT, /networkAddress/);
    assertProofError(
      () => createBlockProofs({ genesis: chain.genesis, genesisHash: new Uint8Array(31), stampOf }),
      ProofErrorCode.INVALID_INPUT,
    );
    assert.throws(
      () =>
        createBlockProofs({
          genesis: {
            ...chain.genesis,
            proof: { ...TEST_PROOF_PARAMS, work: { stampDifficulty: 99 } },
          },
          genesisHash: chain.genesisHash,
          stampOf,
        }),
      (error: unknown) =>
        error instanceof ConsensusError &&
        error.code === ConsensusErrorCode.INVALID_GENESIS &&
        /genesis\.proof\.work\.stampDifficulty/.test(error.message),
    );
  });

  it('refuses a malformed verification request from its own caller', () => {
    const base = blocks[0] as ChainBlock;
    assertProofError(
      () =>
        verify(base, base.block, base.commit, { sequentialWork: { mode: 'sampled', segments: 0 } }),
      ProofErrorCode.INVALID_INPUT,
    );
    assertProofError(
      () => verify(base, base.block, base.commit, { genesisHash: new Uint8Array(3) }),
      ProofErrorCode.INVALID_INPUT,
    );
    assertProofError(
      () => verify(base, base.block, base.commit, { context: { ...base.context, height: 0 } }),
      ProofErrorCode.INVALID_INPUT,
      /context/,
    );
  });
});

describe('proof bytes', () => {
  it('refuses non-canonical, unknown-version and malformed bytes with typed errors', () => {
    const bytes = (blocks[0] as ChainBlock).block.header.consensusProof;
    assertProofError(() => decodeBlockProof(Uint8Array.of(0xff)), ProofErrorCode.MALFORMED);
    assertProofError(() => decodeBlockProof(new Uint8Array(0)), ProofErrorCode.MALFORMED);
    assertProofError(() => decodeBlockProof(Uint8Array.of(...bytes, 0)), ProofErrorCode.MALFORMED);
    assertProofError(
      () => decodeBlockProof(encodeCanonical({ v: 2 })),
      ProofErrorCode.UNSUPPORTED_VERSION,
    );
    assertProofError(() => decodeBlockProof(encodeCanonical([1])), ProofErrorCode.MALFORMED);
    // Map keys out of the deterministic order: valid CBOR, not canonical.
    assertProofError(
      () => decodeBlockProof(Uint8Array.of(0xa2, 0x61, 0x77, 0x01, 0x61, 0x76, 0x01)),
      ProofErrorCode.NOT_CANONICAL,
    );
    const proof = decodeBlockProof(bytes);
    const withStamps = (stamps: unknown[]) =>
      encodeCanonical({
        v: 1,
        space: {
          root: proof.space.commitmentRoot,
          address: proof.space.address,
          signature: proof.space.addressSignature,
          answers: [],
        },
        work: { stamps },
        time: proof.sequentialWork,
      });
    assert.equal(decodeBlockProof(withStamps([[new Uint8Array(32), 7]])).stamps[0]?.nonce, 7);
    for (const stamp of [
      [new Uint8Array(31), 1],
      [new Uint8Array(32), -1],
      [new Uint8Array(32)],
      5,
    ]) {
      assertProofError(
        () => decodeBlockProof(withStamps([[new Uint8Array(32), 1], stamp])),
        ProofErrorCode.MALFORMED,
        /consensusProof\.work\.stamps\[1\]/,
      );
    }
    const extra = encodeCanonical({ v: 1, space: {}, work: {}, time: {}, stake: {} });
    assertProofError(() => decodeBlockProof(extra), ProofErrorCode.MALFORMED);
    assert.ok(proof.space.answers.length === TEST_PROOF_PARAMS.space.challengeCount);
  });

  it('a flipped bit anywhere fails decoding or the proposal check (property)', () => {
    const base = blocks[1] as ChainBlock;
    const bytes = base.block.header.consensusProof;
    const checker = blockProofsOf(chain);
    fc.assert(
      fc.property(fc.nat({ max: bytes.length * 8 - 1 }), (bit) => {
        const flipped = bytes.slice();
        flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
        const block = { ...base.block, header: { ...base.block.header, consensusProof: flipped } };
        const error = checker.checkProposal(base.context, block);
        assert.ok(error instanceof ConsensusError, `bit ${bit} went unnoticed`);
      }),
      { numRuns: 150 },
    );
  });
});

describe('blockHash binds the proof', () => {
  it('a block with other proof bytes has another hash, so the commit does not carry over', async () => {
    const base = blocks[0] as ChainBlock;
    const proposer = validatorOf(chain, base.block.header.proposer);
    const again = blockProofsOf(chain, proposer).build(
      templateOf(base.block.header, null),
      base.block.transactions,
    );
    // Building is deterministic for one position: the same bytes, the same block.
    assert.deepEqual(again, base.block.header.consensusProof);
    const { block } = await forge(base, {
      proof: (proof) => ({ ...proof, space: { ...proof.space, address: 'stoq://x.test:1' } }),
    });
    assert.notDeepEqual(blockHash(block.header), base.commit.blockHash);
    const stake = partOf(verify(base, block, base.commit), 'stake');
    assert.ok(!stake.ok && stake.reason === StakeFailure.WRONG_BLOCK);
  });
});
