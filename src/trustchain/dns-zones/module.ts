import type {
  CheckContext,
  ExecutionContext,
  Module,
  ModuleQueryAnswer,
  ModuleState,
  ModuleStateReader,
} from '../../consensus/application/module.js';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { DnsError, RR_TYPES, isSubdomainKey, parentKey, typeName } from '../dns/index.js';
import { DnsZonesError, DnsZonesErrorCode } from './errors.js';
import {
  DNS_ZONES_MODULE_NAME,
  MAX_NAMES_PER_OWNER,
  MAX_NAMES_PER_ZONE,
  MAX_NAME_RDATA_BYTES,
  MAX_RECORDS_PER_NAME,
  MAX_ZONES,
} from './model.js';
import type {
  DnsZonesTx,
  NameEntry,
  NameRegisterTx,
  NameReleaseTx,
  NameTransferTx,
  RecordsDeleteTx,
  RecordsSetTx,
  StoredRRset,
  ZoneCreateTx,
  ZoneInfo,
  ZoneUpdateTx,
} from './model.js';
import { anyName, checkName, isWildcard, keysBetween, nameFromKey, nameFromWire } from './names.js';
import type { CheckedName } from './names.js';
import { checkRecordType } from './rules.js';
import {
  Registry,
  ZONES_KEY,
  indexKey,
  invariant,
  nameEntryKey,
  ownerKey,
  zoneKey,
} from './state.js';
import type { FoundZone } from './state.js';
import { decodeDnsZonesBody } from './body.js';

/** Query paths of the module (`dns/<path>`). */
export const NAME_QUERY = 'name';
export const ZONE_QUERY = 'zone';
export const ZONES_QUERY = 'zones';
export const OWNER_QUERY = 'owner';
/** `dns/index`: one bucket of a zone's name index; data = the bucket byte, then the apex text. */
export const INDEX_QUERY = 'index';

const C = DnsZonesErrorCode;

function refuse(
  code: DnsZonesErrorCode,
  message: string,
  detail: Record<string, unknown> = {},
): never {
  throw new DnsZonesError(code, message, detail);
}

const isAdmin = (zone: ZoneInfo, key: Uint8Array): boolean =>
  zone.admins.some((admin) => bytesEqual(admin, key));

function zoneOf(registry: Registry, name: CheckedName): FoundZone {
  return (
    registry.zoneOf(name) ??
    refuse(C.NOT_IN_ZONE, `${name.text} is in no zone this cluster holds`, { name: name.text })
  );
}

/** Rewrites the zone with its serial set to this height (every applied change does). */
function touch(registry: Registry, found: FoundZone, changes: Partial<ZoneInfo> = {}): void {
  registry.putZone(found.apex, { ...found.zone, ...changes });
}

function zoneCreate(registry: Registry, tx: ZoneCreateTx, sender: Uint8Array): void {
  const apex = checkName(tx.apex, 'apex');
  const apexes = registry.apexes();
  const creator = apexes.some((wire) => {
    const zone = registry.zone(wire);
    return zone !== null && zone.kind === 'cluster' && isAdmin(zone, sender);
  });
  if (!creator) {
    refuse(
      C.NOT_ZONE_ADMIN,
      `zone-create ${apex.text}: only an admin of a cluster zone may create zones`,
      {
        name: apex.text,
      },
    );
  }
  for (const wire of apexes) {
    const other = nameFromWire(wire);
    if (other.key === apex.key)
      refuse(C.ZONE_EXISTS, `zone ${apex.text} exists`, { name: apex.text });
    if (isSubdomainKey(apex.key, other.key) || isSubdomainKey(other.key, apex.key)) {
      refuse(C.ZONE_OVERLAP, `zone ${apex.text} would overlap zone ${other.text}`, {
        name: apex.text,
        zone: other.text,
      });
    }
  }
  if (apexes.length >= MAX_ZONES) {
    refuse(C.ZONE_LIMIT, `zone-create ${apex.text}: ${MAX_ZONES} zones, the limit`, {
      limit: MAX_ZONES,
    });
  }
  const { op: _op, ...params } = tx;
  registry.putZone(apex, {
    ...params,
    kind: 'delegated',
    serial: 0, // putZone sets it to this height
    createdAt: registry.height,
    names: 0,
  });
}

function zoneUpdate(registry: Registry, tx: ZoneUpdateTx, sender: Uint8Array): void {
  const apex = checkName(tx.apex, 'apex');
  const zone = registry.zone(apex.wire);
  if (zone === null)
    refuse(C.NO_SUCH_ZONE, `zone ${apex.text} does not exist`, { name: apex.text });
  if (!isAdmin(zone, sender)) {
    refuse(C.NOT_ZONE_ADMIN, `zone-update ${apex.text}: the sender is not an admin of the zone`, {
      name: apex.text,
    });
  }
  const { op: _op, ...params } = tx;
  registry.putZone(apex, { ...zone, ...params });
}

/**
 * Who controls registrations under `name` (strictly below it): the owner of the closest
 * registered name at or above it below the apex, or the zone's admins if there is none.
 */
function controllerOf(
  registry: Registry,
  found: FoundZone,
  name: CheckedName,
): Uint8Array | 'admins' {
  if (name.key === found.apex.key) return 'admins';
  for (const key of [name.key, ...keysBetween(name.key, found.apex.key)]) {
    const entry = registry.entry(nameFromKey(key));
    if (entry !== null) return entry.owner ?? invariantOwner(key);
  }
  return 'admins';
}

/**
 * Keeps the registered-name counts of the name's ancestors (below the apex) right when a name
 * owned by `owner` is registered (1) or released (-1).
 */
function countRegistered(
  registry: Registry,
  found: FoundZone,
  name: CheckedName,
  owner: Uint8Array,
  delta: 1 | -1,
): void {
  for (const key of keysBetween(name.key, found.apex.key))
    registry.adjustNamesBelow(nameFromKey(key), owner, delta);
}

/**
 * Refuses what would put names other keys own under the sender's name: registering above them
 * (unless the sender is a zone admin, who already sets the apex's records) or a delegation over
 * them, which would send their lookups to the sender's name servers and leave their owners able
 * to set only glue (issue 5). Names the sender owns itself do not count.
 */
function refuseOverOthers(
  registry: Registry,
  name: CheckedName,
  sender: Uint8Array,
  what: 'register' | 'delegate',
): void {
  const others = registry.ownedByOthersBelow(name, sender);
  if (others === 0) return;
  refuse(
    C.DESCENDANT_OWNED,
    what === 'register'
      ? `${name.text}: ${others} registered name(s) below it belong to other keys; only the zone's admins may register a name above another key's names`
      : `${name.text} NS: ${others} registered name(s) below it belong to other keys; a delegation would hand their lookups to the sender's name servers`,
    { name: name.text, others },
  );
}

/** A name below an apex always has an owner; only the apex entry has none. */
function invariantOwner(key: string): never {
  return invariant(`the entry of ${nameFromKey(key).text}, below its apex, has no owner`);
}

function nameRegister(registry: Registry, tx: NameRegisterTx, sender: Uint8Array): void {
  const name = checkName(tx.name, 'name');
  const found = zoneOf(registry, name);
  const { apex, zone } = found;
  if (name.key === apex.key)
    refuse(C.IS_APEX, `${name.text} is the apex of its zone; its admins control it`, {
      name: name.text,
    });
  const existing = registry.entry(name);
  if (existing !== null) {
    refuse(
      C.ALREADY_OWNED,
      `${name.text} is registered to ${toHex(existing.owner ?? new Uint8Array())}`,
      {
        name: name.text,
      },
    );
  }
  const parent = nameFromKey(parentKey(name.key));
  const controller = controllerOf(registry, found, parent);
  if (controller === 'admins') {
    if ((isWildcard(name) || zone.policy === 'admins') && !isAdmin(zone, sender)) {
      refuse(
        C.NOT_ZONE_ADMIN,
        isWildcard(name)
          ? `${name.text}: a wildcard directly under unowned names is registered by the zone's admins`
          : `${name.text}: zone ${apex.text} registers names for its admins only`,
        { name: name.text },
      );
    }
  } else if (!bytesEqual(controller, sender)) {
    refuse(
      C.ANCESTOR_OWNED,
      `${name.text}: names below it belong to ${toHex(controller)}; only that key may register them`,
      {
        name: name.text,
        owner: toHex(controller),
      },
    );
  }
  if (!isAdmin(zone, sender)) refuseOverOthers(registry, name, sender, 'register');
  if (zone.names >= MAX_NAMES_PER_ZONE) {
    refuse(C.ZONE_FULL, `zone ${apex.text} has ${MAX_NAMES_PER_ZONE} names, the limit`, {
      limit: MAX_NAMES_PER_ZONE,
    });
  }
  if (registry.ownedNames(sender).length >= MAX_NAMES_PER_OWNER) {
    refuse(C.OWNER_LIMIT, `the sender owns ${MAX_NAMES_PER_OWNER} names, the limit`, {
      owner: toHex(sender),
      limit: MAX_NAMES_PER_OWNER,
    });
  }
  const height = registry.height;
  registry.putEntry(
    apex,
    name,
    { owner: sender, registeredAt: height, updatedAt: height, rrsets: [] },
    true,
  );
  registry.updateOwner(sender, name, true);
  countRegistered(registry, found, name, sender, 1);
  touch(registry, found, { names: zone.names + 1 });
}

/** The registered, non-apex name the sender owns. */
function ownedEntry(
  registry: Registry,
  found: FoundZone,
  name: CheckedName,
  sender: Uint8Array,
  op: string,
): NameEntry {
  if (name.key === found.apex.key)
    refuse(C.IS_APEX, `${op} ${name.text}: the apex belongs to the zone's admins`, {
      name: name.text,
    });
  const entry = registry.entry(name);
  if (entry === null)
    refuse(C.NOT_REGISTERED, `${op} ${name.text}: the name is not registered`, { name: name.text });
  if (entry.owner === null || !bytesEqual(entry.owner, sender)) {
    refuse(
      C.NOT_OWNER,
      `${op} ${name.text}: the name belongs to ${toHex(entry.owner ?? new Uint8Array())}, not to the sender`,
      {
        name: name.text,
      },
    );
  }
  return entry;
}

function nameTransfer(registry: Registry, tx: NameTransferTx, sender: Uint8Array): void {
  const name = checkName(tx.name, 'name');
  const found = zoneOf(registry, name);
  const entry = ownedEntry(registry, found, name, sender, 'name-transfer');
  if (bytesEqual(tx.recipient, sender))
    refuse(C.SELF_TRANSFER, `name-transfer ${name.text}: the recipient already owns it`, {
      name: name.text,
    });
  if (registry.ownedNames(tx.recipient).length >= MAX_NAMES_PER_OWNER) {
    refuse(
      C.OWNER_LIMIT,
      `name-transfer ${name.text}: the recipient owns ${MAX_NAMES_PER_OWNER} names, the limit`,
      {
        owner: toHex(tx.recipient),
        limit: MAX_NAMES_PER_OWNER,
      },
    );
  }
  registry.putEntry(
    found.apex,
    name,
    { ...entry, owner: tx.recipient, updatedAt: registry.height },
    false,
  );
  registry.updateOwner(sender, name, false);
  registry.updateOwner(tx.recipient, name, true);
  for (const key of keysBetween(name.key, found.apex.key)) {
    const ancestor = nameFromKey(key);
    registry.adjustOwnedBelow(ancestor, sender, -1);
    registry.adjustOwnedBelow(ancestor, tx.recipient, 1);
  }
  touch(registry, found);
}

/** Whether a set of types holds data other than A/AAAA (what may sit below a delegation). */
function hasNonGlue(types: Iterable<number>): boolean {
  for (const type of types) if (type !== RR_TYPES.A && type !== RR_TYPES.AAAA) return true;
  return false;
}

/** What the counts on a name's ancestors record of its RRsets. */
interface HeldData {
  /** Any records (`dns/data-below`). */
  readonly records: boolean;
  /** Data other than A/AAAA (`dns/below`). */
  readonly nonGlue: boolean;
}

function heldData(rrsets: readonly StoredRRset[]): HeldData {
  return { records: rrsets.length > 0, nonGlue: hasNonGlue(rrsets.map((set) => set.type)) };
}

/**
 * Keeps the `below` and `data-below` counts of the name's ancestors (strictly between it and
 * the apex) right when what it holds changes from `before` to `after`.
 */
function updateBelow(
  registry: Registry,
  found: FoundZone,
  name: CheckedName,
  before: HeldData,
  after: HeldData,
): void {
  if (name.key === found.apex.key) return;
  const nonGlue = before.nonGlue === after.nonGlue ? 0 : after.nonGlue ? 1 : -1;
  const records = before.records === after.records ? 0 : after.records ? 1 : -1;
  if (nonGlue === 0 && records === 0) return;
  for (const key of keysBetween(name.key, found.apex.key)) {
    const ancestor = nameFromKey(key);
    if (nonGlue !== 0) registry.adjustBelow(ancestor, nonGlue);
    if (records !== 0) registry.adjustDataBelow(ancestor, records);
  }
}

function nameRelease(registry: Registry, tx: NameReleaseTx, sender: Uint8Array): void {
  const name = checkName(tx.name, 'name');
  const found = zoneOf(registry, name);
  const entry = ownedEntry(registry, found, name, sender, 'name-release');
  updateBelow(registry, found, name, heldData(entry.rrsets), heldData([]));
  registry.deleteEntry(found.apex, name);
  registry.updateOwner(sender, name, false);
  countRegistered(registry, found, name, sender, -1);
  touch(registry, found, { names: found.zone.names - 1 });
}

/** The entry whose records the sender may change: the apex for an admin, else one it owns. */
function editableEntry(
  registry: Registry,
  found: FoundZone,
  name: CheckedName,
  sender: Uint8Array,
  op: string,
): NameEntry | null {
  if (name.key !== found.apex.key) return ownedEntry(registry, found, name, sender, op);
  if (!isAdmin(found.zone, sender)) {
    refuse(
      C.NOT_ZONE_ADMIN,
      `${op} ${name.text}: the apex's records are changed by the zone's admins`,
      { name: name.text },
    );
  }
  return registry.entry(name);
}

const AT_CUT = new Set<number>([RR_TYPES.NS, RR_TYPES.DS, RR_TYPES.A, RR_TYPES.AAAA]);

/**
 * The zone rules that involve a whole name or its neighbours (the rules `MemoryZone.build`
 * applies, checked incrementally): CNAME alone (RFC 2181 §10.1), DS only at a delegation
 * (RFC 4035 §2.4), only NS/DS/glue at a delegation and only A/AAAA glue below one (RFC 1034
 * §4.2.1). The apex always holds SOA and NS.
 */
function checkNameRules(
  registry: Registry,
  found: FoundZone,
  name: CheckedName,
  types: ReadonlySet<number>,
  adding: boolean,
): void {
  const atApex = name.key === found.apex.key;
  const detail = { name: name.text };
  if (types.has(RR_TYPES.CNAME) && (types.size > 1 || atApex)) {
    const others = atApex
      ? ['SOA', 'NS']
      : [...types].filter((t) => t !== RR_TYPES.CNAME).map(typeName);
    refuse(
      C.CNAME_CONFLICT,
      `${name.text}: CNAME next to other data (types ${others.join(', ')})`,
      detail,
    );
  }
  if (types.has(RR_TYPES.DS) && (atApex || !types.has(RR_TYPES.NS))) {
    refuse(
      C.DS_NOT_AT_DELEGATION,
      `${name.text}: DS outside a delegation point (it needs NS at the same name)`,
      detail,
    );
  }
  if (!adding || atApex) return;
  if (types.has(RR_TYPES.NS)) {
    const bad = [...types].find((type) => !AT_CUT.has(type));
    if (bad !== undefined) {
      refuse(
        C.OCCLUDED_DATA,
        `${name.text} ${typeName(bad)}: at a delegation only NS, DS and A/AAAA glue may be`,
        detail,
      );
    }
    const below = registry.below(name);
    if (below > 0) {
      refuse(
        C.OCCLUDED_DATA,
        `${name.text}: NS would hide ${below} name(s) below it holding data other than A/AAAA glue`,
        detail,
      );
    }
  }
  if (hasNonGlue(types)) {
    for (const key of keysBetween(name.key, found.apex.key)) {
      const ancestor = nameFromKey(key);
      const entry = registry.entry(ancestor);
      if (entry?.rrsets.some((set) => set.type === RR_TYPES.NS)) {
        refuse(
          C.OCCLUDED_DATA,
          `${name.text}: below the delegation ${ancestor.text} only A/AAAA glue may be`,
          {
            ...detail,
            delegation: ancestor.text,
          },
        );
      }
    }
  }
}

function writeRecords(
  registry: Registry,
  found: FoundZone,
  name: CheckedName,
  entry: NameEntry | null,
  rrsets: StoredRRset[],
): void {
  const height = registry.height;
  updateBelow(registry, found, name, heldData(entry?.rrsets ?? []), heldData(rrsets));
  if (entry === null) {
    // Only the apex has no entry until its first record.
    registry.putEntry(
      found.apex,
      name,
      { owner: null, registeredAt: height, updatedAt: height, rrsets },
      true,
    );
  } else if (rrsets.length === 0 && entry.owner === null) {
    registry.deleteEntry(found.apex, name);
  } else {
    registry.putEntry(found.apex, name, { ...entry, updatedAt: height, rrsets }, false);
  }
  touch(registry, found);
}

function recordsSet(registry: Registry, tx: RecordsSetTx, sender: Uint8Array): void {
  const name = checkName(tx.name, 'name');
  const found = zoneOf(registry, name);
  checkRecordType(tx.type, name.key === found.apex.key);
  if (isWildcard(name) && (tx.type === RR_TYPES.NS || tx.type === RR_TYPES.DS)) {
    // RFC 4592 §4.2: NS at a wildcard owner is undefined, and a cut there would make the zone
    // answer names below it both as synthesised data and as a referral (docs/dns.md).
    refuse(
      C.INVALID_RECORD,
      `${name.text} ${typeName(tx.type)}: a wildcard cannot be a delegation (RFC 4592 §4.2)`,
      { name: name.text, field: 'type' },
    );
  }
  const entry = editableEntry(registry, found, name, sender, 'records-set');
  const rrsets = (entry?.rrsets ?? []).filter((set) => set.type !== tx.type);
  rrsets.push({ type: tx.type, ttl: tx.ttl, rdata: tx.rdata });
  rrsets.sort((a, b) => a.type - b.type);
  const records = rrsets.reduce((sum, set) => sum + set.rdata.length, 0);
  const bytes = rrsets.reduce(
    (sum, set) => sum + set.rdata.reduce((n, item) => n + item.length, 0),
    0,
  );
  if (records > MAX_RECORDS_PER_NAME || bytes > MAX_NAME_RDATA_BYTES) {
    refuse(
      C.RECORDS_LIMIT,
      `${name.text}: ${records} records, ${bytes} bytes of RDATA; a name holds at most ${MAX_RECORDS_PER_NAME} records and ${MAX_NAME_RDATA_BYTES} bytes`,
      { name: name.text, records, bytes },
    );
  }
  checkNameRules(registry, found, name, new Set(rrsets.map((set) => set.type)), true);
  // Checked when NS is set, not on every change at a delegation: a later DS or glue change
  // must not be blocked by names its owner handed on below it (docs/dns.md, "Zone rules").
  if (tx.type === RR_TYPES.NS) refuseOverOthers(registry, name, sender, 'delegate');
  writeRecords(registry, found, name, entry, rrsets);
}

function recordsDelete(registry: Registry, tx: RecordsDeleteTx, sender: Uint8Array): void {
  const name = checkName(tx.name, 'name');
  const found = zoneOf(registry, name);
  checkRecordType(tx.type, name.key === found.apex.key);
  const entry = editableEntry(registry, found, name, sender, 'records-delete');
  const rrsets = (entry?.rrsets ?? []).filter((set) => set.type !== tx.type);
  if (entry === null || rrsets.length === entry.rrsets.length) {
    refuse(C.NO_SUCH_RRSET, `${name.text} has no ${typeName(tx.type)} records`, {
      name: name.text,
      type: typeName(tx.type),
    });
  }
  checkNameRules(registry, found, name, new Set(rrsets.map((set) => set.type)), false);
  writeRecords(registry, found, name, entry, rrsets);
}

function execute(registry: Registry, tx: DnsZonesTx, sender: Uint8Array): void {
  switch (tx.op) {
    case 'zone-create':
      return zoneCreate(registry, tx, sender);
    case 'zone-update':
      return zoneUpdate(registry, tx, sender);
    case 'name-register':
      return nameRegister(registry, tx, sender);
    case 'name-transfer':
      return nameTransfer(registry, tx, sender);
    case 'name-release':
      return nameRelease(registry, tx, sender);
    case 'records-set':
      return recordsSet(registry, tx, sender);
    case 'records-delete':
      return recordsDelete(registry, tx, sender);
  }
}

/** Writes kept in memory so `check` can run `apply`'s rules without touching the state. */
class ScratchState implements ModuleState {
  private readonly writes = new Map<string, Uint8Array | null>();

  constructor(private readonly base: ModuleStateReader) {}

  get(key: Uint8Array): Uint8Array | null {
    const id = toHex(key);
    return this.writes.has(id) ? this.writes.get(id)! : this.base.get(key);
  }

  set(key: Uint8Array, value: Uint8Array): void {
    this.writes.set(toHex(key), value);
  }

  delete(key: Uint8Array): void {
    this.writes.set(toHex(key), null);
  }
}

function invalidQuery(path: string, message: string): never {
  throw new DnsZonesError(C.INVALID_QUERY, `dns/${path}: ${message}`);
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function queryName(path: string, data: Uint8Array): CheckedName {
  if (data.length === 0 || data.length > 1024)
    invalidQuery(path, `expected a name of 1 to 1024 bytes, got ${data.length}`);
  let text: string;
  try {
    text = decoder.decode(data);
  } catch {
    return invalidQuery(path, 'data is not UTF-8 text');
  }
  try {
    return anyName(text);
  } catch (error) {
    if (error instanceof DnsError) return invalidQuery(path, error.message);
    throw error;
  }
}

/** The module-relative key a query reads; throws `DnsZonesError INVALID_QUERY` for bad data. */
export function dnsZonesQueryKey(path: string, data: Uint8Array): Uint8Array | undefined {
  switch (path) {
    case NAME_QUERY:
      return nameEntryKey(queryName(path, data).wire);
    case ZONE_QUERY:
      return zoneKey(queryName(path, data).wire);
    case ZONES_QUERY:
      if (data.length !== 0) invalidQuery(path, `takes no data, got ${data.length} bytes`);
      return ZONES_KEY;
    case OWNER_QUERY:
      if (data.length !== 32) invalidQuery(path, `data is a 32-byte key, got ${data.length} bytes`);
      return ownerKey(data);
    case INDEX_QUERY:
      if (data.length < 2) invalidQuery(path, 'expected a bucket byte followed by an apex');
      return indexKey(queryName(path, data.subarray(1)).wire, data[0]!);
    default:
      return undefined;
  }
}

/**
 * The `dns` module: zones and the names in them, held in consensus state (docs/dns.md, "Zones
 * in consensus"). Cluster zones come from genesis (genesis.ts); their admins create delegated
 * zones. Anyone registers free names in an `open` zone and becomes their owner; only the owner
 * changes a name's records, transfers or releases it; the owner of a name alone registers names
 * below it; nobody but a zone admin registers a name above another key's names, and nobody
 * delegates over them. Every records change is checked against the zone rules before anything
 * is written, and every applied transaction sets its zone's SOA serial to the block height.
 *
 * `check` runs `apply`'s rules on a scratch copy (they do not depend on the height), so a
 * transaction the mempool admits on the latest state is refused in a block only if an earlier
 * transaction changed what it depends on.
 */
export function createDnsZonesModule(): Module<DnsZonesTx> {
  return {
    name: DNS_ZONES_MODULE_NAME,
    decodeBody: decodeDnsZonesBody,
    check(ctx: CheckContext, tx: DnsZonesTx, sender: Uint8Array): void {
      execute(new Registry(new ScratchState(ctx.state), 0), tx, sender);
    },
    apply(ctx: ExecutionContext, tx: DnsZonesTx, sender: Uint8Array): void {
      execute(new Registry(ctx.state, ctx.height), tx, sender);
    },
    query(path: string, data: Uint8Array): ModuleQueryAnswer | undefined {
      const key = dnsZonesQueryKey(path, data);
      return key === undefined ? undefined : { key };
    },
  };
}
