import { copyFile, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import type { GenesisDocument } from '../consensus/genesis.js';
import { buildStoragePlotFor, saveStoragePlot } from '../consensus/pos/index.js';
import { validatorAddress } from '../consensus/validator-set.js';
import { toHex } from '../crypto/bytes.js';
import { ed25519RawPublicKey } from '../crypto/ed25519.js';
import { defaultFalcon, type FalconBackend } from '../crypto/falcon.js';
import {
  ADD_NODE_TIMEOUT_MS,
  nodeCertificateLifetime,
  openNodeCertificateWriter,
  type NodeCertificateWriter,
} from './add-node-certificate.js';
import { CA_FILES, nodeCaConfig } from './ca-genesis.js';
import { writeIntermediateRequest } from './ca-intermediate.js';
import {
  createStagingDir,
  exitOnInterrupt,
  removeStaleStagingDirs,
  sealStagingDir,
  type InterruptGuard,
} from './ceremony-staging.js';
import { CliError } from './cli-error.js';
import { lockAddedNodes, type AddedNodesLock } from './cluster-added-nodes.js';
import { CLUSTER_FILES } from './cluster-init.js';
import { readGenesisFile } from './cluster-layout.js';
import { DEV_CA_FILES, generateNodeIdentity, issueDevIdentity, loadDevCa } from './dev-ca.js';
import { findFreePorts } from './free-ports.js';
import {
  NODE_NAME_PATTERN,
  loadValidatorNodeConfig,
  type ValidatorNodeConfig,
  type validatorNodeConfigSchema,
} from './node-config.js';

/**
 * `hypermesh cluster add-node`: a node for a cluster that is already running (docs/node.md,
 * "Adding a node"). In a new directory `DIR/<name>/` it writes what `cluster init` writes for a
 * genesis validator — an identity (Ed25519 + FALCON-1024), a certificate with role `node`
 * (`spiffe://<chain>/node/<name>`: it is not a validator yet), a PoSpace storage plot for its key
 * under the genesis space parameters, with a TrustChain CA its intermediate key and request
 * (ca-intermediate.ts), and `config.json` with every existing node as a peer — but the genesis
 * is not touched. With a TrustChain CA (genesis `app.ca`) the running cluster issues the
 * certificate through consensus, requested with the operator key (add-node-certificate.ts) as
 * the last step before the directory is renamed into place, so a local failure issues nothing;
 * without one (`cluster init --no-ca`) the development CA in `DIR/ca/` signs it here. The node starts outside the
 * validator set, follows the chain, and validates once `hypermesh stake create-validator
 * --node-dir DIR/<name>` has registered its keys and plot root and an epoch has selected it.
 *
 * The existing nodes need no change: they admit a peer-role certificate of their cluster that
 * they do not list (docs/stoq-auth.md, "Consensus peers"). The directory is written into a
 * temporary sibling first and renamed into place, then the node is appended to
 * `DIR/added-nodes.json` (cluster-added-nodes.ts), where the operator tools find it; a failure
 * of either step leaves nothing behind. The manifest's lock is taken before the name is checked
 * and before the cluster is asked for anything, and held until the node is recorded, so another
 * `add-node` running meanwhile is refused before a certificate is issued.
 */

export interface AddNodeOptions {
  /** The cluster directory `cluster init` wrote. */
  readonly clusterDir: string;
  readonly name: string;
  /** Listen address (default: the first existing node's STOQ host). */
  readonly host?: string;
  /** STOQ port; 0 (the default) picks a free port now. */
  readonly port?: number;
  /** Metrics port; 0 (the default) picks a free port now; null serves no metrics. */
  readonly metricsPort?: number | null;
  /** DNS port (UDP and TCP); 0 (the default) picks a free port now; null serves no DNS. */
  readonly dnsPort?: number | null;
  /** DNS-over-QUIC port; 0 (the default) picks a free port now; null serves none. */
  readonly doqPort?: number | null;
  /**
   * Certificate validity in days (default: 365 from the development CA; with a TrustChain CA
   * the node profile's maximum, 30, which it may not exceed).
   */
  readonly validityDays?: number;
  /** With a TrustChain CA: the node to request the certificate through (default: the first to answer). */
  readonly via?: string;
  /** With a TrustChain CA: how long to wait for the commit and publication (ms, default 60000). */
  readonly timeoutMs?: number;
  readonly falcon?: FalconBackend;
  readonly now?: () => Date;
  readonly progress?: (line: string) => void;
}

export interface AddedNode {
  readonly name: string;
  readonly dir: string;
  readonly configFile: string;
  /** Validator address (hex of the first 20 bytes of SHA-256 of the Ed25519 key). */
  readonly id: string;
  /** The Ed25519 key, hex. */
  readonly publicKey: string;
  /** The storage plot's root, hex: what `stake create-validator` registers. */
  readonly storageRoot: string;
  readonly stoq: { readonly host: string; readonly port: number };
  readonly metrics: { readonly host: string; readonly port: number } | null;
  readonly peers: readonly string[];
}

/** A node of the cluster directory: a subdirectory holding a node configuration. */
interface ExistingNode {
  readonly dirName: string;
  readonly config: ValidatorNodeConfig;
}

/** Every `DIR/<sub>/config.json`: the genesis validators and nodes added before. */
async function existingNodes(dir: string): Promise<ExistingNode[]> {
  const nodes: ExistingNode[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  )) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const file = path.join(dir, entry.name, CLUSTER_FILES.nodeConfig);
    if ((await stat(file).catch(() => null)) === null) continue;
    nodes.push({ dirName: entry.name, config: await loadValidatorNodeConfig(file, {}) });
  }
  return nodes;
}

function checkPort(value: number | null | undefined, flag: string): void {
  if (value === undefined || value === null) return;
  if (!Number.isInteger(value) || value < 0 || value > 65_535) {
    throw new CliError(`--${flag} must be a port from 0 to 65535, got ${String(value)}`);
  }
}

async function exists(file: string): Promise<boolean> {
  return (await stat(file).catch(() => null)) !== null;
}

/** Resolves the ports: fixed ones as given, 0 to distinct free ports of `host` (UDP and TCP). */
async function resolvePorts(
  host: string,
  wanted: readonly (number | null)[],
): Promise<(number | null)[]> {
  const free = wanted.filter((port) => port === 0).length;
  const fixed = wanted.filter((port): port is number => port !== null && port !== 0);
  if (new Set(fixed).size !== fixed.length) {
    throw new CliError(`the ports ${fixed.join(', ')} must differ`);
  }
  const found = free === 0 ? [] : await findFreePorts(host, free + fixed.length);
  const available = found.filter((port) => !fixed.includes(port));
  return wanted.map((port) => (port === 0 ? (available.shift() as number) : port));
}

export async function addClusterNode(options: AddNodeOptions): Promise<AddedNode> {
  const dir = path.resolve(options.clusterDir);
  const { name } = options;
  if (!NODE_NAME_PATTERN.test(name)) {
    throw new CliError(
      `--name "${name}" must be a node name: lowercase letters, digits and "-", at most 63, starting with a letter or digit`,
    );
  }
  for (const [flag, value] of [
    ['port', options.port],
    ['metrics-port', options.metricsPort],
    ['dns-port', options.dnsPort],
    ['doq-port', options.doqPort],
  ] as const) {
    checkPort(value, flag);
  }
  const genesisFile = path.join(dir, CLUSTER_FILES.genesis);
  const genesis: GenesisDocument = await readGenesisFile(genesisFile);
  // Held from the name check to the manifest entry, and taken before the cluster is asked for
  // anything: a run that could not record its node would have issued a certificate for nothing.
  // A Ctrl-C (or SIGTERM) from here on removes the lock and the staging directory, then exits.
  const interrupt = exitOnInterrupt('cluster add-node');
  try {
    const manifest = await lockAddedNodes(dir);
    interrupt.removeOnInterrupt(manifest.lockFile);
    try {
      // What an earlier run killed mid-way left (`.NAME.tmp-<pid>-` and mkdtemp's six random
      // characters: the node's keys).
      for (const stale of await removeStaleStagingDirs(dir, (entry) => entry.startsWith('.'))) {
        options.progress?.(`removed ${stale}, left by an interrupted cluster add-node`);
      }
      return await addLockedNode(options, dir, genesis, manifest, interrupt);
    } finally {
      await manifest.release();
    }
  } finally {
    interrupt.dispose();
  }
}

/** `addClusterNode` once the manifest lock is held. */
async function addLockedNode(
  options: AddNodeOptions,
  dir: string,
  genesis: GenesisDocument,
  manifest: AddedNodesLock,
  interrupt: InterruptGuard,
): Promise<AddedNode> {
  const { name } = options;
  const progress = options.progress ?? (() => undefined);
  const nodes = await existingNodes(dir);
  if (nodes.length === 0) {
    throw new CliError(`${dir} holds no node directories (DIR/<name>/config.json)`);
  }
  const target = path.join(dir, name);
  if (
    genesis.validators.some((validator) => validator.name === name) ||
    nodes.some((node) => node.config.name === name || node.dirName === name) ||
    (await manifest.nodes()).some((node) => node.name === name) ||
    (await exists(target))
  ) {
    throw new CliError(`the cluster in ${dir} already has a node "${name}" (or a ${target})`);
  }
  // With a TrustChain CA the cluster issues the certificate (add-node-certificate.ts); without
  // one the development CA signs it here.
  const withCa = genesis.app?.ca !== undefined;
  const lifetimeSeconds = withCa ? nodeCertificateLifetime(options.validityDays) : 0;
  if (!withCa && (options.via !== undefined || options.timeoutMs !== undefined)) {
    throw new CliError(
      '--node and --timeout-ms apply to a cluster with a TrustChain CA (genesis app.ca); this one signs with its development CA',
    );
  }
  const devCa = withCa ? null : await loadClusterDevCa(dir, genesis);
  const template = (nodes.find((node) => node.config.name === genesis.validators[0]?.name) ??
    nodes[0]) as ExistingNode;
  const host = options.host ?? template.config.stoq.host;
  const dnsTemplate = template.config.dns;
  const wantsDns = dnsTemplate !== null && options.dnsPort !== null;
  const [stoqPort, metricsPort, dnsPort, doqPort] = (await resolvePorts(host, [
    options.port ?? 0,
    options.metricsPort === null ? null : (options.metricsPort ?? 0),
    wantsDns ? (options.dnsPort ?? 0) : null,
    wantsDns && dnsTemplate.doq.length > 0 && options.doqPort !== null
      ? (options.doqPort ?? 0)
      : null,
  ])) as [number, number | null, number | null, number | null];
  const falcon = options.falcon ?? defaultFalcon();
  const now = options.now ?? (() => new Date());
  // Fails here, before anything is written, when no node of the cluster answers.
  const certificates: NodeCertificateWriter | null = withCa
    ? await openNodeCertificateWriter({
        clusterDir: dir,
        genesis,
        ...(options.via === undefined ? {} : { via: options.via }),
        lifetimeSeconds,
        timeoutMs: options.timeoutMs ?? ADD_NODE_TIMEOUT_MS,
        falcon,
        now,
        progress,
      })
    : null;
  try {
    return await writeNode({
      dir,
      name,
      genesis,
      nodes,
      template,
      host,
      ports: { stoqPort, metricsPort, dnsPort, doqPort },
      wantsDns,
      devCa,
      certificates,
      manifest,
      interrupt,
      validityDays: options.validityDays ?? 365,
      falcon,
      now,
      progress,
    });
  } finally {
    await certificates?.close();
  }
}

/** The development CA in `DIR/ca/` (a cluster without a TrustChain CA). */
async function loadClusterDevCa(
  dir: string,
  genesis: GenesisDocument,
): Promise<Awaited<ReturnType<typeof loadDevCa>>> {
  const caDir = path.join(dir, CLUSTER_FILES.caDir);
  const loaded = await loadDevCa(caDir).catch((error: unknown) => {
    throw new CliError(
      `cannot load the cluster CA in ${caDir} (${(error as Error).message}); add-node signs the node's certificate with it`,
    );
  });
  if (loaded.cluster !== genesis.chainId) {
    throw new CliError(
      `the CA in ${caDir} is for cluster "${loaded.cluster}", but the genesis is of chain "${genesis.chainId}"`,
    );
  }
  return loaded;
}

/** Writes the node's directory into a staging sibling, renames it into place and records it. */
async function writeNode(options: {
  readonly dir: string;
  readonly name: string;
  readonly genesis: GenesisDocument;
  readonly nodes: readonly ExistingNode[];
  readonly template: ExistingNode;
  readonly host: string;
  readonly ports: {
    readonly stoqPort: number;
    readonly metricsPort: number | null;
    readonly dnsPort: number | null;
    readonly doqPort: number | null;
  };
  readonly wantsDns: boolean;
  readonly devCa: Awaited<ReturnType<typeof loadDevCa>> | null;
  readonly certificates: NodeCertificateWriter | null;
  readonly manifest: AddedNodesLock;
  readonly interrupt: InterruptGuard;
  readonly validityDays: number;
  readonly falcon: FalconBackend;
  readonly now: () => Date;
  readonly progress: (line: string) => void;
}): Promise<AddedNode> {
  const { dir, name, genesis, nodes, template, host, wantsDns, falcon, now, progress } = options;
  const { stoqPort, metricsPort, dnsPort, doqPort } = options.ports;
  const dnsTemplate = template.config.dns;
  const target = path.join(dir, name);
  const withCa = options.certificates !== null;
  const staging = await createStagingDir(path.join(dir, `.${name}.tmp-`));
  options.interrupt.removeOnInterrupt(staging);
  try {
    progress(`cluster "${genesis.chainId}" in ${dir}: adding node ${name}`);
    const keys = await generateNodeIdentity(falcon);
    if (options.devCa !== null) {
      await issueDevIdentity({
        ca: options.devCa.ca,
        cluster: options.devCa.cluster,
        name,
        role: 'node',
        outDir: staging,
        validityDays: options.validityDays,
        keys,
        now: now(),
      });
    }
    const publicKey = ed25519RawPublicKey(keys.ed25519.publicKey);
    const plot = buildStoragePlotFor(genesis.proof.space, publicKey);
    await saveStoragePlot(path.join(staging, CLUSTER_FILES.storagePlot), plot);
    // With a TrustChain CA: the node's intermediate key and its public request, for the
    // governed procedure (docs/ca.md, "Adding a validator's intermediate").
    if (withCa) {
      await writeIntermediateRequest({
        nodeDir: staging,
        name,
        account: publicKey,
        falconKeys: keys.falcon,
        falcon,
      });
    }
    // The zone-signing keys are the cluster's (the same file in every node directory).
    const dnssecKeys: { zone: string; keyFile: string }[] = [];
    if (wantsDns && dnsTemplate !== null) {
      for (const entry of dnsTemplate.dnssecKeys) {
        const keyFile = path.basename(entry.keyFile);
        await copyFile(entry.keyFile, path.join(staging, keyFile));
        dnssecKeys.push({ zone: entry.zone, keyFile });
      }
    }
    const stoq = { host, port: stoqPort };
    const metrics = metricsPort === null ? null : { host, port: metricsPort };
    const dnsAddress = dnsPort === null ? null : { host, port: dnsPort };
    const peers = nodes.map((node) => ({
      name: node.config.name,
      address: { host: node.config.stoq.host, port: node.config.stoq.port },
    }));
    const unreachable = peers.filter((peer) => peer.address.port === 0);
    if (unreachable.length > 0) {
      throw new CliError(
        `node(s) ${unreachable.map((peer) => peer.name).join(', ')} listen on port 0 (chosen at start): give them fixed ports first`,
      );
    }
    // The file's form: fields this node does not use keep their defaults.
    const config: z.input<typeof validatorNodeConfigSchema> = {
      name,
      dataDir: CLUSTER_FILES.dataDir,
      genesisFile: path.join('..', CLUSTER_FILES.genesis),
      identity: { keyFile: `${name}.key`, certificateFile: `${name}.pem` },
      trust: {
        rootsFile: withCa
          ? path.join('..', CA_FILES.dir, CA_FILES.root)
          : path.join('..', CLUSTER_FILES.caDir, DEV_CA_FILES.certificate),
      },
      storagePlotFile: CLUSTER_FILES.storagePlot,
      consensus: { ...template.config.consensus },
      stoq: {
        ...stoq,
        transport: template.config.stoq.transport,
        authMode: template.config.stoq.authMode,
      },
      metrics,
      peers,
      dns:
        dnsAddress === null
          ? null
          : {
              udp: [dnsAddress],
              tcp: [dnsAddress],
              doq: doqPort === null ? [] : [{ host, port: doqPort }],
              dnssecKeys,
            },
      // Publishes once its intermediate is in effect in committed state (ca-node.ts); until
      // then it checks publications like any node.
      ca: withCa ? nodeCaConfig() : null,
      ct: null,
      logLevel: 'info',
    };
    await writeFile(
      path.join(staging, CLUSTER_FILES.nodeConfig),
      `${JSON.stringify(config, null, 2)}\n`,
      { flag: 'wx', mode: 0o644 },
    );
    // The consensus request is the last step: nothing is issued when a step above fails.
    const issued =
      options.certificates === null
        ? null
        : await options.certificates.issue({ outDir: staging, name, keys, host });
    await mkdir(path.dirname(target), { recursive: true });
    await sealStagingDir(staging);
    // Renamed and recorded, or neither: an interrupt waits for both.
    await options.interrupt.uninterrupted(async () => {
      await rename(staging, target);
      try {
        await options.manifest.append({
          name,
          publicKey: toHex(publicKey),
          addedAt: now().toISOString(),
        });
      } catch (error) {
        // Not recorded, not added: the directory goes too, so a retry starts clean.
        await rm(target, { recursive: true, force: true });
        throw error;
      }
      // Added: an interrupt now must neither remove it nor say it was undone.
      options.interrupt.completed(staging, `node ${name} is in ${target} and recorded`);
    });
    const id = validatorAddress(publicKey);
    progress(
      `  ${name.padEnd(8)}  ${id}  keys, certificate (role node)${issued === null ? '' : ` from the TrustChain CA (serial ${issued.serial})`}${withCa ? ', CA intermediate key and request' : ''}, storage plot (${genesis.proof.space.blockCount} blocks, root ${toHex(plot.root)})  stoq ${host}:${stoq.port}${metrics === null ? '' : `  metrics ${host}:${metrics.port}`}${dnsAddress === null ? '' : `  dns ${host}:${dnsAddress.port}`}`,
    );
    progress(`  peers     ${peers.map((peer) => peer.name).join(', ')}`);
    return {
      name,
      dir: target,
      configFile: path.join(target, CLUSTER_FILES.nodeConfig),
      id,
      publicKey: toHex(publicKey),
      storageRoot: toHex(plot.root),
      stoq,
      metrics,
      peers: peers.map((peer) => peer.name),
    };
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}
