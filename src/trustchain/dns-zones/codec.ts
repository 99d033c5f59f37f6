import { CanonicalReader } from '../../codec/canonical-reader.js';
import { encodeCanonical } from '../../codec/cbor.js';
import { SchemaError } from '../../codec/schema.js';
import { compareBytes } from '../dns/index.js';
import { DnsZonesStateError, DnsZonesStateErrorCode } from './errors.js';
import { MAX_RECORDS_PER_NAME } from './model.js';
import type { NameEntry, StoredRRset, ZoneInfo, ZoneKind } from './model.js';
import { checkAdmins, checkApex, checkNameServers, checkPolicy, checkSoa } from './rules.js';

/**
 * Reading and writing canonical CBOR (RFC 8949 §4.2.1) maps with the shared `CanonicalReader`,
 * for bodies (body.ts) and stored values (below):
 *
 *   zone    { kind, soa, apex, names, admins, policy, serial, createdAt, nameservers }
 *   name    { owner: bytes(32) | null, rrsets: [[type, ttl, [rdata, …]], …], updatedAt, registeredAt }
 *   list    [bytes, …]   strictly ascending bytewise (zone list, index bucket, owner's names)
 *   count   uint ≥ 1
 *
 * Stored values are decoded as strictly as bodies; anything else is `DnsZonesStateError
 * CORRUPT_VALUE` (a damaged store or a tampered answer, never a sender's doing).
 */

export type FieldReader = (reader: CanonicalReader, path: string) => unknown;

/** Issue codes of the `SchemaError`s `readMap` throws for the map itself. */
export const UNKNOWN_KEY = 'unrecognized_keys';
export const MISSING_KEY = 'missing_key';

function schemaError(path: string, code: string, message: string): SchemaError {
  return new SchemaError(path, [{ path, code, message }]);
}

/**
 * Reads a map whose entries `readers` defines, every one required. Throws `SchemaError`
 * (`UNKNOWN_KEY`, `MISSING_KEY`, or the field reader's), or `CborError`.
 */
export function readMap(
  reader: CanonicalReader,
  path: string,
  readers: Readonly<Record<string, FieldReader>>,
  count?: number,
  previous?: string,
): Record<string, unknown> {
  const into: Record<string, unknown> = {};
  const known = Object.keys(readers);
  const entries = count ?? reader.readMapLength(path, known.length + 1);
  let last = previous;
  for (let i = 0; i < entries; i++) {
    const key = reader.readKey(path, last);
    // Own keys only: `constructor` or `__proto__` must be unknown fields, not Object's.
    const read = Object.hasOwn(readers, key) ? readers[key] : undefined;
    const where = path === '' ? key : `${path}.${key}`;
    if (read === undefined) {
      throw schemaError(
        where,
        UNKNOWN_KEY,
        `unknown field ${JSON.stringify(where)}; the fields are ${known.join(', ')}`,
      );
    }
    into[key] = read(reader, where);
    last = key;
  }
  for (const key of known) {
    if (into[key] === undefined) {
      const where = path === '' ? key : `${path}.${key}`;
      throw schemaError(where, MISSING_KEY, `missing field ${JSON.stringify(where)}`);
    }
  }
  return into;
}

/** Reads `[bytes, …]`: at most `max` items of `min..maxBytes` bytes. */
export function readByteList(
  reader: CanonicalReader,
  path: string,
  max: number,
  min: number,
  maxBytes: number,
): Uint8Array[] {
  const count = reader.readArrayLength(path, max);
  return Array.from({ length: count }, (_, i) => reader.readBytes(`${path}[${i}]`, min, maxBytes));
}

export function readTextList(
  reader: CanonicalReader,
  path: string,
  max: number,
  maxBytes: number,
): string[] {
  const count = reader.readArrayLength(path, max);
  return Array.from({ length: count }, (_, i) => reader.readText(`${path}[${i}]`, maxBytes));
}

const SOA_READERS: Readonly<Record<string, FieldReader>> = {
  ttl: (r, p) => r.readUint(p),
  mname: (r, p) => r.readText(p, 1024),
  rname: (r, p) => r.readText(p, 1024),
  retry: (r, p) => r.readUint(p),
  expire: (r, p) => r.readUint(p),
  minimum: (r, p) => r.readUint(p),
  refresh: (r, p) => r.readUint(p),
};

const NAMESERVER_READERS: Readonly<Record<string, FieldReader>> = {
  ttl: (r, p) => r.readUint(p),
  hosts: (r, p) => readTextList(r, p, 64, 1024),
};

/** Readers of the zone-parameter fields, shared by bodies and the stored zone. */
export const ZONE_PARAM_READERS: Readonly<Record<string, FieldReader>> = {
  soa: (r, p) => readMap(r, p, SOA_READERS),
  apex: (r, p) => r.readText(p, 1024),
  admins: (r, p) => readByteList(r, p, 64, 0, 64),
  policy: (r, p) => r.readText(p, 16),
  nameservers: (r, p) => readMap(r, p, NAMESERVER_READERS),
};

function corrupt(what: string, error: unknown): never {
  const reason = error instanceof Error ? error.message : String(error);
  throw new DnsZonesStateError(
    DnsZonesStateErrorCode.CORRUPT_VALUE,
    `not a stored ${what}: ${reason}`,
    {},
    { cause: error },
  );
}

function decodeWith<T>(what: string, value: Uint8Array, read: (reader: CanonicalReader) => T): T {
  try {
    const reader = new CanonicalReader(value);
    const result = read(reader);
    reader.end(what);
    return result;
  } catch (error) {
    return corrupt(what, error);
  }
}

export function encodeZone(zone: ZoneInfo): Uint8Array {
  return encodeCanonical({
    kind: zone.kind,
    soa: { ...zone.soa },
    apex: zone.apex,
    names: zone.names,
    admins: [...zone.admins],
    policy: zone.policy,
    serial: zone.serial,
    createdAt: zone.createdAt,
    nameservers: { ttl: zone.nameservers.ttl, hosts: [...zone.nameservers.hosts] },
  });
}

const ZONE_READERS: Readonly<Record<string, FieldReader>> = {
  ...ZONE_PARAM_READERS,
  kind: (r, p) => r.readText(p, 16),
  names: (r, p) => r.readUint(p),
  serial: (r, p) => r.readUint(p, 0, 0xffffffff),
  createdAt: (r, p) => r.readUint(p),
};

/** Decodes a stored zone (the value a `dns/zone` query proves). */
export function decodeZone(value: Uint8Array): ZoneInfo {
  return decodeWith('zone', value, (reader) => {
    const fields = readMap(reader, 'zone', ZONE_READERS);
    const kind = fields['kind'];
    if (kind !== 'cluster' && kind !== 'delegated')
      throw new RangeError(`unknown zone kind ${String(kind)}`);
    const nameservers = checkNameServers(fields['nameservers']);
    const hosts = fields['nameservers'] as { hosts: string[] };
    // Stored sorted: a value in another order is not the one the module wrote.
    if (hosts.hosts.some((host, i) => host !== nameservers.hosts[i]))
      throw new RangeError('name servers out of order');
    const admins = checkAdmins(fields['admins']);
    const given = fields['admins'] as Uint8Array[];
    if (given.some((key, i) => compareBytes(key, admins[i]!) !== 0))
      throw new RangeError('admins out of order');
    return {
      kind: kind as ZoneKind,
      apex: checkApex(fields['apex']),
      admins,
      policy: checkPolicy(fields['policy']),
      soa: checkSoa(fields['soa']),
      nameservers,
      serial: fields['serial'] as number,
      createdAt: fields['createdAt'] as number,
      names: fields['names'] as number,
    };
  });
}

export function encodeNameEntry(entry: NameEntry): Uint8Array {
  return encodeCanonical({
    owner: entry.owner,
    rrsets: entry.rrsets.map((set) => [set.type, set.ttl, [...set.rdata]]),
    updatedAt: entry.updatedAt,
    registeredAt: entry.registeredAt,
  });
}

function readRRsets(reader: CanonicalReader, path: string): StoredRRset[] {
  const count = reader.readArrayLength(path, MAX_RECORDS_PER_NAME);
  const sets: StoredRRset[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const at = `${path}[${i}]`;
    if (reader.readArrayLength(at, 3) !== 3)
      throw new RangeError(`${at}: expected [type, ttl, rdata]`);
    const type = reader.readUint(`${at}.type`, 1, 0xffff);
    const ttl = reader.readUint(`${at}.ttl`, 0, 0x7fffffff);
    const rdata = readByteList(reader, `${at}.rdata`, MAX_RECORDS_PER_NAME, 0, 0xffff);
    total += rdata.length;
    if (rdata.length === 0 || total > MAX_RECORDS_PER_NAME)
      throw new RangeError(`${at}: bad record count`);
    for (let j = 1; j < rdata.length; j++) {
      if (compareBytes(rdata[j - 1]!, rdata[j]!) >= 0)
        throw new RangeError(`${at}.rdata: not sorted`);
    }
    if (i > 0 && sets[i - 1]!.type >= type) throw new RangeError(`${path}: types not ascending`);
    sets.push({ type, ttl, rdata });
  }
  return sets;
}

const readOwner = (r: CanonicalReader, p: string): Uint8Array | null =>
  r.readNull() ? null : r.readBytes(p, 32, 32);

/** The name entry's fields after `owner` (which may be null, so it is read by hand). */
const NAME_READERS: Readonly<Record<string, FieldReader>> = {
  rrsets: readRRsets,
  updatedAt: (r, p) => r.readUint(p),
  registeredAt: (r, p) => r.readUint(p),
};

/** Decodes a stored name entry (the value a `dns/name` query proves). */
export function decodeNameEntry(value: Uint8Array): NameEntry {
  return decodeWith('name entry', value, (reader) => {
    const count = reader.readMapLength('name', 4);
    // `owner` may be null, which readMap would take for missing: read it by hand.
    if (count !== 4 || reader.readKey('name', undefined) !== 'owner')
      throw new RangeError('expected 4 fields, owner first');
    const owner = readOwner(reader, 'owner');
    const rest = readMap(reader, 'name', NAME_READERS, 3, 'owner');
    return {
      owner: owner === null ? null : new Uint8Array(owner),
      rrsets: rest['rrsets'] as StoredRRset[],
      updatedAt: rest['updatedAt'] as number,
      registeredAt: rest['registeredAt'] as number,
    };
  });
}

/** A sorted list of byte strings (zone list, index bucket, owner's names). */
export function encodeList(items: readonly Uint8Array[]): Uint8Array {
  return encodeCanonical([...items]);
}

export function decodeList(
  value: Uint8Array,
  max: number,
  minBytes: number,
  maxBytes: number,
  what: string,
): Uint8Array[] {
  return decodeWith(what, value, (reader) => {
    const items = readByteList(reader, what, max, minBytes, maxBytes);
    for (let i = 1; i < items.length; i++) {
      if (compareBytes(items[i - 1]!, items[i]!) >= 0)
        throw new RangeError(`${what}: not strictly ascending`);
    }
    if (items.length === 0) throw new RangeError(`${what}: an empty list is deleted, not stored`);
    return items.map((item) => new Uint8Array(item));
  });
}

export function encodeCount(count: number): Uint8Array {
  return encodeCanonical(count);
}

export function decodeCount(value: Uint8Array): number {
  return decodeWith('count', value, (reader) => reader.readUint('count', 1));
}

/** Inserts `item` into a sorted list; false if it is already there. */
export function insertSorted(list: Uint8Array[], item: Uint8Array): boolean {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const order = compareBytes(list[mid]!, item);
    if (order === 0) return false;
    if (order < 0) low = mid + 1;
    else high = mid;
  }
  list.splice(low, 0, item);
  return true;
}

/** Removes `item` from a sorted list; false if it is not there. */
export function removeSorted(list: Uint8Array[], item: Uint8Array): boolean {
  const at = list.findIndex((entry) => compareBytes(entry, item) === 0);
  if (at === -1) return false;
  list.splice(at, 1);
  return true;
}
