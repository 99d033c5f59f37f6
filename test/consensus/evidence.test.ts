import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  canonicalEvidence,
  checkDuplicateVoteEvidence,
  duplicateVoteEvidence,
  evidenceKey,
} from '../../src/consensus/evidence.js';
import { storedEvidence } from '../../src/consensus/driver/block-checks.js';
import { encodeEvidence } from '../../src/consensus/wire.js';
import { ConsensusErrorCode } from '../../src/consensus/errors.js';
import type { DuplicateVoteEvidence } from '../../src/consensus/types.js';
import { ed25519SignatureVerifier, type VerificationContext } from '../../src/consensus/verify.js';
import { CHAIN_ID, makeValidators, makeVote } from './sim/fixtures.js';

describe('duplicate-vote evidence', () => {
  const { validators, set } = makeValidators([1, 1, 1, 1], 4);
  const [offender, other] = validators as [(typeof validators)[0], (typeof validators)[0]];
  const context: VerificationContext = {
    chainId: CHAIN_ID,
    validators: set,
    verifier: ed25519SignatureVerifier,
    requirePq: false,
  };
  const hashA = new Uint8Array(32).fill(1);
  const hashB = new Uint8Array(32).fill(2);
  const voteA = makeVote(offender, 'precommit', 3, 1, hashA);
  const voteB = makeVote(offender, 'precommit', 3, 1, hashB);

  it('orders the two votes canonically, whichever came first', () => {
    const one = duplicateVoteEvidence(voteA, voteB);
    const two = duplicateVoteEvidence(voteB, voteA);
    assert.equal(one.voteA, voteA);
    assert.equal(two.voteA, voteA);
    assert.equal(evidenceKey(one), `${offender.address}/3/1/precommit`);
    // nil sorts after block hashes.
    const withNil = duplicateVoteEvidence(makeVote(offender, 'precommit', 3, 1, null), voteA);
    assert.equal(withNil.voteA, voteA);
  });

  it('proves an equivocation at an earlier height', () => {
    assert.equal(
      checkDuplicateVoteEvidence(context, duplicateVoteEvidence(voteA, voteB), 4),
      undefined,
    );
  });

  it('refuses anything that is not proof', () => {
    const good = duplicateVoteEvidence(voteA, voteB);
    const cases: [DuplicateVoteEvidence, string][] = [
      [{ voteA, voteB: makeVote(other, 'precommit', 3, 1, hashB) }, 'one validator'],
      [{ voteA, voteB: makeVote(offender, 'prevote', 3, 1, hashB) }, 'one validator'],
      [{ voteA, voteB: makeVote(offender, 'precommit', 3, 2, hashB) }, 'one validator'],
      [{ voteA, voteB: makeVote(offender, 'precommit', 3, 1, hashA, 5) }, 'same value'],
      [{ voteA: good.voteB, voteB: good.voteA }, 'canonical order'],
      [{ ...good, voteB: { ...good.voteB, signature: new Uint8Array(64) } }, 'BAD_SIGNATURE'],
      [
        {
          voteA: { ...voteA, validator: 'ff'.repeat(20) },
          voteB: { ...voteB, validator: 'ff'.repeat(20) },
        },
        'UNKNOWN_VALIDATOR',
      ],
    ];
    for (const [evidence, fragment] of cases) {
      const error = checkDuplicateVoteEvidence(context, evidence, 4);
      assert.equal(error?.code, ConsensusErrorCode.INVALID_EVIDENCE, fragment);
      assert.match(error.message, new RegExp(fragment));
    }
    assert.match(checkDuplicateVoteEvidence(context, good, 3)?.message ?? '', /earlier height/);
  });

  it('refuses votes that are not well formed before comparing them, without throwing', () => {
    const cases: [unknown, unknown][] = [
      ['a', 'b'],
      [hashA, 'b'],
      [new Uint8Array(31), null],
      [7, null],
      [{ length: 32 }, hashB],
    ];
    for (const [a, b] of cases) {
      const evidence = {
        voteA: { ...voteA, blockHash: a },
        voteB: { ...voteB, blockHash: b },
      } as unknown as DuplicateVoteEvidence;
      const error = checkDuplicateVoteEvidence(context, evidence, 4);
      assert.equal(error?.code, ConsensusErrorCode.INVALID_EVIDENCE);
      assert.match(error.message, /not well formed/);
    }
    const noSignature = { voteA, voteB: { ...voteB, signature: 'signed' } };
    assert.match(
      checkDuplicateVoteEvidence(context, noSignature as unknown as DuplicateVoteEvidence, 4)
        ?.message ?? '',
      /not well formed/,
    );
  });

  it('drops FALCON signatures; evidence that carries them still proves, under one canonical form', () => {
    const pq = new Uint8Array(700).fill(7);
    const built = duplicateVoteEvidence(
      { ...voteA, pqSignature: pq },
      { ...voteB, pqSignature: pq },
    );
    assert.equal(built.voteA.pqSignature, undefined);
    assert.equal(built.voteB.pqSignature, undefined);
    assert.equal(checkDuplicateVoteEvidence(context, built, 4), undefined);
    // Earlier nodes put the signatures in, and anyone can change that unchecked field: such
    // evidence is still valid, and its canonical form is the same offence's.
    const withPq = { ...built, voteA: { ...built.voteA, pqSignature: pq } };
    const junk = { ...built, voteB: { ...built.voteB, pqSignature: new Uint8Array(1) } };
    for (const evidence of [withPq, junk]) {
      assert.equal(checkDuplicateVoteEvidence(context, evidence, 4), undefined);
      assert.deepEqual(encodeEvidence(canonicalEvidence(evidence)), encodeEvidence(built));
    }
    assert.notDeepEqual(storedEvidence(withPq).bytes, storedEvidence(junk).bytes);
    assert.deepEqual(storedEvidence(withPq).hash, storedEvidence(built).hash);
    assert.deepEqual(storedEvidence(junk).hash, storedEvidence(built).hash);
  });
});
