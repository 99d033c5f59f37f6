import { promises as dnsPromises, type CaaRecord as NodeCaaRecord } from 'node:dns';
import net from 'node:net';
import type { CaaRecord } from '../../trustchain/ca/caa.js';
import type { CaaResolver } from './caa-resolver.js';
import type { TxtResolver } from './dns-resolver.js';
import { AcmeError, AcmeErrorCode } from './errors.js';

/**
 * Resolution of external domain names (docs/acme.md, "External names"): names outside the
 * cluster's zones are looked up through a recursive DNS resolver — A/AAAA to connect http-01
 * and tls-alpn-01, TXT for dns-01, CAA for the CAA check — with `node:dns`'s `Resolver`
 * (c-ares). Names in the cluster's zones keep the cluster's own path; `ExternalNames` is the
 * predicate and the resolver together, as the validation and the CAA check receive them.
 */

/** A/AAAA lookups for connecting a challenge validation to a name. */
export interface AddressResolver {
  /**
   * The addresses `name` resolves to, IPv4 first; `[]` when it has none; throws `AcmeError`
   * `DNS_LOOKUP_FAILED` when no answer can be had.
   */
  lookupAddresses(name: string): Promise<string[]>;
}

export type ExternalResolver = AddressResolver & TxtResolver & CaaResolver;

/** Which names are external, and the resolver for them. */
export interface ExternalNames {
  /** True for a DNS name outside the cluster's zones (its lookups go to `resolver`). */
  readonly isExternal: (name: string) => boolean;
  readonly resolver: ExternalResolver;
}

export interface RecursiveResolverOptions {
  /**
   * Resolver addresses in `dns.setServers` form (`ip`, `ip:port`, `[v6]:port`); default: the
   * system's resolvers (`dns.getServers()`).
   */
  readonly servers?: readonly string[];
  /** Per query attempt (default 2 s). */
  readonly timeoutMs?: number;
  /** Attempts per server (default 2). */
  readonly tries?: number;
}

/** Answers that mean "no such records": the RRset is empty. */
const EMPTY_CODES = new Set<string>([dnsPromises.NODATA, dnsPromises.NOTFOUND]);

function failed(name: string, type: string, error: unknown): AcmeError {
  const code = (error as { code?: unknown }).code;
  return new AcmeError(
    AcmeErrorCode.DNS_LOOKUP_FAILED,
    `${type} lookup of ${name} failed${typeof code === 'string' ? ` (${code})` : ''}: ${(error as Error).message}`,
    { reason: 'resolver', code: typeof code === 'string' ? code : null },
  );
}

/**
 * Parses the node configuration's `acme.resolver` ("host:port", IPv4 or `[v6]:port`) into the
 * `dns.setServers` form; throws `AcmeError` `INVALID_OPTIONS` for anything else.
 */
export function parseResolverAddress(text: string): string {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  const family = host === undefined ? 0 : net.isIP(host);
  const v6 = match?.[1] !== undefined;
  if (
    match === null ||
    host === undefined ||
    family === 0 ||
    (family === 6) !== v6 ||
    !Number.isInteger(port) ||
    port < 1 ||
    port > 65_535
  ) {
    throw new AcmeError(
      AcmeErrorCode.INVALID_OPTIONS,
      `the resolver ${JSON.stringify(text)} is not "ipv4:port" or "[ipv6]:port"`,
      { resolver: text },
    );
  }
  return text;
}

/** Whether `text` is an `acme.resolver` value `parseResolverAddress` accepts. */
export function isResolverAddress(text: string): boolean {
  try {
    parseResolverAddress(text);
    return true;
  } catch (error) {
    if (error instanceof AcmeError) return false;
    throw error;
  }
}

/** RFC 8659 §4.1 form of one of `dns.resolveCaa`'s records (flags byte, tag, value). */
function caaRecord(record: NodeCaaRecord): CaaRecord | null {
  const entries = Object.entries(record).filter(([key]) => key !== 'critical');
  const entry = entries[0];
  if (entry === undefined || typeof entry[1] !== 'string') return null;
  return { flags: record.critical, tag: entry[0], value: entry[1] };
}

/**
 * A recursive resolver through `node:dns`'s `Resolver`: NXDOMAIN and NODATA are empty RRsets,
 * any other failure (SERVFAIL, REFUSED, timeout, unreachable) is `DNS_LOOKUP_FAILED`. The
 * resolver follows CNAMEs itself.
 */
export class RecursiveResolver implements ExternalResolver {
  private readonly resolver: dnsPromises.Resolver;

  constructor(options: RecursiveResolverOptions = {}) {
    this.resolver = new dnsPromises.Resolver({
      timeout: options.timeoutMs ?? 2_000,
      tries: options.tries ?? 2,
    });
    const servers = options.servers ?? dnsPromises.getServers();
    try {
      this.resolver.setServers([...servers]);
    } catch (error) {
      throw new AcmeError(
        AcmeErrorCode.INVALID_OPTIONS,
        `cannot use the DNS resolvers ${JSON.stringify(servers)}: ${(error as Error).message}`,
        { servers },
      );
    }
  }

  /** The servers queried (`dns.setServers` form). */
  servers(): string[] {
    return this.resolver.getServers();
  }

  private async lookup<T>(name: string, type: string, query: () => Promise<T[]>): Promise<T[]> {
    try {
      return await query();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string' && EMPTY_CODES.has(code)) return [];
      throw failed(name, type, error);
    }
  }

  async lookupAddresses(name: string): Promise<string[]> {
    const [v4, v6] = await Promise.all([
      this.lookup(name, 'A', () => this.resolver.resolve4(name)),
      this.lookup(name, 'AAAA', () => this.resolver.resolve6(name)),
    ]);
    return [...v4, ...v6];
  }

  async lookupTxt(name: string): Promise<string[]> {
    const records = await this.lookup(name, 'TXT', () => this.resolver.resolveTxt(name));
    return records.map((chunks) => chunks.join(''));
  }

  async lookupCaa(domain: string): Promise<readonly CaaRecord[]> {
    const records = await this.lookup(domain, 'CAA', () => this.resolver.resolveCaa(domain));
    return records.map(caaRecord).filter((record): record is CaaRecord => record !== null);
  }

  /** Cancels the lookups in flight (they fail with `DNS_LOOKUP_FAILED`). */
  cancel(): void {
    this.resolver.cancel();
  }
}

/**
 * CAA lookups split between the cluster's zones and external names: a domain `isExternal`
 * calls external goes to `external`, any other to `cluster` (none: no records). RFC 8659 §3
 * climbing asks each ancestor separately, so each is routed on its own.
 */
export class SplitCaaResolver implements CaaResolver {
  constructor(
    private readonly external: ExternalNames,
    private readonly cluster: CaaResolver | undefined,
  ) {}

  lookupCaa(domain: string): Promise<readonly CaaRecord[]> {
    if (this.external.isExternal(domain)) return this.external.resolver.lookupCaa(domain);
    return this.cluster === undefined ? Promise.resolve([]) : this.cluster.lookupCaa(domain);
  }
}
