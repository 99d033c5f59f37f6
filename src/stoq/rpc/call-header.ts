import { StoqError, StoqErrorCode } from '../errors.js';
import { decodePayload } from './framing.js';
import { MAX_METHOD_NAME_LENGTH, METHOD_KINDS, parseCallHeader, type CallHeader } from './wire.js';

/** A call header as the server first reads it: everything but the request is decoded. */
export interface ReceivedCallHeader extends Omit<CallHeader, 'request'> {
  /** The request's CBOR bytes, decoded only once the caller may call the method. */
  readonly requestBytes?: Uint8Array;
}

/** Keys a call header may have; a map with more entries is refused unread. */
const MAX_HEADER_ENTRIES = 4;

type HeaderKey = 'method' | 'kind' | 'deadlineMs' | 'request';

/** The keys of wire.ts `callHeaderSchema`, as the UTF-8 bytes a text-string key carries. */
const HEADER_KEYS: readonly { readonly key: HeaderKey; readonly bytes: Uint8Array }[] = (
  ['method', 'kind', 'deadlineMs', 'request'] as const
).map((key) => ({ key, bytes: new TextEncoder().encode(key) }));

/** A UTF-16 code unit takes at most three UTF-8 bytes, so a longer method name is refused unread. */
const MAX_METHOD_BYTES = 3 * MAX_METHOD_NAME_LENGTH;
/** The kinds are ASCII. */
const MAX_KIND_BYTES = Math.max(...METHOD_KINDS.map((kind) => kind.length));

/**
 * Reads a call-header frame payload without decoding its `request`: the server checks the
 * method and the caller's permission first, so a caller may not make it build a request
 * (up to `maxItems` objects) for a method it may not call or that does not exist.
 *
 * Nothing the schema (wire.ts `callHeaderSchema`) would refuse is built first: a key that is not
 * one of its four is refused before its value is looked at; `method` and `kind` must be text
 * strings of bounded length and `deadlineMs` an unsigned integer, checked from the value's head
 * before it is decoded; the request is only delimited, walking its heads without allocating.
 * One `maxItems` budget, counted as `decodeStrict` counts it, covers the whole header. Heads must
 * use the shortest form of their argument (RFC 8949 §4.2.1), as the strict decoder requires.
 */
export function readCallHeader(payload: Uint8Array, maxItems: number): ReceivedCallHeader {
  const cursor: Cursor = { data: payload, offset: 0, argument: 0 };
  if (readHead(cursor) !== MAJOR_MAP || cursor.argument > MAX_HEADER_ENTRIES) {
    throw headerError('the call header is not a map of at most four entries');
  }
  const entries = cursor.argument;
  // The root, and the key and value of each entry.
  const budget: ItemBudget = { known: 1, max: maxItems };
  announce(budget, 2 * entries, payload.length);
  // No prototype: a key can only ever be one of the four the schema names.
  const fields = Object.create(null) as Record<HeaderKey, unknown>;
  let requestBytes: Uint8Array | undefined;
  for (let entry = 0; entry < entries; entry++) {
    const key = readKey(cursor);
    if (key in fields) {
      throw new StoqError(StoqErrorCode.MALFORMED_FRAME, `duplicate map key ${key}`, {
        reason: 'cbor',
        length: payload.length,
      });
    }
    switch (key) {
      case 'method':
        fields.method = readText(cursor, key, MAX_METHOD_BYTES);
        break;
      case 'kind':
        fields.kind = readText(cursor, key, MAX_KIND_BYTES);
        break;
      case 'deadlineMs':
        if (readHead(cursor) !== MAJOR_UNSIGNED) {
          throw headerError('deadlineMs is not an unsigned integer');
        }
        // Past 2^53 the value is inexact, but the schema refuses anything past MAX_DEADLINE_MS.
        fields.deadlineMs = cursor.argument;
        break;
      case 'request': {
        const valueStart = cursor.offset;
        skipItem(cursor, budget);
        requestBytes = payload.subarray(valueStart, cursor.offset);
        // Present for parseCallHeader's shape check; never handed out.
        fields.request = null;
        break;
      }
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

// RFC 8949 §3.1 major types.
const MAJOR_UNSIGNED = 0;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;
const MAJOR_SIMPLE = 7;

/**
 * The smallest argument each of additional information 24–27 may carry (RFC 8949 §4.2.1: an
 * argument uses the shortest of these that holds it), as cborg's strict decode checks.
 */
const MIN_ARGUMENT = [24, 256, 65_536, 2 ** 32] as const;
/** RFC 8949 §3.3: a one-byte simple value below 32 is not well-formed. */
const MIN_ONE_BYTE_SIMPLE = 32;

/** Where reading is, and the last head's argument (a field, so a head allocates nothing). */
interface Cursor {
  readonly data: Uint8Array;
  offset: number;
  /** The head's argument: a length, a count, a tag number or a value (RFC 8949 §3). */
  argument: number;
}

/** Data items announced so far in the header, against the one budget they share. */
interface ItemBudget {
  known: number;
  readonly max: number;
}

/**
 * Reads one head: returns its major type and leaves its argument in `cursor.argument`.
 * Indefinite lengths, reserved additional information and arguments not in their shortest form
 * are malformed.
 */
function readHead(cursor: Cursor): number {
  const { data } = cursor;
  if (cursor.offset >= data.length) throw truncated();
  const initial = data[cursor.offset] as number;
  const major = initial >> 5;
  const info = initial & 0x1f;
  cursor.offset += 1;
  if (info < 24) {
    cursor.argument = info;
    return major;
  }
  if (info > 27) throw unsupportedHead(info, data.length);
  const width = 1 << (info - 24);
  if (cursor.offset + width > data.length) throw truncated();
  let argument = 0;
  // Past 2^53 the value is inexact, but any such length exceeds the frame anyway.
  for (let i = 0; i < width; i++) argument = argument * 256 + (data[cursor.offset + i] as number);
  cursor.offset += width;
  // Floats (major 7, 25–27) carry no argument; a simple value in one byte must be 32 or more.
  if (major === MAJOR_SIMPLE) {
    if (info === 24 && argument < MIN_ONE_BYTE_SIMPLE) throw nonMinimal(data.length);
  } else if (argument < (MIN_ARGUMENT[info - 24] as number)) {
    throw nonMinimal(data.length);
  }
  cursor.argument = argument;
  return major;
}

/** Reads a key: a text string naming one of the header's keys, compared as bytes unread. */
function readKey(cursor: Cursor): HeaderKey {
  if (readHead(cursor) !== MAJOR_TEXT) throw headerError('a call header key is not a text string');
  const { data, offset, argument: length } = cursor;
  if (length > data.length - offset) throw truncated();
  const known = HEADER_KEYS.find(({ bytes }) => equalAt(data, offset, bytes, length));
  if (known === undefined) {
    throw headerError('a call header key is not one of method, kind, deadlineMs, request');
  }
  cursor.offset += length;
  return known.key;
}

function equalAt(data: Uint8Array, offset: number, bytes: Uint8Array, length: number): boolean {
  if (bytes.length !== length) return false;
  for (let i = 0; i < length; i++) if (data[offset + i] !== bytes[i]) return false;
  return true;
}

/** Reads a text value of at most `maxBytes` UTF-8 bytes; its head is checked before its bytes. */
function readText(cursor: Cursor, key: HeaderKey, maxBytes: number): string {
  const start = cursor.offset;
  if (readHead(cursor) !== MAJOR_TEXT || cursor.argument > maxBytes) {
    throw headerError(`${key} is not a text string of at most ${maxBytes} bytes`);
  }
  if (cursor.argument > cursor.data.length - cursor.offset) throw truncated();
  cursor.offset += cursor.argument;
  // One item, decoded strictly: ill-formed UTF-8 is refused here, not replaced.
  return decodePayload(cursor.data.subarray(start, cursor.offset), 1) as string;
}

/**
 * Moves past one complete item whose own count is already in `budget`. Each item needs at least
 * one byte, so an announced count larger than the bytes left is truncated at once; the walk is
 * bounded by the payload's length and by the budget, and builds nothing (4 Mi one-byte items
 * take a few milliseconds).
 */
function skipItem(cursor: Cursor, budget: ItemBudget): void {
  const end = cursor.data.length;
  let pending = 1;
  while (pending > 0) {
    const major = readHead(cursor);
    const { argument } = cursor;
    pending -= 1;
    if (major === MAJOR_BYTES || major === MAJOR_TEXT) {
      if (argument > end - cursor.offset) throw truncated();
      cursor.offset += argument;
    } else if (major === MAJOR_ARRAY || major === MAJOR_MAP || major === MAJOR_TAG) {
      const children = major === MAJOR_ARRAY ? argument : major === MAJOR_MAP ? 2 * argument : 1;
      announce(budget, children, end);
      pending += children;
      if (pending > end - cursor.offset) throw truncated();
    }
  }
}

/** Counts items a head announces; past the budget is `too-many-items`, before any is read. */
function announce(budget: ItemBudget, items: number, length: number): void {
  budget.known += items;
  if (budget.known > budget.max) {
    throw new StoqError(
      StoqErrorCode.MALFORMED_FRAME,
      `CBOR input holds more than ${budget.max} data items`,
      { reason: 'too-many-items', length, maxItems: budget.max },
    );
  }
}

/** Indefinite lengths are refused on the wire (as `decodeStrict` does); 28–30 are reserved. */
function unsupportedHead(info: number, length: number): StoqError {
  return new StoqError(
    StoqErrorCode.MALFORMED_FRAME,
    info === 31 ? 'indefinite-length item' : `reserved additional information ${info}`,
    { reason: 'cbor', length },
  );
}

function nonMinimal(length: number): StoqError {
  return new StoqError(
    StoqErrorCode.MALFORMED_FRAME,
    'CBOR head argument encoded in more bytes than necessary',
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
