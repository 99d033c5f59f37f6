import { SchemaError } from '../../codec/schema.js';
import { bytesEqual } from '../../crypto/bytes.js';
import {
  DnsError,
  MAX_TTL,
  RR_TYPES,
  WireReader,
  compareBytes,
  decodeRdata,
  knownTypeName,
  parseRecord,
  rdataBytes,
  recordToInput,
  typeName,
} from '../dns/index.js';
import type { ResourceRecord } from '../dns/index.js';
import { DnsZonesError, DnsZonesErrorCode } from './errors.js';
import {
  MAX_NAMESERVERS,
  MAX_RECORDS_PER_NAME,
  MAX_RRSET_BYTES,
  MAX_ZONE_ADMINS,
  ZONE_POLICIES,
} from './model.js';
import type { NameServers, SoaParams, StoredRRset, ZoneParams, ZonePolicy } from './model.js';
import { checkName, isWildcard } from './names.js';

/**
 * The stateless rules: zone parameters (zone-create, zone-update, genesis) and RRsets (one
 * records-set). The rules that involve other names — CNAME exclusivity, delegations — are in
 * registry.ts, which sees the state.
 */

const C = DnsZonesErrorCode;

function fail(code: DnsZonesErrorCode, field: string, message: string): never {
  throw new DnsZonesError(code, `${field}: ${message}`, { field });
}

function uint(value: unknown, field: string, max: number, code: DnsZonesErrorCode): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    return fail(code, field, `expected an integer in 0..${max}, got ${String(value)}`);
  }
  return value;
}

export function checkPolicy(value: unknown, field = 'policy'): ZonePolicy {
  if (!(ZONE_POLICIES as readonly unknown[]).includes(value)) {
    return fail(C.INVALID_ZONE, field, `expected one of ${ZONE_POLICIES.join(', ')}`);
  }
  return value as ZonePolicy;
}

export function checkSoa(value: unknown, field = 'soa'): SoaParams {
  if (typeof value !== 'object' || value === null)
    return fail(C.INVALID_ZONE, field, 'expected a map');
  const soa = value as Record<string, unknown>;
  const u32 = (name: string): number =>
    uint(soa[name], `${field}.${name}`, 0xffffffff, C.INVALID_ZONE);
  return {
    ttl: uint(soa['ttl'], `${field}.ttl`, MAX_TTL, C.INVALID_ZONE),
    mname: checkName(soa['mname'], `${field}.mname`, C.INVALID_ZONE).text,
    rname: checkName(soa['rname'], `${field}.rname`, C.INVALID_ZONE).text,
    refresh: u32('refresh'),
    retry: u32('retry'),
    expire: u32('expire'),
    minimum: u32('minimum'),
  };
}

/** Name servers with their hosts sorted (canonical text order), refusing repeats. */
export function checkNameServers(value: unknown, field = 'nameservers'): NameServers {
  if (typeof value !== 'object' || value === null)
    return fail(C.INVALID_ZONE, field, 'expected a map');
  const ns = value as Record<string, unknown>;
  const hosts = ns['hosts'];
  if (!Array.isArray(hosts) || hosts.length < 1 || hosts.length > MAX_NAMESERVERS) {
    return fail(C.INVALID_ZONE, `${field}.hosts`, `expected 1 to ${MAX_NAMESERVERS} host names`);
  }
  const checked = hosts.map((host, i) => checkName(host, `${field}.hosts[${i}]`, C.INVALID_ZONE));
  checked.sort((a, b) => compareBytes(a.wire, b.wire));
  for (let i = 1; i < checked.length; i++) {
    if (checked[i - 1]!.key === checked[i]!.key) {
      fail(C.INVALID_ZONE, `${field}.hosts`, `${checked[i]!.text} is listed twice`);
    }
  }
  return {
    ttl: uint(ns['ttl'], `${field}.ttl`, MAX_TTL, C.INVALID_ZONE),
    hosts: checked.map((host) => host.text),
  };
}

/** Admin keys sorted bytewise, refusing repeats. */
export function checkAdmins(value: unknown, field = 'admins'): Uint8Array[] {
  if (!Array.isArray(value) || value.length < 1 || value.length > MAX_ZONE_ADMINS) {
    return fail(C.INVALID_ZONE, field, `expected 1 to ${MAX_ZONE_ADMINS} admin keys`);
  }
  const keys = value.map((key: unknown, i) => {
    if (!(key instanceof Uint8Array) || key.length !== 32) {
      return fail(C.INVALID_ZONE, `${field}[${i}]`, 'expected a 32-byte Ed25519 public key');
    }
    return new Uint8Array(key);
  });
  keys.sort(compareBytes);
  for (let i = 1; i < keys.length; i++) {
    if (bytesEqual(keys[i - 1]!, keys[i]!)) fail(C.INVALID_ZONE, field, 'a key is listed twice');
  }
  return keys;
}

/** A zone's apex: a canonical, non-root name that is not a wildcard. */
export function checkApex(value: unknown, field = 'apex'): string {
  const apex = checkName(value, field);
  if (isWildcard(apex)) fail(C.INVALID_NAME, field, 'a zone apex cannot be a wildcard');
  return apex.text;
}

export function checkZoneParams(input: unknown): ZoneParams {
  if (typeof input !== 'object' || input === null) {
    throw new DnsZonesError(C.INVALID_ZONE, 'expected zone parameters');
  }
  const params = input as Record<string, unknown>;
  return {
    apex: checkApex(params['apex']),
    admins: checkAdmins(params['admins']),
    policy: checkPolicy(params['policy']),
    soa: checkSoa(params['soa']),
    nameservers: checkNameServers(params['nameservers']),
  };
}

/**
 * Types the module never stores from a transaction: SOA (the zone's), the DNSSEC signer's, and
 * DNAME (39): a DNAME redirects every name below its owner (RFC 6672) and no data may exist
 * there, so it would let a name's owner take over the names of other keys below it — what the
 * NS rule (`DESCENDANT_OWNED`) refuses — and make the zone invalid where they have records.
 */
const MANAGED_TYPES = new Set<number>([
  39, // DNAME
  RR_TYPES.SOA,
  RR_TYPES.RRSIG,
  RR_TYPES.NSEC,
  RR_TYPES.DNSKEY,
  50, // NSEC3
  51, // NSEC3PARAM
]);

/**
 * A type a records-set or records-delete may name: a data type (not 0, OPT or a meta type
 * 128-255), not managed, and not NS at the apex.
 */
export function checkRecordType(type: number, atApex: boolean): void {
  if (type === 0 || type === 41 || (type >= 128 && type <= 255) || type > 0xffff) {
    fail(C.INVALID_RECORD, 'type', `${typeName(type)} is not a data type`);
  }
  if (MANAGED_TYPES.has(type) || (atApex && type === RR_TYPES.NS)) {
    fail(
      C.MANAGED_TYPE,
      'type',
      type === RR_TYPES.NS || type === RR_TYPES.SOA
        ? `${typeName(type)} at the apex comes from the zone's parameters (zone-update)`
        : `${typeName(type)} records are made by the zone's signer`,
    );
  }
}

/** The record a stored RDATA stands for (stored RDATA is canonical; its form is re-checked). */
export function recordOf(
  owner: string,
  type: number,
  ttl: number,
  rdata: Uint8Array,
): ResourceRecord {
  const data = decodeRdata(type, new WireReader(rdata));
  return {
    name: owner,
    type: knownTypeName(type) ?? typeName(type),
    class: 1,
    ttl,
    data,
  } as ResourceRecord;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Checks one RDATA of a records-set: it decodes as its type (RFC 1035 wire form, every byte
 * used), passes `parseRecord` (the JSON input rules: canonical addresses, SvcParams rules of
 * RFC 9460, ...) and is in canonical form — uncompressed lowercase names, exactly the bytes
 * `rdataBytes` writes for the parsed record — so each record has one stored encoding.
 */
export function checkRdata(
  owner: string,
  type: number,
  ttl: number,
  rdata: Uint8Array,
  field: string,
): ResourceRecord {
  let parsed: ResourceRecord;
  try {
    parsed = parseRecord(recordToInput(recordOf(owner, type, ttl, rdata)), field);
  } catch (error) {
    if (error instanceof DnsError || error instanceof SchemaError || error instanceof TypeError) {
      return fail(C.INVALID_RECORD, field, describe(error));
    }
    throw error;
  }
  let again: Uint8Array;
  try {
    again = rdataBytes(parsed);
  } catch (error) {
    if (!(error instanceof DnsError)) throw error;
    return fail(C.INVALID_RECORD, field, describe(error));
  }
  if (!bytesEqual(again, rdata)) {
    fail(
      C.INVALID_RECORD,
      field,
      'RDATA is not in canonical form (names lowercase and uncompressed, as rdataBytes writes them)',
    );
  }
  return parsed;
}

/**
 * The RRset a records-set stores: every RDATA checked, sorted bytewise (RFC 4034 §6.3 order),
 * no record twice, within `MAX_RRSET_BYTES`, and one CNAME at most.
 */
export function checkRRset(
  owner: string,
  type: number,
  ttl: number,
  rdata: readonly Uint8Array[],
): StoredRRset {
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > MAX_TTL) {
    fail(C.INVALID_RECORD, 'ttl', `expected an integer in 0..${MAX_TTL}, got ${ttl}`);
  }
  if (rdata.length === 0)
    fail(
      C.INVALID_RECORD,
      'rdata',
      'an RRset has at least one record (records-delete removes one)',
    );
  if (rdata.length > MAX_RECORDS_PER_NAME) {
    throw new DnsZonesError(
      C.RECORDS_LIMIT,
      `rdata: ${rdata.length} records, above the limit of ${MAX_RECORDS_PER_NAME} per name`,
      { field: 'rdata', limit: MAX_RECORDS_PER_NAME },
    );
  }
  const size = rdata.reduce((sum, item) => sum + item.length, 0);
  if (size > MAX_RRSET_BYTES) {
    throw new DnsZonesError(
      C.RRSET_TOO_LARGE,
      `rdata: ${size} bytes of RDATA, above the limit of ${MAX_RRSET_BYTES} per RRset`,
      { field: 'rdata', size, limit: MAX_RRSET_BYTES },
    );
  }
  rdata.forEach((item, i) => checkRdata(owner, type, ttl, item, `rdata[${i}]`));
  const sorted = rdata.map((item) => new Uint8Array(item)).sort(compareBytes);
  for (let i = 1; i < sorted.length; i++) {
    if (compareBytes(sorted[i - 1]!, sorted[i]!) === 0) {
      throw new DnsZonesError(
        C.DUPLICATE_RECORD,
        `${owner} ${typeName(type)}: the same record twice`,
        {
          name: owner,
          type: typeName(type),
        },
      );
    }
  }
  if (type === RR_TYPES.CNAME && sorted.length > 1) {
    throw new DnsZonesError(
      C.CNAME_CONFLICT,
      `${owner}: ${sorted.length} CNAME records; a name has at most one`,
      {
        name: owner,
      },
    );
  }
  return { type, ttl, rdata: sorted };
}
