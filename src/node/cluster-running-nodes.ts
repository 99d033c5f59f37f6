import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { CliError } from './cli-error.js';
import {
  LOCK_FILE,
  dataDirLockHolder,
  describeElsewhere,
  type HolderElsewhere,
} from './data-dir-lock.js';
import { writeFileAtomically } from './io.js';

/**
 * The file in a node directory (the one holding its config.json) that names, as an absolute
 * path, the data directory a node started from that configuration uses when it is not the one
 * the configuration names (`HYPERMESH_DATA_DIR`): `node start` writes it, and removes it when it
 * stops, so that `runningClusterNodes` finds that node's lock too.
 */
export const DATA_DIR_MARKER = '.hypermesh-data-dir';

/** Records `dataDir` (absolute) in `nodeDir`'s `DATA_DIR_MARKER`, replacing what it named. */
export async function recordDataDir(nodeDir: string, dataDir: string): Promise<void> {
  await writeFileAtomically(path.join(nodeDir, DATA_DIR_MARKER), `${path.resolve(dataDir)}\n`);
}

/** Removes `nodeDir`'s `DATA_DIR_MARKER` if it still names `dataDir` (another start's stays). */
export async function forgetDataDir(nodeDir: string, dataDir: string): Promise<void> {
  const marker = path.join(nodeDir, DATA_DIR_MARKER);
  const named = await readFile(marker, 'utf8').catch(() => null);
  if (named?.trim() === path.resolve(dataDir)) await rm(marker, { force: true });
}

/** A node of a cluster directory whose data directory is locked by a running process. */
export interface RunningClusterNode {
  readonly node: string;
  readonly dataDir: string;
  readonly pid: number;
  /** Null for a process of this PID namespace on this host; else where its pid means it. */
  readonly elsewhere: HolderElsewhere | null;
}

/**
 * The data directories of a node directory: `data/`, the one its config.json names (`dataDir`)
 * and the one its `DATA_DIR_MARKER` names (a node started with `HYPERMESH_DATA_DIR`).
 */
async function nodeDataDirs(nodeDir: string): Promise<string[]> {
  const dirs = new Set([path.join(nodeDir, 'data')]);
  const marked = (
    await readFile(path.join(nodeDir, DATA_DIR_MARKER), 'utf8').catch(() => '')
  ).trim();
  if (path.isAbsolute(marked)) dirs.add(marked);
  try {
    const config: unknown = JSON.parse(await readFile(path.join(nodeDir, 'config.json'), 'utf8'));
    const dataDir = (config as { dataDir?: unknown } | null)?.dataDir;
    if (typeof dataDir === 'string' && dataDir !== '') dirs.add(path.resolve(nodeDir, dataDir));
  } catch {
    // No configuration, or one that is not JSON: only the default data directory is looked at.
  }
  return [...dirs];
}

/**
 * The nodes of the cluster directory `dir` that run now: every `DIR/<node>/` whose data
 * directory (`data/`, the one its config.json names, or the `HYPERMESH_DATA_DIR` its node
 * recorded in `DATA_DIR_MARKER`) holds a `node.lock` of a running
 * process (data-dir-lock.ts tells a live holder from a stale lock; a lock of another container's
 * PID namespace or another host always counts, its pid cannot be checked from here).
 */
export async function runningClusterNodes(dir: string): Promise<RunningClusterNode[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw error;
  }
  const running: RunningClusterNode[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    for (const dataDir of await nodeDataDirs(path.join(dir, entry.name))) {
      const holder = await dataDirLockHolder(dataDir);
      if (holder !== null) running.push({ node: entry.name, dataDir, ...holder });
    }
  }
  return running.sort((a, b) => a.node.localeCompare(b.node));
}

/**
 * Throws a CliError naming the running nodes of `dir` when there are any: replacing a cluster
 * directory (or rewriting what its running nodes use) under them would delete the keys and
 * chain data they run on. `action` says what was refused ("replace it").
 */
export async function refuseRunningNodes(dir: string, action: string): Promise<void> {
  const running = await runningClusterNodes(dir);
  if (running.length === 0) return;
  const list = running
    .map(
      (node) =>
        `${node.node} (${node.elsewhere === null ? `pid ${node.pid}` : `${describeElsewhere(node.pid, node.elsewhere)}: remove ${path.join(node.dataDir, LOCK_FILE)} only if no node runs there`})`,
    )
    .join(', ');
  throw new CliError(
    `nodes of the cluster in ${dir} are running: ${list}; stop them before you ${action}`,
    1,
  );
}
