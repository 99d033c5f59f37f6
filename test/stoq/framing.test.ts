import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import {
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

  it('refuses a bad header with MALFORMED_FRAME and a reason, decoding no request', () => {
    const reasonOf = (payload: Uint8Array): unknown => {
      try {
        readCallHeader(payload, MAX_ITEMS);
      } catch (error) {
        isStoqError(StoqErrorCode.MALFORMED_FRAME)(error);
        return (error as StoqError).detail.reason;
      }
      return 'accepted';
    };
    const cbor = (value: unknown): Uint8Array => encodePayload(value);
    const join = (...parts: (Uint8Array | string)[]): Uint8Array =>
      concatBytes(...parts.map((part) => (typeof part === 'string' ? fromHex(part) : part)));
    const method = join(cbor('method'), cbor('a.v1/b'));
    const kind = join(cbor('kind'), cbor('unary'));
    const requestKey = cbor('request');
    const valid = join('a3', kind, method, requestKey, '01');
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
      ['no request', join('a2', kind, method), 'header'],
      ['a duplicate key', join('a3', kind, method, method), 'cbor'],
      ['trailing bytes', join(valid, '00'), 'cbor'],
      ['truncated', valid.subarray(0, valid.length - 1), 'cbor'],
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
    ];
    for (const [what, payload, reason] of cases) assert.equal(reasonOf(payload), reason, what);
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
    assert.equal(
      readCallHeader(
        join('a3', kind, method, requestKey, '9903e7', new Uint8Array(999).fill(0xa0)),
        MAX_ITEMS,
      ).requestBytes?.length,
      1002,
      'exactly the budget',
    );
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
