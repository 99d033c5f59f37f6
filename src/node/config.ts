import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { CliError } from './cli-error.js';

/**
 * Node configuration. This module is the one place that holds default addresses and ports
 * (ARCHITECTURE.md "Ports"); every other part of the code takes them from here.
 */
export const DEFAULT_LISTEN_HOST = '127.0.0.1';
/**
 * The loopback addresses: where a node reaches its own services that listen on a wildcard
 * address (`0.0.0.0`, `::`), and what help texts show.
 */
export const LOOPBACK_HOSTS = Object.freeze({ v4: DEFAULT_LISTEN_HOST, v6: '::1' });
export const DEFAULT_STOQ_PORT = 9292;
export const DEFAULT_METRICS_PORT = 9464;
/** Authoritative DNS (UDP and TCP) of node-1 in a `cluster init` cluster (53 in production). */
export const DEFAULT_DNS_PORT = 8853;
/**
 * DNS-over-QUIC (RFC 9250) of node-1 in a `cluster init` cluster (853 in production); above the
 * DNS, STOQ and metrics ranges of up to 100 nodes, since DoQ, DNS and STOQ over QUIC all use UDP.
 */
export const DEFAULT_DOQ_PORT = 9853;
/** The CT log's HTTP read API (docs/ct.md) of node-1 in a `cluster init` cluster. */
export const DEFAULT_CT_HTTP_PORT = 6962;
/**
 * The ACME server's HTTPS port (docs/acme.md) of node-1 in a `cluster init` cluster (443 in
 * production). The shared design says 9443, but a cluster's per-node ports 9443 + K − 1 would run
 * into the metrics ports from node 22 on; 8443 + K − 1 stays clear of the CT (6962), DNS (8853),
 * STOQ (9292), metrics (9464) and DoQ (9853) ranges of up to 100 nodes.
 */
export const DEFAULT_ACME_HTTPS_PORT = 8443;
/** The cluster zone `cluster init` puts in consensus state. */
export const DEFAULT_DNS_ZONE = 'hypermesh.';
/** Chain id (and certificate cluster name) `hypermesh cluster init` uses when given none. */
export const DEFAULT_CHAIN_ID = 'hypermesh-dev';
/** Where `hypermesh dev` keeps its cluster, relative to the working directory. */
export const DEFAULT_DEV_DIR = '.hypermesh/dev';
export const DEFAULT_DEV_NODES = 4;
/** Voting power `cluster init` gives each validator (equal weights). */
export const DEFAULT_VALIDATOR_POWER = 10;
/**
 * Consensus parameters `cluster init` writes into a new genesis: timeouts short enough for a
 * loopback cluster (they grow by the delta each round, so a slower network still converges),
 * a short pause after each commit to gather transactions, at most 1,000 transactions and 1 MiB
 * of them per block (so every validator can execute a proposal well within the propose timeout
 * on a loaded machine), and a FALCON-1024 attestation required on every precommit.
 */
export const DEFAULT_CLUSTER_CONSENSUS = Object.freeze({
  timeouts: Object.freeze({
    proposeMs: 1000,
    proposeDeltaMs: 500,
    prevoteMs: 500,
    prevoteDeltaMs: 250,
    precommitMs: 500,
    precommitDeltaMs: 250,
  }),
  commitDelayMs: 200,
  maxBlockBytes: 1024 * 1024,
  maxBlockTxs: 1_000,
  requirePq: true,
});
/** How long `hypermesh dev` waits for a child node to stop after SIGTERM before SIGKILL. */
export const DEFAULT_STOP_GRACE_MS = 10_000;

const address = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(0).max(65535),
});

export const nodeConfigSchema = z.strictObject({
  cluster: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and "-", at most 63'),
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and "-"'),
  transport: z.enum(['quic', 'tls']).default('quic'),
  listen: address.default({ host: DEFAULT_LISTEN_HOST, port: DEFAULT_STOQ_PORT }),
  auth: z
    .strictObject({
      mode: z.enum(['strict', 'delegated']).default('delegated'),
      /** Lifetime of the FALCON delegation of the transport key, delegated mode only. */
      delegationTtlSeconds: z.number().int().min(60).max(86_400).default(3600),
    })
    .default({ mode: 'delegated', delegationTtlSeconds: 3600 }),
  identity: z.strictObject({
    /** Key file holding the node identity (Ed25519 transport key + FALCON-1024 key pair). */
    keyFile: z.string().min(1),
    /** PEM file with the node certificate followed by any intermediates. */
    certificateFile: z.string().min(1),
    /** Name of an environment variable holding the key file's passphrase, if encrypted. */
    passphraseEnv: z.string().min(1).optional(),
  }),
  trust: z.strictObject({
    /** PEM file with the trusted root certificates. */
    rootsFile: z.string().min(1),
    /** Optional file of revoked certificate serial numbers (hex, one per line). */
    revokedSerialsFile: z.string().min(1).optional(),
  }),
  /** Static peer table for the STOQ resolver: name → addresses. */
  peers: z.record(z.string().min(1), z.array(address).min(1)).default({}),
  metrics: address.nullable().default({ host: DEFAULT_LISTEN_HOST, port: DEFAULT_METRICS_PORT }),
});

export type NodeConfig = z.infer<typeof nodeConfigSchema>;

/** Environment overrides, applied after the file is read (documented in docs/cli.md). */
const ENV_OVERRIDES: ReadonlyArray<[string, (c: NodeConfig, v: string) => void]> = [
  ['HYPERMESH_LISTEN_HOST', (c, v) => (c.listen = { ...c.listen, host: v })],
  ['HYPERMESH_LISTEN_PORT', (c, v) => (c.listen = { ...c.listen, port: parsePort(v) })],
  [
    'HYPERMESH_METRICS_PORT',
    (c, v) => (c.metrics = { host: c.metrics?.host ?? DEFAULT_LISTEN_HOST, port: parsePort(v) }),
  ],
];

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new CliError(`invalid port "${value}"`);
  return port;
}

/** Parses a configuration object; file paths inside are resolved against `baseDir`. */
export function parseNodeConfig(
  input: unknown,
  baseDir: string,
  env: NodeJS.ProcessEnv = {},
): NodeConfig {
  const result = nodeConfigSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues
      .map((issue) => `  ${issue.path.join('.') || '(root)'}: ${issue.message}`)
      .join('\n');
    throw new CliError(`invalid configuration:\n${problems}`);
  }
  const config = result.data;
  const resolve = (file: string): string => path.resolve(baseDir, file);
  config.identity.keyFile = resolve(config.identity.keyFile);
  config.identity.certificateFile = resolve(config.identity.certificateFile);
  config.trust.rootsFile = resolve(config.trust.rootsFile);
  if (config.trust.revokedSerialsFile)
    config.trust.revokedSerialsFile = resolve(config.trust.revokedSerialsFile);
  for (const [name, apply] of ENV_OVERRIDES) {
    const value = env[name];
    if (value !== undefined && value !== '') apply(config, value);
  }
  return config;
}

export async function loadNodeConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<NodeConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read configuration ${file}: ${(error as Error).message}`);
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    throw new CliError(`configuration ${file} is not valid JSON: ${(error as Error).message}`);
  }
  return parseNodeConfig(input, path.dirname(path.resolve(file)), env);
}
