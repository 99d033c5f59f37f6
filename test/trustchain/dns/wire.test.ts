import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_POINTER_JUMPS } from '../../../src/trustchain/dns/buffer.js';
import {
  DnsError,
  DnsErrorCode,
  decodeMessage,
  encodeMessage,
} from '../../../src/trustchain/dns/index.js';

const hex = (text: string): Uint8Array =>
  Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const EXAMPLE_COM = '07 6578616d706c65 03 636f6d 00';
/** Header with the given counts, ID 0x1234, flags 0. */
const header = (qd: number, an = 0, ns = 0, ar = 0): string =>
  `1234 0000 ${[qd, an, ns, ar].map((n) => n.toString(16).padStart(4, '0')).join(' ')}`;

function fails(
  bytes: Uint8Array,
  code: DnsErrorCode,
  detail: Record<string, unknown> = {},
): DnsError {
  let caught: unknown;
  try {
    decodeMessage(bytes);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof DnsError, `expected DnsError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  for (const [key, value] of Object.entries(detail)) assert.equal(caught.detail[key], value, key);
  return caught;
}

describe('wire: golden messages (derived by hand from RFC 1035 §4.1)', () => {
  it('a query for example.com A with RD', () => {
    const bytes = hex(`1234 0100 0001 0000 0000 0000 ${EXAMPLE_COM} 0001 0001`);
    const message = {
      id: 0x1234,
      recursionDesired: true,
      questions: [{ name: 'example.com.', type: 1, class: 1 }],
    };
    assert.deepEqual(encodeMessage(message), bytes);
    const decoded = decodeMessage(bytes);
    assert.equal(decoded.id, 0x1234);
    assert.ok(decoded.recursionDesired && !decoded.response);
    assert.deepEqual(decoded.questions, message.questions);
    assert.equal(decoded.edns, undefined);
  });

  it('a response whose answer owner is a pointer to the question (0xC00C)', () => {
    const bytes = hex(`1234 8180 0001 0001 0000 0000 ${EXAMPLE_COM} 0001 0001
                       c00c 0001 0001 00000e10 0004 5db8d822`);
    const message = {
      id: 0x1234,
      response: true,
      recursionDesired: true,
      recursionAvailable: true,
      questions: [{ name: 'example.com.', type: 1, class: 1 }],
      answers: [
        {
          name: 'example.com.',
          type: 'A' as const,
          class: 1,
          ttl: 3600,
          data: { address: '93.184.216.34' },
        },
      ],
    };
    assert.deepEqual(encodeMessage(message), bytes);
    assert.deepEqual(decodeMessage(bytes).answers, message.answers);
  });

  it('EDNS(0): OPT with payload size, DO bit, extended rcode and options (RFC 6891 §6.1)', () => {
    const bytes = hex(`1234 8000 0000 0000 0000 0001
                       00 0029 1000 01 00 8000 0008 000a 0004 01020304`);
    const decoded = decodeMessage(bytes);
    assert.equal(decoded.rcode, 16);
    assert.deepEqual(decoded.edns, {
      udpPayloadSize: 4096,
      version: 0,
      dnssecOk: true,
      options: [{ code: 10, data: Uint8Array.of(1, 2, 3, 4) }],
    });
    assert.deepEqual(encodeMessage({ ...decoded }), bytes);
    assert.throws(
      () => encodeMessage({ id: 1, rcode: 16 }),
      (e: DnsError) => e.code === DnsErrorCode.WIRE_ENCODE,
    );
  });

  it('unknown types are carried as opaque RDATA (RFC 3597)', () => {
    const bytes = hex(`1234 8000 0000 0001 0000 0000 00 ff00 0001 00000001 0003 abcdef`);
    const [rr] = decodeMessage(bytes).answers;
    assert.deepEqual(rr, {
      name: '.',
      type: 'TYPE65280',
      class: 1,
      ttl: 1,
      data: { rdata: hex('abcdef') },
    });
    assert.deepEqual(encodeMessage(decodeMessage(bytes)), bytes);
  });
});

describe('wire: malformed messages give a precise typed error', () => {
  it('short header', () => {
    fails(hex('1234 0000 0001'), DnsErrorCode.WIRE_SHORT_HEADER, { size: 6 });
  });

  it('a name may follow at most MAX_POINTER_JUMPS compression pointers', () => {
    // A question for the root, then an opaque record whose data is a chain of `length` pointers,
    // each to the one before (they only go backwards, so each is legal on its own), and an NS
    // record whose owner and host point at the chain's end. Unbounded, every name of a 64 KiB
    // message could walk a chain of ~16,000 pointers.
    const chained = (length: number): Uint8Array => {
      const bytes: number[] = [...hex(header(1, 0, 0, 2)), 0, 0, 1, 0, 1];
      const u16 = (value: number) => bytes.push(value >> 8, value & 0xff);
      bytes.push(0);
      u16(0xff00);
      u16(1);
      u16(0);
      u16(0);
      u16(1 + 2 * length);
      let previous = bytes.length;
      bytes.push(0);
      for (let i = 0; i < length; i++) {
        const here = bytes.length;
        u16(0xc000 | previous);
        previous = here;
      }
      u16(0xc000 | previous);
      for (const value of [2, 1, 0, 0, 2]) u16(value);
      u16(0xc000 | previous);
      return Uint8Array.from(bytes);
    };
    const fine = decodeMessage(chained(MAX_POINTER_JUMPS - 1));
    assert.equal(fine.additional[1]?.name, '.');
    const error = fails(chained(MAX_POINTER_JUMPS), DnsErrorCode.WIRE_POINTER_LOOP);
    assert.match(error.message, /more than 128 compression pointers/);
    fails(chained(16_000), DnsErrorCode.WIRE_POINTER_LOOP);
  });

  it('pointer to itself, and pointer back into the same name, are loops', () => {
    fails(hex(`${header(1)} c00c 0001 0001`), DnsErrorCode.WIRE_POINTER_LOOP, {
      offset: 12,
      target: 12,
    });
    fails(hex(`${header(1)} 0161 c00c 0001 0001`), DnsErrorCode.WIRE_POINTER_LOOP, { offset: 14 });
    // An owner name after the question: label "b", then a pointer back to its own start.
    fails(
      hex(`${header(1, 1)} 0161 00 0001 0001 0162 c013 0001 0001 00000000 0000`),
      DnsErrorCode.WIRE_POINTER_LOOP,
      { offset: 21, target: 19 },
    );
    // ...while a pointer from it to the question's name is fine.
    assert.equal(
      decodeMessage(
        hex(`${header(1, 1)} 0161 00 0001 0001 0162 c00c 0001 0001 00000000 0004 c0000201`),
      ).answers[0]!.name,
      'b.a.',
    );
  });

  it('forward pointer and pointer past the end', () => {
    fails(hex(`${header(1)} c00e 0001 0001`), DnsErrorCode.WIRE_POINTER_FORWARD, {
      offset: 12,
      target: 14,
    });
    fails(hex(`${header(1)} c0ff 0001 0001`), DnsErrorCode.WIRE_POINTER_OUT_OF_RANGE, {
      target: 255,
    });
  });

  it('a length byte above 63 (reserved label types)', () => {
    fails(
      hex(`${header(1)} 40 ${'61'.repeat(64)} 00 0001 0001`),
      DnsErrorCode.NAME_LABEL_TOO_LONG,
      { offset: 12 },
    );
    fails(hex(`${header(1)} 80 0001 0001`), DnsErrorCode.NAME_LABEL_TOO_LONG);
  });

  it('a name above 255 bytes, also when assembled through pointers', () => {
    const label = `3f ${'61'.repeat(63)}`;
    fails(
      hex(`${header(1)} ${label} ${label} ${label} ${label} 00 0001 0001`),
      DnsErrorCode.NAME_TOO_LONG,
    );
    // First name: 3 × 64 bytes + root = 193; the second adds a 63-byte label and points to it.
    fails(
      hex(`${header(2)} ${label} ${label} ${label} 00 0001 0001 ${label} c00c 0001 0001`),
      DnsErrorCode.NAME_TOO_LONG,
    );
  });

  it('a name cut off by the end of the message', () => {
    fails(hex(`${header(1)} 07 6578616d`), DnsErrorCode.WIRE_TRUNCATED, { offset: 12 });
    fails(hex(`${header(1)} ${EXAMPLE_COM} 00`), DnsErrorCode.WIRE_TRUNCATED, { field: 'QTYPE' });
  });

  it('RDLENGTH past the end of the message', () => {
    fails(hex(`${header(0, 1)} 00 0001 0001 00000000 0004 c000`), DnsErrorCode.WIRE_RDATA_OVERRUN, {
      offset: 12,
      rdlength: 4,
    });
  });

  it('RDATA too short for its type, or with bytes left over', () => {
    fails(hex(`${header(0, 1)} 00 0001 0001 00000000 0002 c000`), DnsErrorCode.WIRE_RDATA_INVALID);
    fails(
      hex(`${header(0, 1)} 00 001c 0001 00000000 0004 c0000201`),
      DnsErrorCode.WIRE_RDATA_INVALID,
    );
    fails(hex(`${header(0, 1)} 00 0005 0001 00000000 0002 00ff`), DnsErrorCode.WIRE_RDATA_INVALID);
    // MX whose exchange name runs past RDLENGTH (into the bytes after the record).
    fails(
      hex(`${header(0, 1)} 00 000f 0001 00000000 0003 000a 01 61 00`),
      DnsErrorCode.WIRE_TRUNCATED,
    );
    // SOA cut off inside its numbers.
    fails(
      hex(`${header(0, 1)} 00 0006 0001 00000000 0006 00 00 00000001`),
      DnsErrorCode.WIRE_TRUNCATED,
      { field: 'SOA refresh' },
    );
  });

  it("RDATA whose fields break their type's rules", () => {
    const https = (params: string): Uint8Array => {
      const rdata = hex(`0001 00 ${params}`);
      return hex(
        `${header(0, 1)} 00 0041 0001 00000000 ${rdata.length.toString(16).padStart(4, '0')} ${Buffer.from(rdata).toString('hex')}`,
      );
    };
    fails(https('0003 0002 0035 0001 0003 026832'), DnsErrorCode.WIRE_RDATA_INVALID); // keys out of order
    fails(https('0003 0003 003500'), DnsErrorCode.WIRE_RDATA_INVALID); // port of 3 bytes
    fails(https('0001 0003 036832'), DnsErrorCode.WIRE_RDATA_INVALID); // alpn id past its value
    fails(https('0000 0002 0000'), DnsErrorCode.WIRE_RDATA_INVALID); // mandatory lists itself
    fails(https('0006 0004 20010db8'), DnsErrorCode.WIRE_RDATA_INVALID); // ipv6hint not 16 bytes
    fails(https('0003 0004 0035'), DnsErrorCode.WIRE_TRUNCATED); // value past RDATA
    // NSEC bitmap with a trailing zero byte (RFC 4034 §4.1.2).
    fails(
      hex(`${header(0, 1)} 00 002f 0001 00000000 0005 00 0002 4000`),
      DnsErrorCode.WIRE_RDATA_INVALID,
    );
    // TXT with no strings, CAA with an empty tag.
    fails(hex(`${header(0, 1)} 00 0010 0001 00000000 0000`), DnsErrorCode.WIRE_RDATA_INVALID);
    fails(hex(`${header(0, 1)} 00 0101 0001 00000000 0002 0000`), DnsErrorCode.WIRE_RDATA_INVALID);
  });

  it('counts larger than the message', () => {
    fails(
      hex(`${header(1, 2)} 00 0001 0001 00 0001 0001 00000000 0004 c0000201`),
      DnsErrorCode.WIRE_COUNT_MISMATCH,
      {
        section: 'answer',
        count: 2,
        present: 1,
      },
    );
    fails(hex(header(3)), DnsErrorCode.WIRE_COUNT_MISMATCH, { section: 'question', present: 0 });
  });

  it('bytes after the last record', () => {
    fails(hex(`${header(1)} 00 0001 0001 ff`), DnsErrorCode.WIRE_TRAILING_BYTES, { offset: 17 });
  });

  it('OPT out of place', () => {
    const opt = '00 0029 0200 00000000 0000';
    fails(hex(`${header(0, 0, 0, 2)} ${opt} ${opt}`), DnsErrorCode.WIRE_OPT_INVALID, {
      offset: 23,
    });
    fails(hex(`${header(0, 1)} ${opt}`), DnsErrorCode.WIRE_OPT_INVALID);
    fails(
      hex(`${header(0, 0, 0, 1)} 0161 00 0029 0200 00000000 0000`),
      DnsErrorCode.WIRE_OPT_INVALID,
    );
    fails(
      hex(`${header(0, 0, 0, 1)} 00 0029 0200 00000000 0003 000a00`),
      DnsErrorCode.WIRE_TRUNCATED,
    );
  });

  it('arbitrary bytes: decoded or refused with DnsError, never another exception', () => {
    const valid = encodeMessage({
      id: 7,
      questions: [{ name: 'www.example.com.', type: 1, class: 1 }],
      answers: [
        {
          name: 'www.example.com.',
          type: 'MX',
          class: 1,
          ttl: 60,
          data: { preference: 1, exchange: 'mx.example.com.' },
        },
        {
          name: 'example.com.',
          type: 'HTTPS',
          class: 1,
          ttl: 60,
          data: { priority: 1, target: '.', params: { alpn: ['h2'], port: 443 } },
        },
      ],
      edns: { udpPayloadSize: 1232, version: 0, dnssecOk: true, options: [] },
    });
    const mutated = fc
      .array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      })
      .chain((edits) =>
        fc.nat(valid.length).map((cut) => {
          const copy = valid.slice(0, Math.max(12, cut));
          for (const [at, byte] of edits) if (at < copy.length) copy[at] = byte;
          return copy;
        }),
      );
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }), mutated), (bytes) => {
        try {
          decodeMessage(bytes);
        } catch (error) {
          assert.ok(error instanceof DnsError, String(error));
        }
      }),
      { numRuns: 3000 },
    );
  });
});
