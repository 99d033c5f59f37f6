import { WireWriter } from './buffer.js';
import { CLASS_IN, RR_TYPES } from './constants.js';
import { DnssecError, DnssecErrorCode, dsText, formatDnskey } from './dnssec-keys.js';
import type { DnssecSigningKey } from './dnssec-keys.js';
import { signRRsetWire } from './dnssec-sign.js';
import { ROOT_KEY, isSubdomainKey, keyToName, nameKey, parentKey } from './names.js';
import { MAX_TTL, compareBytes, rdataBytes, recordTypeCode } from './records.js';
import type { KnownRecord, ResourceRecord } from './records.js';
import type { RRsetWire, ZoneNode, ZoneSignatures } from './zone.js';

/**
 * Online signing of a zone (RFC 4033–4035, RFC 6605): the signer adds the DNSKEY RRset and a
 * precomputed NSEC chain to the zone's records, and signs RRsets lazily when the answer engine
 * first needs them, caching each signature per (RRset, key) until its refresh time. A zone is
 * rebuilt on every change; signatures of RRsets that did not change carry over to the new build.
 * See docs/dns.md, DNSSEC, for the choices (one combined key, NSEC, the validity windows).
 */

export interface SigningPolicy {
  /** Seconds the inception is set before signing time, for validators with slow clocks (default 3600). */
  readonly inceptionOffset: number;
  /** Seconds from signing time to expiration (default 7 days). */
  readonly validity: number;
  /** A signature is made again once fewer than this many seconds of validity remain (default 3 days). */
  readonly refreshMargin: number;
}

export const DEFAULT_SIGNING_POLICY: SigningPolicy = {
  inceptionOffset: 3600,
  validity: 7 * 86400,
  refreshMargin: 3 * 86400,
};

export interface ZoneSignerOptions {
  /** The zone apex; the DNSKEY's owner and the RRSIGs' signer name. */
  readonly apex: string;
  readonly key: DnssecSigningKey;
  /** Milliseconds since 1970 (default `Date.now`); injected by tests. */
  readonly clock?: () => number;
  readonly policy?: Partial<SigningPolicy>;
  /** TTL of the DNSKEY RRset (default 3600). */
  readonly dnskeyTtl?: number;
}

/** A signature made at one time: the RRSIG's TYPE..RDATA tail, and when to make another. */
export interface CachedSignature {
  readonly tail: Uint8Array;
  /** Inception, in milliseconds: before it the signature is not valid (the clock went back). */
  readonly validFrom: number;
  readonly refreshAt: number;
}

/** One signed RRset of one zone build. */
interface Slot {
  readonly set: RRsetWire;
  /** Identifies the RRset's content (owner, type, TTL, records) across zone builds. */
  readonly contentKey: string;
  current: CachedSignature | undefined;
}

/** An RRset whose RRSIG is another slot's with a lower TTL (the SOA in negative answers). */
interface DerivedSlot {
  readonly base: Slot;
  readonly ttl: number;
  from: CachedSignature | undefined;
  tail: Uint8Array;
}

/** At a delegation only DS and NSEC are the parent's to sign (RFC 4035 §2.2). */
function signedAtCut(type: number): boolean {
  return type === RR_TYPES.DS || type === RR_TYPES.NSEC;
}

function policyError(message: string, detail: Record<string, unknown>): DnssecError {
  return new DnssecError(DnssecErrorCode.POLICY_INVALID, message, detail);
}

function checkSeconds(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw policyError(`signing policy ${name}: ${value} is not an integer in ${min}..${max}`, {
      field: name,
      value,
    });
  }
  return value;
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

/** The same RRSIG tail with another TTL. */
function withTtl(tail: Uint8Array, ttl: number): Uint8Array {
  const copy = Uint8Array.from(tail);
  copy[4] = ttl >>> 24;
  copy[5] = (ttl >>> 16) & 0xff;
  copy[6] = (ttl >>> 8) & 0xff;
  copy[7] = ttl & 0xff;
  return copy;
}

/**
 * A key that sorts like RFC 4034 §6.1 canonical order under plain string comparison: labels
 * from the right, each byte shifted up by one and the label closed by a 0, so that a label
 * sorts before longer labels it is a prefix of, and a name before its descendants.
 */
export function canonicalSortKey(key: string): string {
  let labels = 0;
  for (let at = 0; key.charCodeAt(at) !== 0; at += key.charCodeAt(at) + 1)
    labelStarts[labels++] = at;
  let n = 0;
  for (let i = labels - 1; i >= 0; i--) {
    const at = labelStarts[i]!;
    const end = at + key.charCodeAt(at);
    for (let j = at + 1; j <= end; j++) sortCodes[n++] = key.charCodeAt(j) + 1;
    sortCodes[n++] = 0;
  }
  return String.fromCharCode.apply(null, sortCodes.subarray(0, n) as unknown as number[]);
}

/** Scratch for `canonicalSortKey` (a name has at most 127 labels and 255 bytes). */
const labelStarts = new Int16Array(128);
const sortCodes = new Uint16Array(256);

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/**
 * Signs one zone with one key. Hand it to `MemoryZone.build(apex, records, { signer })` for
 * every build of that zone: it adds the DNSKEY and NSEC records, and keeps the signatures
 * of the last build so the next one reuses those of unchanged RRsets.
 */
export class ZoneSigner {
  readonly apexKey: string;
  readonly key: DnssecSigningKey;
  readonly policy: SigningPolicy;
  readonly dnskeyTtl: number;
  readonly clock: () => number;
  private signatures = new Map<string, CachedSignature>();
  private signed = 0;

  constructor(options: ZoneSignerOptions) {
    this.apexKey = nameKey(options.apex);
    this.key = options.key;
    if (options.key.dnskey.algorithm !== 13 || options.key.dnskey.publicKey.length !== 64) {
      throw new DnssecError(
        DnssecErrorCode.KEY_INVALID,
        `signing key: algorithm ${options.key.dnskey.algorithm}, only 13 (ECDSA P-256) is supported`,
      );
    }
    const policy = { ...DEFAULT_SIGNING_POLICY, ...options.policy };
    // RFC 4034 §3.1.5: the window must stay within 2^31 - 1 seconds (serial arithmetic).
    const validity = checkSeconds('validity', policy.validity, 60, 0x7fffffff);
    const inceptionOffset = checkSeconds(
      'inceptionOffset',
      policy.inceptionOffset,
      0,
      0x7fffffff - validity,
    );
    const refreshMargin = checkSeconds('refreshMargin', policy.refreshMargin, 0, validity - 1);
    this.policy = { validity, inceptionOffset, refreshMargin };
    this.dnskeyTtl = checkSeconds('dnskeyTtl', options.dnskeyTtl ?? 3600, 0, MAX_TTL);
    this.clock = options.clock ?? Date.now;
  }

  /** The apex, lowercase presentation text. */
  get apex(): string {
    return keyToName(this.apexKey);
  }

  /** Signatures made so far (each an ECDSA signing operation); for tests and metrics. */
  get signatureCount(): number {
    return this.signed;
  }

  /** The DNSKEY record the zone publishes at its apex. */
  dnskeyRecord(): KnownRecord<'DNSKEY'> {
    return {
      name: this.apex,
      type: 'DNSKEY',
      class: CLASS_IN,
      ttl: this.dnskeyTtl,
      data: this.key.dnskey,
    };
  }

  /** The DS record text for the parent (`hypermesh dns ds`), SHA-256 digest. */
  dsText(ttl = 3600): string {
    return dsText(this.apex, this.key.dnskey, ttl);
  }

  /** The DNSKEY record text. */
  dnskeyText(): string {
    return formatDnskey(this.apex, this.key.dnskey, this.dnskeyTtl);
  }

  /** Throws unless `apexKey` is the signer's zone. */
  checkApex(apexKey: string): void {
    if (apexKey !== this.apexKey) {
      throw new DnssecError(
        DnssecErrorCode.APEX_MISMATCH,
        `signer for ${this.apex} used for zone ${keyToName(apexKey)}`,
        { signer: this.apex, zone: keyToName(apexKey) },
      );
    }
  }

  /**
   * The zone's records plus the DNSKEY at the apex and the NSEC chain (RFC 4034 §4, RFC 4035
   * §2.3): one NSEC per authoritative owner, in canonical order, the last pointing back to the
   * apex; at a delegation only NS and DS count, and names below one (glue) get none. NSEC TTL
   * is min(SOA TTL, SOA MINIMUM) (RFC 9077). Records the zone rules refuse are left for
   * `MemoryZone.build` to report. Throws `GENERATED_TYPE` for RRSIG or NSEC records.
   */
  zoneRecords(records: readonly ResourceRecord[]): ResourceRecord[] {
    const apexKey = this.apexKey;
    const dnskey = this.dnskeyRecord();
    const dnskeyRdata = rdataBytes(dnskey, true);
    let published = false;
    const types = new Map<string, Set<number>>();
    let soa: KnownRecord<'SOA'> | undefined;
    for (const rr of records) {
      const code = recordTypeCode(rr);
      if (code === RR_TYPES.RRSIG || code === RR_TYPES.NSEC) {
        throw new DnssecError(
          DnssecErrorCode.GENERATED_TYPE,
          `${rr.name} ${rr.type}: a signed zone makes its own RRSIG and NSEC records`,
          { name: rr.name, type: rr.type },
        );
      }
      const key = nameKey(rr.name);
      if (!isSubdomainKey(key, apexKey)) continue;
      if (rr.type === 'SOA' && key === apexKey) soa = rr;
      if (
        rr.type === 'DNSKEY' &&
        key === apexKey &&
        compareBytes(rdataBytes(rr, true), dnskeyRdata) === 0
      )
        published = true;
      let set = types.get(key);
      if (set === undefined) types.set(key, (set = new Set()));
      set.add(code);
    }
    const out = [...records];
    if (!published) out.push(dnskey);
    if (soa === undefined) return out;
    let apexTypes = types.get(apexKey);
    if (apexTypes === undefined) types.set(apexKey, (apexTypes = new Set()));
    apexTypes.add(RR_TYPES.DNSKEY);

    const cuts = new Set<string>();
    for (const [key, set] of types) if (key !== apexKey && set.has(RR_TYPES.NS)) cuts.add(key);
    const owners: Array<{ key: string; sort: string; types: number[] }> = [];
    for (const [key, set] of types) {
      let below = false;
      for (let k = parentKey(key); k !== apexKey && k !== ROOT_KEY; k = parentKey(k)) {
        if (cuts.has(k)) below = true;
      }
      if (below) continue;
      const present = cuts.has(key)
        ? [...set].filter((type) => type === RR_TYPES.NS || type === RR_TYPES.DS)
        : [...set];
      present.push(RR_TYPES.RRSIG, RR_TYPES.NSEC);
      owners.push({ key, sort: canonicalSortKey(key), types: present.sort((a, b) => a - b) });
    }
    owners.sort((a, b) => (a.sort < b.sort ? -1 : a.sort > b.sort ? 1 : 0));
    const ttl = Math.min(soa.ttl, soa.data.minimum);
    for (let i = 0; i < owners.length; i++) {
      const next = owners[(i + 1) % owners.length]!;
      out.push({
        name: keyToName(owners[i]!.key),
        type: 'NSEC',
        class: CLASS_IN,
        ttl,
        data: { next: keyToName(next.key), types: owners[i]!.types },
      });
    }
    return out;
  }

  /**
   * The signing state of one zone build: a slot for every authoritative RRset (not glue, not the
   * NS of a delegation), the NSEC index, and the signatures of the previous build carried over
   * where the RRset is unchanged. Other `Zone` implementations call this with their nodes too.
   */
  attach(apexKey: string, nodes: Iterable<ZoneNode>, negativeSoa: RRsetWire): ZoneDnssec {
    this.checkApex(apexKey);
    const all = [...nodes];
    const cuts = new Set<string>();
    for (const node of all) if (node.delegation) cuts.add(node.key);
    const previous = this.signatures;
    const current = new Map<string, CachedSignature>();
    const slots = new Map<RRsetWire, Slot>();
    const nsec: Array<{ sort: string; set: RRsetWire }> = [];
    let soaSlot: Slot | undefined;
    for (const node of all) {
      let below = false;
      for (let k = parentKey(node.key); k !== apexKey && k !== ROOT_KEY; k = parentKey(k)) {
        if (cuts.has(k)) below = true;
      }
      if (below) continue;
      for (const set of node.ordered) {
        if (node.delegation && !signedAtCut(set.type)) continue;
        let contentKey = `${set.ownerKey}|${set.type}|${set.ttl}`;
        for (const tail of set.tails) contentKey += `|${latin1(tail)}`;
        const carried = previous.get(contentKey);
        if (carried !== undefined) current.set(contentKey, carried);
        const slot: Slot = { set, contentKey, current: carried };
        slots.set(set, slot);
        if (set.type === RR_TYPES.SOA && node.key === apexKey) soaSlot = slot;
        if (set.type === RR_TYPES.NSEC) nsec.push({ sort: canonicalSortKey(node.key), set });
      }
    }
    this.signatures = current;
    nsec.sort((a, b) => (a.sort < b.sort ? -1 : a.sort > b.sort ? 1 : 0));
    const derived: DerivedSlot | undefined =
      soaSlot === undefined
        ? undefined
        : { base: soaSlot, ttl: negativeSoa.ttl, from: undefined, tail: new Uint8Array(0) };
    return new ZoneDnssec(this, current, slots, negativeSoa, derived, nsec);
  }

  /** Makes a signature now (an ECDSA operation). */
  sign(set: RRsetWire, now: number): CachedSignature {
    const seconds = Math.floor(now / 1000);
    const { inceptionOffset, validity, refreshMargin } = this.policy;
    const inception = seconds - inceptionOffset;
    const rdata = signRRsetWire(
      set.ownerKey,
      set.type,
      set.ttl,
      set.tails,
      this.key,
      this.apexKey,
      inception,
      seconds + validity,
    );
    this.signed += 1;
    return {
      tail: tailOf(RR_TYPES.RRSIG, set.ttl, rdata),
      validFrom: inception * 1000,
      refreshAt: (seconds + validity - refreshMargin) * 1000,
    };
  }
}

/** The signatures and NSEC index of one build of a signed zone. */
export class ZoneDnssec implements ZoneSignatures {
  private readonly nsecSorts: readonly string[];
  private readonly nsecSets: readonly RRsetWire[];

  constructor(
    private readonly signer: ZoneSigner,
    private readonly signatures: Map<string, CachedSignature>,
    private readonly slots: ReadonlyMap<RRsetWire, Slot>,
    private readonly negativeSoa: RRsetWire,
    private readonly negative: DerivedSlot | undefined,
    nsec: ReadonlyArray<{ sort: string; set: RRsetWire }>,
  ) {
    this.nsecSorts = nsec.map((entry) => entry.sort);
    this.nsecSets = nsec.map((entry) => entry.set);
  }

  /**
   * The RRSIG tail of `set`, or undefined for an RRset that is not signed (glue, a delegation's
   * NS, another zone's). Signs when there is no signature yet or the one held is due for refresh.
   */
  rrsig(set: RRsetWire): Uint8Array | undefined {
    const slot = this.slots.get(set);
    if (slot !== undefined) return this.fresh(slot).tail;
    const negative = this.negative;
    if (set !== this.negativeSoa || negative === undefined) return undefined;
    const base = this.fresh(negative.base);
    if (negative.from !== base) {
      negative.tail = withTtl(base.tail, negative.ttl);
      negative.from = base;
    }
    return negative.tail;
  }

  private fresh(slot: Slot): CachedSignature {
    const now = this.signer.clock();
    const held = slot.current;
    if (held !== undefined && now >= held.validFrom && now < held.refreshAt) return held;
    const made = this.signer.sign(slot.set, now);
    slot.current = made;
    this.signatures.set(slot.contentKey, made);
    return made;
  }

  /** The NSEC at or before `key` (binary search); undefined only for a name before the apex. */
  covering(key: string): RRsetWire | undefined {
    const target = canonicalSortKey(key);
    const sorts = this.nsecSorts;
    let lo = 0;
    let hi = sorts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (sorts[mid]! <= target) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? undefined : this.nsecSets[found];
  }
}
