import { WireReader, WireWriter } from './buffer.js';
import { TYPE_OPT } from './constants.js';
import { DnsError, DnsErrorCode } from './errors.js';
import { ROOT_NAME, nameToWire, wireToKey } from './names.js';
import { decodeRdata, encodeRdata, makeRecord, recordTypeCode } from './records.js';
import type { ResourceRecord } from './records.js';

/**
 * RFC 1035 §4 messages with EDNS(0) (RFC 6891). The decoder checks everything and throws a
 * `DnsError`; the encoder compresses names (RFC 1035 §4.1.4) in owners and in the RDATA of the
 * RFC 1035 types. The answer engine (answer.ts) has its own allocation-free path for queries and
 * responses; this codec is for clients, tests and tools.
 */

export const HEADER_BYTES = 12;

export interface Question {
  readonly name: string;
  readonly type: number;
  readonly class: number;
}

export interface EdnsOption {
  readonly code: number;
  readonly data: Uint8Array;
}

/** The OPT pseudo-record's fields (RFC 6891 §6.1.2–6.1.3). */
export interface Edns {
  /** The sender's largest UDP payload (the OPT CLASS field). */
  readonly udpPayloadSize: number;
  readonly version: number;
  /** The DO bit (RFC 3225). */
  readonly dnssecOk: boolean;
  readonly options: readonly EdnsOption[];
}

export interface DnsMessage {
  readonly id: number;
  /** QR: a response. */
  readonly response: boolean;
  readonly opcode: number;
  readonly authoritative: boolean;
  readonly truncated: boolean;
  readonly recursionDesired: boolean;
  readonly recursionAvailable: boolean;
  readonly authenticData: boolean;
  readonly checkingDisabled: boolean;
  /** The full rcode: header bits, plus the OPT's upper 8 bits when EDNS is present. */
  readonly rcode: number;
  readonly questions: readonly Question[];
  readonly answers: readonly ResourceRecord[];
  readonly authority: readonly ResourceRecord[];
  /** Additional records other than OPT, which is in `edns`. */
  readonly additional: readonly ResourceRecord[];
  readonly edns?: Edns;
}

const SECTIONS = ['answer', 'authority', 'additional'] as const;

function decodeOptions(r: WireReader): EdnsOption[] {
  const options: EdnsOption[] = [];
  while (r.remaining() > 0) {
    const code = r.u16('EDNS option code');
    const length = r.u16('EDNS option length');
    options.push({ code, data: r.bytes(length, `EDNS option ${code}`) });
  }
  return options;
}

/** Decodes a whole message; throws `DnsError` for anything malformed. */
export function decodeMessage(bytes: Uint8Array): DnsMessage {
  if (bytes.length < HEADER_BYTES) {
    throw new DnsError(
      DnsErrorCode.WIRE_SHORT_HEADER,
      `message of ${bytes.length} bytes is shorter than the ${HEADER_BYTES}-byte header`,
      { size: bytes.length },
    );
  }
  const r = new WireReader(bytes);
  const id = r.u16('ID');
  const flags = r.u16('flags');
  const counts = [r.u16('QDCOUNT'), r.u16('ANCOUNT'), r.u16('NSCOUNT'), r.u16('ARCOUNT')] as const;
  const questions: Question[] = [];
  const countMismatch = (section: string, index: number, count: number): DnsError =>
    new DnsError(
      DnsErrorCode.WIRE_COUNT_MISMATCH,
      `header counts ${count} ${section} entries; the message ends after ${index}`,
      { offset: r.offset, section, count, present: index },
    );
  for (let i = 0; i < counts[0]; i++) {
    if (r.remaining() === 0) throw countMismatch('question', i, counts[0]);
    questions.push({ name: r.name(), type: r.u16('QTYPE'), class: r.u16('QCLASS') });
  }
  const sections: ResourceRecord[][] = [[], [], []];
  let edns: Edns | undefined;
  let extendedRcode = 0;
  for (let s = 0; s < 3; s++) {
    const count = counts[s + 1]!;
    for (let i = 0; i < count; i++) {
      if (r.remaining() === 0) throw countMismatch(SECTIONS[s]!, i, count);
      const start = r.offset;
      const name = r.name();
      const type = r.u16('TYPE');
      const cls = r.u16('CLASS');
      const ttl = r.u32('TTL');
      const rdlength = r.u16('RDLENGTH');
      const rdEnd = r.offset + rdlength;
      if (rdEnd > bytes.length) {
        throw new DnsError(
          DnsErrorCode.WIRE_RDATA_OVERRUN,
          `record at ${start}: RDLENGTH ${rdlength} runs ${rdEnd - bytes.length} bytes past the end of the message`,
          { offset: start, rdlength },
        );
      }
      const rdata = new WireReader(bytes, r.offset, rdEnd);
      if (type === TYPE_OPT) {
        if (s !== 2 || edns !== undefined || name !== ROOT_NAME) {
          throw new DnsError(
            DnsErrorCode.WIRE_OPT_INVALID,
            `record at ${start}: ${s !== 2 ? `OPT in the ${SECTIONS[s]} section` : edns !== undefined ? 'a second OPT' : 'OPT owner is not the root'}`,
            { offset: start },
          );
        }
        extendedRcode = ttl >>> 24;
        edns = {
          udpPayloadSize: cls,
          version: (ttl >>> 16) & 0xff,
          dnssecOk: (ttl & 0x8000) !== 0,
          options: decodeOptions(rdata),
        };
      } else {
        sections[s]!.push(makeRecord(name, type, cls, ttl, decodeRdata(type, rdata)));
      }
      r.offset = rdEnd;
    }
  }
  if (r.remaining() !== 0) {
    throw new DnsError(
      DnsErrorCode.WIRE_TRAILING_BYTES,
      `${r.remaining()} bytes after the last record (offset ${r.offset})`,
      { offset: r.offset },
    );
  }
  const message: DnsMessage = {
    id,
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    authoritative: (flags & 0x0400) !== 0,
    truncated: (flags & 0x0200) !== 0,
    recursionDesired: (flags & 0x0100) !== 0,
    recursionAvailable: (flags & 0x0080) !== 0,
    authenticData: (flags & 0x0020) !== 0,
    checkingDisabled: (flags & 0x0010) !== 0,
    rcode: (extendedRcode << 4) | (flags & 0xf),
    questions,
    answers: sections[0]!,
    authority: sections[1]!,
    additional: sections[2]!,
  };
  return edns === undefined ? message : { ...message, edns };
}

/** Fields of `DnsMessage` that default when building a message to encode. */
export type MessageInput = Partial<DnsMessage> & { readonly id: number };

function checkField(value: number, max: number, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new DnsError(DnsErrorCode.WIRE_ENCODE, `${field}: ${value} is not in 0..${max}`, {
      field,
    });
  }
  return value;
}

function writeRecord(w: WireWriter, rr: ResourceRecord, compress: boolean): void {
  const owner = nameToWire(rr.name);
  w.name(owner, compress ? wireToKey(owner) : '', compress);
  w.u16(recordTypeCode(rr));
  w.u16(checkField(rr.class, 0xffff, 'class'));
  w.u32(checkField(rr.ttl, 0xffffffff, 'ttl'));
  const lengthAt = w.offset;
  w.u16(0);
  encodeRdata(rr, w, { compress, canonical: false });
  const rdlength = w.offset - lengthAt - 2;
  if (rdlength > 0xffff) {
    throw new DnsError(DnsErrorCode.WIRE_ENCODE, `RDATA of ${rr.name} above 65535 bytes`);
  }
  w.setU16(lengthAt, rdlength);
}

/** Encodes a message, compressing names unless `compress` is false. */
export function encodeMessage(
  message: MessageInput,
  options: { compress?: boolean } = {},
): Uint8Array {
  const compress = options.compress ?? true;
  const rcode = checkField(message.rcode ?? 0, 0xfff, 'rcode');
  if (rcode > 0xf && message.edns === undefined) {
    throw new DnsError(DnsErrorCode.WIRE_ENCODE, `rcode ${rcode} needs EDNS (RFC 6891 §6.1.3)`);
  }
  const w = new WireWriter(512);
  w.u16(checkField(message.id, 0xffff, 'id'));
  const flags =
    (message.response ? 0x8000 : 0) |
    (checkField(message.opcode ?? 0, 0xf, 'opcode') << 11) |
    (message.authoritative ? 0x0400 : 0) |
    (message.truncated ? 0x0200 : 0) |
    (message.recursionDesired ? 0x0100 : 0) |
    (message.recursionAvailable ? 0x0080 : 0) |
    (message.authenticData ? 0x0020 : 0) |
    (message.checkingDisabled ? 0x0010 : 0) |
    (rcode & 0xf);
  w.u16(flags);
  const questions = message.questions ?? [];
  const answers = message.answers ?? [];
  const authority = message.authority ?? [];
  const additional = message.additional ?? [];
  w.u16(checkField(questions.length, 0xffff, 'QDCOUNT'));
  w.u16(checkField(answers.length, 0xffff, 'ANCOUNT'));
  w.u16(checkField(authority.length, 0xffff, 'NSCOUNT'));
  w.u16(checkField(additional.length + (message.edns ? 1 : 0), 0xffff, 'ARCOUNT'));
  for (const q of questions) {
    const wire = nameToWire(q.name);
    w.name(wire, compress ? wireToKey(wire) : '', compress);
    w.u16(checkField(q.type, 0xffff, 'QTYPE'));
    w.u16(checkField(q.class, 0xffff, 'QCLASS'));
  }
  for (const section of [answers, authority, additional]) {
    for (const rr of section) writeRecord(w, rr, compress);
  }
  if (message.edns !== undefined) {
    const e = message.edns;
    w.u8(0);
    w.u16(TYPE_OPT);
    w.u16(checkField(e.udpPayloadSize, 0xffff, 'EDNS udpPayloadSize'));
    w.u8(rcode >> 4);
    w.u8(checkField(e.version, 0xff, 'EDNS version'));
    w.u16(e.dnssecOk ? 0x8000 : 0);
    const lengthAt = w.offset;
    w.u16(0);
    for (const option of e.options) {
      w.u16(checkField(option.code, 0xffff, 'EDNS option code'));
      w.u16(checkField(option.data.length, 0xffff, 'EDNS option length'));
      w.bytes(option.data);
    }
    w.setU16(lengthAt, w.offset - lengthAt - 2);
  }
  return w.finish();
}
