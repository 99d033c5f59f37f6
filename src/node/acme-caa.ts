import type { GenesisDocument } from '../consensus/genesis.js';
import {
  AcmeError,
  AcmeErrorCode,
  ZoneSourceCaaResolver,
  type CaaResolver,
} from '../faces/acme/index.js';
import { clusterCaaIdentities } from '../trustchain/ca-module/index.js';
import type { ZoneSource } from '../trustchain/dns/index.js';
import {
  ConsensusZones,
  dnsZonesGenesisFromApp,
  dnsZonesStateReader,
  type CommittedStateGetter,
} from '../trustchain/dns-zones/index.js';

/**
 * CAA for the node's ACME server (docs/acme.md, "CAA"). The records checked are the cluster's
 * committed `dns` state: the zones the node's DNS servers answer from when it serves DNS, else
 * the zones compiled from the committed state (once per height, when a check needs them). The
 * issuer domain names CAA values must name default to the apexes of the genesis `app.dns`
 * zones (`hypermesh` for a `cluster init` cluster, so `CAA 0 issue "hypermesh"` authorizes the
 * cluster's CA); `acme.caaIdentities` in the node configuration replaces them. A genesis
 * without `app.dns` holds no zones, so there is nothing to look up and no CAA check.
 */

/** The committed state and its latest height (`NodeStore.state`, `blocks.latestHeight()`). */
export interface CommittedZonesReader {
  readonly state: CommittedStateGetter;
  latestHeight(): number | null;
}

export interface AcmeCaaOptions {
  readonly caaIdentities?: readonly string[];
  readonly caaResolver?: CaaResolver;
}

/**
 * The genesis `app.dns` zone apexes without their trailing dot (`hypermesh`): the identities
 * the `ca` module's own CAA check uses too (trustchain/ca-module/cluster-dns.ts).
 */
export function defaultCaaIdentities(genesis: GenesisDocument): string[] {
  return clusterCaaIdentities(genesis.app) ?? [];
}

/** The `caaIdentities` and `caaResolver` options of the node's ACME server. */
export function acmeCaaOptions(options: {
  readonly genesis: GenesisDocument;
  readonly configured: readonly string[] | undefined;
  readonly dnsZones: ZoneSource | null;
  readonly committed: CommittedZonesReader;
}): AcmeCaaOptions {
  const hasZones = dnsZonesGenesisFromApp(options.genesis.app) !== undefined;
  const identities = options.configured ?? defaultCaaIdentities(options.genesis);
  const advertised = identities.length === 0 ? {} : { caaIdentities: identities };
  if (!hasZones || identities.length === 0) return advertised;
  const served = options.dnsZones;
  const zones = served === null ? committedZones(options.committed) : () => served;
  return { ...advertised, caaResolver: new ZoneSourceCaaResolver(zones) };
}

/** The zones of the latest committed state, compiled again only when the height has changed. */
export function committedZones(committed: CommittedZonesReader): () => ZoneSource {
  let cached: { readonly height: number | null; readonly zones: ConsensusZones } | null = null;
  return () => {
    const height = committed.latestHeight();
    if (cached === null || cached.height !== height) {
      try {
        const zones = ConsensusZones.load(dnsZonesStateReader(committed.state), { height });
        cached = { height, zones };
      } catch (error) {
        throw new AcmeError(
          AcmeErrorCode.DNS_LOOKUP_FAILED,
          `cannot read the committed DNS zones: ${(error as Error).message}`,
          { reason: 'state' },
        );
      }
    }
    return cached.zones;
  };
}
