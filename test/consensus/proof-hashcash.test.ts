import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ProofError, ProofErrorCode } from '../../src/consensus/proof/errors.js';
import {
  mintStamp,
  stampDigest,
  stampWork,
  verifyStamp,
} from '../../src/consensus/proof/hashcash.js';
import { leadingZeroBits, sha256, tagPrefix } from '../../src/consensus/proof/hashing.js';

const txHash = () => new Uint8Array(randomBytes(32));

function assertProofError(run: () => unknown, code: ProofErrorCode): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ProofError, `expected ProofError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
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
