import { StoqError, StoqErrorCode } from '../errors.js';

/**
 * The binding reports every quinn error with the napi status `Unknown` and quinn's Display text
 * as the message, so the text is all there is to classify (quinn 0.11: `ReadError`,
 * `WriteError`, `ConnectionError`). Stream-level: the peer sent RESET_STREAM or STOP_SENDING
 * (RFC 9000 §19.4, §19.5). Connection-level: anything that ended the connection.
 */
const STREAM_ABORTED = /reset by peer|stopped by peer/i;
const CONNECTION_ENDED =
  /connection lost|closed by peer|timed out|connection reset|aborted by peer|endpoint stopping|application closed|locally closed|^closed$|version mismatch|transport error/i;

export function isConnectionEnded(error: unknown): boolean {
  return error instanceof Error && CONNECTION_ENDED.test(error.message);
}

/** Maps a failed stream operation to the contract's codes. */
export function streamError(streamId: string, error: unknown): StoqError {
  if (error instanceof StoqError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (STREAM_ABORTED.test(message)) {
    return new StoqError(
      StoqErrorCode.STREAM_RESET,
      `stream ${streamId} was reset by the peer (${message})`,
      {},
      { cause: error },
    );
  }
  if (CONNECTION_ENDED.test(message)) {
    return new StoqError(
      StoqErrorCode.CONNECTION_CLOSED,
      `stream ${streamId}: connection closed (${message})`,
      {},
      { cause: error },
    );
  }
  return new StoqError(
    StoqErrorCode.STREAM_RESET,
    `stream ${streamId} failed: ${message}`,
    {},
    { cause: error },
  );
}
