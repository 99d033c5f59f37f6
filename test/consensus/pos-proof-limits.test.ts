import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { blockTemplate, buildBlock } from '../../src/consensus/block.js';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import { genesisHeightContext } from '../../src/consensus/genesis.js';
import { proposerAt } from '../../src/consensus/proposer.js';
import {
  blockProofLimits,
  decodeBlockProof,
  encodeBlockProof,
  LARGEST_PROOF_LIMITS,
  MAX_STAMPS_PER_PROOF,
  verifyCommittedBlock,
  type BlockProof,
  type BlockProofLimits,
} from '../../src/consensus/pos/index.js';
import { ProofError, ProofErrorCode } from '../../src/consensus/proof/errors.js';
import {
  checkpointCount,
  DEFAULT_PROOF_PARAMS,
  DEV_PROOF_PARAMS,
  MAX_BLOCK_COUNT,
  MAX_CHALLENGE_COUNT,
  MAX_CHECKPOINTS,
  MAX_SLOTS_PER_BLOCK,
  type ConsensusProofParams,
} from '../../src/consensus/proof/params.js';
import { MAX_ADDRESS_LENGTH } from '../../src/consensus/proof/space.js';
import { SpaceFailure, TimeFailure, WorkFailure } from '../../src/consensus/proof/verdict.js';
import type { Block } from '../../src/consensus/types.js';
import {
  blockProofsOf,
  makeTestChain,
  proposeBlock,
  randomTransactions,
  signCommit,
  stampOf,
  TEST_PROOF_PARAMS,
  toyStateRoot,
  type TestChain,
} from './pos-fixture.js';

/**
 * The size limits of `header.consensusProof` (pos/encoding.ts `blockProofLimits`): a consensus
 * rule, so honest proofs of every size the parameters allow must stay inside them, and a proof
 * beyond them is refused before it is decoded (docs/consensus-proof.md, "The proof bytes").
 */

/** The largest parameters the genesis schema allows. */
const LARGEST_PARAMS: ConsensusProofParams = {
  space: {
    blockCount: MAX_BLOCK_COUNT,
    slotsPerBlock: MAX_SLOTS_PER_BLOCK,
    slotDifficulty: 24,
    challengeCount: MAX_CHALLENGE_COUNT,
  },
  work: { stampDifficulty: 40 },
  time: { iterations: MAX_CHECKPOINTS * 2 ** 18, checkpointInterval: 2 ** 18 },
};

function hash(fill: number): Uint8Array {
  return new Uint8Array(32).fill(fill);
}

/**
 * The longest proof an honest proposer can build under `params` for `stamps` transactions: every
 * field at its largest encoding — an address of 256 three-byte characters, answers for the last
 * block (the widest index) with full paths, stamps with the largest nonce. Its values need not
 * verify: the limits are about size.
 */
function largestHonestProof(params: ConsensusProofParams, stamps: number): BlockProof {
  const { blockCount, slotsPerBlock, challengeCount } = params.space;
  const path = Math.ceil(Math.log2(blockCount));
  return {
    space: {
      commitmentRoot: hash(1),
      address: '\u20ac'.repeat(MAX_ADDRESS_LENGTH),
      addressSignature: new Uint8Array(64).fill(2),
      answers: Array.from({ length: challengeCount }, () => ({
        index: blockCount - 1,
        block: new Uint8Array(4 * slotsPerBlock).fill(3),
        path: Array.from({ length: path }, () => hash(4)),
      })),
    },
    stamps: Array.from({ length: stamps }, () => ({
      txHash: hash(5),
      nonce: Number.MAX_SAFE_INTEGER,
    })),
    sequentialWork: {
      seed: hash(6),
      checkpoints: Array.from({ length: checkpointCount(params.time) }, () => hash(7)),
    },
  };
}

function assertMalformed(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ProofError, String(error));
    assert.equal(error.code, ProofErrorCode.MALFORMED);
    assert.match(error.message, pattern);
    return true;
  });
}

/**
 * A CBOR array of `count` empty maps (`a0`, one byte and one object each), with the shortest
 * head: `9a 00 3f ff fb` and 4 MiB − 5 maps make 4 MiB of junk.
 */
function arrayOfEmptyMaps(count: number): Uint8Array {
  const head =
    count < 0x10000
      ? [0x99, count >>> 8, count & 0xff]
      : [0x9a, count >>> 24, (count >>> 16) & 0xff, (count >>> 8) & 0xff, count & 0xff];
  const bytes = new Uint8Array(head.length + count).fill(0xa0);
  bytes.set(head);
  return bytes;
}

const FOUR_MIB = 4 * 1024 * 1024;

describe('the size limits of a consensus proof', () => {
  it('are fixed by the parameters and the transaction count (known answers)', () => {
    // A change here changes which blocks are valid: every validator must run the same figures.
    // DEFAULT: k = 8, S = 8, N = 1024 (paths of 10), T / C = 64 checkpoints.
    assert.deepEqual(blockProofLimits(DEFAULT_PROOF_PARAMS, 1000), {
      maxBytes: 2048 + 8 * (32 + 4 * 8 + 34 * 10) + 44 * 1000 + 34 * 64 + 1024,
      maxItems: 64 + 8 * (7 + 10) + 3 * 1000 + 64,
    });
    assert.deepEqual(blockProofLimits(DEFAULT_PROOF_PARAMS, 1000), {
      maxBytes: 52_480,
      maxItems: 3264,
    });
    assert.deepEqual(blockProofLimits({ ...TEST_PROOF_PARAMS }, 0), {
      maxBytes: 2048 + 3 * (32 + 16 + 34 * 4) + 34 * 16 + 1024,
      maxItems: 64 + 3 * (7 + 4) + 16,
    });
    assert.deepEqual(LARGEST_PROOF_LIMITS, blockProofLimits(LARGEST_PARAMS, MAX_STAMPS_PER_PROOF));
  });

  it('hold the largest honest proof of every parameter set, with 0, 1 and 1,000 transactions', () => {
    const sets = { DEFAULT_PROOF_PARAMS, DEV_PROOF_PARAMS, TEST_PROOF_PARAMS, LARGEST_PARAMS };
    for (const [name, params] of Object.entries(sets)) {
      for (const stamps of [0, 1, 1000]) {
        const limits = blockProofLimits(params, stamps);
        const bytes = encodeBlockProof(largestHonestProof(params, stamps));
        const what = `${name}, ${stamps} transaction(s): ${bytes.length} of ${limits.maxBytes} bytes`;
        assert.ok(bytes.length <= limits.maxBytes, what);
        // Loose by the fixed part's margin and the slack only, whatever the parameters.
        assert.ok(limits.maxBytes - bytes.length <= 3 * 1024, what);
        const decoded = decodeBlockProof(bytes, limits);
        assert.deepEqual(encodeBlockProof(decoded), bytes, what);
        // The stamps' budget comes from the transactions: without them the proof is too long.
        if (stamps === 1000) {
          const none = blockProofLimits(params, 0);
          assertMalformed(() => decodeBlockProof(bytes, none), /bytes; a proof for this block/);
        }
      }
    }
  });

  it('refuse more data items than an honest proof has, however few bytes they take', () => {
    const limits = blockProofLimits(DEFAULT_PROOF_PARAMS, 1000);
    // 40,000 empty maps fit the 52,480 bytes, but not the 3,264 items.
    const junk = arrayOfEmptyMaps(40_000);
    assert.ok(junk.length <= limits.maxBytes);
    assertMalformed(() => decodeBlockProof(junk, limits), /more than 3264 data items/);
    assertMalformed(
      () => decodeBlockProof(arrayOfEmptyMaps(4_000), limits),
      /more than 3264 data items/,
    );
  });
});

describe('a proposal whose consensus proof is 4 MiB of junk', () => {
  let chain: TestChain;
  before(async () => {
    chain = await makeTestChain(4);
  });

  function withProof(consensusProof: Uint8Array): Block {
    const context = genesisHeightContext(chain.genesis);
    const proposer = proposerAt(context.schedule, 0).address;
    const template = blockTemplate(chain.genesis.chainId, context, proposer);
    return buildBlock(template, {
      transactions: [],
      evidence: [],
      appStateRoot: toyStateRoot(new Uint8Array(32), []),
      consensusProof,
    });
  }

  const junk = {
    'an array of 4 Mi empty maps': arrayOfEmptyMaps(FOUR_MIB - 5),
    '4 MiB of empty maps': new Uint8Array(FOUR_MIB).fill(0xa0),
  };

  it('is refused by checkProposal as PROOF_MALFORMED by its length, before it is decoded', () => {
    const context = genesisHeightContext(chain.genesis);
    const limit = blockProofLimits(chain.genesis.proof, 0).maxBytes;
    for (const [name, proof] of Object.entries(junk)) {
      const refusal = blockProofsOf(chain).checkProposal(context, withProof(proof));
      assert.ok(refusal instanceof ConsensusError, name);
      assert.equal(refusal.code, ConsensusErrorCode.INVALID_BLOCK, name);
      assert.equal(refusal.detail.reason, SpaceFailure.UNDECODABLE_PROOF, name);
      assert.equal(refusal.detail.code, ProofErrorCode.MALFORMED, name);
      // The length check's message: the bytes were refused as such, never decoded.
      assert.match(
        refusal.message,
        new RegExp(
          `consensus proof is ${proof.length} bytes; a proof for this block is at most ${limit}`,
        ),
        name,
      );
    }
  });

  it('fails every part that reads the proof in verifyCommittedBlock, without throwing', async () => {
    const context = genesisHeightContext(chain.genesis);
    for (const [name, proof] of Object.entries(junk)) {
      const block = withProof(proof);
      const verdict = verifyCommittedBlock({
        genesis: chain.genesis,
        genesisHash: chain.genesisHash,
        block,
        commit: await signCommit(chain, block),
        context,
        stampOf,
        falcon: chain.falcon,
      });
      assert.equal(verdict.ok, false, name);
      const reasons = Object.fromEntries(
        verdict.parts.map((part) => [part.part, part.ok ? 'ok' : part.reason]),
      );
      assert.deepEqual(
        reasons,
        {
          space: SpaceFailure.UNDECODABLE_PROOF,
          stake: 'ok',
          work: WorkFailure.UNDECODABLE_PROOF,
          time: TimeFailure.UNDECODABLE_PROOF,
        },
        name,
      );
      const space = verdict.parts[0];
      assert.ok(
        space !== undefined && !space.ok && /bytes; a proof for this block/.test(space.message),
      );
    }
  });

  it('leaves an honest 1,000-transaction block valid', async () => {
    const context = genesisHeightContext(chain.genesis);
    const transactions = randomTransactions(1000);
    const block = proposeBlock(chain, context, transactions, new Uint8Array(32));
    const limits: BlockProofLimits = blockProofLimits(chain.genesis.proof, 1000);
    assert.ok(block.header.consensusProof.length <= limits.maxBytes);
    assert.equal(blockProofsOf(chain).checkProposal(context, block), undefined);
    const verdict = verifyCommittedBlock({
      genesis: chain.genesis,
      genesisHash: chain.genesisHash,
      block,
      commit: await signCommit(chain, block),
      context,
      stampOf,
      reexecute: () => toyStateRoot(new Uint8Array(32), transactions),
      falcon: chain.falcon,
    });
    assert.equal(verdict.ok, true, JSON.stringify(verdict.parts));
  });
});
