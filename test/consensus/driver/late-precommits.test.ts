import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { blockTemplate, buildBlock, checkBlock } from '../../../src/consensus/block.js';
import { bftTime, checkQuorumCertificate } from '../../../src/consensus/commit.js';
import { lastCommitInfo } from '../../../src/consensus/driver/block-checks.js';
import {
  addLatePrecommit,
  CommitGathering,
} from '../../../src/consensus/driver/late-precommits.js';
import { nextHeightContext, type HeightContext } from '../../../src/consensus/height-context.js';
import { blockHash, commitHash } from '../../../src/consensus/messages.js';
import { precommitPqMessage, signVote } from '../../../src/consensus/signer.js';
import type { QuorumCertificate, Vote } from '../../../src/consensus/types.js';
import { createValidatorSet, type ValidatorSet } from '../../../src/consensus/validator-set.js';
import {
  ed25519SignatureVerifier,
  MessageRejection,
  pqSignatureVerifier,
  type VerificationContext,
} from '../../../src/consensus/verify.js';
import { decodeQuorumCertificate, encodeQuorumCertificate } from '../../../src/consensus/wire.js';
import { sha256 } from '../../../src/crypto/hash.js';
import {
  CHAIN_ID,
  GENESIS_TIME,
  makeBlock,
  makeGenesis,
  makeValidators,
  makeVote,
} from '../sim/fixtures.js';
import { falcon, makeIdentities, type ValidatorIdentity } from './fixtures.js';

// Four validators of equal power, sorted by address: any three are a quorum.
const { validators, set } = makeValidators([1, 1, 1, 1], 11);
const outsider = makeValidators([1], 12).validators[0]!;
const genesis = makeGenesis(set);
const first = makeBlock(genesis, validators[0]!.address, 1);
const firstHash = blockHash(first.header);
const verification: VerificationContext = {
  chainId: CHAIN_ID,
  validators: set,
  verifier: ed25519SignatureVerifier,
  requirePq: false,
};

function precommit(index: number, timestamp: number, overrides: Partial<Vote> = {}): Vote {
  const vote = makeVote(validators[index]!, 'precommit', 1, 0, firstHash, timestamp);
  return { ...vote, ...overrides };
}

function commitOf(votes: Vote[]): QuorumCertificate {
  return { height: 1, round: 0, blockHash: firstHash, precommits: votes };
}

const decided = commitOf([
  precommit(0, GENESIS_TIME + 100),
  precommit(1, GENESIS_TIME + 200),
  precommit(3, GENESIS_TIME + 300),
]);

function added(result: ReturnType<typeof addLatePrecommit>): QuorumCertificate {
  assert.equal(result.added, true, JSON.stringify(result));
  return (result as { commit: QuorumCertificate }).commit;
}

function refused(result: ReturnType<typeof addLatePrecommit>): string {
  assert.equal(result.added, false, 'expected a refusal');
  return (result as { reason: string }).reason;
}

describe('late precommits: adding a precommit to a decided commit', () => {
  it('adds a valid precommit in address order; the result is still a quorum certificate', () => {
    const late = precommit(2, GENESIS_TIME + 900);
    const extended = added(addLatePrecommit(verification, decided, late));
    assert.deepEqual(
      extended.precommits.map((vote) => vote.validator),
      validators.map((validator) => validator.address),
    );
    assert.equal(extended.precommits[2], late);
    assert.equal(decided.precommits.length, 3, 'the decided commit is not changed');
    assert.equal(
      checkQuorumCertificate(verification, extended, { height: 1, blockHash: firstHash }),
      undefined,
    );
    // The encoder takes the superset and gives it back exactly; its hash is another commit's.
    assert.deepEqual(decodeQuorumCertificate(encodeQuorumCertificate(extended)), extended);
    assert.notDeepEqual(commitHash(extended), commitHash(decided));
  });

  it('refuses nil, another block, round, height or type, a repeat, and forgeries', () => {
    const time = GENESIS_TIME + 900;
    const v2 = validators[2]!;
    const cases: [Vote, string][] = [
      [makeVote(v2, 'precommit', 1, 0, null, time), 'not-for-commit'],
      [makeVote(v2, 'precommit', 1, 0, sha256(Uint8Array.of(9)), time), 'not-for-commit'],
      [makeVote(v2, 'precommit', 1, 1, firstHash, time), 'not-for-commit'],
      [makeVote(v2, 'precommit', 2, 0, firstHash, time), 'not-for-commit'],
      [makeVote(v2, 'prevote', 1, 0, firstHash, time), 'not-for-commit'],
      // Validator 0 precommitted already (this one is re-signed with another timestamp).
      [precommit(0, time), 'duplicate'],
      [precommit(2, time, { signature: new Uint8Array(64) }), MessageRejection.BAD_SIGNATURE],
      // Validator 2's name over validator 0's signature.
      [
        { ...makeVote(validators[0]!, 'precommit', 1, 0, firstHash, time), validator: v2.address },
        MessageRejection.BAD_SIGNATURE,
      ],
      [makeVote(outsider, 'precommit', 1, 0, firstHash, time), MessageRejection.UNKNOWN_VALIDATOR],
      [{ ...precommit(2, time), timestamp: -1 }, MessageRejection.MALFORMED],
    ];
    for (const [vote, reason] of cases) {
      assert.equal(refused(addLatePrecommit(verification, decided, vote)), reason, reason);
    }
    assert.equal(
      refused(addLatePrecommit(verification, decided, null as unknown as Vote)),
      'MALFORMED',
    );
  });

  it('CommitGathering keeps the growing commit and counts what it added', () => {
    const gathering = new CommitGathering(verification, decided);
    assert.equal(gathering.height, 1);
    assert.equal(refused(gathering.offer(precommit(1, GENESIS_TIME + 5))), 'duplicate');
    assert.equal(gathering.added, 0);
    added(gathering.offer(precommit(2, GENESIS_TIME + 900)));
    assert.equal(refused(gathering.offer(precommit(2, GENESIS_TIME + 901))), 'duplicate');
    assert.equal(gathering.added, 1);
    assert.equal(gathering.commit.precommits.length, 4);
  });

  it('the next block’s BFT time and LastCommitInfo come from the lastCommit it carries', () => {
    const late = precommit(2, GENESIS_TIME + 900);
    const extended = added(addLatePrecommit(verification, decided, late));
    // Median by power: 3 precommits → the 2nd (200); 4 → the 3rd (300). They differ.
    assert.equal(bftTime(decided, set, GENESIS_TIME), GENESIS_TIME + 200);
    assert.equal(bftTime(extended, set, GENESIS_TIME), GENESIS_TIME + 300);
    const decidedContext = nextHeightContext(genesis, first, decided);
    const gatheredContext: HeightContext = {
      ...decidedContext,
      parent: {
        ...(decidedContext.parent as { kind: 'block' } & HeightContext['parent']),
        commit: extended,
      },
    };
    const options = { chainId: CHAIN_ID, verifier: ed25519SignatureVerifier, requirePq: false };
    const content = {
      transactions: [],
      evidence: [],
      appStateRoot: sha256(Uint8Array.of(2)),
      consensusProof: new Uint8Array(0),
    };
    const proposer = validators[1]!.address;
    const block = buildBlock(blockTemplate(CHAIN_ID, gatheredContext, proposer), content);
    assert.equal(block.lastCommit, extended);
    assert.equal(block.header.time, GENESIS_TIME + 300);
    // Every validator checks it against its own context, which holds its own (decision) commit.
    assert.equal(checkBlock(options, decidedContext, block), undefined);
    assert.equal(checkBlock(options, gatheredContext, block), undefined);
    const info = lastCommitInfo(block.lastCommit, decidedContext);
    assert.deepEqual(
      info?.votes.map((vote) => vote.signed),
      [true, true, true, true],
    );
    // The same lastCommit with the decision's time is refused: the time follows the commit.
    const wrongTime = buildBlock(
      { ...blockTemplate(CHAIN_ID, decidedContext, proposer), lastCommit: extended },
      content,
    );
    assert.match(checkBlock(options, decidedContext, wrongTime)?.message ?? '', /BFT time/);
  });
});

describe('late precommits: the FALCON-1024 attestation when the chain requires it', () => {
  let identities: ValidatorIdentity[];
  let pqSet: ValidatorSet;
  let context: VerificationContext;
  let hash: Uint8Array;
  let pqDecided: QuorumCertificate;
  const sign = async (identity: ValidatorIdentity, pq: boolean): Promise<Vote> => {
    const vote = signVote(
      CHAIN_ID,
      {
        type: 'precommit',
        height: 1,
        round: 0,
        blockHash: hash,
        validator: identity.address,
        notBefore: 0,
        pq,
      },
      GENESIS_TIME + 10,
      identity.privateKey,
    );
    if (!pq) return vote;
    const message = precommitPqMessage(CHAIN_ID, vote) as Uint8Array;
    return { ...vote, pqSignature: await falcon.sign(message, identity.pqSecretKey) };
  };

  before(async () => {
    identities = (await makeIdentities(4)).sort((a, b) => (a.address < b.address ? -1 : 1));
    pqSet = createValidatorSet(
      identities.map((identity) => ({
        publicKey: identity.publicKey,
        power: 1,
        pqPublicKey: identity.pqPublicKey,
      })),
    );
    context = {
      chainId: CHAIN_ID,
      validators: pqSet,
      verifier: pqSignatureVerifier(falcon),
      requirePq: true,
    };
    hash = sha256(Uint8Array.of(7));
    pqDecided = {
      height: 1,
      round: 0,
      blockHash: hash,
      precommits: await Promise.all(identities.slice(0, 3).map((id) => sign(id, true))),
    };
  });

  it('adds an attested precommit and refuses one without or with a wrong attestation', async () => {
    const last = identities[3]!;
    const unattested = await sign(last, false);
    assert.equal(
      refused(addLatePrecommit(context, pqDecided, unattested)),
      MessageRejection.MISSING_PQ_SIGNATURE,
    );
    const other = await sign(identities[0]!, true);
    assert.equal(
      refused(
        addLatePrecommit(context, pqDecided, { ...unattested, pqSignature: other.pqSignature }),
      ),
      MessageRejection.BAD_PQ_SIGNATURE,
    );
    const extended = added(addLatePrecommit(context, pqDecided, await sign(last, true)));
    assert.equal(extended.precommits.length, 4);
    assert.equal(
      checkQuorumCertificate(context, extended, { height: 1, blockHash: hash }),
      undefined,
    );
  });
});

describe('late precommits: the cost of gathering at many validators', () => {
  // Counts every read of a held or offered precommit's signer: the gathering's comparisons and
  // duplicate look-ups, independent of the machine's speed.
  let reads = 0;
  function counted(vote: Vote): Vote {
    const { validator, ...rest } = vote;
    return Object.defineProperty(rest, 'validator', {
      enumerable: true,
      get: () => {
        reads++;
        return validator;
      },
    }) as Vote;
  }

  it('an offer reads O(log n) signers: no scan for a repeat, no re-sort per addition', () => {
    const n = 256;
    const many = makeValidators(Array<number>(n).fill(1), 13);
    let checks = 0;
    const context: VerificationContext = {
      chainId: CHAIN_ID,
      validators: many.set,
      verifier: {
        ed25519: (...args) => {
          checks++;
          return ed25519SignatureVerifier.ed25519(...args);
        },
      },
      requirePq: false,
    };
    const votes = many.validators.map((validator) =>
      counted(makeVote(validator, 'precommit', 1, 0, firstHash)),
    );
    // Two thirds decided (in address order, as the engine's commit); the rest arrive late, in
    // reverse address order (each lands at the front of what it must not re-sort).
    const decidedVotes = votes.filter((_, index) => index % 3 !== 0);
    const late = votes.filter((_, index) => index % 3 === 0).reverse();
    const gathering = new CommitGathering(context, commitOf(decidedVotes));
    const first = added(gathering.offer(late[0] as Vote));
    const log2 = Math.ceil(Math.log2(n + 1));
    // Checks, signing bytes and the Set take a few reads of the offered vote; the search log2 n.
    const perOffer = 2 * log2 + 16;
    let most = 0;
    for (const vote of late.slice(1)) {
      reads = 0;
      const result = gathering.offer(vote);
      most = Math.max(most, reads);
      assert.equal(result.added, true);
    }
    assert.ok(most <= perOffer, `an added precommit read ${most} signers (at most ${perOffer})`);
    most = 0;
    for (const vote of decidedVotes) {
      reads = 0;
      const result = gathering.offer(vote);
      most = Math.max(most, reads);
      assert.equal(refused(result), 'duplicate');
    }
    assert.ok(most <= 4, `a repeat read ${most} signers`);
    assert.equal(checks, late.length, 'one signature check per added precommit, none for repeats');
    // The same commit as adding them one by one and sorting: all n, in address order.
    assert.equal(gathering.added, late.length);
    assert.deepEqual(
      gathering.commit.precommits.map((vote) => vote.validator),
      many.validators.map((validator) => validator.address),
    );
    assert.equal(
      checkQuorumCertificate(context, gathering.commit, { height: 1, blockHash: firstHash }),
      undefined,
    );
    // Earlier commits are not changed by later additions.
    assert.equal(first.precommits.length, decidedVotes.length + 1);
  });
});
