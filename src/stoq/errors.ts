import { HyperMeshError } from '../codec/error.js';

/**
 * Error codes that cross the wire. RPC errors use the same names as gRPC status codes where the
 * meaning is the same, so operators can read them without a table.
 */
export enum StoqErrorCode {
  // transport
  CONNECTION_CLOSED = 'CONNECTION_CLOSED',
  CONNECTION_REFUSED = 'CONNECTION_REFUSED',
  STREAM_RESET = 'STREAM_RESET',
  HANDSHAKE_FAILED = 'HANDSHAKE_FAILED',
  TRANSPORT_UNAVAILABLE = 'TRANSPORT_UNAVAILABLE',
  // framing
  FRAME_TOO_LARGE = 'FRAME_TOO_LARGE',
  MALFORMED_FRAME = 'MALFORMED_FRAME',
  // authentication and authorization
  UNAUTHENTICATED = 'UNAUTHENTICATED',
  PERMISSION_DENIED = 'PERMISSION_DENIED',
  // RPC
  INVALID_ARGUMENT = 'INVALID_ARGUMENT',
  NOT_FOUND = 'NOT_FOUND',
  DEADLINE_EXCEEDED = 'DEADLINE_EXCEEDED',
  CANCELLED = 'CANCELLED',
  RESOURCE_EXHAUSTED = 'RESOURCE_EXHAUSTED',
  UNAVAILABLE = 'UNAVAILABLE',
  INTERNAL = 'INTERNAL',
}

export class StoqError extends HyperMeshError<StoqErrorCode> {}

/** A listen or dial on a transport that was closed. */
export function transportClosedError(): StoqError {
  return new StoqError(StoqErrorCode.CONNECTION_CLOSED, 'transport is closed');
}

/** A dial given up because its signal fired; the signal's reason is the cause. */
export function dialAbortedError(signal: AbortSignal): StoqError {
  return new StoqError(StoqErrorCode.CANCELLED, 'dial aborted', {}, { cause: signal.reason });
}
