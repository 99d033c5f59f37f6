import { StoqError, StoqErrorCode } from '../errors.js';
import { decodePayload } from './framing.js';
import { parseCallHeader, type CallHeader } from './wire.js';

/** A call header as the server first reads it: everything but the request is decoded. */
export interface ReceivedCallHeader extends Omit<CallHeader, 'request'> {
  /** The request's CBOR bytes, decoded only once the caller may call the method. */
  readonly requestBytes?: Uint8Array;
}

/** Keys a call header may have; a map with more entries is refused unread. */
const MAX_HEADER_ENTRIES = 4;

/**
 * Reads a call-header frame payload without decoding its `request`: the server checks the
 * method and the caller's permission first, so a caller may not make it build a request
 * (up to `maxItems` objects) for a method it may not call or that does not exist. The header
 * map's keys and other values are decoded strictly; the request is only delimited, which
 * walks its heads without allocating and refuses it once it holds more than `maxItems` items.
 */
export function readCallHeader(payload: Uint8Array, maxItems: number): ReceivedCallHeader {
  const cursor = { data: payload, offset: 0 };
  const head = readHead(cursor);
  if (head.major !== MAJOR_MAP || head.argument > MAX_HEADER_ENTRIES) {
    throw headerError('the call header is not a map of at most four entries');
  }
  const fields: Record<string, unknown> = {};
  let requestBytes: Uint8Array | undefined;
  for (let entry = 0; entry < head.argument; entry++) {
    const keyStart = cursor.offset;
    if (keyStart < payload.length && (payload[keyStart] as number) >> 5 !== MAJOR_TEXT) {
      throw headerError('a call header key is not a text string');
    }
    skipItem(cursor, maxItems);
    const key = decodePayload(payload.subarray(keyStart, cursor.offset)) as string;
    const valueStart = cursor.offset;
    skipItem(cursor, maxItems);
    const value = payload.subarray(valueStart, cursor.offset);
    if (Object.prototype.hasOwnProperty.call(fields, key)) {
      throw new StoqError(StoqErrorCode.MALFORMED_FRAME, `duplicate map key ${key.slice(0, 64)}`, {
        reason: 'cbor',
        length: payload.length,
      });
    }
    if (key === 'request') {
      requestBytes = value;
      // Present for parseCallHeader's shape check; never handed out.
      fields[key] = null;
    } else {
      fields[key] = decodePayload(value, maxItems);
    }
  }
  if (cursor.offset !== payload.length) {
    throw new StoqError(StoqErrorCode.MALFORMED_FRAME, 'bytes after the call header', {
      reason: 'cbor',
      length: payload.length,
    });
  }
  const { method, kind, deadlineMs } = parseCallHeader(fields);
  return {
    method,
    kind,
    ...(deadlineMs === undefined ? {} : { deadlineMs }),
    ...(requestBytes === undefined ? {} : { requestBytes }),
  };
}

// RFC 8949 §3.1 major types. Integers (0, 1) and simple values and floats (7) are all head.
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;

interface Cursor {
  readonly data: Uint8Array;
  offset: number;
}

interface Head {
  readonly major: number;
  /** The head's argument: a length, a count, a tag number or a value (RFC 8949 §3). */
  readonly argument: number;
}

/** Reads one head; indefinite lengths and reserved additional information are malformed. */
function readHead(cursor: Cursor): Head {
  const { data } = cursor;
  if (cursor.offset >= data.length) throw truncated();
  const initial = data[cursor.offset] as number;
  const major = initial >> 5;
  const info = initial & 0x1f;
  cursor.offset += 1;
  if (info < 24) return { major, argument: info };
  if (info > 27) throw unsupportedHead(info, data.length);
  const width = 1 << (info - 24);
  if (cursor.offset + width > data.length) throw truncated();
  let argument = 0;
  // Past 2^53 the value is inexact, but any such length exceeds the frame anyway.
  for (let i = 0; i < width; i++) argument = argument * 256 + (data[cursor.offset + i] as number);
  cursor.offset += width;
  return { major, argument };
}

/**
 * Moves past one complete item. Each item needs at least one byte, so an announced count larger
 * than the bytes left is truncated at once; the walk is bounded by the payload's length and by
 * `maxItems`, and builds nothing (it runs once per head, so it allocates nothing per head
 * either: 4 Mi one-byte items take a few milliseconds).
 */
function skipItem(cursor: Cursor, maxItems: number): void {
  const { data } = cursor;
  const end = data.length;
  let offset = cursor.offset;
  let pending = 1;
  let seen = 0;
  while (pending > 0) {
    if (offset >= end) throw truncated();
    const initial = data[offset] as number;
    offset += 1;
    const major = initial >> 5;
    const info = initial & 0x1f;
    let argument = info;
    if (info >= 24) {
      if (info > 27) throw unsupportedHead(info, end);
      const width = 1 << (info - 24);
      if (offset + width > end) throw truncated();
      argument = 0;
      for (let i = 0; i < width; i++) argument = argument * 256 + (data[offset + i] as number);
      offset += width;
    }
    pending -= 1;
    seen += 1;
    if (major === MAJOR_BYTES || major === MAJOR_TEXT) {
      if (argument > end - offset) throw truncated();
      offset += argument;
    } else if (major === MAJOR_ARRAY) {
      pending += argument;
    } else if (major === MAJOR_MAP) {
      pending += 2 * argument;
    } else if (major === MAJOR_TAG) {
      pending += 1;
    }
    if (seen + pending > maxItems) {
      throw new StoqError(
        StoqErrorCode.MALFORMED_FRAME,
        `CBOR input holds more than ${maxItems} data items`,
        { reason: 'too-many-items', length: end, maxItems },
      );
    }
    if (pending > end - offset) throw truncated();
  }
  cursor.offset = offset;
}

/** Indefinite lengths are refused on the wire (as `decodeStrict` does); 28–30 are reserved. */
function unsupportedHead(info: number, length: number): StoqError {
  return new StoqError(
    StoqErrorCode.MALFORMED_FRAME,
    info === 31 ? 'indefinite-length item' : `reserved additional information ${info}`,
    { reason: 'cbor', length },
  );
}

function truncated(): StoqError {
  return new StoqError(StoqErrorCode.MALFORMED_FRAME, 'truncated CBOR item', { reason: 'cbor' });
}

function headerError(message: string): StoqError {
  return new StoqError(StoqErrorCode.MALFORMED_FRAME, `invalid call header: ${message}`, {
    reason: 'header',
  });
}
