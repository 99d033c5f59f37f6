import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConsensusErrorCode } from '../../src/consensus/errors.js';
import { blockHash } from '../../src/consensus/messages.js';
import { checkSetHandover } from '../../src/consensus/set-handover.js';
import type { Block, QuorumCertificate } from '../../src/consensus/types.js';
import { createValidatorSet, type ValidatorSet } from '../../src/consensus/validator-set.js';
import { ed25519SignatureVerifier } from '../../src/consensus/verify.js';
import {
  CHAIN_ID,
  makeBlock,
  makeGenesis,
  makeValidators,
  makeVote,
  type TestValidator,
} from './sim/fixtures.js';

/**
 * The light-client rule a stateless verifier applies where the validator set changes: the new
 * set is accepted only from a block that names it, is committed by it, and is also signed by
 * more than 1/3 of the power of the set trusted before.
 */
const { validators } = makeValidators([1, 1, 1, 1, 1, 1, 1, 1], 11);
const pick = (indices: number[]): TestValidator[] => indices.map((i) => validators[i]!);
const setOf = (members: TestValidator[]): ValidatorSet =>
  createValidatorSet(members.map(({ publicKey, power }) => ({ publicKey, power })));

const trusted = setOf(pick([0, 1, 2, 3]));

/** A block decided by `set`, and a commit of it signed by `signers`. */
function decided(set: ValidatorSet, signers: TestValidator[]): [Block, QuorumCertificate] {
  const block = makeBlock(makeGenesis(set), set.validators[0]!.address, 7);
  const hash = blockHash(block.header);
  const precommits = signers
    .map((v) => makeVote(v, 'precommit', 1, 0, hash))
    .sort((a, b) => (a.validator < b.validator ? -1 : 1));
  return [block, { height: 1, round: 0, blockHash: hash, precommits }];
}

function check(next: ValidatorSet, block: Block, commit: QuorumCertificate) {
  return checkSetHandover({
    chainId: CHAIN_ID,
    requirePq: false,
    verifier: ed25519SignatureVerifier,
    trusted,
    next,
    block,
    commit,
  });
}

describe('validator-set handover (light-client rule)', () => {
  it('accepts a new set its block names, it commits, and > 1/3 of the trusted set signed', () => {
    // Two of four trusted validators stay (2/4 > 1/3), two join.
    const next = setOf(pick([2, 3, 4, 5]));
    const [block, commit] = decided(next, pick([2, 3, 4]));
    assert.equal(check(next, block, commit), undefined);
  });

  it('refuses a set the block does not name (a node lying about updates)', () => {
    const real = setOf(pick([2, 3, 4, 5]));
    const claimed = setOf(pick([2, 3, 4, 6]));
    const [block, commit] = decided(real, pick([2, 3, 4]));
    const error = check(claimed, block, commit);
    assert.equal(error?.code, ConsensusErrorCode.INVALID_VALIDATOR_SET);
    assert.equal(error.detail.reason, 'header-names-another-set');
  });

  it('refuses a commit without a quorum of the new set', () => {
    const next = setOf(pick([2, 3, 4, 5]));
    const [block, commit] = decided(next, pick([2, 3]));
    const error = check(next, block, commit);
    assert.equal(error?.detail.reason, 'commit-invalid');
    assert.match(error.message, /no more than 2\/3/);
  });

  it('refuses a block the trusted set does not vouch for, even when its own set committed it', () => {
    // A set of strangers (or a 3-of-4 replacement signed by one old validator: 1/4 ≤ 1/3).
    const strangers = setOf(pick([4, 5, 6, 7]));
    const [block, commit] = decided(strangers, pick([4, 5, 6, 7]));
    const error = check(strangers, block, commit);
    assert.equal(error?.detail.reason, 'trusted-power-too-low');
    assert.deepEqual([error.detail.vouching, error.detail.totalPower], [0, 4]);

    const mostlyNew = setOf(pick([3, 4, 5, 6]));
    const [other, otherCommit] = decided(mostlyNew, pick([3, 4, 5, 6]));
    assert.equal(check(mostlyNew, other, otherCommit)?.detail.reason, 'trusted-power-too-low');
  });
});
