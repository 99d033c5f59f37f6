import {
  createDnsZonesModule,
  dnsZonesInitialState,
} from '../../../src/trustchain/dns-zones/index.js';
import type { DnsZonesGenesis, ZoneParams } from '../../../src/trustchain/dns-zones/index.js';
import { openNode, tx } from '../../consensus/application/fixture.js';
import type { Sender, TestNode } from '../../consensus/application/fixture.js';

/** Zone parameters for `apex` administered by `admins`; `overrides` replace fields. */
export function zoneParams(
  apex: string,
  admins: readonly Uint8Array[],
  overrides: Partial<ZoneParams> = {},
): ZoneParams {
  return {
    apex,
    admins,
    policy: 'open',
    soa: {
      ttl: 3600,
      mname: `ns1.${apex}`,
      rname: `hostmaster.${apex}`,
      refresh: 3600,
      retry: 600,
      expire: 604800,
      minimum: 300,
    },
    nameservers: { ttl: 3600, hosts: [`ns1.${apex}`, `ns2.${apex}`] },
    ...overrides,
  };
}

/** A genesis with the cluster zone `hypermesh.` administered by `admins`. */
export function clusterGenesis(
  admins: readonly Uint8Array[],
  overrides: Partial<ZoneParams> = {},
): DnsZonesGenesis {
  return { zones: [zoneParams('hypermesh.', admins, overrides)] };
}

/** A node running the dns module (and nothing else) over a fresh store, with `genesis`. */
export function openDnsNode(genesis: DnsZonesGenesis): Promise<TestNode> {
  return openNode({
    modules: [createDnsZonesModule()],
    initialState: dnsZonesInitialState(genesis),
  });
}

/** A signed dns transaction from `sender` (its next sequence unless given). */
export function dnsTx(sender: Sender, body: Uint8Array, sequence?: number): Uint8Array {
  return tx(sender, body, { module: 'dns', ...(sequence === undefined ? {} : { sequence }) });
}
