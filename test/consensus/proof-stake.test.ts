import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { ProofError, ProofErrorCode } from '../../src/consensus/proof/errors.js';
import type { ProofHeader } from '../../src/consensus/proof/header.js';
import { hashProofHeader } from '../../src/consensus/proof/header.js';
import type { StakeParams } from '../../src/consensus/proof/params.js';
import type { CommitSignature } from '../../src/consensus/proof/precommit.js';
import {
  attestPrecommit,
  precommitSignBytes,
  signPrecommit,
} from '../../src/consensus/proof/precommit.js';
import type {
  QuorumCertificate,
  StakeVerification,
} from '../../src/consensus/proof/quorum-certificate.js';
import {
  buildQuorumCertificate,
  verifyQuorumCertificate,
} from '../../src/consensus/proof/quorum-certificate.js';
import { StakeFailure } from '../../src/consensus/proof/verdict.js';
import type { ValidatorSet } from '../../src/consensus/proof/validators.js';
import { isQuorum, MAX_TOTAL_VOTING_POWER } from '../../src/consensus/proof/validators.js';
import type { TestChain } from './proof-fixture.js';
import { genesisParent, makeBlock, makeChain, TEST_PARAMS } from './proof-fixture.js';

const T0 = 1_700_000_001_000;

function assertStakeFailure(
  verdict: ReturnType<typeof verifyQuorumCertificate>,
  reason: StakeFailure,
): void {
  assert.equal(verdict.ok, false, `expected ${reason}, the certificate verified`);
  if (verdict.ok) return;
  assert.equal(verdict.part, 'stake');
  assert.equal(verdict.reason, reason, verdict.message);
}

function assertProofError(run: () => unknown, code: ProofErrorCode): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ProofError, `expected ProofError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

async function precommit(
  chain: TestChain,
  header: ProofHeader,
  position: number,
  round = 0,
  timestamp = T0 + position,
): Promise<CommitSignature> {
  const validator = chain.validators[position];
  assert.ok(validator !== undefined);
  const signature = signPrecommit(header, round, timestamp, validator.privateKey);
  if (validator.falcon === undefined) return signature;
  return attestPrecommit(signature, header, round, chain.falcon, validator.falcon.secretKey);
}

function certificate(header: ProofHeader, signatures: CommitSignature[], round = 0) {
  return { height: header.height, round, blockHash: hashProofHeader(header), signatures };
}

describe('PoStake: quorum certificate', () => {
  let chain: TestChain;
  let header: ProofHeader;
  let otherHeader: ProofHeader;
  let all: CommitSignature[];
  let verification: StakeVerification;

  before(async () => {
    chain = await makeChain([10, 10, 10, 10]);
    const block = await makeBlock(chain, { parent: genesisParent(chain) });
    const other = await makeBlock(chain, { parent: genesisParent(chain) });
    header = block.header;
    otherHeader = other.header;
    all = [];
    for (let i = 0; i < 4; i++) all.push(await precommit(chain, header, i));
    verification = {
      header,
      validators: chain.set,
      params: chain.params.stake,
      falcon: chain.falcon,
    };
  });

  it('verifies precommits of all, and of any 3 of 4 equal validators', () => {
    assert.deepEqual(verifyQuorumCertificate(certificate(header, all), verification), { ok: true });
    for (let skip = 0; skip < 4; skip++) {
      const three = all.filter((_, i) => i !== skip);
      assert.deepEqual(verifyQuorumCertificate(certificate(header, three), verification), {
        ok: true,
      });
    }
  });

  it('rejects 2 of 4 (exactly 1/2) and an empty certificate as insufficient power', () => {
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, all.slice(0, 2)), verification),
      StakeFailure.INSUFFICIENT_VOTING_POWER,
    );
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, []), verification),
      StakeFailure.INSUFFICIENT_VOTING_POWER,
    );
  });

  it('rejects a forged signature', () => {
    const forged = all.map((s, i) => {
      if (i !== 1) return s;
      const signature = s.signature.slice();
      signature[10] = (signature[10] as number) ^ 0x01;
      return { ...s, signature };
    });
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, forged), verification),
      StakeFailure.INVALID_SIGNATURE,
    );
    // Validator 2's signature claimed as validator 1's.
    const stolen = all.map((s, i) =>
      i === 1 ? { ...s, signature: (all[2] as CommitSignature).signature } : s,
    );
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, stolen), verification),
      StakeFailure.INVALID_SIGNATURE,
    );
    // A different timestamp than the one signed.
    const retimed = all.map((s, i) => (i === 0 ? { ...s, timestamp: s.timestamp + 1 } : s));
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, retimed), verification),
      StakeFailure.INVALID_SIGNATURE,
    );
  });

  it('rejects a duplicate signer, also when it would complete the quorum', () => {
    const duplicated = [all[0], all[1], all[1]] as CommitSignature[];
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, duplicated), verification),
      StakeFailure.DUPLICATE_SIGNER,
    );
    const twice = [all[0], all[0], all[1], all[2]] as CommitSignature[];
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, twice), verification),
      StakeFailure.DUPLICATE_SIGNER,
    );
  });

  it('rejects signers out of validator-set order', () => {
    const reordered = [all[1], all[0], all[2]] as CommitSignature[];
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, reordered), verification),
      StakeFailure.SIGNERS_OUT_OF_ORDER,
    );
  });

  it('rejects a signer outside the validator set', () => {
    const outsider = generateEd25519KeyPair().privateKey;
    const signatures = [...all.slice(0, 2), signPrecommit(header, 0, T0, outsider)];
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, signatures), verification),
      StakeFailure.UNKNOWN_VALIDATOR,
    );
  });

  it('rejects votes for another block, height or round', async () => {
    const forOther = await precommit(chain, otherHeader, 2);
    const mixed = [all[0], all[1], forOther] as CommitSignature[];
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, mixed), verification),
      StakeFailure.INVALID_SIGNATURE,
    );
    const laterRound = await precommit(chain, header, 2, 1);
    assertStakeFailure(
      verifyQuorumCertificate(
        certificate(header, [all[0], all[1], laterRound] as CommitSignature[]),
        verification,
      ),
      StakeFailure.INVALID_SIGNATURE,
    );
    // A hand-made vote at another height for the same block hash.
    const validator = chain.validators[2];
    assert.ok(validator !== undefined);
    const otherHeight = signPrecommit(
      { ...header, height: header.height + 1 },
      0,
      T0,
      validator.privateKey,
    );
    const atOtherHeight: CommitSignature = {
      ...(all[2] as CommitSignature),
      signature: otherHeight.signature,
    };
    assertStakeFailure(
      verifyQuorumCertificate(
        certificate(header, [all[0], all[1], atOtherHeight] as CommitSignature[]),
        verification,
      ),
      StakeFailure.INVALID_SIGNATURE,
    );
    // Whole certificates for another block or height.
    assertStakeFailure(
      verifyQuorumCertificate(
        { ...certificate(header, all), blockHash: hashProofHeader(otherHeader) },
        verification,
      ),
      StakeFailure.WRONG_BLOCK,
    );
    assertStakeFailure(
      verifyQuorumCertificate(certificate(otherHeader, all), verification),
      StakeFailure.WRONG_BLOCK,
    );
    assertStakeFailure(
      verifyQuorumCertificate(
        { ...certificate(header, all), height: header.height + 1 },
        verification,
      ),
      StakeFailure.WRONG_HEIGHT,
    );
  });

  it('rejects a validator set that is not the header’s', () => {
    const reweighted: ValidatorSet = chain.set.map((v, i) =>
      i === 0 ? { ...v, votingPower: 100 } : v,
    );
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, all), {
        ...verification,
        validators: reweighted,
      }),
      StakeFailure.VALIDATOR_SET_MISMATCH,
    );
  });

  it('requires a valid FALCON-1024 attestation on every counted precommit', async () => {
    const stripped = all.map((s, i) => {
      if (i !== 3) return s;
      const { falcon: _falcon, ...rest } = s;
      return rest;
    });
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, stripped), verification),
      StakeFailure.MISSING_FALCON_ATTESTATION,
    );
    const flipped = all.map((s, i) => {
      if (i !== 0 || s.falcon === undefined) return s;
      const signature = s.falcon.signature.slice();
      signature[60] = (signature[60] as number) ^ 0x04;
      return { ...s, falcon: { ...s.falcon, signature } };
    });
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, flipped), verification),
      StakeFailure.INVALID_FALCON_ATTESTATION,
    );
    // Validator 1's attestation moved onto validator 0's precommit.
    const moved = all.map((s, i) =>
      i === 0 ? { ...s, falcon: (all[1] as CommitSignature).falcon } : s,
    );
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, moved), verification),
      StakeFailure.INVALID_FALCON_ATTESTATION,
    );
    // An attestation of another header on an Ed25519 precommit of this one.
    const otherAttested = await precommit(chain, otherHeader, 0, 0, T0);
    const crossed = all.map((s, i) => (i === 0 ? { ...s, falcon: otherAttested.falcon } : s));
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, crossed), verification),
      StakeFailure.INVALID_FALCON_ATTESTATION,
    );
  });

  it('checks attestations that are present even when they are not required', () => {
    const optional: StakeParams = { requireFalconAttestations: false };
    const stripped = all.map((s) => {
      const { falcon: _falcon, ...rest } = s;
      return rest;
    });
    assert.deepEqual(
      verifyQuorumCertificate(certificate(header, stripped), { ...verification, params: optional }),
      { ok: true },
    );
    const badOne = all.map((s, i) => {
      if (i !== 2 || s.falcon === undefined) return s;
      return { ...s, falcon: { ...s.falcon, signature: s.falcon.signature.subarray(0, 100) } };
    });
    assertStakeFailure(
      verifyQuorumCertificate(certificate(header, badOne), { ...verification, params: optional }),
      StakeFailure.INVALID_FALCON_ATTESTATION,
    );
    const { falcon: _falcon, ...withoutBackend } = verification;
    assertProofError(
      () => verifyQuorumCertificate(certificate(header, all), withoutBackend),
      ProofErrorCode.INVALID_INPUT,
    );
  });

  it('builds a certificate: one per signer, in set order, verified, with a quorum', () => {
    const collected = [all[3], all[1], all[3], all[0]] as CommitSignature[];
    const qc: QuorumCertificate = buildQuorumCertificate({
      header,
      round: 0,
      validators: chain.set,
      signatures: collected,
      params: chain.params.stake,
      falcon: chain.falcon,
    });
    assert.deepEqual(
      qc.signatures.map((s) => s.validator),
      [all[0], all[1], all[3]].map((s) => (s as CommitSignature).validator),
    );
    assert.deepEqual(verifyQuorumCertificate(qc, verification), { ok: true });
    const input = {
      header,
      round: 0,
      validators: chain.set,
      params: chain.params.stake,
      falcon: chain.falcon,
    };
    assertProofError(
      () => buildQuorumCertificate({ ...input, signatures: all.slice(0, 2) }),
      ProofErrorCode.NO_QUORUM,
    );
    const outsider = signPrecommit(header, 0, T0, generateEd25519KeyPair().privateKey);
    assertProofError(
      () => buildQuorumCertificate({ ...input, signatures: [...all, outsider] }),
      ProofErrorCode.INVALID_INPUT,
    );
    const bad = { ...(all[0] as CommitSignature), signature: new Uint8Array(64) };
    assertProofError(
      () => buildQuorumCertificate({ ...input, signatures: [bad, ...all.slice(1)] }),
      ProofErrorCode.INVALID_INPUT,
    );
  });

  it('signs canonical vote bytes and refuses bad rounds and timestamps', () => {
    const validator = chain.validators[0];
    assert.ok(validator !== undefined);
    const bytes = precommitSignBytes({
      chainId: header.chainId,
      height: header.height,
      round: 0,
      blockHash: hashProofHeader(header),
      timestamp: T0,
    });
    assert.deepEqual(
      bytes,
      precommitSignBytes({
        chainId: header.chainId,
        height: header.height,
        round: 0,
        blockHash: hashProofHeader(header),
        timestamp: T0,
      }),
    );
    assertProofError(
      () => signPrecommit(header, -1, T0, validator.privateKey),
      ProofErrorCode.INVALID_INPUT,
    );
    assertProofError(
      () => signPrecommit(header, 0, 1.5, validator.privateKey),
      ProofErrorCode.INVALID_INPUT,
    );
  });
});

describe('PoStake: voting power', () => {
  it('counts power, not heads: strictly more than 2/3 of the total', async () => {
    const params = { ...TEST_PARAMS, stake: { requireFalconAttestations: false } };
    const chain = await makeChain([5, 1, 1, 1, 1], params);
    const { header } = await makeBlock(chain, { parent: genesisParent(chain) });
    const signatures = await Promise.all([0, 1, 2, 3, 4].map((i) => precommit(chain, header, i)));
    const verification: StakeVerification = {
      header,
      validators: chain.set,
      params: params.stake,
    };
    const pick = (positions: number[]) =>
      certificate(
        header,
        positions.map((i) => signatures[i] as CommitSignature),
      );
    // 6 of 9 is exactly 2/3: not enough. 4 heads of 5 without the heavy validator: 4/9.
    assertStakeFailure(
      verifyQuorumCertificate(pick([0, 1]), verification),
      StakeFailure.INSUFFICIENT_VOTING_POWER,
    );
    assertStakeFailure(
      verifyQuorumCertificate(pick([1, 2, 3, 4]), verification),
      StakeFailure.INSUFFICIENT_VOTING_POWER,
    );
    assert.deepEqual(verifyQuorumCertificate(pick([0, 1, 2]), verification), { ok: true });
  });

  it('decides the threshold exactly up to the largest total', () => {
    assert.equal(isQuorum(2, 3), false);
    assert.equal(isQuorum(3, 4), true);
    const total = MAX_TOTAL_VOTING_POWER;
    const twoThirds = Math.floor((2 * total) / 3);
    assert.equal(isQuorum(twoThirds, total), false);
    assert.equal(isQuorum(twoThirds + 1, total), true);
  });
});
