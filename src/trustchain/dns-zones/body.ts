import { CanonicalReader } from '../../codec/canonical-reader.js';
import { encodeCanonical } from '../../codec/cbor.js';
import { SchemaError } from '../../codec/schema.js';
import {
  DnsError,
  canonicalName,
  compareBytes,
  parseRecord,
  rdataBytes,
  recordTypeCode,
  typeCode,
} from '../dns/index.js';
import type { RecordInput, ResourceRecord } from '../dns/index.js';
import { MISSING_KEY, UNKNOWN_KEY, ZONE_PARAM_READERS, readByteList, readMap } from './codec.js';
import type { FieldReader } from './codec.js';
import { DnsZonesError, DnsZonesErrorCode } from './errors.js';
import { DNS_OPS, MAX_DNS_BODY_BYTES } from './model.js';
import type { DnsZonesTx, ZoneParams } from './model.js';
import { MAX_NAME_TEXT, checkName } from './names.js';
import { checkRRset, checkRecordType, checkZoneParams } from './rules.js';

/**
 * Transaction bodies of the `dns` module (docs/dns.md, "Zones in consensus"): canonical CBOR
 * maps whose first key (the only two-letter one) is `op`. Every field is required.
 *
 *   zone-create    { op, soa, apex, admins, policy, nameservers }
 *   zone-update    { op, soa, apex, admins, policy, nameservers }
 *   name-register  { op, name }
 *   name-transfer  { op, name, recipient }
 *   name-release   { op, name }
 *   records-set    { op, ttl, name, type, rdata: [bytes, …] }
 *   records-delete { op, name, type }
 *
 *   soa         { ttl, mname, rname, retry, expire, minimum, refresh }
 *   nameservers { ttl, hosts: [name, …] }
 *
 * Names are canonical text (lowercase, trailing dot); `type` is the type code; `rdata` holds the
 * records' RDATA in canonical wire form (uncompressed lowercase names). The builders below take
 * the JSON record form (`parseRecord`) and produce exactly what the decoder accepts.
 */

const C = DnsZonesErrorCode;

function malformed(message: string, detail: Record<string, unknown> = {}): never {
  throw new DnsZonesError(C.MALFORMED_BODY, message, detail);
}

/** Runs `read`, turning a schema refusal into `code` (an unknown key stays UNKNOWN_FIELD). */
function asField<T>(code: DnsZonesErrorCode, field: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof SchemaError) {
      const issue = error.issues[0];
      if (issue?.code === UNKNOWN_KEY) {
        throw new DnsZonesError(C.UNKNOWN_FIELD, error.message, { field: issue.path });
      }
      throw new DnsZonesError(code, error.message, { field });
    }
    throw error;
  }
}

const field =
  (code: DnsZonesErrorCode, read: FieldReader): FieldReader =>
  (reader, path) =>
    asField(code, path, () => read(reader, path));

const nameText = field(C.INVALID_NAME, (r, p) => r.readText(p, MAX_NAME_TEXT));

const ZONE_READERS: Readonly<Record<string, FieldReader>> = Object.fromEntries(
  Object.entries(ZONE_PARAM_READERS).map(([key, read]) => [
    key,
    field(key === 'apex' ? C.INVALID_NAME : C.INVALID_ZONE, read),
  ]),
);

const READERS: Readonly<Record<(typeof DNS_OPS)[number], Readonly<Record<string, FieldReader>>>> = {
  'zone-create': ZONE_READERS,
  'zone-update': ZONE_READERS,
  'name-register': { name: nameText },
  'name-transfer': {
    name: nameText,
    recipient: field(C.MALFORMED_BODY, (r, p) => r.readBytes(p, 32, 32)),
  },
  'name-release': { name: nameText },
  'records-set': {
    ttl: field(C.INVALID_RECORD, (r, p) => r.readUint(p)),
    name: nameText,
    type: field(C.INVALID_RECORD, (r, p) => r.readUint(p, 1, 0xffff)),
    rdata: field(C.INVALID_RECORD, (r, p) => readByteList(r, p, 1024, 0, 0xffff)),
  },
  'records-delete': {
    name: nameText,
    type: field(C.INVALID_RECORD, (r, p) => r.readUint(p, 1, 0xffff)),
  },
};

const encoder = new TextEncoder();

/**
 * Lists in a body are in their stored order (admins and RDATA bytewise, hosts by wire form), so
 * a body has exactly one encoding.
 */
function inOrder(
  given: readonly Uint8Array[],
  sorted: readonly Uint8Array[],
  code: DnsZonesErrorCode,
  name: string,
): void {
  if (given.some((item, i) => compareBytes(item, sorted[i]!) !== 0)) {
    throw new DnsZonesError(code, `${name}: not in canonical order (the builders sort it)`, {
      field: name,
    });
  }
}

function sized(body: Uint8Array): Uint8Array {
  if (body.length > MAX_DNS_BODY_BYTES) {
    throw new DnsZonesError(
      C.BODY_TOO_LARGE,
      `dns body is ${body.length} bytes, above the limit of ${MAX_DNS_BODY_BYTES}`,
      { size: body.length, limit: MAX_DNS_BODY_BYTES },
    );
  }
  return body;
}

/**
 * Parses a `dns` transaction body (every stateless rule, including each record's RDATA). Accepts
 * only the canonical encoding. Throws `DnsZonesError`: BODY_TOO_LARGE, MALFORMED_BODY,
 * UNKNOWN_FIELD, or the code of the rule a field breaks (INVALID_NAME, INVALID_ZONE,
 * INVALID_RECORD, MANAGED_TYPE, DUPLICATE_RECORD, CNAME_CONFLICT, RECORDS_LIMIT,
 * RRSET_TOO_LARGE).
 */
export function decodeDnsZonesBody(body: Uint8Array): DnsZonesTx {
  if (!(body instanceof Uint8Array)) malformed('a body is a byte string');
  sized(body);
  let fields: Record<string, unknown>;
  let op: (typeof DNS_OPS)[number];
  try {
    const reader = new CanonicalReader(body);
    const count = reader.readMapLength('body', 16);
    if (count === 0) malformed('dns body: empty map; a body has an "op" field');
    const first = reader.readKey('body', undefined);
    if (first !== 'op') malformed('dns body: missing field "op" (it sorts first)', { field: 'op' });
    const text = reader.readText('op', 32);
    if (!(DNS_OPS as readonly string[]).includes(text)) {
      malformed(`dns body: unknown op ${JSON.stringify(text)}; known: ${DNS_OPS.join(', ')}`, {
        field: 'op',
      });
    }
    op = text as (typeof DNS_OPS)[number];
    fields = readMap(reader, '', READERS[op], count - 1, 'op');
    reader.end('body');
  } catch (error) {
    if (error instanceof DnsZonesError) throw error;
    if (error instanceof SchemaError) {
      const issue = error.issues[0];
      if (issue?.code === UNKNOWN_KEY) {
        throw new DnsZonesError(C.UNKNOWN_FIELD, error.message, { field: issue.path });
      }
      if (issue?.code === MISSING_KEY)
        malformed(`dns ${op!} body: ${error.message}`, { field: issue.path });
    }
    return malformed(`dns body: ${error instanceof Error ? error.message : String(error)}`);
  }
  switch (op) {
    case 'zone-create':
    case 'zone-update': {
      const zone = checkZoneParams(fields);
      inOrder(fields['admins'] as Uint8Array[], zone.admins, C.INVALID_ZONE, 'admins');
      const hosts = (fields['nameservers'] as { hosts: string[] }).hosts.map((host) =>
        encoder.encode(host),
      );
      inOrder(
        hosts,
        zone.nameservers.hosts.map((host) => encoder.encode(host)),
        C.INVALID_ZONE,
        'nameservers.hosts',
      );
      return { op, ...zone };
    }
    case 'name-register':
    case 'name-release':
      return { op, name: checkName(fields['name'], 'name').text };
    case 'name-transfer':
      return {
        op,
        name: checkName(fields['name'], 'name').text,
        recipient: new Uint8Array(fields['recipient'] as Uint8Array),
      };
    case 'records-delete': {
      const name = checkName(fields['name'], 'name').text;
      const type = fields['type'] as number;
      checkRecordType(type, false);
      return { op, name, type };
    }
    case 'records-set': {
      const name = checkName(fields['name'], 'name').text;
      const type = fields['type'] as number;
      checkRecordType(type, false);
      const given = fields['rdata'] as Uint8Array[];
      const rrset = checkRRset(name, type, fields['ttl'] as number, given);
      inOrder(given, rrset.rdata, C.INVALID_RECORD, 'rdata');
      return { op, name, type, ttl: rrset.ttl, rdata: rrset.rdata };
    }
  }
}

/** Canonical text of a name given in any presentation form; `DnsZonesError INVALID_NAME` if bad. */
function canonical(name: string, what = 'name'): string {
  try {
    return checkName(canonicalName(name), what).text;
  } catch (error) {
    if (error instanceof DnsError)
      throw new DnsZonesError(C.INVALID_NAME, `${what}: ${error.message}`, { field: what });
    if (error instanceof DnsZonesError) throw error;
    throw new DnsZonesError(C.INVALID_NAME, `${what}: expected a domain name as text`, {
      field: what,
    });
  }
}

function zoneBody(op: 'zone-create' | 'zone-update', input: ZoneParams): Uint8Array {
  const canonicalInput = {
    ...input,
    apex: typeof input.apex === 'string' ? canonical(input.apex, 'apex') : input.apex,
    soa:
      typeof input.soa === 'object' && input.soa !== null
        ? {
            ...input.soa,
            mname:
              typeof input.soa.mname === 'string'
                ? canonical(input.soa.mname, 'soa.mname')
                : input.soa.mname,
            rname:
              typeof input.soa.rname === 'string'
                ? canonical(input.soa.rname, 'soa.rname')
                : input.soa.rname,
          }
        : input.soa,
    nameservers:
      typeof input.nameservers === 'object' &&
      input.nameservers !== null &&
      Array.isArray(input.nameservers.hosts)
        ? {
            ...input.nameservers,
            hosts: input.nameservers.hosts.map((host, i) =>
              typeof host === 'string' ? canonical(host, `nameservers.hosts[${i}]`) : host,
            ),
          }
        : input.nameservers,
  };
  const zone = checkZoneParams(canonicalInput);
  return sized(
    encodeCanonical({
      op,
      soa: { ...zone.soa },
      apex: zone.apex,
      admins: [...zone.admins],
      policy: zone.policy,
      nameservers: { ttl: zone.nameservers.ttl, hosts: [...zone.nameservers.hosts] },
    }),
  );
}

/** The body of a `zone-create` (names in any case; admins in any order). */
export function dnsZoneCreate(zone: ZoneParams): Uint8Array {
  return zoneBody('zone-create', zone);
}

/** The body of a `zone-update`: the zone's new parameters, replacing the old ones. */
export function dnsZoneUpdate(zone: ZoneParams): Uint8Array {
  return zoneBody('zone-update', zone);
}

export function dnsNameRegister(name: string): Uint8Array {
  return encodeCanonical({ op: 'name-register', name: canonical(name) });
}

export function dnsNameTransfer(name: string, recipient: Uint8Array): Uint8Array {
  if (!(recipient instanceof Uint8Array) || recipient.length !== 32) {
    malformed('recipient: expected a 32-byte Ed25519 public key', { field: 'recipient' });
  }
  return encodeCanonical({ op: 'name-transfer', name: canonical(name), recipient });
}

export function dnsNameRelease(name: string): Uint8Array {
  return encodeCanonical({ op: 'name-release', name: canonical(name) });
}

function recordInvalid(message: string, fieldName: string): never {
  throw new DnsZonesError(C.INVALID_RECORD, `${fieldName}: ${message}`, { field: fieldName });
}

/**
 * The body of a `records-set`: the RRset these records form replaces the one of their type at
 * their name. The records are in JSON form (`parseRecord`) and must share name, type and TTL.
 */
export function dnsRecordsSet(records: readonly (RecordInput | ResourceRecord)[]): Uint8Array {
  if (!Array.isArray(records) || records.length === 0)
    recordInvalid('expected at least one record', 'records');
  const parsed = records.map((input, i) => {
    try {
      return parseRecord(input, `records[${i}]`);
    } catch (error) {
      if (error instanceof SchemaError || error instanceof DnsError)
        recordInvalid(error.message, `records[${i}]`);
      throw error;
    }
  });
  const first = parsed[0]!;
  parsed.forEach((rr, i) => {
    if (rr.name !== first.name)
      recordInvalid(`owner ${rr.name} differs from ${first.name}`, `records[${i}].name`);
    if (rr.type !== first.type)
      recordInvalid(`type ${rr.type} differs from ${first.type}`, `records[${i}].type`);
    if (rr.ttl !== first.ttl)
      recordInvalid(
        `TTL ${rr.ttl} differs from ${first.ttl}; one TTL per RRset (RFC 2181 §5.2)`,
        `records[${i}].ttl`,
      );
  });
  const name = checkName(first.name, 'name').text;
  const type = recordTypeCode(first);
  checkRecordType(type, false);
  const rrset = checkRRset(
    name,
    type,
    first.ttl,
    parsed.map((rr) => rdataBytes(rr)),
  );
  return sized(
    encodeCanonical({ op: 'records-set', ttl: rrset.ttl, name, type, rdata: [...rrset.rdata] }),
  );
}

/** The body of a `records-delete` of the RRset of `type` (a mnemonic such as "AAAA", or a code). */
export function dnsRecordsDelete(name: string, type: string | number): Uint8Array {
  const code = typeof type === 'number' ? type : typeCode(type);
  if (code === undefined || !Number.isInteger(code) || code < 1 || code > 0xffff) {
    recordInvalid(`${String(type)} is not a record type`, 'type');
  }
  checkRecordType(code, false);
  return encodeCanonical({ op: 'records-delete', name: canonical(name), type: code });
}
