import { createPublicKey, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { toHex } from '../crypto/bytes.js';
import { ed25519RawPublicKey } from '../crypto/ed25519.js';
import { defaultFalcon, type FalconBackend } from '../crypto/falcon.js';
import { writeKeyFile, type NodeIdentityKeys } from '../crypto/keyfile.js';
import { parseCertificate } from '../crypto/x509.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import type { NodeRpcClient } from '../consensus/net/index.js';
import type { TrustBundle } from '../trustchain/ca/bundle.js';
import { CaError } from '../trustchain/ca/errors.js';
import { ipInRange } from '../trustchain/ca/names.js';
import { PROFILES } from '../trustchain/ca/profiles.js';
import { verifyIssuedCertificate } from '../trustchain/ca/verify.js';
import {
  caGenesisFromApp,
  certificateChainPem,
  readIntermediates,
  requesterFor,
  trustBundleInEffect,
} from '../trustchain/ca-module/index.js';
import {
  committedCaCheck,
  genesisTrustBundle,
  requestCertificate,
  stoqIdentityRequestParts,
} from './cert-tools.js';
import { CliError } from './cli-error.js';
import { operatorKey } from './kv-tools.js';
import {
  findNode,
  loadClusterTarget,
  openOperatorSession,
  type ClusterTarget,
  type OperatorSession,
} from './operator.js';
import { stoqFailure } from './tx-submit.js';

/**
 * The STOQ certificate of a node `cluster add-node` adds to a cluster with a TrustChain CA
 * (genesis `app.ca`; docs/node.md, "Adding a node"): a `node`-profile certificate for
 * `spiffe://<cluster>/node/<name>` that the running cluster issues through consensus — a `ca`
 * request transaction signed with the operator key (its genesis grant holds the node profile),
 * committed and published by a validator like any `cert request --stoq-identity`. There is no
 * development CA to sign it offline, so the cluster must be running.
 */

const DAY_SECONDS = 86_400;

/** How long `cluster add-node` waits for the commit and the publication by default (ms). */
export const ADD_NODE_TIMEOUT_MS = 60_000;

/** Longest wait for a node's first answer (ms): nodes that are down fail within this. */
const PROBE_MS = 10_000;

/**
 * The certificate lifetime in seconds: the node profile's maximum (30 days), or `validityDays`
 * when it asks for less; more is refused before anything is generated.
 */
export function nodeCertificateLifetime(validityDays: number | undefined): number {
  const max = PROFILES.node.maxLifetimeSeconds;
  if (validityDays === undefined) return max;
  const maxDays = max / DAY_SECONDS;
  if (!Number.isInteger(validityDays) || validityDays < 1 || validityDays > maxDays) {
    throw new CliError(
      `--validity-days ${String(validityDays)}: a node certificate from the cluster's TrustChain CA lives 1 to ${maxDays} days (the node profile's maximum, ${max} seconds)`,
    );
  }
  return validityDays * DAY_SECONDS;
}

/** `[host]` when it is an IP address within the operator's genesis grant, else `[]`. */
function grantedIp(genesis: GenesisDocument, operator: KeyObject, host: string): string[] {
  if (isIP(host) === 0) return [];
  const config = caGenesisFromApp(genesis.app, genesis);
  if (config === undefined) return [];
  const account = ed25519RawPublicKey(createPublicKey(operator));
  const { ipRanges } = requesterFor(config, account);
  return ipRanges.some((range) => ipInRange(host, range)) ? [host] : [];
}

export interface NodeCertificateWriter {
  /** The node the request goes through: the first of the cluster to answer (or `--node`). */
  readonly via: string;
  /**
   * Requests the certificate for `keys`, waits for its publication and writes `<name>.key`
   * (node-identity key file) and `<name>.pem` (leaf + its intermediate) into `outDir`.
   */
  issue(options: {
    readonly outDir: string;
    readonly name: string;
    readonly keys: NodeIdentityKeys;
    /**
     * The node's listen address: named as an IP SAN (so DoQ and HTTPS clients can check the
     * certificate against the address they dial) when it is an IP address the operator's
     * genesis grant covers; otherwise the certificate names only the node's URI.
     */
    readonly host: string;
  }): Promise<{ serial: string; issuer: string; height: number; publishedAt: number }>;
  close(): Promise<void>;
}

export interface NodeCertificateOptions {
  /** The `cluster init` directory: its nodes, operator key and genesis. */
  readonly clusterDir: string;
  readonly genesis: GenesisDocument;
  /** A node to go through (name, address or `host:port`); default: the first that answers. */
  readonly via?: string;
  readonly lifetimeSeconds: number;
  readonly timeoutMs: number;
  readonly falcon?: FalconBackend;
  readonly now?: () => Date;
  readonly progress: (line: string) => void;
}

/** The first of `candidates` that answers a `status` call, or a CliError naming every failure. */
async function firstAnswering(
  dir: string,
  session: OperatorSession,
  candidates: ClusterTarget['nodes'],
  timeoutMs: number,
): Promise<{ name: string; client: NodeRpcClient }> {
  const deadlineMs = Math.min(timeoutMs, PROBE_MS);
  try {
    return await Promise.any(
      candidates.map(async (node) => {
        const client = session.client(node.name);
        await client.status({ deadlineMs });
        return { name: node.name, client };
      }),
    );
  } catch (error) {
    const failures = error instanceof AggregateError ? error.errors : [error];
    const reasons = candidates.map(
      (node, i) =>
        `${node.name} at ${node.stoq.host}:${node.stoq.port}: ${(failures[i] as Error | undefined)?.message ?? 'no answer'}`,
    );
    throw new CliError(
      `no node of the cluster in ${dir} answered within ${deadlineMs} ms (${reasons.join('; ')}): ` +
        `with a TrustChain CA (genesis app.ca) add-node has the running cluster issue the node's ` +
        `certificate through consensus, so the cluster must be running; start its nodes and retry`,
      1,
    );
  }
}

/** The bundle that names `issuer`: the genesis one, or the one in effect with added intermediates. */
async function bundleWithIssuer(
  genesisBundle: TrustBundle,
  issuer: string,
  client: NodeRpcClient,
): Promise<TrustBundle> {
  if (genesisBundle.validators.some((validator) => validator.name === issuer)) return genesisBundle;
  return trustBundleInEffect(
    genesisBundle,
    (await readIntermediates((request) => client.query(request), committedCaCheck(client))).added,
  );
}

function checkIssued(
  der: Uint8Array,
  bundle: TrustBundle,
  uri: string,
  keys: NodeIdentityKeys,
  now: Date,
  falcon: FalconBackend,
): void {
  const leaf = parseCertificate(der);
  // At the block's time if this clock is behind it: a skew is no reason to refuse the certificate.
  const at = new Date(Math.max(now.getTime(), leaf.notBefore.getTime()));
  try {
    verifyIssuedCertificate(der, bundle, { now: at, purpose: 'any', falcon });
  } catch (error) {
    if (error instanceof CaError) {
      throw new CliError(`the published node certificate does not verify: ${error.message}`, 1);
    }
    throw error;
  }
  const key: KeyObject = createPublicKey(keys.ed25519.privateKey);
  if (!leaf.publicKey.equals(key) || !leaf.uris.includes(uri)) {
    throw new CliError(
      `the published certificate ${leaf.serialNumber} is not for ${uri} and this node's key`,
      1,
    );
  }
}

/**
 * Opens the operator's session to the cluster in `clusterDir` and finds a node that answers
 * (failing, with nothing issued, when none does); `issue` then has the certificate issued.
 */
export async function openNodeCertificateWriter(
  options: NodeCertificateOptions,
): Promise<NodeCertificateWriter> {
  const dir = path.resolve(options.clusterDir);
  const genesisBundle = genesisTrustBundle(options.genesis);
  const falcon = options.falcon ?? defaultFalcon();
  const now = options.now ?? (() => new Date());
  const target = await loadClusterTarget(dir);
  const candidates = options.via === undefined ? target.nodes : [findNode(target, options.via)];
  const privateKey = await operatorKey(target.operator.keyFile);
  const session = await openOperatorSession(target);
  let via: { name: string; client: NodeRpcClient };
  try {
    via = await firstAnswering(dir, session, candidates, options.timeoutMs);
  } catch (error) {
    await session.close();
    throw error;
  }
  const { client } = via;
  return {
    via: via.name,
    async issue({ outDir, name, keys, host }) {
      const uri = `spiffe://${genesisBundle.cluster}/node/${name}`;
      const ipAddresses = grantedIp(options.genesis, privateKey, host);
      const parts = await stoqIdentityRequestParts(keys, falcon);
      options.progress(
        `  requesting a node certificate for ${uri} from the TrustChain CA through ${via.name} ` +
          `(lifetime ${options.lifetimeSeconds / DAY_SECONDS} days)`,
      );
      const published = await requestCertificate({
        client,
        genesis: options.genesis,
        privateKey,
        request: {
          profile: 'node',
          csr: parts.csr,
          dnsNames: [],
          ipAddresses,
          uris: [uri],
          lifetimeSeconds: options.lifetimeSeconds,
          falcon: parts.falcon,
        },
        timeoutMs: options.timeoutMs,
      }).catch(stoqFailure(via.name));
      const serial = toHex(published.serial);
      options.progress(`  committed at height ${published.height} (tx ${published.txHash})`);
      options.progress(`  certificate serial ${serial}`);
      options.progress(`  published at height ${published.publishedAt} by ${published.issuer}`);
      const bundle = await bundleWithIssuer(genesisBundle, published.issuer, client).catch(
        stoqFailure(via.name),
      );
      checkIssued(published.certificate, bundle, uri, keys, now(), falcon);
      await writeKeyFile(path.join(outDir, `${name}.key`), { kind: 'node-identity', keys });
      await writeFile(
        path.join(outDir, `${name}.pem`),
        certificateChainPem(bundle, published.certificate, published.issuer),
        { flag: 'wx', mode: 0o644 },
      );
      return {
        serial,
        issuer: published.issuer,
        height: published.height,
        publishedAt: published.publishedAt,
      };
    },
    close: () => session.close(),
  };
}
