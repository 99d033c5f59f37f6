import { CanonicalReader } from '../codec/canonical-reader.js';
import { encodeCanonical } from '../codec/cbor.js';
import { toHex } from '../crypto/bytes.js';
import {
  REGISTRATION_READERS,
  readFields,
  registrationFrom,
  registrationValue,
  requireFields,
} from './codec.js';
import type { FieldReader } from './codec.js';
import { DiscoveryStateError, DiscoveryStateErrorCode } from './errors.js';
import { MAX_INSTANCES_PER_OWNER, MAX_INSTANCES_PER_SERVICE } from './model.js';
import type { OwnedInstance, ServiceIndexEntry, ServiceInstance } from './model.js';
import { checkInstanceId, checkServiceName, checkStatus } from './rules.js';

/**
 * The catalog's stored values (docs/discovery.md, "State"), canonical CBOR:
 *
 *   instance  { ttl, check, owner, ports, status, service, identity, instance, metadata,
 *               addresses, expiresAt, updatedAt, registeredAt }
 *   index     [[instance, status, expiresAt, updatedAt], …]   sorted by instance, ≤ 64
 *   owner     [[service, instance], …]                         sorted, ≤ 32
 *
 * Decoding is as strict as for bodies; anything else is `DiscoveryStateError CORRUPT_VALUE`
 * (a damaged store or a tampered answer, never a sender's doing).
 */

const RECORD_READERS: Readonly<Record<string, FieldReader>> = {
  ...REGISTRATION_READERS,
  owner: (reader, path) => reader.readBytes(path, 32, 32),
  expiresAt: (reader, path) => reader.readUint(path),
  updatedAt: (reader, path) => reader.readUint(path),
  registeredAt: (reader, path) => reader.readUint(path),
};

function corrupt(what: string, error: unknown): never {
  const reason = error instanceof Error ? error.message : String(error);
  throw new DiscoveryStateError(
    DiscoveryStateErrorCode.CORRUPT_VALUE,
    `not a discovery ${what}: ${reason}`,
    {},
    { cause: error },
  );
}

export function encodeInstance(instance: ServiceInstance): Uint8Array {
  return encodeCanonical({
    ...registrationValue(instance),
    owner: instance.owner,
    expiresAt: instance.expiresAt,
    updatedAt: instance.updatedAt,
    registeredAt: instance.registeredAt,
  });
}

/** Decodes a stored instance (the value a `discovery/instance` query proves). */
export function decodeInstance(value: Uint8Array): ServiceInstance {
  try {
    const reader = new CanonicalReader(value);
    const count = reader.readMapLength('instance', 64);
    const fields = readFields(reader, '', count, RECORD_READERS);
    reader.end('instance');
    requireFields(fields, Object.keys(RECORD_READERS), 'a stored instance');
    const registeredAt = fields['registeredAt'] as number;
    const updatedAt = fields['updatedAt'] as number;
    const expiresAt = fields['expiresAt'] as number;
    if (!(registeredAt <= updatedAt && updatedAt < expiresAt)) {
      throw new RangeError('expected registeredAt <= updatedAt < expiresAt');
    }
    return {
      ...registrationFrom(fields),
      owner: new Uint8Array(fields['owner'] as Uint8Array),
      registeredAt,
      updatedAt,
      expiresAt,
    };
  } catch (error) {
    return corrupt('instance', error);
  }
}

export function encodeServiceIndex(entries: readonly ServiceIndexEntry[]): Uint8Array {
  return encodeCanonical(
    entries.map(({ instance, status, expiresAt, updatedAt }) => [
      instance,
      status,
      expiresAt,
      updatedAt,
    ]),
  );
}

/** Decodes a service index: at most 64 entries, strictly sorted by instance id. */
export function decodeServiceIndex(value: Uint8Array): ServiceIndexEntry[] {
  try {
    const reader = new CanonicalReader(value);
    const count = reader.readArrayLength('index', MAX_INSTANCES_PER_SERVICE);
    const entries: ServiceIndexEntry[] = [];
    for (let i = 0; i < count; i++) {
      const at = `index[${i}]`;
      if (reader.readArrayLength(at, 4) !== 4) throw new RangeError(`${at}: expected 4 items`);
      const instance = checkInstanceId(reader.readText(`${at}.instance`, 64), `${at}.instance`);
      const status = checkStatus(reader.readText(`${at}.status`, 16), `${at}.status`);
      const expiresAt = reader.readUint(`${at}.expiresAt`);
      const updatedAt = reader.readUint(`${at}.updatedAt`);
      const previous = entries[i - 1];
      if (previous !== undefined && !(previous.instance < instance)) {
        throw new RangeError(`${at}: instance ids out of order or repeated`);
      }
      if (!(updatedAt < expiresAt)) throw new RangeError(`${at}: expected updatedAt < expiresAt`);
      entries.push({ instance, status, expiresAt, updatedAt });
    }
    reader.end('index');
    return entries;
  } catch (error) {
    return corrupt('service index', error);
  }
}

export function encodeOwnerList(entries: readonly OwnedInstance[]): Uint8Array {
  return encodeCanonical(entries.map(({ service, instance }) => [service, instance]));
}

export function compareOwned(a: OwnedInstance, b: OwnedInstance): number {
  if (a.service !== b.service) return a.service < b.service ? -1 : 1;
  if (a.instance !== b.instance) return a.instance < b.instance ? -1 : 1;
  return 0;
}

/** Decodes an owner's list: at most 32 entries, strictly sorted by (service, instance). */
export function decodeOwnerList(value: Uint8Array): OwnedInstance[] {
  try {
    const reader = new CanonicalReader(value);
    const count = reader.readArrayLength('owner', MAX_INSTANCES_PER_OWNER);
    const entries: OwnedInstance[] = [];
    for (let i = 0; i < count; i++) {
      const at = `owner[${i}]`;
      if (reader.readArrayLength(at, 2) !== 2) throw new RangeError(`${at}: expected 2 items`);
      const service = checkServiceName(reader.readText(`${at}.service`, 64), `${at}.service`);
      const instance = checkInstanceId(reader.readText(`${at}.instance`, 64), `${at}.instance`);
      const entry = { service, instance };
      const previous = entries[i - 1];
      if (previous !== undefined && compareOwned(previous, entry) >= 0) {
        throw new RangeError(`${at}: entries out of order or repeated`);
      }
      entries.push(entry);
    }
    reader.end('owner');
    return entries;
  } catch (error) {
    return corrupt('owner list', error);
  }
}

/** Names an owner key in messages and details. */
export const ownerHex = (owner: Uint8Array): string => toHex(owner);

/**
 * Most service names in one directory bucket. Names spread over 256 buckets by hash, so a
 * bucket this full means about a million services; a register that would exceed it is refused
 * (`SERVICE_FULL`), which keeps every stored value bounded.
 */
export const MAX_DIRECTORY_BUCKET_ENTRIES = 4_096;

export function encodeDirectoryBucket(services: readonly string[]): Uint8Array {
  return encodeCanonical([...services]);
}

/** Decodes a directory bucket: service names, strictly sorted. */
export function decodeDirectoryBucket(value: Uint8Array): string[] {
  try {
    const reader = new CanonicalReader(value);
    const count = reader.readArrayLength('directory', MAX_DIRECTORY_BUCKET_ENTRIES);
    const services: string[] = [];
    for (let i = 0; i < count; i++) {
      const at = `directory[${i}]`;
      const service = checkServiceName(reader.readText(at, 64), at);
      const previous = services[i - 1];
      if (previous !== undefined && !(previous < service)) {
        throw new RangeError(`${at}: service names out of order or repeated`);
      }
      services.push(service);
    }
    reader.end('directory');
    return services;
  } catch (error) {
    return corrupt('directory bucket', error);
  }
}
