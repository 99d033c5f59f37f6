import { access, rm } from 'node:fs/promises';
import path from 'node:path';
import { CliError } from './cli-error.js';
import { writeClusterFile, type ClusterFile } from './cluster-file.js';
import { CLUSTER_FILES, initCluster, type ClusterLayout } from './cluster-init.js';
import { readClusterLayout } from './cluster-layout.js';
import { refuseRunningNodes } from './cluster-running-nodes.js';
import type { ClusterPortOptions } from './cluster-ports.js';
import { DEFAULT_STOP_GRACE_MS } from './config.js';
import { spawnValidator, type ValidatorProcess } from './node-process.js';

/**
 * `hypermesh dev` (and `npm start`): a local cluster of validator processes on loopback. It
 * creates the cluster with the genesis ceremony (or reuses one from an earlier run), starts one
 * `hypermesh node start` process per validator, waits until every node has committed a block
 * since it started, writes `<dir>/cluster.json` and a summary, and runs until interrupted; then it stops
 * the nodes (SIGTERM, SIGKILL after a grace period, or at once on a second signal).
 */
/** Base ports for a newly created cluster (see `cluster init`); 0 picks free ports. */
type DevBasePorts = Pick<
  ClusterPortOptions,
  'basePort' | 'metricsBasePort' | 'dnsBasePort' | 'doqBasePort' | 'ctBasePort' | 'acmeBasePort'
>;

export interface DevClusterOptions extends DevBasePorts {
  readonly dir: string;
  readonly nodes: number;
  readonly host: string;
  readonly chainId?: string;
  /** How long to wait for every node's first commit (default 120 s). */
  readonly startTimeoutMs?: number;
  readonly stopGraceMs?: number;
  readonly out: (line: string) => void;
  /** Resolves when the cluster should stop (SIGINT, SIGTERM, SIGHUP). */
  readonly interrupted: Promise<void>;
  /** Resolves when the nodes are to be killed at once (a second signal): SIGKILL, no grace. */
  readonly forced?: Promise<void>;
}

/** The signals `hypermesh dev` stops on: Ctrl-C, a service manager, a terminal that closed. */
export const DEV_STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Stop requests to `hypermesh dev`: the first stops the cluster, a second kills its nodes. */
export interface DevStopRequests {
  /** Resolves with the first request (a signal's name, or `reason` of `stop`). */
  readonly first: Promise<string>;
  /** Resolves with the second signal. */
  readonly second: Promise<string>;
  /** A request that is not a signal (the output is lost): stops, never escalates. */
  stop(reason: string): void;
  /** Removes the signal handlers. */
  dispose(): void;
}

/**
 * Follows `DEV_STOP_SIGNALS` until `dispose`, with handlers that stay: with a one-shot handler a
 * second Ctrl-C, or SIGHUP when the terminal closes, would end dev by the signal's default
 * action, leaving cluster.json behind and nodes whose log pipe nobody reads.
 */
export function followDevStopRequests(): DevStopRequests {
  let resolveFirst: (reason: string) => void = () => undefined;
  let resolveSecond: (reason: string) => void = () => undefined;
  const first = new Promise<string>((resolve) => (resolveFirst = resolve));
  const second = new Promise<string>((resolve) => (resolveSecond = resolve));
  let requests = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    requests += 1;
    if (requests === 1) resolveFirst(signal);
    else resolveSecond(signal);
  };
  for (const signal of DEV_STOP_SIGNALS) process.on(signal, onSignal);
  return {
    first,
    second,
    stop(reason) {
      if (requests > 0) return;
      requests = 1;
      resolveFirst(reason);
    },
    dispose() {
      for (const signal of DEV_STOP_SIGNALS) process.off(signal, onSignal);
    },
  };
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** Why an existing cluster directory cannot be reused as asked, or null if it can. */
function mismatch(layout: ClusterLayout, options: DevClusterOptions): string | null {
  if (layout.nodes.length !== options.nodes) {
    return `it has ${layout.nodes.length} validators, ${options.nodes} were asked for`;
  }
  if (options.chainId !== undefined && layout.chainId !== options.chainId) {
    return `its chain id is "${layout.chainId}", not "${options.chainId}"`;
  }
  const other = layout.nodes.find((node) => node.stoq.host !== options.host);
  if (other) return `${other.name} listens on ${other.stoq.host}, not ${options.host}`;
  return null;
}

/**
 * Reuses the cluster in `options.dir` when it matches, else creates it; a cluster that does not
 * match is replaced only when dev created it (`CLUSTER_FILES.devMarker`) and none of its nodes
 * runs, so a directory of `cluster init` (CA root keys, treasury key) is never deleted.
 */
export async function ensureDevCluster(options: DevClusterOptions): Promise<ClusterLayout> {
  const dir = path.resolve(options.dir);
  let force = false;
  if (await exists(path.join(dir, CLUSTER_FILES.genesis))) {
    let layout: ClusterLayout;
    try {
      layout = await readClusterLayout(dir);
    } catch (error) {
      const reason = error instanceof CliError ? error.message : String(error);
      throw new CliError(
        `the cluster in ${dir} cannot be read: ${reason}\nfix it, or remove ${dir} to start afresh`,
        1,
      );
    }
    const reason = mismatch(layout, options);
    if (reason === null) {
      options.out(`reusing the cluster in ${dir} (chain "${layout.chainId}")`);
      return layout;
    }
    if (!(await exists(path.join(dir, CLUSTER_FILES.devMarker)))) {
      throw new CliError(
        `the cluster in ${dir} does not match (${reason}) and was not created by "hypermesh dev" (no ${CLUSTER_FILES.devMarker}), so dev will not delete it: pass another --dir, or remove ${dir} yourself`,
        1,
      );
    }
    // Replacing deletes its keys and chain data: never under running nodes.
    await refuseRunningNodes(dir, 'replace it with another dev cluster');
    options.out(`replacing the cluster in ${dir}: ${reason}`);
    force = true;
  }
  return initCluster({
    out: dir,
    validators: options.nodes,
    host: options.host,
    force,
    devMarker: true,
    ...(options.chainId === undefined ? {} : { chainId: options.chainId }),
    ...(options.basePort === undefined ? {} : { basePort: options.basePort }),
    ...(options.metricsBasePort === undefined ? {} : { metricsBasePort: options.metricsBasePort }),
    ...(options.dnsBasePort === undefined ? {} : { dnsBasePort: options.dnsBasePort }),
    ...(options.doqBasePort === undefined ? {} : { doqBasePort: options.doqBasePort }),
    ...(options.ctBasePort === undefined ? {} : { ctBasePort: options.ctBasePort }),
    ...(options.acmeBasePort === undefined ? {} : { acmeBasePort: options.acmeBasePort }),
    progress: options.out,
  });
}

interface ReadyLine {
  readonly node: string;
  readonly id: string;
  readonly stoq: { host: string; port: number };
  readonly metrics: string | null;
  readonly dns?: {
    udp: { host: string; port: number }[];
    tcp: { host: string; port: number }[];
    doq?: { host: string; port: number }[];
  } | null;
}

type HostPort = { host: string; port: number };

/** The `dns` of a ready line: null, or UDP, TCP (and DoQ) lists of addresses. */
function readyDns(
  value: unknown,
): { udp: HostPort[]; tcp: HostPort[]; doq: HostPort[] } | null | undefined {
  if (value === undefined || value === null) return null;
  const isAddress = (a: unknown): a is HostPort =>
    typeof (a as HostPort)?.host === 'string' && typeof (a as HostPort)?.port === 'number';
  const { udp, tcp, doq = [] } = value as { udp?: unknown; tcp?: unknown; doq?: unknown };
  if (!Array.isArray(udp) || !Array.isArray(tcp) || !Array.isArray(doq)) return undefined;
  if (!udp.every(isAddress) || !tcp.every(isAddress) || !doq.every(isAddress)) return undefined;
  const strip = (list: HostPort[]): HostPort[] => list.map(({ host, port }) => ({ host, port }));
  return { udp: strip(udp), tcp: strip(tcp), doq: strip(doq) };
}

function isReadyLine(value: Record<string, unknown>): value is Record<string, unknown> & ReadyLine {
  const stoq = value.stoq as { host?: unknown; port?: unknown } | undefined;
  return (
    typeof value.node === 'string' &&
    typeof value.id === 'string' &&
    typeof stoq?.host === 'string' &&
    typeof stoq.port === 'number' &&
    (value.metrics === null || typeof value.metrics === 'string') &&
    readyDns(value.dns) !== undefined
  );
}

function hostPort(address: HostPort): string {
  return `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
}

/** The last lines a node wrote (errors above all), to say why it stopped. */
function followLastWords(node: ValidatorProcess): () => string {
  const lines: string[] = [];
  const keep = (line: string): void => {
    lines.push(line);
    if (lines.length > 5) lines.shift();
  };
  node.onOutput(keep);
  node.onLog((entry) => {
    if (entry.level === 'error' || entry.level === 'warn') {
      keep(
        `${String(entry.level)}: ${String(entry.msg)}${entry.error ? ` ${JSON.stringify(entry.error)}` : ''}`,
      );
    }
  });
  return () => (lines.length === 0 ? '' : `\n    ${lines.join('\n    ')}`);
}

function table(rows: readonly string[][]): string[] {
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows.map(
    (row) =>
      `  ${row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd()}`,
  );
}

export async function runDevCluster(options: DevClusterOptions): Promise<number> {
  const started = performance.now();
  // Another dev (or node start) runs this cluster: its nodes would refuse to start anyway (their
  // data directories are locked), and its cluster.json must stay.
  await refuseRunningNodes(path.resolve(options.dir), 'run it again');
  // A stale file (a previous run killed before it could remove it) goes first, so it is gone
  // even when setting the cluster up fails: its presence means a running, committing cluster.
  await rm(path.join(options.dir, CLUSTER_FILES.clusterJson), { force: true });
  let interruptedNow = false;
  void options.interrupted.then(() => (interruptedNow = true));
  const layout = await ensureDevCluster(options);
  const clusterFile = path.join(layout.dir, CLUSTER_FILES.clusterJson);
  await rm(clusterFile, { force: true });
  if (interruptedNow) {
    // During the ceremony (SIGHUP, which the ceremony does not end on): no node is started.
    options.out('interrupted before the nodes were started');
    return 0;
  }

  let stopping = false;
  const nodes = layout.nodes.map((node) =>
    spawnValidator(node.name, node.configFile, {
      logFile: path.join(node.dir, 'node.log'),
      detached: true,
    }),
  );
  const lastWords = new Map(nodes.map((node) => [node, followLastWords(node)]));
  // A second signal: no more grace. Their output is read until they have exited.
  let killedNow = false;
  void options.forced?.then(() => {
    killedNow = true;
    stopping = true;
    options.out('second signal: killing the nodes');
    for (const node of nodes) {
      if (node.child.exitCode === null && node.child.signalCode === null) {
        node.child.kill('SIGKILL');
      }
    }
  });
  const crashed = new Promise<string>((resolve) => {
    for (const node of nodes) {
      void node.exited.then((exit) => {
        if (stopping) return;
        resolve(
          `${node.name} exited (code ${exit.code}, signal ${exit.signal}); its log is ${path.join(path.dirname(node.configFile), 'node.log')}${lastWords.get(node)?.() ?? ''}`,
        );
      });
    }
  });
  const interrupted = options.interrupted.then(() => 'interrupted' as const);
  const stopAll = async (): Promise<void> => {
    stopping = true;
    await Promise.all(nodes.map((node) => node.stop(options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS)));
  };

  try {
    options.out(
      `starting ${nodes.length} validator process(es); logs in ${layout.dir}/node-*/node.log`,
    );
    const timeoutMs = options.startTimeoutMs ?? 120_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<string>((resolve) => {
      timer = setTimeout(() => {
        const heights = nodes.map((node) => `${node.name} at height ${node.committedHeight()}`);
        resolve(
          `the cluster did not commit a block within ${timeoutMs} ms (${heights.join(', ')})`,
        );
      }, timeoutMs);
    });
    const startup = (async () => {
      const readies = await Promise.all(nodes.map((node) => node.ready));
      // A block committed after the start: the first block of a new chain, the next of an old one.
      await Promise.all(
        nodes.map((node, index) => {
          const height = (readies[index] as { height?: unknown }).height;
          return node.waitForHeight((typeof height === 'number' ? height : 0) + 1, timeoutMs);
        }),
      );
      return readies;
    })();
    // A node that exits early or a timeout is reported by `crashed` / `timedOut`, with the
    // node's last words; the startup promise only ever contributes its success.
    const startedUp = startup.then(
      (readies) => ({ readies }),
      () => new Promise<never>(() => undefined),
    );
    const outcome = await Promise.race([
      startedUp,
      crashed.then((reason) => ({ failed: reason })),
      timedOut.then((reason) => ({ failed: reason })),
      interrupted.then(() => ({ interrupted: true as const })),
    ]);
    clearTimeout(timer);
    if ('interrupted' in outcome) {
      options.out('interrupted before the cluster committed a block; stopping the nodes');
      return 0;
    }
    if ('failed' in outcome) {
      options.out(`the cluster failed to start: ${outcome.failed}`);
      return 1;
    }
    const readies = outcome.readies;
    const cluster: ClusterFile = {
      chainId: layout.chainId,
      createdAt: new Date().toISOString(),
      genesisFile: path.relative(layout.dir, layout.genesisFile),
      trustRootsFile: path.relative(layout.dir, layout.trustRootsFile),
      ...(typeof readies[0]?.trustBundle === 'string'
        ? { trustBundleFile: path.relative(layout.dir, readies[0].trustBundle) }
        : {}),
      operator: {
        keyFile: path.relative(layout.dir, layout.operator.keyFile),
        certificateFile: path.relative(layout.dir, layout.operator.certificateFile),
      },
      nodes: nodes.map((node, index) => {
        const ready = readies[index] as Record<string, unknown>;
        if (!isReadyLine(ready)) {
          throw new CliError(
            `${node.name} printed a malformed ready line: ${JSON.stringify(ready)}`,
            1,
          );
        }
        return {
          name: node.name,
          id: ready.id,
          stoq: ready.stoq,
          metrics: ready.metrics,
          dns: readyDns(ready.dns) ?? null,
          ct: typeof ready.ct === 'string' ? ready.ct : null,
          acme: typeof ready.acme === 'string' ? ready.acme : null,
          configFile: path.relative(layout.dir, node.configFile),
          pid: node.child.pid ?? null,
        };
      }),
    };
    await writeClusterFile(clusterFile, cluster);

    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    options.out('');
    options.out(
      `HyperMesh dev cluster "${layout.chainId}": ${nodes.length} validator(s) committing blocks, height ${Math.max(...nodes.map((node) => node.committedHeight()))} (${seconds} s)`,
    );
    for (const line of table([
      ['node', 'validator address', 'stoq (quic)', 'metrics', 'dns (udp+tcp)', 'doq', 'pid'],
      ...cluster.nodes.map((node) => [
        node.name,
        node.id,
        hostPort(node.stoq),
        node.metrics ?? '-',
        node.dns?.udp[0] === undefined ? '-' : hostPort(node.dns.udp[0]),
        node.dns?.doq?.[0] === undefined ? '-' : hostPort(node.dns.doq[0]),
        String(node.pid ?? '-'),
      ]),
    ])) {
      options.out(line);
    }
    if (cluster.trustBundleFile !== undefined) {
      options.out(`trust bundle  ${path.join(layout.dir, cluster.trustBundleFile)}`);
      options.out(
        `ct logs       ${cluster.nodes.map((node) => `${node.name} ${node.ct ?? '-'}`).join(', ')}`,
      );
    }
    if (cluster.nodes.some((node) => typeof node.acme === 'string')) {
      options.out(
        `acme          ${cluster.nodes.map((node) => `${node.name} ${node.acme ?? '-'}`).join(', ')}`,
      );
      options.out(
        `              clients trust ${path.join(layout.dir, cluster.trustRootsFile)} (the HTTPS certificates' CA)`,
      );
    }
    options.out(`cluster file  ${clusterFile}`);
    options.out(`status        hypermesh status --cluster ${clusterFile}`);
    options.out('Ctrl-C (or SIGTERM) stops the cluster.');

    const end = await Promise.race([interrupted, crashed.then((reason) => ({ failed: reason }))]);
    if (end !== 'interrupted') {
      options.out(`stopping the cluster: ${end.failed}`);
      return 1;
    }
    options.out('stopping the cluster');
    return 0;
  } finally {
    // The nodes it lists are going away: operator tools must not find them through it.
    await rm(clusterFile, { force: true });
    await stopAll();
    const exits = await Promise.all(nodes.map((node) => node.exited));
    const forced = nodes.filter((_, i) => exits[i]?.signal === 'SIGKILL').map((node) => node.name);
    if (forced.length > 0) {
      options.out(
        `killed ${killedNow ? 'on a second signal' : 'after the grace period'}: ${forced.join(', ')}`,
      );
    }
    options.out('all nodes stopped');
  }
}
