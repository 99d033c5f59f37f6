import { z } from 'zod';
import { SchemaError, parseInput } from '../../codec/schema.js';
import { INITIAL_HEIGHT } from '../../consensus/application/index.js';
import type { InitialStateEntry } from '../../consensus/application/index.js';
import type { GenesisAppState } from '../../consensus/genesis.js';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { DnsError, canonicalName, compareBytes, isSubdomainKey } from '../dns/index.js';
import type { DnskeyData } from '../dns/index.js';
import { parseGenesisDnskey } from './genesis-dnskey.js';
import { encodeList, encodeZone } from './codec.js';
import { DnsZonesError, DnsZonesGenesisError, DnsZonesGenesisErrorCode } from './errors.js';
import { DNS_ZONES_MODULE_NAME, MAX_ZONES, serialAt } from './model.js';
import type { ZoneParams } from './model.js';
import { checkName } from './names.js';
import { checkZoneParams } from './rules.js';
import { ZONES_KEY, dnsZonesStateKey, zoneKey } from './state.js';

/**
 * The `dns` section of a chain's genesis (`app.dns`): the cluster zones, written into the state
 * at height 1. Their admins change them (zone-update, records at the apex) and create delegated
 * zones (zone-create). In a JSON file, names are presentation text (any case) and admin keys 64
 * hex digits:
 *
 *   {
 *     "zones": [{
 *       "apex": "hypermesh.",
 *       "admins": ["5f0c…64 hex digits"],
 *       "policy": "open",
 *       "soa": { "ttl": 3600, "mname": "ns1.hypermesh.", "rname": "hostmaster.hypermesh.",
 *                "refresh": 3600, "retry": 600, "expire": 604800, "minimum": 300 },
 *       "nameservers": { "ttl": 3600, "hosts": ["ns1.hypermesh.", "ns2.hypermesh."] }
 *     }]
 *   }
 */
export interface DnsZonesGenesis {
  readonly zones: readonly ZoneParams[];
  /**
   * The zone-signing keys (DNSKEY) of the zones that are signed, by canonical apex: optional per
   * zone (`zones[i].dnskey` in the file), outside the consensus state, so a section without them
   * hashes and initialises exactly as before (docs/dns.md, "DNSSEC in the node").
   */
  readonly dnskeys?: ReadonlyMap<string, DnskeyData>;
}

/** The JSON form (a type, so it is assignable to the genesis document's JSON data). */
export type DnsZonesGenesisJson = {
  readonly zones: readonly {
    readonly apex: string;
    readonly admins: readonly string[];
    readonly policy: string;
    readonly soa: {
      readonly ttl: number;
      readonly mname: string;
      readonly rname: string;
      readonly refresh: number;
      readonly retry: number;
      readonly expire: number;
      readonly minimum: number;
    };
    readonly nameservers: { readonly ttl: number; readonly hosts: readonly string[] };
    readonly dnskey?: {
      readonly flags: number;
      readonly protocol: number;
      readonly algorithm: number;
      /** Padded base64 of the 64-byte P-256 point x || y (RFC 6605 §4). */
      readonly publicKey: string;
    };
  }[];
};

const name = z.string().max(1024);
const hexKey = z
  .string()
  .regex(/^[0-9a-f]{64}$/, { error: 'expected an Ed25519 public key as 64 lowercase hex digits' });
const jsonSchema = z.strictObject({
  zones: z
    .array(
      z.strictObject({
        apex: name,
        admins: z.array(hexKey),
        policy: z.string(),
        soa: z.strictObject({
          ttl: z.int(),
          mname: name,
          rname: name,
          refresh: z.int(),
          retry: z.int(),
          expire: z.int(),
          minimum: z.int(),
        }),
        nameservers: z.strictObject({ ttl: z.int(), hosts: z.array(name) }),
        dnskey: z
          .strictObject({
            flags: z.int(),
            protocol: z.int(),
            algorithm: z.int(),
            publicKey: z.string().max(1024),
          })
          .optional(),
      }),
    )
    .min(1)
    .max(MAX_ZONES),
});

function invalid(message: string, detail: Record<string, unknown> = {}, cause?: unknown): never {
  throw new DnsZonesGenesisError(
    DnsZonesGenesisErrorCode.INVALID,
    message,
    detail,
    cause === undefined ? undefined : { cause },
  );
}

function canonicalText(text: string, path: string): string {
  try {
    return canonicalName(text);
  } catch (error) {
    if (error instanceof DnsError) invalid(`${path}: ${error.message}`, { path }, error);
    throw error;
  }
}

/** Checks each zone with the transaction rules, and that no two zones overlap. */
function checkZones(zones: readonly unknown[]): ZoneParams[] {
  const checked = zones.map((zone, i) => {
    try {
      return checkZoneParams(zone);
    } catch (error) {
      if (error instanceof DnsZonesError)
        invalid(`dnsGenesis.zones[${i}].${error.message}`, { index: i }, error);
      throw error;
    }
  });
  const keys = checked.map((zone) => checkName(zone.apex, 'apex'));
  keys.forEach((a, i) =>
    keys.forEach((b, j) => {
      if (i < j && (isSubdomainKey(a.key, b.key) || isSubdomainKey(b.key, a.key))) {
        throw new DnsZonesGenesisError(
          DnsZonesGenesisErrorCode.OVERLAP,
          `dnsGenesis.zones: ${a.text} (zone ${i}) and ${b.text} (zone ${j}) overlap; zones are disjoint`,
          { indexes: [i, j] },
        );
      }
    }),
  );
  return checked;
}

/**
 * Parses the `dns` section of a genesis file (JSON, already `JSON.parse`d). Throws
 * `DnsZonesGenesisError`: INVALID (naming the field) or OVERLAP.
 */
export function parseDnsZonesGenesis(input: unknown): DnsZonesGenesis {
  let parsed: z.infer<typeof jsonSchema>;
  try {
    parsed = parseInput(jsonSchema, input, 'dnsGenesis');
  } catch (error) {
    if (error instanceof SchemaError) invalid(error.message, { issues: error.issues }, error);
    throw error;
  }
  const dnskeys = new Map<string, DnskeyData>();
  const zones = parsed.zones.map(({ dnskey, ...zone }, i) => {
    const at = `dnsGenesis.zones[${i}]`;
    if (dnskey !== undefined) {
      dnskeys.set(
        canonicalText(zone.apex, `${at}.apex`),
        parseGenesisDnskey(dnskey, `${at}.dnskey`),
      );
    }
    return {
      ...zone,
      apex: canonicalText(zone.apex, `${at}.apex`),
      admins: zone.admins.map((key) => fromHex(key)),
      soa: {
        ...zone.soa,
        mname: canonicalText(zone.soa.mname, `${at}.soa.mname`),
        rname: canonicalText(zone.soa.rname, `${at}.soa.rname`),
      },
      nameservers: {
        ttl: zone.nameservers.ttl,
        hosts: zone.nameservers.hosts.map((host, j) =>
          canonicalText(host, `${at}.nameservers.hosts[${j}]`),
        ),
      },
    };
  });
  const checked = checkZones(zones);
  return dnskeys.size === 0 ? { zones: checked } : { zones: checked, dnskeys };
}

/** Checks a genesis built in code the way `parseDnsZonesGenesis` checks a file. */
export function checkDnsZonesGenesis(genesis: DnsZonesGenesis): DnsZonesGenesis {
  if (typeof genesis !== 'object' || genesis === null || !Array.isArray(genesis.zones)) {
    invalid('dnsGenesis: expected { zones: [...] }');
  }
  if (genesis.zones.length < 1 || genesis.zones.length > MAX_ZONES) {
    invalid(`dnsGenesis.zones: expected 1 to ${MAX_ZONES} zones`);
  }
  return { zones: checkZones(genesis.zones) };
}

/** The JSON form of a genesis section; the inverse of `parseDnsZonesGenesis`. */
export function dnsZonesGenesisToJson(genesis: DnsZonesGenesis): DnsZonesGenesisJson {
  return {
    zones: checkDnsZonesGenesis(genesis).zones.map((zone) => {
      const dnskey = genesis.dnskeys?.get(zone.apex);
      return {
        apex: zone.apex,
        admins: zone.admins.map(toHex),
        policy: zone.policy,
        soa: { ...zone.soa },
        nameservers: { ttl: zone.nameservers.ttl, hosts: [...zone.nameservers.hosts] },
        ...(dnskey === undefined
          ? {}
          : {
              dnskey: {
                flags: dnskey.flags,
                protocol: dnskey.protocol,
                algorithm: dnskey.algorithm,
                publicKey: Buffer.from(dnskey.publicKey).toString('base64'),
              },
            }),
      };
    }),
  };
}

/**
 * The router's `initialState` for the section: `dns/zones` and one `dns/zone/<apex>` per zone
 * (kind `cluster`, serial 1, created at height 1), sorted by key.
 */
export function dnsZonesInitialState(genesis: DnsZonesGenesis): InitialStateEntry[] {
  const zones = checkDnsZonesGenesis(genesis).zones;
  const apexes = zones.map((zone) => checkName(zone.apex, 'apex').wire).sort(compareBytes);
  return [
    { key: dnsZonesStateKey(ZONES_KEY), value: encodeList(apexes) },
    ...zones.map((zone) => ({
      key: dnsZonesStateKey(zoneKey(checkName(zone.apex, 'apex').wire)),
      value: encodeZone({
        ...zone,
        kind: 'cluster',
        serial: serialAt(INITIAL_HEIGHT),
        createdAt: INITIAL_HEIGHT,
        names: 0,
      }),
    })),
  ].sort((a, b) => compareBytes(a.key, b.key));
}

/**
 * The `dns` section of a genesis document's `app` data, parsed and checked; or undefined when
 * the genesis has none. A chain without it never holds a zone: only admins of cluster zones
 * create zones.
 */
export function dnsZonesGenesisFromApp(
  app: GenesisAppState | undefined,
): DnsZonesGenesis | undefined {
  const section = app?.[DNS_ZONES_MODULE_NAME];
  return section === undefined ? undefined : parseDnsZonesGenesis(section);
}
