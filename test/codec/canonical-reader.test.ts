import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CborError,
  CborErrorCode,
  decodeCanonical,
  encodeCanonical,
} from '../../src/codec/cbor.js';
import { CanonicalReader } from '../../src/codec/canonical-reader.js';
import { SchemaError } from '../../src/codec/schema.js';

function reader(...bytes: number[]): CanonicalReader {
  return new CanonicalReader(Uint8Array.from(bytes));
}

/** The error `read` throws, which must be a CborError or SchemaError. */
function failure(read: () => unknown): CborError | SchemaError {
  try {
    read();
  } catch (error) {
    assert.ok(error instanceof CborError || error instanceof SchemaError, String(error));
    return error;
  }
  assert.fail('expected the read to fail');
}

describe('CanonicalReader', () => {
  it('reads integers at every head size, and only in shortest form', () => {
    for (const value of [0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
      const r = new CanonicalReader(encodeCanonical(value));
      assert.equal(r.readUint('n'), value);
      r.end('n');
    }
    for (const bytes of [
      [0x18, 0x05],
      [0x19, 0x00, 0xff],
      [0x1a, 0x00, 0x00, 0xff, 0xff],
      [0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
    ]) {
      const error = failure(() => reader(...bytes).readUint('n'));
      assert.equal(error.code, CborErrorCode.NOT_CANONICAL);
      assert.equal(error.message, 'n: integer or length not in its shortest form');
    }
    assert.match(
      failure(() => reader(0x1b, 0, 0x20, 0, 0, 0, 0, 0, 0).readUint('n')).message,
      /^n: integer or length exceeds 2\^53 - 1$/,
    );
    assert.equal(
      failure(() => reader(0x05).readUint('n', 6, 9)).message,
      'n: expected an integer in [6, 9], got 5',
    );
  });

  it('reads negative integers within bounds', () => {
    assert.equal(reader(0x20).readInt('r', -1, 5), -1);
    assert.equal(reader(0x38, 0x18).readInt('r', -100, 5), -25);
    assert.match(failure(() => reader(0x21).readInt('r', -1, 5)).message, /got -2$/);
    assert.match(failure(() => reader(0x40).readInt('r', -1, 5)).message, /got byte string$/);
  });

  it('refuses reserved, indefinite, truncated and foreign items with their names', () => {
    const cases: [number[], RegExp][] = [
      [[0x1c], /^x: reserved additional information$/],
      [[0x5f, 0xff], /^x: indefinite-length items are not allowed$/],
      [[], /^x: unexpected end of input$/],
      [[0x19, 0x01], /^x: unexpected end of input$/],
      [[0xf5], /^x: expected unsigned integer, got boolean$/],
      [[0xf6], /^x: expected unsigned integer, got null$/],
      [[0xf7], /^x: expected unsigned integer, got undefined$/],
      [[0xf9, 0x3c, 0x00], /^x: expected unsigned integer, got float$/],
      [[0xfb, 0x43, 0x40, 0, 0, 0, 0, 0, 0], /^x: expected unsigned integer, got float$/],
      [[0xc2, 0x41, 0x01], /^x: expected unsigned integer, got tag$/],
      [[0x61, 0x61], /^x: expected unsigned integer, got text string$/],
    ];
    for (const [bytes, message] of cases) {
      assert.match(failure(() => reader(...bytes).readUint('x')).message, message);
    }
  });

  it('reads byte strings within length bounds and never aliases the input', () => {
    for (const size of [3, 2000]) {
      const input = encodeCanonical(new Uint8Array(size).fill(7));
      const value = new CanonicalReader(input).readBytes('b', 0, 4096);
      input.fill(0);
      assert.equal(value.length, size);
      assert.ok(value.every((byte) => byte === 7));
    }
    assert.equal(
      failure(() => reader(0x42, 1, 2).readBytes('b', 3, 3)).message,
      'b: expected 3 bytes, got 2',
    );
    assert.equal(
      failure(() => reader(0x42, 1, 2).readBytes('b', 0, 1)).message,
      'b: expected 0 to 1 bytes, got 2',
    );
    assert.equal(
      failure(() => reader(0x43, 1, 2).readBytes('b', 0, 9)).message,
      'b: byte string runs past the input',
    );
  });

  it('reads UTF-8 text, keeping a byte-order mark, refusing invalid UTF-8', () => {
    for (const value of ['', 'abc', '\uFEFFx', 'é中😀', 'a'.repeat(300), 'é'.repeat(200)]) {
      const r = new CanonicalReader(encodeCanonical(value));
      assert.equal(r.readText('t', 1000), value);
      r.end('t');
    }
    const error = failure(() => reader(0x62, 0xc3, 0x28).readText('t', 10));
    assert.equal(error.code, CborErrorCode.MALFORMED);
    assert.equal(error.message, 't: text string is not valid UTF-8');
    assert.equal(
      failure(() => reader(0x63, 0x61, 0x61, 0x61).readText('t', 2)).message,
      't: expected at most 2 bytes of text, got 3',
    );
  });

  it('reads map keys in canonical order only', () => {
    // {"b": 1, "aa": 2}: shorter keys first, so this order is canonical.
    const r = new CanonicalReader(encodeCanonical({ aa: 2, b: 1 }));
    assert.equal(r.readMapLength('m', 4), 2);
    assert.equal(r.readKey('m', undefined), 'b');
    assert.equal(r.readUint('m.b'), 1);
    assert.equal(r.readKey('m', 'b'), 'aa');
    assert.equal(r.readUint('m.aa'), 2);
    r.end('m');
    const outOfOrder = reader(0xa2, 0x62, 0x61, 0x61, 0x02, 0x61, 0x62, 0x01);
    outOfOrder.readMapLength('m', 4);
    outOfOrder.readKey('m', undefined);
    outOfOrder.readUint('m.aa');
    const error = failure(() => outOfOrder.readKey('m', 'aa'));
    assert.equal(error.code, CborErrorCode.NOT_CANONICAL);
    assert.equal(error.message, 'm: key "b" out of canonical order');
    const sameLength = reader(0x61, 0x61);
    assert.equal(
      failure(() => sameLength.readKey('m', 'b')).message,
      'm: key "a" out of canonical order',
    );
    assert.equal(
      failure(() => reader(0x61, 0x61).readKey('m', 'a')).message,
      'm: duplicate key "a"',
    );
    assert.equal(
      failure(() => reader(0x62, 0xc3, 0xa9).readKey('m', undefined)).message,
      'm: unexpected non-ASCII key',
    );
  });

  it('checks list and map counts against their limits and the input before reading items', () => {
    assert.equal(
      failure(() => reader(0x99, 0x27, 0x11).readArrayLength('l', 10_000)).message,
      'l: expected at most 10000 items, got 10001',
    );
    assert.equal(
      failure(() => reader(0x99, 0x27, 0x10).readArrayLength('l', 10_000)).message,
      'l: array runs past the input',
    );
    assert.equal(
      failure(() => reader(0xa2, 0x61, 0x61, 0x01).readMapLength('m', 5)).message,
      'm: map runs past the input',
    );
    assert.equal(
      failure(() => reader(0x01, 0x02).end('x')).message,
      'x: 2 trailing bytes after the item',
    );
  });

  it('agrees with the general canonical decoder on whatever it accepts (random bytes)', () => {
    const reads: [string, (r: CanonicalReader) => unknown][] = [
      ['uint', (r) => r.readUint('x')],
      ['int', (r) => r.readInt('x', -(2 ** 53) + 1, 2 ** 53 - 1)],
      ['bytes', (r) => r.readBytes('x', 0, 64)],
      ['text', (r) => r.readText('x', 64)],
    ];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 12 }),
          fc
            .constantFrom(0x18, 0x19, 0x1a, 0x1b, 0x38, 0x40, 0x58, 0x60, 0x78)
            .chain((head) =>
              fc.uint8Array({ maxLength: 10 }).map((rest) => Uint8Array.from([head, ...rest])),
            ),
        ),
        (bytes) => {
          for (const [, read] of reads) {
            let value: unknown;
            try {
              const r = new CanonicalReader(bytes);
              value = read(r);
              r.end('x');
            } catch (error) {
              assert.ok(error instanceof CborError || error instanceof SchemaError, String(error));
              continue;
            }
            assert.deepEqual(value, decodeCanonical(bytes));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('CanonicalReader and Buffer input', () => {
  it('returns byte strings that do not alias the input, small or large', () => {
    for (const size of [8, 200_000]) {
      const input = Buffer.from(encodeCanonical(new Uint8Array(size).fill(7)));
      const value = new CanonicalReader(input).readBytes('x', 0, size);
      input.fill(0);
      assert.equal(value[0], 7, `size ${size}: the value changed with the input`);
    }
  });
});
