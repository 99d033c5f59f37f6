import { z } from 'zod';
import { SchemaError, parseInput } from '../codec/schema.js';
import { CAESAR_MODULE_NAME } from '../caesar/index.js';
import type { GenesisAppState, GenesisDocument } from '../consensus/genesis.js';
import { DnsError, canonicalName } from '../trustchain/dns/index.js';
import { DISCOVERY_MODULE_NAME } from './model.js';
import type { DiscoveryNodeKeys } from './module.js';

/**
 * The `discovery` section of a chain's genesis (`app.discovery`): its presence installs the
 * catalog module on every node of the chain (the catalog starts empty, so it writes no initial
 * state). `dnsZone` names the zone whose DNS servers publish the catalog's healthy instances as
 * SRV and A/AAAA records (docs/discovery.md, "DNS"); null publishes nothing.
 *
 *   { "dnsZone": "hypermesh." }
 */
export interface DiscoveryGenesis {
  /** Canonical presentation name (lowercase, trailing dot), or null. */
  readonly dnsZone: string | null;
}

/** The JSON form (a type, so it is assignable to the genesis document's JSON data). */
export type DiscoveryGenesisJson = { readonly dnsZone: string | null };

const sectionSchema = z.strictObject({
  dnsZone: z.string().min(1).max(255).nullable(),
});

/**
 * The discovery section of a genesis `app` state, or undefined when there is none. Throws
 * `SchemaError` naming the field (`app.discovery.dnsZone: …`).
 */
export function discoveryGenesisFromApp(
  app: GenesisAppState | undefined,
): DiscoveryGenesis | undefined {
  const section = app?.[DISCOVERY_MODULE_NAME];
  if (section === undefined) return undefined;
  const parsed = parseInput(sectionSchema, section, `app.${DISCOVERY_MODULE_NAME}`);
  if (parsed.dnsZone === null) return { dnsZone: null };
  let zone: string;
  try {
    zone = canonicalName(parsed.dnsZone);
  } catch (error) {
    if (!(error instanceof DnsError)) throw error;
    const context = `app.${DISCOVERY_MODULE_NAME}`;
    throw new SchemaError(context, [
      { path: `${context}.dnsZone`, code: 'custom', message: error.message },
    ]);
  }
  return { dnsZone: zone };
}

export function discoveryGenesisToJson(genesis: DiscoveryGenesis): DiscoveryGenesisJson {
  return { dnsZone: genesis.dnsZone };
}

/**
 * The node keys of a chain, for `createDiscoveryModule({ nodeKeys })`: its genesis validators,
 * and the validators of caesar's staking state when the genesis installs caesar (an `app.caesar`
 * section). Everything in it comes from the genesis document, so every node builds the same.
 */
export function discoveryNodeKeys(genesis: GenesisDocument): DiscoveryNodeKeys {
  return {
    genesisValidators: genesis.validators.map((validator) => validator.publicKey),
    caesar: genesis.app?.[CAESAR_MODULE_NAME] !== undefined,
  };
}
