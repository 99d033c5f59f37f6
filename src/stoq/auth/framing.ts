import { retainable } from '../retained-bytes.js';
import type { TransportStream } from '../transport.js';
import { AuthFailureReason, authFailure } from './reasons.js';

/**
 * Length-prefixed frames for the authentication stream: `length (u32, big-endian) || body`.
 * The RPC layer has its own framing; authentication runs before it and keeps this one small so
 * the bound on a handshake message is explicit and independent.
 */
export const FRAME_LENGTH_BYTES = 4;

export function encodeFrame(body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_LENGTH_BYTES + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, FRAME_LENGTH_BYTES);
  return frame;
}

/**
 * Reads whole frames from a stream, rejecting any frame longer than `maxBodyBytes` up front.
 * Received chunks are kept as they arrive and joined once a frame is complete, so a frame
 * delivered in many tiny pieces costs time linear in its size (never a re-copy per piece).
 */
export class FrameReader {
  /** Received bytes not yet returned, in arrival order; the first may be partly consumed. */
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  /** Bytes copied while joining chunks (what linear-time tests measure). */
  private copied = 0;

  constructor(
    private readonly stream: TransportStream,
    private readonly maxBodyBytes: number,
  ) {}

  /** Bytes copied so far to assemble frames; at most one copy of each byte received. */
  get copiedBytes(): number {
    return this.copied;
  }

  /** The next frame body. Fails with `protocol_error` on oversize frames or an early end. */
  async next(): Promise<Uint8Array> {
    const header = await this.take(FRAME_LENGTH_BYTES);
    const length = new DataView(header.buffer, header.byteOffset, FRAME_LENGTH_BYTES).getUint32(0);
    if (length === 0 || length > this.maxBodyBytes) {
      throw authFailure(
        AuthFailureReason.PROTOCOL_ERROR,
        'authentication message has an invalid length',
        {
          length,
          max: this.maxBodyBytes,
        },
      );
    }
    return this.take(length);
  }

  /** Waits for `count` bytes and removes exactly those from the front, as one fresh array. */
  private async take(count: number): Promise<Uint8Array> {
    while (this.buffered < count) {
      let chunk: Uint8Array | null;
      try {
        chunk = await this.stream.read();
      } catch (error) {
        throw authFailure(
          AuthFailureReason.PROTOCOL_ERROR,
          'the peer aborted the authentication stream',
          {},
          { cause: error },
        );
      }
      if (chunk === null) {
        throw authFailure(
          AuthFailureReason.PROTOCOL_ERROR,
          'the peer ended the authentication stream early',
          {
            buffered: this.buffered,
          },
        );
      }
      if (chunk.length === 0) continue;
      // Held until a frame completes: a small piece must not pin a much larger buffer.
      this.chunks.push(retainable(chunk));
      this.buffered += chunk.length;
    }
    const out = new Uint8Array(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.chunks[0] as Uint8Array;
      const used = Math.min(chunk.length, count - filled);
      out.set(chunk.subarray(0, used), filled);
      filled += used;
      if (used === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(used);
    }
    this.buffered -= count;
    this.copied += count;
    return out;
  }
}
