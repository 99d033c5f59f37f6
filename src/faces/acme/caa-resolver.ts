import { randomInt } from 'node:crypto';
import type { CaaRecord } from '../../trustchain/ca/caa.js';
import {
  CLASS_IN,
  RR_TYPES,
  Rcode,
  answer,
  decodeMessage,
  encodeMessage,
  nameKey,
  namesEqual,
  type DnsMessage,
  type ZoneSource,
} from '../../trustchain/dns/index.js';
import { AcmeError, AcmeErrorCode } from './errors.js';

/**
 * The CAA lookups behind the server's CAA check (RFC 8659 §3), behind an interface like the
 * dns-01 `TxtResolver`. `lookupCaa(domain)` returns the CAA RRset DNS resolution of `domain`
 * yields (CNAMEs followed), `[]` when there is none, and throws `AcmeError` `DNS_LOOKUP_FAILED`
 * when no answer can be had. Climbing to ancestors is the caller's (caaSearchDomains).
 */
export interface CaaResolver {
  lookupCaa(domain: string): Promise<readonly CaaRecord[]>;
}

/** CNAMEs followed from the queried name before giving up (as the dns-01 resolver). */
const MAX_CNAME_DEPTH = 8;

function failed(reason: string, message: string, detail: Record<string, unknown> = {}): AcmeError {
  return new AcmeError(AcmeErrorCode.DNS_LOOKUP_FAILED, message, { reason, ...detail });
}

/**
 * Answers CAA lookups from a `ZoneSource` in process — the zones a node's DNS servers answer
 * from (the cluster's committed `dns` state), through the same answer engine, so the records
 * seen are exactly what the node's DNS server would answer, without a socket or a timeout.
 * `zones` is called once per lookup (so a caller can hand over the current zones). A name in
 * none of the zones (REFUSED: not the cluster's) has no CAA records here; NXDOMAIN and NODATA
 * are empty RRsets. CNAMEs inside the zones are followed by the engine, across zones by this
 * resolver.
 */
export class ZoneSourceCaaResolver implements CaaResolver {
  constructor(private readonly zones: () => ZoneSource) {}

  lookupCaa(domain: string): Promise<readonly CaaRecord[]> {
    try {
      return Promise.resolve(this.lookup(domain));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private lookup(domain: string): CaaRecord[] {
    const zones = this.zones();
    let current = domain;
    const seen = new Set<string>();
    for (let depth = 0; depth <= MAX_CNAME_DEPTH; depth++) {
      const response = query(zones, current);
      if (response.rcode === Rcode.REFUSED || response.rcode === Rcode.NXDOMAIN) return [];
      if (response.rcode !== Rcode.NOERROR) {
        throw failed('rcode', `the zones answered rcode ${response.rcode} for ${current} CAA`, {
          rcode: response.rcode,
        });
      }
      let owner = current;
      // The engine stops chasing at a loop; a real resolver answers SERVFAIL there, which
      // RFC 8659 §3 makes a lookup failure, so a loop refuses rather than reading as no records.
      const chain = new Set([nameKey(current)]);
      for (let hop = 0; hop <= MAX_CNAME_DEPTH; hop++) {
        const cname = response.answers.find(
          (rr) => rr.type === 'CNAME' && namesEqual(rr.name, owner),
        );
        if (cname === undefined || cname.type !== 'CNAME') break;
        owner = cname.data.target;
        const key = nameKey(owner);
        if (chain.has(key) || seen.has(key)) {
          throw failed('cname_loop', `the CNAMEs from ${domain} loop at ${owner}`);
        }
        chain.add(key);
      }
      const records: CaaRecord[] = [];
      for (const rr of response.answers) {
        if (rr.type === 'CAA' && namesEqual(rr.name, owner)) {
          // Values are octets (RFC 8659 §4.1.1); latin1 keeps each one, and the issue-value
          // grammar then refuses anything outside printable ASCII.
          records.push({
            flags: rr.data.flags,
            tag: rr.data.tag,
            value: Buffer.from(rr.data.value).toString('latin1'),
          });
        }
      }
      if (records.length > 0 || namesEqual(owner, current)) return records;
      const key = nameKey(owner);
      if (seen.has(key)) break;
      seen.add(key);
      current = owner;
    }
    throw failed('cname_loop', `more than ${MAX_CNAME_DEPTH} CNAMEs from ${domain}`);
  }
}

function query(zones: ZoneSource, name: string): DnsMessage {
  const id = randomInt(0, 0x10000);
  const fqdn = name.endsWith('.') ? name : `${name}.`;
  const message = encodeMessage({
    id,
    recursionDesired: false,
    questions: [{ name: fqdn, type: RR_TYPES.CAA, class: CLASS_IN }],
  });
  const bytes = answer(message, zones, { transport: 'tcp' });
  if (bytes === null) throw failed('malformed', `the answer engine dropped the query for ${fqdn}`);
  try {
    return decodeMessage(bytes);
  } catch (error) {
    throw failed('malformed', `malformed answer for ${fqdn} CAA: ${(error as Error).message}`);
  }
}
