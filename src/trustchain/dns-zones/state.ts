import type { ModuleState, ModuleStateReader } from '../../consensus/application/module.js';
import { bytesEqual, concatBytes, toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { isSubdomainKey } from '../dns/index.js';
import {
  decodeCount,
  decodeList,
  decodeNameEntry,
  decodeZone,
  encodeCount,
  encodeList,
  encodeNameEntry,
  encodeZone,
  insertSorted,
  removeSorted,
} from './codec.js';
import { DnsZonesStateError, DnsZonesStateErrorCode } from './errors.js';
import {
  DNS_ZONES_MODULE_NAME,
  INDEX_BUCKETS,
  MAX_NAMES_PER_OWNER,
  MAX_NAMES_PER_ZONE,
  MAX_ZONES,
  serialAt,
} from './model.js';
import type { NameEntry, ZoneInfo } from './model.js';
import { nameFromWire } from './names.js';
import type { CheckedName } from './names.js';

/**
 * The module's state, under the router's `dns/` prefix (docs/dns.md, "Zones in consensus"):
 *
 *   dns/zones                    the zone apexes (wire form), sorted; ≤ MAX_ZONES
 *   dns/zone/<apex wire>         the zone: parameters, admins, kind, serial, name count
 *   dns/name/<name wire>         a name: owner and every RRset (one key per name)
 *   dns/idx/<apex wire><bucket>  the zone's names whose SHA-256(wire)[0] is `bucket`, sorted
 *   dns/owner/<32-byte key>      the names a key owns, sorted; ≤ MAX_NAMES_PER_OWNER
 *   dns/below/<name wire>        how many names strictly below hold data other than A/AAAA
 *   dns/data-below/<name wire>   how many names strictly below hold any records
 *   dns/names-below/<name wire>  how many registered names are strictly below (≤ names per zone)
 *   dns/owned-below/<name wire><32-byte key>
 *                                how many of those the key owns (≤ names per owner)
 *
 * Zones never overlap, so a name's zone is the one apex in `zones` it is under. A name entry
 * exists exactly when the name is in its zone's index bucket and (apex excepted) in its owner's
 * list. The index lets a server enumerate a zone with 256 reads plus one per name, and each
 * registration rewrites one bucket (~1/256 of the zone's names). `below` lets a delegation be
 * refused without enumerating the names under it; `data-below` says whether a name without
 * records exists in the zone (an empty non-terminal) in one read; `names-below` minus
 * `owned-below` is how many names below belong to other keys, which refuses registering or
 * delegating over them the same way. The counts are kept on every name strictly between a
 * registered name and its apex (≤ 125), registered or not; a count of 0 is no key, so each
 * registered name accounts for at most 4 × 125 keys.
 */

const encoder = new TextEncoder();
export const ZONES_KEY = encoder.encode('zones');
const ZONE_PREFIX = encoder.encode('zone/');
const NAME_PREFIX = encoder.encode('name/');
const INDEX_PREFIX = encoder.encode('idx/');
const OWNER_PREFIX = encoder.encode('owner/');
const BELOW_PREFIX = encoder.encode('below/');
const DATA_BELOW_PREFIX = encoder.encode('data-below/');
const NAMES_BELOW_PREFIX = encoder.encode('names-below/');
const OWNED_BELOW_PREFIX = encoder.encode('owned-below/');
const MODULE_PREFIX = encoder.encode(`${DNS_ZONES_MODULE_NAME}/`);

export function zoneKey(apexWire: Uint8Array): Uint8Array {
  return concatBytes(ZONE_PREFIX, apexWire);
}

export function nameEntryKey(wire: Uint8Array): Uint8Array {
  return concatBytes(NAME_PREFIX, wire);
}

/** The index bucket of a name: the first byte of SHA-256 of its wire form. */
export function bucketOf(wire: Uint8Array): number {
  return sha256(wire)[0]! % INDEX_BUCKETS;
}

export function indexKey(apexWire: Uint8Array, bucket: number): Uint8Array {
  return concatBytes(INDEX_PREFIX, apexWire, Uint8Array.of(bucket));
}

export function ownerKey(owner: Uint8Array): Uint8Array {
  if (owner.length !== 32) throw new RangeError(`an owner key is 32 bytes, got ${owner.length}`);
  return concatBytes(OWNER_PREFIX, owner);
}

export function belowKey(wire: Uint8Array): Uint8Array {
  return concatBytes(BELOW_PREFIX, wire);
}

export function dataBelowKey(wire: Uint8Array): Uint8Array {
  return concatBytes(DATA_BELOW_PREFIX, wire);
}

export function namesBelowKey(wire: Uint8Array): Uint8Array {
  return concatBytes(NAMES_BELOW_PREFIX, wire);
}

/** A name's wire form ends with the root label (0), so `<wire><owner>` parses one way. */
export function ownedBelowKey(wire: Uint8Array, owner: Uint8Array): Uint8Array {
  if (owner.length !== 32) throw new RangeError(`an owner key is 32 bytes, got ${owner.length}`);
  return concatBytes(OWNED_BELOW_PREFIX, wire, owner);
}

/** The full state key (`dns/` + key) of a module-relative key: what a proof proves. */
export function dnsZonesStateKey(key: Uint8Array): Uint8Array {
  return concatBytes(MODULE_PREFIX, key);
}

/** What a module-relative key holds, for readers of a block's changes (the bridge). */
export type DecodedKey =
  | { readonly kind: 'zones' }
  | { readonly kind: 'zone'; readonly apex: Uint8Array }
  | { readonly kind: 'name'; readonly name: Uint8Array }
  | { readonly kind: 'other' };

function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

export function decodeModuleKey(key: Uint8Array): DecodedKey {
  if (bytesEqual(key, ZONES_KEY)) return { kind: 'zones' };
  if (startsWith(key, ZONE_PREFIX)) return { kind: 'zone', apex: key.subarray(ZONE_PREFIX.length) };
  if (startsWith(key, NAME_PREFIX)) return { kind: 'name', name: key.subarray(NAME_PREFIX.length) };
  return { kind: 'other' };
}

/** The module-relative key of a full state key under `dns/`, or undefined for another module's. */
export function moduleRelativeKey(fullKey: Uint8Array): Uint8Array | undefined {
  return startsWith(fullKey, MODULE_PREFIX) ? fullKey.subarray(MODULE_PREFIX.length) : undefined;
}

export function invariant(message: string, detail: Record<string, unknown> = {}): never {
  throw new DnsZonesStateError(
    DnsZonesStateErrorCode.CORRUPT_VALUE,
    `dns state invariant broken: ${message}`,
    detail,
  );
}

export function readZoneList(state: ModuleStateReader): Uint8Array[] {
  const value = state.get(ZONES_KEY);
  return value === null ? [] : decodeList(value, MAX_ZONES, 1, 255, 'zone list');
}

export function readZone(state: ModuleStateReader, apexWire: Uint8Array): ZoneInfo | null {
  const value = state.get(zoneKey(apexWire));
  return value === null ? null : decodeZone(value);
}

export function readNameEntry(state: ModuleStateReader, wire: Uint8Array): NameEntry | null {
  const value = state.get(nameEntryKey(wire));
  return value === null ? null : decodeNameEntry(value);
}

export function readIndexBucket(
  state: ModuleStateReader,
  apexWire: Uint8Array,
  bucket: number,
): Uint8Array[] {
  const value = state.get(indexKey(apexWire, bucket));
  return value === null ? [] : decodeList(value, MAX_NAMES_PER_ZONE, 1, 255, 'index bucket');
}

export function readOwnerList(state: ModuleStateReader, owner: Uint8Array): Uint8Array[] {
  const value = state.get(ownerKey(owner));
  return value === null ? [] : decodeList(value, MAX_NAMES_PER_OWNER, 1, 255, 'owner list');
}

/** Names strictly below the name `wire` that hold data other than A/AAAA (`dns/below`). */
export function readBelowCount(state: ModuleStateReader, wire: Uint8Array): number {
  const value = state.get(belowKey(wire));
  return value === null ? 0 : decodeCount(value);
}

/** Names strictly below the name `wire` that hold records (`dns/data-below`). */
export function readDataBelow(state: ModuleStateReader, wire: Uint8Array): number {
  const value = state.get(dataBelowKey(wire));
  return value === null ? 0 : decodeCount(value);
}

/** Registered names strictly below the name `wire` (`dns/names-below`). */
export function readNamesBelow(state: ModuleStateReader, wire: Uint8Array): number {
  const value = state.get(namesBelowKey(wire));
  return value === null ? 0 : decodeCount(value);
}

/** Registered names strictly below the name `wire` that `owner` owns (`dns/owned-below`). */
export function readOwnedBelow(
  state: ModuleStateReader,
  wire: Uint8Array,
  owner: Uint8Array,
): number {
  const value = state.get(ownedBelowKey(wire, owner));
  return value === null ? 0 : decodeCount(value);
}

/** A zone found for a name, with its apex's forms. */
export interface FoundZone {
  readonly apex: CheckedName;
  readonly zone: ZoneInfo;
}

/**
 * One transaction's access to the module's state at block `height`. Reads and writes go through
 * to the transaction's state (which the router discards if the transaction is refused). Every
 * loop here is bounded: zones by MAX_ZONES, ancestors by the 127 labels a name can have.
 */
export class Registry {
  private zoneList: Uint8Array[] | undefined;

  constructor(
    readonly state: ModuleState,
    readonly height: number,
  ) {}

  apexes(): Uint8Array[] {
    this.zoneList ??= readZoneList(this.state);
    return this.zoneList;
  }

  zone(apexWire: Uint8Array): ZoneInfo | null {
    return readZone(this.state, apexWire);
  }

  /** The zone `name` is in (zones are disjoint, so there is at most one). */
  zoneOf(name: CheckedName): FoundZone | undefined {
    for (const apexWire of this.apexes()) {
      const apex = nameFromWire(apexWire);
      if (!isSubdomainKey(name.key, apex.key)) continue;
      const zone = this.zone(apexWire);
      if (zone === null) invariant(`zone ${apex.text} is listed but not stored`);
      return { apex, zone };
    }
    return undefined;
  }

  /** Stores a zone with its serial set to this height, adding it to the zone list if new. */
  putZone(apex: CheckedName, zone: ZoneInfo): void {
    this.state.set(zoneKey(apex.wire), encodeZone({ ...zone, serial: serialAt(this.height) }));
    const list = this.apexes();
    if (insertSorted(list, apex.wire)) this.state.set(ZONES_KEY, encodeList(list));
  }

  entry(name: CheckedName): NameEntry | null {
    return readNameEntry(this.state, name.wire);
  }

  /** Writes a name's entry; a new one joins its zone's index. */
  putEntry(apex: CheckedName, name: CheckedName, entry: NameEntry, isNew: boolean): void {
    this.state.set(nameEntryKey(name.wire), encodeNameEntry(entry));
    if (isNew) this.updateIndex(apex, name, true);
  }

  deleteEntry(apex: CheckedName, name: CheckedName): void {
    this.state.delete(nameEntryKey(name.wire));
    this.updateIndex(apex, name, false);
  }

  private updateIndex(apex: CheckedName, name: CheckedName, add: boolean): void {
    const bucket = bucketOf(name.wire);
    const list = readIndexBucket(this.state, apex.wire, bucket);
    const changed = add ? insertSorted(list, name.wire) : removeSorted(list, name.wire);
    if (!changed)
      invariant(`${name.text} is ${add ? 'already' : 'not'} in the index of ${apex.text}`);
    const key = indexKey(apex.wire, bucket);
    if (list.length === 0) this.state.delete(key);
    else this.state.set(key, encodeList(list));
  }

  ownedNames(owner: Uint8Array): Uint8Array[] {
    return readOwnerList(this.state, owner);
  }

  updateOwner(owner: Uint8Array, name: CheckedName, add: boolean): void {
    const list = readOwnerList(this.state, owner);
    const changed = add ? insertSorted(list, name.wire) : removeSorted(list, name.wire);
    if (!changed) {
      invariant(`${name.text} is ${add ? 'already' : 'not'} in the list of its owner`, {
        owner: toHex(owner),
      });
    }
    const key = ownerKey(owner);
    if (list.length === 0) this.state.delete(key);
    else this.state.set(key, encodeList(list));
  }

  /** Names strictly below `key`'s name that hold data other than A/AAAA. */
  below(name: CheckedName): number {
    return readBelowCount(this.state, name.wire);
  }

  adjustBelow(name: CheckedName, delta: 1 | -1): void {
    this.adjustCount(belowKey(name.wire), this.below(name), delta, `the count below ${name.text}`);
  }

  /** Counts a name below `name` that came to hold records (1) or holds none any more (-1). */
  adjustDataBelow(name: CheckedName, delta: 1 | -1): void {
    this.adjustCount(
      dataBelowKey(name.wire),
      readDataBelow(this.state, name.wire),
      delta,
      `the names with records below ${name.text}`,
    );
  }

  /** Registered names strictly below `name` that belong to a key other than `owner`. */
  ownedByOthersBelow(name: CheckedName, owner: Uint8Array): number {
    const all = readNamesBelow(this.state, name.wire);
    const own = readOwnedBelow(this.state, name.wire, owner);
    if (own > all) {
      invariant(`${own} names below ${name.text} owned by one key, of ${all} in all`, {
        owner: toHex(owner),
      });
    }
    return all - own;
  }

  /** Counts a name registered (1) or released (-1) below `name`, owned by `owner`. */
  adjustNamesBelow(name: CheckedName, owner: Uint8Array, delta: 1 | -1): void {
    const all = readNamesBelow(this.state, name.wire);
    this.adjustCount(namesBelowKey(name.wire), all, delta, `the names below ${name.text}`);
    this.adjustOwnedBelow(name, owner, delta);
  }

  /** Counts a name below `name` gained (1) or lost (-1) by `owner`, as a transfer does. */
  adjustOwnedBelow(name: CheckedName, owner: Uint8Array, delta: 1 | -1): void {
    this.adjustCount(
      ownedBelowKey(name.wire, owner),
      readOwnedBelow(this.state, name.wire, owner),
      delta,
      `the names below ${name.text} owned by ${toHex(owner)}`,
    );
  }

  private adjustCount(key: Uint8Array, current: number, delta: 1 | -1, what: string): void {
    const count = current + delta;
    if (count < 0) invariant(`${what} would go negative`);
    if (count === 0) this.state.delete(key);
    else this.state.set(key, encodeCount(count));
  }
}
