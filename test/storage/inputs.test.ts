import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseInput, SchemaError, SchemaErrorCode } from '../../src/codec/schema.js';
import type { z } from 'zod';
import {
  MAX_STATE_KEY_BYTES,
  MAX_STATE_VALUE_BYTES,
  checkHash,
  checkSaveBlockInput,
  checkStateChanges,
  checkStateKey,
  checkUint,
  inputSchemas,
  parseHash,
  parseHeight,
  parseSaveBlockInput,
  parseStateChanges,
  parseStateKey,
  parseUint,
} from '../../src/storage/inputs.js';

/*
 * The hand-written checks stand in for the zod schemas on hot paths. They must accept exactly
 * what the schemas accept and return what the schemas return; the parse functions must fail
 * exactly as the schemas do. Both are checked here on arbitrary input built around the edges:
 * byte lengths at every bound, numbers that are not safe non-negative integers, objects with a
 * missing, extra, inherited or non-enumerable key, a `__proto__` own key, a null prototype,
 * arrays with holes.
 */

const RUNS = { numRuns: 600 };

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

function outcome(run: () => unknown): Outcome {
  try {
    return { ok: true, value: run() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** The check agrees with the schema: it accepts what the schema accepts, giving the same value. */
function agrees(check: (input: unknown) => unknown, schema: z.ZodType, input: unknown): void {
  const expected = schema.safeParse(input);
  const fast = check(input);
  assert.equal(fast !== undefined, expected.success, 'check and schema disagree on acceptance');
  if (expected.success) assert.deepStrictEqual(fast, expected.data);
}

/** The parse function returns or throws exactly what `parseInput` with the schema does. */
function parsesAs(
  parse: (input: unknown) => unknown,
  schema: z.ZodType,
  context: string,
  input: unknown,
): void {
  const got = outcome(() => parse(input));
  const expected = outcome(() => parseInput(schema, input, context));
  assert.equal(got.ok, expected.ok);
  if (got.ok && expected.ok) {
    assert.deepStrictEqual(got.value, expected.value);
  } else if (!got.ok && !expected.ok) {
    assert.ok(got.error instanceof SchemaError, `expected a SchemaError, got ${String(got.error)}`);
    assert.ok(expected.error instanceof SchemaError);
    assert.equal(got.error.code, SchemaErrorCode.INVALID);
    assert.equal(got.error.message, expected.error.message);
    assert.deepStrictEqual(got.error.issues, expected.error.issues);
    assert.deepStrictEqual(got.error.detail, expected.error.detail);
  }
}

const LENGTHS = [0, 1, 2, 31, 32, 33, MAX_STATE_KEY_BYTES - 1, MAX_STATE_KEY_BYTES];
const LENGTHS_PAST = [...LENGTHS, MAX_STATE_KEY_BYTES + 1];

const byteString = fc.oneof(
  fc.constantFrom(...LENGTHS_PAST).map((length) => new Uint8Array(length).fill(7)),
  fc.constantFrom(...LENGTHS_PAST).map((length) => Buffer.alloc(length, 9)),
  fc.uint8Array({ maxLength: 40 }),
  fc.uint8Array({ minLength: 2, maxLength: 40 }).map((bytes) => bytes.subarray(1)),
);

/** Values that are not byte strings but may look like them, or like numbers. */
const junk = fc.oneof(
  fc.anything(),
  fc.constantFrom<unknown>(
    undefined,
    null,
    0,
    -0,
    -1,
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 1,
    2 ** 64,
    1n,
    '1',
    'root',
    true,
    [],
    {},
    new Uint16Array(32),
    new Int8Array(32),
    new Uint8ClampedArray(32),
    new DataView(new ArrayBuffer(32)),
    new ArrayBuffer(32),
    [1, 2, 3],
  ),
);

const integer = fc.oneof(
  { weight: 30, arbitrary: fc.nat() },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      0,
      -0,
      Number.MAX_SAFE_INTEGER,
      Number.MAX_SAFE_INTEGER + 1,
      -1,
      0.5,
    ),
  },
);

/** Mostly the valid form, sometimes anything else. */
const field = <T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 30, arbitrary: valid }, { weight: 1, arbitrary: junk });

/** Usually null, now and then one of `values`. */
const rarely = <T>(...values: T[]): fc.Arbitrary<T | null> =>
  fc.oneof(
    { weight: 20, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.constantFrom(...values) },
  );

const EXTRA_KEYS = ['extra', '__proto__', 'toString', 'constructor', 'Key', ''] as const;

interface Shape {
  readonly values: Record<string, unknown>;
  readonly drop: string | null;
  readonly extra: (typeof EXTRA_KEYS)[number] | null;
  readonly extraEnumerable: boolean;
  readonly form: 'plain' | 'inherited' | 'null prototype' | 'class instance' | 'array';
}

function build({ values, drop, extra, extraEnumerable, form }: Shape): object {
  const own: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(values)) if (name !== drop) own[name] = value;
  if (extra !== null) {
    // defineProperty, so `__proto__` becomes an own key rather than the prototype.
    Object.defineProperty(own, extra, {
      value: 1,
      enumerable: extraEnumerable,
      writable: true,
      configurable: true,
    });
  }
  switch (form) {
    case 'plain':
      return own;
    case 'inherited':
      return Object.create(own) as object;
    case 'null prototype': {
      const bare = Object.create(null) as Record<string, unknown>;
      for (const name of Reflect.ownKeys(own)) {
        Object.defineProperty(bare, name, Object.getOwnPropertyDescriptor(own, name)!);
      }
      return bare;
    }
    case 'class instance':
      return Object.assign(new (class Fields {})(), own);
    case 'array':
      return Object.assign([], own);
  }
}

/** Objects with the given fields, sometimes one missing, an extra key, or an unusual form. */
function objectOf(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> {
  const names = Object.keys(fields);
  const shaped = fc
    .record({
      values: fc.record(fields),
      drop: rarely(...names),
      extra: rarely(...EXTRA_KEYS),
      extraEnumerable: fc.boolean(),
      form: fc.constantFrom<Shape['form']>(
        'plain',
        'plain',
        'plain',
        'plain',
        'inherited',
        'null prototype',
        'class instance',
        'array',
      ),
    })
    .map(build);
  return fc.oneof({ weight: 30, arbitrary: shaped }, { weight: 1, arbitrary: junk });
}

/** Arrays of `element`, sometimes with a hole or an extra property. */
function arrayOf(element: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  const arrays = fc
    .record({
      items: fc.array(element, { maxLength: 4 }),
      hole: fc.nat({ max: 40 }),
      tagged: fc.boolean(),
    })
    .map(({ items, hole, tagged }) => {
      const array: unknown[] = [...items];
      if (hole < array.length) delete array[hole];
      if (tagged) Object.assign(array, { note: 'an array property zod ignores' });
      return array;
    });
  return fc.oneof({ weight: 30, arbitrary: arrays }, { weight: 1, arbitrary: junk });
}

const bytesOfLength = (length: number) =>
  fc.oneof(
    { weight: 30, arbitrary: fc.uint8Array({ minLength: length, maxLength: length }) },
    { weight: 1, arbitrary: byteString },
  );
const hash = bytesOfLength(32);
/** Mostly short valid byte strings, sometimes one of any length around the bounds. */
const someBytes = (minLength: number) =>
  fc.oneof(
    { weight: 30, arbitrary: fc.uint8Array({ minLength, maxLength: 24 }) },
    { weight: 1, arbitrary: byteString },
  );
const nonEmpty = someBytes(1);
const stateKey = someBytes(1);
const stateValue = fc.oneof(fc.constant(null), someBytes(0));

const stateChange = objectOf({ key: field(stateKey), value: field(stateValue) });
const stateChanges = arrayOf(stateChange);
const evidence = objectOf({ hash: field(hash), bytes: field(nonEmpty) });
const block = objectOf({
  height: field(integer),
  hash: field(hash),
  parentHash: field(hash),
  timeMs: field(integer),
  bytes: field(nonEmpty),
});
const saveBlockInput = objectOf({
  block,
  commit: field(nonEmpty),
  evidence: arrayOf(evidence),
  stateChanges,
  stateRoot: field(hash),
  // Optional: present, present but undefined, or (rarely, `drop`) absent.
  validatorUpdates: fc.oneof(field(nonEmpty), fc.constant(undefined)),
  // Often absent, so enough whole inputs stay valid (the receipts' own shapes vary a lot).
  receipts: fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    arrayOf(
      objectOf({
        txHash: field(hash),
        index: field(integer),
        bytes: field(nonEmpty),
        // Accounts of 1..64 bytes, sometimes around the bounds.
        accounts: arrayOf(
          fc.oneof(
            { weight: 30, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }) },
            { weight: 1, arbitrary: fc.uint8Array({ minLength: 63, maxLength: 66 }) },
            { weight: 1, arbitrary: byteString },
          ),
        ),
      }),
    ),
  ),
});

describe('storage input checks', () => {
  it('a state key: the check and parseStateKey agree with the schema', () => {
    fc.assert(
      fc.property(fc.oneof(stateKey, junk), (input) => {
        agrees(checkStateKey, inputSchemas.stateKey, input);
        parsesAs(parseStateKey, inputSchemas.stateKey, 'key', input);
      }),
      { numRuns: 1000 },
    );
  });

  it('a hash: the check and parseHash agree with the schema', () => {
    fc.assert(
      fc.property(fc.oneof(hash, junk), (input) => {
        agrees(checkHash, inputSchemas.hash, input);
        parsesAs(parseHash, inputSchemas.hash, 'hash', input);
      }),
      { numRuns: 1000 },
    );
  });

  it('a height or count: the check, parseUint and parseHeight agree with the schemas', () => {
    fc.assert(
      fc.property(fc.oneof(integer, junk), (input) => {
        agrees(checkUint, inputSchemas.uint, input);
        parsesAs((value) => parseUint(value, 'limit'), inputSchemas.uint, 'limit', input);
        parsesAs(parseHeight, inputSchemas.height, 'height', input);
      }),
      { numRuns: 1000 },
    );
    assert.equal(parseHeight(undefined), undefined);
    assert.ok(Object.is(parseHeight(-0), -0), 'zod keeps -0 as it is');
  });

  it('state changes: the check and parseStateChanges agree with the schema', () => {
    fc.assert(
      fc.property(stateChanges, (input) => {
        agrees(checkStateChanges, inputSchemas.stateChanges, input);
        parsesAs(parseStateChanges, inputSchemas.stateChanges, 'stateChanges', input);
      }),
      RUNS,
    );
  });

  it('a saveBlock input: the check and parseSaveBlockInput agree with the schema', () => {
    fc.assert(
      fc.property(saveBlockInput, (input) => {
        agrees(checkSaveBlockInput, inputSchemas.saveBlock, input);
        parsesAs(parseSaveBlockInput, inputSchemas.saveBlock, 'saveBlock', input);
      }),
      RUNS,
    );
  });

  it('the generated inputs reach both outcomes', () => {
    // Guards the tests above against generators that only ever produce one kind of input.
    const cases: Array<[fc.Arbitrary<unknown>, (input: unknown) => unknown]> = [
      [saveBlockInput, checkSaveBlockInput],
      [stateChanges, checkStateChanges],
    ];
    for (const [arbitrary, check] of cases) {
      const sample = fc.sample(arbitrary, { numRuns: 400, seed: 1 });
      const accepted = sample.filter((input) => check(input) !== undefined).length;
      assert.ok(accepted > 40, `only ${accepted} of 400 generated inputs are valid`);
      assert.ok(accepted < 360, `${accepted} of 400 generated inputs are valid`);
    }
  });

  it('a value of exactly the largest size is accepted and one byte more is not', () => {
    const key = new Uint8Array([1]);
    const largest = [{ key, value: new Uint8Array(MAX_STATE_VALUE_BYTES) }];
    const tooLarge = [{ key, value: new Uint8Array(MAX_STATE_VALUE_BYTES + 1) }];
    for (const input of [largest, tooLarge]) {
      agrees(checkStateChanges, inputSchemas.stateChanges, input);
      parsesAs(parseStateChanges, inputSchemas.stateChanges, 'stateChanges', input);
    }
    assert.throws(() => parseStateChanges(tooLarge), {
      code: SchemaErrorCode.INVALID,
      message: `stateChanges[0].value: expected at most ${MAX_STATE_VALUE_BYTES} bytes, got ${MAX_STATE_VALUE_BYTES + 1}`,
    });
  });

  it('errors name the field and the problem', () => {
    const cases: Array<[() => unknown, string]> = [
      [() => parseStateKey(new Uint8Array(0)), 'key: expected at least 1 bytes, got 0'],
      [
        () => parseStateKey(new Uint8Array(MAX_STATE_KEY_BYTES + 1)),
        `key: expected at most ${MAX_STATE_KEY_BYTES} bytes, got ${MAX_STATE_KEY_BYTES + 1}`,
      ],
      [() => parseStateKey('key'), 'key: expected Uint8Array, got string of length 3'],
      [() => parseHeight(-1), 'height: expected at least 0, got number -1'],
      [() => parseHeight(1.5), 'height: expected integer, got number 1.5'],
      [() => parseUint('7', 'limit'), 'limit: expected number, got string of length 1'],
      [() => parseHash(new Uint8Array(31)), 'hash: expected 32 bytes, got 31'],
      [
        () => parseStateChanges([{ key: new Uint8Array(1) }]),
        'stateChanges[0].value: expected Uint8Array, got undefined',
      ],
      [
        () => parseStateChanges([{ key: new Uint8Array(1), value: null, extra: 1 }]),
        'stateChanges[0]: unexpected key "extra"',
      ],
      [() => parseSaveBlockInput(null), 'saveBlock: expected object, got null'],
    ];
    for (const [parse, message] of cases) {
      assert.throws(parse, (error: unknown) => {
        assert.ok(error instanceof SchemaError);
        assert.equal(error.code, SchemaErrorCode.INVALID);
        assert.equal(error.message, message);
        return true;
      });
    }
  });

  it('accepted input comes back as new objects and arrays holding the same byte arrays', () => {
    const key = new Uint8Array([1, 2]);
    const changes = [{ key, value: null }];
    const parsed = parseStateChanges(changes);
    assert.notEqual(parsed, changes);
    assert.notEqual(parsed[0], changes[0]);
    assert.equal(parsed[0]!.key, key);
    assert.equal(parseStateKey(key), key);
  });
});
