import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { rngAesCtrDrbg256 } from '@noble/ciphers/aes.js';
import { falcon1024 } from '@noble/post-quantum/falcon.js';
import { isHyperMeshError } from '../../src/codec/error.js';
import { createFalcon } from '../../src/crypto/falcon.js';
import {
  FalconKatErrorCode,
  detachFalconSignedMessage,
  falconKatDetachedSignature,
  parseFalconKat,
} from '../../src/crypto/falcon-kat.js';
import type { FalconKatVector } from '../../src/crypto/falcon-kat.js';
import { createPqcleanFalcon } from '../../src/crypto/falcon-pqclean.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const fixturePath = resolve(repoRoot, 'test/fixtures/falcon/falcon1024-KAT-first10.rsp');
const fullKatPath = resolve(repoRoot, '../shared/vectors/falcon/falcon1024-KAT.rsp');

const backends = [createFalcon('pqclean'), createFalcon('noble'), createPqcleanFalcon('wasm')];
const fixtures = parseFalconKat(readFileSync(fixturePath, 'utf8'));

function assertVerifiesEverywhere(vector: FalconKatVector, verifiers = backends): void {
  const { message, signature } = detachFalconSignedMessage(vector.sm, vector.mlen);
  assert.deepEqual(message, vector.msg, `count ${vector.count}: message inside sm`);
  for (const backend of verifiers) {
    assert.equal(
      backend.verify(signature, vector.msg, vector.pk),
      true,
      `count ${vector.count} fails in ${backend.name}`,
    );
  }
}

describe('FALCON-1024 NIST Round-3 known answers', () => {
  it('parses the shipped fixture: ten well-formed vectors', () => {
    assert.deepEqual(
      fixtures.map((vector) => vector.count),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    for (const vector of fixtures) {
      assert.equal(vector.seed.length, 48);
      assert.equal(vector.pk.length, 1793);
      assert.equal(vector.sk.length, 2305);
      assert.equal(vector.sm[2 + 40 + vector.mlen], 0x2a, 'signed-message header');
      assert.equal(falconKatDetachedSignature(vector)[0], 0x3a, 'detached header');
    }
  });

  it('verifies every fixture vector in every backend', () => {
    for (const vector of fixtures) assertVerifiesEverywhere(vector);
  });

  it('rejects the vectors when the signed-message header is kept (the conversion matters)', () => {
    for (const vector of fixtures.slice(0, 3)) {
      const signature = falconKatDetachedSignature(vector);
      signature[0] = 0x2a;
      for (const backend of backends) {
        assert.equal(backend.verify(signature, vector.msg, vector.pk), false, backend.name);
      }
    }
  });

  it('verifies all 100 vectors of ../shared/vectors when present', (t) => {
    if (!existsSync(fullKatPath)) {
      t.skip(
        `${fullKatPath} is absent (fresh clone without ../shared): only the fixture subset ran`,
      );
      return;
    }
    const vectors = parseFalconKat(readFileSync(fullKatPath, 'utf8'));
    assert.equal(vectors.length, 100);
    assert.deepEqual(vectors.slice(0, 10), fixtures, 'fixture is the first ten vectors');
    for (const vector of vectors) assertVerifiesEverywhere(vector, backends.slice(0, 2));
  });

  it('regenerates pk, sk and sm bit-exactly from the KAT seed (noble + AES-256 CTR_DRBG)', () => {
    // The reference harness draws keygen's 48-byte seed, then the signing nonce (40) and the
    // sampler seed (48), from one NIST AES-256 CTR_DRBG seeded with `seed`.
    for (const vector of fixtures.slice(0, 2)) {
      const drbg = rngAesCtrDrbg256(vector.seed);
      const keys = falcon1024.keygen(drbg.randomBytes(48));
      assert.deepEqual(keys.publicKey, vector.pk, `count ${vector.count}: pk`);
      assert.deepEqual(keys.secretKey, vector.sk, `count ${vector.count}: sk`);
      const signedMessage = falcon1024.attached.seal(vector.msg, keys.secretKey, {
        random: (length = 0) => drbg.randomBytes(length),
      });
      assert.deepEqual(signedMessage, vector.sm, `count ${vector.count}: sm`);
      assert.deepEqual(falcon1024.attached.open(vector.sm, vector.pk), vector.msg);
    }
  });

  it('rejects malformed .rsp text with a typed error', () => {
    const first = readFileSync(fixturePath, 'utf8').split(/\n\s*\n/)[1] ?? '';
    const malformed = [
      'count: 0',
      first.replace(/^msg = .*$/m, ''),
      first.replace(/^mlen = \d+$/m, 'mlen = 34'),
      first.replace(/^smlen = \d+$/m, 'smlen = 1'),
      first.replace(/^seed = (.*)$/m, 'seed = $1A'),
      first.replace(/^count = 0$/m, 'count = 0\ncount = 1'),
      first.replace(/^count = 0$/m, 'colour = 00'),
    ];
    for (const text of malformed) {
      assert.throws(
        () => parseFalconKat(text),
        (error) => isHyperMeshError(error, FalconKatErrorCode.MALFORMED_FILE),
        text.slice(0, 40),
      );
    }
    assert.equal(parseFalconKat(first).length, 1, 'control case');
  });

  it('rejects a signed message whose framing is inconsistent', () => {
    const vector = fixtures[0];
    assert.ok(vector);
    const lengthWrong = vector.sm.slice();
    lengthWrong[1] = (lengthWrong[1] ?? 0) ^ 1;
    const headerWrong = vector.sm.slice();
    headerWrong[2 + 40 + vector.mlen] = 0x3a;
    const cases: Array<[Uint8Array, number]> = [
      [lengthWrong, vector.mlen],
      [headerWrong, vector.mlen],
      [vector.sm, vector.mlen + 1],
      [vector.sm.subarray(0, 30), vector.mlen],
    ];
    for (const [sm, mlen] of cases) {
      assert.throws(
        () => detachFalconSignedMessage(sm, mlen),
        (error) => isHyperMeshError(error, FalconKatErrorCode.MALFORMED_SIGNED_MESSAGE),
      );
    }
  });
});
