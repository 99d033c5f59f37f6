import { INITIAL_HEIGHT } from '../../consensus/application/index.js';
import type { ModuleStateReader } from '../../consensus/application/module.js';
import type { StateChange } from '../../storage/index.js';
import {
  CLASS_IN,
  MAX_TTL,
  MemoryZone,
  ZoneSet,
  isSubdomainKey,
  nameKey,
  rdataBytes,
} from '../dns/index.js';
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
   * What a second source publishes in the zone at `apex` (the service catalog's SRV and address
   * records, docs/discovery.md "DNS"), compiled together with the zone's own names: see
   * `OverlayService` for which of the two gives way where they meet. Call `touch(apex)` when the
   * source's records change.
   */
  readonly overlay?: (apex: string) => readonly OverlayService[];
}

/**
 * One service of the overlay: records at or below its `subtrees` (each name with the names below
 * it). The zone's own names win over a service that is not `reserved`: none of its records is
 * compiled if one of the zone's names is at or below one of its subtrees, or if a name strictly
 * between a subtree and the apex holds NS, DS or DNAME (it would occlude or redirect the
 * service's names); the zone's names are never changed for it. A `reserved` service wins over
 * the zone's names: those at or below its subtrees are left out, and NS and DS at names between
 * its subtrees and the apex are stripped. A record not at or below one of the service's subtrees,
 * or that is not a valid record of the zone (a name too long, a bad target), is left out, so no
 * one record stops the zone compiling.
 */
export interface OverlayService {
  /** Names strictly below the apex. */
  readonly subtrees: readonly string[];
  readonly reserved: boolean;
  readonly records: readonly ResourceRecord[];
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
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

/** RR types that hide or redirect the names below their owner: the cuts and DNAME (RFC 6672). */
const SHADOW_TYPES: ReadonlySet<number> = new Set([...CUT_TYPES, 39]);

/** The DNS core key of `name`, or undefined if it is not a name (a label or the whole too long). */
function keyOf(name: string): string | undefined {
  try {
    return nameKey(name);
  } catch {
    return undefined;
  }
}

/** Whether `record` is a valid record at or below one of `subtrees` (DNS core keys). */
function fits(record: ResourceRecord, subtrees: ReadonlySet<string>): boolean {
  const key = keyOf(record.name);
  if (key === undefined || record.class !== CLASS_IN) return false;
  if (!Number.isInteger(record.ttl) || record.ttl < 0 || record.ttl > MAX_TTL) return false;
  if (!keyLabelOffsets(key).some((offset) => subtrees.has(key.slice(offset)))) return false;
  try {
    rdataBytes(record, true);
    return true;
  } catch {
    return false;
  }
}

interface Claim {
  readonly subtrees: ReadonlySet<string>;
  readonly service: OverlayService;
  readonly records: readonly ResourceRecord[];
}

/** The overlay's services as claims on the zone at `apexKey`, without what cannot go into it. */
function claimsOf(apexKey: string, services: readonly OverlayService[]): Claim[] {
  const claims: Claim[] = [];
  for (const service of services) {
    const subtrees = new Set<string>();
    for (const subtree of service.subtrees) {
      const key = keyOf(subtree);
      if (key !== undefined && key !== apexKey && isSubdomainKey(key, apexKey)) subtrees.add(key);
    }
    const records = service.records.filter((record) => fits(record, subtrees));
    if (records.length > 0) claims.push({ subtrees, service, records });
  }
  return claims;
}

/**
 * The claims by the names they are about: `at` by each subtree (a name at or below it meets the
 * claim), `between` by each name strictly between a subtree and the apex (a cut or DNAME there
 * would hide the subtree).
 */
function claimIndex(
  apexKey: string,
  claims: readonly Claim[],
): { at: Map<string, Claim[]>; between: Map<string, Claim[]> } {
  const at = new Map<string, Claim[]>();
  const between = new Map<string, Claim[]>();
  const add = (index: Map<string, Claim[]>, key: string, claim: Claim): void => {
    const listed = index.get(key);
    if (listed === undefined) index.set(key, [claim]);
    else if (!listed.includes(claim)) listed.push(claim);
  };
  for (const claim of claims) {
    for (const key of claim.subtrees) {
      add(at, key, claim);
      for (const offset of keyLabelOffsets(key)) {
        if (offset > 0 && key.length - offset > apexKey.length) {
          add(between, key.slice(offset), claim);
        }
      }
    }
  }
  return { at, between };
}

/** The claims of `index.at` that `key` is at or below. */
function claimsAbove(key: string, at: ReadonlyMap<string, Claim[]>): Claim[] {
  return keyLabelOffsets(key).flatMap((offset) => at.get(key.slice(offset)) ?? []);
}

/**
 * The zone's names and the overlay's records that are compiled together (see `OverlayService`).
 * First the reserved services take their names: an NS at `_hypermesh-node.<zone>` would turn the
 * live instance `v1._hypermesh-node.<zone>` into glue answered by the delegate's server, and an
 * NS at `_stoq.<zone>` would occlude the SRV records at `_hypermesh-node._stoq.<zone>` and stop
 * the zone compiling. Every other service is compiled only if none of the zone's names (as
 * registered, whatever a reserved service left out) meets it: the `dns` module's names are their
 * owners' (docs/dns.md "Ownership"), and a service that gives way is still in the catalog.
 */
function combine(
  apexKey: string,
  names: ReadonlyMap<string, NameEntry>,
  services: readonly OverlayService[],
): { names: Map<string, NameEntry>; records: ResourceRecord[] } {
  const claims = claimsOf(apexKey, services);
  const reserved = claimIndex(
    apexKey,
    claims.filter((claim) => claim.service.reserved),
  );
  const others = claimIndex(
    apexKey,
    claims.filter((claim) => !claim.service.reserved),
  );
  const kept = new Map<string, NameEntry>();
  const hidden = new Set<Claim>();
  for (const [key, entry] of names) {
    for (const claim of claimsAbove(key, others.at)) hidden.add(claim);
    if (entry.rrsets.some((set) => SHADOW_TYPES.has(set.type))) {
      for (const claim of others.between.get(key) ?? []) hidden.add(claim);
    }
    if (claimsAbove(key, reserved.at).length > 0) continue;
    kept.set(
      key,
      reserved.between.has(key) && entry.rrsets.some((set) => CUT_TYPES.has(set.type))
        ? { ...entry, rrsets: entry.rrsets.filter((set) => !CUT_TYPES.has(set.type)) }
        : entry,
    );
  }
  return {
    names: kept,
    records: claims.filter((claim) => !hidden.has(claim)).flatMap((claim) => claim.records),
  };
}

export class ConsensusZones implements ZoneSource {
  private readonly held = new Map<string, HeldZone>();
  private readonly failing = new Map<string, Error>();
  private readonly overlayFailing = new Map<string, Error>();
  /** Zones changed since they were last compiled (or removed), by DNS core key. */
  private readonly dirty = new Set<string>();
  private current: number | null;

  private constructor(
    /** The set the servers read; zones are swapped into it. */
    readonly zoneSet: ZoneSet,
    height: number | null,
    private readonly buildOptions: ((apex: string) => ZoneBuildOptions) | undefined,
    private readonly overlay: ((apex: string) => readonly OverlayService[]) | undefined,
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

  /**
   * Zones served without their overlay at their last compilation, by apex, with the reason (the
   * zone compiled only without it).
   */
  get overlayFailures(): ReadonlyMap<string, Error> {
    return this.overlayFailing;
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
        this.overlayFailing.delete(apex);
        rebuilt.push(apex);
      } else if (this.compileZone(key)) rebuilt.push(apex);
      else failed.push(apex);
    }
    this.dirty.clear();
    return { height: this.current ?? 0, rebuilt, failed, pending: [] };
  }

  /**
   * Compiles a held zone and swaps it in; on failure keeps the zone served before. If the zone
   * compiles only without its overlay, it is served without it (see `overlayFailures`): the
   * overlay never holds back the zone's own changes.
   */
  private compileZone(key: string): boolean {
    const zone = this.held.get(key)!;
    const apex = zone.apex.text;
    const build = (
      names: ReadonlyMap<string, NameEntry>,
      extra: readonly ResourceRecord[],
    ): MemoryZone =>
      MemoryZone.build(
        apex,
        [...zoneRecords(apex, zone.info, names), ...extra],
        this.buildOptions?.(apex),
      );
    this.overlayFailing.delete(apex);
    let overlayError: Error | undefined;
    if (this.overlay !== undefined) {
      try {
        const combined = combine(key, zone.names, this.overlay(apex));
        this.zoneSet.set(build(combined.names, combined.records));
        this.failing.delete(apex);
        return true;
      } catch (error) {
        overlayError = asError(error);
      }
    }
    try {
      this.zoneSet.set(build(zone.names, []));
    } catch (error) {
      this.failing.set(apex, asError(error));
      return false;
    }
    this.failing.delete(apex);
    if (overlayError !== undefined) this.overlayFailing.set(apex, overlayError);
    return true;
  }
}
