import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { isHyperMeshError } from '../../src/codec/error.js';
import type { FalconBackend, FalconKeyPair } from '../../src/crypto/falcon.js';
import {
  FALCON1024_MAX_SIGNATURE_BYTES,
  FALCON1024_PUBLIC_KEY_BYTES,
  FALCON1024_SECRET_KEY_BYTES,
  FALCON1024_SIGNATURE_HEADER,
  FalconErrorCode,
  createFalcon,
  defaultFalcon,
} from '../../src/crypto/falcon.js';
import { falconPublicKeyFromSecretKey } from '../../src/crypto/falcon-noble.js';
import { createPqcleanFalcon } from '../../src/crypto/falcon-pqclean.js';

const pqclean = createFalcon('pqclean');
const noble = createFalcon('noble');
const wasm = createPqcleanFalcon('wasm');
const backends: readonly FalconBackend[] = [pqclean, noble, wasm];
const message = new TextEncoder().encode('HyperMesh FALCON-1024 adapter test');

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = bytes.slice();
  copy[bit >> 3] = (copy[bit >> 3] ?? 0) ^ (1 << (bit & 7));
  return copy;
}

describe('FALCON-1024 backends', () => {
  let keys: FalconKeyPair;
  let otherKeys: FalconKeyPair;
  const signatures = new Map<string, Uint8Array>();

  before(async () => {
    keys = await pqclean.generateKeyPair();
    otherKeys = await pqclean.generateKeyPair();
    for (const backend of backends) {
      signatures.set(backend.name, await backend.sign(message, keys.secretKey));
    }
  });

  it('names the loaded build and picks the fastest as default, once per process', (t) => {
    t.diagnostic(`pqclean build: ${pqclean.name}; default: ${defaultFalcon().name}`);
    assert.match(pqclean.name, /^pqclean-(native|wasm)$/);
    assert.equal(noble.name, 'noble');
    assert.equal(wasm.name, 'pqclean-wasm');
    assert.equal(createFalcon('pqclean'), pqclean);
    assert.equal(createFalcon(), defaultFalcon());
    assert.equal(defaultFalcon(), pqclean);
  });

  for (const backend of backends) {
    it(`${backend.name}: generates Round-3 encoded key pairs`, async () => {
      const pair = await backend.generateKeyPair();
      assert.equal(pair.publicKey.length, FALCON1024_PUBLIC_KEY_BYTES);
      assert.equal(pair.secretKey.length, FALCON1024_SECRET_KEY_BYTES);
      assert.equal(pair.publicKey[0], 0x0a);
      assert.equal(pair.secretKey[0], 0x5a);
      assert.deepEqual(falconPublicKeyFromSecretKey(pair.secretKey), pair.publicKey);
    });

    it(`${backend.name}: signs in the detached format, with a fresh nonce each time`, async () => {
      const first = signatures.get(backend.name);
      assert.ok(first);
      const second = await backend.sign(message, keys.secretKey);
      for (const signature of [first, second]) {
        assert.equal(signature[0], FALCON1024_SIGNATURE_HEADER);
        assert.ok(signature.length > 41 && signature.length <= FALCON1024_MAX_SIGNATURE_BYTES);
      }
      assert.notDeepEqual(first.subarray(1, 41), second.subarray(1, 41));
    });

    it(`${backend.name}: rejects a malformed secret key with a typed error`, async () => {
      for (const bad of [new Uint8Array(0), keys.secretKey.subarray(1), keys.publicKey]) {
        await assert.rejects(backend.sign(message, bad), (error) =>
          isHyperMeshError(error, FalconErrorCode.INVALID_SECRET_KEY),
        );
      }
      const wrongHeader = keys.secretKey.slice();
      wrongHeader[0] = 0x59;
      await assert.rejects(backend.sign(message, wrongHeader), (error) =>
        isHyperMeshError(error, FalconErrorCode.INVALID_SECRET_KEY),
      );
    });
  }

  it('every backend verifies every backend’s signatures', () => {
    for (const [signer, signature] of signatures) {
      for (const verifier of backends) {
        assert.equal(
          verifier.verify(signature, message, keys.publicKey),
          true,
          `${verifier.name} rejects a ${signer} signature`,
        );
      }
    }
  });

  it('pqclean signs byte views at an offset correctly', async () => {
    const backing = new Uint8Array(message.length + 7);
    backing.set(message, 7);
    const view = backing.subarray(7);
    const signature = await pqclean.sign(view, keys.secretKey);
    assert.equal(noble.verify(signature, message, keys.publicKey), true);
    assert.equal(pqclean.verify(signature, view, keys.publicKey), true);
  });

  for (const backend of backends) {
    it(`${backend.name}: returns false, without throwing, for every kind of bad input`, () => {
      const signature = signatures.get('noble');
      assert.ok(signature);
      const { publicKey } = keys;
      const cases: Array<[string, unknown, unknown, unknown]> = [
        ['header bit flipped', flipBit(signature, 0), message, publicKey],
        ['nonce bit flipped', flipBit(signature, 8 * 20 + 3), message, publicKey],
        ['body bit flipped', flipBit(signature, 8 * 100 + 5), message, publicKey],
        ['last byte flipped', flipBit(signature, 8 * (signature.length - 1)), message, publicKey],
        ['message bit flipped', signature, flipBit(message, 9), publicKey],
        ['empty message', signature, new Uint8Array(0), publicKey],
        ['wrong key', signature, message, otherKeys.publicKey],
        ['truncated by one byte', signature.subarray(0, signature.length - 1), message, publicKey],
        ['truncated to header and nonce', signature.subarray(0, 41), message, publicKey],
        ['one zero byte appended', Uint8Array.from([...signature, 0]), message, publicKey],
        ['empty signature', new Uint8Array(0), message, publicKey],
        [
          'random body',
          Uint8Array.from([FALCON1024_SIGNATURE_HEADER, ...randomBytes(1200)]),
          message,
          publicKey,
        ],
        ['all zero', new Uint8Array(1000), message, publicKey],
        [
          'oversized',
          new Uint8Array(FALCON1024_MAX_SIGNATURE_BYTES + 1).fill(0x3a),
          message,
          publicKey,
        ],
        ['public key one byte short', signature, message, publicKey.subarray(1)],
        ['public key one byte long', signature, message, Uint8Array.from([...publicKey, 0])],
        ['public key empty', signature, message, new Uint8Array(0)],
        ['public key header wrong', signature, message, flipBit(publicKey, 0)],
        ['secret key as public key', signature, message, keys.secretKey],
        ['signature not bytes', 'signature', message, publicKey],
        ['message not bytes', signature, null, publicKey],
        ['public key not bytes', signature, message, [...publicKey]],
      ];
      for (const [name, sig, msg, key] of cases) {
        let result: boolean | undefined;
        assert.doesNotThrow(() => {
          result = backend.verify(sig as Uint8Array, msg as Uint8Array, key as Uint8Array);
        }, name);
        assert.equal(result, false, name);
      }
      assert.equal(backend.verify(signature, message, publicKey), true, 'control case');
    });
  }

  it('rejects any single flipped bit of a signature or message (property)', () => {
    const signature = signatures.get(pqclean.name);
    assert.ok(signature);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: signature.length * 8 - 1 }),
        fc.integer({ min: 0, max: message.length * 8 - 1 }),
        (signatureBit, messageBit) => {
          const badSignature = flipBit(signature, signatureBit);
          const badMessage = flipBit(message, messageBit);
          for (const backend of [pqclean, noble]) {
            assert.equal(backend.verify(badSignature, message, keys.publicKey), false);
            assert.equal(backend.verify(signature, badMessage, keys.publicKey), false);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  // Every validator checks the same precommit signatures with whichever backend it loaded
  // (`defaultFalcon`), so they must agree on every input, not only on valid and bit-flipped
  // signatures: one accepting what another refuses would split a quorum.
  it('every backend refuses a signature zero-padded to the padded format’s 1,280 bytes', async () => {
    // PQClean alone accepted these; noble refused them: a split between validators.
    for (let attempt = 0; attempt < 4; attempt++) {
      const signature = await pqclean.sign(message, keys.secretKey);
      assert.notEqual(signature.at(-1), 0, 'a minimal encoding does not end in 0x00');
      if (signature.length >= 1280) continue; // nothing to pad
      const padded = new Uint8Array(1280);
      padded.set(signature);
      for (const backend of backends) {
        assert.equal(backend.verify(signature, message, keys.publicKey), true, backend.name);
        assert.equal(backend.verify(padded, message, keys.publicKey), false, backend.name);
      }
    }
  });

  it('all backends give the same answer on mutated signatures (differential property)', () => {
    const signature = signatures.get(pqclean.name);
    assert.ok(signature);
    const mutation = fc.oneof(
      // Truncated, or extended with zeros or random bytes.
      fc.integer({ min: 1, max: signature.length - 1 }).map((n) => signature.subarray(0, n)),
      fc
        .integer({ min: 1, max: 64 })
        .map((n) => Uint8Array.from([...signature, ...new Uint8Array(n)])),
      fc
        .uint8Array({ minLength: 1, maxLength: 64 })
        .map((extra) => Uint8Array.from([...signature, ...extra])),
      // Bytes overwritten in the body (the compressed coefficients), keeping the length.
      fc
        .array(
          fc.tuple(
            fc.integer({ min: 41, max: signature.length - 1 }),
            fc.integer({ min: 0, max: 255 }),
          ),
          {
            minLength: 1,
            maxLength: 8,
          },
        )
        .map((edits) => {
          const out = signature.slice();
          for (const [at, value] of edits) out[at] = value;
          return out;
        }),
      // The body cut short and padded with zeros to the original length.
      fc.integer({ min: 41, max: signature.length - 1 }).map((n) => {
        const out = new Uint8Array(signature.length);
        out.set(signature.subarray(0, n));
        return out;
      }),
      // Random bytes behind the valid header byte.
      fc
        .uint8Array({ minLength: 41, maxLength: signature.length + 16 })
        .map((bytes) => Uint8Array.from([signature[0]!, ...bytes])),
    );
    fc.assert(
      fc.property(mutation, (bad) => {
        const answers = backends.map((backend) => backend.verify(bad, message, keys.publicKey));
        assert.ok(
          answers.every((answer) => answer === answers[0]),
          `backends disagree: ${backends.map((b, i) => `${b.name}=${answers[i]}`).join(', ')}`,
        );
      }),
      { numRuns: 300 },
    );
  });
});
