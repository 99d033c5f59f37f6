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

/** Reads whole frames from a stream, rejecting any frame longer than `maxBodyBytes` up front. */
export class FrameReader {
  private buffer = new Uint8Array(0);

  constructor(
    private readonly stream: TransportStream,
    private readonly maxBodyBytes: number,
  ) {}

  /** The next frame body. Fails with `protocol_error` on oversize frames or an early end. */
  async next(): Promise<Uint8Array> {
    const header = await this.fill(FRAME_LENGTH_BYTES);
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
    this.buffer = this.buffer.subarray(FRAME_LENGTH_BYTES);
    const body = (await this.fill(length)).slice(0, length);
    this.buffer = this.buffer.subarray(length);
    return body;
  }

  /** Buffers at least `count` bytes and returns the buffer. */
  private async fill(count: number): Promise<Uint8Array> {
    while (this.buffer.length < count) {
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
            buffered: this.buffer.length,
          },
        );
      }
      const joined = new Uint8Array(this.buffer.length + chunk.length);
      joined.set(this.buffer);
      joined.set(chunk, this.buffer.length);
      this.buffer = joined;
    }
    return this.buffer;
  }
}
