import assert from 'node:assert/strict';
import { createVerify, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isHyperMeshError } from '../../src/codec/error.js';
import { concatBytes, fromHex } from '../../src/crypto/bytes.js';
import { generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import {
  P256ErrorCode,
  generateP256KeyPair,
  p256KeyPairFromRaw,
  p256PrivateKeyFromPkcs8Der,
  p256PrivateKeyFromPkcs8Pem,
  p256PrivateKeyFromRaw,
  p256PrivateKeyToPkcs8Der,
  p256PrivateKeyToPkcs8Pem,
  p256PublicKeyFromRaw,
  p256PublicKeyFromSpkiDer,
  p256PublicKeyToSpkiDer,
  p256PublicKeyToSpkiPem,
  p256RawPrivateKey,
  p256RawPublicKey,
  p256Sign,
  p256Verify,
} from '../../src/crypto/p256.js';

/** Group order n of P-256 (FIPS 186-5 / SEC 2 §2.4.2). */
const ORDER = fromHex('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

const isP256Error = (code: P256ErrorCode) => (error: unknown) => isHyperMeshError(error, code);

describe('ECDSA P-256', () => {
  it('round-trips raw keys', () => {
    const keys = generateP256KeyPair();
    const raw = p256RawPublicKey(keys.publicKey);
    const d = p256RawPrivateKey(keys.privateKey);
    assert.equal(raw.length, 65);
    assert.equal(raw[0], 0x04);
    assert.equal(d.length, 32);
    assert.deepEqual(p256RawPublicKey(p256PublicKeyFromRaw(raw)), raw);
    assert.deepEqual(p256RawPrivateKey(p256PrivateKeyFromRaw(d)), d);
    assert.deepEqual(p256RawPublicKey(p256KeyPairFromRaw(d).publicKey), raw);
    assert.deepEqual(p256RawPublicKey(keys.privateKey), raw);
  });

  it('signs 64-byte IEEE P1363 signatures that verify, and only for that message (property)', () => {
    const keys = generateP256KeyPair();
    const other = generateP256KeyPair();
    const raw = p256RawPublicKey(keys.publicKey);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), fc.nat(), (message, position) => {
        const signature = p256Sign(message, keys.privateKey);
        assert.equal(signature.length, 64);
        assert.equal(p256Verify(signature, message, keys.publicKey), true);
        assert.equal(p256Verify(signature, message, raw), true);
        assert.equal(p256Verify(signature, message, other.publicKey), false);
        const bad = signature.slice();
        const index = position % bad.length;
        bad[index] = (bad[index] ?? 0) ^ 0x80;
        assert.equal(p256Verify(bad, message, keys.publicKey), false);
        assert.equal(p256Verify(signature, concatBytes(message, Uint8Array.of(1)), raw), false);
      }),
      { numRuns: 50 },
    );
  });

  it('signatures are checkable by a plain node:crypto verifier in P1363 mode', () => {
    const keys = generateP256KeyPair();
    const message = new TextEncoder().encode('interop');
    const signature = p256Sign(message, keys.privateKey);
    const verifier = createVerify('sha256').update(message);
    assert.equal(
      verifier.verify({ key: keys.publicKey, dsaEncoding: 'ieee-p1363' }, signature),
      true,
    );
  });

  it('returns false for garbage, never throws', () => {
    const keys = generateP256KeyPair();
    const message = Uint8Array.of(1);
    const signature = p256Sign(message, keys.privateKey);
    const offCurve = p256RawPublicKey(keys.publicKey);
    offCurve[64] = (offCurve[64] ?? 0) ^ 1;
    const cases: Array<[string, unknown, unknown, unknown]> = [
      ['DER-length signature', new Uint8Array(70), message, keys.publicKey],
      ['random signature', new Uint8Array(randomBytes(64)), message, keys.publicKey],
      ['zero signature', new Uint8Array(64), message, keys.publicKey],
      ['point off the curve', signature, message, offCurve],
      ['short raw key', signature, message, new Uint8Array(64)],
      ['Ed25519 key', signature, message, generateEd25519KeyPair().publicKey],
      ['private key object', signature, message, keys.privateKey],
      ['signature not bytes', [1, 2], message, keys.publicKey],
    ];
    for (const [name, sig, msg, key] of cases) {
      let result: boolean | undefined;
      assert.doesNotThrow(() => {
        result = p256Verify(sig as Uint8Array, msg as Uint8Array, key as Uint8Array);
      }, name);
      assert.equal(result, false, name);
    }
    assert.equal(p256Verify(signature, message, keys.publicKey), true, 'control case');
  });

  it('converts to and from SPKI and PKCS#8', () => {
    const keys = generateP256KeyPair();
    const spki = p256PublicKeyToSpkiDer(keys.publicKey);
    assert.equal(spki.length, 91);
    assert.deepEqual(
      p256RawPublicKey(p256PublicKeyFromSpkiDer(spki)),
      p256RawPublicKey(keys.publicKey),
    );
    const d = p256RawPrivateKey(keys.privateKey);
    assert.deepEqual(
      p256RawPrivateKey(p256PrivateKeyFromPkcs8Der(p256PrivateKeyToPkcs8Der(keys.privateKey))),
      d,
    );
    const pem = p256PrivateKeyToPkcs8Pem(keys.privateKey);
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.deepEqual(p256RawPrivateKey(p256PrivateKeyFromPkcs8Pem(pem)), d);
    assert.match(p256PublicKeyToSpkiPem(keys.publicKey), /^-----BEGIN PUBLIC KEY-----\n/);
  });

  it('rejects invalid keys and keys of other types with typed errors', () => {
    const invalidPublic = isP256Error(P256ErrorCode.INVALID_PUBLIC_KEY);
    const invalidPrivate = isP256Error(P256ErrorCode.INVALID_PRIVATE_KEY);
    const ed = generateEd25519KeyPair();
    const offCurve = p256RawPublicKey(generateP256KeyPair().publicKey);
    offCurve[40] = (offCurve[40] ?? 0) ^ 1;
    assert.throws(() => p256PublicKeyFromRaw(offCurve), invalidPublic);
    const compressed = new Uint8Array(65);
    compressed[0] = 0x02;
    assert.throws(() => p256PublicKeyFromRaw(compressed), invalidPublic);
    assert.throws(
      () =>
        p256PublicKeyFromSpkiDer(
          new Uint8Array(ed.publicKey.export({ format: 'der', type: 'spki' })),
        ),
      invalidPublic,
    );
    assert.throws(() => p256PublicKeyFromSpkiDer(Uint8Array.of(1, 2, 3)), invalidPublic);
    assert.throws(() => p256PrivateKeyFromRaw(new Uint8Array(32)), invalidPrivate, 'd = 0');
    assert.throws(() => p256PrivateKeyFromRaw(ORDER), invalidPrivate, 'd = n');
    assert.throws(() => p256PrivateKeyFromRaw(new Uint8Array(31)), invalidPrivate);
    assert.throws(
      () =>
        p256PrivateKeyFromPkcs8Pem(
          ed.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
        ),
      invalidPrivate,
    );
    assert.throws(() => p256PrivateKeyFromPkcs8Der(Uint8Array.of(0x30, 0)), invalidPrivate);
    assert.throws(() => p256PrivateKeyFromPkcs8Pem('garbage'), invalidPrivate);
    assert.throws(() => p256Sign(Uint8Array.of(1), ed.privateKey), invalidPrivate);
  });
});
