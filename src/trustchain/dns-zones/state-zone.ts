import type { ModuleStateReader } from '../../consensus/application/module.js';
import { RR_TYPES, isSubdomainKey, keyToWire, parentKey } from '../dns/index.js';
import type { ZoneTree, ZoneTreeNode } from '../dns/index.js';
import type { NameEntry, StoredRRset } from './model.js';
import { readDataBelow, readNameEntry } from './state.js';

/**
 * One zone of the `dns` module's state as the DNS core's `lookupName` walks it, so a reader of
 * state (the `ca` module's CAA check) sees the names a DNS query sees: the ones the servers
 * compile (`ConsensusZones`, `MemoryZone.build`). A name exists when it holds records, or when a
 * name below it does (an empty non-terminal), and the apex always does (SOA, NS). A registered
 * name without records is not a name of the compiled zone, so it exists only as a non-terminal.
 * (Records a node adds from the service catalog, `overlay`, are not in `dns` state: their names
 * have underscore labels, `_web.hypermesh`, below which no certificate name lies.)
 *
 * Reads only, through `state`; remembers what it read, so it lives for one decision on one
 * state. Whether a name exists costs one read of its entry and, for a name without records, one
 * of `dns/data-below` (the count the module keeps of the names below holding records), so a
 * lookup reads at most two keys per name it visits, however large the zone.
 */

/** A name that exists in the zone, with its entry (null for an apex without records of its own). */
export class StateZoneNode implements ZoneTreeNode<StateZoneNode> {
  constructor(
    private readonly tree: StateZoneTree,
    /** The DNS core key. */
    readonly key: string,
    readonly entry: NameEntry | null,
    readonly delegation: boolean,
  ) {}

  get wildcard(): StateZoneNode | undefined {
    return this.tree.node(`\x01*${this.key}`);
  }

  /** The RRset of `type` held here (a synthesised answer takes the wildcard node's). */
  rrset(type: number): StoredRRset | undefined {
    return this.entry?.rrsets.find((set) => set.type === type);
  }
}

function holdsData(entry: NameEntry | null): entry is NameEntry {
  return entry !== null && entry.rrsets.length > 0;
}

export class StateZoneTree implements ZoneTree<StateZoneNode> {
  /** Unknown without reading every name: the walk looks at each ancestor for a cut. */
  readonly hasDelegations = true;
  private readonly nodes = new Map<string, StateZoneNode | null>();
  private readonly entries = new Map<string, NameEntry | null>();

  constructor(
    private readonly state: ModuleStateReader,
    /** The DNS core key of the zone's apex (a zone of `dns/zones`). */
    readonly apexKey: string,
  ) {}

  node(key: string): StateZoneNode | undefined {
    const known = this.nodes.get(key);
    if (known !== undefined) return known ?? undefined;
    let node: StateZoneNode | null = null;
    if (isSubdomainKey(key, this.apexKey)) {
      const entry = this.entry(key);
      const apex = key === this.apexKey;
      if (apex || holdsData(entry) || this.dataBelow(key)) {
        const delegation = !apex && entry?.rrsets.some((set) => set.type === RR_TYPES.NS) === true;
        node = new StateZoneNode(this, key, entry, delegation);
      }
    }
    this.nodes.set(key, node);
    return node ?? undefined;
  }

  /**
   * Whether `*.y` holds records for some `y` strictly above `key`, up to the apex. Without one,
   * no query for `key` is answered from a wildcard (RFC 4592 synthesis needs one at the closest
   * encloser, and a wildcard without records of its own synthesises none), so a caller wanting
   * only records may read the name's own entry. Reads one entry per ancestor.
   */
  wildcardDataAbove(key: string): boolean {
    if (key === this.apexKey || !isSubdomainKey(key, this.apexKey)) return false;
    for (let up = parentKey(key); ; up = parentKey(up)) {
      if (holdsData(this.entry(`\x01*${up}`))) return true;
      if (up === this.apexKey) return false;
    }
  }

  /** The entry at `key` (module state `dns/name/<wire>`), or null. */
  entry(key: string): NameEntry | null {
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = readNameEntry(this.state, keyToWire(key));
      this.entries.set(key, entry);
    }
    return entry;
  }

  /** Whether a name strictly below `key` holds records. */
  private dataBelow(key: string): boolean {
    return readDataBelow(this.state, keyToWire(key)) > 0;
  }
}
