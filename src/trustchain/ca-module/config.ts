import { z } from 'zod';
import { SchemaError, hexString, parseInput } from '../../codec/schema.js';
import type { GenesisAppValue } from '../../consensus/genesis.js';
import { validatorAddress } from '../../consensus/validator-set.js';
import { toHex } from '../../crypto/bytes.js';
import type { FalconBackend } from '../../crypto/falcon.js';
import { CaError } from '../ca/errors.js';
import { parseTrustBundle, type TrustBundle } from '../ca/bundle.js';
import { parseIssuer, type Issuer } from '../ca/issue.js';
import { checkDnsName, checkIpAddressText } from '../ca/names.js';
import { PROFILE_NAMES, type ProfileName } from '../ca/profiles.js';
import type { RateLimit } from '../ca/rate-limit.js';
import type { IssuancePolicy, Requester } from '../ca/request.js';
import { clusterCaaIdentities, type CaClusterDns } from './cluster-dns.js';
import { DEFAULT_DCV_MAX_AGE_BLOCKS, MAX_DCV_MAX_AGE_BLOCKS } from './dcv.js';
import { CaGenesisError } from './errors.js';
import {
  MAX_GENESIS_CERTIFICATES,
  MAX_GENESIS_CERTIFICATE_BYTES,
  checkGenesisCertificates,
  type GenesisCertificate,
} from './genesis.js';
import { DEFAULT_INTERMEDIATE_PROPOSAL_BLOCKS } from './intermediates.js';
import { CA_MODULE_NAME } from './state.js';

/**
 * The `ca` module's configuration, decided by the genesis alone: the `app.ca` section (trust
 * bundle, grants, rate limit, publication window) and the genesis validators (whose Ed25519
 * keys sign `publish` transactions).
 *
 * ```json
 * "app": { "ca": {
 *   "trustBundle": { "format": "hypermesh-trust-bundle", ... },
 *   "grants": [{ "account": "<64 hex>", "profiles": ["service"], "dnsZones": ["hypermesh.test"],
 *                "wildcards": true, "ipRanges": ["127.0.0.0/8"], "uriPrefixes": ["spiffe://c/"],
 *                "requireDcv": false, "externalDns": false }],
 *   "rateLimit": { "max": 100, "windowSeconds": 3600 },
 *   "publishWindowBlocks": 3, "intermediateProposalBlocks": 1000, "dcvMaxAgeBlocks": 100,
 *   "genesisCertificates": [{ "issuer": "node-1", "account": "<64 hex>",
 *                             "certificate": "<base64 DER>" }] } }
 * ```
 *
 * `genesisCertificates` (optional) lists the bootstrap certificates `cluster init` issued from
 * the genesis intermediates, in issuance order (genesis.ts).
 */

/** The largest `rateLimit` the genesis section accepts (issuances per window, window length). */
export const RATE_LIMIT_BOUNDS = Object.freeze({
  maxIssuances: 1_000_000,
  maxWindowSeconds: 366 * 86_400,
});
export const DEFAULT_RATE_LIMIT: RateLimit = Object.freeze({ max: 100, windowSeconds: 3600 });
export const DEFAULT_PUBLISH_WINDOW_BLOCKS = 3;
export const MAX_GRANTS = 1000;

/** A validator that can issue: its intermediate (from the bundle) and its accounts. */
export interface CaIssuer {
  readonly name: string;
  /** Its genesis Ed25519 key: the only sender whose `publish` names this issuer. */
  readonly account: Uint8Array;
  /** Its consensus address (validator-set.ts), matched against a block's proposer. */
  readonly address: string;
  readonly issuer: Issuer;
}

/** What one account may request beyond the defaults (docs/ca.md, "Who may request what"). */
export interface CaGrant {
  readonly profiles: readonly ProfileName[];
  readonly dnsZones: readonly string[];
  readonly wildcards: boolean;
  readonly ipRanges: readonly string[];
  readonly uriPrefixes: readonly string[];
  /**
   * The account's DNS names and IP addresses need a quorum of DCV attestations in the request
   * (docs/ca.md, "Multi-perspective validation (MPIC)"): an ACME server's account.
   */
  readonly requireDcv: boolean;
  /**
   * DNS names outside `dnsZones` may be requested too (external domain names, each proven by
   * the DCV quorum `requireDcv` demands); only together with `requireDcv`.
   */
  readonly externalDns: boolean;
}

/** `Requester` (ca/request.ts) plus whether its DNS names and IP addresses need DCV attestations. */
export interface CaRequester extends Requester {
  readonly requireDcv: boolean;
}

export interface CaModuleConfig {
  readonly chainId: string;
  readonly bundle: TrustBundle;
  /**
   * Genesis validators with an intermediate, sorted by name (the bundle's order). Intermediates
   * added later follow them in the rotation order (intermediates.ts `createIssuerView`).
   */
  readonly issuers: readonly CaIssuer[];
  /** Grants by account (lowercase hex of the 32-byte key). */
  readonly grants: ReadonlyMap<string, CaGrant>;
  readonly rateLimit: RateLimit;
  readonly publishWindowBlocks: number;
  /** Blocks after an `add-intermediate` during which approvals are accepted. */
  readonly intermediateProposalBlocks: number;
  /** How many blocks old a DCV attestation may be (dcv.ts, `DEFAULT_DCV_MAX_AGE_BLOCKS`). */
  readonly dcvMaxAgeBlocks: number;
  readonly policy: IssuancePolicy;
  /** Latest notBefore and earliest notAfter of the intermediates: every leaf must fit inside. */
  readonly issuableFrom: number;
  readonly issuableUntil: number;
  /** The genesis bootstrap certificates, in genesis order (genesis.ts); empty when none. */
  readonly genesisCertificates: readonly GenesisCertificate[];
  /**
   * The chain's `dns` module, when its genesis has an `app.dns` section (the node then runs
   * the module, src/node/validator-node.ts): the `ca` module reads it (`reads: ['dns']`) for
   * name ownership and CAA (cluster-dns.ts). Null: no `dns` module, neither is consulted.
   */
  readonly clusterDns: CaClusterDns | null;
  /**
   * The genesis validators' voting powers by consensus address: the validator set multi-
   * perspective validation counts against until a block records the current one
   * (voting-power.ts).
   */
  readonly genesisVotingPowers: ReadonlyMap<string, number>;
}

const grantSchema = z
  .strictObject({
    account: hexString(32),
    profiles: z
      .array(z.enum(PROFILE_NAMES as [ProfileName, ...ProfileName[]]))
      .max(3)
      .default([]),
    dnsZones: z.array(z.string().min(1).max(253)).max(100).default([]),
    wildcards: z.boolean().default(false),
    ipRanges: z.array(z.string().min(1).max(64)).max(100).default([]),
    uriPrefixes: z.array(z.string().min(1).max(2048)).max(100).default([]),
    requireDcv: z.boolean().default(false),
    externalDns: z.boolean().default(false),
  })
  .refine((grant) => !grant.externalDns || grant.requireDcv, {
    path: ['externalDns'],
    error:
      '"externalDns": true needs "requireDcv": true (external names are issued only with a quorum of DCV attestations)',
  });

const sectionSchema = z.strictObject({
  trustBundle: z.record(z.string(), z.unknown()),
  grants: z.array(grantSchema).max(MAX_GRANTS).default([]),
  rateLimit: z
    .strictObject({
      max: z.int().min(0).max(RATE_LIMIT_BOUNDS.maxIssuances),
      windowSeconds: z.int().min(1).max(RATE_LIMIT_BOUNDS.maxWindowSeconds),
    })
    .default(DEFAULT_RATE_LIMIT),
  publishWindowBlocks: z.int().min(1).max(1000).default(DEFAULT_PUBLISH_WINDOW_BLOCKS),
  intermediateProposalBlocks: z
    .int()
    .min(1)
    .max(1_000_000)
    .default(DEFAULT_INTERMEDIATE_PROPOSAL_BLOCKS),
  dcvMaxAgeBlocks: z.int().min(1).max(MAX_DCV_MAX_AGE_BLOCKS).default(DEFAULT_DCV_MAX_AGE_BLOCKS),
  genesisCertificates: z
    .array(
      z.strictObject({
        issuer: z.string().min(1).max(64),
        account: hexString(32),
        certificate: z
          .string()
          .min(1)
          .max(Math.ceil(MAX_GENESIS_CERTIFICATE_BYTES / 3) * 4),
      }),
    )
    .max(MAX_GENESIS_CERTIFICATES)
    .default([]),
});

export type CaGenesisJson = z.input<typeof sectionSchema>;

function invalid(message: string, cause?: unknown): never {
  throw new CaGenesisError(
    'CA_INVALID_GENESIS',
    `genesis app.${CA_MODULE_NAME}: ${message}`,
    {},
    cause === undefined ? undefined : { cause },
  );
}

function checkRange(range: string): void {
  const slash = range.indexOf('/');
  const address = slash === -1 ? range : range.slice(0, slash);
  checkIpAddressText(address);
  if (slash !== -1) {
    const bits = range.slice(slash + 1);
    const max = address.includes(':') ? 128 : 32;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(bits) || Number(bits) > max) {
      throw new Error(`prefix length of ${range}`);
    }
  }
}

/**
 * Reads the `app.ca` section, if there is one. Throws `CaGenesisError` for a malformed section,
 * a bundle that does not verify or is for another chain, or an intermediate named after no
 * genesis validator.
 */
export function caGenesisFromApp(
  app: { readonly [module: string]: GenesisAppValue } | undefined,
  genesis: {
    readonly chainId: string;
    readonly validators: readonly {
      readonly name: string;
      readonly publicKey: Uint8Array;
      readonly power: number;
    }[];
  },
  falcon?: FalconBackend,
): CaModuleConfig | undefined {
  const section = app?.[CA_MODULE_NAME];
  if (section === undefined) return undefined;
  let parsed: z.infer<typeof sectionSchema>;
  try {
    parsed = parseInput(sectionSchema, section, `app.${CA_MODULE_NAME}`);
  } catch (error) {
    if (error instanceof SchemaError) invalid(error.message, error);
    throw error;
  }
  let bundle: TrustBundle;
  try {
    bundle = parseTrustBundle(JSON.stringify(parsed.trustBundle), falcon);
  } catch (error) {
    if (error instanceof CaError) invalid(`trustBundle: ${error.message}`, error);
    throw error;
  }
  if (bundle.chainId !== genesis.chainId) {
    invalid(`the trust bundle is for chain "${bundle.chainId}", not "${genesis.chainId}"`);
  }
  const byName = new Map(genesis.validators.map((v) => [v.name, v.publicKey]));
  const issuers = bundle.validators.map((validator): CaIssuer => {
    const account = byName.get(validator.name);
    if (account === undefined) {
      invalid(
        `the trust bundle has an intermediate for "${validator.name}", which is no genesis validator`,
      );
    }
    return {
      name: validator.name,
      account,
      address: validatorAddress(account),
      issuer: parseIssuer(validator.certificate),
    };
  });
  const grants = new Map<string, CaGrant>();
  for (const grant of parsed.grants) {
    if (grants.has(grant.account)) invalid(`account ${grant.account} has two grants`);
    try {
      grant.dnsZones.forEach(checkDnsName);
      grant.ipRanges.forEach(checkRange);
    } catch (error) {
      invalid(`grant for ${grant.account}: ${(error as Error).message}`, error);
    }
    grants.set(grant.account, {
      profiles: grant.profiles,
      dnsZones: grant.dnsZones,
      wildcards: grant.wildcards,
      ipRanges: grant.ipRanges,
      uriPrefixes: grant.uriPrefixes,
      requireDcv: grant.requireDcv,
      externalDns: grant.externalDns,
    });
  }
  const caaIdentities = clusterCaaIdentities(app);
  const genesisCertificates = checkGenesisCertificates(
    parsed.genesisCertificates,
    issuers,
    bundle.cluster,
    invalid,
  );
  return {
    chainId: genesis.chainId,
    bundle,
    issuers,
    grants,
    rateLimit: parsed.rateLimit,
    publishWindowBlocks: parsed.publishWindowBlocks,
    intermediateProposalBlocks: parsed.intermediateProposalBlocks,
    dcvMaxAgeBlocks: parsed.dcvMaxAgeBlocks,
    policy: { cluster: bundle.cluster },
    issuableFrom: Math.max(...issuers.map((i) => i.issuer.notBefore.getTime())),
    issuableUntil: Math.min(...issuers.map((i) => i.issuer.notAfter.getTime())),
    genesisCertificates,
    clusterDns: caaIdentities === undefined ? null : { caaIdentities },
    genesisVotingPowers: new Map(
      genesis.validators
        .filter((validator) => validator.power > 0)
        .map((validator) => [validatorAddress(validator.publicKey), validator.power]),
    ),
  };
}

/**
 * What `account` may request (docs/ca.md, "Who may request what"):
 *
 * - every account: `service` and `client` certificates for SPIFFE IDs under
 *   `spiffe://<cluster>/account/<account hex>/`;
 * - an intermediate holder named N (a genesis validator, or one whose intermediate was added):
 *   also `node` certificates for `spiffe://<cluster>/validator/N` and `spiffe://<cluster>/node/N`;
 * - an account with a genesis grant: the grant's profiles, DNS zones (wildcards if granted), IP
 *   ranges and URI prefixes in addition, and whether its DNS names and IP addresses need DCV
 *   attestations (`requireDcv`).
 *
 * DNS names and IP addresses come from grants; names outside them are refused
 * (`name_not_allowed`), since consensus has no DNS resolver for domain validation. Two
 * exceptions: a grant with `externalDns` (always with `requireDcv`) allows any DNS name, each
 * proven by a quorum of DCV attestations whose holders also checked CAA (dcv.ts); and on a
 * chain with the `dns` module, a name the account owns there is allowed too (the module checks
 * that against the state, module.ts `checkPolicy`; not part of this requester).
 */
export function requesterFor(
  config: CaModuleConfig,
  account: Uint8Array,
  issuers: readonly CaIssuer[] = config.issuers,
): CaRequester {
  const hex = toHex(account);
  const cluster = config.bundle.cluster;
  const profiles = new Set<ProfileName>(['service', 'client']);
  const uriPrefixes = [`spiffe://${cluster}/account/${hex}/`];
  const validator = issuers.find((issuer) => toHex(issuer.account) === hex);
  if (validator !== undefined) {
    profiles.add('node');
    uriPrefixes.push(
      `spiffe://${cluster}/validator/${validator.name}`,
      `spiffe://${cluster}/node/${validator.name}`,
    );
  }
  const grant = config.grants.get(hex);
  grant?.profiles.forEach((profile) => profiles.add(profile));
  return {
    account: hex,
    profiles: PROFILE_NAMES.filter((profile) => profiles.has(profile)),
    dnsZones: grant?.dnsZones ?? [],
    wildcards: grant?.wildcards ?? false,
    ipRanges: grant?.ipRanges ?? [],
    uriPrefixes: [...uriPrefixes, ...(grant?.uriPrefixes ?? [])],
    requireDcv: grant?.requireDcv ?? false,
    externalDns: grant?.externalDns ?? false,
  };
}

/**
 * The issuers allowed to publish the batch of block `batchHeight` in a block at `height`
 * (docs/ca.md, "Publication"): the rotation starts at `first` (the proposer of the batch's
 * block) and admits one more issuer every `publishWindowBlocks` blocks, so an issuer that does
 * not publish is replaced by the next one in name order, and so on around the set.
 */
export function eligibleIssuers(
  config: CaModuleConfig,
  batchHeight: number,
  first: number,
  height: number,
  issuers: readonly CaIssuer[] = config.issuers,
): CaIssuer[] {
  const n = issuers.length;
  if (height <= batchHeight) return [];
  const turns = Math.min(
    n - 1,
    Math.floor((height - batchHeight - 1) / config.publishWindowBlocks),
  );
  const out: CaIssuer[] = [];
  for (let k = 0; k <= turns; k++) out.push(issuers[(first + k) % n] as CaIssuer);
  return out;
}

/** The rotation's start for a block: its proposer if it has an intermediate, else height mod n. */
export function firstIssuerIndex(
  config: CaModuleConfig,
  height: number,
  proposer: string,
  issuers: readonly CaIssuer[] = config.issuers,
): number {
  const index = issuers.findIndex((issuer) => issuer.address === proposer);
  return index !== -1 ? index : height % issuers.length;
}
