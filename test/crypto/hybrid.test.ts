import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { decodeStrict, encodeCanonical } from '../../src/codec/cbor.js';
import { concatBytes } from '../../src/crypto/bytes.js';
import { isHyperMeshError } from '../../src/codec/error.js';
import { createFalcon } from '../../src/crypto/falcon.js';
import type { ClassicalAlgorithm, HybridKeyPair } from '../../src/crypto/hybrid.js';
import {
  HybridErrorCode,
  decodeHybridSignature,
  encodeHybridSignature,
  generateHybridKeyPair,
  hybridSignedPayload,
  signHybrid,
  verifyHybrid,
} from '../../src/crypto/hybrid.js';

const falcon = createFalcon('pqclean');
const noble = createFalcon('noble');
const context = 'hypermesh/test';
const message = new TextEncoder().encode('block 42 merkle root');

function flipLastByte(bytes: Uint8Array): Uint8Array {
  const copy = bytes.slice();
  copy[copy.length - 1] = (copy[copy.length - 1] ?? 0) ^ 0x01;
  return copy;
}

const hybridError = (code: HybridErrorCode) => (error: unknown) => isHyperMeshError(error, code);

describe('hybrid signatures', () => {
  const pairs = new Map<ClassicalAlgorithm, HybridKeyPair>();
  const signatures = new Map<ClassicalAlgorithm, Uint8Array>();

  before(async () => {
    for (const alg of ['ed25519', 'ecdsa-p256-sha256'] as const) {
      const pair = await generateHybridKeyPair(alg, falcon);
      pairs.set(alg, pair);
      signatures.set(alg, await signHybrid(message, pair.signingKey, { context, falcon }));
    }
  });

  const fixture = (alg: ClassicalAlgorithm): { pair: HybridKeyPair; signature: Uint8Array } => {
    const pair = pairs.get(alg);
    const signature = signatures.get(alg);
    assert.ok(pair && signature);
    return { pair, signature };
  };

  for (const alg of ['ed25519', 'ecdsa-p256-sha256'] as const) {
    it(`${alg}: both halves valid → true, in either FALCON backend`, () => {
      const { pair, signature } = fixture(alg);
      const decoded = decodeHybridSignature(signature);
      assert.deepEqual(decoded.alg, [alg, 'falcon-1024-r3']);
      assert.equal(decoded.sigs[0].length, 64);
      assert.equal(verifyHybrid(signature, message, pair.publicKey, { context, falcon }), true);
      assert.equal(
        verifyHybrid(signature, message, pair.publicKey, { context, falcon: noble }),
        true,
      );
      assert.equal(verifyHybrid(signature, message, pair.publicKey, { context }), true);
    });

    it(`${alg}: either half broken → false`, () => {
      const { pair, signature } = fixture(alg);
      const { v, alg: tags, sigs } = decodeHybridSignature(signature);
      const brokenClassical = encodeHybridSignature({
        v,
        alg: tags,
        sigs: [flipLastByte(sigs[0]), sigs[1]],
      });
      const brokenFalcon = encodeHybridSignature({
        v,
        alg: tags,
        sigs: [sigs[0], flipLastByte(sigs[1])],
      });
      const emptyFalcon = encodeHybridSignature({
        v,
        alg: tags,
        sigs: [sigs[0], new Uint8Array(0)],
      });
      for (const bad of [brokenClassical, brokenFalcon, emptyFalcon]) {
        assert.equal(verifyHybrid(bad, message, pair.publicKey, { context, falcon }), false);
      }
      const otherFalcon = {
        ...pair.publicKey,
        falcon: fixture(alg === 'ed25519' ? 'ecdsa-p256-sha256' : 'ed25519').pair.publicKey.falcon,
      };
      assert.equal(verifyHybrid(signature, message, otherFalcon, { context, falcon }), false);
    });

    it(`${alg}: another message or context → false`, () => {
      const { pair, signature } = fixture(alg);
      assert.equal(
        verifyHybrid(signature, flipLastByte(message), pair.publicKey, { context, falcon }),
        false,
      );
      assert.equal(
        verifyHybrid(signature, message, pair.publicKey, { context: 'other', falcon }),
        false,
      );
    });
  }

  it('re-tagging the classical algorithm → false', async () => {
    const { pair: ed, signature } = fixture('ed25519');
    const { pair: p256 } = fixture('ecdsa-p256-sha256');
    const { sigs } = decodeHybridSignature(signature);
    const retagged = encodeHybridSignature({
      v: 1,
      alg: ['ecdsa-p256-sha256', 'falcon-1024-r3'],
      sigs,
    });
    assert.equal(verifyHybrid(retagged, message, ed.publicKey, { context, falcon }), false);
    // Even with the FALCON key swapped into a P-256 hybrid key, the FALCON half signed the
    // Ed25519 tag, so it cannot be reused under the P-256 tag.
    const mixed = { classical: p256.publicKey.classical, falcon: ed.publicKey.falcon };
    const p256Half = decodeHybridSignature(
      await signHybrid(
        message,
        { classical: p256.signingKey.classical, falcon: ed.signingKey.falcon },
        { context, falcon },
      ),
    ).sigs[0];
    const spliced = encodeHybridSignature({
      v: 1,
      alg: ['ecdsa-p256-sha256', 'falcon-1024-r3'],
      sigs: [p256Half, sigs[1]],
    });
    assert.equal(verifyHybrid(spliced, message, mixed, { context, falcon }), false);
  });

  it('a stripped half does not verify as a plain signature of the message', () => {
    const { pair, signature } = fixture('ed25519');
    const { sigs } = decodeHybridSignature(signature);
    assert.equal(falcon.verify(sigs[1], message, pair.publicKey.falcon), false);
    const payload = hybridSignedPayload(context, ['ed25519', 'falcon-1024-r3'], message);
    assert.equal(falcon.verify(sigs[1], payload, pair.publicKey.falcon), true, 'control case');
  });

  it('rejects malformed encodings with typed errors', () => {
    const { pair, signature } = fixture('ed25519');
    const { sigs } = decodeHybridSignature(signature);
    const verify = (bytes: Uint8Array) => () =>
      verifyHybrid(bytes, message, pair.publicKey, { context, falcon });
    assert.deepEqual([...signature.subarray(0, 4)], [0xa3, 0x61, 0x76, 0x01]);
    const longVersion = Uint8Array.from([0xa3, 0x61, 0x76, 0x18, 0x01, ...signature.subarray(4)]);
    const unsorted = concatBytes(
      Uint8Array.of(0xa3),
      ...['sigs', sigs, 'alg', ['ed25519', 'falcon-1024-r3'], 'v', 1].map((item) =>
        encodeCanonical(item),
      ),
    );
    assert.equal(
      verifyHybrid(encodeCanonical(decodeStrict(unsorted)), message, pair.publicKey, {
        context,
        falcon,
      }),
      true,
    );
    const cases: Array<[string, Uint8Array, HybridErrorCode]> = [
      ['not CBOR', Uint8Array.of(0xff, 0x00), HybridErrorCode.MALFORMED],
      ['trailing byte', Uint8Array.from([...signature, 0]), HybridErrorCode.MALFORMED],
      ['truncated', signature.subarray(0, signature.length - 5), HybridErrorCode.MALFORMED],
      ['array, not map', encodeCanonical([1, 2]), HybridErrorCode.MALFORMED],
      [
        'no version',
        encodeCanonical({ alg: ['ed25519', 'falcon-1024-r3'], sigs }),
        HybridErrorCode.MALFORMED,
      ],
      [
        'version 2',
        encodeCanonical({ v: 2, alg: ['ed25519', 'falcon-1024-r3'], sigs }),
        HybridErrorCode.UNSUPPORTED_VERSION,
      ],
      [
        'version "1"',
        encodeCanonical({ v: '1', alg: ['ed25519', 'falcon-1024-r3'], sigs }),
        HybridErrorCode.UNSUPPORTED_VERSION,
      ],
      [
        'unknown classical',
        encodeCanonical({ v: 1, alg: ['rsa', 'falcon-1024-r3'], sigs }),
        HybridErrorCode.UNSUPPORTED_ALGORITHM,
      ],
      [
        'unknown PQ',
        encodeCanonical({ v: 1, alg: ['ed25519', 'falcon-1024'], sigs }),
        HybridErrorCode.UNSUPPORTED_ALGORITHM,
      ],
      [
        'extra field',
        encodeCanonical({ v: 1, alg: ['ed25519', 'falcon-1024-r3'], sigs, x: 0 }),
        HybridErrorCode.MALFORMED,
      ],
      [
        'three sigs',
        encodeCanonical({ v: 1, alg: ['ed25519', 'falcon-1024-r3'], sigs: [...sigs, sigs[0]] }),
        HybridErrorCode.MALFORMED,
      ],
      [
        'sig as string',
        encodeCanonical({ v: 1, alg: ['ed25519', 'falcon-1024-r3'], sigs: ['a', sigs[1]] }),
        HybridErrorCode.MALFORMED,
      ],
      // cborg's strict decoder already refuses non-shortest integers.
      ['non-shortest integer', longVersion, HybridErrorCode.MALFORMED],
      // The same map with keys in reverse order, not RFC 8949 §4.2.1 bytewise order.
      ['unsorted map keys', unsorted, HybridErrorCode.NOT_CANONICAL],
    ];
    for (const [name, bytes, code] of cases) {
      assert.throws(verify(bytes), hybridError(code), name);
    }
  });

  it('rejects an empty context', async () => {
    const { pair, signature } = fixture('ed25519');
    assert.throws(
      () => verifyHybrid(signature, message, pair.publicKey, { context: '', falcon }),
      hybridError(HybridErrorCode.INVALID_CONTEXT),
    );
    await assert.rejects(
      signHybrid(message, pair.signingKey, { context: '', falcon }),
      hybridError(HybridErrorCode.INVALID_CONTEXT),
    );
  });
});
