import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { z } from 'zod';
import { isHyperMeshError } from '../../src/codec/error.js';
import {
  SchemaError,
  SchemaErrorCode,
  bigintAmount,
  bytes,
  hexString,
  nonEmptyString,
  parseInput,
  uint,
} from '../../src/codec/schema.js';

/** Runs `parse` and returns the SchemaError it must throw. */
function schemaError(parse: () => unknown): SchemaError {
  try {
    parse();
  } catch (error) {
    assert.ok(error instanceof SchemaError, `expected SchemaError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a SchemaError, but parsing succeeded');
}

const request = z.strictObject({
  names: z.array(nonEmptyString(10)),
  count: uint,
  key: bytes({ length: 32 }),
  amount: bigintAmount,
});

const validRequest = {
  names: ['a', 'b'],
  count: 3,
  key: new Uint8Array(32),
  amount: 10n,
};

describe('parseInput', () => {
  it('returns the typed value for valid input', () => {
    const parsed = parseInput(request, validRequest, 'request');
    assert.deepStrictEqual(parsed, validRequest);
  });

  it('names the path and the problem', () => {
    const error = schemaError(() =>
      parseInput(request, { ...validRequest, names: ['a', 'b', 3] }, 'request'),
    );
    assert.equal(error.message, 'request.names[2]: expected string, got number 3');
    assert.equal(error.code, SchemaErrorCode.INVALID);
    assert.ok(isHyperMeshError(error, SchemaErrorCode.INVALID), 'a HyperMeshError');
    assert.deepStrictEqual(error.issues, [
      {
        path: 'request.names[2]',
        code: 'invalid_type',
        message: 'expected string, got number 3',
      },
    ]);
    assert.deepStrictEqual(error.detail, { context: 'request', issues: error.issues });
  });

  it('reports a wrong top-level type at the context itself', () => {
    const error = schemaError(() => parseInput(request, null, 'request'));
    assert.equal(error.message, 'request: expected object, got null');
  });

  it('rejects unknown keys of strict objects', () => {
    const error = schemaError(() => parseInput(request, { ...validRequest, admin: true }, 'req'));
    assert.equal(error.message, 'req: unexpected key "admin"');
  });

  it('quotes keys that are not identifiers', () => {
    const schema = z.strictObject({ 'content-type': z.string() });
    const error = schemaError(() => parseInput(schema, { 'content-type': 1 }, 'headers'));
    assert.equal(error.message, 'headers["content-type"]: expected string, got number 1');
  });

  it('lists the first three issues in the message and all of them in detail', () => {
    const error = schemaError(() =>
      parseInput(request, { names: [1, 2, 3, 4], count: 'x', key: 'y', amount: 1 }, 'request'),
    );
    assert.equal(error.issues.length, 7);
    assert.equal(
      error.message,
      'request.names[0]: expected string, got number 1; ' +
        'request.names[1]: expected string, got number 2; ' +
        'request.names[2]: expected string, got number 3; and 4 more',
    );
    assert.deepStrictEqual(
      error.issues.map((issue) => issue.path),
      [
        'request.names[0]',
        'request.names[1]',
        'request.names[2]',
        'request.names[3]',
        'request.count',
        'request.key',
        'request.amount',
      ],
    );
  });

  it('never coerces', () => {
    const cases: ReadonlyArray<readonly [z.ZodType, unknown, string]> = [
      [uint, '5', 'expected number, got string of length 1'],
      [z.string(), 5, 'expected string, got number 5'],
      [bigintAmount, 1, 'expected bigint, got number 1'],
      [z.boolean(), 'true', 'expected boolean, got string of length 4'],
      [bytes(), [1, 2, 3], 'expected Uint8Array, got array of 3'],
      [bytes(), 'AQID', 'expected Uint8Array, got string of length 4'],
    ];
    for (const [schema, input, message] of cases) {
      assert.equal(schemaError(() => parseInput(schema, input, 'x')).message, `x: ${message}`);
    }
  });

  it('throws only SchemaError for arbitrary input', () => {
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withTypedArray: true }), (input) => {
        try {
          const parsed = parseInput(request, input, 'request');
          assert.equal(parsed.key.length, 32);
        } catch (error) {
          assert.ok(error instanceof SchemaError, `unexpected ${String(error)}`);
          assert.ok(error.issues.length > 0, 'at least one issue');
          assert.ok(error.message.startsWith('request'), error.message);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('reusable schemas', () => {
  it('bytes() accepts Uint8Array and Buffer and checks lengths', () => {
    const key = bytes({ length: 4 });
    assert.deepStrictEqual(
      parseInput(key, Uint8Array.of(1, 2, 3, 4), 'key'),
      Uint8Array.of(1, 2, 3, 4),
    );
    assert.ok(Buffer.isBuffer(parseInput(key, Buffer.alloc(4), 'key')), 'Buffer passes through');
    assert.equal(
      schemaError(() => parseInput(key, new Uint8Array(3), 'key')).message,
      'key: expected 4 bytes, got 3',
    );
    const bounded = bytes({ min: 2, max: 3 });
    assert.equal(parseInput(bounded, new Uint8Array(2), 'b').length, 2);
    assert.equal(parseInput(bounded, new Uint8Array(3), 'b').length, 3);
    assert.equal(
      schemaError(() => parseInput(bounded, new Uint8Array(1), 'b')).message,
      'b: expected at least 2 bytes, got 1',
    );
    assert.equal(
      schemaError(() => parseInput(bounded, new Uint8Array(4), 'b')).message,
      'b: expected at most 3 bytes, got 4',
    );
    assert.equal(
      schemaError(() => parseInput(bounded, new Uint16Array(2), 'b')).message,
      'b: expected Uint8Array, got Uint16Array',
    );
  });

  it('bytes() refuses nonsensical bounds when the schema is built', () => {
    assert.throws(() => bytes({ length: -1 }), RangeError);
    assert.throws(() => bytes({ max: 1.5 }), RangeError);
  });

  it('uint accepts 0..2^53-1 integers only', () => {
    assert.equal(parseInput(uint, 0, 'n'), 0);
    assert.equal(parseInput(uint, Number.MAX_SAFE_INTEGER, 'n'), Number.MAX_SAFE_INTEGER);
    const rejected: ReadonlyArray<readonly [unknown, string]> = [
      [-1, 'expected at least 0, got number -1'],
      [1.5, 'expected integer, got number 1.5'],
      [NaN, 'expected number, got NaN'],
      [Infinity, 'expected number, got Infinity'],
      [2 ** 53, 'expected at most 9007199254740991, got number 9007199254740992'],
      [1n, 'expected number, got bigint 1'],
    ];
    for (const [input, message] of rejected) {
      assert.equal(schemaError(() => parseInput(uint, input, 'n')).message, `n: ${message}`);
    }
  });

  it('bigintAmount accepts any non-negative bigint', () => {
    assert.equal(parseInput(bigintAmount, 0n, 'amount'), 0n);
    assert.equal(parseInput(bigintAmount, 2n ** 200n, 'amount'), 2n ** 200n);
    assert.equal(
      schemaError(() => parseInput(bigintAmount, -1n, 'amount')).message,
      'amount: expected at least 0, got bigint -1',
    );
  });

  it('nonEmptyString bounds the length', () => {
    const name = nonEmptyString(3);
    assert.equal(parseInput(name, 'abc', 'name'), 'abc');
    assert.equal(
      schemaError(() => parseInput(name, '', 'name')).message,
      'name: expected at least 1 character, got 0',
    );
    assert.equal(
      schemaError(() => parseInput(name, 'abcd', 'name')).message,
      'name: expected at most 3 characters, got 4',
    );
  });

  it('hexString accepts lowercase hex of the exact length', () => {
    const digest = hexString(2);
    assert.equal(parseInput(digest, '0aff', 'digest'), '0aff');
    assert.equal(
      schemaError(() => parseInput(digest, '0AFF', 'digest')).message,
      'digest: expected 2 bytes as 4 lowercase hex digits, got a character outside 0-9a-f',
    );
    assert.equal(
      schemaError(() => parseInput(digest, '0af', 'digest')).message,
      'digest: expected 2 bytes as 4 lowercase hex digits, got string of length 3',
    );
    assert.equal(
      schemaError(() => parseInput(digest, 0xaff, 'digest')).message,
      'digest: expected string, got number 2815',
    );
  });

  it('describes enum, literal and union mismatches', () => {
    assert.equal(
      schemaError(() => parseInput(z.enum(['a', 'b']), 'c', 'mode')).message,
      'mode: expected one of "a", "b", got string of length 1',
    );
    assert.equal(
      schemaError(() => parseInput(z.literal(1), 2, 'version')).message,
      'version: expected 1, got number 2',
    );
    assert.equal(
      schemaError(() => parseInput(z.union([z.string(), z.number()]), null, 'id')).message,
      'id: matches none of the allowed forms, got null',
    );
  });

  it('describes sizes, bounds and formats of plain zod schemas', () => {
    const cases: ReadonlyArray<readonly [z.ZodType, unknown, string]> = [
      [z.string().length(4), 'abc', 'expected exactly 4 characters, got 3'],
      [z.array(z.number()).min(2), [1], 'expected at least 2 items, got 1'],
      [z.array(z.number()).max(1), [1, 2], 'expected at most 1 item, got 2'],
      [z.set(z.number()).max(1), new Set([1, 2]), 'expected at most 1 item, got 2'],
      [z.number().gt(0), 0, 'expected more than 0, got number 0'],
      [z.number().lt(0), 0, 'expected less than 0, got number 0'],
      [z.number().multipleOf(5), 7, 'expected a multiple of 5, got number 7'],
      [z.email(), 'nobody', 'expected email format'],
      [z.string().regex(/^a+$/), 'b', 'expected a string matching /^a+$/'],
    ];
    for (const [schema, input, message] of cases) {
      assert.equal(schemaError(() => parseInput(schema, input, 'v')).message, `v: ${message}`);
    }
  });

  it('hexString refuses a nonsensical length when the schema is built', () => {
    assert.throws(() => hexString(-1), RangeError);
  });

  it('keeps messages given by the schema itself', () => {
    const sorted = z
      .array(z.number())
      .refine((list) => list.every((v, i) => i === 0 || list[i - 1]! <= v), {
        message: 'must be sorted',
      });
    assert.equal(
      schemaError(() => parseInput(sorted, [2, 1], 'list')).message,
      'list: must be sorted',
    );
  });
});
