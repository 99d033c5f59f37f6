import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './address.js';
import { WireWriter } from './buffer.js';
import type { WireReader } from './buffer.js';
import { knownTypeName, typeCode } from './constants.js';
import type { KnownTypeName } from './constants.js';
import { DnsError, DnsErrorCode } from './errors.js';
import { lowercaseInPlace, nameToWire, wireToKey } from './names.js';
import { decodeSvcParams, encodeSvcParams } from './svcb.js';
import type { SvcParams } from './svcb.js';

/**
 * The typed resource-record model: what a zone holds, what the wire codec decodes, and what the
 * input schema (record-input.ts) produces. Names are presentation text; byte fields are bytes.
 */

export interface AData {
  readonly address: string;
}
export interface AaaaData {
  readonly address: string;
}
export interface NsData {
  readonly host: string;
}
export interface CnameData {
  readonly target: string;
}
export interface SoaData {
  readonly mname: string;
  /** The mailbox as a name (`hostmaster.example.com.`). */
  readonly rname: string;
  readonly serial: number;
  readonly refresh: number;
  readonly retry: number;
  readonly expire: number;
  /** The negative-caching TTL (RFC 2308 §4). */
  readonly minimum: number;
}
export interface MxData {
  readonly preference: number;
  readonly exchange: string;
}
export interface TxtData {
  /** One or more character-strings of 0–255 bytes each. */
  readonly strings: readonly Uint8Array[];
}
export interface SrvData {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  readonly target: string;
}
export interface CaaData {
  readonly flags: number;
  readonly tag: string;
  readonly value: Uint8Array;
}
export interface TlsaData {
  readonly usage: number;
  readonly selector: number;
  readonly matchingType: number;
  readonly data: Uint8Array;
}
export interface SvcbData {
  /** 0 is AliasMode, 1–65535 ServiceMode (RFC 9460 §2.4). */
  readonly priority: number;
  readonly target: string;
  readonly params: SvcParams;
}
export interface DnskeyData {
  readonly flags: number;
  readonly protocol: number;
  readonly algorithm: number;
  readonly publicKey: Uint8Array;
}
export interface RrsigData {
  readonly typeCovered: number;
  readonly algorithm: number;
  readonly labels: number;
  readonly originalTtl: number;
  /** Seconds since 1970 modulo 2^32 (RFC 4034 §3.1.5). */
  readonly expiration: number;
  readonly inception: number;
  readonly keyTag: number;
  readonly signerName: string;
  readonly signature: Uint8Array;
}
export interface NsecData {
  readonly next: string;
  /** Type codes present at the owner, ascending, no repeats. */
  readonly types: readonly number[];
}
export interface DsData {
  readonly keyTag: number;
  readonly algorithm: number;
  readonly digestType: number;
  readonly digest: Uint8Array;
}
/** RDATA of a type without a model (RFC 3597), kept as received. */
export interface OpaqueData {
  readonly rdata: Uint8Array;
}

export interface RecordDataByType {
  A: AData;
  NS: NsData;
  CNAME: CnameData;
  SOA: SoaData;
  MX: MxData;
  TXT: TxtData;
  AAAA: AaaaData;
  SRV: SrvData;
  DS: DsData;
  RRSIG: RrsigData;
  NSEC: NsecData;
  DNSKEY: DnskeyData;
  TLSA: TlsaData;
  SVCB: SvcbData;
  HTTPS: SvcbData;
  CAA: CaaData;
}

interface RecordBase {
  /** Owner name, presentation text. */
  readonly name: string;
  /** 1 (IN) for zone data; any class may appear in decoded messages. */
  readonly class: number;
  /** Seconds, 0..2^31-1 (RFC 2181 §8). */
  readonly ttl: number;
}

export type KnownRecord<T extends KnownTypeName = KnownTypeName> = {
  [K in T]: RecordBase & { readonly type: K; readonly data: RecordDataByType[K] };
}[T];

/** A record of a type without a model: `TYPE65280` and its RDATA bytes. */
export interface OpaqueRecord extends RecordBase {
  readonly type: `TYPE${number}`;
  readonly data: OpaqueData;
}

export type ResourceRecord = KnownRecord | OpaqueRecord;

/** Largest TTL a record may carry (RFC 2181 §8). */
export const MAX_TTL = 0x7fffffff;

function recordInvalid(message: string, detail: Record<string, unknown> = {}): DnsError {
  return new DnsError(DnsErrorCode.RECORD_INVALID, message, detail);
}

function checkUint(value: number, bits: 8 | 16 | 32, field: string): number {
  const max = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw recordInvalid(`${field}: ${value} is not an integer in 0..${max}`, { field });
  }
  return value;
}

/** The type code of a record's `type` field. */
export function recordTypeCode(rr: ResourceRecord): number {
  const code = typeCode(rr.type);
  if (code === undefined)
    throw recordInvalid(`type ${JSON.stringify(rr.type)} is not a type mnemonic`);
  if (rr.type.startsWith('TYPE') && knownTypeName(code) !== undefined) {
    throw recordInvalid(`type ${rr.type} has a model: write it as ${knownTypeName(code)}`, {
      type: rr.type,
    });
  }
  return code;
}

/** Types whose RDATA names are compressed when encoding (RFC 3597 §4: the RFC 1035 types). */
const COMPRESSED_RDATA = new Set<string>(['NS', 'CNAME', 'SOA', 'MX']);
/** Types whose RDATA names are lowercased in canonical form (RFC 4034 §6.2, RFC 6840 §5.1). */
const LOWERCASED_RDATA = new Set<string>(['NS', 'CNAME', 'SOA', 'MX', 'SRV', 'RRSIG']);

export interface RdataOptions {
  /** Compress names in RDATA of NS, CNAME, SOA, MX against the writer's earlier names. */
  readonly compress: boolean;
  /** Lowercase names in RDATA of the types listed in RFC 4034 §6.2 (canonical form). */
  readonly canonical: boolean;
}

function writeName(w: WireWriter, text: string, compress: boolean, lowercase: boolean): void {
  const wire = nameToWire(text);
  if (lowercase) lowercaseInPlace(wire);
  w.name(wire, compress ? wireToKey(wire) : '', compress);
}

function writeCharacterString(w: WireWriter, bytes: Uint8Array, field: string): void {
  if (bytes.length > 255) {
    throw recordInvalid(`${field}: a character-string is at most 255 bytes, got ${bytes.length}`, {
      field,
    });
  }
  w.u8(bytes.length);
  w.bytes(bytes);
}

function writeTypeBitmap(w: WireWriter, types: readonly number[]): void {
  let window = -1;
  let bitmap = new Uint8Array(32);
  let used = 0;
  const flush = (): void => {
    if (window < 0) return;
    w.u8(window);
    w.u8(used);
    w.bytes(bitmap.subarray(0, used));
  };
  let previous = -1;
  for (const type of types) {
    checkUint(type, 16, 'NSEC.types[]');
    if (type <= previous) throw recordInvalid('NSEC.types: codes must ascend without repeats');
    previous = type;
    if (type >> 8 !== window) {
      flush();
      window = type >> 8;
      bitmap = new Uint8Array(32);
      used = 0;
    }
    const low = type & 0xff;
    bitmap[low >> 3]! |= 0x80 >> (low & 7);
    used = Math.max(used, (low >> 3) + 1);
  }
  flush();
}

/** Writes the RDATA of `rr` (without RDLENGTH). */
export function encodeRdata(rr: ResourceRecord, w: WireWriter, options: RdataOptions): void {
  const compress = options.compress && COMPRESSED_RDATA.has(rr.type);
  const lower = options.canonical && LOWERCASED_RDATA.has(rr.type);
  switch (rr.type) {
    case 'A': {
      const bytes = parseIPv4(rr.data.address);
      if (bytes === undefined)
        throw recordInvalid(`A: ${JSON.stringify(rr.data.address)} is not an IPv4 address`);
      w.bytes(bytes);
      return;
    }
    case 'AAAA': {
      const bytes = parseIPv6(rr.data.address);
      if (bytes === undefined)
        throw recordInvalid(`AAAA: ${JSON.stringify(rr.data.address)} is not an IPv6 address`);
      w.bytes(bytes);
      return;
    }
    case 'NS':
      writeName(w, rr.data.host, compress, lower);
      return;
    case 'CNAME':
      writeName(w, rr.data.target, compress, lower);
      return;
    case 'SOA': {
      const d = rr.data;
      writeName(w, d.mname, compress, lower);
      writeName(w, d.rname, compress, lower);
      w.u32(checkUint(d.serial, 32, 'SOA.serial'));
      w.u32(checkUint(d.refresh, 32, 'SOA.refresh'));
      w.u32(checkUint(d.retry, 32, 'SOA.retry'));
      w.u32(checkUint(d.expire, 32, 'SOA.expire'));
      w.u32(checkUint(d.minimum, 32, 'SOA.minimum'));
      return;
    }
    case 'MX':
      w.u16(checkUint(rr.data.preference, 16, 'MX.preference'));
      writeName(w, rr.data.exchange, compress, lower);
      return;
    case 'TXT':
      if (rr.data.strings.length === 0) throw recordInvalid('TXT: at least one string');
      rr.data.strings.forEach((s, i) => writeCharacterString(w, s, `TXT.strings[${i}]`));
      return;
    case 'SRV':
      w.u16(checkUint(rr.data.priority, 16, 'SRV.priority'));
      w.u16(checkUint(rr.data.weight, 16, 'SRV.weight'));
      w.u16(checkUint(rr.data.port, 16, 'SRV.port'));
      writeName(w, rr.data.target, false, lower);
      return;
    case 'CAA': {
      w.u8(checkUint(rr.data.flags, 8, 'CAA.flags'));
      if (!/^[A-Za-z0-9]{1,15}$/.test(rr.data.tag)) {
        throw recordInvalid(
          `CAA.tag: ${JSON.stringify(rr.data.tag)} is not 1-15 letters and digits`,
        );
      }
      w.u8(rr.data.tag.length);
      w.bytes(Buffer.from(rr.data.tag, 'latin1'));
      w.bytes(rr.data.value);
      return;
    }
    case 'TLSA':
      w.u8(checkUint(rr.data.usage, 8, 'TLSA.usage'));
      w.u8(checkUint(rr.data.selector, 8, 'TLSA.selector'));
      w.u8(checkUint(rr.data.matchingType, 8, 'TLSA.matchingType'));
      w.bytes(rr.data.data);
      return;
    case 'SVCB':
    case 'HTTPS':
      w.u16(checkUint(rr.data.priority, 16, `${rr.type}.priority`));
      writeName(w, rr.data.target, false, false);
      encodeSvcParams(rr.data.params, w);
      return;
    case 'DNSKEY':
      w.u16(checkUint(rr.data.flags, 16, 'DNSKEY.flags'));
      w.u8(checkUint(rr.data.protocol, 8, 'DNSKEY.protocol'));
      w.u8(checkUint(rr.data.algorithm, 8, 'DNSKEY.algorithm'));
      w.bytes(rr.data.publicKey);
      return;
    case 'RRSIG': {
      const d = rr.data;
      w.u16(checkUint(d.typeCovered, 16, 'RRSIG.typeCovered'));
      w.u8(checkUint(d.algorithm, 8, 'RRSIG.algorithm'));
      w.u8(checkUint(d.labels, 8, 'RRSIG.labels'));
      w.u32(checkUint(d.originalTtl, 32, 'RRSIG.originalTtl'));
      w.u32(checkUint(d.expiration, 32, 'RRSIG.expiration'));
      w.u32(checkUint(d.inception, 32, 'RRSIG.inception'));
      w.u16(checkUint(d.keyTag, 16, 'RRSIG.keyTag'));
      writeName(w, d.signerName, false, lower);
      w.bytes(d.signature);
      return;
    }
    case 'NSEC':
      writeName(w, rr.data.next, false, false);
      writeTypeBitmap(w, rr.data.types);
      return;
    case 'DS':
      w.u16(checkUint(rr.data.keyTag, 16, 'DS.keyTag'));
      w.u8(checkUint(rr.data.algorithm, 8, 'DS.algorithm'));
      w.u8(checkUint(rr.data.digestType, 8, 'DS.digestType'));
      w.bytes(rr.data.digest);
      return;
    default:
      recordTypeCode(rr);
      w.bytes(rr.data.rdata);
  }
}

/** The RDATA bytes of `rr`, uncompressed (names as written, or lowercased when `canonical`). */
export function rdataBytes(rr: ResourceRecord, canonical = false): Uint8Array {
  const w = new WireWriter(64);
  encodeRdata(rr, w, { compress: false, canonical });
  if (w.offset > 0xffff) throw recordInvalid('RDATA above 65535 bytes');
  return w.finish();
}

function rdataInvalid(r: WireReader, type: string, message: string): DnsError {
  return new DnsError(DnsErrorCode.WIRE_RDATA_INVALID, `${type} RDATA: ${message}`, {
    offset: r.offset,
    type,
  });
}

function rest(r: WireReader, what: string): Uint8Array {
  return r.bytes(r.remaining(), what);
}

function readTypeBitmap(r: WireReader): number[] {
  const types: number[] = [];
  let lastWindow = -1;
  while (r.remaining() > 0) {
    const window = r.u8('NSEC window');
    const length = r.u8('NSEC bitmap length');
    if (window <= lastWindow) throw rdataInvalid(r, 'NSEC', `window ${window} after ${lastWindow}`);
    if (length < 1 || length > 32) throw rdataInvalid(r, 'NSEC', `bitmap length ${length}`);
    lastWindow = window;
    const bitmap = r.bytes(length, 'NSEC bitmap');
    if (bitmap[length - 1] === 0) throw rdataInvalid(r, 'NSEC', 'bitmap with a trailing zero byte');
    for (let i = 0; i < length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        if (bitmap[i]! & (0x80 >> bit)) types.push((window << 8) | (i * 8 + bit));
      }
    }
  }
  return types;
}

/**
 * Reads the RDATA of a record of type `code` from `r`, whose `end` is the end of the RDATA; every
 * byte must be used. Names may be compressed (pointers into the whole message).
 */
export function decodeRdata(code: number, r: WireReader): KnownRecord['data'] | OpaqueData {
  const type = knownTypeName(code);
  let data: KnownRecord['data'] | OpaqueData;
  switch (type) {
    case 'A':
      if (r.remaining() !== 4) throw rdataInvalid(r, 'A', `${r.remaining()} bytes, expected 4`);
      data = { address: formatIPv4(r.bytes(4, 'A address')) };
      break;
    case 'AAAA':
      if (r.remaining() !== 16)
        throw rdataInvalid(r, 'AAAA', `${r.remaining()} bytes, expected 16`);
      data = { address: formatIPv6(r.bytes(16, 'AAAA address')) };
      break;
    case 'NS':
      data = { host: r.name() };
      break;
    case 'CNAME':
      data = { target: r.name() };
      break;
    case 'SOA':
      data = {
        mname: r.name(),
        rname: r.name(),
        serial: r.u32('SOA serial'),
        refresh: r.u32('SOA refresh'),
        retry: r.u32('SOA retry'),
        expire: r.u32('SOA expire'),
        minimum: r.u32('SOA minimum'),
      };
      break;
    case 'MX':
      data = { preference: r.u16('MX preference'), exchange: r.name() };
      break;
    case 'TXT': {
      const strings: Uint8Array[] = [];
      while (r.remaining() > 0) strings.push(r.bytes(r.u8('TXT string length'), 'TXT string'));
      if (strings.length === 0) throw rdataInvalid(r, 'TXT', 'no strings');
      data = { strings };
      break;
    }
    case 'SRV':
      data = {
        priority: r.u16('SRV priority'),
        weight: r.u16('SRV weight'),
        port: r.u16('SRV port'),
        target: r.name(),
      };
      break;
    case 'CAA': {
      const flags = r.u8('CAA flags');
      const tagLength = r.u8('CAA tag length');
      const tag = r.bytes(tagLength, 'CAA tag');
      const text = Buffer.from(tag).toString('latin1');
      if (!/^[A-Za-z0-9]{1,15}$/.test(text))
        throw rdataInvalid(r, 'CAA', 'tag is not 1-15 letters and digits');
      data = { flags, tag: text, value: rest(r, 'CAA value') };
      break;
    }
    case 'TLSA':
      data = {
        usage: r.u8('TLSA usage'),
        selector: r.u8('TLSA selector'),
        matchingType: r.u8('TLSA matching type'),
        data: rest(r, 'TLSA data'),
      };
      break;
    case 'SVCB':
    case 'HTTPS':
      data = { priority: r.u16(`${type} priority`), target: r.name(), params: decodeSvcParams(r) };
      break;
    case 'DNSKEY':
      data = {
        flags: r.u16('DNSKEY flags'),
        protocol: r.u8('DNSKEY protocol'),
        algorithm: r.u8('DNSKEY algorithm'),
        publicKey: rest(r, 'DNSKEY public key'),
      };
      break;
    case 'RRSIG':
      data = {
        typeCovered: r.u16('RRSIG type covered'),
        algorithm: r.u8('RRSIG algorithm'),
        labels: r.u8('RRSIG labels'),
        originalTtl: r.u32('RRSIG original TTL'),
        expiration: r.u32('RRSIG expiration'),
        inception: r.u32('RRSIG inception'),
        keyTag: r.u16('RRSIG key tag'),
        signerName: r.name(),
        signature: rest(r, 'RRSIG signature'),
      };
      break;
    case 'NSEC':
      data = { next: r.name(), types: readTypeBitmap(r) };
      break;
    case 'DS':
      data = {
        keyTag: r.u16('DS key tag'),
        algorithm: r.u8('DS algorithm'),
        digestType: r.u8('DS digest type'),
        digest: rest(r, 'DS digest'),
      };
      break;
    case undefined:
      data = { rdata: rest(r, 'RDATA') };
      break;
  }
  if (r.remaining() !== 0) {
    throw rdataInvalid(r, type ?? `TYPE${code}`, `${r.remaining()} bytes left over`);
  }
  return data;
}

/** Builds the record for a decoded type code and its data. */
export function makeRecord(
  name: string,
  code: number,
  cls: number,
  ttl: number,
  data: KnownRecord['data'] | OpaqueData,
): ResourceRecord {
  const type = knownTypeName(code) ?? `TYPE${code}`;
  return { name, type, class: cls, ttl, data } as ResourceRecord;
}

/**
 * RFC 4034 §6.2 canonical form of one record: owner lowercased and uncompressed, RDATA names
 * lowercased for the listed types, and `ttl` (the RRSIG's original TTL) in place of the record's.
 */
export function encodeRecordCanonical(rr: ResourceRecord, ttl = rr.ttl): Uint8Array {
  const w = new WireWriter(64);
  const owner = nameToWire(rr.name);
  lowercaseInPlace(owner);
  w.bytes(owner);
  w.u16(recordTypeCode(rr));
  w.u16(checkUint(rr.class, 16, 'class'));
  w.u32(checkUint(ttl, 32, 'ttl'));
  const rdata = rdataBytes(rr, true);
  w.u16(rdata.length);
  w.bytes(rdata);
  return w.finish();
}

/** Compares two byte strings as unsigned octet sequences, a prefix first (RFC 4034 §6.3). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** An RRset's records in canonical RDATA order (RFC 4034 §6.3), duplicates removed. */
export function canonicalRRset(records: readonly ResourceRecord[]): ResourceRecord[] {
  const keyed = records.map((rr) => ({ rr, rdata: rdataBytes(rr, true) }));
  keyed.sort((x, y) => compareBytes(x.rdata, y.rdata));
  return keyed
    .filter((item, i) => i === 0 || compareBytes(keyed[i - 1]!.rdata, item.rdata) !== 0)
    .map((item) => item.rr);
}

/** Whether `code` is one of the types in `RR_TYPES`. */
export function isKnownType(code: number): boolean {
  return knownTypeName(code) !== undefined;
}
