import {
  RecursiveResolver,
  SplitCaaResolver,
  type CaaPolicy,
  type CaaResolver,
  type ExternalNames,
} from '../faces/acme/index.js';
import { isWithinZone } from '../trustchain/ca/names.js';
import type { CaModuleConfig } from '../trustchain/ca-module/index.js';
import { nameKey, type ZoneSource } from '../trustchain/dns/index.js';
import { committedZones, type AcmeCaaOptions, type CommittedZonesReader } from './acme-caa.js';
import { CliError } from './cli-error.js';

/**
 * External domain names in the node's ACME server and corroborator (docs/acme.md, "External
 * names"): when a genesis `app.ca` grant has `externalDns`, names outside the cluster's zones
 * are resolved through a recursive resolver (`acme.resolver`, default the system's), for
 * http-01/tls-alpn-01 addresses, dns-01 TXT and CAA. A name is the cluster's when it lies in a
 * zone the node's DNS answers from (the committed `dns` zones) or in a zone of a genesis grant;
 * those keep their path (the OS resolver to connect, the node's own DNS for TXT and CAA).
 */

export interface AcmeExternal {
  /** What the validation options get (`ValidationOptions.external`). */
  readonly names: ExternalNames;
  /** The CAA resolver: the cluster's zones for their names, the recursive resolver for others. */
  readonly caaResolver: CaaResolver;
  /** Cancels lookups in flight. */
  close(): void;
}

/** Whether any genesis grant allows external names (the node then resolves them). */
export function externalDnsGranted(ca: CaModuleConfig): boolean {
  return [...ca.grants.values()].some((grant) => grant.externalDns);
}

/**
 * The external-name resolution of the node, or null when no grant has `externalDns`. Needs CAA
 * identities (configured or the genesis `app.dns` apexes): without them no CAA record could
 * ever name this CA, so the node refuses to start (exit code 2).
 */
export function acmeExternal(options: {
  readonly ca: CaModuleConfig;
  /** `acme.resolver` ("ip:port" / "[v6]:port"); undefined: the system's resolvers. */
  readonly resolver: string | undefined;
  readonly caa: AcmeCaaOptions;
  readonly dnsZones: ZoneSource | null;
  readonly committed: CommittedZonesReader;
  /** Whether the genesis has an `app.dns` section (cluster zones at all). */
  readonly hasZones: boolean;
}): AcmeExternal | null {
  if (!externalDnsGranted(options.ca)) return null;
  if (options.caa.caaIdentities === undefined) {
    throw new CliError(
      'a genesis app.ca grant has "externalDns", but there are no CAA identities for external names: set acme.caaIdentities (the genesis has no app.dns zone to default to)',
      2,
    );
  }
  const grantZones = [...options.ca.grants.values()].flatMap((grant) => grant.dnsZones);
  const served = options.dnsZones;
  const zones = !options.hasZones
    ? null
    : served === null
      ? committedZones(options.committed)
      : () => served;
  const inClusterZones = (name: string): boolean => {
    if (zones === null) return false;
    try {
      return zones().findZone(nameKey(name.endsWith('.') ? name : `${name}.`)) !== undefined;
    } catch {
      // The committed zones cannot be read (or the name does not encode): treated as the
      // cluster's, whose lookups then fail with the `dns` problem rather than go outside.
      return true;
    }
  };
  const resolver = new RecursiveResolver(
    options.resolver === undefined ? {} : { servers: [options.resolver] },
  );
  const names: ExternalNames = {
    isExternal: (name) =>
      !grantZones.some((zone) => isWithinZone(name.replace(/^\*\./, ''), zone)) &&
      !inClusterZones(name),
    resolver,
  };
  return {
    names,
    caaResolver: new SplitCaaResolver(names, options.caa.caaResolver),
    close: () => resolver.cancel(),
  };
}

/** The CAA policy the corroborator checks with: the ACME server's (identities lowercased). */
export function corroboratorCaaPolicy(
  identities: readonly string[] | undefined,
  resolver: CaaResolver | undefined,
): CaaPolicy | undefined {
  if (identities === undefined || identities.length === 0 || resolver === undefined) {
    return undefined;
  }
  return { resolver, identities: identities.map((identity) => identity.toLowerCase()) };
}
