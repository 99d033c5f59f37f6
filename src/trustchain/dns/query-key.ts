import { OPCODE_QUERY, TYPE_OPT } from './constants.js';
import { MAX_NAME_BYTES } from './names.js';

/**
 * The cache key of a UDP query (bytes, and their hash): everything `answer()` reads from a plain query except its ID
 * and the letter case of its question name, which the response carries back unchanged (the
 * question is copied and owner names are pointers to it, RFC 4343 §4.1). The scan accepts only
 * the common shape and leaves everything else to the full engine:
 *
 * - opcode QUERY, QR clear, one question, no answer or authority records;
 * - a question name of 1–63-byte labels without compression, at most 255 bytes, QTYPE not OPT;
 * - no additional record, or exactly one OPT at the root with EDNS version 0 and no options
 *   (cookies, ECS and the like), ending the message.
 *
 * The answer depends on the query through the RD and CD flags (copied), the DO bit (RRSIGs and
 * proofs), whether EDNS is present (the OPT in the response) and the UDP size limit that
 * follows from the advertised size (truncation); the key holds exactly these. `answer()` reads
 * no other header bit (AA, TC, Z and AD in a query change nothing) and nothing else of the OPT.
 */

/** Bytes of the key before the name: flags, then the UDP size limit. */
const KEY_PREFIX = 3;
/** Longest key: prefix, name, QTYPE and QCLASS. */
export const MAX_QUERY_KEY_BYTES = KEY_PREFIX + MAX_NAME_BYTES + 4;

const HEADER = 12;
const CLASSIC_UDP_PAYLOAD = 512;
const MAX_RESPONSE = 65_535;
const MAX_LABEL = 63;
/** Root name, TYPE, CLASS, TTL, RDLENGTH. */
const EMPTY_OPT_BYTES = 11;

const RD = 0x01;
const CD = 0x02;
const DO = 0x04;
const EDNS = 0x08;

/** Where `udpQueryKey` writes the key; reused from query to query. */
export class QueryKeyScan {
  /** The key is the first `keyLength` bytes. */
  readonly key = new Uint8Array(MAX_QUERY_KEY_BYTES);
  keyLength = 0;
  /** FNV-1a of the key, in 30 bits (a small integer for V8's maps). */
  hash = 0;
  /** Wire length of the question name (the bytes at offset 12 a cached response takes from the query). */
  qnameLength = 0;
}

/**
 * Writes the key of `msg` into `scan` and returns true, or returns false when the query is not
 * of the plain shape above (the caller then answers it with the full engine). `maxUdpPayload`
 * is the server's limit as given to `answer()`.
 */
export function udpQueryKey(msg: Uint8Array, maxUdpPayload: number, scan: QueryKeyScan): boolean {
  const length = msg.length;
  if (length < HEADER + 5) return false;
  const flagsHigh = msg[2]!;
  // QR clear and opcode QUERY; RD is the only other bit of this byte that matters.
  if ((flagsHigh & 0xf8) !== OPCODE_QUERY << 3) return false;
  // QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 0 or 1.
  if (msg[4] !== 0 || msg[5] !== 1 || msg[6] !== 0 || msg[7] !== 0) return false;
  if (msg[8] !== 0 || msg[9] !== 0 || msg[10] !== 0 || msg[11]! > 1) return false;
  const scratch = scan.key;
  let at = HEADER;
  let out = KEY_PREFIX;
  for (;;) {
    const label = msg[at]!;
    if (label === 0) break;
    if (label > MAX_LABEL || at + 1 + label >= length) return false;
    scratch[out++] = label;
    for (let i = at + 1, end = at + 1 + label; i < end; i++) {
      const b = msg[i]!;
      scratch[out++] = b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
    }
    at += label + 1;
    if (at - HEADER + 1 > MAX_NAME_BYTES) return false;
  }
  scratch[out++] = 0;
  at++;
  if (at + 4 > length) return false;
  if (msg[at] === TYPE_OPT >> 8 && msg[at + 1] === (TYPE_OPT & 0xff)) return false;
  for (let i = 0; i < 4; i++) scratch[out++] = msg[at + i]!;
  at += 4;
  let flags = (flagsHigh & 0x01 ? RD : 0) | (msg[3]! & 0x10 ? CD : 0);
  let limit = CLASSIC_UDP_PAYLOAD;
  if (msg[11] === 1) {
    // The OPT: root name, TYPE 41, CLASS = payload, TTL = extended rcode, version, DO + Z,
    // RDLENGTH 0, and nothing after it.
    if (at + EMPTY_OPT_BYTES !== length) return false;
    if (msg[at] !== 0 || msg[at + 1] !== TYPE_OPT >> 8 || msg[at + 2] !== (TYPE_OPT & 0xff)) {
      return false;
    }
    if (msg[at + 6] !== 0 || msg[at + 9] !== 0 || msg[at + 10] !== 0) return false;
    flags |= EDNS | (msg[at + 7]! & 0x80 ? DO : 0);
    const payload = (msg[at + 3]! << 8) | msg[at + 4]!;
    const ceiling = Math.max(CLASSIC_UDP_PAYLOAD, Math.min(MAX_RESPONSE, maxUdpPayload));
    limit = Math.max(CLASSIC_UDP_PAYLOAD, Math.min(payload, ceiling));
  } else if (at !== length) {
    return false;
  }
  scratch[0] = flags;
  scratch[1] = limit >> 8;
  scratch[2] = limit & 0xff;
  let hash = 0x811c9dc5;
  for (let i = 0; i < out; i++) hash = Math.imul(hash ^ scratch[i]!, 0x01000193);
  scan.hash = hash & 0x3fffffff;
  scan.keyLength = out;
  scan.qnameLength = at - HEADER - 4;
  return true;
}
