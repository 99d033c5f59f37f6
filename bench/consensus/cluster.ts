import { execFileSync, spawn } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeRpcClient } from '../../src/consensus/net/index.js';
import {
  DEV_PROOF_PARAMS,
  type GenesisConsensusParams,
  type GenesisDocument,
} from '../../src/consensus/genesis.js';
import { initCluster, type ClusterInitResult } from '../../src/node/cluster-init.js';
import { readGenesisFile } from '../../src/node/cluster-layout.js';
import {
  COMMIT_LOG_MESSAGE,
  spawnValidator,
  type ValidatorProcess,
} from '../../src/node/node-process.js';
import {
  loadClusterTarget,
  openOperatorSession,
  type ClusterTarget,
  type OperatorSession,
} from '../../src/node/operator.js';

/**
 * A local cluster for the consensus benchmark: the genesis ceremony in a temporary directory,
 * one `hypermesh node start` child process per validator (the built bin, as an operator runs
 * it), every node's "block committed" log followed with its own timestamp, and `connections`
 * operator client endpoints — each one its own QUIC connection to every node.
 */
export interface CommitEvent {
  readonly node: string;
  readonly height: number;
  /** The round the block was decided in (0 unless earlier rounds failed). */
  readonly round: number;
  readonly txs: number;
  /** The node's wall clock when it logged the commit (ms since the epoch). */
  readonly time: number;
}

export interface BenchCluster {
  /** What the genesis ceremony wrote, including the Caesar treasury key (`layout.ledger`). */
  readonly layout: ClusterInitResult;
  readonly genesis: GenesisDocument;
  readonly names: readonly string[];
  readonly processes: readonly ValidatorProcess[];
  /** Client endpoints (operator identity); `client(c, node)` uses connection `c`. */
  client(connection: number, node: string): NodeRpcClient;
  readonly connections: number;
  onCommit(listener: (event: CommitEvent) => void): void;
  /** Warnings and errors the nodes logged, with a count per message. */
  readonly nodeWarnings: Map<string, number>;
  /** CPU seconds (user + system) the node processes have used so far (Linux /proc). */
  nodeCpuSeconds(): Promise<number>;
  close(): Promise<void>;
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, await newestMtime(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, (await stat(full)).mtimeMs);
  }
  return newest;
}

/**
 * The node processes run the built bin (dist/). If a source file is newer than the build, the
 * build is run first (`tsc -p tsconfig.build.json`), so the benchmark never measures stale code.
 */
export async function ensureBuilt(progress: (message: string) => void): Promise<void> {
  const cli = path.join(repoRoot, 'dist', 'node', 'cli.js');
  const built = await stat(cli).then(
    (info) => info.mtimeMs,
    () => 0,
  );
  if (built >= (await newestMtime(path.join(repoRoot, 'src')))) return;
  progress('dist/ is older than src/: building (tsc -p tsconfig.build.json)');
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
      cwd: repoRoot,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.once('exit', resolve);
  });
  // tsc emits even when it reports type errors; a missing entry point is what stops us.
  const after = await stat(cli).then(
    (info) => info.mtimeMs,
    () => 0,
  );
  if (after === 0) throw new Error(`the build failed (tsc exited with ${code})`);
  if (code !== 0) progress(`tsc exited with ${code}; running the emitted build anyway`);
}

export async function startBenchCluster(options: {
  readonly dir: string;
  readonly validators: number;
  readonly stampDifficulty: number;
  readonly connections: number;
  readonly progress: (message: string) => void;
  readonly startTimeoutMs?: number;
  /** Consensus parameters of the genesis (default: what `cluster init` writes). */
  readonly consensus?: GenesisConsensusParams;
  /**
   * Install the service catalog (`app.discovery`): the nodes serve `hypermesh.discovery.v1`,
   * register their own services and run their health checks (default: off, see below).
   */
  readonly discovery?: boolean;
}): Promise<BenchCluster> {
  const layout = await initCluster({
    out: options.dir,
    validators: options.validators,
    chainId: 'bench-consensus',
    basePort: 0,
    metricsBasePort: 0,
    proofParams: {
      ...DEV_PROOF_PARAMS,
      work: { stampDifficulty: options.stampDifficulty },
    },
    ...(options.consensus === undefined ? {} : { consensus: options.consensus }),
    // Consensus and the ledger only: no DNS servers, no service registrations or health checks,
    // no CA publications running beside the measured load (comparable with earlier runs),
    // unless the benchmark measures the catalog itself (`discovery`).
    dns: false,
    discovery: options.discovery ?? false,
    ca: false,
  });
  const started = await spawnBenchCluster(layout, { ...options, open: openOperatorSession });
  const { sessions } = started;
  return {
    ...started,
    client: perConnection(sessions.length, (connection, node) =>
      (sessions[connection] as OperatorSession).client(node),
    ),
  };
}

const CLOCK_TICKS =
  Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime + stime of process `pid` in seconds (proc(5): fields 14 and 15 of /proc/PID/stat). */
async function processCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** What `spawnBenchCluster` started: a `BenchCluster` but for its clients, and the sessions. */
export type SpawnedBenchCluster<S> = Omit<BenchCluster, 'client'> & { readonly sessions: S[] };

/**
 * Starts the layout's nodes (`spawnWatchedValidators`), waits until each has committed height 2,
 * and opens `connections` operator sessions with `open`; stops what it started if that fails.
 */
export async function spawnBenchCluster<S extends { close(): Promise<void> }>(
  layout: ClusterInitResult,
  options: {
    readonly connections: number;
    readonly progress: (message: string) => void;
    readonly startTimeoutMs?: number;
    readonly open: (target: ClusterTarget) => Promise<S>;
  },
): Promise<SpawnedBenchCluster<S>> {
  const genesis = await readGenesisFile(layout.genesisFile);
  const { processes, listeners, nodeWarnings } = spawnWatchedValidators(
    layout.nodes,
    options.progress,
  );
  const sessions: S[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(sessions.map((session) => session.close().catch(() => undefined)));
    await Promise.all(processes.map((child) => child.stop(5_000)));
  };
  try {
    await Promise.all(processes.map((child) => child.ready));
    const timeout = options.startTimeoutMs ?? 60_000;
    await Promise.all(processes.map((child) => child.waitForHeight(2, timeout)));
    const target = await loadClusterTarget(layout.dir);
    for (let i = 0; i < options.connections; i++) sessions.push(await options.open(target));
  } catch (error) {
    await close();
    throw error;
  }
  return {
    layout,
    genesis,
    names: layout.nodes.map((node) => node.name),
    processes,
    connections: sessions.length,
    sessions,
    onCommit: (listener) => listeners.push(listener),
    nodeWarnings,
    nodeCpuSeconds: async () => {
      const seconds = await Promise.all(
        processes.map((child) =>
          child.child.pid === undefined ? 0 : processCpuSeconds(child.child.pid),
        ),
      );
      return seconds.reduce((sum, value) => sum + value, 0);
    },
    close,
  };
}

/** `make(connection mod connections, node)`, made once per connection and node. */
export function perConnection<T>(
  connections: number,
  make: (connection: number, node: string) => T,
): (connection: number, node: string) => T {
  const made = new Map<string, T>();
  return (connection, node) => {
    const index = connection % connections;
    const key = `${index}/${node}`;
    let value = made.get(key);
    if (value === undefined) {
      value = make(index, node);
      made.set(key, value);
    }
    return value;
  };
}

/**
 * Starts one `hypermesh node start` child per node, echoing its output through `progress`,
 * counting its warnings and errors by message, and turning its commit log lines into
 * `CommitEvent`s for the returned listeners.
 */
export function spawnWatchedValidators(
  nodes: readonly { readonly name: string; readonly dir: string; readonly configFile: string }[],
  progress: (message: string) => void,
): {
  processes: ValidatorProcess[];
  listeners: Array<(event: CommitEvent) => void>;
  nodeWarnings: Map<string, number>;
} {
  const listeners: Array<(event: CommitEvent) => void> = [];
  const nodeWarnings = new Map<string, number>();
  const processes = nodes.map((node) => {
    const child = spawnValidator(node.name, node.configFile, {
      logFile: path.join(node.dir, 'node.log'),
    });
    child.onOutput((line) => progress(`[${node.name}] ${line}`));
    child.onLog((entry) => {
      if (entry.level === 'warn' || entry.level === 'error') {
        const key = `${String(entry.level)}: ${String(entry.msg)}`;
        nodeWarnings.set(key, (nodeWarnings.get(key) ?? 0) + 1);
      }
      if (
        entry.msg !== COMMIT_LOG_MESSAGE ||
        typeof entry.height !== 'number' ||
        typeof entry.txs !== 'number' ||
        typeof entry.round !== 'number' ||
        typeof entry.time !== 'string'
      ) {
        return;
      }
      const event: CommitEvent = {
        node: node.name,
        height: entry.height,
        round: entry.round,
        txs: entry.txs,
        time: Date.parse(entry.time),
      };
      for (const listener of listeners) listener(event);
    });
    return child;
  });
  return { processes, listeners, nodeWarnings };
}
