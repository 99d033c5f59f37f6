import {
  MemoryZone,
  RR_TYPES,
  canonicalName,
  encodeRecordCanonical,
  isSubdomain,
  parseRecord,
  recordTypeCode,
} from '../../../src/trustchain/dns/index.js';
import type { RecordInput, ResourceRecord } from '../../../src/trustchain/dns/index.js';
import {
  DNS_ZONES_RESULT_CODES,
  DnsZonesErrorCode,
} from '../../../src/trustchain/dns-zones/index.js';
import type { ZoneParams } from '../../../src/trustchain/dns-zones/index.js';

/**
 * A reference model of one zone's ownership and zone rules, written from docs/dns.md ("Zones in
 * consensus") independently of the module: plain maps, rules checked by scanning every name.
 * It predicts each transaction's result code and yields the records the zone must serve.
 */

const C = DnsZonesErrorCode;
export const code = (c: DnsZonesErrorCode): number => DNS_ZONES_RESULT_CODES[c];

interface ModelRRset {
  readonly ttl: number;
  readonly records: readonly ResourceRecord[];
}

export interface ModelName {
  owner: number | null;
  readonly rrsets: Map<number, ModelRRset>;
}

export type Step =
  | { readonly op: 'register'; readonly name: string; readonly sender: number }
  | { readonly op: 'transfer'; readonly name: string; readonly sender: number; readonly to: number }
  | { readonly op: 'release'; readonly name: string; readonly sender: number }
  | {
      readonly op: 'set';
      readonly name: string;
      readonly sender: number;
      readonly records: readonly RecordInput[];
    }
  | {
      readonly op: 'delete';
      readonly name: string;
      readonly sender: number;
      readonly type: number;
    };

const GLUE = new Set<number>([RR_TYPES.A, RR_TYPES.AAAA]);
const AT_CUT = new Set<number>([RR_TYPES.NS, RR_TYPES.DS, RR_TYPES.A, RR_TYPES.AAAA]);
const nonGlue = (types: Iterable<number>): boolean => [...types].some((t) => !GLUE.has(t));

export class ZoneModel {
  readonly names = new Map<string, ModelName>();
  serial = 1;

  constructor(
    readonly params: ZoneParams,
    /** Which sender indexes are admins. */
    readonly admins: ReadonlySet<number>,
  ) {}

  get apex(): string {
    return this.params.apex;
  }

  private strictlyBetween(name: string): string[] {
    return [...this.names.keys()].filter(
      (other) => other !== name && other !== this.apex && isSubdomain(name, other),
    );
  }

  /** The closest registered name at or above `name`, below the apex. */
  private closestRegistered(name: string): ModelName | undefined {
    let best: string | undefined;
    for (const other of this.names.keys()) {
      if (other === this.apex || !isSubdomain(name, other)) continue;
      if (best === undefined || isSubdomain(other, best)) best = other;
    }
    return best === undefined ? undefined : this.names.get(best);
  }

  /** Whether a registered name strictly below `name` belongs to a key other than `owner`. */
  private othersBelow(name: string, owner: number): boolean {
    return [...this.names].some(
      ([other, data]) =>
        other !== name && isSubdomain(other, name) && data.owner !== null && data.owner !== owner,
    );
  }

  private parent(name: string): string {
    return canonicalName(name.slice(name.indexOf('.') + 1));
  }

  /** Applies `step` at `height` if the rules allow; returns the expected result code. */
  apply(step: Step, height: number): number {
    const result = this.decide(step);
    if (result === 0) this.serial = height;
    return result;
  }

  private decide(step: Step): number {
    const { name, sender } = step;
    const atApex = name === this.apex;
    const entry = this.names.get(name);
    switch (step.op) {
      case 'register': {
        if (atApex) return code(C.IS_APEX);
        if (entry !== undefined) return code(C.ALREADY_OWNED);
        const wildcard = name.startsWith('*.');
        const controller = this.closestRegistered(this.parent(name));
        if (controller !== undefined) {
          if (controller.owner !== sender) return code(C.ANCESTOR_OWNED);
        } else if ((wildcard || this.params.policy === 'admins') && !this.admins.has(sender)) {
          return code(C.NOT_ZONE_ADMIN);
        }
        if (!this.admins.has(sender) && this.othersBelow(name, sender)) {
          return code(C.DESCENDANT_OWNED);
        }
        this.names.set(name, { owner: sender, rrsets: new Map() });
        return 0;
      }
      case 'transfer':
      case 'release': {
        if (atApex) return code(C.IS_APEX);
        if (entry === undefined) return code(C.NOT_REGISTERED);
        if (entry.owner !== sender) return code(C.NOT_OWNER);
        if (step.op === 'transfer') {
          if (step.to === sender) return code(C.SELF_TRANSFER);
          entry.owner = step.to;
        } else {
          this.names.delete(name);
        }
        return 0;
      }
      case 'set':
      case 'delete': {
        const parsed = step.op === 'set' ? step.records.map((input) => parseRecord(input)) : [];
        const type = step.op === 'set' ? recordTypeCode(parsed[0]!) : step.type;
        if (atApex && type === RR_TYPES.NS) return code(C.MANAGED_TYPE);
        const cutType = type === RR_TYPES.NS || type === RR_TYPES.DS;
        if (step.op === 'set' && name.startsWith('*.') && cutType) return code(C.INVALID_RECORD);
        if (atApex) {
          if (!this.admins.has(sender)) return code(C.NOT_ZONE_ADMIN);
        } else {
          if (entry === undefined) return code(C.NOT_REGISTERED);
          if (entry.owner !== sender) return code(C.NOT_OWNER);
        }
        const rrsets = new Map(entry?.rrsets ?? []);
        if (step.op === 'delete') {
          if (!rrsets.delete(type)) return code(C.NO_SUCH_RRSET);
        } else {
          rrsets.set(type, { ttl: parsed[0]!.ttl, records: parsed });
        }
        const types = new Set(rrsets.keys());
        if (types.has(RR_TYPES.CNAME) && (types.size > 1 || atApex)) return code(C.CNAME_CONFLICT);
        if (types.has(RR_TYPES.DS) && (atApex || !types.has(RR_TYPES.NS))) {
          return code(C.DS_NOT_AT_DELEGATION);
        }
        if (step.op === 'set' && !atApex) {
          if (types.has(RR_TYPES.NS)) {
            if ([...types].some((t) => !AT_CUT.has(t))) return code(C.OCCLUDED_DATA);
            const hidden = [...this.names].some(
              ([other, data]) =>
                other !== name && isSubdomain(other, name) && nonGlue(data.rrsets.keys()),
            );
            if (hidden) return code(C.OCCLUDED_DATA);
          }
          if (nonGlue(types)) {
            const cut = this.strictlyBetween(name).some((other) =>
              this.names.get(other)!.rrsets.has(RR_TYPES.NS),
            );
            if (cut) return code(C.OCCLUDED_DATA);
          }
          if (type === RR_TYPES.NS && this.othersBelow(name, sender)) {
            return code(C.DESCENDANT_OWNED);
          }
        }
        if (entry === undefined) this.names.set(name, { owner: null, rrsets });
        else if (atApex && rrsets.size === 0) this.names.delete(name);
        else this.names.set(name, { owner: entry.owner, rrsets });
        return 0;
      }
    }
  }

  /** Every record the zone serves, SOA and apex NS included. */
  records(): ResourceRecord[] {
    const { apex, soa, nameservers } = this.params;
    const out: ResourceRecord[] = [
      {
        name: apex,
        type: 'SOA',
        class: 1,
        ttl: soa.ttl,
        data: {
          mname: soa.mname,
          rname: soa.rname,
          serial: this.serial,
          refresh: soa.refresh,
          retry: soa.retry,
          expire: soa.expire,
          minimum: soa.minimum,
        },
      },
      ...nameservers.hosts.map((host): ResourceRecord => ({
        name: apex,
        type: 'NS',
        class: 1,
        ttl: nameservers.ttl,
        data: { host },
      })),
    ];
    for (const data of this.names.values()) {
      for (const set of data.rrsets.values()) out.push(...set.records);
    }
    return out;
  }

  /** The zone the DNS servers must serve (MemoryZone.build refuses it if a rule was missed). */
  zone(): MemoryZone {
    return MemoryZone.build(this.apex, this.records());
  }
}

/** A zone's records as sorted canonical encodings, for comparing two zones. */
export function recordSet(records: readonly ResourceRecord[]): string[] {
  return records.map((rr) => Buffer.from(encodeRecordCanonical(rr)).toString('hex')).sort();
}
