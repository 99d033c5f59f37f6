import type { ModuleState, ModuleStateReader } from '../consensus/application/module.js';
import { bytesEqual, concatBytes } from '../crypto/bytes.js';
import { sha256 } from '../crypto/hash.js';
import {
  DiscoveryError,
  DiscoveryErrorCode,
  DiscoveryStateError,
  DiscoveryStateErrorCode,
} from './errors.js';
import { DISCOVERY_MODULE_NAME, isLive } from './model.js';
import type { OwnedInstance, ServiceIndexEntry, ServiceInstance } from './model.js';
import {
  MAX_DIRECTORY_BUCKET_ENTRIES,
  compareOwned,
  decodeDirectoryBucket,
  decodeInstance,
  decodeOwnerList,
  decodeServiceIndex,
  encodeDirectoryBucket,
  encodeInstance,
  encodeOwnerList,
  encodeServiceIndex,
  ownerHex,
} from './records.js';

/**
 * The catalog's state, under the router's `discovery/` prefix (docs/discovery.md, "State"):
 *
 *   discovery/inst/<service>/<instance>   the instance (records.ts)
 *   discovery/svc/<service>               the service index: every instance id, status, expiry
 *   discovery/owner/<32-byte key>         the instances a sender key owns
 *   discovery/dir/<byte>                  the services (with a stored index) whose name's
 *                                         SHA-256 starts with that byte, sorted
 *
 * Invariant (checked by the property tests): an instance record exists exactly when its id is
 * in its service's index and in its owner's list, and the index entry carries the record's
 * status, expiresAt and updatedAt. Records may outlive their expiry until a write prunes them.
 */

const encoder = new TextEncoder();
const INSTANCE_PREFIX = 'inst/';
const SERVICE_PREFIX = 'svc/';
const OWNER_PREFIX = encoder.encode('owner/');
const DIRECTORY_PREFIX = encoder.encode('dir/');
/** The service directory is split by the first byte of SHA-256(name), so no value is large. */
export const DIRECTORY_BUCKETS = 256;
const MODULE_PREFIX = encoder.encode(`${DISCOVERY_MODULE_NAME}/`);

/** Module-relative key of an instance record (service and instance are checked labels). */
export function instanceKey(service: string, instance: string): Uint8Array {
  return encoder.encode(`${INSTANCE_PREFIX}${service}/${instance}`);
}

export function serviceKey(service: string): Uint8Array {
  return encoder.encode(`${SERVICE_PREFIX}${service}`);
}

export function ownerKey(owner: Uint8Array): Uint8Array {
  if (owner.length !== 32) throw new RangeError(`an owner key is 32 bytes, got ${owner.length}`);
  return concatBytes(OWNER_PREFIX, owner);
}

/** Module-relative key of the directory bucket holding `service`, or bucket `bucket`. */
export function directoryKey(bucket: number): Uint8Array {
  if (!Number.isInteger(bucket) || bucket < 0 || bucket >= DIRECTORY_BUCKETS) {
    throw new RangeError(`a directory bucket is 0..255, got ${bucket}`);
  }
  return concatBytes(DIRECTORY_PREFIX, Uint8Array.of(bucket));
}

export function directoryBucketOf(service: string): number {
  return sha256(encoder.encode(service))[0]!;
}

/** Every service with a stored index: 256 reads (names sorted within each bucket). */
export function readServiceDirectory(state: ModuleStateReader): string[] {
  const services: string[] = [];
  for (let bucket = 0; bucket < DIRECTORY_BUCKETS; bucket++) {
    const value = state.get(directoryKey(bucket));
    if (value !== null) services.push(...decodeDirectoryBucket(value));
  }
  return services;
}

/** The full state key (`discovery/` + key) of a module-relative key: what a proof proves. */
export function discoveryStateKey(key: Uint8Array): Uint8Array {
  return concatBytes(MODULE_PREFIX, key);
}

function invariant(message: string, detail: Record<string, unknown> = {}): never {
  throw new DiscoveryStateError(
    DiscoveryStateErrorCode.CORRUPT_VALUE,
    `discovery state invariant broken: ${message}`,
    detail,
  );
}

export function readInstance(
  state: ModuleStateReader,
  service: string,
  instance: string,
): ServiceInstance | null {
  const value = state.get(instanceKey(service, instance));
  if (value === null) return null;
  const decoded = decodeInstance(value);
  if (decoded.service !== service || decoded.instance !== instance) {
    invariant(`the record at ${service}/${instance} names ${decoded.service}/${decoded.instance}`);
  }
  return decoded;
}

export function indexEntryOf(instance: ServiceInstance): ServiceIndexEntry {
  return {
    instance: instance.instance,
    status: instance.status,
    expiresAt: instance.expiresAt,
    updatedAt: instance.updatedAt,
  };
}

/**
 * One transaction's working set of the catalog at block `height`: records are written through
 * at once; service indexes and owner lists are loaded once, changed in memory, and written by
 * `flush` (an emptied one is deleted). Every loop here is bounded by the per-service and
 * per-owner limits.
 */
export class Catalog {
  private readonly indexes = new Map<string, ServiceIndexEntry[]>();
  private readonly owners = new Map<string, { owner: Uint8Array; list: OwnedInstance[] }>();
  private readonly dirtyIndexes = new Set<string>();
  private readonly dirtyOwners = new Set<string>();
  /** Services whose index was stored when this transaction first read it. */
  private readonly stored = new Set<string>();

  constructor(
    /** The transaction's state: records are read and written through it directly. */
    readonly state: ModuleState,
    readonly height: number,
  ) {}

  record(service: string, instance: string): ServiceInstance | null {
    return readInstance(this.state, service, instance);
  }

  index(service: string): ServiceIndexEntry[] {
    let entries = this.indexes.get(service);
    if (entries === undefined) {
      const value = this.state.get(serviceKey(service));
      entries = value === null ? [] : decodeServiceIndex(value);
      if (value !== null) this.stored.add(service);
      this.indexes.set(service, entries);
    }
    return entries;
  }

  ownerList(owner: Uint8Array): OwnedInstance[] {
    const id = ownerHex(owner);
    let held = this.owners.get(id);
    if (held === undefined) {
      const value = this.state.get(ownerKey(owner));
      held = { owner, list: value === null ? [] : decodeOwnerList(value) };
      this.owners.set(id, held);
    }
    return held.list;
  }

  /** Writes `instance` and its index entry; a new instance also joins its owner's list. */
  put(instance: ServiceInstance, isNew: boolean): void {
    this.state.set(instanceKey(instance.service, instance.instance), encodeInstance(instance));
    const entries = this.index(instance.service);
    const entry = indexEntryOf(instance);
    const at = entries.findIndex((e) => e.instance >= instance.instance);
    if (at !== -1 && entries[at]!.instance === instance.instance) {
      if (isNew) invariant(`${instance.service}/${instance.instance} is already indexed`);
      entries[at] = entry;
    } else {
      if (!isNew) invariant(`${instance.service}/${instance.instance} is not indexed`);
      entries.splice(at === -1 ? entries.length : at, 0, entry);
    }
    this.dirtyIndexes.add(instance.service);
    if (isNew) {
      const list = this.ownerList(instance.owner);
      const ref = { service: instance.service, instance: instance.instance };
      const position = list.findIndex((r) => compareOwned(r, ref) >= 0);
      if (position !== -1 && compareOwned(list[position]!, ref) === 0) {
        invariant(`${ref.service}/${ref.instance} is already in its owner's list`);
      }
      list.splice(position === -1 ? list.length : position, 0, ref);
      this.dirtyOwners.add(ownerHex(instance.owner));
    }
  }

  /** Deletes an instance: its record, its index entry and its place in its owner's list. */
  remove(instance: ServiceInstance): void {
    const { service, owner } = instance;
    this.state.delete(instanceKey(service, instance.instance));
    const entries = this.index(service);
    const at = entries.findIndex((e) => e.instance === instance.instance);
    if (at === -1) invariant(`${service}/${instance.instance} is not indexed`);
    entries.splice(at, 1);
    this.dirtyIndexes.add(service);
    const list = this.ownerList(owner);
    const position = list.findIndex(
      (r) => r.service === service && r.instance === instance.instance,
    );
    if (position === -1) {
      invariant(`${service}/${instance.instance} is not in its owner's list`, {
        owner: ownerHex(owner),
      });
    }
    list.splice(position, 1);
    this.dirtyOwners.add(ownerHex(owner));
  }

  /** Removes every instance of `service` that expired by this height (at most 64). */
  pruneService(service: string): void {
    const expired = this.index(service).filter((entry) => !isLive(entry, this.height));
    for (const entry of expired) {
      const instance = this.record(service, entry.instance);
      if (instance === null) invariant(`${service}/${entry.instance} is indexed but has no record`);
      this.remove(instance);
    }
  }

  /** Removes every instance `owner` holds that expired by this height (at most 32). */
  pruneOwner(owner: Uint8Array): void {
    for (const ref of [...this.ownerList(owner)]) {
      const instance = this.record(ref.service, ref.instance);
      if (instance === null || !bytesEqual(instance.owner, owner)) {
        invariant(`${ref.service}/${ref.instance} is in a list of an owner it does not have`, {
          owner: ownerHex(owner),
        });
      }
      if (!isLive(instance, this.height)) this.remove(instance);
    }
  }

  /**
   * Writes the changed indexes and owner lists, and the directory when a service's index appears
   * or is deleted.
   */
  flush(): void {
    for (const service of this.dirtyIndexes) {
      const entries = this.index(service);
      const key = serviceKey(service);
      if (entries.length === 0) this.state.delete(key);
      else this.state.set(key, encodeServiceIndex(entries));
      const wasStored = this.stored.has(service);
      if (wasStored !== entries.length > 0) this.listService(service, !wasStored);
    }
    for (const id of this.dirtyOwners) {
      const { owner, list } = this.owners.get(id)!;
      const key = ownerKey(owner);
      if (list.length === 0) this.state.delete(key);
      else this.state.set(key, encodeOwnerList(list));
    }
    this.dirtyIndexes.clear();
    this.dirtyOwners.clear();
  }

  /** Adds `service` to its directory bucket, or removes it. */
  private listService(service: string, add: boolean): void {
    const key = directoryKey(directoryBucketOf(service));
    const value = this.state.get(key);
    const services = value === null ? [] : decodeDirectoryBucket(value);
    const at = services.findIndex((name) => name >= service);
    const present = at !== -1 && services[at] === service;
    if (add) {
      if (present) invariant(`${service} is already in the service directory`);
      if (services.length >= MAX_DIRECTORY_BUCKET_ENTRIES) {
        throw new DiscoveryError(
          DiscoveryErrorCode.SERVICE_FULL,
          `register ${service}: its directory bucket holds ${MAX_DIRECTORY_BUCKET_ENTRIES} services, the limit`,
          { service, limit: MAX_DIRECTORY_BUCKET_ENTRIES },
        );
      }
      services.splice(at === -1 ? services.length : at, 0, service);
      this.stored.add(service);
    } else {
      if (!present) invariant(`${service} is not in the service directory`);
      services.splice(at, 1);
      this.stored.delete(service);
    }
    if (services.length === 0) this.state.delete(key);
    else this.state.set(key, encodeDirectoryBucket(services));
  }
}
