import { DnsError, DnsErrorCode } from './errors.js';
import { MAX_LABEL_BYTES, MAX_NAME_BYTES, keyLabelOffsets, wireToName } from './names.js';

/**
 * Bounds-checked reading and writing of DNS wire data. Every read checks its bounds first and
 * throws a `DnsError` naming the offset and the field, so malformed input never reaches a
 * DataView or an out-of-range index.
 */

/** Where `readName` left off: the offset after the name, and the name's uncompressed length. */
export interface NameCursor {
  next: number;
  length: number;
}

/**
 * Most compression pointers one name may follow. A name has at most 127 labels, so a sender
 * never needs more than one pointer per label; without a bound, pointers that only have to go
 * backwards let one 64 KiB message make every name in it walk a chain of ~16,000 (a crafted
 * query cost ~190 ms of CPU where an ordinary one costs ~2 µs).
 */
export const MAX_POINTER_JUMPS = 128;

/**
 * Reads the possibly compressed name at `start` (RFC 1035 §4.1.4) and writes its uncompressed
 * wire form, case preserved, into `out` (at least 255 bytes). Inline labels must end before
 * `end`; a pointer may only go backwards, to a part of the message before the labels read so far
 * in this name, so following pointers always terminates, and at most `MAX_POINTER_JUMPS` of them
 * are followed.
 */
export function readName(
  msg: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  cursor: NameCursor,
): void {
  let pos = start;
  let limit = end;
  let segmentStart = start;
  let length = 0;
  let next = -1;
  let jumps = 0;
  for (;;) {
    if (pos >= limit) {
      throw new DnsError(DnsErrorCode.WIRE_TRUNCATED, `name at ${start}: ends at offset ${pos}`, {
        offset: pos,
      });
    }
    const byte = msg[pos]!;
    if (byte === 0) {
      out[length++] = 0;
      if (next < 0) next = pos + 1;
      break;
    }
    if (byte >= 0xc0) {
      if (pos + 1 >= limit) {
        throw new DnsError(
          DnsErrorCode.WIRE_TRUNCATED,
          `name at ${start}: compression pointer at ${pos} cut off`,
          { offset: pos },
        );
      }
      const target = ((byte & 0x3f) << 8) | msg[pos + 1]!;
      if (next < 0) next = pos + 2;
      if (target >= msg.length) {
        throw new DnsError(
          DnsErrorCode.WIRE_POINTER_OUT_OF_RANGE,
          `name at ${start}: pointer at ${pos} to ${target}, past the end of the ${msg.length}-byte message`,
          { offset: pos, target },
        );
      }
      if (target > pos) {
        throw new DnsError(
          DnsErrorCode.WIRE_POINTER_FORWARD,
          `name at ${start}: pointer at ${pos} points forward to ${target}`,
          { offset: pos, target },
        );
      }
      if (target >= segmentStart) {
        throw new DnsError(
          DnsErrorCode.WIRE_POINTER_LOOP,
          `name at ${start}: pointer at ${pos} to ${target} loops back into the same name`,
          { offset: pos, target },
        );
      }
      if (++jumps > MAX_POINTER_JUMPS) {
        throw new DnsError(
          DnsErrorCode.WIRE_POINTER_LOOP,
          `name at ${start}: more than ${MAX_POINTER_JUMPS} compression pointers`,
          { offset: pos, target },
        );
      }
      segmentStart = target;
      pos = target;
      limit = msg.length;
      continue;
    }
    if (byte > MAX_LABEL_BYTES) {
      throw new DnsError(
        DnsErrorCode.NAME_LABEL_TOO_LONG,
        `name at ${start}: length byte 0x${byte.toString(16)} at ${pos} (labels are at most ${MAX_LABEL_BYTES} bytes; 0x40-0xBF are reserved label types)`,
        { offset: pos },
      );
    }
    if (pos + 1 + byte > limit) {
      throw new DnsError(
        DnsErrorCode.WIRE_TRUNCATED,
        `name at ${start}: label at ${pos} of ${byte} bytes runs past offset ${limit}`,
        { offset: pos },
      );
    }
    if (length + byte + 2 > MAX_NAME_BYTES) {
      throw new DnsError(
        DnsErrorCode.NAME_TOO_LONG,
        `name at ${start}: longer than ${MAX_NAME_BYTES} bytes`,
        { offset: pos },
      );
    }
    for (let i = 0; i <= byte; i++) out[length + i] = msg[pos + i]!;
    length += byte + 1;
    pos += byte + 1;
  }
  cursor.next = next;
  cursor.length = length;
}

export class WireReader {
  readonly msg: Uint8Array;
  offset: number;
  /** Reads stop here (the end of the message, or of the current record's rdata). */
  end: number;
  private readonly scratch = new Uint8Array(MAX_NAME_BYTES);
  private readonly cursor: NameCursor = { next: 0, length: 0 };

  constructor(msg: Uint8Array, offset = 0, end = msg.length) {
    this.msg = msg;
    this.offset = offset;
    this.end = end;
  }

  remaining(): number {
    return this.end - this.offset;
  }

  private need(count: number, what: string): void {
    if (this.offset + count > this.end) {
      throw new DnsError(
        DnsErrorCode.WIRE_TRUNCATED,
        `${what}: needs ${count} bytes at offset ${this.offset}, ${Math.max(0, this.end - this.offset)} left`,
        { offset: this.offset, field: what },
      );
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.msg[this.offset++]!;
  }

  u16(what: string): number {
    this.need(2, what);
    const value = (this.msg[this.offset]! << 8) | this.msg[this.offset + 1]!;
    this.offset += 2;
    return value;
  }

  u32(what: string): number {
    this.need(4, what);
    const m = this.msg;
    const o = this.offset;
    this.offset += 4;
    return ((m[o]! << 24) >>> 0) + ((m[o + 1]! << 16) | (m[o + 2]! << 8) | m[o + 3]!);
  }

  /** A copy of the next `count` bytes (decoded records never alias the packet). */
  bytes(count: number, what: string): Uint8Array {
    this.need(count, what);
    // A plain Uint8Array copy: Buffer#slice would alias the packet.
    const out = new Uint8Array(this.msg.subarray(this.offset, this.offset + count));
    this.offset += count;
    return out;
  }

  /** The uncompressed wire form of the name here. */
  nameWire(): Uint8Array {
    readName(this.msg, this.offset, this.end, this.scratch, this.cursor);
    this.offset = this.cursor.next;
    return this.scratch.slice(0, this.cursor.length);
  }

  /** The presentation text of the name here, case preserved. */
  name(): string {
    readName(this.msg, this.offset, this.end, this.scratch, this.cursor);
    this.offset = this.cursor.next;
    return wireToName(this.scratch);
  }
}

/** The largest DNS message (a TCP length prefix is 16 bits). */
export const MAX_MESSAGE_BYTES = 65535;

export class WireWriter {
  buf: Uint8Array;
  offset = 0;
  /** Lowercase name suffix key → offset of its first occurrence, when compressing. */
  private readonly names = new Map<string, number>();

  constructor(initial = 512) {
    this.buf = new Uint8Array(initial);
  }

  private reserve(count: number): void {
    const needed = this.offset + count;
    if (needed > MAX_MESSAGE_BYTES) {
      throw new DnsError(
        DnsErrorCode.WIRE_ENCODE,
        `message would be longer than ${MAX_MESSAGE_BYTES} bytes`,
        { size: needed },
      );
    }
    if (needed <= this.buf.length) return;
    const grown = new Uint8Array(
      Math.min(MAX_MESSAGE_BYTES, Math.max(needed, 2 * this.buf.length)),
    );
    grown.set(this.buf.subarray(0, this.offset));
    this.buf = grown;
  }

  u8(value: number): void {
    this.reserve(1);
    this.buf[this.offset++] = value;
  }

  u16(value: number): void {
    this.reserve(2);
    this.buf[this.offset++] = value >>> 8;
    this.buf[this.offset++] = value & 0xff;
  }

  u32(value: number): void {
    this.reserve(4);
    this.buf[this.offset++] = value >>> 24;
    this.buf[this.offset++] = (value >>> 16) & 0xff;
    this.buf[this.offset++] = (value >>> 8) & 0xff;
    this.buf[this.offset++] = value & 0xff;
  }

  bytes(data: Uint8Array): void {
    this.reserve(data.length);
    this.buf.set(data, this.offset);
    this.offset += data.length;
  }

  setU16(at: number, value: number): void {
    this.buf[at] = value >>> 8;
    this.buf[at + 1] = value & 0xff;
  }

  /**
   * Writes an uncompressed wire name. With `compress`, a suffix already written is replaced by a
   * pointer (compared case-insensitively), and this name's suffixes become pointer targets.
   */
  name(wire: Uint8Array, key: string, compress: boolean): void {
    if (!compress) {
      this.bytes(wire);
      return;
    }
    const offsets = keyLabelOffsets(key);
    for (const at of offsets) {
      if (wire[at] === 0) {
        this.u8(0);
        return;
      }
      const suffix = key.slice(at);
      const known = this.names.get(suffix);
      if (known !== undefined) {
        this.u16(0xc000 | known);
        return;
      }
      if (this.offset < 0x4000) this.names.set(suffix, this.offset);
      this.bytes(wire.subarray(at, at + wire[at]! + 1));
    }
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.offset);
  }
}
