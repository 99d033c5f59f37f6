import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { leafHash, verifyInclusion } from '../../src/crypto/merkle.js';
import type { ProofAnchor } from '../../src/consensus/proof/anchor.js';
import { ProofError, ProofErrorCode } from '../../src/consensus/proof/errors.js';
import { leadingZeroBits, sha256, tagPrefix } from '../../src/consensus/proof/hashing.js';
import type { SpaceParams } from '../../src/consensus/proof/params.js';
import type { SpaceProof, SpaceVerification } from '../../src/consensus/proof/space.js';
import {
  buildSpaceProof,
  storageChallenges,
  verifySpaceProof,
} from '../../src/consensus/proof/space.js';
import {
  isStorageBlockOf,
  storageBlockBytes,
  StoragePlot,
} from '../../src/consensus/proof/storage-plot.js';
import { SpaceFailure } from '../../src/consensus/proof/verdict.js';

/** Small parameters so every check runs in milliseconds; each one still bites. */
const params: SpaceParams = {
  blockCount: 16,
  slotsPerBlock: 4,
  slotDifficulty: 6,
  challengeCount: 3,
};

function assertProofError(run: () => unknown, code: ProofErrorCode): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ProofError, `expected ProofError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

function assertSpaceFailure(
  verdict: ReturnType<typeof verifySpaceProof>,
  reason: SpaceFailure,
): void {
  assert.equal(verdict.ok, false, `expected ${reason}, the proof verified`);
  if (verdict.ok) return;
  assert.equal(verdict.part, 'space');
  assert.equal(verdict.reason, reason, verdict.message);
}

/** Independent slot check: the documented input layout, hashed with node:crypto. */
function slotHash(publicKey: Uint8Array, block: number, slot: number, nonce: number): Uint8Array {
  const input = new Uint8Array(108);
  const view = new DataView(input.buffer);
  input.set(tagPrefix('hypermesh/pospace/slot'), 0);
  input.set(publicKey, 64);
  view.setUint32(96, block);
  view.setUint32(100, slot);
  view.setUint32(104, nonce);
  return sha256(input);
}

describe('PoSpace: storage plot', () => {
  const { privateKey } = generateEd25519KeyPair();
  const publicKey = ed25519RawPublicKey(privateKey);
  let plot: StoragePlot;

  before(() => {
    plot = StoragePlot.build(publicKey, params);
  });

  it('derives each slot as the smallest nonce meeting the difficulty, per the documented layout', () => {
    for (const index of [0, 7, params.blockCount - 1]) {
      const block = plot.block(index);
      assert.equal(block.length, storageBlockBytes(params));
      const view = new DataView(block.buffer, block.byteOffset);
      for (let slot = 0; slot < params.slotsPerBlock; slot++) {
        const nonce = view.getUint32(slot * 4);
        assert.ok(
          leadingZeroBits(slotHash(publicKey, index, slot, nonce)) >= params.slotDifficulty,
        );
        for (let smaller = 0; smaller < nonce; smaller++) {
          assert.ok(
            leadingZeroBits(slotHash(publicKey, index, slot, smaller)) < params.slotDifficulty,
          );
        }
      }
    }
  });

  it('is deterministic per key and differs between keys', () => {
    assert.deepEqual(StoragePlot.build(publicKey, params).root, plot.root);
    const other = ed25519RawPublicKey(generateEd25519KeyPair().privateKey);
    assert.notDeepEqual(StoragePlot.build(other, params).root, plot.root);
  });

  it('answers with inclusion paths to its root', () => {
    for (let index = 0; index < params.blockCount; index++) {
      const answer = plot.answer(index);
      assert.ok(
        verifyInclusion(leafHash(answer.block), index, params.blockCount, answer.path, plot.root),
      );
    }
  });

  it('reloads from its data and refuses corrupted data', () => {
    const reloaded = StoragePlot.fromData(publicKey, params, plot.data);
    assert.deepEqual(reloaded.root, plot.root);
    // A flipped nonce bit still meets the slot difficulty by chance (2^-6 here), so flip the
    // first bit of block 0 whose flip the block check refuses: the test must not be a lottery.
    const corrupted = plot.data;
    const blockBytes = storageBlockBytes(params);
    let flipped = false;
    for (let bit = 0; bit < blockBytes * 8 && !flipped; bit++) {
      const candidate = corrupted.slice(0, blockBytes);
      candidate[bit >> 3] = (candidate[bit >> 3] as number) ^ (0x80 >> (bit & 7));
      if (!isStorageBlockOf(publicKey, 0, candidate, params)) {
        corrupted.set(candidate, 0);
        flipped = true;
      }
    }
    assert.ok(flipped);
    assertProofError(
      () => StoragePlot.fromData(publicKey, params, corrupted),
      ProofErrorCode.INVALID_INPUT,
    );
    assertProofError(
      () => StoragePlot.fromData(publicKey, params, plot.data.subarray(1)),
      ProofErrorCode.INVALID_INPUT,
    );
  });

  it('checks blocks against the key, the index and the difficulty', () => {
    const block = plot.block(3);
    assert.ok(isStorageBlockOf(publicKey, 3, block, params));
    const other = ed25519RawPublicKey(generateEd25519KeyPair().privateKey);
    // A valid block for another key or index passes only by chance (2^-d_s per slot).
    assert.equal(isStorageBlockOf(other, 3, block, { ...params, slotDifficulty: 16 }), false);
    assert.equal(isStorageBlockOf(publicKey, 3, block.subarray(1), params), false);
    assert.equal(isStorageBlockOf(publicKey, params.blockCount, block, params), false);
    assert.equal(isStorageBlockOf(publicKey.subarray(1), 3, block, params), false);
  });

  it('rejects bad arguments with typed errors', () => {
    assertProofError(
      () => StoragePlot.build(new Uint8Array(31), params),
      ProofErrorCode.INVALID_INPUT,
    );
    assertProofError(
      () => StoragePlot.build(publicKey, { ...params, slotDifficulty: 25 }),
      ProofErrorCode.INVALID_PARAMS,
    );
    assertProofError(
      () => StoragePlot.build(publicKey, { ...params, blockCount: 0 }),
      ProofErrorCode.INVALID_PARAMS,
    );
    assertProofError(() => plot.block(-1), ProofErrorCode.INVALID_INPUT);
    assertProofError(() => plot.block(1.5), ProofErrorCode.INVALID_INPUT);
  });
});

describe('PoSpace: challenge answers', () => {
  const proposerKeys = generateEd25519KeyPair();
  const proposer = ed25519RawPublicKey(proposerKeys.privateKey);
  const otherKeys = generateEd25519KeyPair();
  const other = ed25519RawPublicKey(otherKeys.privateKey);
  const anchor: ProofAnchor = {
    chainId: 'space-test',
    height: 9,
    parentHash: new Uint8Array(randomBytes(32)),
    previousProofOutput: new Uint8Array(randomBytes(32)),
    proposer,
  };
  let plot: StoragePlot;
  let honest: SpaceProof;
  let verification: SpaceVerification;

  before(() => {
    plot = StoragePlot.build(proposer, params);
    honest = buildSpaceProof({
      plot,
      anchor,
      address: 'stoq://proposer.test:9292',
      privateKey: proposerKeys.privateKey,
    });
    verification = { anchor, registeredRoot: plot.root, params };
  });

  it('derives k challenges in [0, N) from every anchor field', () => {
    const challenges = storageChallenges(anchor, params);
    assert.equal(challenges.length, params.challengeCount);
    for (const index of challenges) assert.ok(index >= 0 && index < params.blockCount);
    const wide: SpaceParams = { ...params, blockCount: 2 ** 20, challengeCount: 8 };
    const base = storageChallenges(anchor, wide);
    const variants: ProofAnchor[] = [
      { ...anchor, chainId: 'other' },
      { ...anchor, height: anchor.height + 1 },
      { ...anchor, parentHash: new Uint8Array(32) },
      { ...anchor, previousProofOutput: new Uint8Array(32) },
      { ...anchor, proposer: other },
    ];
    for (const variant of variants) assert.notDeepEqual(storageChallenges(variant, wide), base);
  });

  it('verifies the honest proof', () => {
    assert.deepEqual(verifySpaceProof(honest, verification), { ok: true });
    assert.deepEqual(
      honest.answers.map((answer) => answer.index),
      storageChallenges(anchor, params),
    );
  });

  it('rejects a proposer without a registered storage root', () => {
    assertSpaceFailure(
      verifySpaceProof(honest, { ...verification, registeredRoot: undefined }),
      SpaceFailure.NO_REGISTERED_COMMITMENT,
    );
  });

  it('rejects a commitment root that is not the registered one', () => {
    // The proposer answers from a plot it never registered: one built at a higher difficulty,
    // whose blocks are therefore valid at the chain's difficulty too.
    const unregistered = StoragePlot.build(proposer, { ...params, slotDifficulty: 7 });
    const forged = buildSpaceProof({
      plot: unregistered,
      anchor,
      address: 'stoq://proposer.test:9292',
      privateKey: proposerKeys.privateKey,
    });
    assertSpaceFailure(
      verifySpaceProof(forged, verification),
      SpaceFailure.UNREGISTERED_COMMITMENT,
    );
    // Claiming the registered root while answering from the other plot fails at the paths.
    const claimed = { ...forged, commitmentRoot: plot.root };
    const resigned = buildSpaceProof({
      plot,
      anchor,
      address: claimed.address,
      privateKey: proposerKeys.privateKey,
    });
    const mixed: SpaceProof = {
      ...claimed,
      addressSignature: resigned.addressSignature,
      answers: forged.answers,
    };
    assertSpaceFailure(verifySpaceProof(mixed, verification), SpaceFailure.INVALID_MERKLE_PATH);
  });

  it("rejects another validator's plot presented under the proposer's registration", () => {
    const otherPlot = StoragePlot.build(other, params);
    const forged: SpaceProof = {
      ...honest,
      answers: honest.answers.map((answer) => otherPlot.answer(answer.index)),
    };
    // Other key's blocks fail the slot check before their (valid, other-root) paths are used.
    const strict: SpaceParams = { ...params, slotDifficulty: 6 };
    assertSpaceFailure(
      verifySpaceProof(forged, { ...verification, params: strict }),
      SpaceFailure.BLOCK_NOT_DERIVED_FROM_KEY,
    );
  });

  it('rejects a wrong Merkle path', () => {
    for (const [j, answer] of honest.answers.entries()) {
      if (answer.path.length === 0) continue;
      const path = answer.path.map((hash) => hash.slice());
      (path[0] as Uint8Array)[0] = ((path[0] as Uint8Array)[0] as number) ^ 1;
      const answers = honest.answers.map((a, i) => (i === j ? { ...a, path } : a));
      assertSpaceFailure(
        verifySpaceProof({ ...honest, answers }, verification),
        SpaceFailure.INVALID_MERKLE_PATH,
      );
      const truncated = honest.answers.map((a, i) =>
        i === j ? { ...a, path: a.path.slice(1) } : a,
      );
      assertSpaceFailure(
        verifySpaceProof({ ...honest, answers: truncated }, verification),
        SpaceFailure.INVALID_MERKLE_PATH,
      );
    }
  });

  it('rejects an answer for a different challenge, even with a valid block and path', () => {
    const challenges = storageChallenges(anchor, params);
    const wrong = ((challenges[0] as number) + 1) % params.blockCount;
    const answers = [plot.answer(wrong), ...honest.answers.slice(1)];
    assertSpaceFailure(
      verifySpaceProof({ ...honest, answers }, verification),
      SpaceFailure.WRONG_CHALLENGE_INDEX,
    );
    // Relabelling the other block with the challenged index breaks the path instead.
    const relabelled = [
      { ...plot.answer(wrong), index: challenges[0] as number },
      ...answers.slice(1),
    ];
    const verdict = verifySpaceProof({ ...honest, answers: relabelled }, verification);
    assert.equal(verdict.ok, false);
  });

  it('rejects a block whose slot nonce does not meet the difficulty', () => {
    const answer = honest.answers[0];
    assert.ok(answer !== undefined);
    const view = new DataView(answer.block.buffer, answer.block.byteOffset);
    let nonce = view.getUint32(0) + 1;
    while (leadingZeroBits(slotHash(proposer, answer.index, 0, nonce)) >= params.slotDifficulty) {
      nonce++;
    }
    const block = answer.block.slice();
    new DataView(block.buffer).setUint32(0, nonce);
    const answers = [{ ...answer, block }, ...honest.answers.slice(1)];
    assertSpaceFailure(
      verifySpaceProof({ ...honest, answers }, verification),
      SpaceFailure.BLOCK_NOT_DERIVED_FROM_KEY,
    );
  });

  it('rejects missing, extra and malformed answers', () => {
    assertSpaceFailure(
      verifySpaceProof({ ...honest, answers: honest.answers.slice(1) }, verification),
      SpaceFailure.WRONG_CHALLENGE_COUNT,
    );
    assertSpaceFailure(
      verifySpaceProof({ ...honest, answers: [...honest.answers, plot.answer(0)] }, verification),
      SpaceFailure.WRONG_CHALLENGE_COUNT,
    );
    const first = honest.answers[0];
    assert.ok(first !== undefined);
    const short = [{ ...first, block: first.block.subarray(1) }, ...honest.answers.slice(1)];
    assertSpaceFailure(
      verifySpaceProof({ ...honest, answers: short }, verification),
      SpaceFailure.MALFORMED_BLOCK,
    );
  });

  it('rejects an address not signed by the proposer for this height', () => {
    assertSpaceFailure(
      verifySpaceProof({ ...honest, address: 'stoq://elsewhere.test:9292' }, verification),
      SpaceFailure.INVALID_ADDRESS_SIGNATURE,
    );
    assertSpaceFailure(
      verifySpaceProof(honest, { ...verification, anchor: { ...anchor, height: 10 } }),
      SpaceFailure.INVALID_ADDRESS_SIGNATURE,
    );
    const otherSigned = buildSpaceProof({
      plot: StoragePlot.build(other, params),
      anchor: { ...anchor, proposer: other },
      address: honest.address,
      privateKey: otherKeys.privateKey,
    });
    assertSpaceFailure(
      verifySpaceProof({ ...honest, addressSignature: otherSigned.addressSignature }, verification),
      SpaceFailure.INVALID_ADDRESS_SIGNATURE,
    );
  });

  it('refuses to build for another key, address or proposer', () => {
    assertProofError(
      () => buildSpaceProof({ plot, anchor, address: '', privateKey: proposerKeys.privateKey }),
      ProofErrorCode.INVALID_INPUT,
    );
    assertProofError(
      () => buildSpaceProof({ plot, anchor, address: 'a', privateKey: otherKeys.privateKey }),
      ProofErrorCode.INVALID_INPUT,
    );
    assertProofError(
      () =>
        buildSpaceProof({
          plot,
          anchor: { ...anchor, proposer: other },
          address: 'a',
          privateKey: proposerKeys.privateKey,
        }),
      ProofErrorCode.INVALID_INPUT,
    );
  });

  it('never throws on arbitrary answers (property)', () => {
    const answer = fc.record({
      index: fc.nat({ max: 2 ** 32 }),
      block: fc.uint8Array({ maxLength: 40 }),
      path: fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 8 }),
    });
    fc.assert(
      fc.property(fc.array(answer, { minLength: 0, maxLength: 5 }), (answers) => {
        const verdict = verifySpaceProof({ ...honest, answers }, verification);
        assert.equal(verdict.ok, false);
      }),
      { numRuns: 200 },
    );
  });
});
