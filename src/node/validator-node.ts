import {
  BlockWitnessError,
  BlockWitnessErrorCode,
  blockWitnessSource,
  type BlockWitnessSource,
} from './block-witness.js';
import { mkdir } from 'node:fs/promises';
import { statSync } from 'node:fs';
import path from 'node:path';
import { toHex } from '../crypto/bytes.js';
import { ed25519RawPublicKey } from '../crypto/ed25519.js';
import { defaultFalcon } from '../crypto/falcon.js';
import { readKeyFile } from '../crypto/keyfile.js';
import { HyperMeshError } from '../codec/error.js';
import {
  createApplication,
  stampOf,
  type InitialStateEntry,
  type Module,
} from '../consensus/application/index.js';
import {
  CAESAR_MODULE_NAME,
  caesarGenesisFromApp,
  caesarInitialState,
  checkStakingMatchesValidators,
  createCaesarModule,
} from '../caesar/index.js';
import type { Application, BlockExecutionResult, QueryRequest } from '../consensus/app.js';
import {
  ConsensusDriver,
  testEquivocationFromEnv,
  type CommitInfo,
} from '../consensus/driver/index.js';
import { genesisHash, type GenesisDocument } from '../consensus/genesis.js';
import { DEFAULT_MEMPOOL_OPTIONS, Mempool, type MempoolAddResult } from '../consensus/mempool.js';
import { accountHistoryPage, storedReceipt } from './tx-receipts.js';
import { pendingSequenceOf, transactionStatus } from './tx-status.js';
import { createTxIntake, type TxIntake } from './tx-intake.js';
import {
  MAX_STATUS_ENTRIES,
  MAX_VALIDATOR_UPDATE_RESPONSE_BYTES,
  createStoqConsensusNetwork,
  registerNodeRpc,
  type NodeRpcHandlers,
  type NodeStatusRecord,
  type StoqConsensusNetwork,
  submitterOf,
} from '../consensus/net/index.js';
import { createBlockProofs } from '../consensus/pos/index.js';
import { validatorAddress } from '../consensus/validator-set.js';
import { KV_MODULE_NAME, createKvModule } from '../kv/index.js';
import {
  ConsensusZones,
  DNS_ZONES_MODULE_NAME,
  createDnsZonesModule,
  dnsZonesGenesisFromApp,
  dnsZonesInitialState,
  dnsZonesStateReader,
  type ConsensusZonesOptions,
} from '../trustchain/dns-zones/index.js';
import { startDnsServers, type DnsServers } from '../faces/dns/index.js';
import {
  CA_MODULE_NAME,
  caGenesisFromApp,
  caInitialState,
  createCaModule,
  type CaModuleConfig,
} from '../trustchain/ca-module/index.js';
import { startCaNode, type CaNode } from './ca-node.js';
import { RenewalSender, startCertRenewal, type CertRenewalOptions } from './cert-renewal.js';
import { identityServers } from './identity-servers.js';
import { createCaService, createCaStoqTrust } from './ca-service.js';
import { startAcmeNode, type AcmeNode } from './acme-node.js';
import {
  DISCOVERY_MODULE_NAME,
  createDiscoveryModule,
  discoveryNodeKeys,
  discoveryGenesisFromApp,
} from '../discovery/index.js';
import { createDiscoveryNode, type DiscoveryNode } from './discovery-node.js';
import {
  DiscoveryResolver,
  certifiedKeyOf,
  isServingNode,
  viewCatalogSource,
} from './discovery-resolver.js';
import { ZoneSet, type ZoneBuildOptions } from '../trustchain/dns/index.js';
import { doqIdentity, loadZoneSigners, signingBuildOptions } from './dns-keys.js';
import { consensusWalPathFor, openStore, type NodeStore } from '../storage/index.js';
import { StoqError, StoqErrorCode, type SocketAddress, type StoqEndpoint } from '../stoq/index.js';
import { startMetricsServer, type MetricsServer } from '../faces/metrics-http.js';
import { CliError } from './cli-error.js';
import { lockDataDir } from './data-dir-lock.js';
import { readGenesisFile } from './cluster-layout.js';
import type { NodeConfig } from './config.js';
import type { Logger } from './log.js';
import type { ValidatorNodeConfig } from './node-config.js';
import { connectedPeerCounts, createNodeMetrics } from './node-metrics.js';
import { startCaesarService } from './caesar-service.js';
import { followDiscoveredValidators } from './discovered-validators.js';
import {
  checkNodeMembership,
  isCurrentOrNextValidator,
  onlineVotingPower,
  startDriverThenNetwork,
  unlistedPeerPolicy,
  watchRegisteredStorageRoot,
} from './node-membership.js';
import { COMMIT_LOG_MESSAGE } from './node-process.js';
import { buildStoqParts, type StoqParts } from './stoq-node.js';
import { createTxGossip, type LocalTx, type TxGossip } from './tx-gossip.js';
import { packageVersion } from './version.js';

/**
 * A running consensus node (`hypermesh node start`): the store, the application (router, kv
 * module, and the Caesar ledger when the genesis has a Caesar section), the mempool, STOQ with the consensus network and the node API, the four-part proof,
 * the consensus driver and the metrics endpoint — wired from one configuration file.
 */
export interface ValidatorNode {
  readonly config: ValidatorNodeConfig;
  readonly genesis: GenesisDocument;
  /** Validator address (hex of the first 20 bytes of SHA-256 of its Ed25519 key). */
  readonly id: string;
  readonly uri: string;
  readonly stoq: SocketAddress;
  /** The node's STOQ endpoint; `client(service, name)` dials peers through its pool. */
  readonly endpoint: StoqEndpoint;
  readonly metricsUrl: string | null;
  /** The CT log's HTTP base URL (config `ct.http`), or null. */
  readonly ct: string | null;
  /** The TrustChain CA trust bundle file (config `ca.trustBundleFile`), or null. */
  readonly trustBundleFile: string | null;
  /** The ACME directory URL (config `acme`, docs/acme.md), or null. */
  readonly acme: string | null;
  /** Bound DNS server addresses (config `dns`), or null when the node serves no DNS. */
  readonly dns: {
    readonly udp: SocketAddress[];
    readonly tcp: SocketAddress[];
    readonly doq: SocketAddress[];
  } | null;
  readonly driver: ConsensusDriver;
  /** Resolves if consensus halts (the store or WAL failed); the node should then exit. */
  readonly halted: Promise<Error>;
  stop(): Promise<void>;
}

export const STORE_FILE = 'store.sqlite';
export const SIGNER_STATE_FILE = 'signer-state.json';
/** Blocks' worth of pending transactions (genesis maxBlockTxs each) above which clients wait. */
export const CLIENT_BACKLOG_BLOCKS = 3;
/**
 * A node whose latest committed block is older than this is catching up: STOQ takes TrustChain
 * certificates its state does not know yet on their chain alone (`createCaStoqTrust`
 * `caughtUp`). An idle cluster commits about a block a second.
 */
export const CA_CAUGHT_UP_MS = 60_000;

/** The ports WHATWG URLs leave out (`new URL('http://h:80/').port` is ''). */
const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443 };

/**
 * The host and port of an `http(s)://host:port/...` URL a server of this node was bound to
 * (IPv6 hosts without brackets). A listener on the scheme's default port has no port in its
 * URL: that port is the scheme's, never 0.
 */
export function urlSocketAddress(url: string): SocketAddress {
  const parsed = new URL(url);
  const port = parsed.port === '' ? DEFAULT_PORTS[parsed.protocol] : Number(parsed.port);
  if (port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new CliError(`no port in the server address ${url}`, 1);
  }
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port };
}

/** `host:port`, with IPv6 hosts in brackets. */
export function formatHostPort(address: { host: string; port: number }): string {
  return address.host.includes(':')
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

function passphraseOf(config: ValidatorNodeConfig): string | undefined {
  const variable = config.identity.passphraseEnv;
  if (variable === undefined) return undefined;
  const value = process.env[variable];
  if (value === undefined || value === '') {
    throw new CliError(`environment variable ${variable} (identity.passphraseEnv) is not set`);
  }
  return value;
}

/** The STOQ node configuration this node's endpoint is built from (stoq-node.ts). */
function stoqConfigOf(config: ValidatorNodeConfig, chainId: string): NodeConfig {
  const passphraseEnv = config.identity.passphraseEnv;
  const revoked = config.trust.revokedSerialsFile;
  return {
    cluster: chainId,
    name: config.name,
    transport: config.stoq.transport,
    listen: { host: config.stoq.host, port: config.stoq.port },
    auth: { mode: config.stoq.authMode, delegationTtlSeconds: 3600 },
    identity: {
      keyFile: config.identity.keyFile,
      certificateFile: config.identity.certificateFile,
      ...(passphraseEnv === undefined ? {} : { passphraseEnv }),
    },
    trust: {
      rootsFile: config.trust.rootsFile,
      ...(revoked === undefined ? {} : { revokedSerialsFile: revoked }),
    },
    peers: Object.fromEntries(config.peers.map((peer) => [peer.name, [peer.address]])),
    metrics: null,
  };
}

function describe(error: unknown): string {
  if (error instanceof HyperMeshError) return `${error.message} [${error.code}]`;
  return error instanceof Error ? error.message : String(error);
}

function fileBytes(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * Runs `work`, turning any failure into a CliError that says which step failed. Exit code 2:
 * a file the configuration names is unusable; 1: the node could not start for another reason.
 */
async function step<T>(what: string, work: () => T | Promise<T>, exitCode = 1): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`${what}: ${describe(error)}`, exitCode);
  }
}

/** The modules a node installs and the state their genesis data writes at height 1. */
export interface GenesisApplication {
  readonly modules: readonly Module[];
  readonly initialState: readonly InitialStateEntry[];
  /** The `ca` module's configuration (genesis `app.ca`), when it is installed. */
  readonly ca?: CaModuleConfig;
}

/**
 * The application modules of a chain, decided by its genesis document alone (so every node of
 * the chain installs the same ones: a transaction for a module that is not installed makes a
 * block invalid). `kv` always; `caesar` when the genesis has an `app.caesar` section, whose token
 * parameters and allocations become the initial state. A genesis without it has no ledger: its
 * Caesar transactions are refused with `TX_UNKNOWN_MODULE` and its queries with
 * `APP_UNKNOWN_QUERY`, rather than answered with proven zero balances of a token that does not
 * exist. An `app` section for a module this node does not know is refused, so a misspelt section
 * cannot be silently ignored. Throws `CaesarGenesisError` or `CliError`.
 */
export function genesisApplication(genesis: GenesisDocument): GenesisApplication {
  const known = [KV_MODULE_NAME, CAESAR_MODULE_NAME, DNS_ZONES_MODULE_NAME, DISCOVERY_MODULE_NAME];
  known.push(CA_MODULE_NAME);
  for (const name of Object.keys(genesis.app ?? {})) {
    if (name === KV_MODULE_NAME) {
      throw new CliError(`genesis app section "${name}": the kv module takes no genesis data`, 2);
    }
    if (!known.includes(name)) {
      throw new CliError(
        `genesis app section "${name}" names no module this node runs (${known.join(', ')})`,
        2,
      );
    }
  }
  const modules: Module[] = [createKvModule()];
  const initialState: InitialStateEntry[] = [];
  const ca = caGenesisFromApp(genesis.app, genesis);
  const caesar = caesarGenesisFromApp(genesis.app);
  if (caesar !== undefined) {
    // With a staking section, its validators must be exactly the consensus genesis set.
    checkStakingMatchesValidators(caesar, genesis.validators);
    // With the ca module, a new validator needs a TrustChain intermediate (docs/caesar.md).
    const holders = ca?.issuers.map((issuer) => issuer.account);
    modules.push(
      createCaesarModule(
        holders === undefined ? {} : { validatorIntermediates: { genesisHolders: holders } },
      ),
    );
    initialState.push(...caesarInitialState(caesar));
  }
  const dns = dnsZonesGenesisFromApp(genesis.app);
  if (dns !== undefined) {
    modules.push(createDnsZonesModule());
    initialState.push(...dnsZonesInitialState(dns));
  }
  // The service catalog (docs/discovery.md) starts empty: the section only installs it. Its
  // reserved `hypermesh-*` services are for node keys: genesis validators and caesar's validators.
  if (discoveryGenesisFromApp(genesis.app) !== undefined) {
    modules.push(createDiscoveryModule({ nodeKeys: discoveryNodeKeys(genesis) }));
  }
  if (ca !== undefined) {
    modules.push(createCaModule(ca));
    // The genesis bootstrap certificates, published at height 1 (docs/ca.md, "Genesis").
    initialState.push(...caInitialState(ca, genesis.genesisTime));
  }
  return { modules, initialState, ...(ca === undefined ? {} : { ca }) };
}

/** `app` with `hook` run after each `committed`; a failing hook is the hook's problem. */
function withCommitHook(
  app: Application,
  hook: (height: number, result: BlockExecutionResult) => void,
): Application {
  return {
    checkTx: (tx) => app.checkTx(tx),
    forgetCheck: (tx) => app.forgetCheck?.(tx),
    prepareProposal: (block, candidates, maxBytes, maxTxs) =>
      app.prepareProposal(block, candidates, maxBytes, maxTxs),
    executeBlock: (block) => app.executeBlock(block),
    committed: (height, result) => {
      app.committed(height, result);
      hook(height, result);
    },
    query: (request) => app.query(request),
  };
}

/** The consensus zones a node serves, kept current after each commit. */
interface NodeDnsZones {
  readonly source: ZoneSet;
  apexes(): string[];
  applyBlock(height: number, changes: BlockExecutionResult['changes']): void;
  /** Recompile the zone at `apex` with the next block, or at once (its overlay changed). */
  touch(apex: string, now?: boolean): void;
}

/**
 * Loads the `dns` module's zones from the committed state into one `ZoneSet` the servers read
 * on every query, and applies each committed block's changes to it. If a block cannot be
 * applied (it does not follow the zones held), the zones are loaded again from the state, which
 * the block has already been written to; a zone that fails to compile keeps being served as it
 * was, and the failure is logged. Throws `CliError` (exit 2) when `dns` is configured but the
 * genesis has no `app.dns` section.
 */
function loadDnsZones(
  config: ValidatorNodeConfig,
  application: GenesisApplication,
  store: NodeStore,
  logger: Logger,
  overlay?: ConsensusZonesOptions['overlay'],
  buildOptions?: (apex: string) => ZoneBuildOptions,
): NodeDnsZones {
  if (!application.modules.some((module) => module.name === DNS_ZONES_MODULE_NAME)) {
    throw new CliError(
      `the configuration serves DNS ("dns"), but the genesis ${config.genesisFile} has no app.dns section: no zones are in consensus state`,
      2,
    );
  }
  const source = new ZoneSet();
  const load = (): ConsensusZones =>
    ConsensusZones.load(dnsZonesStateReader(store.state), {
      height: store.blocks.latestHeight(),
      into: source,
      ...(overlay === undefined ? {} : { overlay }),
      ...(buildOptions === undefined ? {} : { buildOptions }),
    });
  let zones = load();
  return {
    source,
    apexes: () => zones.apexes(),
    touch: (apex, now = false) => {
      if (zones.touch(apex) && now) zones.compile();
    },
    applyBlock: (height, changes) => {
      try {
        const refresh = zones.applyBlock(height, changes);
        for (const [apex, error] of zones.failures) {
          logger.warn('DNS zone not recompiled; serving its previous version', {
            apex,
            height,
            error: describe(error),
          });
        }
        for (const apex of refresh.rebuilt) {
          const error = zones.overlayFailures.get(apex);
          if (error === undefined) continue;
          logger.warn('DNS zone compiled without the service catalog records', {
            apex,
            height,
            error: describe(error),
          });
        }
      } catch (error) {
        logger.warn('DNS zones out of step with the state; loading them again', {
          height,
          error: describe(error),
        });
        zones = load();
      }
    },
  };
}

export async function startValidatorNode(
  config: ValidatorNodeConfig,
  logger: Logger,
): Promise<ValidatorNode> {
  const genesis = await readGenesisFile(config.genesisFile);
  // Test builds only: a validator that equivocates (src/consensus/driver/test-equivocation.ts).
  const testEquivocation = await step(
    'test equivocation',
    () => testEquivocationFromEnv(process.env),
    2,
  );
  const passphrase = passphraseOf(config);
  const identity = await step(
    `cannot read key file ${config.identity.keyFile}`,
    () =>
      readKeyFile(config.identity.keyFile, {
        kind: 'node-identity',
        ...(passphrase === undefined ? {} : { passphrase }),
      }),
    2,
  );
  const publicKey = ed25519RawPublicKey(identity.keys.ed25519.publicKey);
  // A genesis validator, or a node added later that follows the chain until the validator set
  // holds its key (node-membership.ts).
  const { genesisEntry, plot } = await checkNodeMembership(config, genesis, {
    publicKey,
    pqPublicKey: identity.keys.falcon.publicKey,
  });
  const application = await step(
    `invalid genesis ${config.genesisFile}`,
    () => genesisApplication(genesis),
    2,
  );
  const id = validatorAddress(publicKey);
  const hash = genesisHash(genesis);
  if (genesisEntry === null) {
    logger.info(
      'not a genesis validator: following the chain until the validator set holds this key',
      {
        validator: id,
        storageRoot: toHex(plot.root),
      },
    );
  }

  const closers: Array<() => unknown> = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (error) {
        logger.warn('error while stopping', { error: describe(error) });
      }
    }
    closers.length = 0;
  };

  try {
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    // One node per data directory: two would sign with one key and one signer state.
    const lock = await step(`cannot lock the data directory ${config.dataDir}`, () =>
      lockDataDir(config.dataDir, {
        // Another start took the directory over (this process was paused past its lease): it
        // signs with the same key from now on, so this one stops at once, before another vote.
        onLost: (reason) => {
          logger.error('the data directory lock was lost: stopping at once', {
            dataDir: config.dataDir,
            reason,
          });
          process.exit(1);
        },
      }),
    );
    closers.push(() => lock.release());
    const storePath = path.join(config.dataDir, STORE_FILE);
    const walPath = consensusWalPathFor(storePath);
    const store: NodeStore = await step(`cannot open the store ${storePath}`, () =>
      openStore(storePath),
    );
    closers.push(() => store.close());

    const router: Application = createApplication({
      chainId: genesis.chainId,
      state: store.state,
      modules: application.modules,
      initialState: application.initialState,
      stampDifficulty: genesis.proof.work.stampDifficulty,
    });
    // The zones the DNS servers answer from follow the committed state block by block.
    // Service discovery (discovery-node.ts) follows each block before the DNS zones, whose
    // overlay holds the catalog's records; it is created once STOQ is set up (below).
    const discoveryGenesis = discoveryGenesisFromApp(genesis.app);
    let discovery: DiscoveryNode | null = null;
    // Signed zones: the keys the configuration names, each checked against the genesis DNSKEY.
    const signers = await loadZoneSigners(config, genesis);
    const dnsZones =
      config.dns === null
        ? null
        : loadDnsZones(
            config,
            application,
            store,
            logger,
            (apex) => (discovery === null ? [] : discovery.dnsRecords(apex)),
            signingBuildOptions(signers),
          );
    const followed: Application =
      discoveryGenesis === undefined
        ? router
        : withCommitHook(router, (height, result) => {
            const zone = discovery?.dnsZone ?? null;
            if (discovery?.applyBlock(height, result.changes) === true && zone !== null) {
              dnsZones?.touch(zone);
            }
          });
    const app: Application =
      dnsZones === null
        ? followed
        : withCommitHook(followed, (height, result) => dnsZones.applyBlock(height, result.changes));
    // Back-pressure: clients are refused (MEMPOOL_BUSY) once a few blocks' worth is pending,
    // so overload shows up as refusals instead of ever larger blocks and failed rounds.
    const mempool = new Mempool(app, {
      maxLocalTxs: Math.min(
        DEFAULT_MEMPOOL_OPTIONS.maxTxs,
        CLIENT_BACKLOG_BLOCKS * genesis.consensus.maxBlockTxs,
      ),
    });
    // Admission runs in time slices between consensus messages (src/node/tx-intake.ts).
    const intake = createTxIntake(mempool);
    closers.push(() => intake.close());

    // With a TrustChain CA, STOQ also trusts its root, refuses its revoked certificates (read
    // from committed state, so no CA service is needed yet) and limits its leaves' roles.
    const caTrust =
      application.ca === undefined
        ? undefined
        : createCaStoqTrust({
            ca: application.ca,
            state: store.state,
            caughtUp: () => {
              const latest = store.blocks.latestHeight();
              const time = latest === null ? null : store.blocks.byHeight(latest)?.timeMs;
              return time !== undefined && time !== null && Date.now() - time <= CA_CAUGHT_UP_MS;
            },
          });
    // Peers are dialled where the committed catalog says they are, the configured addresses
    // after them (discovery-resolver.ts, docs/discovery.md "Resolving peers"): by the consensus
    // network and by this node's own connection pool (peer pings, ACME corroboration, the CA
    // service's calls), whose sessions must authenticate as the named node in a serving role.
    // What certificates proved about validator keys' names (the consensus network's, once made).
    let certifiedNames = (): ReadonlyMap<string, string> => new Map();
    const peerResolver = new DiscoveryResolver({
      bootstrap: Object.fromEntries(config.peers.map((peer) => [peer.name, [peer.address]])),
      catalog: viewCatalogSource(() => discovery?.catalog() ?? null),
      // A listed genesis validator's catalog entry counts only while its genesis key owns it,
      // another listed peer's while the key its certificate last proved here does.
      keys: new Map(
        config.peers.flatMap((peer) => {
          const key = genesis.validators.find((v) => v.name === peer.name)?.publicKey;
          return key === undefined ? [] : [[peer.name, key] as const];
        }),
      ),
      certifiedKey: (name) => certifiedKeyOf(certifiedNames(), name),
    });
    const parts: StoqParts = await step('cannot set up STOQ', () =>
      buildStoqParts(
        stoqConfigOf(config, genesis.chainId),
        logger,
        peerResolver,
        caTrust,
        isServingNode,
      ),
    );
    closers.push(() => parts.close());

    const network: StoqConsensusNetwork = createStoqConsensusNetwork({
      endpoint: parts.endpoint,
      self: config.name,
      // A listed genesis validator must authenticate with its genesis key, not only its name.
      peers: config.peers.map((peer) => {
        const key = genesis.validators.find((v) => v.name === peer.name)?.publicKey;
        return {
          id: peer.name,
          address: formatHostPort(peer.address),
          ...(key === undefined ? {} : { publicKey: key }),
        };
      }),
      blockSource: (from, to, limit) =>
        store.blocks.range(from, to, limit).map((committed) => ({
          height: committed.block.height,
          block: committed.block.bytes,
          commit: committed.commit,
        })),
      logger: {
        info: (message, fields) => logger.debug(message, { component: 'consensus.net', ...fields }),
        warn: (message, fields) => logger.warn(message, { component: 'consensus.net', ...fields }),
        error: (message, fields) =>
          logger.error(message, { component: 'consensus.net', ...fields }),
      },
      registry: parts.registry,
      // Nodes added after this one's configuration was written (docs/stoq-auth.md).
      unlisted: unlistedPeerPolicy(() => driver),
      resolver: peerResolver,
    });
    closers.push(() => network.close());
    certifiedNames = () => network.certifiedNames();
    // Client transactions go to every peer, to peers that reconnect, and from a follower again
    // while pending (tx-gossip.ts), at the driver's gossip period.
    const txGossip = createTxGossip(network, (txHash) => mempool.readiness(txHash), {
      periodMs: genesis.consensus.timeouts.proposeMs,
      proposer: () => isCurrentOrNextValidator(driver, publicKey),
    });
    closers.push(() => txGossip.close());

    let driver: ConsensusDriver | null = null;
    const running = (): ConsensusDriver => {
      if (driver === null) {
        throw new StoqError(StoqErrorCode.UNAVAILABLE, 'the node is starting', {
          reason: 'starting',
        });
      }
      return driver;
    };
    const handlerDeps: HandlerDeps = {
      running,
      app,
      mempool,
      intake,
      gossip: txGossip,
      store,
      config,
      id,
      witnesses: blockWitnessSource(store, genesis, () => genesisApplication(genesis)),
    };
    registerNodeRpc(parts.endpoint, nodeRpcHandlers(handlerDeps));
    // The ledger's RPC face and metrics (caesar-service.ts); null without a Caesar genesis.
    const caesarService = startCaesarService({
      genesis,
      rpc: parts.endpoint,
      registry: parts.registry,
      store,
      query: (request) => app.query(request),
      submit: async (tx, caller) => (await admitFromClients(handlerDeps, [tx], caller))[0]!,
      pending: (txHash) => mempool.has(txHash),
      logger,
    });
    if (discoveryGenesis !== undefined) {
      discovery = createDiscoveryNode({
        genesis: discoveryGenesis,
        chainId: genesis.chainId,
        stampDifficulty: genesis.proof.work.stampDifficulty,
        state: store.state,
        height: store.blocks.latestHeight(),
        query: (request) => app.query(request),
        privateKey: identity.keys.ed25519.privateKey,
        submit: async (tx) => (await admitFromClients(handlerDeps, [tx]))[0]!,
        pending: (txHash) => mempool.has(txHash),
        rpc: parts.endpoint,
        dial: (address, signal) => parts.endpoint.connect(address, { signal }),
        registry: parts.registry,
        logger,
      });
      const started = discovery;
      closers.push(() => started.stop());
      if (started.dnsZone !== null) dnsZones?.touch(started.dnsZone, true);
    }

    // The TrustChain CA: publication of due batches and the CT log (ca-node.ts).
    const caConfig = application.ca;
    const caNode: CaNode | null =
      caConfig === undefined
        ? null
        : await step('cannot start the certificate authority', () =>
            startCaNode({
              config,
              genesis,
              ca: caConfig,
              state: store.state,
              blocks: store.blocks,
              query: (request) => app.query(request),
              identity: {
                ed25519: identity.keys.ed25519.privateKey,
                falconPublicKey: identity.keys.falcon.publicKey,
                falconSecretKey: identity.keys.falcon.secretKey,
              },
              submit: async (tx) => (await admitFromClients(handlerDeps, [tx]))[0]!,
              registry: parts.registry,
              logger,
            }),
          );
    if (caNode !== null) closers.push(() => caNode.close());
    // The CA's RPC face (hypermesh.trustchain.ca.v1), metrics and STOQ revocation check (ca-service.ts).
    const caService =
      caNode === null || caConfig === undefined
        ? null
        : createCaService({
            ca: caConfig,
            store,
            state: store.state,
            query: (request) => app.query(request),
            submit: async (tx, caller) => (await admitFromClients(handlerDeps, [tx], caller))[0]!,
            log: caNode.log,
            rpc: parts.endpoint,
            registry: parts.registry,
            logger,
            // The same freshness as OCSP and the CRL (ca-node.ts): a node this far behind does
            // not vouch that a certificate is not revoked.
            ...(config.ca?.maxBlockAgeSeconds === undefined
              ? {}
              : { maxBlockAgeMs: config.ca.maxBlockAgeSeconds * 1000 }),
          });

    const stoq = await step(`cannot listen on ${formatHostPort(config.stoq)}`, () =>
      parts.endpoint.listen({ host: config.stoq.host, port: config.stoq.port }),
    );

    const proofs = createBlockProofs({
      genesis,
      genesisHash: hash,
      stampOf,
      self: {
        privateKey: identity.keys.ed25519.privateKey,
        plot,
        networkAddress: `stoq://${formatHostPort(stoq)}`,
      },
    });
    const consensus = new ConsensusDriver({
      genesis,
      store,
      walPath,
      signerStatePath: path.join(config.dataDir, SIGNER_STATE_FILE),
      // Before every signature: a node resumed after a pause past its lease, whose directory
      // another start took over, must not sign before it finds out (the renewal is a timer).
      mayStillSign: () => lock.stillHeld(),
      self: {
        privateKey: identity.keys.ed25519.privateKey,
        falconSecretKey: identity.keys.falcon.secretKey,
        falcon: defaultFalcon(),
      },
      app,
      mempool: intake,
      network,
      proofs,
      idleBlockIntervalMs: config.consensus.idleBlockIntervalMs,
      ...(config.consensus.signerStateMissing === undefined
        ? {}
        : { signerStateMissing: config.consensus.signerStateMissing }),
      ...(testEquivocation === null ? {} : { testEquivocation }),
      log: (level, message, fields) => {
        // The node logs each commit itself, with more fields (see the 'commit' listener).
        if (message === COMMIT_LOG_MESSAGE) return;
        logger[level](message, { component: 'consensus', ...fields });
      },
    });
    closers.push(() => consensus.stop());

    const metrics = createNodeMetrics(parts.registry, {
      committedHeight: () => consensus.status().committedHeight,
      progress: () => {
        const status = consensus.status();
        return { height: status.height, round: status.round };
      },
      connectedPeers: () =>
        connectedPeerCounts(network, (key) => isCurrentOrNextValidator(consensus, key)),
      votingPower: () => onlineVotingPower(consensus, network, publicKey),
      mempoolSize: () => mempool.size(),
      mempoolWaiting: () => mempool.size() - mempool.readySize(),
      intake: () => intake.stats(),
      walBytes: () => fileBytes(walPath),
      storeBytes: () => store.fileSizes(),
      driver: () => {
        const { pendingEvidence, latePrecommits } = consensus.status();
        return { pendingEvidence, latePrecommits };
      },
    });
    // One 'commit' listener per part that follows the chain (metrics, discovery, CA, ACME,
    // ledger, renewal, membership, ...: about ten), plus whoever embeds the node and waits for
    // commits: a fixed set, not a leak, so Node's default warning at 10 would only mislead.
    consensus.setMaxListeners(64);
    consensus.on('commit', (info: CommitInfo) => {
      const evidence = store.blocks.evidenceAt(info.height).length;
      metrics.committed({ latencySeconds: info.latencyMs / 1000, txs: info.txs, evidence });
      logger.info(COMMIT_LOG_MESSAGE, {
        height: info.height,
        round: info.round,
        txs: info.txs,
        evidence,
        hash: info.blockHash,
        stateRoot: info.stateRoot,
        latencyMs: info.latencyMs,
        source: info.source,
      });
    });
    consensus.on('evidence', (evidence) => {
      logger.warn('equivocation evidence', {
        validator: evidence.voteA.validator,
        height: evidence.voteA.height,
        round: evidence.voteA.round,
      });
    });
    const halted = new Promise<Error>((resolve) => consensus.once('halted', resolve));

    // The network only once the driver knows the validator sets (node-membership.ts).
    await step('cannot start consensus', () =>
      startDriverThenNetwork(consensus, network, () => {
        driver = consensus;
      }),
    );
    watchRegisteredStorageRoot(consensus, publicKey, plot, logger);
    if (discovery !== null) {
      // Validators that joined after this configuration was written: dialled where the catalog
      // says they are (discovered-validators.ts, docs/consensus.md "Validator-set changes").
      const catalog = discovery.catalog;
      const discovered = followDiscoveredValidators({
        self: config.name,
        configured: config.peers.map((peer) => peer.name),
        catalog: () => catalog(),
        isValidator: (key) => isCurrentOrNextValidator(consensus, key),
        network,
        logger,
      });
      consensus.on('commit', () => discovered.update());
      discovered.update();
    }
    if (caNode !== null) {
      consensus.on('commit', (info: CommitInfo) => caNode.committed(info.height));
      caNode.committed(consensus.status().committedHeight);
      if (caService !== null) {
        consensus.on('commit', (info: CommitInfo) => caService.committed(info.height));
      }
    }
    if (caTrust !== undefined) {
      // Sessions already open when a revocation commits are closed at that commit, not only
      // refused at their next handshake (docs/stoq-auth.md, "Revocation of open sessions").
      consensus.on('commit', (info: CommitInfo) => {
        void parts.endpoint.recheckRevocation(parts.revocation).then((closed) => {
          for (const session of closed) {
            logger.info('closed a STOQ session whose peer certificate was revoked', {
              peer: session.peer.uri,
              height: info.height,
            });
          }
        });
      });
    }
    if (caesarService !== null) {
      consensus.on('commit', (info: CommitInfo) => caesarService.committed(info.height));
    }
    // DoQ and ACME HTTPS follow renewals of the identity certificate (identity-servers.ts).
    const renewalFollowers = identityServers({
      privateKey: identity.keys.ed25519.privateKey,
      registry: parts.registry,
      logger,
    });
    // The node renews its identity certificate, issued or genesis (cert-renewal.ts), and the
    // ACME HTTPS face's own certificate (below); one sender for both: same key, one sequence.
    const renewalIo = {
      chainId: genesis.chainId,
      stampDifficulty: genesis.proof.work.stampDifficulty,
      privateKey: identity.keys.ed25519.privateKey,
      query: (request: QueryRequest) => app.query(request),
      submit: async (tx: Uint8Array) => (await admitFromClients(handlerDeps, [tx]))[0]!,
      pending: (txHash: Uint8Array) => mempool.has(txHash),
    };
    const renewalSender = caConfig === undefined ? null : new RenewalSender(renewalIo);
    /** Follows one certificate file with the node's common renewal options. */
    const followRenewal = async (
      failure: string,
      own: Pick<CertRenewalOptions, 'certificateFile' | 'replaceChain'> &
        Partial<Pick<CertRenewalOptions, 'certificate' | 'onRenewed'>>,
    ): Promise<void> => {
      if (caConfig === undefined || renewalSender === null) return;
      const renewal = await step(failure, () =>
        startCertRenewal({
          ...renewalIo,
          ...own,
          ...(config.identity.renewAt === undefined ? {} : { renewAt: config.identity.renewAt }),
          ca: caConfig,
          falconSecretKey: identity.keys.falcon.secretKey,
          state: store.state,
          sender: renewalSender,
          registry: parts.registry,
          logger,
        }),
      );
      if (renewal !== null) {
        closers.push(() => renewal.close());
        consensus.on('commit', (info: CommitInfo) => renewal.committed(info.height));
        renewal.committed(consensus.status().committedHeight);
      }
    };
    await followRenewal('cannot follow the identity certificate', {
      certificateFile: config.identity.certificateFile,
      replaceChain: (chain) => parts.replaceLocalChain(chain),
      onRenewed: (chain) => renewalFollowers.renewed(chain),
    });

    let metricsServer: MetricsServer | null = null;
    if (config.metrics !== null) {
      const where = config.metrics;
      metricsServer = await step(`cannot serve metrics on ${formatHostPort(where)}`, () =>
        startMetricsServer(parts.registry, where, (error) =>
          logger.warn('metrics collection failed', {
            error: error instanceof Error ? error.message : String(error),
          }),
        ),
      );
      const server = metricsServer;
      closers.push(() => server.close());
    }

    let dnsServers: DnsServers | null = null;
    if (config.dns !== null && dnsZones !== null) {
      const { udp, tcp } = config.dns;
      const doq =
        config.dns.doq.length === 0
          ? undefined
          : {
              addresses: config.dns.doq,
              ...(await doqIdentity(config, identity.keys.ed25519.privateKey)),
            };
      dnsServers = await step('cannot start the DNS servers', () =>
        startDnsServers({
          zones: dnsZones.source,
          udp,
          tcp,
          ...(doq === undefined ? {} : { doq }),
          registry: parts.registry,
        }),
      );
      const servers = dnsServers;
      closers.push(() => servers.close());
      if (doq !== undefined) {
        renewalFollowers.follow('doq', {
          startedWith: doq.cert,
          replaceCertificate: (tls) => servers.replaceDoqCertificate(tls),
        });
      }
      logger.info('DNS serving', {
        zones: dnsZones.apexes(),
        udp: servers.udp.map(formatHostPort),
        tcp: servers.tcp.map(formatHostPort),
        doq: servers.doq.map(formatHostPort),
        signed: [...signers.keys()],
      });
    }
    // The ACME server, issuing through the ca module from the node's ACME account (acme-node.ts).
    const acmeNode: AcmeNode | null =
      (config.acme ?? null) === null
        ? null
        : await step('cannot start the ACME server', () =>
            startAcmeNode({
              config,
              genesis,
              ca: application.ca,
              identityKey: identity.keys.ed25519.privateKey,
              query: (request) => app.query(request),
              submit: async (tx) => (await admitFromClients(handlerDeps, [tx]))[0]!,
              pending: (txHash) => mempool.has(txHash),
              evictionOf: (txHash) => mempool.evictionOf(txHash),
              dnsServer: dnsServers?.udp[0] ?? dnsServers?.tcp[0] ?? null,
              dnsZones: dnsZones?.source ?? null,
              committed: { state: store.state, latestHeight: () => store.blocks.latestHeight() },
              endpoint: parts.endpoint,
              registry: parts.registry,
              logger,
            }),
          );
    if (acmeNode !== null) {
      closers.push(() => acmeNode.close());
      if (acmeNode.identityServer !== null) {
        renewalFollowers.follow('acme', acmeNode.identityServer);
      }
      // Its own certificate (cluster init's acme-https.pem): renewed like the identity's, the
      // new chain going to the HTTPS face only, never to STOQ (cert-renewal.ts `acme-https`).
      const own = acmeNode.ownCertificate;
      if (own !== null) {
        await followRenewal('cannot follow the ACME HTTPS certificate', {
          certificate: 'acme-https',
          certificateFile: own.certificateFile,
          replaceChain: (chain) => own.replaceChain(chain),
        });
      }
      consensus.on('commit', () => acmeNode.committed());
      // Multi-perspective validation: this node answers `corroborate` (acme-mpic.ts).
      caService?.setCorroborator(acmeNode.corroborator);
    }

    // Self-registration in the catalog once every service this node runs is bound.
    discovery?.start({
      name: config.name,
      uri: parts.uri,
      version: packageVersion(),
      stoq,
      metrics: metricsServer === null ? null : urlSocketAddress(metricsServer.url),
      dns:
        dnsServers === null
          ? null
          : { udp: dnsServers.udp, tcp: dnsServers.tcp, doq: dnsServers.doq },
      acme: acmeNode?.address ?? null,
      ct:
        caNode === null || caNode.ctUrl === null
          ? null
          : { ...urlSocketAddress(caNode.ctUrl), ocsp: caNode.ocsp !== null },
    });

    let stopped = false;
    return {
      config,
      dns:
        dnsServers === null
          ? null
          : { udp: [...dnsServers.udp], tcp: [...dnsServers.tcp], doq: [...dnsServers.doq] },
      genesis,
      id,
      uri: parts.uri,
      stoq,
      endpoint: parts.endpoint,
      metricsUrl: metricsServer?.url ?? null,
      ct: caNode?.ctUrl ?? null,
      trustBundleFile: config.ca?.trustBundleFile ?? null,
      acme: acmeNode?.directoryUrl ?? null,
      driver: consensus,
      halted,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await closeAll();
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

interface HandlerDeps {
  readonly running: () => ConsensusDriver;
  readonly app: Application;
  readonly mempool: Mempool;
  /** The queue in front of the mempool: client batches are admitted in time slices. */
  readonly intake: TxIntake;
  /** Where transactions admitted from clients go (gossip to every peer, again while pending). */
  readonly gossip: TxGossip;
  readonly store: NodeStore;
  readonly config: ValidatorNodeConfig;
  readonly id: string;
  /** State witnesses of stored blocks, for `hypermesh block verify` (block-witness.ts). */
  readonly witnesses: BlockWitnessSource;
}

/** The node API (consensus/net/node-rpc.ts) served from this node's parts. */
function nodeRpcHandlers(deps: HandlerDeps): NodeRpcHandlers {
  const { app, mempool, store, config, id } = deps;
  return {
    submitTx: async (tx, ctx) =>
      (await admitFromClients(deps, [tx], submitterOf(ctx.peer)))[0] as MempoolAddResult,
    submitTxs: (txs, ctx) => admitFromClients(deps, txs, submitterOf(ctx.peer)),
    txStatus: (txHash) => transactionStatus({ mempool, app, store }, txHash),
    pendingSequence: (owner) => pendingSequenceOf({ mempool }, owner),
    receipt: (txHash) => storedReceipt(store, txHash),
    blockWitness: (height, ctx) => {
      try {
        return deps.witnesses.witness(height, ctx.peer.uri);
      } catch (error) {
        if (
          error instanceof BlockWitnessError &&
          error.code !== BlockWitnessErrorCode.STORE_MISMATCH
        ) {
          throw new StoqError(StoqErrorCode.RESOURCE_EXHAUSTED, error.message, {
            ...error.detail,
            reason:
              error.code === BlockWitnessErrorCode.BUSY ? 'witness-busy' : 'witness-too-large',
          });
        }
        throw error;
      }
    },
    accountHistory: (account, before, limit) => accountHistoryPage(store, account, before, limit),
    query: (request) => app.query(request),
    status: () => statusRecord(deps.running(), config, id, store),
    getBlock: (height) => {
      const stored = store.blocks.byHeight(height);
      const commit = store.blocks.commitAt(height);
      if (stored === null || commit === null) return null;
      return { height, block: stored.bytes, commit };
    },
    // Read only as far as one response page goes (the pager stops at the same bound).
    validatorUpdates: (fromHeight, toHeight) =>
      store.blocks.validatorUpdatesRange(fromHeight, toHeight, MAX_VALIDATOR_UPDATE_RESPONSE_BYTES),
  };
}

/**
 * Client submissions (`submitTx`, `submitTxs`): the intake queue admits (or refuses) each
 * transaction on its own, in time slices between consensus messages, so one refusal does not
 * affect the others; the newly admitted ones go to gossip in one hand-over (one `txs` message
 * for up to `MAX_TXS_PER_GOSSIP` of them), to peers that reconnect, and from a follower again
 * while they are pending (tx-gossip.ts). A
 * transaction that was already pending is not handed over again. `caller` (a client's identity
 * URI; the node's own submissions leave it out) has its share of the intake queue and its turns
 * (tx-intake.ts).
 */
async function admitFromClients(
  deps: HandlerDeps,
  txs: readonly Uint8Array[],
  caller?: string,
): Promise<MempoolAddResult[]> {
  deps.running();
  const results = await deps.intake.submit(txs, caller);
  const admitted: LocalTx[] = [];
  txs.forEach((tx, i) => {
    const result = results[i];
    if (result?.ok === true && !result.duplicate) admitted.push({ tx, txHash: result.txHash });
  });
  deps.gossip.push(admitted);
  return results;
}

/** The driver's status as the node API's flat record (docs/node.md, "status"). */
export function statusRecord(
  driver: ConsensusDriver,
  config: ValidatorNodeConfig,
  id: string,
  store: NodeStore,
): NodeStatusRecord {
  const status = driver.status();
  const sizes = store.fileSizes();
  const shownPeers = status.peers.slice(0, MAX_STATUS_ENTRIES);
  return {
    node: config.name,
    id,
    version: packageVersion(),
    running: status.running,
    halted: status.halted,
    syncing: status.syncing,
    committedHeight: status.committedHeight,
    height: status.height,
    round: status.round,
    step: status.step,
    lastCommitTime: status.lastCommitTime,
    lastBlockTime: status.lastBlockTime,
    validatorCount: status.validators.count,
    totalPower: status.validators.totalPower,
    validatorSetHash: status.validators.hash,
    proposer: status.validators.proposer,
    // The record's lists hold MAX_STATUS_ENTRIES items at most (past it the answer would not
    // pass the schema, and `status` would fail for good on a large mesh): the count says all.
    peersConnected: shownPeers.map((peer) => peer.peer),
    peerHeights: Object.fromEntries(shownPeers.map((peer) => [peer.peer, peer.committedHeight])),
    peerCount: status.peers.length,
    mempoolSize: status.mempoolSize,
    pendingEvidence: status.pendingEvidence,
    walBytes: status.wal.bytes,
    storeBytes: sizes.database + sizes.wal,
  };
}
