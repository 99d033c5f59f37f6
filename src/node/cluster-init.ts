import { mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import {
  AMOUNT_LIMIT,
  MAX_DECIMALS,
  TOKEN_NAME_PATTERN,
  TOKEN_SYMBOL_PATTERN,
  DEFAULT_STAKING_PARAMS,
  caesarGenesisToJson,
  checkStakingMatchesValidators,
  ed25519Address,
  formatAddress,
  formatTokenAmount,
} from '../caesar/index.js';
import type {
  CaesarGenesis,
  GenesisAllocation,
  StakingGenesis,
  StakingParams,
  TokenParams,
} from '../caesar/index.js';
import { stakingParamsSchema } from '../caesar/staking-params.js';
import { ed25519RawPublicKey } from '../crypto/ed25519.js';
import { defaultFalcon, type FalconBackend, type FalconKeyPair } from '../crypto/falcon.js';
import type { NodeIdentityKeys } from '../crypto/keyfile.js';
import type { CertificateAuthority } from '../crypto/x509.js';
import {
  DEV_PROOF_PARAMS,
  genesisToJson,
  type GenesisConsensusParams,
  type GenesisDocument,
  type GenesisValidator,
} from '../consensus/genesis.js';
import { buildStoragePlotFor, saveStoragePlot } from '../consensus/pos/index.js';
import type { ConsensusProofParams } from '../consensus/proof/params.js';
import { validatorAddress } from '../consensus/validator-set.js';
import { toHex } from '../crypto/bytes.js';
import type { RateLimit } from '../trustchain/ca/rate-limit.js';
import type { DnsZonesGenesisJson } from '../trustchain/dns-zones/index.js';
import { discoveryGenesisToJson } from '../discovery/index.js';
import { checkCaRateLimit } from './ca-rate-limit.js';
import { CliError } from './cli-error.js';
import {
  DEFAULT_CHAIN_ID,
  DEFAULT_CLUSTER_CONSENSUS,
  DEFAULT_DNS_ZONE,
  DEFAULT_LISTEN_HOST,
  DEFAULT_VALIDATOR_POWER,
} from './config.js';
import {
  DEV_CA_FILES,
  generateNodeIdentity,
  initDevCa,
  issueDevIdentity,
  loadDevCa,
} from './dev-ca.js';
import {
  generateZoneKey,
  genesisDnskeyJson,
  writeZoneKeyFile,
  zoneKeyFileName,
} from './dns-keys.js';
import {
  createStagingDir,
  exitOnInterrupt,
  removeStaleStagingDirs,
  sealStagingDir,
} from './ceremony-staging.js';
import { ADDED_NODES_FILE } from './cluster-added-nodes.js';
import { readClusterLayout, type ClusterDirectoryLayout } from './cluster-layout.js';
import { checkClusterPorts, clusterPortBases, fixedClusterPorts } from './cluster-ports.js';
import { syncDirectory, writeFileAtomically } from './io.js';
import { refuseRunningNodes } from './cluster-running-nodes.js';
import { findFreePorts } from './free-ports.js';
import {
  CA_FILES,
  nodeCaConfig,
  runClusterCaCeremony,
  writeGenesisIdentity,
  type ClusterCaResult,
  type GenesisIssuer,
} from './ca-genesis.js';
import {
  ACME_FILES,
  withAcmeGrants,
  withAcmeHostGranted,
  writeNodeAcmeFiles,
  type NodeAcmeFiles,
} from './acme-cluster.js';
import {
  DEFAULT_IDLE_BLOCK_INTERVAL_MS,
  NODE_NAME_PATTERN,
  type ValidatorNodeConfig,
} from './node-config.js';
import { createWalletKey, readWalletKey } from './wallet.js';

/**
 * The genesis ceremony (`hypermesh cluster init`): a cluster CA, per validator an identity
 * (Ed25519 key — STOQ identity and validator key in one — plus FALCON-1024), a certificate, a
 * PoSpace storage plot and a configuration file; an operator client identity; and the genesis
 * document naming every validator with its power, keys and storage root. Everything is written
 * into a temporary sibling directory first and renamed into place at the end, so a failure
 * leaves nothing half-written.
 *
 * The cluster CA is the TrustChain CA (ca-genesis.ts): its ceremony runs first, and each
 * validator's intermediate issues that validator's STOQ certificate (and ACME HTTPS
 * certificate); node-1's issues the operator's. With `--no-ca` it is the development CA
 * (dev-ca.ts: ca/root.pem, root.key, cluster.txt) instead.
 *
 * Unless told otherwise, the genesis also holds a Caesar ledger section (`app.caesar`): the
 * token, an allocation to each validator's operator account (the address of its node key) and
 * the rest of the supply to a treasury wallet whose key is written beside the operator's. With
 * staking (`--staking`) it also holds the staking section: each validator self-bonds its consensus
 * power × `powerUnit`, out of the supply.
 *
 *   DIR/genesis.json
 *   DIR/ca/trust-bundle.json, trustchain-root.pem, trustchain-intermediates.pem
 *          (--no-ca: root.pem, root.key (0600), cluster.txt)
 *   DIR/operator/operator.key (0600), operator.pem, treasury.key (0600)
 *   DIR/node-K/config.json, node-K.key (0600), node-K.pem, storage.plot   (data/ at first start)
 */
export const CLUSTER_FILES = {
  genesis: 'genesis.json',
  caDir: 'ca',
  operatorDir: 'operator',
  operatorName: 'operator',
  /** The treasury wallet's key (an Ed25519 key file), in the operator directory. */
  treasuryKey: 'treasury.key',
  nodeConfig: 'config.json',
  storagePlot: 'storage.plot',
  dataDir: 'data',
  /** Written by `hypermesh dev` once every node has committed a block since it started. */
  clusterJson: 'cluster.json',
  /**
   * Written into a cluster that `hypermesh dev` created: dev replaces (deletes) only such a
   * directory when asked for another size or host, never one made by `cluster init`.
   */
  devMarker: '.hypermesh-dev',
} as const;

export const MAX_VALIDATORS = 100;

/** The Caesar ledger `cluster init` writes into the genesis; amounts in whole tokens. */
export interface LedgerInitOptions {
  readonly name?: string;
  readonly symbol?: string;
  readonly decimals?: number;
  /** Total supply, in whole tokens. */
  readonly supply?: bigint;
  /** Whole tokens credited to each validator's operator account; 0 gives them none. */
  readonly validatorAllocation?: bigint;
}

export const DEFAULT_LEDGER = Object.freeze({
  name: 'Caesar',
  symbol: 'CSR',
  decimals: 6,
  supply: 1_000_000_000n,
  validatorAllocation: 1_000_000n,
});

/** The ledger's genesis in base units: the token, and what each holder receives. */
export interface LedgerPlan {
  readonly token: TokenParams;
  /** Base units per validator account (0: none). */
  readonly validatorAmount: bigint;
  /** Base units for the treasury: the rest of the supply, above zero. */
  readonly treasuryAmount: bigint;
}

/**
 * Checks the ledger options and works out the allocations in base units. The allocations sum
 * to the supply by construction (the treasury takes the rest), so the only way they cannot is
 * validators receiving all of it or more. Throws a CliError naming the flag.
 */
export function planLedger(
  options: LedgerInitOptions,
  validators: number,
  selfBond = 0n,
): LedgerPlan {
  const name = options.name ?? DEFAULT_LEDGER.name;
  const symbol = options.symbol ?? DEFAULT_LEDGER.symbol;
  const decimals = options.decimals ?? DEFAULT_LEDGER.decimals;
  const supply = options.supply ?? DEFAULT_LEDGER.supply;
  const each = options.validatorAllocation ?? DEFAULT_LEDGER.validatorAllocation;
  if (!TOKEN_NAME_PATTERN.test(name)) {
    throw new CliError(
      `--token-name ${JSON.stringify(name)} must be 1 to 64 printable ASCII characters`,
    );
  }
  if (!TOKEN_SYMBOL_PATTERN.test(symbol)) {
    throw new CliError(
      `--token-symbol ${JSON.stringify(symbol)} must be 1 to 12 characters of A-Z and 0-9, starting with a letter`,
    );
  }
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > MAX_DECIMALS) {
    throw new CliError(
      `--token-decimals must be an integer from 0 to ${MAX_DECIMALS}, got ${String(decimals)}`,
    );
  }
  if (typeof supply !== 'bigint' || supply < 1n) {
    throw new CliError(`--token-supply must be at least 1 ${symbol}, got ${String(supply)}`);
  }
  if (typeof each !== 'bigint' || each < 0n) {
    throw new CliError(
      `--validator-allocation must be a whole number of tokens, got ${String(each)}`,
    );
  }
  const scale = 10n ** BigInt(decimals);
  const supplyUnits = supply * scale;
  if (supplyUnits >= AMOUNT_LIMIT) {
    throw new CliError(
      `--token-supply ${supply} ${symbol} with ${decimals} decimals is ${supplyUnits} base units, above the largest amount 2^128 - 1 (${AMOUNT_LIMIT - 1n})`,
    );
  }
  const toValidators = each * BigInt(validators);
  if (toValidators >= supply) {
    throw new CliError(
      `--validator-allocation ${each} ${symbol} × ${validators} validator(s) = ${toValidators} ${symbol} leaves nothing for the treasury out of --token-supply ${supply} ${symbol}; the allocations must sum to the supply`,
    );
  }
  // With staking, each validator's self-bond comes out of the supply too (base units).
  const bonded = selfBond * BigInt(validators);
  const treasuryAmount = (supply - toValidators) * scale - bonded;
  if (treasuryAmount <= 0n) {
    throw new CliError(
      `--validator-allocation ${each} ${symbol} and a self-bond of ${formatTokenAmount(selfBond, decimals)} ${symbol} × ${validators} validator(s) = ${formatTokenAmount(toValidators * scale + bonded, decimals)} ${symbol} leave nothing for the treasury out of --token-supply ${supply} ${symbol}; the allocations and self-bonds must sum to the supply`,
    );
  }
  return {
    token: { name, symbol, decimals, supply: supplyUnits },
    validatorAmount: each * scale,
    treasuryAmount,
  };
}

/**
 * The Caesar staking section `cluster init --staking` writes (docs/caesar.md, "Genesis
 * validators"): every genesis validator self-bonds its consensus power × `powerUnit`, so the
 * module's view of the set is the consensus genesis set.
 */
export interface StakingInitOptions {
  /** Staking parameters by name (`epochBlocks`, `powerUnit`, …) as given on the command line. */
  readonly params?: Readonly<Record<string, string>>;
  /** Commission of every genesis validator, basis points (default 0). */
  readonly commission?: number;
}

/** The staking plan: the parameters and what each genesis validator bonds. */
export interface StakingPlan {
  readonly params: StakingParams;
  /** Base units: the validators' consensus power × powerUnit. */
  readonly selfBond: bigint;
  readonly commission: number;
}

const STAKING_PARAM_NAMES = Object.keys(DEFAULT_STAKING_PARAMS) as (keyof StakingParams)[];

/**
 * Parses `--staking-param NAME=VALUE` entries (amounts in base units, the rest integers) over
 * the defaults and checks them with the module's own schema, then works out the self-bond of a
 * validator of consensus power `power`. Throws a CliError naming the parameter.
 */
export function planStaking(
  options: StakingInitOptions,
  power: number,
  validators: number,
): StakingPlan {
  const given: Record<string, number | bigint> = {};
  for (const [name, text] of Object.entries(options.params ?? {})) {
    if (!(STAKING_PARAM_NAMES as string[]).includes(name)) {
      throw new CliError(
        `--staking-param ${JSON.stringify(name)} is not a staking parameter (known: ${STAKING_PARAM_NAMES.join(', ')})`,
      );
    }
    const isAmount = typeof DEFAULT_STAKING_PARAMS[name as keyof StakingParams] === 'bigint';
    // 2^128 has 39 digits; the schema bounds every value.
    if (!/^(0|[1-9][0-9]{0,38})$/.test(text)) {
      throw new CliError(
        `--staking-param ${name}=${JSON.stringify(text)}: expected a whole number${isAmount ? ' of base units' : ''} below 2^128 (digits only, no sign, fraction, exponent or leading zeros)`,
      );
    }
    given[name] = isAmount ? BigInt(text) : Number(text);
  }
  const checked = stakingParamsSchema.safeParse({ ...DEFAULT_STAKING_PARAMS, ...given });
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const name = String(issue?.path[0] ?? 'params');
    throw new CliError(`--staking-param ${name}: ${issue?.message ?? 'out of range'}`);
  }
  const params = checked.data;
  const commission = options.commission ?? 0;
  if (!Number.isInteger(commission) || commission < 0 || commission > 10_000) {
    throw new CliError(
      `--validator-commission must be basis points from 0 to 10000, got ${String(commission)}`,
    );
  }
  if (validators > params.maxValidators) {
    throw new CliError(
      `${validators} validator(s) is above the staking parameter maxValidators ${params.maxValidators}`,
    );
  }
  const selfBond = BigInt(power) * params.powerUnit;
  if (selfBond >= AMOUNT_LIMIT) {
    throw new CliError(
      `a self-bond of power ${power} × powerUnit ${params.powerUnit} base units is above the largest amount 2^128 - 1`,
    );
  }
  if (selfBond < params.minValidatorStake) {
    throw new CliError(
      `a self-bond of power ${power} × powerUnit ${params.powerUnit} = ${selfBond} base units is below minValidatorStake ${params.minValidatorStake}: the genesis validators would not qualify for the set`,
    );
  }
  return { params, selfBond, commission };
}

export interface ClusterInitOptions {
  readonly out: string;
  readonly validators: number;
  readonly chainId?: string;
  /** Address every node listens on (STOQ and metrics). */
  readonly host?: string;
  /** STOQ port of node-1; node-K gets basePort + K - 1. 0 asks the OS for free ports. */
  readonly basePort?: number;
  /** Metrics port of node-1; node-K gets metricsBasePort + K - 1. 0 asks the OS. */
  readonly metricsBasePort?: number;
  /**
   * DNS port (UDP and TCP) of node-1; node-K gets dnsBasePort + K - 1. 0 asks the OS. Default:
   * `DEFAULT_DNS_PORT`, or 0 when `basePort` is 0.
   */
  readonly dnsBasePort?: number;
  /**
   * DNS-over-QUIC port of node-1; node-K gets doqBasePort + K - 1. 0 asks the OS. Default:
   * `DEFAULT_DOQ_PORT`, or 0 when `basePort` is 0.
   */
  readonly doqBasePort?: number;
  /**
   * Put the cluster zone in the genesis (signed: its DNSKEY in the genesis, the signing key in
   * every node's directory) and serve it from every node over UDP, TCP and DoQ (default true).
   */
  readonly dns?: boolean;
  /**
   * Install the service catalog (`app.discovery`, docs/discovery.md), published in the cluster
   * zone when there is one (default true).
   */
  readonly discovery?: boolean;
  /**
   * Run the TrustChain CA genesis ceremony (`app.ca`, docs/ca.md) and serve each node's CT log
   * over HTTP (default true).
   */
  readonly ca?: boolean;
  /** Environment variable holding the CA root key passphrase; absent: one is generated. */
  readonly caPassphraseEnv?: string;
  /**
   * The CA's per-account issuance limit, written to `app.ca.rateLimit` (`--ca-rate-limit`;
   * bounds in ca-rate-limit.ts). Absent: the genesis has none and the CA's default applies.
   */
  readonly caRateLimit?: RateLimit;
  /** CT HTTP port of node-1; node-K gets ctBasePort + K - 1. 0 asks the OS (default with basePort 0). */
  readonly ctBasePort?: number;
  /**
   * Run an ACME server on every node (docs/acme.md; needs the CA): each node gets an ACME
   * account key with its own genesis grant and an HTTPS certificate (default true).
   */
  readonly acme?: boolean;
  /** ACME HTTPS port of node-1; node-K gets acmeBasePort + K - 1. 0 asks the OS (default with basePort 0). */
  readonly acmeBasePort?: number;
  /**
   * `externalDns` on the ACME account grants (docs/acme.md, "External names"): the ACME servers
   * also issue for DNS names outside the cluster zone (default false). Needs the CA, ACME and
   * the cluster's DNS (its zone is the default CAA identity).
   */
  readonly acmeExternalDns?: boolean;
  /**
   * Replace an existing cluster directory (one holding a genesis.json), unless a node of it
   * runs (holds its data directory's lock).
   */
  readonly force?: boolean;
  /**
   * Mark the directory as `hypermesh dev`'s (`CLUSTER_FILES.devMarker`): dev may replace it. With
   * `force`, the directory replaced must still carry the marker when the new cluster is moved in
   * (dev checked it before the ceremony; a `cluster init --force` may have replaced it since).
   */
  readonly devMarker?: boolean;
  /** Test seams (`ClusterInitHooks`). */
  readonly hooks?: ClusterInitHooks;
  readonly proofParams?: ConsensusProofParams;
  readonly consensus?: GenesisConsensusParams;
  readonly power?: number;
  readonly validityDays?: number;
  readonly falcon?: FalconBackend;
  readonly progress?: (line: string) => void;
  readonly now?: () => Date;
  /** The Caesar ledger in the genesis (defaults: `DEFAULT_LEDGER`); null writes none. */
  readonly ledger?: LedgerInitOptions | null;
  /** A Caesar staking section (needs the ledger); absent or null: no staking. */
  readonly staking?: StakingInitOptions | null;
}

/**
 * A test seam: `beforeCommit` runs when the cluster is complete in its staging directory, after
 * the ceremony and before the checks that precede moving it into place (inside the step an
 * interrupt waits for), so a test can change the target directory or send a signal there.
 */
export interface ClusterInitHooks {
  readonly beforeCommit?: (dir: string) => Promise<void>;
}

export interface ClusterNodeLayout {
  readonly name: string;
  /** Validator address: hex of the first 20 bytes of SHA-256 of the Ed25519 public key. */
  readonly id: string;
  readonly publicKey: string;
  readonly dir: string;
  readonly configFile: string;
  readonly stoq: { readonly host: string; readonly port: number };
  readonly metrics: { readonly host: string; readonly port: number };
  /** The node's DNS port (UDP and TCP), or null when the cluster has no DNS. */
  readonly dns: { readonly host: string; readonly port: number } | null;
  /** The node's DNS-over-QUIC address, or null when it serves none. */
  readonly doq: { readonly host: string; readonly port: number } | null;
}

export interface ClusterLayout {
  readonly dir: string;
  readonly chainId: string;
  readonly genesisFile: string;
  readonly trustRootsFile: string;
  readonly operator: { readonly keyFile: string; readonly certificateFile: string };
  readonly nodes: readonly ClusterNodeLayout[];
}

/** What `initCluster` created: the layout, and the ledger's treasury when there is one. */
export interface ClusterInitResult extends ClusterLayout {
  readonly ledger: {
    readonly token: TokenParams;
    /** The treasury wallet's key file and address (64 hex digits). */
    readonly treasuryKeyFile: string;
    readonly treasuryAddress: string;
    readonly treasuryAmount: bigint;
    /** Base units credited to each validator's operator account. */
    readonly validatorAmount: bigint;
    /** The staking section, when written. */
    readonly staking: StakingPlan | null;
  } | null;
}

export function nodeName(index: number): string {
  return `node-${index + 1}`;
}

function checkOptions(options: ClusterInitOptions): void {
  const { validators } = options;
  if (!Number.isInteger(validators) || validators < 1 || validators > MAX_VALIDATORS) {
    throw new CliError(
      `--validators must be an integer from 1 to ${MAX_VALIDATORS}, got ${String(validators)}`,
    );
  }
  const chainId = options.chainId ?? DEFAULT_CHAIN_ID;
  if (!NODE_NAME_PATTERN.test(chainId)) {
    throw new CliError(
      `--chain-id "${chainId}" must be lowercase letters, digits and "-" (at most 63, starting with a letter or digit)`,
    );
  }
  checkClusterPorts(options);
  if (options.host !== undefined && options.host.trim() === '') {
    throw new CliError('--host must not be empty');
  }
  if (options.caRateLimit !== undefined) {
    if (options.ca === false) {
      throw new CliError(
        "--ca-rate-limit sets the TrustChain CA's issuance limit; it cannot be combined with --no-ca",
      );
    }
    checkCaRateLimit(options.caRateLimit);
  }
  if (options.caPassphraseEnv !== undefined && options.ca === false) {
    // The development CA's root key would be written unencrypted: refuse rather than ignore it.
    throw new CliError(
      "--ca-passphrase-env encrypts the TrustChain CA's root keys; it cannot be combined with --no-ca (whose development CA root key is not encrypted)",
    );
  }
  if (options.acmeExternalDns === true) {
    const without =
      options.ca === false
        ? '--no-ca'
        : options.acme === false
          ? '--no-acme'
          : options.dns === false
            ? '--no-dns (the cluster zone is the CAA identity external names are checked against)'
            : null;
    if (without !== null) {
      throw new CliError(
        `--acme-external-dns lets the ACME servers issue for external names; it cannot be combined with ${without}`,
      );
    }
  }
  if (options.dns !== false && options.host !== undefined && isIP(options.host) === 0) {
    throw new CliError(
      `--host ${options.host} is not an IP address; the DNS servers listen on IP literals (or pass --no-dns)`,
    );
  }
}

/**
 * The cluster zone: the operator administers it; anyone may register names in it; signed with
 * the key whose DNSKEY it publishes.
 */
function clusterZone(
  operatorPublicKey: Uint8Array,
  dnskey: DnsZonesGenesisJson['zones'][number]['dnskey'],
): DnsZonesGenesisJson {
  const zone = DEFAULT_DNS_ZONE;
  return {
    zones: [
      {
        apex: zone,
        admins: [toHex(operatorPublicKey)],
        policy: 'open',
        soa: {
          ttl: 3600,
          mname: `ns1.${zone}`,
          rname: `hostmaster.${zone}`,
          refresh: 3600,
          retry: 600,
          expire: 86_400,
          minimum: 60,
        },
        nameservers: { ttl: 3600, hosts: [`ns1.${zone}`] },
        ...(dnskey === undefined ? {} : { dnskey }),
      },
    ],
  };
}

/** What an interrupted `cluster add-node` leaves in a cluster directory: `.NAME.tmp-…`. */
const ADD_NODE_STAGING = /^\.[a-z0-9][a-z0-9-]*\.tmp-/;

/**
 * Why `dir`, whose entries are `entries`, is not a cluster directory `--force` may replace, or
 * null. It must read as one (`readClusterLayout`: the genesis, every node's config.json, the
 * operator's files) and hold only what a cluster directory holds — the genesis, `ca/`,
 * `operator/`, the directories of its genesis and added nodes, `added-nodes.json` and its lock,
 * `cluster.json`, dev's marker, an interrupted add-node's staging directories — so a project
 * directory that merely has a `genesis.json` is never deleted.
 */
async function notAClusterDirectory(
  dir: string,
  entries: readonly string[],
): Promise<string | null> {
  if (!entries.includes(CLUSTER_FILES.genesis)) return `it holds no ${CLUSTER_FILES.genesis}`;
  let layout: ClusterDirectoryLayout;
  try {
    layout = await readClusterLayout(dir);
  } catch (error) {
    return `it does not read as a cluster directory: ${error instanceof Error ? error.message : String(error)}`;
  }
  const known = new Set<string>([
    CLUSTER_FILES.genesis,
    CLUSTER_FILES.caDir,
    CLUSTER_FILES.operatorDir,
    CLUSTER_FILES.clusterJson,
    CLUSTER_FILES.devMarker,
    ADDED_NODES_FILE,
    `${ADDED_NODES_FILE}.lock`,
    ...layout.nodes.map((node) => node.name),
    ...layout.addedNodes.map((node) => node.name),
  ]);
  const foreign = entries.filter((entry) => !known.has(entry) && !ADD_NODE_STAGING.test(entry));
  if (foreign.length === 0) return null;
  const listed = foreign
    .slice(0, 5)
    .map((entry) => JSON.stringify(entry))
    .join(', ');
  return `it also holds ${listed}${foreign.length > 5 ? ` and ${foreign.length - 5} more` : ''}, which a cluster directory does not`;
}

/**
 * Refuses a non-empty `dir` unless `force` and it holds a previous cluster
 * (`notAClusterDirectory`) none of whose nodes runs.
 */
async function checkTarget(dir: string, force: boolean): Promise<'absent' | 'empty' | 'replace'> {
  let entries: string[];
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) throw new CliError(`${dir} exists and is not a directory`);
    entries = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw error;
  }
  if (entries.length === 0) return 'empty';
  if (!force) {
    throw new CliError(`${dir} is not empty; choose another --out or pass --force to replace it`);
  }
  const reason = await notAClusterDirectory(dir, entries);
  if (reason !== null) {
    throw new CliError(
      `${dir} is not empty and ${reason}; --force only replaces a cluster directory "cluster init" wrote: choose another --out, or remove ${dir} yourself`,
    );
  }
  // Replacing deletes the keys and chain data the running nodes use.
  await refuseRunningNodes(dir, 'replace it');
  return 'replace';
}

async function writeJson(file: string, value: unknown, mode = 0o644): Promise<void> {
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`, { flag: 'wx', mode });
}

/**
 * node-1..node-`count`'s ports of a service: `base + K - 1`, or with a base of 0 free ports none
 * of which is in `taken` (every fixed range's ports and those drawn before: a free STOQ port
 * must not be a fixed DNS one, both UDP). The ports returned are added to `taken`.
 */
async function allocatePorts(
  host: string,
  base: number,
  count: number,
  taken: Set<number>,
): Promise<number[]> {
  const ports =
    base !== 0
      ? Array.from({ length: count }, (_, i) => base + i)
      : await findFreePorts(host, count, undefined, taken);
  for (const port of ports) taken.add(port);
  return ports;
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export async function initCluster(options: ClusterInitOptions): Promise<ClusterInitResult> {
  checkOptions(options);
  const power = options.power ?? DEFAULT_VALIDATOR_POWER;
  const wantsStaking = options.staking !== undefined && options.staking !== null;
  if (wantsStaking && options.ledger === null) {
    throw new CliError('--staking needs the Caesar ledger; it cannot be combined with --no-caesar');
  }
  if (wantsStaking && options.ca === false) {
    // Without the ca module any funded key could register a validator: a new validator needs a
    // TrustChain intermediate through the governed procedure (docs/caesar.md, "Staking").
    throw new CliError(
      '--staking needs the TrustChain CA (a new validator first gets an intermediate through the governed procedure, docs/ca.md); it cannot be combined with --no-ca',
    );
  }
  const stakingPlan = wantsStaking
    ? planStaking(options.staking ?? {}, power, options.validators)
    : null;
  const ledgerPlan =
    options.ledger === null
      ? null
      : planLedger(options.ledger ?? {}, options.validators, stakingPlan?.selfBond ?? 0n);
  const dir = path.resolve(options.out);
  const target = await checkTarget(dir, options.force ?? false);
  const chainId = options.chainId ?? DEFAULT_CHAIN_ID;
  const host = options.host ?? DEFAULT_LISTEN_HOST;
  const count = options.validators;
  const proof = options.proofParams ?? DEV_PROOF_PARAMS;
  const consensus = options.consensus ?? DEFAULT_CLUSTER_CONSENSUS;
  const progress = options.progress ?? (() => undefined);
  const now = options.now ?? (() => new Date());
  const falcon = options.falcon ?? defaultFalcon();
  const validityDays = options.validityDays ?? 365;

  const bases = clusterPortBases(options);
  const taken = new Set(fixedClusterPorts(options));
  const stoqPorts = await allocatePorts(host, bases.stoq, count, taken);
  const metricsPorts = await allocatePorts(host, bases.metrics, count, taken);

  const dnsPorts =
    options.dns === false ? null : await allocatePorts(host, bases.dns, count, taken);
  const doqPorts = dnsPorts === null ? null : await allocatePorts(host, bases.doq, count, taken);
  // The cluster zone's signing key: its DNSKEY goes in the genesis, the key to every node.
  const zoneKey = dnsPorts === null ? null : generateZoneKey();
  const ctPorts = options.ca === false ? null : await allocatePorts(host, bases.ct, count, taken);
  const caValidators: { name: string; nodeDir: string; falconKeys: FalconKeyPair }[] = [];
  // ACME (acme-cluster.ts): one HTTPS port, account key and certificate per node.
  const acmePorts =
    ctPorts === null || options.acme === false
      ? null
      : await allocatePorts(host, bases.acme, count, taken);
  const acmeAccounts: Uint8Array[] = [];
  // What nodes and clients trust: the TrustChain root, or the development CA's (--no-ca).
  const trustRootsName = ctPorts === null ? DEV_CA_FILES.certificate : CA_FILES.root;

  await mkdir(path.dirname(dir), { recursive: true });
  // What an earlier run killed mid-ceremony left beside `dir` (its keys among it).
  const base = path.basename(dir);
  for (const stale of await removeStaleStagingDirs(path.dirname(dir), (entry) =>
    entry.startsWith(`${base}.tmp-`),
  )) {
    progress(`removed ${stale}, left by an interrupted cluster init`);
  }
  const nodes: ClusterNodeLayout[] = [];
  let treasuryAddress = '';
  // A Ctrl-C (or SIGTERM) from here on removes the staging directory before the process exits;
  // the handlers go with the run, however it ends (a staging directory that cannot be created
  // included: a long-lived caller must not exit on a later Ctrl-C).
  const interrupt = exitOnInterrupt('cluster init');
  let staging: string | null = null;
  try {
    staging = await createStagingDir(`${dir}.tmp-`);
    interrupt.removeOnInterrupt(staging);
    const caDir = path.join(staging, CLUSTER_FILES.caDir);
    progress(`cluster "${chainId}": ${count} validator(s) on ${host}, writing ${dir}`);
    const names = Array.from({ length: count }, (_, i) => nodeName(i));

    // The TrustChain CA's ceremony runs first: it needs every validator's FALCON key (the node
    // identities are generated for it) and the operator's account, and its intermediates issue
    // the certificates below. With --no-ca, the development CA issues them.
    let issuing:
      | { readonly devCa: CertificateAuthority }
      | { readonly ca: ClusterCaResult; readonly operatorKeys: NodeIdentityKeys };
    const identities = new Map<string, NodeIdentityKeys>();
    if (ctPorts === null) {
      await initDevCa({ dir: caDir, cluster: chainId, validityDays: Math.max(validityDays, 3650) });
      issuing = { devCa: (await loadDevCa(caDir)).ca };
      progress(
        `  ca        development CA, root certificate ${CLUSTER_FILES.caDir}/${DEV_CA_FILES.certificate}`,
      );
    } else {
      for (const name of names) {
        const nodeDir = path.join(staging, name);
        await mkdir(nodeDir, { recursive: true, mode: 0o700 });
        const keys = await generateNodeIdentity(falcon);
        identities.set(name, keys);
        caValidators.push({ name, nodeDir, falconKeys: keys.falcon });
      }
      const operatorKeys = await generateNodeIdentity(falcon);
      const operatorDir = path.join(staging, CLUSTER_FILES.operatorDir);
      await mkdir(operatorDir, { recursive: true, mode: 0o700 });
      const clusterCa = await runClusterCaCeremony({
        dir: staging,
        chainId,
        time: now(),
        validators: caValidators,
        operatorDir,
        operatorPublicKey: ed25519RawPublicKey(operatorKeys.ed25519.publicKey),
        dnsZone: dnsPorts === null ? null : DEFAULT_DNS_ZONE,
        host,
        ...(options.caPassphraseEnv === undefined
          ? {}
          : { passphraseEnv: options.caPassphraseEnv }),
        ...(options.caRateLimit === undefined ? {} : { rateLimit: options.caRateLimit }),
        falcon,
      });
      progress(
        `  ca        TrustChain CA: root ${CA_FILES.dir}/${CA_FILES.root}, bundle ${CA_FILES.dir}/${CA_FILES.bundle}, intermediates in node-K/${CA_FILES.intermediateKey}, ` +
          `root keys encrypted in ${CLUSTER_FILES.operatorDir}/${CA_FILES.rootEcdsaKey} and ${CA_FILES.rootFalconKey}` +
          (clusterCa.passphraseFile === null
            ? ` (passphrase from $${options.caPassphraseEnv})`
            : ` (generated passphrase in ${CLUSTER_FILES.operatorDir}/${CA_FILES.passphrase}, mode 0600)`) +
          `; CT logs on HTTP ports ${ctPorts.join(', ')}`,
      );
      issuing = { ca: clusterCa, operatorKeys };
    }
    /** What issues `name`'s certificates: its own TrustChain intermediate. */
    const intermediateOf = (name: string): GenesisIssuer => {
      const issuer = 'ca' in issuing ? issuing.ca.issuers.get(name) : undefined;
      if (issuer === undefined) throw new RangeError(`no intermediate for ${name}`);
      return issuer;
    };

    const validators: GenesisValidator[] = [];
    for (const [index, name] of names.entries()) {
      const started = performance.now();
      const nodeDir = path.join(staging, name);
      const keys = identities.get(name) ?? (await generateNodeIdentity(falcon));
      if ('devCa' in issuing) {
        await issueDevIdentity({
          ca: issuing.devCa,
          cluster: chainId,
          name,
          role: 'validator',
          outDir: nodeDir,
          validityDays,
          keys,
          now: now(),
        });
      } else {
        // DoQ and TLS clients check the address they dial: name it when it is an IP address.
        await writeGenesisIdentity({
          issuer: intermediateOf(name),
          chainId,
          name,
          role: 'validator',
          outDir: nodeDir,
          keys,
          validityDays,
          now: now(),
          ...(isIP(host) === 0 ? {} : { ipAddresses: [host] }),
        });
      }
      const acmeFiles: NodeAcmeFiles | null =
        acmePorts === null
          ? null
          : await writeNodeAcmeFiles({
              ca: intermediateOf(name),
              chainId,
              name,
              nodeDir,
              keys,
              host,
              port: acmePorts[index] as number,
              validityDays,
              now: now(),
            });
      if (acmeFiles !== null) acmeAccounts.push(acmeFiles.accountPublicKey);
      const publicKey = ed25519RawPublicKey(keys.ed25519.publicKey);
      const plot = buildStoragePlotFor(proof.space, publicKey);
      await saveStoragePlot(path.join(nodeDir, CLUSTER_FILES.storagePlot), plot);
      const storageRoot = plot.root;
      validators.push({
        name,
        publicKey,
        pqPublicKey: keys.falcon.publicKey,
        power,
        storageRoot,
      });
      const stoq = { host, port: stoqPorts[index] as number };
      const metrics = { host, port: metricsPorts[index] as number };
      const dnsAddress = dnsPorts === null ? null : { host, port: dnsPorts[index] as number };
      const doqAddress = doqPorts === null ? null : { host, port: doqPorts[index] as number };
      const zoneKeyFile = zoneKeyFileName(DEFAULT_DNS_ZONE);
      if (zoneKey !== null) await writeZoneKeyFile(path.join(nodeDir, zoneKeyFile), zoneKey);
      const config: ValidatorNodeConfig = {
        name,
        dataDir: CLUSTER_FILES.dataDir,
        genesisFile: path.join('..', CLUSTER_FILES.genesis),
        identity: { keyFile: `${name}.key`, certificateFile: `${name}.pem` },
        trust: { rootsFile: path.join('..', CLUSTER_FILES.caDir, trustRootsName) },
        storagePlotFile: CLUSTER_FILES.storagePlot,
        consensus: { idleBlockIntervalMs: DEFAULT_IDLE_BLOCK_INTERVAL_MS },
        stoq: { ...stoq, transport: 'quic', authMode: 'delegated' },
        metrics,
        peers: names
          .map((peer, peerIndex) => ({
            name: peer,
            address: { host, port: stoqPorts[peerIndex] as number },
          }))
          .filter((peer) => peer.name !== name),
        dns:
          dnsAddress === null
            ? null
            : {
                udp: [dnsAddress],
                tcp: [dnsAddress],
                doq: doqAddress === null ? [] : [doqAddress],
                dnssecKeys:
                  zoneKey === null ? [] : [{ zone: DEFAULT_DNS_ZONE, keyFile: zoneKeyFile }],
              },
        ca: ctPorts === null ? null : nodeCaConfig(),
        ct: ctPorts === null ? null : { http: { host, port: ctPorts[index] as number } },
        acme: acmeFiles === null ? null : acmeFiles.config,
        logLevel: 'info',
      };
      await writeJson(path.join(nodeDir, CLUSTER_FILES.nodeConfig), config);
      const id = validatorAddress(publicKey);
      nodes.push({
        name,
        id,
        publicKey: Buffer.from(publicKey).toString('hex'),
        dir: path.join(dir, name),
        configFile: path.join(dir, name, CLUSTER_FILES.nodeConfig),
        stoq,
        metrics,
        dns: dnsAddress,
        doq: doqAddress,
      });
      const certificate = 'devCa' in issuing ? 'certificate' : 'certificate from its intermediate';
      progress(
        `  ${name.padEnd(8)}  ${id}  keys, ${certificate}, storage plot (${proof.space.blockCount} blocks)  ` +
          `stoq ${host}:${stoq.port}  metrics ${host}:${metrics.port}${dnsAddress === null ? '' : `  dns ${host}:${dnsAddress.port}`}${doqAddress === null ? '' : `  doq ${host}:${doqAddress.port}`}  ${formatSeconds(performance.now() - started)}`,
      );
    }

    if ('devCa' in issuing) {
      await issueDevIdentity({
        ca: issuing.devCa,
        cluster: chainId,
        name: CLUSTER_FILES.operatorName,
        role: 'client',
        outDir: path.join(staging, CLUSTER_FILES.operatorDir),
        validityDays,
        falcon,
        now: now(),
      });
      progress(`  operator  client identity ${CLUSTER_FILES.operatorDir}/`);
    } else {
      const first = names[0] as string;
      await writeGenesisIdentity({
        issuer: intermediateOf(first),
        chainId,
        name: CLUSTER_FILES.operatorName,
        role: 'client',
        outDir: path.join(staging, CLUSTER_FILES.operatorDir),
        keys: issuing.operatorKeys,
        validityDays,
        now: now(),
      });
      progress(
        `  operator  client identity ${CLUSTER_FILES.operatorDir}/, certificate from ${first}'s intermediate`,
      );
    }

    let app: GenesisDocument['app'];
    if (ledgerPlan !== null) {
      const treasury = await createWalletKey(
        path.join(staging, CLUSTER_FILES.operatorDir, CLUSTER_FILES.treasuryKey),
      );
      treasuryAddress = formatAddress(treasury.address);
      const allocations: GenesisAllocation[] = [
        { address: treasury.address, amount: ledgerPlan.treasuryAmount },
      ];
      if (ledgerPlan.validatorAmount > 0n) {
        for (const validator of validators) {
          allocations.push({
            address: ed25519Address(validator.publicKey),
            amount: ledgerPlan.validatorAmount,
          });
        }
      }
      const staking: StakingGenesis | undefined =
        stakingPlan === null
          ? undefined
          : {
              params: stakingPlan.params,
              validators: validators.map((validator) => ({
                publicKey: validator.publicKey,
                pqPublicKey: validator.pqPublicKey,
                storageRoot: validator.storageRoot,
                selfBond: stakingPlan.selfBond,
                commission: stakingPlan.commission,
              })),
            };
      const caesarGenesis: CaesarGenesis = {
        token: ledgerPlan.token,
        allocations,
        ...(staking === undefined ? {} : { staking }),
      };
      // What every node checks at start (genesisApplication): refuse here, not there.
      checkStakingMatchesValidators(caesarGenesis, validators);
      app = { caesar: caesarGenesisToJson(caesarGenesis) };
      const { symbol, decimals, supply } = ledgerPlan.token;
      progress(
        `  caesar    ${formatTokenAmount(supply, decimals)} ${symbol} (${decimals} decimals): ${formatTokenAmount(ledgerPlan.treasuryAmount, decimals)} to the treasury ` +
          `${CLUSTER_FILES.operatorDir}/${CLUSTER_FILES.treasuryKey} (${treasuryAddress}), ` +
          `${formatTokenAmount(ledgerPlan.validatorAmount, decimals)} to each validator's account`,
      );
      if (stakingPlan !== null) {
        const { params, selfBond, commission } = stakingPlan;
        progress(
          `  staking   self-bond ${formatTokenAmount(selfBond, decimals)} ${symbol} per validator (power ${power} × powerUnit ${params.powerUnit} base units), ` +
            `commission ${commission} bps, set recomputed every ${params.epochBlocks} blocks, unbonding ${params.unbondingBlocks} blocks`,
        );
      }
    }

    if (dnsPorts !== null) {
      const operator = await readWalletKey(
        path.join(staging, CLUSTER_FILES.operatorDir, `${CLUSTER_FILES.operatorName}.key`),
      );
      app = {
        ...app,
        dns: clusterZone(
          operator.publicKey,
          zoneKey === null ? undefined : genesisDnskeyJson(zoneKey.dnskey),
        ),
      };
      progress(
        `  dns       zone ${DEFAULT_DNS_ZONE} in consensus state (administered by the operator key, names open to all), served by every node` +
          (zoneKey === null
            ? ''
            : `; DNSSEC key tag ${zoneKey.keyTag} (DNSKEY in the genesis, key in node-K/${zoneKeyFileName(DEFAULT_DNS_ZONE)})`),
      );
    }

    if (options.discovery !== false) {
      const dnsZone = dnsPorts === null ? null : DEFAULT_DNS_ZONE;
      app = { ...app, discovery: discoveryGenesisToJson({ dnsZone }) };
      progress(
        `  discovery service catalog in consensus state${dnsZone === null ? '' : `, SRV records in ${dnsZone}`}; every node registers its own services`,
      );
    }

    if ('ca' in issuing) {
      app = {
        ...app,
        // With every bootstrap certificate issued above (docs/ca.md, "Genesis").
        ca: issuing.ca.withGenesisCertificates(
          acmeAccounts.length === 0
            ? issuing.ca.section
            : withAcmeGrants(
                // Later renewals of acme-https.pem name its host under the operator's grant.
                withAcmeHostGranted(
                  issuing.ca.section,
                  ed25519RawPublicKey(issuing.operatorKeys.ed25519.publicKey),
                  host,
                ),
                acmeAccounts,
                dnsPorts === null ? null : DEFAULT_DNS_ZONE,
                host,
                options.acmeExternalDns === true,
              ),
        ),
      };
      if (acmePorts !== null) {
        progress(
          `  acme      ACME servers on HTTPS ports ${acmePorts.join(', ')}: account keys node-K/${ACME_FILES.accountKey} (granted service certificates` +
            `${dnsPorts === null ? '' : ` in ${DEFAULT_DNS_ZONE}`} in the genesis), certificates node-K/${ACME_FILES.certificate} from each node's intermediate (root ${CLUSTER_FILES.caDir}/${CA_FILES.root})`,
        );
      }
    }

    const genesis: GenesisDocument = {
      chainId,
      genesisTime: now().getTime(),
      validators,
      consensus,
      proof,
      ...(app === undefined ? {} : { app }),
    };
    // Fsynced: with the root keys, what the cluster cannot be rebuilt without.
    await writeFileAtomically(path.join(staging, CLUSTER_FILES.genesis), genesisToJson(genesis), {
      mode: 0o644,
    });
    progress(`  genesis   ${CLUSTER_FILES.genesis} (total voting power ${power * count})`);
    if (options.devMarker === true) {
      await writeFile(
        path.join(staging, CLUSTER_FILES.devMarker),
        'created by "hypermesh dev", which may replace this directory\n',
        { flag: 'wx', mode: 0o644 },
      );
    }

    await sealStagingDir(staging);
    // The staging directory's own entries (genesis.json, operator/, ca/, node-K/) are durable
    // before it is renamed into place; commitStaging then syncs the rename.
    await syncDirectory(staging);
    const finished = staging;
    await interrupt.uninterrupted(async () => {
      await options.hooks?.beforeCommit?.(dir);
      await commitStaging(finished, dir, target, options.devMarker === true);
      // In place: an interrupt now must neither remove it nor say it was undone.
      interrupt.completed(finished, `the cluster is in ${dir}`);
    });
  } catch (error) {
    if (staging !== null) await rm(staging, { recursive: true, force: true });
    throw error;
  } finally {
    interrupt.dispose();
  }
  const operatorDir = path.join(dir, CLUSTER_FILES.operatorDir);
  return {
    dir,
    chainId,
    genesisFile: path.join(dir, CLUSTER_FILES.genesis),
    trustRootsFile: path.join(dir, CLUSTER_FILES.caDir, trustRootsName),
    operator: {
      keyFile: path.join(operatorDir, `${CLUSTER_FILES.operatorName}.key`),
      certificateFile: path.join(operatorDir, `${CLUSTER_FILES.operatorName}.pem`),
    },
    nodes,
    ledger:
      ledgerPlan === null
        ? null
        : {
            token: ledgerPlan.token,
            treasuryKeyFile: path.join(operatorDir, CLUSTER_FILES.treasuryKey),
            treasuryAddress,
            treasuryAmount: ledgerPlan.treasuryAmount,
            validatorAmount: ledgerPlan.validatorAmount,
            staking: stakingPlan,
          },
  };
}

/**
 * Moves the finished staging directory to `dir`. rename(2) replaces an absent or empty
 * directory atomically; a previous cluster is first moved aside and removed only after the new
 * one is in place (and moved back if that fails). What `checkTarget` saw before the ceremony is
 * checked again first: the ceremony takes seconds, and meanwhile a node of the cluster may have
 * started, or (for dev, `devMarker`) a `cluster init --force` may have put a cluster that is not
 * dev's in its place.
 */
async function commitStaging(
  staging: string,
  dir: string,
  target: 'absent' | 'empty' | 'replace',
  devMarker: boolean,
): Promise<void> {
  if (target !== 'replace') {
    await rename(staging, dir);
    // A power loss after the rename must not lose it: its entry is in the parent directory.
    await syncDirectory(path.dirname(dir));
    return;
  }
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
    entries = [];
  }
  const reason = await notAClusterDirectory(dir, entries);
  if (reason !== null) {
    throw new CliError(
      `${dir} changed during the ceremony: ${reason}, so it is not replaced; run again`,
      1,
    );
  }
  if (devMarker && !entries.includes(CLUSTER_FILES.devMarker)) {
    throw new CliError(
      `the cluster in ${dir} was replaced during the ceremony by one not created by "hypermesh dev" (no ${CLUSTER_FILES.devMarker}), so dev will not delete it: pass another --dir, or remove ${dir} yourself`,
      1,
    );
  }
  await refuseRunningNodes(dir, 'replace it');
  const aside = await mkdtemp(`${dir}.old-`);
  const previous = path.join(aside, 'cluster');
  await rename(dir, previous);
  try {
    await rename(staging, dir);
  } catch (error) {
    await rename(previous, dir);
    await rm(aside, { recursive: true, force: true });
    throw error;
  }
  await syncDirectory(path.dirname(dir));
  await rm(aside, { recursive: true, force: true });
}
