import type { QueryRequest, QueryResponse } from '../../consensus/app.js';
import { decodeStateProof, verifyStateProof } from '../../storage/index.js';
import { DnsError } from '../dns/index.js';
import { decodeList, decodeNameEntry, decodeZone } from './codec.js';
import {
  DnsZonesError,
  DnsZonesErrorCode,
  DnsZonesStateError,
  DnsZonesStateErrorCode,
} from './errors.js';
import {
  DNS_ZONES_MODULE_NAME,
  INDEX_BUCKETS,
  MAX_NAMES_PER_OWNER,
  MAX_NAMES_PER_ZONE,
  MAX_ZONES,
} from './model.js';
import type { DnsName, ZoneInfo } from './model.js';
import { INDEX_QUERY, NAME_QUERY, OWNER_QUERY, ZONES_QUERY, ZONE_QUERY } from './module.js';
import { anyName, nameFromWire } from './names.js';
import type { CheckedName } from './names.js';
import { recordOf } from './rules.js';
import {
  ZONES_KEY,
  bucketOf,
  dnsZonesStateKey,
  indexKey,
  nameEntryKey,
  ownerKey,
  zoneKey,
} from './state.js';

const encoder = new TextEncoder();

function request(path: string, data: Uint8Array, height?: number): QueryRequest {
  const full = `${DNS_ZONES_MODULE_NAME}/${path}`;
  return height === undefined ? { path: full, data } : { path: full, data, height };
}

function queryName(name: string): CheckedName {
  try {
    return anyName(name);
  } catch (error) {
    if (error instanceof DnsError)
      throw new DnsZonesError(DnsZonesErrorCode.INVALID_QUERY, error.message);
    throw error;
  }
}

/** The `dns/name` query: a name's owner and records (any case; optionally at an earlier height). */
export function dnsNameQuery(name: string, height?: number): QueryRequest {
  return request(NAME_QUERY, encoder.encode(queryName(name).text), height);
}

/** The `dns/zone` query: a zone's parameters, admins and serial. */
export function dnsZoneQuery(apex: string, height?: number): QueryRequest {
  return request(ZONE_QUERY, encoder.encode(queryName(apex).text), height);
}

/** The `dns/zones` query: every zone apex. */
export function dnsZonesQuery(height?: number): QueryRequest {
  return request(ZONES_QUERY, new Uint8Array(0), height);
}

/** The `dns/owner` query: the names a key owns. */
export function dnsOwnerQuery(owner: Uint8Array, height?: number): QueryRequest {
  if (!(owner instanceof Uint8Array) || owner.length !== 32) {
    throw new DnsZonesError(
      DnsZonesErrorCode.INVALID_QUERY,
      'dns/owner takes a 32-byte Ed25519 public key',
    );
  }
  return request(OWNER_QUERY, owner, height);
}

function checkBucket(bucket: number): number {
  if (!Number.isInteger(bucket) || bucket < 0 || bucket >= INDEX_BUCKETS) {
    throw new DnsZonesError(
      DnsZonesErrorCode.INVALID_QUERY,
      `dns/index: bucket ${bucket} is not in 0..${INDEX_BUCKETS - 1}`,
    );
  }
  return bucket;
}

/**
 * The `dns/index` query: bucket `bucket` of a zone's name index (the names whose SHA-256 of the
 * wire form starts with that byte). The 256 buckets together list every name of the zone.
 */
export function dnsIndexQuery(apex: string, bucket: number, height?: number): QueryRequest {
  const text = encoder.encode(queryName(apex).text);
  const data = new Uint8Array(1 + text.length);
  data[0] = checkBucket(bucket);
  data.set(text, 1);
  return request(INDEX_QUERY, data, height);
}

/**
 * Checks an answer's proof for module-relative `key` against the answer's state root and returns
 * the proven value. The caller must also trust `response.stateRoot` (e.g. find it in a committed
 * block header it verified). Throws `DnsZonesStateError PROOF_INVALID`, or `StateProofError` if
 * the proof does not decode.
 */
function verified(key: Uint8Array, response: QueryResponse): Uint8Array | null {
  if (response.proof === undefined) {
    throw new DnsZonesStateError(
      DnsZonesStateErrorCode.PROOF_INVALID,
      'the answer carries no proof',
    );
  }
  const proof = decodeStateProof(response.proof);
  if (!verifyStateProof(response.stateRoot, dnsZonesStateKey(key), response.value, proof)) {
    throw new DnsZonesStateError(
      DnsZonesStateErrorCode.PROOF_INVALID,
      "the answer's proof does not verify against its state root",
    );
  }
  return response.value;
}

/**
 * The proven entry of `name` with its records, or null if nobody registered it (proven absent).
 * At an apex the entry holds the records the admins set there; the SOA and NS come from
 * `verifyDnsZone`. Throws `DnsZonesStateError` for a bad proof or a value that does not decode.
 */
export function verifyDnsName(name: string, response: QueryResponse): DnsName | null {
  const checked = queryName(name);
  const value = verified(nameEntryKey(checked.wire), response);
  if (value === null) return null;
  const entry = decodeNameEntry(value);
  let records;
  try {
    records = entry.rrsets.flatMap((set) =>
      set.rdata.map((rdata) => recordOf(checked.text, set.type, set.ttl, rdata)),
    );
  } catch (error) {
    throw new DnsZonesStateError(
      DnsZonesStateErrorCode.CORRUPT_VALUE,
      `the records proven at ${checked.text} do not decode: ${error instanceof Error ? error.message : String(error)}`,
      {},
      { cause: error },
    );
  }
  return {
    name: checked.text,
    owner: entry.owner,
    registeredAt: entry.registeredAt,
    updatedAt: entry.updatedAt,
    records,
  };
}

/** The proven zone at `apex`, or null if there is none. */
export function verifyDnsZone(apex: string, response: QueryResponse): ZoneInfo | null {
  const checked = queryName(apex);
  const value = verified(zoneKey(checked.wire), response);
  if (value === null) return null;
  const zone = decodeZone(value);
  if (zone.apex !== checked.text) {
    throw new DnsZonesStateError(
      DnsZonesStateErrorCode.CORRUPT_VALUE,
      `the zone proven at ${checked.text} names apex ${zone.apex}`,
    );
  }
  return zone;
}

/** The proven zone apexes, in wire order. */
export function verifyDnsZones(response: QueryResponse): string[] {
  const value = verified(ZONES_KEY, response);
  return value === null
    ? []
    : decodeList(value, MAX_ZONES, 1, 255, 'zone list').map((wire) => nameFromWire(wire).text);
}

/** The proven names `owner` holds, in wire order. */
export function verifyDnsOwner(owner: Uint8Array, response: QueryResponse): string[] {
  const value = verified(ownerKey(owner), response);
  return value === null
    ? []
    : decodeList(value, MAX_NAMES_PER_OWNER, 1, 255, 'owner list').map(
        (wire) => nameFromWire(wire).text,
      );
}

/**
 * The proven names in bucket `bucket` of the zone at `apex`, in wire order. Throws
 * `DnsZonesStateError` for a bad proof, or `CORRUPT_VALUE` for a name in the wrong bucket.
 */
export function verifyDnsIndex(apex: string, bucket: number, response: QueryResponse): string[] {
  const checked = queryName(apex);
  const value = verified(indexKey(checked.wire, checkBucket(bucket)), response);
  if (value === null) return [];
  return decodeList(value, MAX_NAMES_PER_ZONE, 1, 255, 'index bucket').map((wire) => {
    if (bucketOf(wire) !== bucket) {
      throw new DnsZonesStateError(
        DnsZonesStateErrorCode.CORRUPT_VALUE,
        `index bucket ${bucket} of ${checked.text} lists a name of bucket ${bucketOf(wire)}`,
      );
    }
    return nameFromWire(wire).text;
  });
}
