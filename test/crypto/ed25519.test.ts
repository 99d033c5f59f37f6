import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, verify as opensslVerify } from 'node:crypto';
import { describe, it } from 'node:test';
import { ed25519 as nobleEd25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import sodium from 'sodium-native';
import { isHyperMeshError } from '../../src/codec/error.js';
import { concatBytes, fromHex, toHex } from '../../src/crypto/bytes.js';
import {
  Ed25519ErrorCode,
  ed25519KeyPairFromSeed,
  ed25519Libp2pPrivateKeyProto,
  ed25519Libp2pPublicKeyProto,
  ed25519PrivateKeyFromPkcs8Pem,
  ed25519PrivateKeyFromSeed,
  ed25519PrivateKeyToPkcs8Der,
  ed25519PrivateKeyToPkcs8Pem,
  ed25519PublicKeyFromLibp2pProto,
  ed25519PublicKeyFromRaw,
  ed25519PublicKeyFromSpkiDer,
  ed25519PublicKeyToSpkiDer,
  ed25519PublicKeyToSpkiPem,
  ed25519RawPublicKey,
  ed25519Seed,
  ed25519Sign,
  ed25519Verify,
  generateEd25519KeyPair,
  isSmallOrderEd25519Key,
} from '../../src/crypto/ed25519.js';

/** RFC 8032 §7.1, TEST 1 and TEST 2. */
const rfc8032 = [
  {
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
];

const isEd25519Error = (code: Ed25519ErrorCode) => (error: unknown) =>
  isHyperMeshError(error, code);

describe('Ed25519', () => {
  it('matches the RFC 8032 test vectors', () => {
    for (const vector of rfc8032) {
      const keys = ed25519KeyPairFromSeed(fromHex(vector.seed));
      assert.equal(toHex(ed25519RawPublicKey(keys.publicKey)), vector.publicKey);
      assert.equal(toHex(ed25519RawPublicKey(keys.privateKey)), vector.publicKey);
      const signature = ed25519Sign(fromHex(vector.message), keys.privateKey);
      assert.equal(toHex(signature), vector.signature);
      assert.equal(
        ed25519Verify(signature, fromHex(vector.message), fromHex(vector.publicKey)),
        true,
      );
    }
  });

  it('round-trips raw public keys and seeds', () => {
    const keys = generateEd25519KeyPair();
    const raw = ed25519RawPublicKey(keys.publicKey);
    const seed = ed25519Seed(keys.privateKey);
    assert.equal(raw.length, 32);
    assert.equal(seed.length, 32);
    assert.deepEqual(ed25519RawPublicKey(ed25519PublicKeyFromRaw(raw)), raw);
    assert.deepEqual(ed25519Seed(ed25519PrivateKeyFromSeed(seed)), seed);
    assert.deepEqual(ed25519RawPublicKey(ed25519KeyPairFromSeed(seed).publicKey), raw);
  });

  it('signs and verifies arbitrary messages; any change fails (property)', () => {
    const keys = generateEd25519KeyPair();
    const other = generateEd25519KeyPair();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), fc.nat(), (message, position) => {
        const signature = ed25519Sign(message, keys.privateKey);
        assert.equal(ed25519Verify(signature, message, keys.publicKey), true);
        assert.equal(ed25519Verify(signature, message, ed25519RawPublicKey(keys.publicKey)), true);
        assert.equal(ed25519Verify(signature, message, other.publicKey), false);
        const bad = signature.slice();
        const index = position % bad.length;
        bad[index] = (bad[index] ?? 0) ^ 0x01;
        assert.equal(ed25519Verify(bad, message, keys.publicKey), false);
        assert.equal(
          ed25519Verify(signature, concatBytes(message, Uint8Array.of(0)), keys.publicKey),
          false,
        );
      }),
      { numRuns: 50 },
    );
  });

  it('agrees with OpenSSL on honest signatures and on tampering (property)', () => {
    const keys = generateEd25519KeyPair();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (message, position) => {
        const signature = ed25519Sign(message, keys.privateKey);
        const bad = signature.slice();
        const index = position % bad.length;
        bad[index] = (bad[index] ?? 0) ^ (1 << (position % 8));
        for (const sig of [signature, bad]) {
          assert.equal(
            ed25519Verify(sig, message, keys.publicKey),
            opensslVerify(null, message, keys.publicKey, sig),
          );
        }
      }),
      { numRuns: 200 },
    );
  });

  it("accepts OpenSSL's set except under small-order keys; S + L refused", () => {
    const message = Uint8Array.of(7, 7, 7);
    // With the identity point as the public key, [S]B = R + [k]A holds for R = [r]B, S = r,
    // whatever the message: OpenSSL accepts such a signature; libsodium refuses small-order keys.
    const r = 123456789n;
    const little = (value: bigint): Uint8Array =>
      Uint8Array.from({ length: 32 }, (_, i) => Number((value >> BigInt(8 * i)) & 0xffn));
    const signature = concatBytes(nobleEd25519.Point.BASE.multiply(r).toBytes(), little(r));
    const identity = concatBytes(Uint8Array.of(1), new Uint8Array(31));
    assert.equal(opensslVerify(null, message, ed25519PublicKeyFromRaw(identity), signature), true);
    assert.equal(sodium.crypto_sign_verify_detached(signature, message, identity), false);
    // A key of small order has no secret: anyone signs any message under it. Refused.
    assert.equal(ed25519Verify(signature, message, identity), false);
    assert.equal(ed25519Verify(signature, message, ed25519PublicKeyFromRaw(identity)), false);
    assert.equal(ed25519Verify(signature, Uint8Array.of(8), identity), false);
    // The simplest forgery: R = identity, s = 0.
    const trivial = concatBytes(identity, new Uint8Array(32));
    assert.equal(opensslVerify(null, message, ed25519PublicKeyFromRaw(identity), trivial), true);
    assert.equal(ed25519Verify(trivial, message, identity), false);
    // S + L instead of S: the same point equation, refused by both.
    const keys = generateEd25519KeyPair();
    const honest = ed25519Sign(message, keys.privateKey);
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(honest[32 + i] ?? 0);
    const order = nobleEd25519.Point.Fn.ORDER;
    const malleated = concatBytes(honest.subarray(0, 32), little(s + order));
    assert.equal(ed25519Verify(honest, message, keys.publicKey), true);
    assert.equal(ed25519Verify(malleated, message, keys.publicKey), false);
    assert.equal(opensslVerify(null, message, keys.publicKey, malleated), false);
  });

  it('recognises every encoding of the small-order points, and no honest key', () => {
    const p = 2n ** 255n - 19n;
    const encode = (value: bigint, sign: boolean): Uint8Array => {
      const out = Uint8Array.from({ length: 32 }, (_, i) =>
        Number((value >> BigInt(8 * i)) & 0xffn),
      );
      if (sign) out[31]! |= 0x80;
      return out;
    };
    // The torsion points, from noble: every multiple of the order-8 point, canonically encoded.
    const torsion = [...Array(8).keys()].map((k) =>
      nobleEd25519.Point.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')
        .multiply(BigInt(k + 1))
        .toBytes(),
    );
    for (const point of torsion) {
      assert.ok(isSmallOrderEd25519Key(point), toHex(point));
      assert.ok(
        nobleEd25519.Point.fromHex(toHex(point)).multiply(8n).equals(nobleEd25519.Point.ZERO),
      );
    }
    // Non-canonical encodings (y + p where it fits in 255 bits) and the other sign bit.
    for (const y of [p, p + 1n]) {
      assert.ok(isSmallOrderEd25519Key(encode(y, false)));
      assert.ok(isSmallOrderEd25519Key(encode(y, true)));
    }
    assert.ok(isSmallOrderEd25519Key(encode(1n, true)));
    assert.ok(isSmallOrderEd25519Key(encode(p - 1n, true)));
    for (let i = 0; i < 50; i++) {
      assert.equal(
        isSmallOrderEd25519Key(ed25519RawPublicKey(generateEd25519KeyPair().publicKey)),
        false,
      );
    }
    assert.equal(isSmallOrderEd25519Key(new Uint8Array(31)), false);
  });

  it('returns false for garbage, never throws', () => {
    const keys = generateEd25519KeyPair();
    const message = Uint8Array.of(1, 2, 3);
    const signature = ed25519Sign(message, keys.privateKey);
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const cases: Array<[string, unknown, unknown, unknown]> = [
      ['short signature', signature.subarray(1), message, keys.publicKey],
      ['long signature', concatBytes(signature, Uint8Array.of(0)), message, keys.publicKey],
      ['random signature', new Uint8Array(randomBytes(64)), message, keys.publicKey],
      ['short raw key', signature, message, new Uint8Array(31)],
      ['garbage raw key', signature, message, new Uint8Array(32).fill(0xff)],
      ['private key object', signature, message, keys.privateKey],
      ['P-256 key', signature, message, p256.publicKey],
      ['signature not bytes', 'sig', message, keys.publicKey],
      ['message not bytes', signature, 42, keys.publicKey],
    ];
    for (const [name, sig, msg, key] of cases) {
      let result: boolean | undefined;
      assert.doesNotThrow(() => {
        result = ed25519Verify(sig as Uint8Array, msg as Uint8Array, key as Uint8Array);
      }, name);
      assert.equal(result, false, name);
    }
  });

  it('converts to and from SPKI DER and PKCS#8 PEM/DER', () => {
    const keys = generateEd25519KeyPair();
    const der = ed25519PublicKeyToSpkiDer(keys.publicKey);
    assert.equal(der.length, 44);
    assert.deepEqual(
      ed25519RawPublicKey(ed25519PublicKeyFromSpkiDer(der)),
      ed25519RawPublicKey(keys.publicKey),
    );
    const pem = ed25519PrivateKeyToPkcs8Pem(keys.privateKey);
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
    const imported = ed25519PrivateKeyFromPkcs8Pem(pem);
    assert.deepEqual(ed25519Seed(imported), ed25519Seed(keys.privateKey));
    assert.equal(ed25519PrivateKeyToPkcs8Der(keys.privateKey).length, 48);
    assert.match(ed25519PublicKeyToSpkiPem(keys.publicKey), /^-----BEGIN PUBLIC KEY-----\n/);
    const message = Uint8Array.of(7);
    assert.equal(ed25519Verify(ed25519Sign(message, imported), message, keys.publicKey), true);
  });

  it('rejects keys of another type or malformed encodings with typed errors', () => {
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const p256Der = new Uint8Array(p256.publicKey.export({ format: 'der', type: 'spki' }));
    const p256Pem = p256.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const invalidPublic = isEd25519Error(Ed25519ErrorCode.INVALID_PUBLIC_KEY);
    const invalidPrivate = isEd25519Error(Ed25519ErrorCode.INVALID_PRIVATE_KEY);
    assert.throws(() => ed25519PublicKeyFromSpkiDer(p256Der), invalidPublic);
    assert.throws(() => ed25519PublicKeyFromSpkiDer(Uint8Array.of(0x30, 0x03, 1)), invalidPublic);
    assert.throws(() => ed25519PublicKeyFromRaw(new Uint8Array(33)), invalidPublic);
    assert.throws(() => ed25519PrivateKeyFromPkcs8Pem(p256Pem), invalidPrivate);
    assert.throws(() => ed25519PrivateKeyFromPkcs8Pem('not a pem'), invalidPrivate);
    assert.throws(
      () =>
        ed25519PrivateKeyFromPkcs8Pem(
          '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
        ),
      invalidPrivate,
    );
    assert.throws(() => ed25519PrivateKeyFromSeed(new Uint8Array(31)), invalidPrivate);
    assert.throws(() => ed25519Sign(Uint8Array.of(1), p256.privateKey), invalidPrivate);
    assert.throws(() => ed25519Seed(generateEd25519KeyPair().publicKey), invalidPrivate);
  });

  it('builds the libp2p key protobufs the quinn binding takes', () => {
    const vector = rfc8032[0];
    assert.ok(vector);
    const proto = ed25519Libp2pPrivateKeyProto(fromHex(vector.seed));
    assert.equal(toHex(proto), `08011240${vector.seed}${vector.publicKey}`);
    assert.deepEqual(
      ed25519Libp2pPrivateKeyProto(ed25519PrivateKeyFromSeed(fromHex(vector.seed))),
      proto,
    );
    const publicProto = ed25519Libp2pPublicKeyProto(fromHex(vector.publicKey));
    assert.equal(toHex(publicProto), `08011220${vector.publicKey}`);
    assert.deepEqual(
      ed25519Libp2pPublicKeyProto(ed25519PublicKeyFromRaw(fromHex(vector.publicKey))),
      publicProto,
    );
    assert.equal(toHex(ed25519PublicKeyFromLibp2pProto(publicProto)), vector.publicKey);
    const invalidPublic = isEd25519Error(Ed25519ErrorCode.INVALID_PUBLIC_KEY);
    const wrongType = publicProto.slice();
    wrongType[1] = 0x02;
    assert.throws(() => ed25519PublicKeyFromLibp2pProto(wrongType), invalidPublic);
    assert.throws(() => ed25519PublicKeyFromLibp2pProto(publicProto.subarray(1)), invalidPublic);
    assert.throws(() => ed25519Libp2pPublicKeyProto(new Uint8Array(31)), invalidPublic);
  });
});
