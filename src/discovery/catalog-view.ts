import type { ModuleStateReader } from '../consensus/application/module.js';
import { INITIAL_HEIGHT } from '../consensus/application/index.js';
import { bytesEqual } from '../crypto/bytes.js';
import type { StateChange } from '../storage/index.js';
import { DiscoveryStateError, DiscoveryStateErrorCode } from './errors.js';
import { DISCOVERY_MODULE_NAME, isLive } from './model.js';
import type { HealthStatus, ServiceIndexEntry, ServiceInstance } from './model.js';
import { decodeInstance, decodeServiceIndex } from './records.js';
import { checkInstanceId, checkServiceName } from './rules.js';
import { readInstance, readServiceDirectory, serviceKey } from './state.js';

/**
 * The committed catalog held in memory by a node, following the chain block by block: what the
 * DNS servers publish, what the health-check runner hosts, and what metrics count. `load` reads
 * the whole catalog once (the 256 directory buckets, one index per service, one record per
 * instance); `applyBlock` then takes each committed block's state changes (full keys, as
 * `executeBlock` returned them) without reading the store.
 *
 * Liveness is judged at the height held: an instance whose `expiresAt` is reached leaves the
 * live view at that block even when no transaction touched it (`applyBlock` reports it).
 */

const decoder = new TextDecoder('utf-8', { fatal: true });
const MODULE_PREFIX = new TextEncoder().encode(`${DISCOVERY_MODULE_NAME}/`);

/** What one `applyBlock` changed for readers of the live view. */
export interface CatalogUpdate {
  readonly height: number;
  /** Services whose index or instance records changed, or whose instances expired, sorted. */
  readonly services: readonly string[];
}

export type CatalogKeyChange =
  | { readonly kind: 'instance'; readonly service: string; readonly instance: string }
  | { readonly kind: 'service'; readonly service: string }
  | { readonly kind: 'other' };

/** The catalog key a full state key names, or undefined for another module's key. */
export function catalogKeyOf(key: Uint8Array): CatalogKeyChange | undefined {
  if (key.length < MODULE_PREFIX.length) return undefined;
  if (!bytesEqual(key.subarray(0, MODULE_PREFIX.length), MODULE_PREFIX)) return undefined;
  const rest = key.subarray(MODULE_PREFIX.length);
  const head = String.fromCharCode(...rest.subarray(0, 5));
  if (head === 'inst/') {
    const text = decoder.decode(rest.subarray(5));
    const slash = text.indexOf('/');
    return {
      kind: 'instance',
      service: checkServiceName(text.slice(0, slash)),
      instance: checkInstanceId(text.slice(slash + 1)),
    };
  }
  if (head.startsWith('svc/')) {
    return { kind: 'service', service: checkServiceName(decoder.decode(rest.subarray(4))) };
  }
  return { kind: 'other' };
}

function corrupt(message: string, cause?: unknown): never {
  throw new DiscoveryStateError(
    DiscoveryStateErrorCode.CORRUPT_VALUE,
    message,
    {},
    cause === undefined ? undefined : { cause },
  );
}

function instanceId(service: string, instance: string): string {
  return `${service}/${instance}`;
}

export class CatalogView {
  private readonly indexes = new Map<string, readonly ServiceIndexEntry[]>();
  private readonly records = new Map<string, ServiceInstance>();
  private current: number | null;

  private constructor(height: number | null) {
    this.current = height;
  }

  /**
   * Reads the catalog of the committed state at `height` (null: the empty state before block
   * 1) through `reader` (module-relative keys). Throws `DiscoveryStateError CORRUPT_VALUE` if the
   * state breaks the module's invariants.
   */
  static load(reader: ModuleStateReader, height: number | null): CatalogView {
    const view = new CatalogView(height);
    for (const service of readServiceDirectory(reader)) {
      const value = reader.get(serviceKey(service));
      if (value === null) corrupt(`service ${service} is in the directory but has no index`);
      const entries = decodeServiceIndex(value);
      view.indexes.set(service, entries);
      for (const entry of entries) {
        const record = readInstance(reader, service, entry.instance);
        if (record === null) corrupt(`${service}/${entry.instance} is indexed but not stored`);
        view.records.set(instanceId(service, entry.instance), record);
      }
    }
    return view;
  }

  /** Height of the state held (null: before block 1). */
  get height(): number | null {
    return this.current;
  }

  /** Every service with a stored index, sorted (some may have only expired instances). */
  services(): string[] {
    return [...this.indexes.keys()].sort();
  }

  /** The stored index of `service`, as committed (expired entries included). */
  index(service: string): readonly ServiceIndexEntry[] {
    return this.indexes.get(service) ?? [];
  }

  /** Live instances of `service` at the height held, optionally only those statuses, by id. */
  live(service: string, statuses?: readonly HealthStatus[]): ServiceInstance[] {
    const height = this.current;
    if (height === null) return [];
    const found: ServiceInstance[] = [];
    for (const entry of this.index(service)) {
      if (!isLive(entry, height)) continue;
      if (statuses !== undefined && !statuses.includes(entry.status)) continue;
      const record = this.records.get(instanceId(service, entry.instance));
      if (record !== undefined) found.push(record);
    }
    return found;
  }

  /** Live instances `owner` registered, in (service, instance) order. */
  ownedBy(owner: Uint8Array): ServiceInstance[] {
    return this.services().flatMap((service) =>
      this.live(service).filter((record) => bytesEqual(record.owner, owner)),
    );
  }

  /** Counts over every service at the height held. */
  counts(statuses: readonly HealthStatus[]): { live: number; healthy: number } {
    let live = 0;
    let healthy = 0;
    for (const service of this.indexes.keys()) {
      for (const record of this.live(service)) {
        live++;
        if (statuses.includes(record.status)) healthy++;
      }
    }
    return { live, healthy };
  }

  /**
   * Applies the state changes of the committed block at `height` (other modules' keys are
   * skipped). Throws `DiscoveryStateError CORRUPT_VALUE` when `height` does not follow the
   * height held or a value does not decode; nothing is changed then (load again).
   */
  applyBlock(height: number, changes: readonly StateChange[]): CatalogUpdate {
    const expected = this.current === null ? INITIAL_HEIGHT : this.current + 1;
    if (height !== expected) {
      corrupt(`block ${height} does not follow the catalog held (height ${String(this.current)})`);
    }
    const indexChanges = new Map<string, readonly ServiceIndexEntry[] | null>();
    const recordChanges = new Map<string, ServiceInstance | null>();
    const touched = new Set<string>();
    try {
      for (const { key, value } of changes) {
        const decoded = catalogKeyOf(key);
        if (decoded === undefined || decoded.kind === 'other') continue;
        touched.add(decoded.service);
        if (decoded.kind === 'service') {
          indexChanges.set(decoded.service, value === null ? null : decodeServiceIndex(value));
        } else {
          const record = value === null ? null : decodeInstance(value);
          if (
            record !== null &&
            (record.service !== decoded.service || record.instance !== decoded.instance)
          ) {
            corrupt(`the record at ${decoded.service}/${decoded.instance} names another instance`);
          }
          recordChanges.set(instanceId(decoded.service, decoded.instance), record);
        }
      }
    } catch (error) {
      if (error instanceof DiscoveryStateError) throw error;
      return corrupt(`block ${height} holds a discovery change that does not decode`, error);
    }
    // Instances that stop being live at this height without any write.
    const previous = this.current;
    for (const [service, entries] of this.indexes) {
      if (
        entries.some(
          (entry) => previous !== null && isLive(entry, previous) && !isLive(entry, height),
        )
      ) {
        touched.add(service);
      }
    }
    for (const [service, entries] of indexChanges) {
      if (entries === null) this.indexes.delete(service);
      else this.indexes.set(service, entries);
    }
    for (const [id, record] of recordChanges) {
      if (record === null) this.records.delete(id);
      else this.records.set(id, record);
    }
    this.current = height;
    return { height, services: [...touched].sort() };
  }
}
