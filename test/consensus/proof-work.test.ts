import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { taggedHash } from '../../src/crypto/hash.js';
import { ProofError, ProofErrorCode } from '../../src/consensus/proof/errors.js';
import {
  mintStamp,
  stampDigest,
  stampWork,
  verifyStamp,
} from '../../src/consensus/proof/hashcash.js';
import { leadingZeroBits, sha256, tagPrefix } from '../../src/consensus/proof/hashing.js';
import type { ProofHeader } from '../../src/consensus/proof/header.js';
import { transactionsRoot } from '../../src/consensus/proof/header.js';
import { WorkFailure } from '../../src/consensus/proof/verdict.js';
import type { WorkProof, WorkVerification } from '../../src/consensus/proof/work.js';
import { buildWorkProof, verifyWorkProof } from '../../src/consensus/proof/work.js';
import { stampedTransactions, toyStateRoot } from './proof-fixture.js';

const txHash = () => new Uint8Array(randomBytes(32));

function assertProofError(run: () => unknown, code: ProofErrorCode): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ProofError, `expected ProofError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

function assertWorkFailure(verdict: ReturnType<typeof verifyWorkProof>, reason: WorkFailure): void {
  assert.equal(verdict.ok, false, `expected ${reason}, the proof verified`);
  if (verdict.ok) return;
  assert.equal(verdict.part, 'work');
  assert.equal(verdict.reason, reason, verdict.message);
}

describe('PoWork: hashcash stamps', () => {
  it('hashes the documented layout: prefix(tag) || txHash || u64(nonce)', () => {
    const hash = txHash();
    const nonce = 2 ** 40 + 7;
    const input = new Uint8Array(104);
    input.set(tagPrefix('hypermesh/hashcash/stamp'), 0);
    input.set(hash, 64);
    new DataView(input.buffer).setBigUint64(96, BigInt(nonce));
    assert.deepEqual(stampDigest(hash, nonce), sha256(input));
  });

  it('mints the first nonce meeting the difficulty, and it verifies', () => {
    for (const difficulty of [0, 1, 4, 8, 12]) {
      const hash = txHash();
      const nonce = mintStamp(hash, difficulty);
      assert.ok(verifyStamp(hash, nonce, difficulty));
      assert.ok(stampWork(hash, nonce) >= difficulty);
      for (let smaller = 0; smaller < nonce; smaller++) {
        assert.ok(stampWork(hash, smaller) < difficulty, `nonce ${smaller} already had the work`);
      }
    }
    const hash = txHash();
    const start = 1_000_000;
    assert.ok(mintStamp(hash, 6, start) >= start);
  });

  it('rejects a stamp with insufficient work, and a stamp for another transaction', () => {
    const hash = txHash();
    const nonce = mintStamp(hash, 10);
    const work = stampWork(hash, nonce);
    assert.equal(verifyStamp(hash, nonce, work + 1), false);
    // A 10-bit stamp fits another hash only with probability 2^-10; look for a hash it misses.
    let other = txHash();
    while (verifyStamp(other, nonce, 10)) other = txHash();
    assert.equal(verifyStamp(other, nonce, 10), false);
  });

  it('never throws when verifying garbage, and refuses bad minting arguments', () => {
    const hash = txHash();
    assert.equal(verifyStamp(hash.subarray(1), 0, 0), false);
    assert.equal(verifyStamp(hash, -1, 0), false);
    assert.equal(verifyStamp(hash, 1.5, 0), false);
    assert.equal(verifyStamp(hash, 2 ** 53, 0), false);
    assert.equal(verifyStamp(hash, 0, -1), false);
    assert.equal(verifyStamp(hash, 0, 257), false);
    assert.equal(verifyStamp(null as unknown as Uint8Array, 0, 0), false);
    assertProofError(() => mintStamp(hash.subarray(1), 4), ProofErrorCode.INVALID_INPUT);
    assertProofError(() => mintStamp(hash, 41), ProofErrorCode.INVALID_INPUT);
    assertProofError(() => mintStamp(hash, 4, -1), ProofErrorCode.INVALID_INPUT);
    assertProofError(() => stampDigest(hash, 0.5), ProofErrorCode.INVALID_INPUT);
  });

  it('counts leading zero bits exactly (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 8 }), (bytes) => {
        const bits = [...bytes].map((b) => b.toString(2).padStart(8, '0')).join('');
        const expected = bits.indexOf('1') === -1 ? bits.length : bits.indexOf('1');
        assert.equal(leadingZeroBits(bytes), expected);
      }),
    );
  });

  it('a stamp verifies at every difficulty up to its work and none above (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.nat({ max: 2 ** 40 }),
        (hash, nonce) => {
          const work = stampWork(hash, nonce);
          assert.equal(verifyStamp(hash, nonce, work), true);
          assert.equal(verifyStamp(hash, nonce, work + 1), false);
        },
      ),
    );
  });
});

describe('PoWork: state transition and stamped transactions', () => {
  const difficulty = 6;
  const parentStateRoot = taggedHash('test/parent-state');
  const stamps = stampedTransactions(5, difficulty);
  const txHashes = stamps.map((s) => s.txHash);
  const header: ProofHeader = {
    chainId: 'work-test',
    height: 3,
    parentHash: new Uint8Array(32),
    transactionsRoot: transactionsRoot(txHashes),
    stateRoot: toyStateRoot(parentStateRoot, txHashes),
    validatorSetHash: new Uint8Array(32),
    proposer: new Uint8Array(32),
    proposerProofHash: new Uint8Array(32),
    extensionHash: new Uint8Array(32),
  };
  const work: WorkProof = buildWorkProof(stamps, { stampDifficulty: difficulty });
  const verification: WorkVerification = {
    header,
    params: { stampDifficulty: difficulty },
    reexecute: () => toyStateRoot(parentStateRoot, txHashes),
  };

  it('verifies the honest block', () => {
    assert.deepEqual(verifyWorkProof(work, verification), { ok: true });
  });

  it('rejects a state root that re-execution does not reproduce', () => {
    const lying = { ...header, stateRoot: taggedHash('test/other-state') };
    assertWorkFailure(
      verifyWorkProof(work, { ...verification, header: lying }),
      WorkFailure.STATE_ROOT_MISMATCH,
    );
    // Re-executing from another parent state gives another root too.
    assertWorkFailure(
      verifyWorkProof(work, {
        ...verification,
        reexecute: () => toyStateRoot(new Uint8Array(32), txHashes),
      }),
      WorkFailure.STATE_ROOT_MISMATCH,
    );
  });

  it('reports a failed or malformed re-execution', () => {
    assertWorkFailure(
      verifyWorkProof(work, {
        ...verification,
        reexecute: () => {
          throw new Error('transaction 2 spends more than the balance');
        },
      }),
      WorkFailure.REEXECUTION_FAILED,
    );
    assertWorkFailure(
      verifyWorkProof(work, { ...verification, reexecute: () => new Uint8Array(31) }),
      WorkFailure.REEXECUTION_FAILED,
    );
  });

  it('rejects a stamp with insufficient work', () => {
    const weakHash = txHash();
    let nonce = 0;
    while (verifyStamp(weakHash, nonce, difficulty)) nonce++;
    const weak = [...stamps.slice(0, 4), { txHash: weakHash, nonce }];
    const weakHeader = { ...header, transactionsRoot: transactionsRoot(weak.map((s) => s.txHash)) };
    assertWorkFailure(
      verifyWorkProof({ stamps: weak }, { ...verification, header: weakHeader }),
      WorkFailure.INSUFFICIENT_STAMP_WORK,
    );
    assertProofError(
      () => buildWorkProof(weak, { stampDifficulty: difficulty }),
      ProofErrorCode.INVALID_INPUT,
    );
    // The same stamps are not enough once the chain asks for more work.
    const hardest = Math.min(...stamps.map((s) => stampWork(s.txHash, s.nonce)));
    assertWorkFailure(
      verifyWorkProof(work, { ...verification, params: { stampDifficulty: hardest + 1 } }),
      WorkFailure.INSUFFICIENT_STAMP_WORK,
    );
  });

  it('rejects stamps that are not exactly the block’s transactions', () => {
    const variants: WorkProof[] = [
      { stamps: work.stamps.slice(1) },
      { stamps: [...work.stamps].reverse() },
      { stamps: [...work.stamps, ...stampedTransactions(1, difficulty)] },
    ];
    for (const variant of variants) {
      assertWorkFailure(
        verifyWorkProof(variant, verification),
        WorkFailure.TRANSACTIONS_ROOT_MISMATCH,
      );
    }
  });

  it('handles an empty block', () => {
    const empty: ProofHeader = {
      ...header,
      transactionsRoot: transactionsRoot([]),
      stateRoot: toyStateRoot(parentStateRoot, []),
    };
    assert.deepEqual(
      verifyWorkProof(
        { stamps: [] },
        { ...verification, header: empty, reexecute: () => toyStateRoot(parentStateRoot, []) },
      ),
      { ok: true },
    );
  });
});
