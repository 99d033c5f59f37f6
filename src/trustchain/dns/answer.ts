import { readName } from './buffer.js';
import type { NameCursor } from './buffer.js';
import {
  CLASS_IN,
  OPCODE_QUERY,
  RR_TYPES,
  Rcode,
  TYPE_ANY,
  TYPE_AXFR,
  TYPE_IXFR,
  TYPE_OPT,
  TYPE_SIG,
  TYPE_TSIG,
} from './constants.js';
import { emptyLookup, lookupName, type NameLookup } from './lookup.js';
import { MAX_NAME_BYTES } from './names.js';
import type { RRsetWire, Zone, ZoneNode, ZoneSignatures, ZoneSource } from './zone.js';

/**
 * The authoritative answer engine (RFC 1034 §4.3.2, RFC 2308, RFC 4592, RFC 6891, RFC 8482):
 * query bytes in, response bytes out, no I/O. It reads the header, the question and at most
 * two additional records (an OPT, a TSIG or SIG(0)), refusing any other record unread, and
 * writes the response by copying the zone's pre-encoded RRsets into one reused buffer, owner
 * names compressed against the question.
 * A signed zone answers a query with DO (RFC 3225) with each RRset's RRSIG next to it and
 * NSEC proofs in the authority section (RFC 4035 §3.1); other queries take the unsigned path.
 * See docs/dns.md for the behaviour chosen where the RFCs leave a choice.
 */

export type Transport = 'udp' | 'tcp';

export interface AnswerOptions {
  readonly transport: Transport;
  /**
   * Largest UDP response when the query has EDNS (default 1232, the DNS Flag Day 2020 size that
   * avoids IP fragmentation); the response is never larger than the query's advertised size,
   * and never smaller than 512.
   */
  readonly maxUdpPayload?: number;
  /** Filled with what the response says (for the servers' metrics), when given. */
  readonly info?: AnswerInfo;
}

export const DEFAULT_MAX_UDP_PAYLOAD = 1232;
/** RFC 1035 §4.2.1 limit without EDNS. */
export const CLASSIC_UDP_PAYLOAD = 512;
/** The OPT record this server writes: root name, type, class, TTL, RDLENGTH 0. */
const OPT_BYTES = 11;
/** CNAME hops followed before giving up (loops are also caught by name). */
const MAX_CNAME_CHAIN = 16;
const HEADER = 12;
const MAX_RESPONSE = 65535;

const ANSWER = 0;
const AUTHORITY = 1;
const ADDITIONAL = 2;

/** What a response says, for metrics: the full rcode (BADVERS is 16), the QTYPE (0 without a question), TC. */
export interface AnswerInfo {
  rcode: number;
  qtype: number;
  truncated: boolean;
}

// One response is built at a time (answer() is synchronous), so the scratch state is shared.
const out = Buffer.allocUnsafeSlow(MAX_RESPONSE);
const qname = new Uint8Array(MAX_NAME_BYTES);
const qlower = Buffer.alloc(MAX_NAME_BYTES);
const qlabels = new Int16Array(128);
const scratchName = new Uint8Array(MAX_NAME_BYTES);
const cursor: NameCursor = { next: 0, length: 0 };

let qnameLength = 0;
let qlabelCount = 0;
let qkey = '';
let pos = 0;
let limit = 0;
const counts = new Int32Array(3);
let truncated = false;
let rcodeOut = 0;
let advertisedPayload = DEFAULT_MAX_UDP_PAYLOAD;
/** RRsets written so far (the first `addedCount`), so the additional section skips repeats. */
const added: RRsetWire[] = [];
let addedCount = 0;
const EMPTY_WIRE = new Uint8Array(0);
const EMPTY_OFFSETS: readonly number[] = [];
let infoOut: AnswerInfo | undefined;
/** The signed zone whose RRSIGs go with the RRsets written now (undefined: write none). */
let dnssec: ZoneSignatures | undefined;

function u16(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}

function put16(at: number, value: number): void {
  out[at] = value >>> 8;
  out[at + 1] = value & 0xff;
}

/** Parsed query state, filled by `parseQuery`. */
interface QueryInfo {
  id: number;
  flags: number;
  questionOk: boolean;
  qtype: number;
  qclass: number;
  /** Why the query is malformed, or '' (kept for tests and logs). */
  error: string;
  hasEdns: boolean;
  ednsVersion: number;
  ednsPayload: number;
  dnssecOk: boolean;
  /** The query ends with a TSIG or SIG(0) (not supported: NOTIMP). */
  signed: boolean;
}

const query: QueryInfo = {
  id: 0,
  flags: 0,
  questionOk: false,
  qtype: 0,
  qclass: 0,
  error: '',
  hasEdns: false,
  ednsVersion: 0,
  ednsPayload: 0,
  dnssecOk: false,
  signed: false,
};

/**
 * Additional records a query may carry: one OPT (RFC 6891 §6.1.1) and, last, one TSIG (RFC 8945
 * §5.1) or SIG(0) (RFC 2931 §3.1).
 */
const MAX_QUERY_ADDITIONAL = 2;

/**
 * Reads the header, the question and the additional records of a message shaped like a query,
 * and nothing else, so the work per message is bounded whatever its size: the answer and
 * authority sections carry what answers a question (RFC 1035 §4.1), so a query's are empty, and
 * its additional section holds an OPT and a TSIG or SIG(0) at most. A message with any other
 * records is FORMERR without reading them. Of the records read, only the OPT's RDATA is (its
 * option framing); a TSIG's or SIG(0)'s is skipped by RDLENGTH (NOTIMP: transaction signatures
 * are not supported). A message refused here is refused by `decodeMessage` too, or is well
 * formed but carries records no query carries.
 */
function parseQuery(msg: Uint8Array): void {
  const q = query;
  q.questionOk = false;
  q.error = '';
  q.hasEdns = false;
  q.dnssecOk = false;
  q.signed = false;
  const qd = u16(msg, 4);
  if (qd !== 1) {
    q.error = `QDCOUNT ${qd}, expected 1`;
    return;
  }
  let at = HEADER;
  try {
    readName(msg, at, msg.length, qname, cursor);
  } catch (error) {
    q.error = (error as Error).message;
    return;
  }
  qnameLength = cursor.length;
  at = cursor.next;
  if (at + 4 > msg.length) {
    q.error = 'question ends inside QTYPE/QCLASS';
    return;
  }
  q.qtype = u16(msg, at);
  q.qclass = u16(msg, at + 2);
  at += 4;
  q.questionOk = true;
  const an = u16(msg, 6);
  const ns = u16(msg, 8);
  const ar = u16(msg, 10);
  if (q.qtype === TYPE_IXFR && an === 0 && ns === 1) {
    // An IXFR query carries the client's SOA in authority (RFC 1995 §3). Zone transfers are
    // refused (REFUSED, below) whatever the query holds, so nothing past the question is read.
    return;
  }
  if (an !== 0 || ns !== 0) {
    q.error = `a query with ${an} answer and ${ns} authority records`;
    return;
  }
  if (ar > MAX_QUERY_ADDITIONAL) {
    q.error = `ARCOUNT ${ar}: a query carries at most an OPT and a TSIG or SIG(0)`;
    return;
  }
  for (let i = 0; i < ar; i++) {
    const start = at;
    try {
      readName(msg, at, msg.length, scratchName, cursor);
    } catch (error) {
      q.error = (error as Error).message;
      return;
    }
    at = cursor.next;
    if (at + 10 > msg.length) {
      q.error = `record at ${start} ends inside its fixed fields`;
      return;
    }
    const type = u16(msg, at);
    const rdlength = u16(msg, at + 8);
    const rdEnd = at + 10 + rdlength;
    if (rdEnd > msg.length) {
      q.error = `record at ${start}: RDLENGTH ${rdlength} runs past the message`;
      return;
    }
    if (type === TYPE_OPT) {
      if (q.hasEdns || cursor.length !== 1) {
        q.error = `record at ${start}: misplaced OPT`;
        return;
      }
      for (let o = at + 10; o < rdEnd;) {
        if (o + 4 > rdEnd || o + 4 + u16(msg, o + 2) > rdEnd) {
          q.error = `OPT at ${start}: option at ${o} runs past the RDATA`;
          return;
        }
        o += 4 + u16(msg, o + 2);
      }
      q.hasEdns = true;
      q.ednsPayload = u16(msg, at + 2);
      q.ednsVersion = msg[at + 5]!;
      q.dnssecOk = (msg[at + 6]! & 0x80) !== 0;
    } else if ((type === TYPE_TSIG || type === TYPE_SIG) && i === ar - 1) {
      q.signed = true;
    } else {
      q.error = `record at ${start}: type ${type} in a query's additional section (only OPT, and TSIG or SIG(0) last)`;
      return;
    }
    at = rdEnd;
  }
  if (at !== msg.length) q.error = `${msg.length - at} bytes after the last record`;
}

/** Lowercases the question name, records label offsets and builds its key. */
function prepareQname(): void {
  let count = 0;
  for (let i = 0; i < qnameLength;) {
    qlabels[count++] = i;
    const length = qname[i]!;
    qlower[i] = length;
    for (let j = i + 1; j <= i + length; j++) {
      const b = qname[j]!;
      qlower[j] = b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
    }
    i += length + 1;
  }
  qlabelCount = count;
  qkey = qlower.toString('latin1', 0, qnameLength);
}

function beginResponse(rcode: number, withQuestion: boolean): void {
  const q = query;
  put16(0, q.id);
  // QR, opcode, RD and CD kept from the query; AA and TC set later.
  out[2] = 0x80 | ((q.flags >> 8) & 0x79);
  out[3] = (q.flags & 0x10) | (rcode & 0xf);
  put16(4, withQuestion ? 1 : 0);
  put16(6, 0);
  put16(8, 0);
  put16(10, 0);
  pos = HEADER;
  if (withQuestion) {
    for (let i = 0; i < qnameLength; i++) out[pos + i] = qname[i]!;
    pos += qnameLength;
    put16(pos, q.qtype);
    put16(pos + 2, q.qclass);
    pos += 4;
  }
  counts.fill(0);
  truncated = false;
  rcodeOut = rcode;
  addedCount = 0;
}

function setRcode(rcode: number): void {
  out[3] = (out[3]! & 0xf0) | (rcode & 0xf);
  rcodeOut = rcode;
}

/** Where a label-aligned suffix of the question name starts, for a suffix of `length` bytes. */
function questionSuffixAt(key: string, from: number): number {
  const length = key.length - from;
  const start = qnameLength - length;
  if (start < 0) return -1;
  let aligned = false;
  for (let i = 0; i < qlabelCount; i++) {
    if (qlabels[i] === start) {
      aligned = true;
      break;
    }
  }
  if (!aligned) return -1;
  for (let i = 0; i < length; i++) if (qlower[start + i] !== key.charCodeAt(from + i)) return -1;
  return start;
}

/** Bytes the owner takes when written by `writeOwner`; `ownerSplit` says how. */
let ownerSplit = 0;
let ownerPointer = -1;
function ownerSize(key: string, wire: Uint8Array, offsets: readonly number[]): number {
  if (key === qkey) {
    ownerSplit = 0;
    ownerPointer = HEADER;
    return 2;
  }
  for (let i = 0; i < offsets.length - 1; i++) {
    const at = questionSuffixAt(key, offsets[i]!);
    if (at >= 0) {
      ownerSplit = offsets[i]!;
      ownerPointer = HEADER + at;
      return ownerSplit + 2;
    }
  }
  ownerSplit = wire.length;
  ownerPointer = -1;
  return wire.length;
}

function writeOwner(wire: Uint8Array): void {
  for (let i = 0; i < ownerSplit; i++) out[pos + i] = wire[i]!;
  pos += ownerSplit;
  if (ownerPointer >= 0) {
    out[pos] = 0xc0 | (ownerPointer >> 8);
    out[pos + 1] = ownerPointer & 0xff;
    pos += 2;
  }
}

/**
 * Appends a whole RRset to `section` with owner `key`/`wire` (the set's own owner, or the name
 * a wildcard was synthesized for). Returns false, writing nothing, when it does not fit.
 */
function addRRset(
  set: RRsetWire,
  section: number,
  key: string = set.ownerKey,
  wire: Uint8Array = set.ownerWire,
  offsets: readonly number[] = set.ownerOffsets,
): boolean {
  const ownerBytes = ownerSize(key, wire, offsets);
  let size = 0;
  for (const tail of set.tails) size += ownerBytes + tail.length;
  // RFC 4035 §3.1.1: an RRset and its RRSIG go in together or not at all.
  const rrsig = dnssec === undefined ? undefined : dnssec.rrsig(set);
  if (rrsig !== undefined) size += ownerBytes + rrsig.length;
  if (pos + size > limit) return false;
  for (const tail of set.tails) {
    writeOwner(wire);
    out.set(tail, pos);
    pos += tail.length;
  }
  counts[section]! += set.tails.length;
  if (rrsig !== undefined) {
    writeOwner(wire);
    out.set(rrsig, pos);
    pos += rrsig.length;
    counts[section]! += 1;
  }
  added[addedCount++] = set;
  return true;
}

/** Adds to the answer or authority; on overflow sets TC and reports false. */
function addRequired(
  set: RRsetWire,
  section: number,
  key?: string,
  wire?: Uint8Array,
  offsets?: readonly number[],
): boolean {
  if (addRRset(set, section, key, wire, offsets)) return true;
  truncated = true;
  return false;
}

function wasAdded(set: RRsetWire): boolean {
  for (let i = 0; i < addedCount; i++) if (added[i] === set) return true;
  return false;
}

/** Addresses of NS/MX/SRV targets; `required` for referral glue (RFC 9471). */
function addAdditional(set: RRsetWire, required: boolean): void {
  for (const extra of set.additional) {
    if (truncated) return;
    if (wasAdded(extra)) continue;
    if (!addRRset(extra, ADDITIONAL) && required) truncated = true;
  }
}

/** Where the name being answered lands in its zone (reused for every step). */
const walk: NameLookup<ZoneNode> = emptyLookup();

/** Names already answered in this CNAME chain (the first `chainLength`). */
const chain: string[] = [];
let chainLength = 0;

function inChain(key: string): boolean {
  for (let i = 0; i < chainLength; i++) if (chain[i] === key) return true;
  return false;
}

/**
 * Denial and delegation proofs (NSEC, DS) for the authority section, each with its signed zone
 * (the first `proofCount`); written once the answer section is complete. Only with DO.
 */
const proofs: RRsetWire[] = [];
const proofZones: ZoneSignatures[] = [];
let proofCount = 0;
/** RRsets whose additional-section data follows the authority section (the first `extraCount`). */
const extras: RRsetWire[] = [];
let extraCount = 0;
let extrasRequired = false;
let extrasZone: ZoneSignatures | undefined;

function addProof(set: RRsetWire | undefined, zone: ZoneSignatures): void {
  if (set === undefined) return;
  for (let i = 0; i < proofCount; i++) if (proofs[i] === set) return;
  proofs[proofCount] = set;
  proofZones[proofCount++] = zone;
}

/**
 * RFC 4035 §3.1.3.1: the NSEC at the name shows the type (and CNAME) absent; an empty
 * non-terminal has none, and the NSEC covering it shows that it exists without data.
 */
function addNoDataProof(node: ZoneNode, zone: ZoneSignatures): void {
  addProof(node.rrsets.get(RR_TYPES.NSEC) ?? zone.covering(node.key), zone);
}

function addExtra(set: RRsetWire, zone: ZoneSignatures | undefined): void {
  extras[extraCount++] = set;
  extrasZone = zone;
}

function resolve(zones: ZoneSource, zone: Zone, qtype: number, transport: Transport): void {
  proofCount = 0;
  extraCount = 0;
  extrasRequired = false;
  extrasZone = undefined;
  follow(zones, zone, qtype, transport);
  if (!truncated) {
    for (let i = 0; i < proofCount; i++) {
      const set = proofs[i]!;
      if (wasAdded(set)) continue;
      dnssec = proofZones[i];
      if (!addRequired(set, AUTHORITY)) break;
    }
    dnssec = extrasZone;
    for (let i = 0; i < extraCount; i++) addAdditional(extras[i]!, extrasRequired);
  }
  dnssec = undefined;
}

/**
 * Answers for `key` in `zone`, following CNAMEs through the zones held. The first name is the
 * question (owner written as a pointer to it); later names are CNAME targets. With DO, each
 * step in a signed zone writes RRSIGs and queues its proofs (RFC 4035 §3.1.3).
 */
function follow(zones: ZoneSource, zone: Zone, qtype: number, transport: Transport): void {
  let key = qkey;
  let current = zone;
  chainLength = 0;
  for (let hop = 0; ; hop++) {
    const signed = query.dnssecOk ? current.dnssec : undefined;
    dnssec = signed;
    const ds = qtype === RR_TYPES.DS;
    lookupName(current, key, ds, walk);
    if (walk.cut !== undefined) {
      if (hop === 0) {
        // A referral: not authoritative, NS in authority, glue in additional.
        out[2] = out[2]! & ~0x04;
        const cut = walk.cut;
        const ns = cut.rrsets.get(RR_TYPES.NS)!;
        if (!addRequired(ns, AUTHORITY)) return;
        // RFC 4035 §3.1.4: the signed DS RRset, or the NSEC showing the delegation has none.
        if (signed !== undefined) {
          addProof(cut.rrsets.get(RR_TYPES.DS) ?? cut.rrsets.get(RR_TYPES.NSEC), signed);
        }
        addExtra(ns, signed);
        extrasRequired = true;
      }
      return;
    }
    let node = walk.node;
    let synthesized = false;
    if (node === undefined) {
      const encloser = walk.encloser;
      node = walk.wildcard;
      synthesized = true;
      if (node === undefined) {
        setRcode(Rcode.NXDOMAIN);
        if (!addRequired(current.negativeSoa, AUTHORITY)) return;
        if (signed !== undefined) {
          // RFC 4035 §3.1.3.2: the name does not exist, nor the wildcard at its closest encloser.
          addProof(signed.covering(key), signed);
          if (encloser !== undefined) addProof(signed.covering(`\x01*${encloser.key}`), signed);
        }
        return;
      }
      // RFC 4035 §3.1.3.3: a wildcard answer comes with the proof that the name does not exist.
      if (signed !== undefined) addProof(signed.covering(key), signed);
    }
    // Records are written under the name asked for: the question (a pointer to it), or the
    // CNAME target; a synthesized record takes that name too (RFC 4592 §3.3.1).
    if (hop === 0) {
      ownerKeyNow = qkey;
      ownerWireNow = EMPTY_WIRE;
      ownerOffsetsNow = EMPTY_OFFSETS;
    } else {
      ownerKeyNow = key;
      ownerWireNow = synthesized ? keyWire(key) : EMPTY_WIRE;
      ownerOffsetsNow = synthesized ? keyOffsets(key) : EMPTY_OFFSETS;
    }
    rename = synthesized;
    if (qtype === TYPE_ANY) {
      if (node.ordered.length === 0) {
        if (addRequired(current.negativeSoa, AUTHORITY) && signed !== undefined)
          addNoDataProof(node, signed);
        return;
      }
      // RFC 8482 §4.1: over UDP one RRset (the lowest type); over TCP all of them.
      const count = transport === 'udp' ? 1 : node.ordered.length;
      for (let i = 0; i < count; i++) if (!addAnswer(node.ordered[i]!)) return;
      for (let i = 0; i < count; i++) addExtra(node.ordered[i]!, signed);
      return;
    }
    const set = node.rrsets.get(qtype);
    if (set !== undefined) {
      if (addAnswer(set)) addExtra(set, signed);
      return;
    }
    if (qtype === RR_TYPES.RRSIG && current.dnssec !== undefined && node.ordered.length > 0) {
      addSignatures(node, current.dnssec);
      return;
    }
    const cname = node.rrsets.get(RR_TYPES.CNAME);
    if (cname === undefined) {
      // NODATA; for a wildcard, the NSEC at the wildcard shows the type absent (RFC 4035 §3.1.3.4).
      if (addRequired(current.negativeSoa, AUTHORITY) && signed !== undefined)
        addNoDataProof(node, signed);
      return;
    }
    if (!addAnswer(cname)) return;
    chain[chainLength++] = key;
    const target = cname.target!;
    if (hop + 1 >= MAX_CNAME_CHAIN || inChain(target)) return;
    const next = zones.findZone(target);
    if (next === undefined) return;
    key = target;
    current = next;
  }
}

/** Signatures written for a QTYPE RRSIG answer (one array, reused). */
const signatures: Uint8Array[] = [];

/**
 * QTYPE RRSIG at a name of a signed zone: the RRSIGs of all its RRsets, with or without DO
 * (they were asked for by type). All of them or, when they do not fit, TC.
 */
function addSignatures(node: ZoneNode, zone: ZoneSignatures): void {
  const first = node.ordered[0]!;
  const key = rename ? ownerKeyNow : first.ownerKey;
  const wire = rename ? ownerWireNow : first.ownerWire;
  const offsets = rename ? ownerOffsetsNow : first.ownerOffsets;
  const ownerBytes = ownerSize(key, wire, offsets);
  let count = 0;
  let size = 0;
  for (const set of node.ordered) {
    const rrsig = zone.rrsig(set);
    if (rrsig === undefined) continue;
    signatures[count++] = rrsig;
    size += ownerBytes + rrsig.length;
  }
  if (pos + size > limit) {
    truncated = true;
    return;
  }
  for (let i = 0; i < count; i++) {
    writeOwner(wire);
    out.set(signatures[i]!, pos);
    pos += signatures[i]!.length;
  }
  counts[ANSWER]! += count;
}

let ownerKeyNow = '';
let ownerWireNow: Uint8Array = EMPTY_WIRE;
let ownerOffsetsNow: readonly number[] = EMPTY_OFFSETS;
/** Whether answer records take `ownerKeyNow` instead of their own owner (wildcards). */
let rename = false;

function addAnswer(set: RRsetWire): boolean {
  return rename
    ? addRequired(set, ANSWER, ownerKeyNow, ownerWireNow, ownerOffsetsNow)
    : addRequired(set, ANSWER);
}

function keyWire(key: string): Uint8Array {
  return Buffer.from(key, 'latin1');
}

function keyOffsets(key: string): number[] {
  const offsets: number[] = [];
  for (let at = 0; ; at += key.charCodeAt(at) + 1) {
    offsets.push(at);
    if (key.charCodeAt(at) === 0) return offsets;
  }
}

function finish(edns: boolean, extendedRcode: number): Uint8Array {
  if (edns) {
    out[pos] = 0;
    put16(pos + 1, TYPE_OPT);
    put16(pos + 3, advertisedPayload);
    out[pos + 5] = extendedRcode;
    out[pos + 6] = 0;
    out[pos + 7] = query.dnssecOk ? 0x80 : 0;
    out[pos + 8] = 0;
    put16(pos + 9, 0);
    pos += OPT_BYTES;
    counts[ADDITIONAL]! += 1;
  }
  put16(6, counts[ANSWER]!);
  put16(8, counts[AUTHORITY]!);
  put16(10, counts[ADDITIONAL]!);
  if (truncated) out[2] = out[2]! | 0x02;
  const info = infoOut;
  if (info !== undefined) {
    info.rcode = extendedRcode === 0 ? rcodeOut : (extendedRcode << 4) | rcodeOut;
    info.qtype = query.questionOk ? query.qtype : 0;
    info.truncated = truncated;
  }
  const response = Buffer.allocUnsafe(pos);
  // A loop beats Buffer#copy's call overhead for the usual response of a few hundred bytes.
  if (pos <= 1024) for (let i = 0; i < pos; i++) response[i] = out[i]!;
  else out.copy(response, 0, 0, pos);
  return response;
}

/**
 * The response to one query, or null when it is dropped: shorter than a header (it may not be
 * DNS at all, and answering would amplify) or a response (QR set). Never throws on any input.
 */
export function answer(
  msg: Uint8Array,
  zones: ZoneSource,
  options: AnswerOptions,
): Uint8Array | null {
  if (msg.length < HEADER || (msg[2]! & 0x80) !== 0) return null;
  const q = query;
  q.id = u16(msg, 0);
  q.flags = u16(msg, 2);
  infoOut = options.info;
  const ceiling = Math.max(
    CLASSIC_UDP_PAYLOAD,
    Math.min(MAX_RESPONSE, options.maxUdpPayload ?? DEFAULT_MAX_UDP_PAYLOAD),
  );
  advertisedPayload = ceiling;
  parseQuery(msg);
  const opcode = (q.flags >> 11) & 0xf;
  const ednsOk = q.hasEdns && q.error === '';
  limit = MAX_RESPONSE;
  if (opcode !== OPCODE_QUERY) {
    beginResponse(Rcode.NOTIMP, q.questionOk);
    return finish(ednsOk, 0);
  }
  if (q.error !== '' || q.qtype === TYPE_OPT) {
    beginResponse(Rcode.FORMERR, q.questionOk);
    return finish(false, 0);
  }
  if (q.signed) {
    // A TSIG (RFC 8945) or SIG(0) (RFC 2931) signed query: this server verifies no transaction
    // signatures, so it answers NOTIMP rather than answer as if unsigned (docs/dns.md, "Answers").
    beginResponse(Rcode.NOTIMP, true);
    return finish(q.hasEdns, 0);
  }
  if (q.hasEdns && q.ednsVersion > 0) {
    // RFC 6891 §6.1.3: BADVERS (16) is 0 in the header and 1 in the OPT's upper rcode bits.
    beginResponse(0, true);
    return finish(true, Rcode.BADVERS >> 4);
  }
  if (options.transport === 'udp') {
    limit = q.hasEdns
      ? Math.max(CLASSIC_UDP_PAYLOAD, Math.min(q.ednsPayload, ceiling))
      : CLASSIC_UDP_PAYLOAD;
  }
  if (q.hasEdns) limit -= OPT_BYTES;
  beginResponse(Rcode.NOERROR, true);
  if (q.qclass !== CLASS_IN) {
    setRcode(Rcode.REFUSED);
    return finish(q.hasEdns, 0);
  }
  if (q.qtype === TYPE_AXFR || q.qtype === TYPE_IXFR) {
    setRcode(Rcode.REFUSED);
    return finish(q.hasEdns, 0);
  }
  if (q.qtype >= 128 && q.qtype < TYPE_ANY) {
    setRcode(Rcode.NOTIMP);
    return finish(q.hasEdns, 0);
  }
  prepareQname();
  const zone =
    q.qtype === RR_TYPES.DS
      ? (zones.findZone(qkey, true) ?? zones.findZone(qkey))
      : zones.findZone(qkey);
  if (zone === undefined) {
    setRcode(Rcode.REFUSED);
    return finish(q.hasEdns, 0);
  }
  out[2] = out[2]! | 0x04;
  resolve(zones, zone, q.qtype, options.transport);
  return finish(q.hasEdns, 0);
}
