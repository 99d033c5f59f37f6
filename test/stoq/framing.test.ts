import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import {
  DEFAULT_MAX_FRAME_ITEMS,
  FRAME_PREFIX_BYTES,
  FrameDecoder,
  decodePayload,
  encodeFrame,
  encodeFrames,
  encodePayload,
} from '../../src/stoq/rpc/framing.js';
import { readCallHeader } from '../../src/stoq/rpc/call-header.js';
import { encodeCallHeader, parseCallHeader, parseWireFrame } from '../../src/stoq/rpc/wire.js';
import { concatBytes, fromHex } from '../../src/crypto/bytes.js';
import { isStoqError } from '../helpers/stoq-error.js';

/** Splits `bytes` at the given cut points (sorted, deduplicated, within bounds). */
function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}

/**
 * CBOR-encodable values as STOQ messages carry them (no undefined, NaN or infinities). The JSON
 * round trip folds -0 into 0: the canonical encoder writes -0 as the integer 0.
 */
const message = fc.jsonValue().map((value) => ({
  value: JSON.parse(JSON.stringify(value)) as unknown,
  bytes: new Uint8Array([1, 2, 3]),
}));

describe('STOQ framing', () => {
  it('round-trips random message sequences through random chunk splits', () => {
    fc.assert(
      fc.property(
        fc.array(message, { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (messages, cuts) => {
          const payloads = messages.map((value) => encodePayload(value));
          const wire = encodeFrames(
            payloads,
            payloads.reduce((sum, p) => sum + p.length, 0),
          );
          const decoder = new FrameDecoder(1 << 20);
          const received: unknown[] = [];
          for (const chunk of split(wire, cuts)) {
            for (const payload of decoder.push(chunk)) received.push(decodePayload(payload));
          }
          decoder.end();
          assert.deepEqual(received, messages);
          assert.equal(decoder.partialBytes, 0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('delivers frames byte by byte and coalesced alike', () => {
    const payloads = [new Uint8Array(0), new Uint8Array([7]), new Uint8Array(300).fill(9)];
    const wire = encodeFrames(payloads, 301);
    const byteByByte = new FrameDecoder();
    const frames: Uint8Array[] = [];
    for (const byte of wire) frames.push(...byteByByte.push(Uint8Array.of(byte)));
    assert.deepEqual(frames, payloads);
    assert.deepEqual(new FrameDecoder().push(wire), payloads);
  });

  it('rejects an oversized length prefix before buffering any payload', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1025, max: 0xffff_ffff }),
        fc.nat({ max: 3 }),
        (length, cut) => {
          const decoder = new FrameDecoder(1024);
          const prefix = new Uint8Array(FRAME_PREFIX_BYTES);
          new DataView(prefix.buffer).setUint32(0, length, false);
          // The prefix may itself arrive split; the error comes with its last byte.
          const head = prefix.subarray(0, cut);
          assert.deepEqual(decoder.push(head), []);
          assert.throws(
            () => decoder.push(prefix.subarray(cut)),
            (error: unknown) => {
              isStoqError(StoqErrorCode.FRAME_TOO_LARGE)(error);
              assert.equal((error as StoqError).detail.length, length);
              return true;
            },
          );
          // Nothing of the claimed payload was allocated or held.
          assert.equal(decoder.partialBytes, 0);
          // The decoder stays failed: the stream is out of sync.
          assert.throws(
            () => decoder.push(new Uint8Array(1)),
            isStoqError(StoqErrorCode.FRAME_TOO_LARGE),
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('accepts a frame of exactly the limit and refuses one byte more on the sending side', () => {
    const decoder = new FrameDecoder(16);
    assert.equal(decoder.push(encodeFrame(new Uint8Array(16), 16))[0]?.length, 16);
    assert.throws(
      () => encodeFrame(new Uint8Array(17), 16),
      isStoqError(StoqErrorCode.FRAME_TOO_LARGE),
    );
  });

  it('holds only received bytes of a large frame that is still arriving', () => {
    const decoder = new FrameDecoder(1 << 20);
    const wire = encodeFrame(new Uint8Array(1 << 20).fill(5), 1 << 20);
    assert.deepEqual(decoder.push(wire.subarray(0, 1000)), []);
    assert.equal(decoder.partialBytes, 1000 - FRAME_PREFIX_BYTES);
    assert.ok(decoder.inFrame);
    const [frame] = decoder.push(wire.subarray(1000));
    assert.equal(frame?.length, 1 << 20);
    assert.equal(frame?.[12345], 5);
    assert.equal(decoder.inFrame, false);
  });

  it('reports a stream that ends inside a frame as MALFORMED_FRAME (truncated)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), (payload, cut) => {
        const wire = encodeFrame(payload, 1024);
        const decoder = new FrameDecoder(1024);
        decoder.push(wire.subarray(0, 1 + (cut % (wire.length - 1))));
        assert.throws(
          () => decoder.end(),
          (error: unknown) => {
            isStoqError(StoqErrorCode.MALFORMED_FRAME)(error);
            assert.equal((error as StoqError).detail.reason, 'truncated');
            return true;
          },
        );
      }),
    );
  });

  it('turns garbage payloads into MALFORMED_FRAME or a typed wire error, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => {
        let value: unknown;
        try {
          value = decodePayload(garbage);
        } catch (error) {
          isStoqError(StoqErrorCode.MALFORMED_FRAME)(error);
          return;
        }
        // Well-formed CBOR that is not a valid frame is rejected by the wire parsers.
        for (const parse of [parseWireFrame, parseCallHeader]) {
          try {
            parse(value);
          } catch (error) {
            assert.ok(error instanceof StoqError, `untyped error ${String(error)}`);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects random byte streams with typed errors only', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (chunks) => {
        const decoder = new FrameDecoder(4096);
        try {
          for (const chunk of chunks) {
            for (const payload of decoder.push(chunk)) decodePayload(payload);
          }
          decoder.end();
        } catch (error) {
          assert.ok(error instanceof StoqError, `untyped error ${String(error)}`);
          assert.ok(
            [StoqErrorCode.FRAME_TOO_LARGE, StoqErrorCode.MALFORMED_FRAME].includes(error.code),
            error.code,
          );
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('recognises message and status frames and rejects other shapes', () => {
    assert.deepEqual(parseWireFrame([0, { a: 1 }]), { type: 0, message: { a: 1 } });
    const status = parseWireFrame([1, 'NOT_FOUND', 'no such method']);
    assert.equal(status.type, 1);
    const unknown = parseWireFrame([1, 'TEAPOT', 'hm', { x: 1 }]);
    assert.ok(unknown.type === 1 && unknown.status.code === StoqErrorCode.INTERNAL);
    for (const bad of [[], [2, 1], [0], [1, 5, 'x'], [1, 'OK', 'x', [1]], { 0: 0 }, 'x', null]) {
      assert.throws(() => parseWireFrame(bad), isStoqError(StoqErrorCode.MALFORMED_FRAME));
    }
  });

  it('checks call headers strictly', () => {
    assert.deepEqual(parseCallHeader({ method: 'a.v1/b', kind: 'unary', request: 1 }), {
      method: 'a.v1/b',
      kind: 'unary',
      request: 1,
    });
    for (const bad of [
      { method: 5, kind: 'unary', request: 1 },
      { method: 'a/b', kind: 'bidi', request: 1 },
      { method: 'a/b', kind: 'unary' },
      { method: 'a/b', kind: 'messageStream', request: 1 },
      { method: 'a/b', kind: 'unary', request: 1, deadlineMs: 0 },
      { method: 'a/b', kind: 'unary', request: 1, deadlineMs: 1.5 },
      { method: 'a/b', kind: 'unary', request: 1, extra: true },
      [0, 1],
    ]) {
      assert.throws(
        () => parseCallHeader(bad),
        (error: unknown) => {
          isStoqError(StoqErrorCode.MALFORMED_FRAME)(error);
          assert.equal((error as StoqError).detail.reason, 'header');
          return true;
        },
      );
    }
  });
});

describe('readCallHeader', () => {
  const MAX_ITEMS = 1_000;

  it('reads what encodeCallHeader wrote, leaving the request as its CBOR bytes', () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            method: fc.string({ minLength: 1, maxLength: 40 }),
            kind: fc.constantFrom('unary', 'serverStream', 'oneWay'),
            deadlineMs: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
            request: fc.jsonValue({ maxDepth: 3 }),
          },
          { requiredKeys: ['method', 'kind', 'request'] },
        ),
        (header) => {
          const read = readCallHeader(encodePayload(encodeCallHeader(header)), MAX_ITEMS);
          assert.equal(read.method, header.method);
          assert.equal(read.kind, header.kind);
          assert.equal(read.deadlineMs, header.deadlineMs);
          assert.ok(read.requestBytes);
          assert.deepEqual(
            decodePayload(read.requestBytes),
            decodePayload(encodePayload(header.request)),
          );
        },
      ),
      { numRuns: 300 },
    );
    const stream = readCallHeader(
      encodePayload({ method: 'a.v1/b', kind: 'messageStream' }),
      MAX_ITEMS,
    );
    assert.deepEqual(stream, { method: 'a.v1/b', kind: 'messageStream' });
  });

  const failureOf = (payload: Uint8Array, maxItems = MAX_ITEMS): StoqError | 'accepted' => {
    try {
      readCallHeader(payload, maxItems);
    } catch (error) {
      isStoqError(StoqErrorCode.MALFORMED_FRAME)(error);
      return error as StoqError;
    }
    return 'accepted';
  };
  const reasonOf = (payload: Uint8Array, maxItems = MAX_ITEMS): unknown => {
    const failure = failureOf(payload, maxItems);
    return failure === 'accepted' ? failure : failure.detail.reason;
  };
  const cbor = (value: unknown): Uint8Array => encodePayload(value);
  const join = (...parts: (Uint8Array | string)[]): Uint8Array =>
    concatBytes(...parts.map((part) => (typeof part === 'string' ? fromHex(part) : part)));
  const method = join(cbor('method'), cbor('a.v1/b'));
  const kind = join(cbor('kind'), cbor('unary'));
  const requestKey = cbor('request');
  const valid = join('a3', kind, method, requestKey, '01');
  /** An array of `count` empty maps, its head in shortest form. */
  const arrayOfEmptyMaps = (count: number): Uint8Array => {
    assert.ok(count >= 256 && count < 2 ** 32);
    const wide = count >= 65_536;
    const head = new Uint8Array(wide ? 5 : 3);
    head[0] = wide ? 0x9a : 0x99;
    if (wide) new DataView(head.buffer).setUint32(1, count);
    else new DataView(head.buffer).setUint16(1, count);
    return join(head, new Uint8Array(count).fill(0xa0));
  };

  it('refuses a bad header with MALFORMED_FRAME and a reason, decoding no request', () => {
    assert.equal(reasonOf(valid), 'accepted');
    assert.equal(reasonOf(join('a3', requestKey, '01', method, kind)), 'accepted', 'any order');

    const cases: [string, Uint8Array, string][] = [
      ['not a map', cbor(['a.v1/b']), 'header'],
      [
        'five entries',
        cbor({ method: 'a', kind: 'unary', request: 1, deadlineMs: 5, x: 1 }),
        'header',
      ],
      ['an integer key', join('a1', '01', '02'), 'header'],
      ['an unknown key', join('a3', kind, method, cbor('extra'), '01'), 'header'],
      // A value that could not even be read: the key alone refuses it.
      [
        'an unknown key before a reserved head',
        join('a3', kind, method, cbor('extra'), '1c'),
        'header',
      ],
      ['an unknown key with ill-formed UTF-8', join('a3', kind, method, '62c328', '01'), 'header'],
      ['no request', join('a2', kind, method), 'header'],
      ['a duplicate key', join('a3', kind, method, method), 'cbor'],
      ['a duplicate request', join('a3', kind, requestKey, '01', requestKey, '01'), 'cbor'],
      ['trailing bytes', join(valid, '00'), 'cbor'],
      ['truncated', valid.subarray(0, valid.length - 1), 'cbor'],
      ['a truncated key', join('a3', kind, method, '67726571'), 'cbor'],
      ['an indefinite-length request', join('a3', kind, method, requestKey, '9fff'), 'cbor'],
      ['a reserved head', join('a3', kind, method, requestKey, '1c'), 'cbor'],
      ['a byte string past the end', join('a3', kind, method, requestKey, '5a00010000'), 'cbor'],
      ['more items than announced bytes', join('a3', kind, method, requestKey, '9864'), 'cbor'],
      [
        'ill-formed UTF-8 in the method',
        join('a3', kind, cbor('method'), '61ff', requestKey, '01'),
        'cbor',
      ],
      [
        'a request over the item budget',
        join('a3', kind, method, requestKey, '9903e8', new Uint8Array(1000).fill(0xa0)),
        'too-many-items',
      ],
      // Each value's head is checked against the schema before the value is read.
      ['an array method', join('a3', kind, cbor('method'), '8161', requestKey, '01'), 'header'],
      [
        'a method longer than any name',
        join('a3', kind, cbor('method'), cbor('m'.repeat(769)), requestKey, '01'),
        'header',
      ],
      ['a map kind', join('a3', method, cbor('kind'), 'a0', requestKey, '01'), 'header'],
      [
        'a kind longer than any kind',
        join('a3', method, cbor('kind'), cbor('messageStreams'), requestKey, '01'),
        'header',
      ],
      [
        'an unknown kind',
        join('a3', method, cbor('kind'), cbor('binary'), requestKey, '01'),
        'header',
      ],
      [
        'a float deadline',
        join('a4', kind, method, cbor('deadlineMs'), 'f94500', requestKey, '01'),
        'header',
      ],
      [
        'a negative deadline',
        join('a4', kind, method, cbor('deadlineMs'), '20', requestKey, '01'),
        'header',
      ],
      [
        'a zero deadline',
        join('a4', kind, method, cbor('deadlineMs'), '00', requestKey, '01'),
        'header',
      ],
      [
        'a deadline past 2^53',
        join('a4', kind, method, cbor('deadlineMs'), '1bffffffffffffffff', requestKey, '01'),
        'header',
      ],
      [
        'an array deadline over the budget',
        join('a4', kind, method, cbor('deadlineMs'), '9903e8', requestKey, '01'),
        'header',
      ],
    ];
    for (const [what, payload, reason] of cases) assert.equal(reasonOf(payload), reason, what);
    assert.equal(
      readCallHeader(
        join('a4', kind, method, cbor('deadlineMs'), '1a7fffffff', requestKey, '01'),
        16,
      ).deadlineMs,
      2 ** 31 - 1,
    );
    // Within the budget, the request is only delimited: ill-formed UTF-8 in it waits for the
    // decode that follows the permission check.
    const lazy = readCallHeader(join('a3', kind, method, requestKey, '81', '61ff'), MAX_ITEMS);
    assert.ok(lazy.requestBytes);
    assert.throws(
      () => decodePayload(lazy.requestBytes as Uint8Array),
      (error: unknown) => {
        isStoqError(StoqErrorCode.MALFORMED_FRAME)(error);
        assert.equal((error as StoqError).detail.reason, 'cbor');
        return true;
      },
    );
  });

  it('shares one item budget across the whole header, counted as the strict decoder counts', () => {
    // The root map, three keys, method and kind: 6 items, so the request may hold 994.
    const header = (requestItems: number): Uint8Array =>
      join('a3', kind, method, requestKey, arrayOfEmptyMaps(requestItems - 1));
    const atBudget = header(994);
    assert.equal(
      readCallHeader(atBudget, MAX_ITEMS).requestBytes?.length,
      3 + 993,
      'exactly the budget',
    );
    decodePayload(atBudget, MAX_ITEMS);
    const overBudget = header(995);
    assert.equal(reasonOf(overBudget), 'too-many-items', 'one item over, counting the header');
    assert.throws(() => decodePayload(overBudget, MAX_ITEMS), /more than 1000 data items/);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 7, max: 60 }),
        fc.boolean(),
        (maps, maxItems, withDeadline) => {
          const payload = cbor(
            encodeCallHeader({
              method: 'a.v1/b',
              kind: 'unary',
              ...(withDeadline ? { deadlineMs: 5 } : {}),
              request: Array.from({ length: maps }, () => ({})),
            }),
          );
          let strict: unknown = 'accepted';
          try {
            decodePayload(payload, maxItems);
          } catch (error) {
            strict = (error as StoqError).detail.reason;
          }
          assert.equal(reasonOf(payload, maxItems), strict);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses a 1 MiB header of unknown keys before reading any of their values', () => {
    // Four unknown keys, each holding 262,143 empty maps: under a budget per value, ~1 Mi
    // objects (~200 ms) were built before the schema refused the keys.
    const hog = arrayOfEmptyMaps(262_143);
    const payload = join('a4', cbor('a'), hog, cbor('b'), hog, cbor('c'), hog, cbor('d'), hog);
    assert.ok(payload.length > 1024 * 1024);
    const started = performance.now();
    const failure = failureOf(payload, DEFAULT_MAX_FRAME_ITEMS);
    const elapsedMs = performance.now() - started;
    assert.notEqual(failure, 'accepted');
    const error = failure as StoqError;
    assert.equal(error.detail.reason, 'header');
    assert.match(error.message, /key is not one of method, kind, deadlineMs, request/);
    assert.ok(elapsedMs < 50, `refused in ${elapsedMs.toFixed(1)} ms`);

    // The known keys' values are held to their type by their heads alone.
    for (const key of ['method', 'kind', 'deadlineMs']) {
      const bad = join('a3', cbor(key), hog, cbor('b'), hog, cbor('c'), hog);
      const from = performance.now();
      assert.equal(reasonOf(bad, DEFAULT_MAX_FRAME_ITEMS), 'header', key);
      assert.ok(performance.now() - from < 50, key);
    }
    // The request alone may not spend the budget the rest of the header shares.
    assert.equal(
      reasonOf(
        join('a3', kind, method, requestKey, arrayOfEmptyMaps(DEFAULT_MAX_FRAME_ITEMS - 1)),
        DEFAULT_MAX_FRAME_ITEMS,
      ),
      'too-many-items',
    );
  });

  it('refuses __proto__ as a key, whatever it holds', () => {
    const proto = cbor('__proto__');
    const cases: [string, Uint8Array][] = [
      [
        'a prototype carrying method and kind',
        join('a2', proto, cbor({ method: 'svc/m', kind: 'oneWay' }), requestKey, '01'),
      ],
      [
        'a text prototype beside a valid header',
        join('a4', kind, method, requestKey, '01', proto, cbor('zzz')),
      ],
      ['a null prototype', join('a4', kind, method, requestKey, '01', proto, 'f6')],
    ];
    for (const [what, payload] of cases) {
      const failure = failureOf(payload);
      assert.notEqual(failure, 'accepted', what);
      assert.equal((failure as StoqError).detail.reason, 'header', what);
      assert.match((failure as StoqError).message, /not one of/, what);
    }
    assert.equal(Object.getPrototypeOf(readCallHeader(valid, MAX_ITEMS)), Object.prototype);
  });

  it('refuses arguments not in their shortest form, in the header and in the request', () => {
    // RFC 8949 §4.2.1, as the strict decoder (cborg `strict`) refuses them.
    const nonMinimal: [string, Uint8Array][] = [
      ['a map head with a one-byte count', join('b803', kind, method, requestKey, '01')],
      [
        'a key length in one byte',
        join('a3', kind, '7806', fromHex('6d6574686f64'), cbor('a.v1/b'), requestKey, '01'),
      ],
      [
        'a method length in two bytes',
        join('a3', kind, cbor('method'), '790006', fromHex('612e76312f62'), requestKey, '01'),
      ],
      [
        'a deadline in two bytes',
        join('a4', kind, method, cbor('deadlineMs'), '190005', requestKey, '01'),
      ],
      ['a request integer in one byte', join('a3', kind, method, requestKey, '1801')],
      ['a request array length in one byte', join('a3', kind, method, requestKey, '980100')],
      [
        'a request map count in four bytes',
        join('a3', kind, method, requestKey, '8181ba00000001', '0000'),
      ],
      [
        'a request byte-string length in eight bytes',
        join('a3', kind, method, requestKey, '5b0000000000000001', '00'),
      ],
      ['a request tag number in one byte', join('a3', kind, method, requestKey, 'd80100')],
      ['a request negative integer in two bytes', join('a3', kind, method, requestKey, '390010')],
      [
        'a one-byte simple value below 32 in the request',
        join('a3', kind, method, requestKey, 'f814'),
      ],
    ];
    for (const [what, payload] of nonMinimal) {
      assert.equal(reasonOf(payload), 'cbor', what);
      assert.throws(() => decodePayload(payload), StoqError, `${what}: the strict decoder agrees`);
    }
    // The shortest forms at each boundary are fine.
    for (const request of [
      '17',
      '1818',
      '18ff',
      '190100',
      '1a00010000',
      '1b0000000100000000',
      'f820',
      'f94500',
    ]) {
      assert.equal(reasonOf(join('a3', kind, method, requestKey, request)), 'accepted', request);
    }
  });

  it('turns random bytes into a header or MALFORMED_FRAME, never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          readCallHeader(bytes, 16);
        } catch (error) {
          isStoqError(StoqErrorCode.MALFORMED_FRAME)(error);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});
