import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  BytesErrorCode,
  bytesEqual,
  concatBytes,
  fromBase64,
  fromHex,
  toBase64,
  toHex,
} from '../../src/crypto/bytes.js';
import { isHyperMeshError } from '../../src/codec/error.js';

describe('bytes', () => {
  it('compares by content and length', () => {
    assert.equal(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2)), true);
    assert.equal(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3)), false);
    assert.equal(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0)), false);
    assert.equal(bytesEqual(new Uint8Array(0), new Uint8Array(0)), true);
  });

  it('concatenates in order, including views with offsets', () => {
    const backing = Uint8Array.of(9, 9, 5, 6, 9);
    assert.deepEqual(
      concatBytes(Uint8Array.of(1), backing.subarray(2, 4), new Uint8Array(0)),
      Uint8Array.of(1, 5, 6),
    );
    assert.deepEqual(concatBytes(), new Uint8Array(0));
  });

  it('round-trips hex and base64 (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        assert.deepEqual(fromHex(toHex(bytes)), bytes);
        assert.deepEqual(fromHex(toHex(bytes).toUpperCase()), bytes);
        assert.deepEqual(fromBase64(toBase64(bytes)), bytes);
      }),
    );
  });

  it('encodes views by their own bytes only', () => {
    const view = Uint8Array.of(0xaa, 0x01, 0xff, 0xbb).subarray(1, 3);
    assert.equal(toHex(view), '01ff');
    assert.equal(toBase64(view), 'Af8=');
  });

  it('rejects malformed hex with a typed error', () => {
    for (const bad of ['0', 'zz', '0x00', '00 11', 'abc']) {
      assert.throws(
        () => fromHex(bad),
        (error) => isHyperMeshError(error, BytesErrorCode.INVALID_HEX),
      );
    }
  });

  it('rejects malformed or non-canonical base64 with a typed error', () => {
    for (const bad of ['A', 'AB', 'AB=', 'A===', 'AB*=', 'Af9=', 'AQID\n', 'AQ-_']) {
      assert.throws(
        () => fromBase64(bad),
        (error) => isHyperMeshError(error, BytesErrorCode.INVALID_BASE64),
        bad,
      );
    }
  });
});
