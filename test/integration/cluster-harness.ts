import { EventEmitter } from 'node:events';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NodeRpcClient, NodeStatusRecord } from '../../src/consensus/net/index.js';
import type { GenesisDocument } from '../../src/consensus/genesis.js';
import type { ClusterLayout } from '../../src/node/cluster-init.js';
import { readClusterLayout, readGenesisFile } from '../../src/node/cluster-layout.js';
import { spawnValidator, type ValidatorProcess } from '../../src/node/node-process.js';
import {
  loadClusterTarget,
  openOperatorSession,
  type OperatorSession,
} from '../../src/node/operator.js';
import { spawnHypermesh } from '../../src/node/process.js';
import { killValidators } from '../helpers/nodes.js';

/**
 * A local cluster of real `hypermesh node start` processes for integration tests, created with
 * the real `hypermesh cluster init` (both from the built bin, like the node tests). It follows
 * every node's JSON logs: each "block committed" line (height, hash) is checked against every
 * other node's commit at that height, so a fork is caught the moment any process logs it. The
 * operator identity from `cluster init` reaches the nodes' API over STOQ. Waits are driven by
 * those log lines (and by nodes becoming ready or exiting), never by a timer: see `eventually`
 * and `commitWithin`.
 */
export interface TestCluster {
  readonly dir: string;
  readonly layout: ClusterLayout;
  readonly genesis: GenesisDocument;
  readonly names: readonly string[];
  /** Starts (or restarts) a node process and waits for its ready line. */
  start(name: string): Promise<ValidatorProcess>;
  /** SIGKILL, then waits until the process is gone. */
  kill(name: string): Promise<void>;
  running(name: string): boolean;
  live(): string[];
  /** The node API of `name`, over the operator's STOQ endpoint. */
  client(name: string): NodeRpcClient;
  status(name: string): Promise<NodeStatusRecord>;
  /** The node's committed height from its API (`status`). */
  committedHeight(name: string): Promise<number>;
  /** Every (height → block hash) any node has logged as committed, and conflicts seen. */
  readonly commits: CommitLedger;
  /**
   * Resolves with the first commit any node logs from now on, or with null if none is logged
   * within `ms`. The window is the assertion itself where a test shows that nothing is committed
   * (or that heights have settled); to wait for progress, use `eventually`.
   */
  commitWithin(ms: number): Promise<LoggedCommit | null>;
  /** The tail of a node's log file, for failure messages. */
  logTail(name: string, lines?: number): Promise<string>;
  /** Kills every child, closes the operator session, removes the directory. Never throws. */
  close(): Promise<void>;
}

/** A "block committed" line of a node's log. */
export interface LoggedCommit {
  readonly node: string;
  readonly height: number;
  readonly hash: string;
}

/**
 * What integration tests wait on announces itself here: every "block committed" line a node
 * logs, every node that becomes ready and every node process that exits. `eventually` re-runs
 * its check on each.
 */
const activity = new EventEmitter();
activity.setMaxListeners(0);
const ACTIVITY = 'activity';

function noteActivity(): void {
  activity.emit(ACTIVITY);
}

/** The commits every node logged, keyed by height; a second hash at a height is a fork. */
export class CommitLedger {
  private readonly byHeight = new Map<number, { hash: string; node: string }>();
  readonly forks: string[] = [];

  record(node: string, height: number, hash: string): void {
    const seen = this.byHeight.get(height);
    if (seen === undefined) {
      this.byHeight.set(height, { hash, node });
    } else if (seen.hash !== hash) {
      this.forks.push(`height ${height}: ${seen.node} committed ${seen.hash}, ${node} ${hash}`);
    }
  }

  hashAt(height: number): string | undefined {
    return this.byHeight.get(height)?.hash;
  }

  get maxHeight(): number {
    let max = 0;
    for (const height of this.byHeight.keys()) max = Math.max(max, height);
    return max;
  }
}

const CALL_DEADLINE_MS = 3_000;

export async function createTestCluster(validators: number): Promise<TestCluster> {
  const dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-it-'));
  const clusterDir = path.join(dir, 'cluster');
  const processes = new Map<string, ValidatorProcess>();
  const commits = new CommitLedger();
  /** This cluster's commit lines, as they are logged (for `commitWithin`). */
  const committed = new EventEmitter<{ commit: [LoggedCommit] }>();
  committed.setMaxListeners(0);
  let session: OperatorSession | undefined;

  const killAll = async (): Promise<void> => {
    await killValidators(processes.values());
  };
  const close = async (): Promise<void> => {
    await killAll().catch(() => undefined);
    await session?.close().catch(() => undefined);
    if (process.env.HM_IT_KEEP === undefined)
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    else process.stderr.write(`kept ${dir}\n`);
  };

  try {
    const init = spawnHypermesh('cluster-init', [
      'cluster',
      'init',
      '--validators',
      String(validators),
      '--out',
      clusterDir,
      '--chain-id',
      'it-cluster',
      '--base-port',
      '0',
      '--metrics-base-port',
      '0',
    ]);
    const initOutput: string[] = [];
    init.onOutput((line) => initOutput.push(line));
    const exit = await init.exited;
    if (exit.code !== 0) {
      throw new Error(`cluster init exited with ${exit.code}:\n${initOutput.join('\n')}`);
    }
    const layout = await readClusterLayout(clusterDir);
    const genesis = await readGenesisFile(layout.genesisFile);
    session = await openOperatorSession(await loadClusterTarget(clusterDir));
    const operator = session;
    const logFile = (name: string): string => path.join(dir, `${name}.log`);
    const names = layout.nodes.map((node) => node.name);
    const configOf = (name: string): string => {
      const node = layout.nodes.find((entry) => entry.name === name);
      if (node === undefined) throw new Error(`no node ${name} in the cluster`);
      return node.configFile;
    };
    const running = (name: string): boolean => {
      const node = processes.get(name);
      return node !== undefined && node.child.exitCode === null && node.child.signalCode === null;
    };
    const status = (name: string): Promise<NodeStatusRecord> =>
      operator.client(name).status({ deadlineMs: CALL_DEADLINE_MS });

    return {
      dir: clusterDir,
      layout,
      genesis,
      names,
      commits,
      start: async (name) => {
        if (running(name)) throw new Error(`${name} is already running`);
        await appendFile(logFile(name), `--- start ${new Date().toISOString()}\n`);
        const node = spawnValidator(name, configOf(name), { logFile: logFile(name) });
        node.onLog((entry) => {
          if (
            entry.msg === 'block committed' &&
            typeof entry.height === 'number' &&
            typeof entry.hash === 'string'
          ) {
            commits.record(name, entry.height, entry.hash);
            committed.emit('commit', { node: name, height: entry.height, hash: entry.hash });
            noteActivity();
          }
        });
        void node.exited.then(noteActivity);
        processes.set(name, node);
        try {
          await node.ready;
        } catch (error) {
          throw new Error(`${(error as Error).message}\n${await tail(logFile(name), 30)}`);
        }
        noteActivity();
        return node;
      },
      kill: async (name) => {
        const node = processes.get(name);
        if (node === undefined || !running(name)) throw new Error(`${name} is not running`);
        node.child.kill('SIGKILL');
        const exit = await node.exited;
        if (exit.signal !== 'SIGKILL') {
          throw new Error(`${name} exited with ${JSON.stringify(exit)} instead of being killed`);
        }
      },
      running,
      live: () => names.filter(running),
      client: (name) => operator.client(name),
      status,
      committedHeight: async (name) => {
        const record = await status(name);
        const height = record.committedHeight;
        if (typeof height !== 'number') {
          throw new Error(`${name} status has no numeric committedHeight: ${String(height)}`);
        }
        return height;
      },
      commitWithin: (ms) =>
        new Promise<LoggedCommit | null>((resolve) => {
          const onCommit = (commit: LoggedCommit): void => {
            clearTimeout(window);
            resolve(commit);
          };
          // Not a failure deadline: the end of the window in which no commit was logged.
          const window = setTimeout(() => {
            committed.off('commit', onCommit);
            resolve(null);
          }, ms);
          committed.once('commit', onCommit);
        }),
      logTail: (name, lines = 20) => tail(logFile(name), lines),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function tail(file: string, lines: number): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .slice(-lines - 1)
    .join('\n');
}

/**
 * Runs `check` now and again after each node event (a "block committed" log line, a node ready
 * or exited: see `activity`) until it returns a value other than undefined; throws after `ms`
 * with `what` and the last value or error seen. One check runs at a time: events during a check
 * ask for one more check after it, however many they were.
 */
export async function eventually<T>(
  what: string,
  ms: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let last: unknown = 'nothing yet';
    let running = false;
    let again = false;
    let done = false;
    const finish = (outcome: { value: T } | { error: Error }): void => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      activity.off(ACTIVITY, onActivity);
      if ('value' in outcome) resolve(outcome.value);
      else reject(outcome.error);
    };
    const run = async (): Promise<void> => {
      running = true;
      do {
        again = false;
        try {
          const value = await check();
          if (value !== undefined) finish({ value });
          else last = 'not yet';
        } catch (error) {
          last = error instanceof Error ? error.message : error;
        }
      } while (again && !done);
      running = false;
    };
    const onActivity = (): void => {
      if (done) return;
      if (running) again = true;
      else void run();
    };
    // The only timer: the failure deadline.
    const deadline = setTimeout(
      () => finish({ error: new Error(`${what}: not within ${ms} ms (last: ${String(last)})`) }),
      ms,
    );
    activity.on(ACTIVITY, onActivity);
    void run();
  });
}
