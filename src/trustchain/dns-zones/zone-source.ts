import { INITIAL_HEIGHT } from '../../consensus/application/index.js';
import type { ModuleStateReader } from '../../consensus/application/module.js';
import type { StateChange } from '../../storage/index.js';
import { MemoryZone, ZoneSet, isSubdomainKey, nameKey } from '../dns/index.js';
import { keyLabelOffsets } from '../dns/names.js';
import type { ResourceRecord, Zone, ZoneBuildOptions, ZoneSource } from '../dns/index.js';
import { decodeNameEntry, decodeZone } from './codec.js';
import { DnsZonesStateError, DnsZonesStateErrorCode } from './errors.js';
import { INDEX_BUCKETS } from './model.js';
import type { NameEntry, ZoneInfo } from './model.js';
import { nameFromKey, nameFromWire } from './names.js';
import type { CheckedName } from './names.js';
import { recordOf } from './rules.js';
import {
  decodeModuleKey,
  dnsZonesStateKey,
  invariant,
  moduleRelativeKey,
  readIndexBucket,
  readNameEntry,
  readZone,
  readZoneList,
} from './state.js';

/**
 * The bridge from the `dns` module's committed state to the zones the DNS servers answer from
 * (`ZoneSource`). `load` reads every zone once (its parameters, its 256 index buckets, one key
 * per name); `applyBlock` then takes each committed block's state changes — the ones
 * `executeBlock` returned and `saveBlock` stored — and updates only the names and zones they
 * touch, without reading the store. A changed zone is compiled again into a `MemoryZone` from the
 * records held in memory and swapped into the `ZoneSet` in one step, so a query sees the zone of
 * one block or of the next, never a mixture.
 *
 * Everything here is a function of the committed state: two nodes at one height serve the same
 * records (MemoryZone.build orders them canonically).
 */

/** Read access to the node's state by full key (`NodeStore.state` has it). */
export interface CommittedStateGetter {
  get(key: Uint8Array, height?: number): Uint8Array | null;
}

/** The module's view (module-relative keys) of the committed state, at `height` or the latest. */
export function dnsZonesStateReader(
  state: CommittedStateGetter,
  height?: number,
): ModuleStateReader {
  return {
    get: (key) =>
      height === undefined
        ? state.get(dnsZonesStateKey(key))
        : state.get(dnsZonesStateKey(key), height),
  };
}

interface HeldZone {
  readonly apex: CheckedName;
  info: ZoneInfo;
  /** Name entries by DNS core key, the apex's included. */
  readonly names: Map<string, NameEntry>;
}

export interface ZoneRefresh {
  /** Height of the state held (the zones compiled so far may be older, see `pending`). */
  readonly height: number;
  /** Apexes compiled again and swapped in (or removed), in the order they were handled. */
  readonly rebuilt: readonly string[];
  /** Apexes that could not be compiled: the zone served before stays, see `failures`. */
  readonly failed: readonly string[];
  /** Apexes changed but not compiled yet (`applyBlock` with `compile: false`). */
  readonly pending: readonly string[];
}

export interface ApplyOptions {
  /**
   * Compile the changed zones now (default). With false, the changes are only recorded and the
   * zones served stay as they were until `compile()`: compiling costs time in proportion to the
   * zone's size (docs/dns.md), so a node following fast blocks with a large zone can compile at
   * its own pace, e.g. at most once a second.
   */
  readonly compile?: boolean;
}

export interface ConsensusZonesOptions {
  /** Height of the state the reader reads; null for the empty state before block 1. */
  readonly height: number | null;
  /** Put the zones into this set (e.g. one that also holds configured zones); default: a new one. */
  readonly into?: ZoneSet;
  /**
   * Options for every compilation of the zone at `apex`, e.g. `{ signer }` to sign it (the same
   * `ZoneSigner` each time, so unchanged RRsets keep their signatures). Default: unsigned.
   */
  readonly buildOptions?: (apex: string) => ZoneBuildOptions;
  /**
   * Records a second source publishes in the zone at `apex` (the service catalog's SRV and
   * address records, docs/discovery.md "DNS"), compiled together with the zone's own. A name of
   * the zone's own at or below one of these records' owners is left out, so the two sources
   * never conflict. Call `touch(apex)` when the source's records change.
   */
  readonly overlay?: (apex: string) => readonly ResourceRecord[];
}

function corrupt(message: string, cause?: unknown): never {
  throw new DnsZonesStateError(
    DnsZonesStateErrorCode.CORRUPT_VALUE,
    message,
    {},
    cause === undefined ? undefined : { cause },
  );
}

/** The records a zone serves: SOA and NS from its parameters, the rest from its names. */
export function zoneRecords(
  apex: string,
  info: ZoneInfo,
  names: Iterable<[string, NameEntry]>,
): ResourceRecord[] {
  const records: ResourceRecord[] = [
    {
      name: apex,
      type: 'SOA',
      class: 1,
      ttl: info.soa.ttl,
      data: {
        mname: info.soa.mname,
        rname: info.soa.rname,
        serial: info.serial,
        refresh: info.soa.refresh,
        retry: info.soa.retry,
        expire: info.soa.expire,
        minimum: info.soa.minimum,
      },
    },
    ...info.nameservers.hosts.map((host): ResourceRecord => ({
      name: apex,
      type: 'NS',
      class: 1,
      ttl: info.nameservers.ttl,
      data: { host },
    })),
  ];
  for (const [key, entry] of names) {
    const owner = nameFromKey(key).text;
    for (const set of entry.rrsets) {
      for (const rdata of set.rdata) records.push(recordOf(owner, set.type, set.ttl, rdata));
    }
  }
  return records;
}

/** RR types that cut the zone at their owner (RFC 1034 §4.2.1): a delegation's NS and its DS. */
const CUT_TYPES: ReadonlySet<number> = new Set([2, 43]);

/**
 * The names of `names` neither at nor below an owner of `records`, and without NS or DS at a
 * name above one: a registered name may not delegate, or cut off, the overlay's names (the
 * catalog's `_service` records). An NS at `_web.<zone>` would turn the live instance
 * `w1._web.<zone>` into glue answered by the delegate's server, and an NS at `_stoq.<zone>`
 * would occlude the SRV records and stop the zone compiling.
 */
function outside(
  names: ReadonlyMap<string, NameEntry>,
  records: readonly ResourceRecord[],
): Map<string, NameEntry> {
  const owners = new Set(records.map((record) => nameKey(record.name)));
  const above = new Set<string>();
  for (const owner of owners) {
    for (const offset of keyLabelOffsets(owner)) if (offset > 0) above.add(owner.slice(offset));
  }
  const kept = new Map<string, NameEntry>();
  for (const [key, entry] of names) {
    if (keyLabelOffsets(key).some((offset) => owners.has(key.slice(offset)))) continue;
    kept.set(
      key,
      above.has(key) && entry.rrsets.some((set) => CUT_TYPES.has(set.type))
        ? { ...entry, rrsets: entry.rrsets.filter((set) => !CUT_TYPES.has(set.type)) }
        : entry,
    );
  }
  return kept;
}

export class ConsensusZones implements ZoneSource {
  private readonly held = new Map<string, HeldZone>();
  private readonly failing = new Map<string, Error>();
  /** Zones changed since they were last compiled (or removed), by DNS core key. */
  private readonly dirty = new Set<string>();
  private current: number | null;

  private constructor(
    /** The set the servers read; zones are swapped into it. */
    readonly zoneSet: ZoneSet,
    height: number | null,
    private readonly buildOptions: ((apex: string) => ZoneBuildOptions) | undefined,
    private readonly overlay: ((apex: string) => readonly ResourceRecord[]) | undefined,
  ) {
    this.current = height;
  }

  /**
   * Reads every zone of the committed state through `reader` (see `dnsZonesStateReader`) and
   * compiles it. A zone that fails to compile is left out and listed in `failures`. Throws
   * `DnsZonesStateError CORRUPT_VALUE` if the state breaks the module's invariants.
   */
  static load(reader: ModuleStateReader, options: ConsensusZonesOptions): ConsensusZones {
    const zones = new ConsensusZones(
      options.into ?? new ZoneSet(),
      options.height,
      options.buildOptions,
      options.overlay,
    );
    for (const apexWire of readZoneList(reader)) {
      const apex = nameFromWire(apexWire);
      const info =
        readZone(reader, apexWire) ?? invariant(`zone ${apex.text} is listed but not stored`);
      const names = new Map<string, NameEntry>();
      for (let bucket = 0; bucket < INDEX_BUCKETS; bucket++) {
        for (const wire of readIndexBucket(reader, apexWire, bucket)) {
          const entry =
            readNameEntry(reader, wire) ??
            invariant(`${nameFromWire(wire).text} is indexed but not stored`);
          names.set(nameFromWire(wire).key, entry);
        }
      }
      zones.held.set(apex.key, { apex, info, names });
      zones.compileZone(apex.key);
    }
    return zones;
  }

  /** Height of the state the zones are from (null: the empty state). */
  get height(): number | null {
    return this.current;
  }

  /** Zones that could not be compiled from the latest state, by apex, with the reason. */
  get failures(): ReadonlyMap<string, Error> {
    return this.failing;
  }

  /** The apexes held, in no particular order. */
  apexes(): string[] {
    return [...this.held.values()].map((zone) => zone.apex.text);
  }

  /** The compiled zone at `apex` (what the servers answer from), if it is held. */
  zone(apex: string): Zone | undefined {
    return this.zoneSet.get(apex);
  }

  findZone(key: string, parentSide?: boolean): Zone | undefined {
    return this.zoneSet.findZone(key, parentSide);
  }

  /** The `ZoneSet`'s: every zone swapped in or removed changes it. */
  get generation(): number {
    return this.zoneSet.generation;
  }

  /**
   * Applies the state changes of the committed block at `height` (`BlockExecutionResult.changes`,
   * full keys; other modules' keys are skipped) and compiles the zones they touch. Throws
   * `DnsZonesStateError OUT_OF_ORDER` unless `height` follows the held state, and
   * `CORRUPT_VALUE` for a value that does not decode (nothing is changed then).
   */
  applyBlock(
    height: number,
    changes: readonly StateChange[],
    options: ApplyOptions = {},
  ): ZoneRefresh {
    const expected = this.current === null ? INITIAL_HEIGHT : this.current + 1;
    if (height !== expected) {
      throw new DnsZonesStateError(
        DnsZonesStateErrorCode.OUT_OF_ORDER,
        `block ${height} does not follow the zones held (height ${String(this.current)}); load the state again`,
        { height, held: this.current },
      );
    }
    const zoneChanges = new Map<string, { apex: CheckedName; info: ZoneInfo | null }>();
    const nameChanges: Array<{ name: CheckedName; entry: NameEntry | null }> = [];
    for (const { key, value } of changes) {
      const relative = moduleRelativeKey(key);
      if (relative === undefined) continue;
      const decoded = decodeModuleKey(relative);
      if (decoded.kind === 'zone') {
        const apex = nameFromWire(new Uint8Array(decoded.apex));
        zoneChanges.set(apex.key, { apex, info: value === null ? null : decodeZone(value) });
      } else if (decoded.kind === 'name') {
        const name = nameFromWire(new Uint8Array(decoded.name));
        nameChanges.push({ name, entry: value === null ? null : decodeNameEntry(value) });
      }
    }
    // Check every name against the zones it will be in before changing anything.
    const present = (key: string): boolean => {
      const change = zoneChanges.get(key);
      return change === undefined ? this.held.has(key) : change.info !== null;
    };
    const zoneFor = (name: CheckedName): string => {
      for (const key of [...zoneChanges.keys(), ...this.held.keys()]) {
        if (isSubdomainKey(name.key, key) && present(key)) return key;
      }
      return corrupt(`block ${height} changes ${name.text}, which is in no zone`);
    };
    const placed = nameChanges.map((change) => ({ ...change, zone: zoneFor(change.name) }));
    const dirty = this.dirty;
    for (const [key, { apex, info }] of zoneChanges) {
      dirty.add(key);
      if (info === null) this.held.delete(key);
      else {
        const held = this.held.get(key);
        if (held === undefined) this.held.set(key, { apex, info, names: new Map() });
        else held.info = info;
      }
    }
    for (const { name, entry, zone } of placed) {
      const held = this.held.get(zone)!;
      if (entry === null) held.names.delete(name.key);
      else held.names.set(name.key, entry);
      dirty.add(zone);
    }
    this.current = height;
    if (options.compile === false) {
      return { height, rebuilt: [], failed: [], pending: this.pending() };
    }
    return this.compile();
  }

  /**
   * Marks the zone at `apex` for compilation by the next `compile()` or `applyBlock` (its
   * `overlay` records changed). False when no such zone is held.
   */
  touch(apex: string): boolean {
    const key = nameKey(apex);
    if (!this.held.has(key)) return false;
    this.dirty.add(key);
    return true;
  }

  /** Apexes changed since they were last compiled. */
  pending(): string[] {
    return [...this.dirty].map((key) => nameFromKey(key).text);
  }

  /** Compiles every zone changed since its last compilation and swaps it in. */
  compile(): ZoneRefresh {
    const rebuilt: string[] = [];
    const failed: string[] = [];
    for (const key of this.dirty) {
      const apex = nameFromKey(key).text;
      if (!this.held.has(key)) {
        this.zoneSet.delete(apex);
        this.failing.delete(apex);
        rebuilt.push(apex);
      } else if (this.compileZone(key)) rebuilt.push(apex);
      else failed.push(apex);
    }
    this.dirty.clear();
    return { height: this.current ?? 0, rebuilt, failed, pending: [] };
  }

  /** Compiles a held zone and swaps it in; on failure keeps the zone served before. */
  private compileZone(key: string): boolean {
    const zone = this.held.get(key)!;
    const apex = zone.apex.text;
    try {
      const extra = this.overlay?.(apex) ?? [];
      const records = [
        ...zoneRecords(
          apex,
          zone.info,
          extra.length === 0 ? zone.names : outside(zone.names, extra),
        ),
        ...extra,
      ];
      this.zoneSet.set(MemoryZone.build(apex, records, this.buildOptions?.(apex)));
      this.failing.delete(apex);
      return true;
    } catch (error) {
      this.failing.set(apex, error instanceof Error ? error : new Error(String(error)));
      return false;
    }
  }
}
