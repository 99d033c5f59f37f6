import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bytesEqual } from '../../src/crypto/bytes.js';
import {
  blockTemplate,
  buildBlock,
  checkBlock,
  MAX_BLOCK_EVIDENCE,
} from '../../src/consensus/block.js';
import { bftTime, checkQuorumCertificate } from '../../src/consensus/commit.js';
import { ConsensusErrorCode } from '../../src/consensus/errors.js';
import { duplicateVoteEvidence } from '../../src/consensus/evidence.js';
import { nextHeightContext } from '../../src/consensus/height-context.js';
import { blockHash } from '../../src/consensus/messages.js';
import type { Block, DuplicateVoteEvidence, QuorumCertificate } from '../../src/consensus/types.js';
import {
  ed25519SignatureVerifier,
  type SignatureVerifier,
  type VerificationContext,
} from '../../src/consensus/verify.js';
import {
  CHAIN_ID,
  GENESIS_TIME,
  makeBlock,
  makeGenesis,
  makeValidators,
  makeVote,
} from './sim/fixtures.js';

const { validators, set } = makeValidators([1, 1, 1, 1], 5);
const genesis = makeGenesis(set);
const first = makeBlock(genesis, validators[0]!.address, 1);
const firstHash = blockHash(first.header);
const verification: VerificationContext = {
  chainId: CHAIN_ID,
  validators: set,
  verifier: ed25519SignatureVerifier,
  requirePq: false,
};

function commitOf(
  signers: number[],
  timestamps: number[] = signers.map(() => GENESIS_TIME + 500),
): QuorumCertificate {
  const precommits = signers
    .map((index, i) => makeVote(validators[index]!, 'precommit', 1, 0, firstHash, timestamps[i]))
    .sort((a, b) => (a.validator < b.validator ? -1 : 1));
  return { height: 1, round: 0, blockHash: firstHash, precommits };
}

const commit = commitOf([0, 1, 2], [GENESIS_TIME + 300, GENESIS_TIME + 100, GENESIS_TIME + 200]);
const second = nextHeightContext(genesis, first, commit);
const options = { chainId: CHAIN_ID, verifier: ed25519SignatureVerifier, requirePq: false };

function expectInvalid(block: Block, fragment: string): void {
  const error = checkBlock(options, second, block);
  assert.ok(error, `expected the block to be refused (${fragment})`);
  assert.equal(error.code, ConsensusErrorCode.INVALID_BLOCK);
  assert.match(error.message, new RegExp(fragment));
}

describe('quorum certificates', () => {
  it('accepts precommits from more than 2/3 of the power', () => {
    assert.equal(
      checkQuorumCertificate(verification, commit, { height: 1, blockHash: firstHash }),
      undefined,
    );
  });

  it('refuses a commit that does not prove the quorum, naming why', () => {
    const expected = { height: 1, blockHash: firstHash };
    const cases: [QuorumCertificate, string][] = [
      [commitOf([0, 1]), 'no more than 2/3'],
      [{ ...commit, precommits: [...commit.precommits].reverse() }, 'address order'],
      [{ ...commit, precommits: [commit.precommits[0]!, ...commit.precommits] }, 'repeats'],
      [
        {
          ...commit,
          precommits: commit.precommits.map((v, i) =>
            i === 0 ? { ...v, signature: new Uint8Array(64) } : v,
          ),
        },
        'BAD_SIGNATURE',
      ],
      [
        {
          ...commit,
          precommits: commit.precommits.map((v, i) => (i === 0 ? { ...v, round: 1 } : v)),
        },
        'not for the committed block and round',
      ],
      [{ ...commit, blockHash: new Uint8Array(32) }, 'another block'],
      [{ ...commit, height: 2 }, 'another height'],
    ];
    for (const [candidate, fragment] of cases) {
      const error = checkQuorumCertificate(verification, candidate, expected);
      assert.equal(error?.code, ConsensusErrorCode.INVALID_COMMIT, fragment);
      assert.match(error.message, new RegExp(fragment));
    }
  });

  it('BFT time is the power-weighted median of the precommit times, after the parent time', () => {
    assert.equal(bftTime(commit, set, GENESIS_TIME), GENESIS_TIME + 200);
    // A heavy validator pulls the median to its own time.
    const { validators: weighted, set: weightedSet } = makeValidators([10, 1, 1], 9);
    const light = [100, 200];
    const votes = weighted
      .map((v) =>
        makeVote(
          v,
          'precommit',
          1,
          0,
          firstHash,
          GENESIS_TIME + (v.power === 10 ? 900 : light.pop()!),
        ),
      )
      .sort((a, b) => (a.validator < b.validator ? -1 : 1));
    const heavyTime = GENESIS_TIME + 900;
    assert.equal(
      bftTime(
        { height: 1, round: 0, blockHash: firstHash, precommits: votes },
        weightedSet,
        GENESIS_TIME,
      ),
      heavyTime,
    );
    // Never at or before the parent's time.
    assert.equal(bftTime(commit, set, GENESIS_TIME + 10_000), GENESIS_TIME + 10_001);
  });
});

describe('block validity (consensus rules)', () => {
  const proposer = validators[1]!.address;
  const good = makeBlock(second, proposer, 2);

  it('accepts a block built on the committed parent', () => {
    assert.equal(checkBlock(options, second, good), undefined);
    assert.equal(good.header.time, GENESIS_TIME + 200);
    assert.ok(bytesEqual(good.header.parentHash, firstHash));
    assert.equal(checkBlock(options, genesis, first), undefined);
  });

  it('accepts a different valid last commit than the proposer’s own', () => {
    const other = commitOf([1, 2, 3]);
    const template = {
      ...blockTemplate(CHAIN_ID, second, proposer),
      lastCommit: other,
      time: bftTime(other, set, first.header.time),
    };
    const block = buildBlock(template, {
      transactions: [],
      evidence: [],
      appStateRoot: new Uint8Array(32),
      consensusProof: new Uint8Array(0),
    });
    assert.equal(checkBlock(options, second, block), undefined);
  });

  it('refuses each broken rule', () => {
    const header = good.header;
    expectInvalid({ ...good, header: { ...header, chainId: 'other' } }, 'another chain');
    expectInvalid({ ...good, header: { ...header, height: 3 } }, 'another height');
    expectInvalid({ ...good, header: { ...header, parentHash: new Uint8Array(32) } }, 'parent');
    expectInvalid(
      { ...good, header: { ...header, validatorsHash: new Uint8Array(32) } },
      'validator set',
    );
    expectInvalid({ ...good, header: { ...header, proposer: 'ff'.repeat(20) } }, 'proposer');
    expectInvalid({ ...good, header: { ...header, time: header.time + 1 } }, 'BFT time');
    expectInvalid({ ...good, header: { ...header, appStateRoot: new Uint8Array(5) } }, '32 bytes');
    expectInvalid({ ...good, lastCommit: null }, 'lacks the commit');
    expectInvalid({ ...good, lastCommit: commitOf([0, 1]) }, 'last commit');
    expectInvalid({ ...good, transactions: [Uint8Array.of(9)] }, 'transactions root');
    expectInvalid(
      {
        ...good,
        lastCommit: commitOf(
          [0, 1, 3],
          [GENESIS_TIME + 300, GENESIS_TIME + 100, GENESIS_TIME + 200],
        ),
      },
      'last commit hash',
    );
    expectInvalid({ ...first, header: { ...first.header, height: 2 } }, 'parent');
    assert.equal(
      checkBlock(options, genesis, { ...first, lastCommit: commit })?.code,
      ConsensusErrorCode.INVALID_BLOCK,
    );
  });

  it('checks the evidence it carries', () => {
    const offender = validators[2]!;
    const evidence = duplicateVoteEvidence(
      makeVote(offender, 'prevote', 1, 0, null),
      makeVote(offender, 'prevote', 1, 0, firstHash),
    );
    const withEvidence = buildBlock(blockTemplate(CHAIN_ID, second, proposer), {
      transactions: [],
      evidence: [evidence],
      appStateRoot: new Uint8Array(32),
      consensusProof: new Uint8Array(0),
    });
    assert.equal(checkBlock(options, second, withEvidence), undefined);
    const repeated = buildBlock(blockTemplate(CHAIN_ID, second, proposer), {
      transactions: [],
      evidence: [evidence, evidence],
      appStateRoot: new Uint8Array(32),
      consensusProof: new Uint8Array(0),
    });
    expectInvalid(repeated, 'repeats');
    const forged = buildBlock(blockTemplate(CHAIN_ID, second, proposer), {
      transactions: [],
      evidence: [{ ...evidence, voteB: { ...evidence.voteB, signature: new Uint8Array(64) } }],
      appStateRoot: new Uint8Array(32),
      consensusProof: new Uint8Array(0),
    });
    expectInvalid(forged, 'evidence 0');
  });

  /** Ed25519 through the real verifier, counting the calls. */
  function countingVerifier(): { verifier: SignatureVerifier; calls: () => number } {
    let calls = 0;
    return {
      verifier: {
        ed25519: (signature, message, key) => {
          calls++;
          return ed25519SignatureVerifier.ed25519(signature, message, key);
        },
      },
      calls: () => calls,
    };
  }

  /** `count` distinct offences (one per round) by one validator at height 1, all provable. */
  function offences(count: number): DuplicateVoteEvidence[] {
    const offender = validators[2]!;
    return Array.from({ length: count }, (_, round) =>
      duplicateVoteEvidence(
        makeVote(offender, 'prevote', 1, round, null),
        makeVote(offender, 'prevote', 1, round, firstHash),
      ),
    );
  }

  function blockWith(evidence: readonly DuplicateVoteEvidence[]): Block {
    return buildBlock(blockTemplate(CHAIN_ID, second, proposer), {
      transactions: [],
      evidence,
      appStateRoot: new Uint8Array(32),
      consensusProof: new Uint8Array(0),
    });
  }

  it(`refuses more than MAX_BLOCK_EVIDENCE (${MAX_BLOCK_EVIDENCE}) evidence items before any hashing or signature`, () => {
    const items = offences(MAX_BLOCK_EVIDENCE + 1);
    const atLimit = countingVerifier();
    assert.equal(
      checkBlock({ ...options, verifier: atLimit.verifier }, second, blockWith(items.slice(0, -1))),
      undefined,
    );
    assert.equal(atLimit.calls(), 3 + 2 * MAX_BLOCK_EVIDENCE, 'the last commit and every item');
    // Every item proves an offence; only their number breaks the rule. Reads of the items
    // (which hashing the evidence root or checking them would make) are counted.
    let itemReads = 0;
    const counted = new Proxy(items, {
      get(target, property, receiver) {
        if (typeof property === 'string' && /^\d+$/.test(property)) itemReads++;
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    const over = { ...blockWith(items), evidence: counted };
    const overLimit = countingVerifier();
    const error = checkBlock({ ...options, verifier: overLimit.verifier }, second, over);
    assert.equal(error?.code, ConsensusErrorCode.INVALID_BLOCK);
    assert.match(error.message, /more than 64 evidence items/);
    assert.deepEqual(error.detail, { count: MAX_BLOCK_EVIDENCE + 1, limit: MAX_BLOCK_EVIDENCE });
    assert.equal(overLimit.calls(), 0, 'not even the last commit is verified');
    assert.equal(itemReads, 0, 'no item is read');
  });

  it('refuses a repeated offence before verifying any evidence signature', () => {
    const withoutEvidence = countingVerifier();
    assert.equal(
      checkBlock({ ...options, verifier: withoutEvidence.verifier }, second, good),
      undefined,
    );
    const [evidence] = offences(1) as [DuplicateVoteEvidence];
    const repeated = countingVerifier();
    const error = checkBlock(
      { ...options, verifier: repeated.verifier },
      second,
      blockWith([evidence, evidence]),
    );
    assert.match(error?.message ?? '', /evidence 1 repeats an offence/);
    assert.equal(repeated.calls(), withoutEvidence.calls(), 'only the last commit is verified');
  });

  it('refuses evidence whose votes are not well formed, without throwing', () => {
    const [evidence] = offences(1) as [DuplicateVoteEvidence];
    for (const [a, b] of [
      ['a', 'b'],
      [new Uint8Array(31), null],
      [{}, null],
    ] as const) {
      const odd = {
        voteA: { ...evidence.voteA, blockHash: a },
        voteB: { ...evidence.voteB, blockHash: b },
      } as unknown as DuplicateVoteEvidence;
      expectInvalid(blockWith([odd]), 'evidence 0: evidence votes are not well formed');
    }
  });
});
