import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { isResolverAddress } from '../faces/acme/external-resolver.js';
import { OCSP_VALIDITY_MS } from '../faces/ocsp-http.js';
import { MAX_IDLE_BLOCK_INTERVAL_MS } from '../consensus/driver/driver-config.js';
import { MAX_WAIT_HEIGHTS } from '../consensus/driver/signer-state-missing.js';
import { CliError } from './cli-error.js';
import { DEFAULT_LISTEN_HOST, DEFAULT_METRICS_PORT, DEFAULT_STOQ_PORT } from './config.js';
import { LOG_LEVELS, type LogLevel } from './log.js';

/**
 * How long an idle chain waits between empty blocks (the consensus driver's
 * `idleBlockIntervalMs`): 1 s, against the 200 ms commit delay that paces blocks with work.
 */
export const DEFAULT_IDLE_BLOCK_INTERVAL_MS = 1000;

/**
 * The configuration of a consensus node (`hypermesh node start --config FILE`), written per node
 * by `hypermesh cluster init` and documented field by field in docs/node.md. Every address and
 * port the node uses comes from here (or from the HYPERMESH_* environment overrides below);
 * relative paths are resolved against the directory of the configuration file.
 */
export const NODE_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
const nodeName = z
  .string()
  .regex(NODE_NAME_PATTERN, 'lowercase letters, digits and "-", at most 63');
const file = z.string().min(1, 'must be a non-empty path');
/** A host name or IP address to listen on or dial (the environment's hosts are checked alike). */
const host = z.string().min(1).max(253);

const listenAddress = z.strictObject({
  host,
  port: z.int().min(0).max(65_535),
});

/** A peer's address: a port to dial, so 0 is not allowed. */
const peerAddress = z.strictObject({
  host,
  port: z.int().min(1).max(65_535),
});

export const validatorNodeConfigSchema = z.strictObject({
  /**
   * Node name: the certificate's spiffe://<chainId>/<role>/<name>, and the genesis name of a
   * genesis validator (a node added later, `cluster add-node`, has a name the genesis lacks).
   */
  name: nodeName,
  /** Store (store.sqlite), consensus WAL and signer state live here; created if missing. */
  dataDir: file,
  /** The cluster's genesis.json (written by `cluster init`). */
  genesisFile: file,
  identity: z.strictObject({
    /** Node identity key file: the Ed25519 key (STOQ identity and validator key) + FALCON-1024. */
    keyFile: file,
    /** PEM certificate chain of the node, leaf first. */
    certificateFile: file,
    /** Environment variable holding the key file's passphrase, if it is encrypted. */
    passphraseEnv: z.string().min(1).optional(),
    /**
     * When the node renews its consensus-issued certificate (cert-renewal.ts): the fraction of
     * its validity that has passed, 0 ≤ renewAt < 1; default 2/3. 0 renews at once.
     */
    renewAt: z.number().min(0).lt(1).optional(),
  }),
  trust: z.strictObject({
    /** PEM trust roots (the cluster CA). */
    rootsFile: file,
    /** Revoked certificate serial numbers, hex, one per line. */
    revokedSerialsFile: file.optional(),
  }),
  /**
   * The node's PoSpace storage plot (built by `cluster init` or `cluster add-node`): a genesis
   * validator's root is in the genesis, an added node's is what `stake create-validator` registers.
   */
  storagePlotFile: file,
  /**
   * Node-local consensus timing. `idleBlockIntervalMs`: after an empty block, while nothing is
   * pending, the next height starts this long after the decision (a transaction or a peer's
   * message of the next height ends the wait); 0 makes empty blocks at the commit delay's pace.
   * `signerStateMissing`: what a validator with stored blocks but no `signer-state.json` does
   * (the driver's option: `"refuse"` when absent, or `{ "waitHeights": N }`; docs/node.md).
   */
  consensus: z
    .strictObject({
      idleBlockIntervalMs: z
        .int()
        .min(0)
        .max(MAX_IDLE_BLOCK_INTERVAL_MS)
        .default(DEFAULT_IDLE_BLOCK_INTERVAL_MS),
      signerStateMissing: z
        .union([
          z.literal('refuse'),
          z.strictObject({ waitHeights: z.int().min(1).max(MAX_WAIT_HEIGHTS) }),
        ])
        .optional(),
    })
    .default({ idleBlockIntervalMs: DEFAULT_IDLE_BLOCK_INTERVAL_MS }),
  stoq: z
    .strictObject({
      host: host.default(DEFAULT_LISTEN_HOST),
      port: z.int().min(0).max(65_535).default(DEFAULT_STOQ_PORT),
      transport: z.enum(['quic', 'tls']).default('quic'),
      authMode: z.enum(['strict', 'delegated']).default('delegated'),
    })
    .default({
      host: DEFAULT_LISTEN_HOST,
      port: DEFAULT_STOQ_PORT,
      transport: 'quic',
      authMode: 'delegated',
    }),
  /** Prometheus endpoint (GET /metrics); null turns it off. */
  metrics: listenAddress
    .nullable()
    .default({ host: DEFAULT_LISTEN_HOST, port: DEFAULT_METRICS_PORT }),
  /**
   * Authoritative DNS for the zones the genesis `app.dns` section puts in consensus state
   * (docs/dns.md): UDP, TCP and DNS-over-QUIC listen addresses, and the signing key file of each
   * zone the genesis publishes a DNSKEY for. Absent or null: no DNS servers.
   */
  dns: z
    .strictObject({
      udp: z.array(listenAddress).max(8).default([]),
      tcp: z.array(listenAddress).max(8).default([]),
      /** DoQ (RFC 9250) with the node's certificate and key, ALPN `doq`. */
      doq: z.array(listenAddress).max(8).default([]),
      /** Zone-signing keys (P-256 key files) of the signed zones; checked against the genesis. */
      dnssecKeys: z
        .array(z.strictObject({ zone: z.string().min(1).max(1024), keyFile: file }))
        .max(64)
        .default([]),
    })
    .refine((dns) => dns.udp.length + dns.tcp.length + dns.doq.length > 0, {
      error: 'give at least one UDP, TCP or DoQ address (or leave "dns" out)',
    })
    .nullable()
    .default(null),
  /**
   * The TrustChain CA (genesis `app.ca`, docs/ca.md): this validator's intermediate key (it signs
   * the certificates it publishes) and the trust bundle file (checked against the genesis).
   * Absent or null: the node validates publications but never publishes. `maxBlockAgeSeconds`
   * (default `OCSP_MAX_BLOCK_AGE_MS`, 300): OCSP answers `tryLater` and `GET /crl` is 503 once the last committed block is older than
   * this (src/faces/ocsp-http.ts): at least two of the longest idle block intervals, so an idle
   * chain never trips it, and at most half the OCSP validity, so no signed answer is already
   * expired.
   */
  ca: z
    .strictObject({
      intermediateKeyFile: file,
      trustBundleFile: file,
      maxBlockAgeSeconds: z
        .number()
        .int()
        .min((2 * MAX_IDLE_BLOCK_INTERVAL_MS) / 1000)
        .max(OCSP_VALIDITY_MS / 2 / 1000)
        .optional(),
    })
    .nullable()
    .default(null),
  /** The CT log's HTTP read API (docs/ct.md); absent or null: not served. */
  ct: z.strictObject({ http: listenAddress }).nullable().default(null),
  /**
   * The ACME server (docs/acme.md, "In the node"): HTTPS listen address, the ACME account key
   * (Ed25519; its genesis `app.ca` grant decides the names), the HTTPS certificate for the node
   * identity key (default `identity.certificateFile`), and optional base URL and validation
   * ports. Absent or null: no ACME server.
   */
  acme: z
    .strictObject({
      https: listenAddress,
      accountKeyFile: file,
      certificateFile: file.optional(),
      baseUrl: z
        .string()
        .regex(/^https:\/\/[^/?#]+$/, 'https://host[:port] without a path')
        .optional(),
      http01Port: z.int().min(1).max(65_535).optional(),
      tlsAlpn01Port: z.int().min(1).max(65_535).optional(),
      /** CAA issuer domain names (docs/acme.md "CAA"); default: the genesis `app.dns` zone apexes. */
      caaIdentities: z
        .array(
          z
            .string()
            .max(253)
            .regex(
              /^[A-Za-z0-9](?:-*[A-Za-z0-9])*(?:\.[A-Za-z0-9](?:-*[A-Za-z0-9])*)*$/,
              'an issuer domain name (letters, digits, hyphens, dots; no trailing dot)',
            ),
        )
        .min(1)
        .max(16)
        .optional(),
      /**
       * Recursive DNS resolver for names outside the cluster's zones (docs/acme.md "External
       * names"): "ipv4:port" or "[ipv6]:port"; default: the system's resolvers.
       */
      resolver: z
        .string()
        .max(64)
        .refine(isResolverAddress, { error: '"ipv4:port" or "[ipv6]:port" of a DNS resolver' })
        .optional(),
      /**
       * TEST CLUSTERS ONLY (docs/acme.md "External names"): validate external names even when
       * they resolve to loopback, private or link-local addresses. Absent or false (always, in
       * production): such names fail with the `dns` problem and nothing is connected to.
       */
      allowNonPublicAddresses: z.boolean().optional(),
    })
    .nullable()
    .optional(),
  /**
   * The nodes this one dials and syncs from: name (as in their certificates) and STOQ address.
   * Other peer-role certificates of the cluster are admitted too (docs/stoq-auth.md).
   */
  peers: z
    .array(z.strictObject({ name: nodeName, address: peerAddress }))
    .default([])
    .superRefine((peers, ctx) => {
      const seen = new Set<string>();
      peers.forEach((peer, index) => {
        if (seen.has(peer.name)) {
          ctx.addIssue({
            code: 'custom',
            path: [index, 'name'],
            message: `peer "${peer.name}" is listed twice`,
          });
        }
        seen.add(peer.name);
      });
    }),
  logLevel: z.enum(LOG_LEVELS as [LogLevel, ...LogLevel[]]).default('info'),
});

export type ValidatorNodeConfig = z.infer<typeof validatorNodeConfigSchema>;

/** The environment variables that override configuration fields (docs/node.md). */
export const NODE_ENV_OVERRIDES = {
  HYPERMESH_STOQ_HOST: 'stoq.host',
  HYPERMESH_STOQ_PORT: 'stoq.port',
  HYPERMESH_METRICS_HOST: 'metrics.host',
  HYPERMESH_METRICS_PORT: 'metrics.port ("off" disables metrics)',
  HYPERMESH_DATA_DIR: 'dataDir (relative to the working directory)',
  HYPERMESH_LOG_LEVEL: 'logLevel',
  HYPERMESH_IDLE_BLOCK_INTERVAL_MS: 'consensus.idleBlockIntervalMs (ms, 0-60000)',
} as const;

/** A whole number from 0 to `max` in an environment variable; `what` names it in the error. */
function envWholeNumber(variable: string, value: string, max: number, what: string): number {
  const number = Number(value);
  if (!/^\d+$/.test(value) || number > max) {
    throw new CliError(`environment variable ${variable}="${value}" is not ${what}`);
  }
  return number;
}

function envPort(variable: string, value: string): number {
  return envWholeNumber(variable, value, 65_535, 'a port (0-65535)');
}

/**
 * `value` of `variable` checked by `schema`, the one the file's `field` is checked with: an
 * override is held to what the file is.
 */
function envChecked(variable: string, field: string, value: string, schema: z.ZodString): string {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const shown = value.length > 64 ? `${value.slice(0, 64)}… (${value.length} characters)` : value;
  throw new CliError(
    `environment variable ${variable}="${shown}" is not a valid ${field}: ${result.error.issues.map((issue) => issue.message).join('; ')}`,
  );
}

function applyEnv(config: ValidatorNodeConfig, env: NodeJS.ProcessEnv): void {
  const value = (name: keyof typeof NODE_ENV_OVERRIDES): string | undefined => {
    const found = env[name];
    return found === undefined || found === '' ? undefined : found;
  };
  const stoqHost = value('HYPERMESH_STOQ_HOST');
  if (stoqHost !== undefined) {
    config.stoq.host = envChecked('HYPERMESH_STOQ_HOST', 'stoq.host', stoqHost, host);
  }
  const stoqPort = value('HYPERMESH_STOQ_PORT');
  if (stoqPort !== undefined) config.stoq.port = envPort('HYPERMESH_STOQ_PORT', stoqPort);
  const metricsPort = value('HYPERMESH_METRICS_PORT');
  const metricsHostValue = value('HYPERMESH_METRICS_HOST');
  const metricsHost =
    metricsHostValue === undefined
      ? undefined
      : envChecked('HYPERMESH_METRICS_HOST', 'metrics.host', metricsHostValue, host);
  if (metricsPort === 'off') {
    config.metrics = null;
  } else if (metricsPort !== undefined || metricsHost !== undefined) {
    config.metrics = {
      host: metricsHost ?? config.metrics?.host ?? DEFAULT_LISTEN_HOST,
      port:
        metricsPort === undefined
          ? (config.metrics?.port ?? DEFAULT_METRICS_PORT)
          : envPort('HYPERMESH_METRICS_PORT', metricsPort),
    };
  }
  const idle = value('HYPERMESH_IDLE_BLOCK_INTERVAL_MS');
  if (idle !== undefined) {
    const idleBlockIntervalMs = envWholeNumber(
      'HYPERMESH_IDLE_BLOCK_INTERVAL_MS',
      idle,
      MAX_IDLE_BLOCK_INTERVAL_MS,
      `a whole number of ms from 0 to ${MAX_IDLE_BLOCK_INTERVAL_MS}`,
    );
    config.consensus = { ...config.consensus, idleBlockIntervalMs };
  }
  // Given where the command is typed, like --config: relative to the working directory, not to
  // the configuration file as the file's own paths are.
  const dataDir = value('HYPERMESH_DATA_DIR');
  if (dataDir !== undefined) {
    config.dataDir = path.resolve(envChecked('HYPERMESH_DATA_DIR', 'dataDir', dataDir, file));
  }
  const logLevel = value('HYPERMESH_LOG_LEVEL');
  if (logLevel !== undefined) {
    if (!LOG_LEVELS.includes(logLevel as LogLevel)) {
      throw new CliError(
        `environment variable HYPERMESH_LOG_LEVEL="${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`,
      );
    }
    config.logLevel = logLevel as LogLevel;
  }
}

/**
 * Checks a parsed JSON document against the schema, applies the environment overrides (checked
 * like the fields they replace) and resolves every path against `baseDir` —
 * `HYPERMESH_DATA_DIR` against the working directory. `source` names the file in error messages.
 */
export function parseValidatorNodeConfig(
  input: unknown,
  options: { baseDir: string; source: string; env?: NodeJS.ProcessEnv },
): ValidatorNodeConfig {
  const result = validatorNodeConfigSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues
      .map((issue) => `  ${formatPath(issue.path) || '(root)'}: ${issue.message}`)
      .join('\n');
    throw new CliError(`invalid node configuration ${options.source}:\n${problems}`);
  }
  const config = result.data;
  applyEnv(config, options.env ?? {});
  const resolve = (file: string): string => path.resolve(options.baseDir, file);
  config.dataDir = resolve(config.dataDir);
  config.genesisFile = resolve(config.genesisFile);
  config.identity.keyFile = resolve(config.identity.keyFile);
  config.identity.certificateFile = resolve(config.identity.certificateFile);
  config.trust.rootsFile = resolve(config.trust.rootsFile);
  if (config.trust.revokedSerialsFile !== undefined) {
    config.trust.revokedSerialsFile = resolve(config.trust.revokedSerialsFile);
  }
  config.storagePlotFile = resolve(config.storagePlotFile);
  if (config.ca !== null) {
    config.ca.intermediateKeyFile = resolve(config.ca.intermediateKeyFile);
    config.ca.trustBundleFile = resolve(config.ca.trustBundleFile);
  }
  config.dns?.dnssecKeys.forEach((entry) => (entry.keyFile = resolve(entry.keyFile)));
  if (config.acme !== undefined && config.acme !== null) {
    config.acme.accountKeyFile = resolve(config.acme.accountKeyFile);
    if (config.acme.certificateFile !== undefined) {
      config.acme.certificateFile = resolve(config.acme.certificateFile);
    }
  }
  return config;
}

function formatPath(segments: readonly PropertyKey[]): string {
  return segments
    .map((segment, index) =>
      typeof segment === 'number' ? `[${segment}]` : `${index === 0 ? '' : '.'}${String(segment)}`,
    )
    .join('');
}

export async function loadValidatorNodeConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ValidatorNodeConfig> {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read node configuration ${absolute}: ${(error as Error).message}`);
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    throw new CliError(
      `node configuration ${absolute} is not valid JSON: ${(error as Error).message}`,
    );
  }
  return parseValidatorNodeConfig(input, {
    baseDir: path.dirname(absolute),
    source: absolute,
    env,
  });
}
