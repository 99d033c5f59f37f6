import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeCanonical, encodeCanonical } from '../../src/codec/cbor.js';
import { taggedHash } from '../../src/crypto/hash.js';
import type { ConsensusProofContext } from '../../src/consensus/proof/consensus-proof.js';
import { bftTimeOf } from '../../src/consensus/proof/bft-time.js';
import {
  buildProposerProof,
  consensusProofOutput,
  genesisProofOutput,
  verifyConsensusProof,
  verifyProposerProof,
} from '../../src/consensus/proof/consensus-proof.js';
import type { ConsensusProof, ProposerProof } from '../../src/consensus/proof/encoding.js';
import { decodeConsensusProof, encodeConsensusProof } from '../../src/consensus/proof/encoding.js';
import { ProofError, ProofErrorCode } from '../../src/consensus/proof/errors.js';
import { verifyStamp } from '../../src/consensus/proof/hashcash.js';
import { hashProofHeader, transactionsRoot } from '../../src/consensus/proof/header.js';
import { computeSequentialWork } from '../../src/consensus/proof/sequential-work.js';
import { buildSpaceProof } from '../../src/consensus/proof/space.js';
import type { ConsensusProofVerdict, ProofPart } from '../../src/consensus/proof/verdict.js';
import {
  SpaceFailure,
  StakeFailure,
  TimeFailure,
  WorkFailure,
} from '../../src/consensus/proof/verdict.js';
import type { BlockFixture, ParentInfo, TestChain } from './proof-fixture.js';
import {
  CHAIN_ID,
  genesisParent,
  makeBlock,
  makeChain,
  stampedTransactions,
} from './proof-fixture.js';

function assertFails(verdict: ConsensusProofVerdict, part: ProofPart, reason: string): void {
  assert.equal(verdict.ok, false, `expected ${part}/${reason}, the proof verified`);
  if (verdict.ok) return;
  assert.equal(`${verdict.part}/${verdict.reason}`, `${part}/${reason}`, verdict.message);
}

function assertProofError(run: () => unknown, code: ProofErrorCode): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ProofError, `expected ProofError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

function childOf(block: BlockFixture, height: number): ParentInfo {
  return {
    height,
    hash: hashProofHeader(block.header),
    proofOutput: consensusProofOutput(block.proof),
    time: block.proof.time.bftTime,
    stateRoot: block.stateRoot,
  };
}

for (const size of [4, 7]) {
  describe(`consensus proof with ${size} validators`, () => {
    let chain: TestChain;
    let blocks: BlockFixture[];

    before(async () => {
      chain = await makeChain(Array.from({ length: size }, (_, i) => 10 + i));
      blocks = [];
      let parent = genesisParent(chain);
      for (let height = 1; height <= 3; height++) {
        const block = await makeBlock(chain, { parent });
        blocks.push(block);
        parent = childOf(block, height);
      }
    });

    it('verifies a chain of honest proofs, each built on the previous output', () => {
      for (const block of blocks) {
        assert.deepEqual(verifyProposerProof(block.proposerProof, block.proposerContext), {
          ok: true,
        });
        assert.deepEqual(verifyConsensusProof(block.proof, block.context), { ok: true });
        assert.deepEqual(
          verifyConsensusProof(block.proof, block.context, {
            sequentialWork: { mode: 'sampled', segments: 4 },
          }),
          { ok: true },
        );
      }
      // Block 2's proof does not verify against block 1's chain position.
      const [first, second] = blocks as [BlockFixture, BlockFixture];
      assertFails(
        verifyConsensusProof(second.proof, {
          ...second.context,
          previousProofOutput: first.context.previousProofOutput,
        }),
        'space',
        SpaceFailure.WRONG_CHALLENGE_INDEX,
      );
    });

    it('round-trips through canonical CBOR', () => {
      for (const block of blocks) {
        const encoded = encodeConsensusProof(block.proof);
        const decoded = decodeConsensusProof(encoded);
        assert.deepEqual(encodeConsensusProof(decoded), encoded);
        assert.deepEqual(verifyConsensusProof(decoded, block.context), { ok: true });
        assert.deepEqual(consensusProofOutput(decoded), consensusProofOutput(block.proof));
      }
    });
  });
}

describe('consensus proof forgeries', () => {
  let chain: TestChain;
  let parent: ParentInfo;
  let honest: BlockFixture;

  before(async () => {
    chain = await makeChain([10, 10, 10, 10]);
    parent = genesisParent(chain);
    honest = await makeBlock(chain, { parent, proposer: 1 });
  });

  const verify = (proof: ConsensusProof, context: ConsensusProofContext = honest.context) =>
    verifyConsensusProof(proof, context);

  describe('space', () => {
    it('a wrong Merkle path', () => {
      const answers = honest.proof.space.answers.map((answer, j) => {
        if (j !== 1) return answer;
        const path = answer.path.map((hash) => hash.slice());
        (path[1] as Uint8Array)[31] = ((path[1] as Uint8Array)[31] as number) ^ 0x80;
        return { ...answer, path };
      });
      assertFails(
        verify({ ...honest.proof, space: { ...honest.proof.space, answers } }),
        'space',
        SpaceFailure.INVALID_MERKLE_PATH,
      );
    });

    it('an answer for a different challenge', () => {
      const proposer = chain.validators[1];
      assert.ok(proposer !== undefined);
      const answers = honest.proof.space.answers.map((answer, j) =>
        j === 0 ? proposer.plot.answer((answer.index + 1) % chain.params.space.blockCount) : answer,
      );
      assertFails(
        verify({ ...honest.proof, space: { ...honest.proof.space, answers } }),
        'space',
        SpaceFailure.WRONG_CHALLENGE_INDEX,
      );
    });

    it('a commitment root that is not the registered one', async () => {
      const other = chain.validators[2];
      assert.ok(other !== undefined);
      const block = await makeBlock(chain, {
        parent,
        proposer: 1,
        forgeProposerProof: (parts) => ({
          ...parts,
          space: { ...parts.space, commitmentRoot: other.plot.root },
        }),
      });
      assertFails(
        verify(block.proof, block.context),
        'space',
        SpaceFailure.UNREGISTERED_COMMITMENT,
      );
    });

    it('a proposer that is not a validator', async () => {
      const five = await makeChain([1, 1, 1, 1, 1]);
      const fourSet = { ...five, set: five.set.slice(0, 4) };
      const block = await makeBlock(fourSet, {
        parent: genesisParent(five),
        proposer: 4,
        signers: [0, 1, 2, 3],
      });
      assertFails(
        verifyConsensusProof(block.proof, block.context),
        'space',
        SpaceFailure.PROPOSER_NOT_A_VALIDATOR,
      );
    });
  });

  describe('stake', () => {
    it('a certificate with 2/3 or less of the voting power', async () => {
      const block = await makeBlock(chain, { parent, signers: [0, 3] });
      assertFails(
        verify(block.proof, block.context),
        'stake',
        StakeFailure.INSUFFICIENT_VOTING_POWER,
      );
    });

    it('a forged signature', () => {
      const signatures = honest.proof.stake.signatures.map((s, i) => {
        if (i !== 2) return s;
        const signature = s.signature.slice();
        signature[0] = (signature[0] as number) ^ 0x20;
        return { ...s, signature };
      });
      assertFails(
        verify({ ...honest.proof, stake: { ...honest.proof.stake, signatures } }),
        'stake',
        StakeFailure.INVALID_SIGNATURE,
      );
    });

    it('a duplicate signer', () => {
      const [a, b, c] = honest.proof.stake.signatures;
      assertFails(
        verify({
          ...honest.proof,
          stake: { ...honest.proof.stake, signatures: [a, b, b, c].filter((s) => s !== undefined) },
        }),
        'stake',
        StakeFailure.DUPLICATE_SIGNER,
      );
    });

    it('votes for another block and another height', async () => {
      const other = await makeBlock(chain, { parent, proposer: 1 });
      assertFails(
        verify({ ...honest.proof, stake: other.proof.stake }),
        'stake',
        StakeFailure.WRONG_BLOCK,
      );
      const mixed = honest.proof.stake.signatures.map((s, i) =>
        i === 0 ? (other.proof.stake.signatures[0] ?? s) : s,
      );
      assertFails(
        verify({ ...honest.proof, stake: { ...honest.proof.stake, signatures: mixed } }),
        'stake',
        StakeFailure.INVALID_SIGNATURE,
      );
      assertFails(
        verify({ ...honest.proof, stake: { ...honest.proof.stake, height: 2 } }),
        'stake',
        StakeFailure.WRONG_HEIGHT,
      );
    });

    it('precommits without the required FALCON-1024 attestation', () => {
      const signatures = honest.proof.stake.signatures.map((s) => {
        const { falcon: _falcon, ...rest } = s;
        return rest;
      });
      assertFails(
        verify({ ...honest.proof, stake: { ...honest.proof.stake, signatures } }),
        'stake',
        StakeFailure.MISSING_FALCON_ATTESTATION,
      );
    });

    it('proposer parts changed after the quorum signed the header', () => {
      const proposer = chain.validators[1];
      assert.ok(proposer !== undefined);
      // The proposer re-signs another address: valid on its own, but not what the quorum signed.
      const space = buildSpaceProof({
        plot: proposer.plot,
        anchor: {
          chainId: CHAIN_ID,
          height: 1,
          parentHash: parent.hash,
          previousProofOutput: parent.proofOutput,
          proposer: proposer.publicKey,
        },
        address: 'stoq://moved.test:9292',
        privateKey: proposer.privateKey,
      });
      assertFails(verify({ ...honest.proof, space }), 'stake', StakeFailure.PROOF_NOT_ATTESTED);
      // Another valid stamp nonce for the same transaction.
      const stamps = honest.proof.work.stamps.map((stamp, i) => {
        if (i !== 0) return stamp;
        let nonce = stamp.nonce + 1;
        while (!verifyStamp(stamp.txHash, nonce, chain.params.work.stampDifficulty)) nonce++;
        return { ...stamp, nonce };
      });
      assertFails(
        verify({ ...honest.proof, work: { stamps } }),
        'stake',
        StakeFailure.PROOF_NOT_ATTESTED,
      );
      assertFails(
        verifyProposerProof({ ...honest.proposerProof, work: { stamps } }, honest.proposerContext),
        'stake',
        StakeFailure.PROOF_NOT_ATTESTED,
      );
    });

    it('a validator set other than the header’s', () => {
      const set = honest.context.validators.map((v, i) =>
        i === 0 ? { ...v, votingPower: 11 } : v,
      );
      assertFails(
        verify(honest.proof, { ...honest.context, validators: set }),
        'stake',
        StakeFailure.VALIDATOR_SET_MISMATCH,
      );
    });
  });

  describe('work (a Byzantine proposer whose block the quorum signed anyway)', () => {
    it('a state root that re-execution does not reproduce', async () => {
      const block = await makeBlock(chain, {
        parent,
        forgeHeader: (header) => ({ ...header, stateRoot: taggedHash('test/minted-from-nothing') }),
      });
      assertFails(verify(block.proof, block.context), 'work', WorkFailure.STATE_ROOT_MISMATCH);
      assertFails(
        verifyProposerProof(block.proposerProof, block.proposerContext),
        'work',
        WorkFailure.STATE_ROOT_MISMATCH,
      );
    });

    it('a transaction stamp with insufficient work', async () => {
      const [zeroWork] = stampedTransactions(1, 0);
      assert.ok(zeroWork !== undefined);
      let nonce = zeroWork.nonce;
      while (verifyStamp(zeroWork.txHash, nonce, chain.params.work.stampDifficulty)) nonce++;
      const weak = { txHash: zeroWork.txHash, nonce };
      let stamps: ProposerProof['work']['stamps'] = [];
      const block = await makeBlock(chain, {
        parent,
        forgeProposerProof: (parts) => {
          stamps = [...parts.work.stamps, weak];
          return { ...parts, work: { stamps } };
        },
        forgeHeader: (header) => ({
          ...header,
          transactionsRoot: transactionsRoot(stamps.map((s) => s.txHash)),
        }),
      });
      assertFails(verify(block.proof, block.context), 'work', WorkFailure.INSUFFICIENT_STAMP_WORK);
    });
  });

  describe('time', () => {
    it('a BFT time that is not the weighted median', () => {
      const time = { ...honest.proof.time, bftTime: honest.proof.time.bftTime + 1 };
      assertFails(
        verify({ ...honest.proof, time }),
        'time',
        TimeFailure.BFT_TIME_NOT_WEIGHTED_MEDIAN,
      );
    });

    it('a BFT time that is not after the parent', async () => {
      const block = await makeBlock(chain, {
        parent,
        timestamps: [parent.time - 5, parent.time, parent.time + 9, parent.time - 1],
      });
      assertFails(
        verify(block.proof, block.context),
        'time',
        TimeFailure.BFT_TIME_NOT_AFTER_PARENT,
      );
    });

    it('a hash chain with a wrong checkpoint', async () => {
      const block = await makeBlock(chain, {
        parent,
        forgeProposerProof: (parts) => ({
          ...parts,
          sequentialWork: {
            ...parts.sequentialWork,
            checkpoints: parts.sequentialWork.checkpoints.map((c, i) =>
              i === 5 ? taggedHash('test/skipped-work') : c,
            ),
          },
        }),
      });
      assertFails(verify(block.proof, block.context), 'time', TimeFailure.CHECKPOINT_MISMATCH);
      assertFails(
        verifyProposerProof(block.proposerProof, block.proposerContext),
        'time',
        TimeFailure.CHECKPOINT_MISMATCH,
      );
    });

    it('a hash chain with a wrong start, e.g. precomputed before the parent was committed', async () => {
      // Chained from the parent's header alone: computable before its quorum certificate existed.
      const early = computeSequentialWork(
        taggedHash('test/early-seed', parent.hash),
        chain.params.time,
      );
      const block = await makeBlock(chain, {
        parent,
        forgeProposerProof: (parts) => ({ ...parts, sequentialWork: early }),
      });
      assertFails(verify(block.proof, block.context), 'time', TimeFailure.WRONG_CHAIN_SEED);
    });
  });
});

describe('consensus proof encoding and robustness', () => {
  let chain: TestChain;
  let block: BlockFixture;
  let encoded: Uint8Array;

  before(async () => {
    chain = await makeChain([10, 20, 30, 40]);
    block = await makeBlock(chain, { parent: genesisParent(chain), txCount: 4 });
    encoded = encodeConsensusProof(block.proof);
  });

  it('rejects non-canonical, unknown-version and malformed bytes with typed errors', () => {
    // The raw CBOR map, so each variant below differs from a valid proof in one way only.
    const value = decodeCanonical(encoded) as Record<string, unknown>;
    assert.deepEqual(decodeConsensusProof(encodeCanonical(value)), block.proof);
    assertProofError(
      () => decodeConsensusProof(encodeCanonical({ ...value, v: 2 })),
      ProofErrorCode.UNSUPPORTED_VERSION,
    );
    assertProofError(() => decodeConsensusProof(new Uint8Array([0xff])), ProofErrorCode.MALFORMED);
    assertProofError(
      () => decodeConsensusProof(new Uint8Array([...encoded, 0x00])),
      ProofErrorCode.MALFORMED,
    );
    assertProofError(() => decodeConsensusProof(encodeCanonical([1, 2])), ProofErrorCode.MALFORMED);
    const { space: _space, ...withoutSpace } = value;
    assertProofError(
      () => decodeConsensusProof(encodeCanonical(withoutSpace)),
      ProofErrorCode.MALFORMED,
    );
    assertProofError(
      () => decodeConsensusProof(encodeCanonical({ ...value, extra: 1 })),
      ProofErrorCode.MALFORMED,
    );
    // Map keys out of RFC 8949 §4.2.1 order ("xx" before "v"), and 1.0 as a double.
    const unsorted = new Uint8Array([0xa2, 0x62, 0x78, 0x78, 0x01, 0x61, 0x76, 0x01]);
    assertProofError(() => decodeConsensusProof(unsorted), ProofErrorCode.NOT_CANONICAL);
    const wideFloat = new Uint8Array([0xa1, 0x61, 0x76, 0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    assertProofError(() => decodeConsensusProof(wideFloat), ProofErrorCode.NOT_CANONICAL);
  });

  it('a flipped bit anywhere fails decoding with a ProofError or fails verification (property)', (t) => {
    let undecodable = 0;
    let rejected = 0;
    fc.assert(
      fc.property(fc.nat({ max: encoded.length * 8 - 1 }), (bit) => {
        const flipped = encoded.slice();
        flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
        let proof: ConsensusProof;
        try {
          proof = decodeConsensusProof(flipped);
        } catch (error) {
          assert.ok(error instanceof ProofError, `not a ProofError: ${String(error)}`);
          undecodable++;
          return;
        }
        const verdict = verifyConsensusProof(proof, block.context);
        assert.equal(verdict.ok, false, `bit ${bit} flipped and the proof still verified`);
        rejected++;
      }),
      { numRuns: 300 },
    );
    t.diagnostic(
      `${undecodable} flips failed decoding, ${rejected} decoded and failed verification`,
    );
    assert.ok(undecodable > 0 && rejected > 0, 'both outcomes are exercised');
  });

  it('truncated or extended bytes never decode into something that verifies (property)', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: encoded.length - 1 }),
        fc.uint8Array({ maxLength: 4 }),
        (cut, tail) => {
          const mangled = new Uint8Array([...encoded.subarray(0, cut), ...tail]);
          try {
            const proof = decodeConsensusProof(mangled);
            assert.equal(verifyConsensusProof(proof, block.context).ok, false);
          } catch (error) {
            assert.ok(error instanceof ProofError, `not a ProofError: ${String(error)}`);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects a malformed context or proof value with typed errors', () => {
    const { context, proof } = block;
    assertProofError(
      () =>
        verifyConsensusProof(proof, {
          ...context,
          params: { ...context.params, time: { iterations: 10, checkpointInterval: 3 } },
        }),
      ProofErrorCode.INVALID_PARAMS,
    );
    assertProofError(
      () => verifyConsensusProof(proof, { ...context, header: { ...context.header, height: 0 } }),
      ProofErrorCode.INVALID_INPUT,
    );
    assertProofError(
      () => verifyConsensusProof(proof, { ...context, validators: [] }),
      ProofErrorCode.INVALID_INPUT,
    );
    assertProofError(
      () => verifyConsensusProof(proof, { ...context, previousProofOutput: new Uint8Array(3) }),
      ProofErrorCode.INVALID_INPUT,
    );
    assertProofError(
      () => verifyConsensusProof(proof, { ...context, parentTime: -1 }),
      ProofErrorCode.INVALID_INPUT,
    );
    assertProofError(
      () =>
        verifyConsensusProof(proof, {
          ...context,
          reexecute: 'root' as unknown as ConsensusProofContext['reexecute'],
        }),
      ProofErrorCode.INVALID_INPUT,
    );
    assertProofError(
      () => genesisProofOutput(CHAIN_ID, new Uint8Array(31)),
      ProofErrorCode.INVALID_INPUT,
    );
    assertProofError(
      () => bftTimeOf(proof.stake, chain.set.slice(1)),
      ProofErrorCode.INVALID_INPUT,
    );
    const proposer = chain.validators[1];
    assert.ok(proposer !== undefined);
    assertProofError(
      () =>
        buildProposerProof({
          params: { ...chain.params, space: { ...chain.params.space, slotDifficulty: 5 } },
          anchor: {
            chainId: CHAIN_ID,
            height: 1,
            parentHash: context.header.parentHash,
            previousProofOutput: context.previousProofOutput,
            proposer: proposer.publicKey,
          },
          plot: proposer.plot,
          privateKey: proposer.privateKey,
          address: proposer.address,
          stamps: [],
        }),
      ProofErrorCode.INVALID_INPUT,
    );
    assertProofError(
      () =>
        verifyConsensusProof(proof, context, { sequentialWork: { mode: 'sampled', segments: 0 } }),
      ProofErrorCode.INVALID_INPUT,
    );
    assertProofError(
      () => verifyConsensusProof({ ...proof, time: { ...proof.time, bftTime: 1.5 } }, context),
      ProofErrorCode.MALFORMED,
    );
  });
});
