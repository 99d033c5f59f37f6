import { CborError, CborErrorCode, decodeStrict, encodeMessage } from '../../codec/cbor.js';
import { StoqError, StoqErrorCode } from '../errors.js';
import { retainable } from '../retained-bytes.js';

/**
 * STOQ stream framing: every message is `u32 big-endian length || payload`, and every payload
 * is one CBOR item (RFC 8949). The length comes first so a receiver can refuse an oversized
 * message from its four-byte prefix alone, before it buffers a single byte of the body.
 */

/** Bytes in a frame's length prefix. */
export const FRAME_PREFIX_BYTES = 4;
/** Default largest payload a STOQ stream accepts (4 MiB, as gRPC's default receive limit). */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/**
 * Default most CBOR data items in one frame payload. Bytes alone do not bound the cost of
 * decoding: a 4 MiB payload of `a0` (empty maps) is 4 Mi objects, ~0.8 s of CPU and ~260 MB of
 * heap. The densest legitimate RPC message is an account-history page (100 receipts of 32 events
 * of 16 attributes and 8 accounts each): ~152 Ki items in ~300 KiB, decoded in ~27 ms; blocks,
 * sync pages, witnesses and transaction batches travel as byte strings (one item each). 256 Ki
 * leaves that page a margin of 1.7 and bounds any frame to ~80 ms of decoding.
 */
export const DEFAULT_MAX_FRAME_ITEMS = 256 * 1024;
/** The length prefix is a u32, so no configuration can exceed this. */
export const MAX_FRAME_PAYLOAD_BYTES = 0xffff_ffff;

/** Checks a configured message-size limit; a typo must not silently disable the limit. */
export function checkMaxMessageBytes(maxMessageBytes: number): number {
  if (
    !Number.isSafeInteger(maxMessageBytes) ||
    maxMessageBytes < 1 ||
    maxMessageBytes > MAX_FRAME_PAYLOAD_BYTES
  ) {
    throw new StoqError(
      StoqErrorCode.INVALID_ARGUMENT,
      `maxMessageBytes must be an integer in 1..${MAX_FRAME_PAYLOAD_BYTES}, got ${maxMessageBytes}`,
    );
  }
  return maxMessageBytes;
}

export function frameTooLarge(length: number, maxMessageBytes: number): StoqError {
  return new StoqError(
    StoqErrorCode.FRAME_TOO_LARGE,
    `frame of ${length} bytes exceeds the ${maxMessageBytes}-byte message limit`,
    { length, maxMessageBytes },
  );
}

/**
 * Writes the frames for `payloads` into one buffer, so a batch of messages costs one transport
 * write. `payloadBytes` is the sum of the payload lengths (callers track it anyway).
 */
export function encodeFrames(payloads: readonly Uint8Array[], payloadBytes: number): Uint8Array {
  const out = new Uint8Array(payloadBytes + FRAME_PREFIX_BYTES * payloads.length);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const payload of payloads) {
    view.setUint32(offset, payload.length, false);
    out.set(payload, offset + FRAME_PREFIX_BYTES);
    offset += FRAME_PREFIX_BYTES + payload.length;
  }
  return out;
}

/** One frame around `payload`; refuses payloads the receiver would refuse anyway. */
export function encodeFrame(payload: Uint8Array, maxMessageBytes: number): Uint8Array {
  if (payload.length > maxMessageBytes) throw frameTooLarge(payload.length, maxMessageBytes);
  return encodeFrames([payload], payload.length);
}

/** Encodes a wire value as a frame payload (CBOR; see `encodeMessage`). */
export function encodePayload(value: unknown): Uint8Array {
  try {
    return encodeMessage(value);
  } catch (error) {
    throw new StoqError(
      StoqErrorCode.INVALID_ARGUMENT,
      `message cannot be encoded as CBOR: ${(error as Error).message}`,
      {},
      { cause: error },
    );
  }
}

/**
 * Decodes a frame payload; anything but exactly one well-formed CBOR item of at most `maxItems`
 * data items is MALFORMED_FRAME (reason `cbor`, or `too-many-items`).
 */
export function decodePayload(
  payload: Uint8Array,
  maxItems: number = DEFAULT_MAX_FRAME_ITEMS,
): unknown {
  try {
    return decodeStrict(payload, { maxItems });
  } catch (error) {
    if (error instanceof CborError) {
      const tooMany = error.code === CborErrorCode.TOO_MANY_ITEMS;
      throw new StoqError(StoqErrorCode.MALFORMED_FRAME, error.message, {
        reason: tooMany ? 'too-many-items' : 'cbor',
        length: payload.length,
        ...(tooMany ? { maxItems } : {}),
      });
    }
    throw error;
  }
}

/**
 * Incremental frame decoder. Chunks may split a frame anywhere (even inside the prefix) or carry
 * many frames; `push` returns every frame completed by the chunk. Payloads that lie inside one
 * chunk are returned as views of it without copying unless they are small beside it (see
 * `retainable`); a payload spread over chunks is collected
 * piece by piece and joined once complete, so memory grows only with bytes actually received,
 * never with the length a peer claims.
 *
 * After an error the decoder stays failed: the stream it reads is out of sync and must be reset.
 */
export class FrameDecoder {
  private readonly prefix = new Uint8Array(FRAME_PREFIX_BYTES);
  private prefixFilled = 0;
  /** Length of the payload being collected, or -1 while reading a prefix. */
  private bodyLength = -1;
  private bodyPieces: Uint8Array[] = [];
  private bodyFilled = 0;
  private failure: StoqError | null = null;
  private readonly maxMessageBytes: number;

  constructor(maxMessageBytes: number = DEFAULT_MAX_MESSAGE_BYTES) {
    this.maxMessageBytes = checkMaxMessageBytes(maxMessageBytes);
  }

  /** Bytes of an incomplete frame held so far (prefix and payload). */
  get partialBytes(): number {
    return this.prefixFilled + this.bodyFilled;
  }

  /** True while a frame has started but not completed. */
  get inFrame(): boolean {
    return this.prefixFilled > 0 || this.bodyLength >= 0;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failure) throw this.failure;
    const frames: Uint8Array[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.bodyLength < 0) {
        if (this.prefixFilled === 0 && chunk.length - offset >= FRAME_PREFIX_BYTES) {
          this.startBody(readUint32(chunk, offset));
          offset += FRAME_PREFIX_BYTES;
        } else {
          const take = Math.min(FRAME_PREFIX_BYTES - this.prefixFilled, chunk.length - offset);
          this.prefix.set(chunk.subarray(offset, offset + take), this.prefixFilled);
          this.prefixFilled += take;
          offset += take;
          if (this.prefixFilled < FRAME_PREFIX_BYTES) break;
          this.prefixFilled = 0;
          this.startBody(readUint32(this.prefix, 0));
        }
        if (this.bodyLength === 0) {
          frames.push(new Uint8Array(0));
          this.bodyLength = -1;
        }
        continue;
      }
      const need = this.bodyLength - this.bodyFilled;
      const available = chunk.length - offset;
      if (this.bodyFilled === 0 && available >= need) {
        frames.push(retainable(chunk.subarray(offset, offset + need)));
        offset += need;
        this.bodyLength = -1;
        continue;
      }
      const take = Math.min(need, available);
      // Kept until the frame completes, maybe long: must not pin a chunk much larger than it.
      this.bodyPieces.push(retainable(chunk.subarray(offset, offset + take)));
      this.bodyFilled += take;
      offset += take;
      if (this.bodyFilled === this.bodyLength) {
        frames.push(joinPieces(this.bodyPieces, this.bodyLength));
        this.bodyPieces = [];
        this.bodyFilled = 0;
        this.bodyLength = -1;
      }
    }
    return frames;
  }

  /** The stream ended: a frame cut off in the middle is malformed. */
  end(): void {
    if (this.failure) throw this.failure;
    if (this.inFrame) {
      this.failure = new StoqError(
        StoqErrorCode.MALFORMED_FRAME,
        `stream ended inside a frame (${this.partialBytes} bytes of it received)`,
        { reason: 'truncated', received: this.partialBytes },
      );
      throw this.failure;
    }
  }

  private startBody(length: number): void {
    if (length > this.maxMessageBytes) {
      this.failure = frameTooLarge(length, this.maxMessageBytes);
      throw this.failure;
    }
    this.bodyLength = length;
  }
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return (
    ((bytes[offset] as number) * 0x1000000 +
      (((bytes[offset + 1] as number) << 16) |
        ((bytes[offset + 2] as number) << 8) |
        (bytes[offset + 3] as number))) >>>
    0
  );
}

function joinPieces(pieces: readonly Uint8Array[], length: number): Uint8Array {
  if (pieces.length === 1) return pieces[0] as Uint8Array;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.length;
  }
  return out;
}
