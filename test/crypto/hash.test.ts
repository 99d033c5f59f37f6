import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { toHex } from '../../src/crypto/bytes.js';
import { sha256, sha512, taggedHash } from '../../src/crypto/hash.js';

const abc = new TextEncoder().encode('abc');

describe('hash', () => {
  it('computes SHA-256 and SHA-512 (FIPS 180-4 "abc" examples)', () => {
    assert.equal(
      toHex(sha256(abc)),
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    assert.equal(
      toHex(sha512(abc)),
      'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a' +
        '2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    );
  });

  it('pins the tagged-hash layout (computed independently with Python hashlib)', () => {
    assert.equal(
      toHex(taggedHash('hypermesh/test', 'hello', Uint8Array.of(1, 2, 3))),
      'bf283ecc8c361cbbd50a5bea3ef25e423a6534d91a035b4656ca9dc5d12558bb',
    );
    assert.equal(
      toHex(taggedHash('hypermesh/test')),
      'e54ae642de371073c2a4e563b1c3784ba8f64429ad803606bc81ed7cccfef3fa',
    );
  });

  it('treats string parts as UTF-8', () => {
    assert.deepEqual(taggedHash('t', 'é'), taggedHash('t', Uint8Array.of(0xc3, 0xa9)));
  });

  it('separates tags and part boundaries (property)', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.uint8Array({ maxLength: 32 }),
        fc.integer({ min: 0, max: 32 }),
        (tag, bytes, cut) => {
          const split = Math.min(cut, bytes.length);
          const whole = taggedHash(tag, bytes);
          const parts = taggedHash(tag, bytes.subarray(0, split), bytes.subarray(split));
          assert.notDeepEqual(whole, parts);
          assert.notDeepEqual(taggedHash(`${tag}x`, bytes), whole);
          assert.notDeepEqual(taggedHash(tag, bytes, new Uint8Array(0)), whole);
        },
      ),
    );
  });
});
