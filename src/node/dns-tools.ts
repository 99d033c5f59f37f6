import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import type { NodeRpcClient } from '../consensus/net/index.js';
import { HyperMeshError } from '../codec/error.js';
import { SchemaError } from '../codec/schema.js';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import {
  DnsError,
  bindTrustAnchor,
  canonicalName,
  compareNamesCanonical,
  dsText,
  formatDnskey,
  isSubdomain,
  keyTag,
  parseRecord,
  recordToInput,
  typeCode,
} from '../trustchain/dns/index.js';
import type { DnskeyData, RecordInput, ResourceRecord } from '../trustchain/dns/index.js';
import {
  DNS_ZONES_MODULE_NAME,
  DnsZonesError,
  INDEX_BUCKETS,
  dnsIndexQuery,
  dnsNameQuery,
  dnsNameRegister,
  dnsNameRelease,
  dnsNameTransfer,
  dnsRecordsDelete,
  dnsRecordsSet,
  dnsZoneCreate,
  dnsZoneQuery,
  dnsZonesGenesisFromApp,
  dnsZonesQuery,
  verifyDnsIndex,
  verifyDnsName,
  verifyDnsZone,
  verifyDnsZones,
} from '../trustchain/dns-zones/index.js';
import type { DnsName, ZoneInfo, ZoneParams } from '../trustchain/dns-zones/index.js';
import { CliError } from './cli-error.js';
import { checkAnsweredHeight, committedRootsOf } from './verified-root.js';
import { submitTransaction, type SubmitOutcome } from './tx-submit.js';
import { readWalletKey, type WalletKey } from './wallet.js';

/**
 * The tools behind `hypermesh dns` (docs/dns.md, "CLI"): records written as on the command line
 * turned into the module's JSON form, records printed in zone-file form, proven reads of names
 * and whole zones (every answer's Merkle proof checked, all at one height), the signed `dns`
 * transactions, and the DS and trust anchor a genesis file defines.
 */

/** A module refusal or bad input as a CliError carrying the module's code in brackets. */
export function dnsFailure(error: unknown, exitCode = 2): never {
  if (error instanceof DnsZonesError || error instanceof HyperMeshError) {
    throw new CliError(`${error.message} [${error.code}]`, exitCode);
  }
  throw error;
}

const INTEGER = /^(0|[1-9][0-9]*)$/;

/** A field that should be a number: a number when it is digits, else left for the schema to refuse. */
function numeric(text: string): number | string {
  return INTEGER.test(text) ? Number(text) : text;
}

function unquote(text: string): string {
  return text.length >= 2 && text.startsWith('"') && text.endsWith('"') ? text.slice(1, -1) : text;
}

/** Splits a text into RFC 1035 character-strings of at most 255 UTF-8 bytes, whole characters. */
export function characterStrings(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let bytes = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > 255) {
      out.push(current);
      current = '';
      bytes = 0;
    }
    current += char;
    bytes += size;
  }
  out.push(current);
  return out;
}

const FIELD_FORMS: Readonly<Record<string, readonly string[]>> = {
  MX: ['preference', 'exchange'],
  SRV: ['priority', 'weight', 'port', 'target'],
  TLSA: ['usage', 'selector', 'matchingType', 'data'],
  DS: ['keyTag', 'algorithm', 'digestType', 'digest'],
};

/** The SvcParams of `key=value` words (RFC 9460 §2.1 presentation form, unquoted). */
function svcParams(words: readonly string[], type: string): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const word of words) {
    const at = word.indexOf('=');
    const key = at < 0 ? word : word.slice(0, at);
    const value = at < 0 ? undefined : unquote(word.slice(at + 1));
    if (key === 'no-default-alpn' && value === undefined) params[key] = true;
    else if (value === undefined)
      throw new CliError(`${type} parameter "${word}": expected KEY=VALUE`);
    else if (['alpn', 'mandatory', 'ipv4hint', 'ipv6hint'].includes(key))
      params[key] = value.split(',');
    else if (key === 'port') params[key] = numeric(value);
    else params[key] = value;
  }
  return params;
}

/**
 * One record's data from one VALUE argument: the type's presentation form (`10 mail.example.`
 * for MX, `1 1 443 node.hypermesh.` for SRV, `1 . alpn=h3,h2 port=443` for HTTPS), or for any
 * type the JSON form of its `data` (`{"rdata":"0a0b"}` for a TYPEnnn).
 */
function recordData(type: string, value: string): unknown {
  const trimmed = value.trim();
  if (trimmed.startsWith('{')) {
    try {
      return JSON.parse(trimmed) as unknown;
    } catch (error) {
      throw new CliError(`${type} value ${JSON.stringify(value)}: ${(error as Error).message}`);
    }
  }
  const words = trimmed.split(/\s+/).filter((word) => word !== '');
  const one = (field: string): Record<string, unknown> => {
    if (words.length !== 1) {
      throw new CliError(
        `${type} takes one ${field.toUpperCase()} per VALUE, got ${JSON.stringify(value)}`,
      );
    }
    return { [field]: words[0] };
  };
  switch (type) {
    case 'A':
    case 'AAAA':
      return one('address');
    case 'NS':
      return one('host');
    case 'CNAME':
      return one('target');
    case 'TXT':
      // Each VALUE is one TXT record; text above 255 bytes spans several character-strings.
      return { strings: characterStrings(value) };
    case 'CAA': {
      const [flags, tag, ...rest] = words;
      if (flags === undefined || tag === undefined || rest.length === 0) {
        throw new CliError(`CAA takes "FLAGS TAG VALUE", got ${JSON.stringify(value)}`);
      }
      return { flags: numeric(flags), tag, value: unquote(rest.join(' ')) };
    }
    case 'SVCB':
    case 'HTTPS': {
      const [priority, target, ...params] = words;
      if (priority === undefined || target === undefined) {
        throw new CliError(
          `${type} takes "PRIORITY TARGET [KEY=VALUE ...]", got ${JSON.stringify(value)}`,
        );
      }
      return {
        priority: numeric(priority),
        target,
        ...(params.length === 0 ? {} : { params: svcParams(params, type) }),
      };
    }
    default: {
      const fields = FIELD_FORMS[type];
      if (fields === undefined) {
        throw new CliError(
          `${type} values are written as the JSON form of the record's data, e.g. '{"rdata":"0a0b"}' for a TYPEnnn (docs/dns.md, Records)`,
        );
      }
      if (words.length !== fields.length) {
        throw new CliError(
          `${type} takes "${fields.map((field) => field.toUpperCase()).join(' ')}" per VALUE, got ${JSON.stringify(value)}`,
        );
      }
      const data: Record<string, unknown> = {};
      fields.forEach((field, i) => {
        const word = words[i] as string;
        const isHex = field === 'data' || field === 'digest';
        const isName = field === 'exchange' || field === 'target';
        data[field] = isHex ? word.toLowerCase() : isName ? word : numeric(word);
      });
      return data;
    }
  }
}

/** The record type as written (`aaaa` → `AAAA`, `type65400` → `TYPE65400`). */
export function recordType(text: string): string {
  const type = text.toUpperCase();
  if (typeCode(type) === undefined) {
    throw new CliError(
      `"${text}" is not a record type (A, AAAA, NS, CNAME, MX, TXT, SRV, CAA, TLSA, SVCB, HTTPS, DS, or TYPEnnn)`,
    );
  }
  return type;
}

/**
 * The RRset `NAME TYPE VALUE...` describes, in the module's JSON form, one record per VALUE,
 * checked by the record parser (errors name the record and field, with the module's code).
 */
export function recordsFromArguments(
  name: string,
  typeText: string,
  values: readonly string[],
  ttl: number,
): RecordInput[] {
  const type = recordType(typeText);
  if (values.length === 0) throw new CliError(`give at least one VALUE for the ${type} records`);
  const records = values.map((value) => ({ name, type, ttl, data: recordData(type, value) }));
  records.forEach((record, i) => {
    try {
      parseRecord(record, `VALUE ${i + 1} (${JSON.stringify(values[i])})`);
    } catch (error) {
      if (error instanceof SchemaError || error instanceof DnsError) {
        throw new CliError(`${error.message} [DNS_ZONES_INVALID_RECORD]`);
      }
      throw error;
    }
  });
  return records;
}

/** A name written on the command line, canonical (lowercase, trailing dot). */
export function nameArgument(text: string, what = 'NAME'): string {
  try {
    return canonicalName(text);
  } catch (error) {
    if (error instanceof DnsError) {
      throw new CliError(
        `${what} ${JSON.stringify(text)}: ${error.message} [DNS_ZONES_INVALID_NAME]`,
      );
    }
    throw error;
  }
}

function quoteText(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.codePointAt(0) as number;
    if (char === '"' || char === '\\') out += `\\${char}`;
    else if (code < 0x20 || code === 0x7f) out += `\\${String(code).padStart(3, '0')}`;
    else out += char;
  }
  return `${out}"`;
}

function svcParamsText(params: Record<string, unknown>): string {
  return Object.entries(params)
    .map(([key, value]) =>
      value === true ? key : `${key}=${Array.isArray(value) ? value.join(',') : String(value)}`,
    )
    .join(' ');
}

/** The RDATA of a record in presentation form (RFC 1035 §5.1; RFC 3597 §5 for unknown types). */
export function rdataText(rr: ResourceRecord): string {
  const data = recordToInput(rr).data as Record<string, unknown>;
  const d = (field: string): string => String(data[field]);
  switch (rr.type) {
    case 'A':
    case 'AAAA':
      return d('address');
    case 'NS':
      return d('host');
    case 'CNAME':
      return d('target');
    case 'MX':
      return `${d('preference')} ${d('exchange')}`;
    case 'TXT':
      return (data.strings as string[]).map(quoteText).join(' ');
    case 'SRV':
      return `${d('priority')} ${d('weight')} ${d('port')} ${d('target')}`;
    case 'CAA':
      return `${d('flags')} ${d('tag')} ${quoteText(d('value'))}`;
    case 'TLSA':
      return `${d('usage')} ${d('selector')} ${d('matchingType')} ${d('data').toUpperCase()}`;
    case 'DS':
      return `${d('keyTag')} ${d('algorithm')} ${d('digestType')} ${d('digest').toUpperCase()}`;
    case 'SOA':
      return ['mname', 'rname', 'serial', 'refresh', 'retry', 'expire', 'minimum'].map(d).join(' ');
    case 'DNSKEY':
      return `${d('flags')} ${d('protocol')} ${d('algorithm')} ${d('publicKey')}`;
    case 'SVCB':
    case 'HTTPS': {
      const params = data.params as Record<string, unknown> | undefined;
      const tail = params === undefined ? '' : ` ${svcParamsText(params)}`;
      return `${d('priority')} ${d('target')}${tail}`;
    }
    default: {
      const hex = d('rdata');
      return `\\# ${hex.length / 2}${hex === '' ? '' : ` ${hex.toUpperCase()}`}`;
    }
  }
}

/** A record as a zone-file line: `www.hypermesh. 300 IN A 192.0.2.7`. */
export function formatRecord(rr: ResourceRecord): string {
  return `${rr.name} ${rr.ttl} IN ${rr.type} ${rdataText(rr)}`;
}

/** The apex SOA and NS records of a proven zone (the module keeps them in the zone, not a name). */
export function zoneApexRecords(zone: ZoneInfo): ResourceRecord[] {
  const { soa, nameservers } = zone;
  return [
    {
      name: zone.apex,
      type: 'SOA',
      class: 1,
      ttl: soa.ttl,
      data: {
        mname: soa.mname,
        rname: soa.rname,
        serial: zone.serial,
        refresh: soa.refresh,
        retry: soa.retry,
        expire: soa.expire,
        minimum: soa.minimum,
      },
    },
    ...nameservers.hosts.map((host): ResourceRecord => ({
      name: zone.apex,
      type: 'NS',
      class: 1,
      ttl: nameservers.ttl,
      data: { host },
    })),
  ];
}

/** Where a set of proven reads came from: one node, one height, one state root. */
export interface ProvenAt {
  readonly height: number | null;
  readonly stateRoot: string;
}

async function provenQuery<T>(
  client: NodeRpcClient,
  request: QueryRequest,
  verify: (response: QueryResponse) => T,
): Promise<{ value: T; at: ProvenAt }> {
  const roots = committedRootsOf(client);
  const response = await client.query(request);
  checkAnsweredHeight(request.height, response.height);
  let value: T;
  try {
    value = verify(response);
  } catch (error) {
    if (error instanceof HyperMeshError) {
      throw new CliError(`the node's answer does not verify: ${error.message} [${error.code}]`, 1);
    }
    throw error;
  }
  // The root the proofs check against must be one the validator quorum committed.
  await roots.check(response.height, response.stateRoot);
  return { value, at: { height: response.height, stateRoot: toHex(response.stateRoot) } };
}

function sameState(first: ProvenAt, other: ProvenAt): void {
  if (first.stateRoot !== other.stateRoot || first.height !== other.height) {
    throw new CliError(
      `the node answered from state root ${other.stateRoot} at height ${other.height}, after ${first.stateRoot} at height ${first.height} was asked for`,
      1,
    );
  }
}

/** The proven zone apexes. */
export async function readZones(
  client: NodeRpcClient,
  height?: number,
): Promise<{ value: string[]; at: ProvenAt }> {
  return provenQuery(client, dnsZonesQuery(height), verifyDnsZones);
}

/** The zone `name` is in (the proven apex at or above it), or a CliError naming the zones. */
export async function zoneOf(client: NodeRpcClient, name: string): Promise<string> {
  const zones = (await readZones(client)).value;
  const apex = zones.find((zone) => isSubdomain(name, zone));
  if (apex === undefined) {
    throw new CliError(
      `${name} is in no zone (zones: ${zones.length === 0 ? 'none' : zones.join(', ')}) [DNS_ZONES_NOT_IN_ZONE]`,
      1,
    );
  }
  return apex;
}

export interface ProvenName extends ProvenAt {
  readonly name: string;
  /** The name's entry, or null when nobody registered it (proven absent). */
  readonly entry: DnsName | null;
  /** The zone, proven at the same height, when the name is its apex (SOA and NS live there). */
  readonly zone: ZoneInfo | null;
}

/** Reads a name's entry (and, at an apex, its zone) with their proofs checked. */
export async function readName(
  client: NodeRpcClient,
  name: string,
  height?: number,
): Promise<ProvenName> {
  const read = await provenQuery(client, dnsNameQuery(name, height), (response) =>
    verifyDnsName(name, response),
  );
  const pinned = read.at.height ?? undefined;
  const zoneRead = await provenQuery(client, dnsZoneQuery(name, pinned), (response) =>
    verifyDnsZone(name, response),
  );
  sameState(read.at, zoneRead.at);
  return { name, entry: read.value, zone: zoneRead.value, ...read.at };
}

/** Every record a proven name holds, with the apex's SOA and NS when it is one. */
export function nameRecords(read: ProvenName): ResourceRecord[] {
  return [
    ...(read.zone === null ? [] : zoneApexRecords(read.zone)),
    ...(read.entry?.records ?? []),
  ];
}

export interface ProvenZone extends ProvenAt {
  readonly zone: ZoneInfo;
  /** The apex entry (its admin-set records; may be null) and every registered name, canonical order. */
  readonly names: readonly DnsName[];
}

/** Queries in flight at once while reading a zone. */
const ZONE_READ_CONCURRENCY = 16;

async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      out[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Reads a whole zone at one height: its parameters, the 256 buckets of its name index and every
 * name's entry, each answer's proof checked against the same state root. The index must account
 * for exactly the zone's name count.
 */
export async function readZone(
  client: NodeRpcClient,
  apex: string,
  height?: number,
): Promise<ProvenZone> {
  const first = await provenQuery(client, dnsZoneQuery(apex, height), (response) =>
    verifyDnsZone(apex, response),
  );
  if (first.value === null) {
    const zones = (await readZones(client, first.at.height ?? undefined)).value;
    throw new CliError(
      `there is no zone ${apex} (zones: ${zones.length === 0 ? 'none' : zones.join(', ')}) [DNS_ZONES_NO_SUCH_ZONE]`,
      1,
    );
  }
  const zone = first.value;
  const pinned = first.at.height ?? undefined;
  const buckets = Array.from({ length: INDEX_BUCKETS }, (_, bucket) => bucket);
  const lists = await mapLimited(buckets, ZONE_READ_CONCURRENCY, async (bucket) => {
    const read = await provenQuery(client, dnsIndexQuery(apex, bucket, pinned), (response) =>
      verifyDnsIndex(apex, bucket, response),
    );
    sameState(first.at, read.at);
    return read.value;
  });
  // The index lists the apex too once an admin set records there; the zone does not count it.
  const registered = lists.flat().filter((name) => name !== apex);
  if (registered.length !== zone.names) {
    throw new CliError(
      `the proven index of ${apex} lists ${registered.length} name(s), the zone counts ${zone.names}`,
      1,
    );
  }
  const all = [apex, ...registered.sort(compareNamesCanonical)];
  const entries = await mapLimited(all, ZONE_READ_CONCURRENCY, async (name) => {
    const read = await provenQuery(client, dnsNameQuery(name, pinned), (response) =>
      verifyDnsName(name, response),
    );
    sameState(first.at, read.at);
    if (read.value === null && name !== apex) {
      throw new CliError(`the index of ${apex} lists ${name}, which is proven absent`, 1);
    }
    return read.value;
  });
  return {
    zone,
    names: entries.filter((entry): entry is DnsName => entry !== null),
    ...first.at,
  };
}

/** The zone as zone-file text: a comment header, the apex SOA/NS, then each name's records. */
export function zoneText(read: ProvenZone, node: string, dnskey: DnskeyData | undefined): string {
  const { zone } = read;
  const lines = [
    `; zone ${zone.apex} (${zone.kind}, policy ${zone.policy}), serial ${zone.serial}, ${zone.names} registered name(s), created at height ${zone.createdAt}`,
    `; admins ${zone.admins.map(toHex).join(', ')}`,
    dnskey === undefined
      ? '; DNSSEC: unsigned (the genesis has no DNSKEY for this zone)'
      : `; DNSSEC: signed online, key tag ${keyTag(dnskey)} (DNSKEY from the genesis; hypermesh dns ds prints the DS)`,
    `; height ${read.height ?? '-'}, proofs verified against state root ${read.stateRoot} (${node})`,
    ...zoneApexRecords(zone).map(formatRecord),
  ];
  for (const entry of read.names) {
    if (entry.name !== zone.apex || entry.owner !== null) {
      lines.push(
        `; ${entry.name} owner ${entry.owner === null ? '(zone admins)' : toHex(entry.owner)}, registered at height ${entry.registeredAt}, updated at height ${entry.updatedAt}`,
      );
    }
    lines.push(...entry.records.map(formatRecord));
  }
  return `${lines.join('\n')}\n`;
}

/** The JSON form of a proven zone (`dns zone --json`). */
export function zoneJson(read: ProvenZone, node: string, dnskey: DnskeyData | undefined) {
  const { zone } = read;
  return {
    node,
    height: read.height,
    stateRoot: read.stateRoot,
    apex: zone.apex,
    kind: zone.kind,
    policy: zone.policy,
    serial: zone.serial,
    createdAt: zone.createdAt,
    admins: zone.admins.map(toHex),
    soa: zone.soa,
    nameservers: zone.nameservers,
    dnssec: dnskey === undefined ? null : { keyTag: keyTag(dnskey), ds: dsText(zone.apex, dnskey) },
    names: read.names.map((entry) => ({
      name: entry.name,
      owner: entry.owner === null ? null : toHex(entry.owner),
      registeredAt: entry.registeredAt,
      updatedAt: entry.updatedAt,
      records: entry.records.map(recordToInput),
    })),
  };
}

/** What a DNS change needs: where to send it and who signs it. */
export interface DnsChangeContext {
  readonly client: NodeRpcClient;
  readonly genesis: GenesisDocument;
  readonly signer: WalletKey;
  readonly wait: boolean;
  readonly timeoutMs: number;
}

/** Signs and submits one `dns` transaction body. */
export function submitDnsBody(context: DnsChangeContext, body: Uint8Array): Promise<SubmitOutcome> {
  return submitTransaction({
    client: context.client,
    genesis: context.genesis,
    privateKey: context.signer.privateKey,
    module: DNS_ZONES_MODULE_NAME,
    body,
    wait: context.wait,
    timeoutMs: context.timeoutMs,
  });
}

/** What `dns set` must do first for `name`, decided from its proven entry. */
export type Registration =
  | { readonly kind: 'apex' }
  | { readonly kind: 'owned' }
  | { readonly kind: 'unregistered' }
  | { readonly kind: 'other-owner'; readonly owner: string };

export function registrationOf(read: ProvenName, signer: WalletKey): Registration {
  if (read.zone !== null) return { kind: 'apex' };
  if (read.entry === null) return { kind: 'unregistered' };
  const owner = read.entry.owner;
  if (owner !== null && bytesEqual(owner, signer.publicKey)) return { kind: 'owned' };
  return { kind: 'other-owner', owner: owner === null ? '(zone admins)' : toHex(owner) };
}

export function registerBody(name: string): Uint8Array {
  try {
    return dnsNameRegister(name);
  } catch (error) {
    return dnsFailure(error);
  }
}

export function setBody(records: readonly RecordInput[]): Uint8Array {
  try {
    return dnsRecordsSet(records);
  } catch (error) {
    return dnsFailure(error);
  }
}

export function transferBody(name: string, recipient: Uint8Array): Uint8Array {
  try {
    return dnsNameTransfer(name, recipient);
  } catch (error) {
    return dnsFailure(error);
  }
}

export function zoneCreateBody(zone: ZoneParams): Uint8Array {
  try {
    return dnsZoneCreate(zone);
  } catch (error) {
    return dnsFailure(error);
  }
}

const HEX_DIGITS = /^(0x)?[0-9a-fA-F]+$/;

/**
 * An Ed25519 public key given on the command line (`--admin`, `--to`): 64 hex digits, or a key
 * file (a wallet key or a node identity, unencrypted: an encrypted file hides its public key)
 * whose public key is meant.
 */
export async function publicKeyArgument(text: string, what: string): Promise<Uint8Array> {
  if (HEX_DIGITS.test(text)) {
    const digits = text.replace(/^0x/, '');
    if (digits.length === 64) return Uint8Array.from(Buffer.from(digits.toLowerCase(), 'hex'));
    // A hex string of another length is a mistyped key far more often than a file name.
    if (digits.length > 16) {
      throw new CliError(
        `${what} "${text}" is not a public key: it has ${digits.length} hex digits, an Ed25519 public key has 64`,
      );
    }
  }
  try {
    return (await readWalletKey(text)).publicKey;
  } catch (error) {
    if (error instanceof CliError) {
      throw new CliError(
        `${what} "${text}" is neither an Ed25519 public key (64 hex digits) nor a readable key file: ${error.message}`,
        error.exitCode,
      );
    }
    throw error;
  }
}

/** The SOA fields `zone-create` takes, each optional (see `zoneParams` for the defaults). */
export interface ZoneOptions {
  readonly apex: string;
  readonly admins: readonly Uint8Array[];
  readonly nameservers: readonly string[];
  readonly policy?: string;
  readonly nsTtl?: number;
  readonly soa?: {
    readonly ttl?: number;
    readonly mname?: string;
    readonly rname?: string;
    readonly refresh?: number;
    readonly retry?: number;
    readonly expire?: number;
    readonly minimum?: number;
  };
}

/** Defaults of a new zone's SOA and NS: those `cluster init` gives the cluster zone. */
export const ZONE_DEFAULTS = {
  ttl: 3600,
  refresh: 3600,
  retry: 600,
  expire: 86_400,
  minimum: 60,
  nsTtl: 3600,
  policy: 'open',
} as const;

/**
 * The parameters of a new zone from the command line: SOA MNAME defaults to the first name
 * server, RNAME to `hostmaster.<apex>`, the timers to `ZONE_DEFAULTS`. The module's rules
 * (admins, hosts, policy, ranges) are checked by the body builder.
 */
export function zoneParams(options: ZoneOptions): ZoneParams {
  const { apex, soa = {} } = options;
  if (options.nameservers.length === 0) {
    throw new CliError(
      `give the zone's name servers with --ns HOST (1 to 13; e.g. the cluster zone's, ns1.hypermesh.) [DNS_ZONES_INVALID_ZONE]`,
    );
  }
  const rname = soa.rname ?? `hostmaster.${apex === '.' ? '' : apex}`;
  if (rname.includes('@')) {
    throw new CliError(
      `--rname "${rname}": write the mailbox as a name (hostmaster.example. for hostmaster@example), RFC 1035 §8 [DNS_ZONES_INVALID_ZONE]`,
    );
  }
  return {
    apex,
    admins: options.admins,
    policy: (options.policy ?? ZONE_DEFAULTS.policy) as ZoneParams['policy'],
    soa: {
      ttl: soa.ttl ?? ZONE_DEFAULTS.ttl,
      mname: soa.mname ?? (options.nameservers[0] as string),
      rname,
      refresh: soa.refresh ?? ZONE_DEFAULTS.refresh,
      retry: soa.retry ?? ZONE_DEFAULTS.retry,
      expire: soa.expire ?? ZONE_DEFAULTS.expire,
      minimum: soa.minimum ?? ZONE_DEFAULTS.minimum,
    },
    nameservers: { ttl: options.nsTtl ?? ZONE_DEFAULTS.nsTtl, hosts: options.nameservers },
  };
}

export function deleteBody(name: string, type: string | undefined): Uint8Array {
  try {
    return type === undefined ? dnsNameRelease(name) : dnsRecordsDelete(name, recordType(type));
  } catch (error) {
    return dnsFailure(error);
  }
}

/** The DNSKEY each signed zone's genesis entry publishes, by apex. */
export function genesisDnskeys(
  genesis: GenesisDocument,
  genesisFile: string,
): Map<string, DnskeyData> {
  let section;
  try {
    section = dnsZonesGenesisFromApp(genesis.app);
  } catch (error) {
    if (error instanceof HyperMeshError) {
      throw new CliError(
        `invalid app.dns section in ${genesisFile}: ${error.message} [${error.code}]`,
        1,
      );
    }
    throw error;
  }
  if (section === undefined) {
    throw new CliError(
      `chain "${genesis.chainId}" has no DNS zones: ${genesisFile} has no app.${DNS_ZONES_MODULE_NAME} section`,
      1,
    );
  }
  return new Map(section.dnskeys ?? []);
}

/** The DS record, DNSKEY and delv/BIND trust anchor of a signed zone. */
export interface ZoneTrust {
  readonly zone: string;
  readonly keyTag: number;
  readonly ds: string;
  readonly dnskey: string;
  readonly trustAnchor: string;
}

export function zoneTrust(zone: string, dnskey: DnskeyData): ZoneTrust {
  return {
    zone,
    keyTag: keyTag(dnskey),
    ds: dsText(zone, dnskey),
    dnskey: formatDnskey(zone, dnskey),
    trustAnchor: bindTrustAnchor(zone, dnskey),
  };
}
