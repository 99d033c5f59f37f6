import { readFile } from 'node:fs/promises';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { readKeyFile } from '../crypto/keyfile.js';
import { defaultFalcon } from '../crypto/falcon.js';
import { certificateIdentity, pemToDerList } from '../crypto/x509.js';
import {
  StaticResolver,
  StoqEndpoint,
  createAuthenticator,
  createQuicTransport,
  createStoqMetrics,
  createTlsTransport,
  type PeerIdentity,
  type Resolver,
  type RevocationCheck,
  type SocketAddress,
  type Transport,
} from '../stoq/index.js';
import type { IdentityCheck } from '../stoq/auth/index.js';
import { startMetricsServer, type MetricsServer } from '../faces/metrics-http.js';
import { CliError } from './cli-error.js';
import type { NodeConfig } from './config.js';
import type { Logger } from './log.js';
import { nodeService, nodeServiceHandlers } from './node-service.js';
import { packageVersion } from './version.js';

/** A running STOQ node: transport, authentication, RPC services and the metrics endpoint. */
export interface StoqNode {
  readonly config: NodeConfig;
  readonly endpoint: StoqEndpoint;
  readonly address: SocketAddress;
  readonly uri: string;
  readonly registry: Registry;
  readonly metrics: MetricsServer | null;
  close(): Promise<void>;
}

async function readPem(file: string, what: string): Promise<Uint8Array[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${what} ${file}: ${(error as Error).message}`);
  }
  const ders = pemToDerList(text);
  if (ders.length === 0) throw new CliError(`${what} ${file} holds no PEM certificate`);
  return ders;
}

/**
 * Revocation from a file of revoked serial numbers (hex, one per line, `#` comments), for the
 * development CA's certificates; TrustChain-issued ones are checked against consensus state by
 * the check a node adds with `ExtraTrust` (ca-service.ts `createCaStoqTrust`), and by the
 * operator tools against proven committed state (operator-trust.ts `provenLeafRevocation`).
 */
async function revocationFromFile(file: string | undefined): Promise<RevocationCheck> {
  if (file === undefined) return () => 'good';
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read revoked serials ${file}: ${(error as Error).message}`);
  }
  const revoked = new Set<string>();
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/#.*/, '').trim().toLowerCase();
    if (line === '') return;
    if (!/^[0-9a-f]+$/.test(line)) {
      throw new CliError(`${file}:${index + 1}: "${raw.trim()}" is not a hex serial number`);
    }
    revoked.add(line.replace(/^0+(?=.)/, ''));
  });
  return ({ certificate }) => (revoked.has(certificate.serialNumber) ? 'revoked' : 'good');
}

/** The parts of a node that talk STOQ, built from configuration but not yet listening. */
export interface StoqParts {
  readonly endpoint: StoqEndpoint;
  readonly transport: Transport;
  readonly registry: Registry;
  readonly uri: string;
  /** The revocation check handshakes use (the revoked-serials file, plus `extra`'s). */
  readonly revocation: RevocationCheck;
  /**
   * Presents a renewed certificate chain (DER, leaf first; same key and identity) on new
   * handshakes; open sessions stay up (cert-renewal.ts). Throws `StoqError` INVALID_ARGUMENT for
   * a chain of another key or identity. With the TLS transport the TLS layer keeps the
   * configured certificate: it only proves the key, the STOQ exchange carries the chain.
   */
  replaceLocalChain(chain: readonly Uint8Array[]): void;
  close(): Promise<void>;
}

/**
 * Trust beyond the configured roots file: another CA's roots (the TrustChain root of the genesis
 * `app.ca` bundle), its revocation check and which identities it may vouch for.
 */
export interface ExtraTrust {
  readonly roots: readonly Uint8Array[];
  readonly revocation: RevocationCheck;
  readonly identityCheck?: IdentityCheck;
}

/**
 * Revoked if either check says so (the first with the reason it gave); `unknown` or a failure
 * of either fails closed as before.
 */
export function combineRevocationChecks(
  first: RevocationCheck,
  second: RevocationCheck,
): RevocationCheck {
  return async (query) => {
    const answer = await first(query);
    return answer === 'good' ? second(query) : answer;
  };
}

/**
 * `resolver` replaces the fixed table of `config.peers` (e.g. discovery-resolver.ts); `extra`
 * adds trust roots, a revocation check combined with the revoked-serials file, and an identity
 * check; `verifyPeer` is what the endpoint's connection pool checks of every session it dials
 * for `client(service, name)` (e.g. discovery-resolver.ts `isServingNode`); without it any
 * authenticated peer at the resolved address is accepted as `name`.
 */
export async function buildStoqParts(
  config: NodeConfig,
  logger: Logger,
  resolver?: Resolver,
  extra?: ExtraTrust,
  verifyPeer?: (name: string, peer: PeerIdentity) => boolean,
): Promise<StoqParts> {
  const passphrase =
    config.identity.passphraseEnv === undefined
      ? undefined
      : process.env[config.identity.passphraseEnv];
  if (config.identity.passphraseEnv !== undefined && !passphrase) {
    throw new CliError(`environment variable ${config.identity.passphraseEnv} is not set`);
  }
  const identity = await readKeyFile(config.identity.keyFile, {
    kind: 'node-identity',
    ...(passphrase ? { passphrase } : {}),
  });
  const chain = await readPem(config.identity.certificateFile, 'certificate chain');
  const roots = [
    ...(await readPem(config.trust.rootsFile, 'trust roots')),
    ...(extra?.roots ?? []),
  ];
  const fromFile = await revocationFromFile(config.trust.revokedSerialsFile);
  const revocation =
    extra === undefined ? fromFile : combineRevocationChecks(fromFile, extra.revocation);
  const leaf = certificateIdentity(chain[0] as Uint8Array);
  if (leaf.cluster !== config.cluster || leaf.name !== config.name) {
    throw new CliError(
      `certificate names ${leaf.uri}, but the configuration says cluster "${config.cluster}", name "${config.name}"`,
    );
  }

  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'hypermesh_process_' });
  const metrics = createStoqMetrics(registry);
  const transport: Transport =
    config.transport === 'quic'
      ? createQuicTransport({
          privateKey: identity.keys.ed25519.privateKey,
          logger: {
            warn: (msg, fields) => logger.warn(msg, fields),
            error: (msg, fields) => logger.error(msg, fields),
          },
        })
      : createTlsTransport({
          identity: { privateKey: identity.keys.ed25519.privateKey, certificateChain: chain },
        });
  const authenticator = createAuthenticator({
    local: {
      chain,
      falcon: identity.keys.falcon,
      falconBackend: defaultFalcon(),
      delegationLifetimeMs: config.auth.delegationTtlSeconds * 1000,
    },
    trust: {
      roots,
      revocation,
      cluster: config.cluster,
      ...(extra?.identityCheck === undefined ? {} : { identityCheck: extra.identityCheck }),
    },
    mode: config.auth.mode,
    metrics,
  });
  const endpoint = new StoqEndpoint({
    transport,
    authenticator,
    resolver: resolver ?? new StaticResolver(config.peers),
    ...(verifyPeer === undefined ? {} : { pool: { verifyPeer } }),
    metrics,
    logger: {
      warn: (msg, fields) => logger.warn(msg, fields),
      error: (msg, fields) => logger.error(msg, fields),
    },
  });
  endpoint.register(
    nodeService,
    nodeServiceHandlers({
      name: config.name,
      uri: leaf.uri,
      version: packageVersion(),
      transport: config.transport,
      authMode: config.auth.mode,
      heartbeatMs: 1000,
    }),
  );
  return {
    endpoint,
    transport,
    registry,
    uri: leaf.uri,
    revocation,
    replaceLocalChain: (next) => authenticator.replaceLocalChain(next),
    close: async () => {
      await endpoint.close();
      await transport.close();
    },
  };
}

/** Builds the node's STOQ parts, listens, and starts the metrics endpoint if configured. */
export async function startStoqNode(config: NodeConfig, logger: Logger): Promise<StoqNode> {
  const parts = await buildStoqParts(config, logger);
  let address: SocketAddress;
  let metricsServer: MetricsServer | null = null;
  try {
    address = await parts.endpoint.listen(config.listen);
    if (config.metrics) metricsServer = await startMetricsServer(parts.registry, config.metrics);
  } catch (error) {
    await parts.close();
    throw error;
  }
  return {
    config,
    endpoint: parts.endpoint,
    address,
    uri: parts.uri,
    registry: parts.registry,
    metrics: metricsServer,
    close: async () => {
      await metricsServer?.close();
      await parts.close();
    },
  };
}
