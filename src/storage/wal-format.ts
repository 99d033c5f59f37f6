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
 * most the last record can be incomplete, and its length field, once written, is the length
 * of that write. At the first unreadable record (`classifyUnreadable`):
 *
 * - a length field that is cut off, or that declares an end past the end of the file, is a
 *   torn tail and is cut off without looking inside it: its payload holds user-chosen bytes
 *   (transactions of a logged block), which may themselves spell an intact record;
 * - a record whose declared end is the end of the file but whose checksum fails cannot be told
 *   apart from a torn write either, and is cut off too;
 * - a record whose length is impossible (0, as in zeros a power cut can leave, or more than the
 *   largest record) has no end to go by. Whatever follows may be the rest of that torn write, so
 *   it is not searched either: no more unreadable bytes than one record can hold is a torn tail
 *   to cut off; more is `CORRUPT` (no single write left them).
 * - a record whose declared end lies inside the file was not left by a crash: the bytes after
 *   its declared end are searched for an intact record. One found means damage in the middle
 *   (`CORRUPT`, never skipped); none found, with no more unreadable bytes than one record, is a
 *   tail to cut off. The search checksums at most `SEARCH_CHECKSUM_BUDGET` bytes in all; a
 *   search that runs out of it is `CORRUPT` rather than a guess, so a crafted tail costs
 *   bounded time, not quadratic time.
 *
 * What this cannot tell apart: damage that zeroes (or otherwise spoils) a length field less than
 * one record before the end of the file looks exactly like a torn append, and the records
 * behind it are cut off with it (`truncatedBytes` says how many bytes). A crash never does
 * that; only a disk that corrupts fsynced data does, and it could as well spoil the last
 * record's length, which no format without a second copy can detect.
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

/**
 * Most bytes the search behind a damaged record checksums in all (candidate frames are CRC'd
 * over their whole declared length); about 64 ms of CRC-32 at 1 GB/s.
 */
export const SEARCH_CHECKSUM_BUDGET = 64 * 1024 * 1024;

/** The big-endian u32 at `offset` (a length or checksum field); the caller checks 4 bytes are there. */
function u32At(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset] as number) * 0x1000000 +
    (((bytes[offset + 1] as number) << 16) |
      ((bytes[offset + 2] as number) << 8) |
      (bytes[offset + 3] as number))
  );
}

const plausibleLength = (length: number, maxRecordBytes: number): boolean =>
  length >= 1 && length <= maxRecordBytes + 1;

/** Whether the frame at `offset`, `length` bytes long and inside `bytes`, checksums. */
function checksumHolds(bytes: Uint8Array, offset: number, length: number): boolean {
  const end = offset + FRAME_OVERHEAD + length;
  const stored = u32At(bytes, offset + 4);
  return (
    crc32(
      bytes.subarray(offset + FRAME_OVERHEAD, end),
      crc32(bytes.subarray(offset, offset + 4)),
    ) === stored
  );
}

/** The record starting at `offset` if its frame is complete and its checksum holds. */
function readFrame(
  bytes: Uint8Array,
  offset: number,
  maxRecordBytes: number,
): ScannedRecord | undefined {
  if (bytes.length - offset < FRAME_OVERHEAD + 1) return undefined;
  const length = u32At(bytes, offset);
  if (!plausibleLength(length, maxRecordBytes)) return undefined;
  const end = offset + FRAME_OVERHEAD + length;
  if (end > bytes.length) return undefined;
  if (!checksumHolds(bytes, offset, length)) return undefined;
  const body = bytes.subarray(offset + FRAME_OVERHEAD, end);
  return { offset, type: body[0] as number, payload: body.subarray(1) };
}

type SearchResult = { found: number } | { found: null; exhausted: boolean };

/** The first offset in `from..` where an intact record starts, within the checksum budget. */
function searchIntactRecord(bytes: Uint8Array, from: number, maxRecordBytes: number): SearchResult {
  let budget = SEARCH_CHECKSUM_BUDGET;
  for (let next = from; next + FRAME_OVERHEAD < bytes.length; next++) {
    const length = u32At(bytes, next);
    if (!plausibleLength(length, maxRecordBytes)) continue;
    if (next + FRAME_OVERHEAD + length > bytes.length) continue;
    budget -= length + 4;
    if (budget < 0) return { found: null, exhausted: true };
    if (checksumHolds(bytes, next, length)) return { found: next };
  }
  return { found: null, exhausted: false };
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
  classifyUnreadable(bytes, offset, maxRecordBytes);
  return { records, validEnd: offset, tornBytes: unreadable };
}

/**
 * Decides whether the unreadable bytes from `offset` to the end of the file are a torn tail
 * (returns) or damage a crash cannot explain (throws `CORRUPT`); see the module comment.
 */
function classifyUnreadable(bytes: Uint8Array, offset: number, maxRecordBytes: number): void {
  const unreadable = bytes.length - offset;
  // The length field is cut off: the write stopped inside it.
  if (unreadable < 4) return;
  if (unreadable > FRAME_OVERHEAD + 1 + maxRecordBytes) {
    throw new ConsensusWalError(
      ConsensusWalErrorCode.CORRUPT,
      `unreadable record at offset ${offset} followed by more bytes than one record can hold`,
      { offset, unreadable },
    );
  }
  const length = u32At(bytes, offset);
  // No length to go by: the rest may be the torn write's own payload, which holds client-chosen
  // bytes (transactions) that can spell an intact record, so it is not searched.
  if (!plausibleLength(length, maxRecordBytes)) return;
  const declaredEnd = offset + FRAME_OVERHEAD + length;
  // The write stopped before the end it declares, or wrote all of it with some bytes wrong.
  if (declaredEnd >= bytes.length) return;
  const search = searchIntactRecord(bytes, declaredEnd, maxRecordBytes);
  if (search.found !== null) {
    throw new ConsensusWalError(
      ConsensusWalErrorCode.CORRUPT,
      `record at offset ${offset} is damaged but an intact record follows at ${search.found}`,
      { offset, nextRecordAt: search.found },
    );
  }
  if (search.exhausted) {
    throw new ConsensusWalError(
      ConsensusWalErrorCode.CORRUPT,
      `record at offset ${offset} is damaged and the ${unreadable} bytes after it are too costly to search for intact records`,
      { offset, unreadable, checksumBudget: SEARCH_CHECKSUM_BUDGET },
    );
  }
}
