import { crc32 } from 'node:zlib';
import { HyperMeshError } from '../codec/error.js';

/**
 * The consensus WAL's on-disk format (pure: bytes in, records out).
 *
 *   file   = header record*
 *   header = "HMCWAL" 0x00 0x01                       (magic, format version 1)
 *   record = length:u32be crc:u32be body
 *   body   = type:u8 payload                            (length = 1 + payload length)
 *   crc    = CRC-32 (ISO-HDLC, zlib's) of length bytes || body
 *
 * Type 0 is the height checkpoint written by `endHeight` (payload: height as u64be); types
 * 1..255 belong to the consensus driver, whose payloads are opaque CBOR.
 *
 * Every record is appended with one write and fsynced before the next, so after a crash at
 * most the last record can be incomplete. That is told apart from damage to an acknowledged
 * record by looking past the first unreadable record: if any intact record follows, the file
 * was corrupted in the middle (an error, never skipped); if none does and the unreadable part
 * is no longer than one record, it is a torn tail and is cut off.
 */
export enum ConsensusWalErrorCode {
  NOT_A_WAL = 'CONSENSUS_WAL_NOT_A_WAL',
  CORRUPT = 'CONSENSUS_WAL_CORRUPT',
  RECORD_TOO_LARGE = 'CONSENSUS_WAL_RECORD_TOO_LARGE',
  INVALID_RECORD = 'CONSENSUS_WAL_INVALID_RECORD',
  CHECKPOINT_ORDER = 'CONSENSUS_WAL_CHECKPOINT_ORDER',
  IO_FAILED = 'CONSENSUS_WAL_IO_FAILED',
  CLOSED = 'CONSENSUS_WAL_CLOSED',
}

export class ConsensusWalError extends HyperMeshError<ConsensusWalErrorCode> {}

export const WAL_HEADER = new Uint8Array([0x48, 0x4d, 0x43, 0x57, 0x41, 0x4c, 0x00, 0x01]);
export const FRAME_OVERHEAD = 8;
export const CHECKPOINT_TYPE = 0;
const CHECKPOINT_PAYLOAD_BYTES = 8;

/** Default ceiling on one record's payload (a full proposal fits). */
export const DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;

/** One driver record: a type tag (1..255) and opaque bytes. */
export interface WalRecord {
  readonly type: number;
  readonly payload: Uint8Array;
}

export interface ScannedRecord extends WalRecord {
  readonly offset: number;
}

export interface WalScan {
  readonly records: readonly ScannedRecord[];
  /** End of the last intact record: where the file should end. */
  readonly validEnd: number;
  /** Bytes after `validEnd` that form a torn tail (0 when the file ends cleanly). */
  readonly tornBytes: number;
}

/** One record frame ready to append. */
export function encodeFrame(type: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_OVERHEAD + 1 + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, 1 + payload.length);
  frame[FRAME_OVERHEAD] = type;
  frame.set(payload, FRAME_OVERHEAD + 1);
  const checksum = crc32(frame.subarray(FRAME_OVERHEAD), crc32(frame.subarray(0, 4)));
  view.setUint32(4, checksum);
  return frame;
}

export function encodeCheckpoint(height: number): Uint8Array {
  const payload = new Uint8Array(CHECKPOINT_PAYLOAD_BYTES);
  new DataView(payload.buffer).setBigUint64(0, BigInt(height));
  return encodeFrame(CHECKPOINT_TYPE, payload);
}

/** The height in a checkpoint record's payload, or undefined if it is not one. */
export function checkpointHeight(payload: Uint8Array): number | undefined {
  if (payload.length !== CHECKPOINT_PAYLOAD_BYTES) return undefined;
  const height = new DataView(payload.buffer, payload.byteOffset, 8).getBigUint64(0);
  return height <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(height) : undefined;
}

/** The record starting at `offset` if its frame is complete and its checksum holds. */
function readFrame(
  bytes: Uint8Array,
  offset: number,
  maxRecordBytes: number,
): ScannedRecord | undefined {
  if (bytes.length - offset < FRAME_OVERHEAD + 1) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, FRAME_OVERHEAD);
  const length = view.getUint32(0);
  if (length < 1 || length > maxRecordBytes + 1) return undefined;
  const end = offset + FRAME_OVERHEAD + length;
  if (end > bytes.length) return undefined;
  const body = bytes.subarray(offset + FRAME_OVERHEAD, end);
  const expected = crc32(body, crc32(bytes.subarray(offset, offset + 4)));
  if (expected !== view.getUint32(4)) return undefined;
  return { offset, type: body[0] as number, payload: body.subarray(1) };
}

const frameEnd = (record: ScannedRecord): number =>
  record.offset + FRAME_OVERHEAD + 1 + record.payload.length;

/**
 * Parses a whole WAL file. Throws `NOT_A_WAL` for a wrong header and `CORRUPT` for damage that
 * a crash cannot explain; a torn tail is reported in `tornBytes` for the caller to cut off.
 */
export function scanWal(bytes: Uint8Array, maxRecordBytes = DEFAULT_MAX_RECORD_BYTES): WalScan {
  const header = bytes.subarray(0, WAL_HEADER.length);
  if (header.length !== WAL_HEADER.length || !header.every((b, i) => b === WAL_HEADER[i])) {
    throw new ConsensusWalError(
      ConsensusWalErrorCode.NOT_A_WAL,
      'not a HyperMesh consensus WAL (bad header)',
      { length: bytes.length },
    );
  }
  const records: ScannedRecord[] = [];
  let offset = WAL_HEADER.length;
  while (offset < bytes.length) {
    const record = readFrame(bytes, offset, maxRecordBytes);
    if (record === undefined) break;
    if (record.type === CHECKPOINT_TYPE && checkpointHeight(record.payload) === undefined) {
      throw new ConsensusWalError(
        ConsensusWalErrorCode.CORRUPT,
        `checkpoint record at offset ${offset} has an invalid height`,
        { offset },
      );
    }
    records.push(record);
    offset = frameEnd(record);
  }
  const unreadable = bytes.length - offset;
  if (unreadable === 0) return { records, validEnd: offset, tornBytes: 0 };
  if (unreadable > FRAME_OVERHEAD + 1 + maxRecordBytes) {
    throw new ConsensusWalError(
      ConsensusWalErrorCode.CORRUPT,
      `unreadable record at offset ${offset} followed by more bytes than one record can hold`,
      { offset, unreadable },
    );
  }
  for (let next = offset + 1; next + FRAME_OVERHEAD < bytes.length; next++) {
    if (readFrame(bytes, next, maxRecordBytes) !== undefined) {
      throw new ConsensusWalError(
        ConsensusWalErrorCode.CORRUPT,
        `record at offset ${offset} fails its checksum but an intact record follows at ${next}`,
        { offset, nextRecordAt: next },
      );
    }
  }
  return { records, validEnd: offset, tornBytes: unreadable };
}
