import { StoqError, StoqErrorCode } from '../errors.js';
import {
  DEFAULT_MAX_FRAME_ITEMS,
  DEFAULT_MAX_MESSAGE_BYTES,
  checkMaxMessageBytes,
} from './framing.js';

/** Resource limits of the RPC layer; each bounds what one peer can make this node hold. */
export interface RpcLimits {
  /** Largest message (frame payload) accepted or sent. */
  readonly maxMessageBytes: number;
  /**
   * Most CBOR data items one received message may hold (MALFORMED_FRAME, reason
   * `too-many-items`, beyond it): decoding cost grows with items, not bytes.
   */
  readonly maxFrameItems: number;
  /**
   * Calls one peer (by certificate identity, over all its connections) may have in flight. A
   * call counts until its answer was written out or its stream released, not merely queued.
   */
  readonly maxConcurrentCallsPerPeer: number;
  /** A new stream must deliver its complete call header within this time. */
  readonly headerTimeoutMs: number;
  /**
   * A frame that started arriving must complete, and a write the peer's flow control holds
   * back must be accepted, within this time (also the final answer of a call whose caller
   * does not read it); otherwise the stream is reset and released. Quiet streams
   * (nothing half-done) are not limited: they are bounded by the per-peer call limit.
   */
  readonly stallTimeoutMs: number;
  /** After its final status, the server waits this long for the caller to end the stream. */
  readonly lingerMs: number;
  /** Per-stream send buffer and receive read-ahead, in bytes, before backpressure applies. */
  readonly highWaterMark: number;
}

export const DEFAULT_RPC_LIMITS: RpcLimits = Object.freeze({
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  maxFrameItems: DEFAULT_MAX_FRAME_ITEMS,
  maxConcurrentCallsPerPeer: 256,
  headerTimeoutMs: 10_000,
  stallTimeoutMs: 30_000,
  lingerMs: 2_000,
  highWaterMark: 1024 * 1024,
});

export function resolveRpcLimits(overrides: Partial<RpcLimits> = {}): RpcLimits {
  const limits = { ...DEFAULT_RPC_LIMITS, ...overrides };
  checkMaxMessageBytes(limits.maxMessageBytes);
  for (const key of [
    'maxFrameItems',
    'maxConcurrentCallsPerPeer',
    'headerTimeoutMs',
    'stallTimeoutMs',
    'lingerMs',
    'highWaterMark',
  ] as const) {
    const value = limits[key];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new StoqError(
        StoqErrorCode.INVALID_ARGUMENT,
        `RPC limit ${key} must be a positive integer, got ${value}`,
      );
    }
  }
  return Object.freeze(limits);
}
