import { StoqError, StoqErrorCode } from '../errors.js';
import { retainable } from '../retained-bytes.js';

/**
 * Frames of the STOQ stream multiplexer that runs inside one TLS connection (the same idea as
 * yamux and HTTP/2 framing, RFC 9113 §4). Every frame is
 *
 *     type (u8) | stream id (u32, big-endian) | payload length (u32, big-endian) | payload
 *
 * Stream ids are odd for streams the dialer opens and even for the listener's (RFC 9113 §5.1.1),
 * so the two sides never pick the same id. Stream id 0 is the connection itself.
 */
export enum FrameType {
  /** A new stream; empty payload. */
  OPEN = 0,
  /** Stream bytes; payload is the data. */
  DATA = 1,
  /** The sender will send no more data on the stream; empty payload. */
  FIN = 2,
  /** The sender abandons the stream in both directions; empty payload. */
  RESET = 3,
  /**
   * The receiver consumed bytes: payload is a u32 credit increment for the stream, or for the
   * whole connection on stream 0.
   */
  WINDOW_UPDATE = 4,
  /** The sender closes the connection: payload is a u32 close code and a UTF-8 reason. */
  GOAWAY = 5,
}

export enum GoAwayCode {
  NORMAL = 0,
  PROTOCOL_ERROR = 1,
  FLOW_CONTROL_ERROR = 2,
}

export const FRAME_HEADER_BYTES = 9;
/** Largest DATA payload, so one big write cannot hold the connection for long. */
export const MAX_DATA_PAYLOAD = 64 * 1024;
/** Largest GOAWAY reason we send or accept. */
export const MAX_GOAWAY_REASON = 1024;
export const MAX_STREAM_ID = 0xffffffff;

export type Frame =
  | { readonly type: FrameType.OPEN | FrameType.FIN | FrameType.RESET; readonly streamId: number }
  | { readonly type: FrameType.DATA; readonly streamId: number; readonly data: Uint8Array }
  | { readonly type: FrameType.WINDOW_UPDATE; readonly streamId: number; readonly credit: number }
  | {
      readonly type: FrameType.GOAWAY;
      readonly streamId: 0;
      readonly code: number;
      readonly reason: string;
    };

function header(type: FrameType, streamId: number, length: number, extra = 0): Buffer {
  const bytes = Buffer.allocUnsafe(FRAME_HEADER_BYTES + extra);
  bytes[0] = type;
  bytes.writeUInt32BE(streamId, 1);
  bytes.writeUInt32BE(length, 5);
  return bytes;
}

/** Encodes a frame into one buffer (header and payload together, the payload copied). */
export function encodeFrame(frame: Frame): Buffer {
  switch (frame.type) {
    case FrameType.OPEN:
    case FrameType.FIN:
    case FrameType.RESET:
      return header(frame.type, frame.streamId, 0);
    case FrameType.DATA: {
      if (frame.data.length > MAX_DATA_PAYLOAD) {
        throw new StoqError(StoqErrorCode.FRAME_TOO_LARGE, 'DATA payload over the frame limit', {
          length: frame.data.length,
          limit: MAX_DATA_PAYLOAD,
        });
      }
      const bytes = header(frame.type, frame.streamId, frame.data.length, frame.data.length);
      bytes.set(frame.data, FRAME_HEADER_BYTES);
      return bytes;
    }
    case FrameType.WINDOW_UPDATE: {
      const bytes = header(frame.type, frame.streamId, 4, 4);
      bytes.writeUInt32BE(frame.credit, FRAME_HEADER_BYTES);
      return bytes;
    }
    case FrameType.GOAWAY: {
      // encodeInto stops at a character boundary, so a long reason stays valid UTF-8.
      const reason = new Uint8Array(MAX_GOAWAY_REASON);
      const { written } = new TextEncoder().encodeInto(frame.reason, reason);
      const bytes = header(frame.type, 0, 4 + written, 4 + written);
      bytes.writeUInt32BE(frame.code, FRAME_HEADER_BYTES);
      bytes.set(reason.subarray(0, written), FRAME_HEADER_BYTES + 4);
      return bytes;
    }
  }
}

function malformed(message: string, detail: Record<string, unknown>): StoqError {
  return new StoqError(StoqErrorCode.MALFORMED_FRAME, message, detail);
}

/** The payload length each frame type may carry, checked before its payload is buffered. */
function checkLength(type: number, streamId: number, length: number): void {
  switch (type) {
    case FrameType.OPEN:
    case FrameType.FIN:
    case FrameType.RESET:
      if (length !== 0) throw malformed(`frame type ${type} must be empty`, { type, length });
      if (streamId === 0) throw malformed(`frame type ${type} on stream 0`, { type });
      return;
    case FrameType.DATA:
      if (length > MAX_DATA_PAYLOAD) {
        throw new StoqError(StoqErrorCode.FRAME_TOO_LARGE, 'DATA frame over the size limit', {
          length,
          limit: MAX_DATA_PAYLOAD,
        });
      }
      if (streamId === 0) throw malformed('DATA frame on stream 0', { type });
      return;
    case FrameType.WINDOW_UPDATE:
      // On stream 0 it credits the connection-level window (as QUIC's MAX_DATA, RFC 9000 §4.1).
      if (length !== 4) throw malformed('WINDOW_UPDATE payload must be 4 bytes', { length });
      return;
    case FrameType.GOAWAY:
      if (length < 4 || length > 4 + MAX_GOAWAY_REASON) {
        throw malformed('GOAWAY payload length out of range', { length });
      }
      if (streamId !== 0) throw malformed('GOAWAY frame on a stream', { streamId });
      return;
    default:
      throw malformed(`unknown frame type ${type}`, { type });
  }
}

function parsePayload(type: FrameType, streamId: number, payload: Uint8Array): Frame {
  switch (type) {
    case FrameType.OPEN:
    case FrameType.FIN:
    case FrameType.RESET:
      return { type, streamId };
    case FrameType.DATA:
      // A plain Uint8Array (readers get the same type from every transport): a view of the
      // received chunk, copied when small beside it, as it may wait long in a stream's queue.
      return {
        type,
        streamId,
        data: retainable(new Uint8Array(payload.buffer, payload.byteOffset, payload.length)),
      };
    case FrameType.WINDOW_UPDATE: {
      const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
      const credit = view.getUint32(0);
      if (credit === 0) throw malformed('WINDOW_UPDATE with zero credit', { streamId });
      return { type, streamId, credit };
    }
    case FrameType.GOAWAY: {
      const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
      let reason: string;
      try {
        reason = new TextDecoder('utf-8', { fatal: true }).decode(payload.subarray(4));
      } catch {
        throw malformed('GOAWAY reason is not UTF-8', {});
      }
      return { type, streamId: 0, code: view.getUint32(0), reason };
    }
  }
}

/**
 * Incremental frame parser for a byte stream that arrives in arbitrary pieces. It validates each
 * header before buffering the payload, so a peer cannot make it hold more than one maximal frame.
 * After it throws, the connection is unusable (framing is lost) and must be closed.
 */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes needed before the next frame (or its header) is complete. */
  private needed = FRAME_HEADER_BYTES;

  /** Feeds bytes in; returns every frame they complete, in order. */
  push(chunk: Uint8Array): Frame[] {
    let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (this.pendingBytes > 0) {
      // Collect pieces of a large frame without re-copying them on every arrival.
      this.pending.push(bytes);
      this.pendingBytes += bytes.length;
      if (this.pendingBytes < this.needed) return [];
      bytes = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    const frames: Frame[] = [];
    let offset = 0;
    this.needed = FRAME_HEADER_BYTES;
    while (bytes.length - offset >= FRAME_HEADER_BYTES) {
      const type = bytes[offset] as number;
      const streamId = bytes.readUInt32BE(offset + 1);
      const length = bytes.readUInt32BE(offset + 5);
      checkLength(type, streamId, length);
      const end = offset + FRAME_HEADER_BYTES + length;
      if (end > bytes.length) {
        this.needed = FRAME_HEADER_BYTES + length;
        break;
      }
      frames.push(parsePayload(type, streamId, bytes.subarray(offset + FRAME_HEADER_BYTES, end)));
      offset = end;
    }
    if (offset < bytes.length) {
      const rest = bytes.subarray(offset);
      this.pending.push(rest);
      this.pendingBytes = rest.length;
    }
    return frames;
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  get buffered(): number {
    return this.pendingBytes;
  }
}
