import { WireWriter } from './buffer.js';
import { CLASS_IN, RR_TYPES } from './constants.js';
import { DnsError, DnsErrorCode } from './errors.js';
import {
  ROOT_KEY,
  isSubdomainKey,
  isWildcardKey,
  keyLabelOffsets,
  keyToName,
  keyToWire,
  nameKey,
  parentKey,
} from './names.js';
import { MAX_TTL, compareBytes, rdataBytes, recordTypeCode } from './records.js';
import type { ResourceRecord } from './records.js';
import type { ZoneSigner } from './dnssec-zone.js';

/**
 * Zones as the answer engine reads them. `ZoneSource` and `Zone` are the seam: the in-memory
 * zone here is built from records (checked against the zone rules) with every RRset already in
 * wire form, so answering copies bytes. A replicated-state zone can build one `MemoryZone` per
 * committed change and swap it into a `ZoneSet`, or implement `Zone` itself.
 */

/** One RRset, ready to copy into a response. */
export interface RRsetWire {
  readonly type: number;
  readonly ttl: number;
  /** Owner key (lowercase wire form as latin1) and its bytes and label offsets. */
  readonly ownerKey: string;
  readonly ownerWire: Uint8Array;
  readonly ownerOffsets: readonly number[];
  /** Per record: TYPE, CLASS, TTL, RDLENGTH and RDATA, names uncompressed and lowercase. */
  readonly tails: readonly Uint8Array[];
  /** The records, in the order of `tails` (canonical RDATA order). */
  readonly records: readonly ResourceRecord[];
  /** For NS, MX, SRV: the A and AAAA RRsets of the targets this zone holds (additional section). */
  readonly additional: readonly RRsetWire[];
  /** For CNAME: the target's key. */
  readonly target?: string;
}

export interface ZoneNode {
  readonly key: string;
  readonly rrsets: ReadonlyMap<number, RRsetWire>;
  /** The RRsets in ascending type order (for ANY). Empty for an empty non-terminal. */
  readonly ordered: readonly RRsetWire[];
  /** NS here, below the apex: a zone cut (RFC 1034 §4.2.1). */
  readonly delegation: boolean;
  /** The node `*.<this name>`, when the zone has one (RFC 4592 §3.3.1 source of synthesis). */
  readonly wildcard: ZoneNode | undefined;
}

export interface Zone {
  /** The apex, lowercase presentation text. */
  readonly apex: string;
  readonly apexKey: string;
  readonly soa: RRsetWire;
  /** The SOA with TTL min(SOA TTL, MINIMUM) for negative answers (RFC 2308 §3). */
  readonly negativeSoa: RRsetWire;
  /** Whether any name below the apex has NS (if not, lookups skip the walk for cuts). */
  readonly hasDelegations: boolean;
  /** The node at `key` (a name with data or an empty non-terminal), if it exists. */
  node(key: string): ZoneNode | undefined;
  /** Present when the zone is signed: RRSIGs and NSEC proofs for queries with DO (RFC 4035 §3). */
  readonly dnssec?: ZoneSignatures;
}

/** What the answer engine asks of a signed zone (`ZoneSigner.attach` makes one). */
export interface ZoneSignatures {
  /**
   * The RRSIG of `set` as TYPE, CLASS, TTL, RDLENGTH and RDATA (the owner is written by the
   * engine), or undefined when the RRset is not signed (glue, a delegation's NS).
   */
  rrsig(set: RRsetWire): Uint8Array | undefined;
  /**
   * The NSEC RRset whose owner is `key` or the closest before it in canonical order (RFC 4034
   * §6.1): for a name that does not exist, the NSEC that covers it (RFC 4035 §3.1.3.2).
   */
  covering(key: string): RRsetWire | undefined;
}

export interface ZoneBuildOptions {
  /**
   * Signs the zone (docs/dns.md, DNSSEC): the signer adds the DNSKEY and NSEC records and
   * answers carry RRSIGs when the query sets DO. Pass the same signer to every build of the
   * zone so unchanged RRsets keep their signatures.
   */
  readonly signer?: ZoneSigner;
}

export interface ZoneSource {
  /**
   * The zone with the longest apex that is `key` or an ancestor of it. With `parentSide`, a
   * zone whose apex is `key` itself is skipped (DS lives in the parent, RFC 4035 §3.1.4.1).
   */
  findZone(key: string, parentSide?: boolean): Zone | undefined;
  /**
   * A number that changes whenever an answer from this source may change (a zone added,
   * replaced or removed). The UDP server caches responses only for a source that has it, and
   * drops its cache when it changes.
   */
  readonly generation?: number;
}

/** Types that may sit next to a CNAME (RFC 4035 §2.5). */
const CNAME_COMPANIONS = new Set<number>([RR_TYPES.CNAME, RR_TYPES.RRSIG, RR_TYPES.NSEC]);
/** Types allowed at a zone cut; A and AAAA there are glue. */
const AT_CUT = new Set<number>([
  RR_TYPES.NS,
  RR_TYPES.DS,
  RR_TYPES.RRSIG,
  RR_TYPES.NSEC,
  RR_TYPES.A,
  RR_TYPES.AAAA,
]);
const GLUE = new Set<number>([RR_TYPES.A, RR_TYPES.AAAA]);

function zoneError(code: DnsErrorCode, message: string, detail: Record<string, unknown>): DnsError {
  return new DnsError(code, message, detail);
}

interface Entry {
  readonly rr: ResourceRecord;
  readonly rdata: Uint8Array;
}

interface MutableNode extends ZoneNode {
  rrsets: Map<number, RRsetWire>;
  ordered: RRsetWire[];
  delegation: boolean;
  wildcard: ZoneNode | undefined;
  occluded: boolean;
}

function tailOf(type: number, ttl: number, rdata: Uint8Array): Uint8Array {
  const w = new WireWriter(10 + rdata.length);
  w.u16(type);
  w.u16(CLASS_IN);
  w.u32(ttl);
  w.u16(rdata.length);
  w.bytes(rdata);
  return w.finish();
}

function targetName(rr: ResourceRecord): string | undefined {
  switch (rr.type) {
    case 'NS':
      return rr.data.host;
    case 'MX':
      return rr.data.exchange;
    case 'SRV':
      return rr.data.target;
    case 'CNAME':
      return rr.data.target;
    default:
      return undefined;
  }
}

export class MemoryZone implements Zone {
  readonly apex: string;
  readonly apexKey: string;
  readonly soa: RRsetWire;
  readonly negativeSoa: RRsetWire;
  readonly hasDelegations: boolean;
  /** Every record, owners and RDATA names as given; RRsets in canonical order. */
  readonly records: readonly ResourceRecord[];
  readonly dnssec: ZoneSignatures | undefined;
  private readonly nodes: Map<string, MutableNode>;

  private constructor(
    apexKey: string,
    nodes: Map<string, MutableNode>,
    soa: RRsetWire,
    negativeSoa: RRsetWire,
    records: ResourceRecord[],
    signer: ZoneSigner | undefined,
  ) {
    this.apexKey = apexKey;
    this.apex = keyToName(apexKey);
    this.nodes = nodes;
    this.soa = soa;
    this.negativeSoa = negativeSoa;
    this.records = records;
    this.hasDelegations = [...nodes.values()].some((node) => node.delegation);
    this.dnssec = signer?.attach(apexKey, nodes.values(), negativeSoa);
  }

  node(key: string): ZoneNode | undefined {
    return this.nodes.get(key);
  }

  /**
   * Checks `records` against the zone rules and compiles them. Throws `DnsError`: RECORD_INVALID
   * (bad data, class other than IN, TTL above 2^31-1), ZONE_OUT_OF_ZONE, ZONE_NO_SOA,
   * ZONE_MULTIPLE_SOA, ZONE_SOA_NOT_AT_APEX, ZONE_NO_APEX_NS, ZONE_CNAME_CONFLICT,
   * ZONE_TTL_MISMATCH, ZONE_DUPLICATE_RECORD, ZONE_OCCLUDED_DATA, ZONE_DS_NOT_AT_DELEGATION;
   * with a signer, `DnssecError` APEX_MISMATCH and GENERATED_TYPE (RRSIG or NSEC given).
   */
  static build(
    apex: string,
    given: readonly ResourceRecord[],
    options: ZoneBuildOptions = {},
  ): MemoryZone {
    const apexKey = nameKey(apex);
    const signer = options.signer;
    signer?.checkApex(apexKey);
    const records = signer === undefined ? given : signer.zoneRecords(given);
    const apexText = keyToName(apexKey);
    const byOwner = new Map<string, Map<number, Entry[]>>();
    for (const rr of records) {
      const type = recordTypeCode(rr);
      const key = nameKey(rr.name);
      const detail = { name: rr.name, type: rr.type };
      if (rr.class !== CLASS_IN) {
        throw zoneError(
          DnsErrorCode.RECORD_INVALID,
          `${rr.name} ${rr.type}: class ${rr.class}, zones hold class IN (1) only`,
          detail,
        );
      }
      if (!Number.isInteger(rr.ttl) || rr.ttl < 0 || rr.ttl > MAX_TTL) {
        throw zoneError(
          DnsErrorCode.RECORD_INVALID,
          `${rr.name} ${rr.type}: TTL ${rr.ttl} is not in 0..${MAX_TTL}`,
          detail,
        );
      }
      if (!isSubdomainKey(key, apexKey)) {
        throw zoneError(
          DnsErrorCode.ZONE_OUT_OF_ZONE,
          `${rr.name} is not in zone ${apexText}`,
          detail,
        );
      }
      let types = byOwner.get(key);
      if (types === undefined) byOwner.set(key, (types = new Map()));
      let entries = types.get(type);
      if (entries === undefined) types.set(type, (entries = []));
      entries.push({ rr, rdata: rdataBytes(rr, true) });
    }

    const apexTypes = byOwner.get(apexKey);
    const cuts = new Set<string>();
    for (const [key, types] of byOwner) {
      const owner = keyToName(key);
      if (types.has(RR_TYPES.SOA) && key !== apexKey) {
        throw zoneError(
          DnsErrorCode.ZONE_SOA_NOT_AT_APEX,
          `SOA at ${owner}, below the apex ${apexText}`,
          { name: owner },
        );
      }
      if (types.has(RR_TYPES.CNAME)) {
        const cnames = types.get(RR_TYPES.CNAME)!.length;
        const others = [...types.keys()].filter((t) => !CNAME_COMPANIONS.has(t));
        if (cnames > 1 || others.length > 0) {
          throw zoneError(
            DnsErrorCode.ZONE_CNAME_CONFLICT,
            cnames > 1
              ? `${owner}: ${cnames} CNAME records; a name has at most one`
              : `${owner}: CNAME next to other data (types ${others.join(', ')})`,
            { name: owner },
          );
        }
      }
      if (isWildcardKey(key) && (types.has(RR_TYPES.NS) || types.has(RR_TYPES.DS))) {
        // RFC 4592 §4.2: NS at a wildcard owner is undefined; as a cut it would both synthesise
        // answers and refer (unsigned glue served as authoritative, NSEC proofs validators
        // reject).
        const type = types.has(RR_TYPES.NS) ? 'NS' : 'DS';
        throw zoneError(
          DnsErrorCode.RECORD_INVALID,
          `${owner} ${type}: a wildcard cannot be a delegation (RFC 4592 §4.2)`,
          { name: owner, type },
        );
      }
      if (key !== apexKey && types.has(RR_TYPES.NS)) cuts.add(key);
      for (const [type, entries] of types) {
        const sorted = [...entries].sort((a, b) => compareBytes(a.rdata, b.rdata));
        for (let i = 1; i < sorted.length; i++) {
          if (compareBytes(sorted[i - 1]!.rdata, sorted[i]!.rdata) === 0) {
            throw zoneError(
              DnsErrorCode.ZONE_DUPLICATE_RECORD,
              `${owner} ${sorted[i]!.rr.type}: the same record twice`,
              { name: owner, type: sorted[i]!.rr.type },
            );
          }
        }
        const ttl = entries[0]!.rr.ttl;
        const odd = entries.find((entry) => entry.rr.ttl !== ttl);
        if (odd !== undefined) {
          throw zoneError(
            DnsErrorCode.ZONE_TTL_MISMATCH,
            `${owner} ${odd.rr.type}: TTLs ${ttl} and ${odd.rr.ttl} in one RRset (RFC 2181 §5.2)`,
            { name: owner, type: odd.rr.type },
          );
        }
        types.set(type, sorted);
      }
    }
    const soaEntries = apexTypes?.get(RR_TYPES.SOA);
    if (soaEntries === undefined) {
      throw zoneError(DnsErrorCode.ZONE_NO_SOA, `zone ${apexText}: no SOA at the apex`, {
        name: apexText,
      });
    }
    if (soaEntries.length > 1) {
      throw zoneError(
        DnsErrorCode.ZONE_MULTIPLE_SOA,
        `zone ${apexText}: ${soaEntries.length} SOA records`,
        { name: apexText },
      );
    }
    if (!apexTypes!.has(RR_TYPES.NS)) {
      throw zoneError(DnsErrorCode.ZONE_NO_APEX_NS, `zone ${apexText}: no NS at the apex`, {
        name: apexText,
      });
    }

    // Cuts: what sits at or below one, and DS only at one.
    const cutAbove = (key: string): string | undefined => {
      let found: string | undefined;
      for (let k = key; k !== apexKey; k = parentKey(k)) if (cuts.has(k)) found = k;
      return found;
    };
    const occluded = new Set<string>();
    for (const [key, types] of byOwner) {
      const owner = keyToName(key);
      if (types.has(RR_TYPES.DS) && !cuts.has(key)) {
        throw zoneError(
          DnsErrorCode.ZONE_DS_NOT_AT_DELEGATION,
          `${owner}: DS outside a delegation point`,
          { name: owner },
        );
      }
      const cut = cutAbove(key);
      if (cut === undefined) continue;
      const allowed = cut === key ? AT_CUT : GLUE;
      const bad = [...types.values()].find(
        (entries) => !allowed.has(recordTypeCode(entries[0]!.rr)),
      );
      if (bad !== undefined) {
        throw zoneError(
          DnsErrorCode.ZONE_OCCLUDED_DATA,
          `${owner} ${bad[0]!.rr.type}: ${cut === key ? 'at' : 'below'} the delegation ${keyToName(cut)}, where only ${cut === key ? 'NS, DS and A/AAAA glue' : 'A/AAAA glue'} may be`,
          { name: owner, type: bad[0]!.rr.type, delegation: keyToName(cut) },
        );
      }
      occluded.add(key);
    }

    // Nodes, with empty non-terminals between each name and the apex.
    const nodes = new Map<string, MutableNode>();
    const nodeAt = (key: string): MutableNode => {
      let node = nodes.get(key);
      if (node === undefined) {
        node = {
          key,
          rrsets: new Map(),
          ordered: [],
          delegation: cuts.has(key),
          wildcard: undefined,
          occluded: occluded.has(key) && !cuts.has(key),
        };
        nodes.set(key, node);
      }
      return node;
    };
    const sets: Array<{
      node: MutableNode;
      set: RRsetWire & { additional: RRsetWire[] };
      targets: string[];
    }> = [];
    const all: ResourceRecord[] = [];
    for (const [key, types] of byOwner) {
      for (let k = key; ; k = parentKey(k)) {
        nodeAt(k);
        if (k === apexKey || k === ROOT_KEY) break;
      }
      const node = nodeAt(key);
      const ownerWire = keyToWire(key);
      const ownerOffsets = keyLabelOffsets(key);
      for (const type of [...types.keys()].sort((a, b) => a - b)) {
        const entries = types.get(type)!;
        const ttl = entries[0]!.rr.ttl;
        const targets = entries
          .map((entry) => targetName(entry.rr))
          .filter((t): t is string => t !== undefined)
          .map(nameKey);
        const set: RRsetWire & { additional: RRsetWire[] } = {
          type,
          ttl,
          ownerKey: key,
          ownerWire,
          ownerOffsets,
          tails: entries.map((entry) => tailOf(type, ttl, entry.rdata)),
          records: entries.map((entry) => entry.rr),
          additional: [],
          ...(type === RR_TYPES.CNAME ? { target: targets[0]! } : {}),
        };
        node.rrsets.set(type, set);
        node.ordered.push(set);
        all.push(...set.records);
        if (type === RR_TYPES.NS || type === RR_TYPES.MX || type === RR_TYPES.SRV)
          sets.push({ node, set, targets });
      }
    }
    for (const node of nodes.values()) {
      node.wildcard = node.delegation ? undefined : nodes.get(`\x01*${node.key}`);
    }
    // Additional-section data: addresses of targets in this zone; glue only for a delegation.
    for (const { node, set, targets } of sets) {
      for (const target of new Set(targets)) {
        const targetNode = nodes.get(target);
        if (targetNode === undefined || (targetNode.occluded && !node.delegation)) continue;
        if (targetNode.delegation && !node.delegation) continue;
        for (const type of [RR_TYPES.A, RR_TYPES.AAAA]) {
          const addresses = targetNode.rrsets.get(type);
          if (addresses !== undefined) set.additional.push(addresses);
        }
      }
    }
    const soa = nodes.get(apexKey)!.rrsets.get(RR_TYPES.SOA)!;
    const soaRecord = soa.records[0]!;
    const minimum = soaRecord.type === 'SOA' ? soaRecord.data.minimum : soa.ttl;
    const negativeTtl = Math.min(soa.ttl, minimum);
    const negativeSoa: RRsetWire = {
      ...soa,
      ttl: negativeTtl,
      tails: [tailOf(RR_TYPES.SOA, negativeTtl, soa.tails[0]!.subarray(10))],
    };
    return new MemoryZone(apexKey, nodes, soa, negativeSoa, all, signer);
  }
}

/** The zones one server is authoritative for. */
export class ZoneSet implements ZoneSource {
  private readonly zones = new Map<string, Zone>();
  private changes = 0;

  constructor(zones: Iterable<Zone> = []) {
    for (const zone of zones) {
      if (this.zones.has(zone.apexKey)) {
        throw zoneError(DnsErrorCode.ZONE_DUPLICATE_APEX, `zone ${zone.apex} given twice`, {
          name: zone.apex,
        });
      }
      this.zones.set(zone.apexKey, zone);
    }
  }

  /** Adds `zone`, or replaces the zone with the same apex (one atomic swap for the answer path). */
  set(zone: Zone): void {
    this.zones.set(zone.apexKey, zone);
    this.changes++;
  }

  delete(apex: string): boolean {
    const deleted = this.zones.delete(nameKey(apex));
    if (deleted) this.changes++;
    return deleted;
  }

  /** Counts `set` and successful `delete` calls (see `ZoneSource.generation`). */
  get generation(): number {
    return this.changes;
  }

  get(apex: string): Zone | undefined {
    return this.zones.get(nameKey(apex));
  }

  get size(): number {
    return this.zones.size;
  }

  findZone(key: string, parentSide = false): Zone | undefined {
    let k = key;
    if (parentSide) {
      if (k === ROOT_KEY) return undefined;
      k = parentKey(k);
    }
    for (;;) {
      const zone = this.zones.get(k);
      if (zone !== undefined) return zone;
      if (k === ROOT_KEY) return undefined;
      k = parentKey(k);
    }
  }
}
