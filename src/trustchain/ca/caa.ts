/**
 * CAA decisions (RFC 8659, with the RFC 8657 `accounturi` and `validationmethods` parameters).
 * Pure functions over records the caller already looked up; the DNS lookup itself (and CNAME
 * handling) belongs to the component that performs multi-perspective validation.
 */

export interface CaaRecord {
  /** Flags octet; bit 0 (value 128) is the Issuer Critical flag (RFC 8659 §4.1). */
  readonly flags: number;
  readonly tag: string;
  readonly value: string;
}

/** What the CA knows about the request, for RFC 8657 parameters. */
export interface CaaContext {
  /** The requester's account URI (RFC 8657 §3). */
  readonly accountUri?: string;
  /** The validation method used, e.g. `dns-01` (RFC 8657 §4). */
  readonly validationMethod?: string;
  /**
   * The RFC 8657 parameters were already checked by whoever validated control of the name
   * (the `ca` module, for a name with a quorum of DCV attestations: each holder checked CAA with
   * the account and method it saw); a property naming this issuer then authorises whatever its
   * `accounturi` and `validationmethods` say.
   */
  readonly parametersChecked?: boolean;
}

export type CaaDecision =
  | {
      readonly allowed: true;
      readonly reason: 'no_records' | 'no_issue_property' | 'authorized';
    }
  | {
      readonly allowed: false;
      readonly reason: 'unknown_critical_property' | 'not_authorized';
      readonly tag?: string;
    };

/** Tags whose meaning is known here (RFC 8659 §4.2–4.4, CA/Browser Forum, RFC 9495). */
const KNOWN_TAGS = new Set([
  'issue',
  'issuewild',
  'iodef',
  'contactemail',
  'contactphone',
  'issuemail',
  'issuevmc',
]);

const ISSUER_CRITICAL = 0x80;

/**
 * RFC 8659 §3: the Relevant RRset is the CAA RRset of the closest of `name` and its ancestors
 * (stopping before the root) that is non-empty. For a wildcard name the search starts at the
 * name without its `*.` label. Returns `null` when no ancestor has CAA records.
 */
export function relevantCaaRecordSet(
  name: string,
  lookup: (domain: string) => readonly CaaRecord[],
): { readonly domain: string; readonly records: readonly CaaRecord[] } | null {
  for (const domain of caaSearchDomains(name)) {
    const records = lookup(domain);
    if (records.length > 0) return { domain, records };
  }
  return null;
}

/**
 * The domains whose CAA RRsets RFC 8659 §3 consults for `name`, closest first: the name itself
 * (without a leading `*.`), then each ancestor, stopping before the root. A trailing dot is
 * ignored. For callers whose lookups are asynchronous (a DNS query per domain).
 */
export function caaSearchDomains(name: string): string[] {
  const base = (name.startsWith('*.') ? name.slice(2) : name).replace(/\.$/, '');
  const labels = base.split('.');
  const domains: string[] = [];
  for (let i = 0; i < labels.length && labels[i] !== ''; i++) {
    domains.push(labels.slice(i).join('.'));
  }
  return domains;
}

interface IssueValue {
  /** Lowercase issuer domain; `null` when empty or when the value does not match the grammar. */
  readonly issuer: string | null;
  readonly parameters: ReadonlyMap<string, string>;
}

const LABEL = '[A-Za-z0-9](?:-*[A-Za-z0-9])*';
const ISSUER = new RegExp(`^${LABEL}(?:\\.${LABEL})*`);
const PARAMETER = new RegExp(`^(${LABEL})[ \\t]*=[ \\t]*([\\x21-\\x3a\\x3c-\\x7e]*)`);

/**
 * RFC 8659 §4.2 issue-value grammar. A value that does not match it is treated as one with an
 * empty issuer-domain-name: it restricts issuance and authorizes nobody.
 */
export function parseIssueValue(value: string): IssueValue {
  const empty: IssueValue = { issuer: null, parameters: new Map() };
  let rest = value.replace(/^[ \t]*/, '');
  let issuer: string | null = null;
  const match = ISSUER.exec(rest);
  if (match) {
    issuer = match[0].toLowerCase();
    rest = rest.slice(match[0].length).replace(/^[ \t]*/, '');
  }
  const parameters = new Map<string, string>();
  if (rest.startsWith(';')) {
    rest = rest.slice(1).replace(/^[ \t]*/, '');
    while (rest.length > 0) {
      const parameter = PARAMETER.exec(rest);
      if (!parameter) return empty;
      parameters.set((parameter[1] as string).toLowerCase(), parameter[2] as string);
      rest = rest.slice(parameter[0].length).replace(/^[ \t]*/, '');
      if (rest.startsWith(';')) {
        rest = rest.slice(1).replace(/^[ \t]*/, '');
        if (rest.length === 0) return empty;
      } else if (rest.length > 0) {
        return empty;
      }
    }
  } else if (rest.length > 0) {
    return empty;
  }
  return { issuer, parameters };
}

function authorizes(
  value: IssueValue,
  issuerDomains: readonly string[],
  context: CaaContext,
): boolean {
  if (value.issuer === null || !issuerDomains.includes(value.issuer)) return false;
  if (context.parametersChecked === true) return true;
  const accountUri = value.parameters.get('accounturi');
  if (accountUri !== undefined && accountUri !== context.accountUri) return false;
  const methods = value.parameters.get('validationmethods');
  if (methods !== undefined) {
    const method = context.validationMethod;
    if (method === undefined || !methods.split(',').includes(method)) return false;
  }
  return true;
}

/**
 * Whether the Relevant RRset `records` lets the CA known as `issuerDomain` issue for `name`
 * (RFC 8659 §4): no records allow; an unknown tag with the Issuer Critical flag forbids; for a
 * wildcard name `issuewild` properties take precedence over `issue` when any are present; a
 * non-wildcard name ignores `issuewild`; without any applicable property issuance is allowed,
 * otherwise one of them must name this issuer (with matching RFC 8657 parameters).
 */
export function caaAllows(
  issuerDomain: string | readonly string[],
  records: readonly CaaRecord[],
  name: string,
  context: CaaContext = {},
): CaaDecision {
  if (records.length === 0) return { allowed: true, reason: 'no_records' };
  for (const record of records) {
    const tag = record.tag.toLowerCase();
    if (record.flags & ISSUER_CRITICAL && !KNOWN_TAGS.has(tag)) {
      return { allowed: false, reason: 'unknown_critical_property', tag: record.tag };
    }
  }
  const domains = (typeof issuerDomain === 'string' ? [issuerDomain] : issuerDomain).map((d) =>
    d.toLowerCase(),
  );
  const withTag = (tag: string): CaaRecord[] =>
    records.filter((record) => record.tag.toLowerCase() === tag);
  const wildcard = name.startsWith('*.');
  const issuewild = withTag('issuewild');
  const applicable = wildcard && issuewild.length > 0 ? issuewild : withTag('issue');
  if (applicable.length === 0) return { allowed: true, reason: 'no_issue_property' };
  const ok = applicable.some((record) =>
    authorizes(parseIssueValue(record.value), domains, context),
  );
  return ok
    ? { allowed: true, reason: 'authorized' }
    : { allowed: false, reason: 'not_authorized' };
}

/**
 * A CAA record from its decoded RDATA (RFC 8659 §4.1.1): the value is octets, read as latin1
 * so each one is kept; the issue-value grammar then refuses anything outside printable ASCII.
 */
export function caaRecordFromRdata(data: {
  readonly flags: number;
  readonly tag: string;
  readonly value: Uint8Array;
}): CaaRecord {
  return {
    flags: data.flags,
    tag: data.tag,
    value: Buffer.from(data.value.buffer, data.value.byteOffset, data.value.byteLength).toString(
      'latin1',
    ),
  };
}
