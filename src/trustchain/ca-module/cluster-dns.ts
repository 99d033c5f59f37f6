import type { ModuleStateReader } from '../../consensus/application/module.js';
import type { GenesisAppValue } from '../../consensus/genesis.js';
import { bytesEqual } from '../../crypto/bytes.js';
import {
  caaAllows,
  caaRecordFromRdata,
  relevantCaaRecordSet,
  type CaaContext,
  type CaaDecision,
  type CaaRecord,
} from '../ca/caa.js';
import { isWildcard, wildcardBase } from '../ca/names.js';
import {
  RR_TYPES,
  emptyLookup,
  isSubdomainKey,
  keyToName,
  keyToWire,
  lookupName,
  nameKey,
} from '../dns/index.js';
import { dnsZonesGenesisFromApp } from '../dns-zones/genesis.js';
import { DNS_ZONES_MODULE_NAME, type StoredRRset } from '../dns-zones/model.js';
import { nameFromWire } from '../dns-zones/names.js';
import { recordOf } from '../dns-zones/rules.js';
import { StateZoneTree, type StateZoneNode } from '../dns-zones/state-zone.js';
import { readNameEntry, readZoneList } from '../dns-zones/state.js';

/**
 * What the `ca` module reads of the `dns` module's state (docs/ca.md, "Who may request what"
 * and "CAA in consensus"): who owns a registered name, and the CAA records (RFC 8659) of the
 * names in the module's zones. Both are read through the router's read-only view of `dns/`
 * (`ctx.foreign`), on the same state the `ca` module sees: the committed state at admission,
 * the transaction's scope in a block. Nothing here is cached beyond one reader, which lives for
 * one check: every decision is taken again on the state it is asked about.
 */

/** The module the `ca` module reads (`Module.reads`) when the chain has one. */
export const CLUSTER_DNS_MODULE = DNS_ZONES_MODULE_NAME;

/** CNAMEs followed from a name whose CAA RRset is looked up (as the ACME face's resolver). */
const MAX_CNAME_DEPTH = 8;

/** The `dns` module as the `ca` module's configuration knows it (from the genesis alone). */
export interface CaClusterDns {
  /**
   * The issuer domain names a CAA `issue`/`issuewild` value must name to authorise the cluster
   * CA (RFC 8659 §4.2): the genesis `app.dns` zone apexes without their trailing dot
   * (`hypermesh` for a `cluster init` cluster). The node's `acme.caaIdentities` does not change
   * these: it applies to the ACME face's own check only.
   */
  readonly caaIdentities: readonly string[];
}

/**
 * The cluster CA's CAA identities: the genesis `app.dns` zone apexes without their trailing dot;
 * undefined when the genesis has no `app.dns` section (no `dns` module, hence no zones).
 */
export function clusterCaaIdentities(
  app: { readonly [module: string]: GenesisAppValue } | undefined,
): string[] | undefined {
  const dns = dnsZonesGenesisFromApp(app);
  return dns?.zones.map((zone) => zone.apex.replace(/\.$/, ''));
}

/** Why the CAA records of a cluster-zone name refuse the cluster CA. */
export interface CaaRefusal {
  /** The requested name (`*.x` for a wildcard). */
  readonly name: string;
  /** Where the Relevant RRset was found (RFC 8659 §3), without the trailing dot. */
  readonly domain: string;
  readonly reason: Extract<CaaDecision, { allowed: false }>['reason'] | 'cname_chain';
  /** The unknown critical tag, for `unknown_critical_property`. */
  readonly tag?: string;
}

/** A CNAME chain from a climbed name is longer than `MAX_CNAME_DEPTH`, or loops. */
export class CaaCnameChainError extends Error {}

function keyOf(name: string): string | undefined {
  try {
    return nameKey(name);
  } catch {
    return undefined;
  }
}

/** One check's reader of the `dns` module's state (module-relative keys, read-only). */
export class ClusterDnsReader {
  private apexKeys: string[] | undefined;
  private readonly trees = new Map<string, StateZoneTree>();

  constructor(private readonly dns: ModuleStateReader) {}

  /** The DNS core keys of the zone apexes. */
  private apexes(): string[] {
    this.apexKeys ??= readZoneList(this.dns).map((wire) => nameFromWire(wire).key);
    return this.apexKeys;
  }

  /** The key of the apex of the zone `key` lies in (zones are disjoint: at most one). */
  private zoneOf(key: string): string | undefined {
    return this.apexes().find((apex) => isSubdomainKey(key, apex));
  }

  /**
   * Whether `account` owns exactly `name` (a certificate request's DNS name, no trailing dot) in
   * the `dns` module: its entry's owner is that key (docs/dns.md, "Ownership"). A wildcard is
   * never owned (ownership gives the name, not the names below it); the apex has no owner.
   */
  owns(name: string, account: Uint8Array): boolean {
    if (isWildcard(name)) return false;
    const key = keyOf(name);
    if (key === undefined || this.zoneOf(key) === undefined) return false;
    const owner = readNameEntry(this.dns, keyToWire(key))?.owner ?? null;
    return owner !== null && bytesEqual(owner, account);
  }

  /** The zone tree of the zone at `apex` (one per apex for this reader). */
  private tree(apex: string): StateZoneTree {
    let tree = this.trees.get(apex);
    if (tree === undefined) {
      tree = new StateZoneTree(this.dns, apex);
      this.trees.set(apex, tree);
    }
    return tree;
  }

  /**
   * The RRsets a DNS query for `key` is answered from, as the answer engine decides it
   * (`lookupName`, RFC 1034 §4.3.2, RFC 4592): the name's own, or for a name that does not
   * exist (no records, no name below it) those of the wildcard at its closest encloser;
   * none below a zone cut (a referral), for an empty non-terminal, or outside the zones.
   */
  private rrsetsAt(key: string): readonly StoredRRset[] {
    const apex = this.zoneOf(key);
    if (apex === undefined) return [];
    const tree = this.tree(apex);
    // No wildcard with records above: nothing is synthesised, so the name's own records are
    // the answer (below a cut the zone rules allow only A/AAAA glue, never CAA or CNAME).
    if (!tree.wildcardDataAbove(key)) return tree.entry(key)?.rrsets ?? [];
    const found = lookupName(tree, key, false, emptyLookup<StateZoneNode>());
    if (found.cut !== undefined) return [];
    return (found.node ?? found.wildcard)?.entry?.rrsets ?? [];
  }

  /**
   * RFC 8659 §3 for a name in one of the module's zones: the CAA RRset a query for `key` gets
   * (`rrsetsAt`: records synthesised from a wildcard included), following CNAMEs through the
   * module's zones (a target outside them has no records here, as in the ACME face's
   * in-process resolver); empty when there is none.
   */
  private caaAt(start: string): CaaRecord[] {
    let key = start;
    const seen = new Set<string>();
    for (let depth = 0; depth <= MAX_CNAME_DEPTH; depth++) {
      const rrsets = this.rrsetsAt(key);
      const owner = keyToName(key);
      const caa = rrsets.find((set) => set.type === RR_TYPES.CAA);
      if (caa !== undefined) {
        return caa.rdata.map((rdata) => {
          const record = recordOf(owner, caa.type, caa.ttl, rdata);
          if (record.type !== 'CAA') throw new RangeError('a CAA RRset decoded to another type');
          return caaRecordFromRdata(record.data);
        });
      }
      const cname = rrsets.find((set) => set.type === RR_TYPES.CNAME);
      const rdata = cname?.rdata[0];
      if (cname === undefined || rdata === undefined) return [];
      const record = recordOf(owner, cname.type, cname.ttl, rdata);
      if (record.type !== 'CNAME') throw new RangeError('a CNAME RRset decoded to another type');
      seen.add(key);
      const next = keyOf(record.data.target);
      if (next === undefined) return [];
      if (seen.has(next)) break;
      key = next;
    }
    throw new CaaCnameChainError(`more than ${MAX_CNAME_DEPTH} CNAMEs from ${keyToName(start)}`);
  }

  /**
   * The Relevant RRset of `name` (a request's DNS name, `*.x` for a wildcard) in the module's
   * zones (RFC 8659 §3, `relevantCaaRecordSet`): searched from the name up to its zone's apex,
   * no further; null when there is none or the name is in none of the zones. `domain` is the
   * name climbed to whose query returned the records (the name itself for records synthesised
   * from a wildcard, as a DNS answer names them). Throws `CaaCnameChainError` for a CNAME
   * chain longer than `MAX_CNAME_DEPTH` or a loop.
   */
  relevantCaa(name: string): ReturnType<typeof relevantCaaRecordSet> {
    const base = keyOf(wildcardBase(name));
    const apex = base === undefined ? undefined : this.zoneOf(base);
    if (apex === undefined) return null;
    return relevantCaaRecordSet(name, (domain) => {
      const key = keyOf(domain);
      return key === undefined || !isSubdomainKey(key, apex) ? [] : this.caaAt(key);
    });
  }

  /**
   * Whether the CAA records of `name` (a request's DNS name, `*.x` for a wildcard) let the CA
   * known as `identities` issue (RFC 8659 §3–4, `caaAllows`): null when they do or when the
   * name is in none of the module's zones (its names are not the cluster's to rule on). The
   * Relevant RRset is searched from the name up to its zone's apex, no further. The module has
   * no ACME account or validation method, so a property restricted by RFC 8657 `accounturi`
   * or `validationmethods` authorises no issuance through it, unless `parametersChecked` (the
   * name has a quorum of DCV attestations, whose holders checked those parameters). A CNAME chain longer than
   * `MAX_CNAME_DEPTH` (or a loop) refuses: the records cannot be known.
   */
  caaRefusal(
    name: string,
    identities: readonly string[],
    context: Pick<CaaContext, 'parametersChecked'> = {},
  ): CaaRefusal | null {
    let relevant: ReturnType<typeof relevantCaaRecordSet>;
    try {
      relevant = this.relevantCaa(name);
    } catch (error) {
      if (!(error instanceof CaaCnameChainError)) throw error;
      return { name, domain: wildcardBase(name), reason: 'cname_chain' };
    }
    if (relevant === null) return null;
    const decision = caaAllows(identities, relevant.records, name, context);
    if (decision.allowed) return null;
    return {
      name,
      domain: relevant.domain,
      reason: decision.reason,
      ...(decision.tag === undefined ? {} : { tag: decision.tag }),
    };
  }
}
