import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { Registry } from 'prom-client';
import { toHex } from '../crypto/bytes.js';
import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import {
  AcmeStore,
  DnsServerTxtResolver,
  HTTP01_PORT,
  startAcmeServer,
  TLS_ALPN01_PORT,
  type AcmeServer,
} from '../faces/acme/index.js';
import type { ZoneSource } from '../trustchain/dns/index.js';
import {
  caStateKey,
  createIssuerView,
  readDcvElectorate,
  type CaModuleConfig,
} from '../trustchain/ca-module/index.js';
import { bytesEqual } from '../crypto/bytes.js';
import { derToPem } from '../crypto/x509.js';
import { ed25519RawPublicKey } from '../crypto/ed25519.js';
import { caService } from '../faces/ca-rpc.js';
import type { ValidationOptions } from '../faces/acme/index.js';
import {
  DEFAULT_CORROBORATION_DEADLINE_MS,
  createCorroborationCollector,
  createCorroborator,
  grantCorroborationAuthorizer,
  type Corroborator,
} from './acme-mpic.js';
import type { SocketAddress, StoqEndpoint } from '../stoq/index.js';
import { ConsensusAcmeIssuer, type AcmeSubmitResult } from './acme-issuer.js';
import { acmeCaaOptions, type CommittedZonesReader } from './acme-caa.js';
import { acmeExternal, corroboratorCaaPolicy } from './acme-external.js';
import { dnsZonesGenesisFromApp } from '../trustchain/dns-zones/index.js';
import { CliError } from './cli-error.js';
import { LOOPBACK_HOSTS } from './config.js';
import type { IdentityCertificateServer } from './identity-servers.js';
import type { Logger } from './log.js';
import type { ValidatorNodeConfig } from './node-config.js';
import { readWalletKey } from './wallet.js';

/**
 * The ACME server in a running node (config `acme`, docs/acme.md "In the node"): RFC 8555 over
 * HTTPS with the configured certificate (the node's identity key), dns-01 answered from the
 * node's own DNS server, state in `<dataDir>/acme.sqlite`, and issuance through the consensus
 * `ca` module from the node's ACME account (`ConsensusAcmeIssuer`). The server offers exactly
 * the names the account's genesis grant covers.
 */
export interface AcmeNode {
  /** `https://host:port/directory`. */
  readonly directoryUrl: string;
  /** The bound HTTPS address (the configured host, the bound port). */
  readonly address: SocketAddress;
  readonly server: AcmeServer;
  readonly issuer: ConsensusAcmeIssuer;
  /**
   * This node's perspective for multi-perspective validation (acme-mpic.ts): what answers the
   * CA RPC's `corroborate` (ca-service.ts `setCorroborator`).
   */
  readonly corroborator: Corroborator;
  /**
   * The HTTPS face as a follower of identity certificate renewals (identity-servers.ts) when it
   * serves `identity.certificateFile`; null with another `acme.certificateFile`, which the node
   * the identity certificate's renewals never touch.
   */
  readonly identityServer: IdentityCertificateServer | null;
  /**
   * With its own `acme.certificateFile` (`cluster init`'s `acme-https.pem`): that file, which the
   * node renews itself when it certifies the identity key (validator-node.ts, cert-renewal.ts
   * `acme-https`), and `replaceChain`, which presents a renewed chain (DER, leaf first) with the
   * identity key on new HTTPS handshakes (throws, keeping the current one, if TLS refuses it).
   * Null when the face serves `identity.certificateFile`.
   */
  readonly ownCertificate: {
    readonly certificateFile: string;
    replaceChain(chain: readonly Uint8Array[]): void;
  } | null;
  /** Called after each commit of the node. */
  committed(): void;
  close(): Promise<void>;
}

export interface AcmeNodeOptions {
  readonly config: ValidatorNodeConfig;
  readonly genesis: GenesisDocument;
  /** The `ca` module's configuration; undefined when the genesis has no `app.ca`. */
  readonly ca: CaModuleConfig | undefined;
  /** The node identity's Ed25519 key: the key of the HTTPS certificate. */
  readonly identityKey: KeyObject;
  readonly query: (request: QueryRequest) => QueryResponse;
  readonly submit: (tx: Uint8Array) => Promise<AcmeSubmitResult>;
  readonly pending: (txHash: Uint8Array) => boolean;
  /** Why the mempool threw a transaction out after a commit (`Mempool.evictionOf`). */
  readonly evictionOf?: (txHash: Uint8Array) => { code: string; message: string } | undefined;
  /** The node's bound DNS server (UDP/TCP), for dns-01; null: dns-01 is not offered. */
  readonly dnsServer: SocketAddress | null;
  /** The zones the node's DNS servers answer from (CAA lookups); null when it serves no DNS. */
  readonly dnsZones: ZoneSource | null;
  /** The committed state, for CAA lookups when the node serves no DNS itself. */
  readonly committed: CommittedZonesReader;
  /**
   * The node's STOQ endpoint: the other intermediate holders are asked to corroborate through
   * the CA RPC's `corroborate`. Absent: only this node's own perspective answers.
   */
  readonly endpoint?: Pick<StoqEndpoint, 'client'>;
  readonly registry: Registry;
  readonly logger: Logger;
}

/** A corroboration at this node, from its arrival to its attestation (the server's default). */
const VALIDATION_TIMEOUT_MS = 10_000;
/**
 * The node ACME server's deadline for a whole validation: its own check and CAA, then the
 * holders' corroborations, each of which may take `VALIDATION_TIMEOUT_MS` — as long as the
 * collector waits for them.
 */
const SERVER_VALIDATION_TIMEOUT_MS = DEFAULT_CORROBORATION_DEADLINE_MS;

export const ACME_STORE_FILE = 'acme.sqlite';

/** A wildcard listen address is queried on loopback. */
function reachable(address: SocketAddress): SocketAddress {
  if (address.host === '0.0.0.0') return { host: LOOPBACK_HOSTS.v4, port: address.port };
  if (address.host === '::') return { host: LOOPBACK_HOSTS.v6, port: address.port };
  return address;
}

export async function startAcmeNode(options: AcmeNodeOptions): Promise<AcmeNode> {
  const { config, genesis, ca, logger } = options;
  const acme = config.acme ?? null;
  if (acme === null) throw new RangeError('startAcmeNode needs an acme configuration');
  if (ca === undefined) {
    throw new CliError(
      `the configuration serves ACME ("acme"), but the genesis ${config.genesisFile} has no app.ca section: there is no CA to issue from`,
      2,
    );
  }
  let account: Awaited<ReturnType<typeof readWalletKey>>;
  try {
    account = await readWalletKey(acme.accountKeyFile);
  } catch (error) {
    throw new CliError(
      `cannot read the ACME account key ${acme.accountKeyFile} (acme.accountKeyFile): ${(error as Error).message}`,
      2,
    );
  }
  const grant = ca.grants.get(toHex(account.publicKey));
  if (grant === undefined) {
    throw new CliError(
      `the ACME account key ${acme.accountKeyFile} (account ${toHex(account.publicKey)}) has no grant in the genesis app.ca section: it could not request any name`,
      2,
    );
  }
  if (!grant.requireDcv) {
    // The holders corroborate only for requireDcv grants (acme-mpic.ts): every challenge of
    // this server would fail multi-perspective validation.
    throw new CliError(
      `the ACME account key ${acme.accountKeyFile} (account ${toHex(account.publicKey)}) has a genesis app.ca grant without "requireDcv": true, so the intermediate holders would not corroborate its challenges`,
      2,
    );
  }
  const certificateFile = acme.certificateFile ?? config.identity.certificateFile;
  const servesIdentity =
    path.resolve(certificateFile) === path.resolve(config.identity.certificateFile);
  let cert: string;
  try {
    cert = await readFile(certificateFile, 'utf8');
  } catch (error) {
    throw new CliError(
      `cannot read the ACME HTTPS certificate ${certificateFile}: ${(error as Error).message}`,
      2,
    );
  }
  const key = options.identityKey.export({ format: 'pem', type: 'pkcs8' }).toString();

  const caa = acmeCaaOptions({
    genesis,
    configured: acme.caaIdentities,
    dnsZones: options.dnsZones,
    committed: options.committed,
  });
  // External domain names (acme-external.ts): when a grant has externalDns, names outside the
  // cluster's zones are resolved through acme.resolver, CAA included.
  const external = acmeExternal({
    ca,
    resolver: acme.resolver,
    caa,
    dnsZones: options.dnsZones,
    committed: options.committed,
    hasZones: dnsZonesGenesisFromApp(genesis.app) !== undefined,
  });
  const caaResolver = external?.caaResolver ?? caa.caaResolver;
  const store = AcmeStore.open(path.join(config.dataDir, ACME_STORE_FILE));
  const issuer = new ConsensusAcmeIssuer({
    chainId: genesis.chainId,
    stampDifficulty: genesis.proof.work.stampDifficulty,
    accountKey: account.privateKey,
    bundle: ca.bundle,
    query: options.query,
    submit: options.submit,
    pending: options.pending,
    ...(options.evictionOf === undefined ? {} : { evictionOf: options.evictionOf }),
    issuances: store,
  });
  // Multi-perspective validation (docs/acme.md): this node's perspective and the collector
  // that asks every current intermediate holder.
  const dns = options.dnsServer === null ? null : reachable(options.dnsServer);
  const validation: ValidationOptions = {
    http01Port: acme.http01Port ?? HTTP01_PORT,
    tlsAlpn01Port: acme.tlsAlpn01Port ?? TLS_ALPN01_PORT,
    timeoutMs: VALIDATION_TIMEOUT_MS,
    ...(dns === null
      ? {}
      : { txtResolver: new DnsServerTxtResolver({ host: dns.host, port: dns.port }) }),
    ...(external === null ? {} : { external: external.names }),
    // Test clusters only (node-config.ts): their "internet" answers with loopback addresses.
    ...(acme.allowNonPublicAddresses === true ? { allowNonPublicAddresses: true } : {}),
  };
  if (validation.allowNonPublicAddresses === true) {
    logger.warn(
      'acme.allowNonPublicAddresses is set: DNS names are validated even at loopback and private addresses (test clusters only)',
      { component: 'acme' },
    );
  }
  const self = ed25519RawPublicKey(options.identityKey);
  const view = createIssuerView(ca);
  const moduleState = { get: (key: Uint8Array) => options.committed.state.get(caStateKey(key)) };
  const holders = (): ReturnType<typeof view.issuers> => view.issuers(moduleState);
  const latestHeight = (): number => options.committed.latestHeight() ?? 0;
  // Corroborations waiting for this node to commit the asker's height (settled by committed()).
  const heightWaiters = new Set<{ height: number; settle: (reached: boolean) => void }>();
  const awaitHeight = (height: number, timeoutMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      const waiter = {
        height,
        settle: (reached: boolean) => {
          clearTimeout(deadline);
          heightWaiters.delete(waiter);
          resolve(reached);
        },
      };
      const deadline = setTimeout(() => waiter.settle(false), timeoutMs);
      deadline.unref();
      heightWaiters.add(waiter);
      if (latestHeight() >= height) waiter.settle(true);
    });
  const corroboratorCaa = corroboratorCaaPolicy(caa.caaIdentities, caaResolver);
  const corroborator = createCorroborator({
    chainId: genesis.chainId,
    identityKey: options.identityKey,
    validation,
    // The ACME server's CAA check, from this perspective too: ok = challenge met and CAA permits.
    ...(corroboratorCaa === undefined ? {} : { caa: corroboratorCaa }),
    // Only identifiers an ACME account's grant allows (genesis grants: they never change).
    authorize: grantCorroborationAuthorizer(ca),
    latestHeight,
    isHolder: () => holders().some((holder) => bytesEqual(holder.account, self)),
    awaitHeight,
  });
  const selfCaller = { role: 'validator' as const, name: config.name, uri: 'local' };
  const corroborate = createCorroborationCollector({
    chainId: genesis.chainId,
    account: account.publicKey,
    holders,
    electorate: () => readDcvElectorate(ca, moduleState),
    self,
    latestHeight,
    local: (request) => corroborator(request, selfCaller),
    remote: async (peer, request, deadlineMs) => {
      if (options.endpoint === undefined) throw new Error(`no STOQ endpoint to ask ${peer}`);
      const answer = await options.endpoint
        .client(caService, peer)
        .call('corroborate', request, { deadlineMs });
      return answer.attestation;
    },
    onFailure: (holder, reason) =>
      logger.info('acme corroboration missing', { component: 'acme', holder, reason }),
  });
  let server: AcmeServer;
  try {
    server = await startAcmeServer({
      host: acme.https.host,
      port: acme.https.port,
      tls: { key, cert },
      ...(acme.baseUrl === undefined ? {} : { baseUrl: acme.baseUrl }),
      store,
      issuer,
      identifiers: {
        dnsZones: grant.dnsZones,
        ipRanges: grant.ipRanges,
        wildcards: grant.wildcards,
        externalDns: grant.externalDns,
      },
      ...(acme.http01Port === undefined ? {} : { http01Port: acme.http01Port }),
      ...(acme.tlsAlpn01Port === undefined ? {} : { tlsAlpn01Port: acme.tlsAlpn01Port }),
      validationTimeoutMs: SERVER_VALIDATION_TIMEOUT_MS,
      ...caa,
      ...(caaResolver === undefined ? {} : { caaResolver }),
      ...(validation.txtResolver === undefined ? {} : { txtResolver: validation.txtResolver }),
      ...(external === null ? {} : { external: external.names }),
      ...(validation.allowNonPublicAddresses === true ? { allowNonPublicAddresses: true } : {}),
      corroborate,
      registry: options.registry,
      onInternalError: (error) =>
        logger.warn('acme internal error', {
          component: 'acme',
          error: error instanceof Error ? error.message : String(error),
        }),
    });
  } catch (error) {
    external?.close();
    issuer.close();
    store.close();
    throw new CliError(
      `cannot serve ACME on ${acme.https.host}:${acme.https.port}: ${(error as Error).message}`,
      1,
    );
  }
  logger.info('ACME serving', {
    component: 'acme',
    directory: server.directoryUrl,
    account: issuer.account,
    dnsZones: grant.dnsZones,
    ipRanges: grant.ipRanges,
    dns01: options.dnsServer !== null,
    caaIdentities: caa.caaIdentities ?? [],
    caa: caaResolver !== undefined,
    externalDns: grant.externalDns,
    ...(external === null ? {} : { resolver: acme.resolver ?? 'system' }),
  });
  return {
    directoryUrl: server.directoryUrl,
    address: { host: acme.https.host, port: server.port },
    server,
    issuer,
    corroborator,
    identityServer: servesIdentity
      ? { startedWith: cert, replaceCertificate: (tls) => server.replaceCertificate(tls) }
      : null,
    ownCertificate: servesIdentity
      ? null
      : {
          certificateFile,
          replaceChain: (chain) =>
            server.replaceCertificate({
              cert: chain.map((der) => derToPem(der)).join(''),
              key,
            }),
        },
    committed: () => {
      issuer.committed();
      const height = latestHeight();
      for (const waiter of [...heightWaiters]) if (height >= waiter.height) waiter.settle(true);
    },
    close: async () => {
      for (const waiter of [...heightWaiters]) waiter.settle(false);
      external?.close();
      issuer.close();
      await server.close();
      store.close();
    },
  };
}
