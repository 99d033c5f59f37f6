import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { StoqError, StoqErrorCode } from '../../src/stoq/errors.js';
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameType,
  MAX_DATA_PAYLOAD,
  type Frame,
} from '../../src/stoq/tls/frame.js';

const streamId = fc.integer({ min: 1, max: 0xffffffff });

const frameArbitrary: fc.Arbitrary<Frame> = fc.oneof(
  fc
    .tuple(fc.constantFrom(FrameType.OPEN, FrameType.FIN, FrameType.RESET), streamId)
    .map(([type, id]) => ({ type, streamId: id }) as Frame),
  fc
    .tuple(streamId, fc.uint8Array({ maxLength: 2048 }))
    .map(([id, data]) => ({ type: FrameType.DATA, streamId: id, data }) as Frame),
  fc
    .tuple(streamId, fc.integer({ min: 1, max: 0xffffffff }))
    .map(([id, credit]) => ({ type: FrameType.WINDOW_UPDATE, streamId: id, credit }) as Frame),
  fc
    .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.string({ maxLength: 100 }))
    .map(([code, reason]) => ({ type: FrameType.GOAWAY, streamId: 0, code, reason }) as Frame),
);

/** Frames compared field by field, with DATA payloads as plain arrays. */
function comparable(frame: Frame): unknown {
  return frame.type === FrameType.DATA ? { ...frame, data: [...frame.data] } : frame;
}

function header(type: number, id: number, length: number): Buffer {
  const bytes = Buffer.alloc(FRAME_HEADER_BYTES);
  bytes[0] = type;
  bytes.writeUInt32BE(id, 1);
  bytes.writeUInt32BE(length, 5);
  return bytes;
}

function decodeError(bytes: Uint8Array): StoqError {
  try {
    new FrameDecoder().push(bytes);
  } catch (error) {
    assert.ok(error instanceof StoqError, `expected a StoqError, got ${String(error)}`);
    return error;
  }
  assert.fail('decoder accepted a malformed frame');
}

describe('STOQ multiplexer frames', () => {
  it('decode to what was encoded, however the bytes are split', () => {
    fc.assert(
      fc.property(
        fc.array(frameArbitrary, { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 4096 }), { minLength: 1, maxLength: 50 }),
        (frames, cuts) => {
          const wire = Buffer.concat(frames.map(encodeFrame));
          const decoder = new FrameDecoder();
          const decoded: Frame[] = [];
          let offset = 0;
          for (let i = 0; offset < wire.length; i++) {
            const size = cuts[i % cuts.length] as number;
            decoded.push(...decoder.push(wire.subarray(offset, offset + size)));
            offset += size;
          }
          assert.deepEqual(decoded.map(comparable), frames.map(comparable));
          assert.equal(decoder.buffered, 0);
        },
      ),
    );
  });

  it('never throws anything but a StoqError on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }), (pieces) => {
        const decoder = new FrameDecoder();
        try {
          for (const piece of pieces) decoder.push(piece);
        } catch (error) {
          assert.ok(error instanceof StoqError);
          assert.ok(
            [StoqErrorCode.MALFORMED_FRAME, StoqErrorCode.FRAME_TOO_LARGE].includes(error.code),
          );
        }
      }),
    );
  });

  it('rejects an oversize DATA frame from its header, before buffering the payload', () => {
    const error = decodeError(header(FrameType.DATA, 1, MAX_DATA_PAYLOAD + 1));
    assert.equal(error.code, StoqErrorCode.FRAME_TOO_LARGE);
    assert.throws(
      () =>
        encodeFrame({
          type: FrameType.DATA,
          streamId: 1,
          data: new Uint8Array(MAX_DATA_PAYLOAD + 1),
        }),
      (thrown: unknown) => thrown instanceof StoqError && thrown.code === 'FRAME_TOO_LARGE',
    );
  });

  const malformed: [string, Uint8Array][] = [
    ['an unknown frame type', header(9, 1, 0)],
    ['an OPEN with a payload', Buffer.concat([header(FrameType.OPEN, 1, 1), Buffer.of(0)])],
    ['a FIN on stream 0', header(FrameType.FIN, 0, 0)],
    ['DATA on stream 0', Buffer.concat([header(FrameType.DATA, 0, 1), Buffer.of(0)])],
    [
      'a WINDOW_UPDATE of 3 bytes',
      Buffer.concat([header(FrameType.WINDOW_UPDATE, 1, 3), Buffer.alloc(3)]),
    ],
    [
      'a WINDOW_UPDATE of zero',
      Buffer.concat([header(FrameType.WINDOW_UPDATE, 1, 4), Buffer.alloc(4)]),
    ],
    ['a GOAWAY on a stream', Buffer.concat([header(FrameType.GOAWAY, 3, 4), Buffer.alloc(4)])],
    ['a GOAWAY without its code', Buffer.concat([header(FrameType.GOAWAY, 0, 2), Buffer.alloc(2)])],
    [
      'a GOAWAY reason that is not UTF-8',
      Buffer.concat([header(FrameType.GOAWAY, 0, 5), Buffer.alloc(4), Buffer.of(0xff)]),
    ],
  ];
  for (const [name, bytes] of malformed) {
    it(`rejects ${name} as MALFORMED_FRAME`, () => {
      assert.equal(decodeError(bytes).code, StoqErrorCode.MALFORMED_FRAME);
    });
  }
});

describe('GOAWAY reasons', () => {
  it('are cut to the limit at a character boundary, so they stay decodable', () => {
    const reason = '€'.repeat(1000);
    const [frame] = new FrameDecoder().push(
      encodeFrame({ type: FrameType.GOAWAY, streamId: 0, code: 1, reason }),
    );
    assert.ok(frame && frame.type === FrameType.GOAWAY);
    assert.ok(reason.startsWith(frame.reason));
    assert.ok(frame.reason.length >= 300);
  });
});
