import { open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { CliError } from './cli-error.js';
import { holderTextRunning, thisProcessHolderText } from './data-dir-lock.js';
import { NODE_NAME_PATTERN } from './node-config.js';

/**
 * `DIR/added-nodes.json`: the nodes `cluster add-node` wrote into a cluster directory, in the
 * order they were added (docs/node.md, "Adding a node"). The genesis names the genesis
 * validators; this file names the rest, so the operator tools (`status`, `stake`, `wallet`, …)
 * reach every node. Each entry's node directory is `DIR/<name>/` with its `config.json`.
 * A directory without the file has no added nodes.
 */
export const ADDED_NODES_FILE = 'added-nodes.json';

const LOCK_SUFFIX = '.lock';

export const addedNodesSchema = z.strictObject({
  version: z.literal(1),
  nodes: z
    .array(
      z.strictObject({
        name: z.string().regex(NODE_NAME_PATTERN, 'a node name: [a-z0-9][a-z0-9-]{0,62}'),
        /** The node's Ed25519 public key (64 hex digits); its validator address derives from it. */
        publicKey: z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits'),
        addedAt: z.iso.datetime(),
      }),
    )
    .max(10_000),
});

export type AddedNodesManifest = z.infer<typeof addedNodesSchema>;
export type AddedNodeRecord = AddedNodesManifest['nodes'][number];

/**
 * The added nodes recorded in cluster directory `dir`: [] when it has no manifest. A manifest
 * that cannot be read, is not JSON, does not match the schema or names a node twice is a
 * CliError naming the file and the problem.
 */
export async function readAddedNodes(dir: string): Promise<AddedNodeRecord[]> {
  const file = path.join(path.resolve(dir), ADDED_NODES_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    throw new CliError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  const result = addedNodesSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues
      .map((issue) => `  ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`)
      .join('\n');
    throw new CliError(`invalid added-nodes manifest ${file}:\n${problems}`);
  }
  const seen = new Set<string>();
  for (const node of result.data.nodes) {
    if (seen.has(node.name)) {
      throw new CliError(
        `invalid added-nodes manifest ${file}: node "${node.name}" is listed twice`,
      );
    }
    seen.add(node.name);
  }
  return result.data.nodes;
}

/**
 * The manifest of a cluster directory, held exclusively: `cluster add-node` takes it before it
 * checks the name and asks the cluster for anything, and holds it until the node is recorded, so
 * two runs cannot add one name and a run that cannot record its node issues nothing.
 */
export interface AddedNodesLock {
  /** The lock file (`added-nodes.json.lock`), which names the process that holds it. */
  readonly lockFile: string;
  /** The added nodes recorded now (as `readAddedNodes`). */
  nodes(): Promise<AddedNodeRecord[]>;
  /**
   * Appends `node`: the new manifest replaces the old one by rename, so a reader sees the old
   * list or the new one, never half a file.
   */
  append(node: AddedNodeRecord): Promise<void>;
  /** Removes the lock; later calls do nothing. */
  release(): Promise<void>;
}

/**
 * Takes the manifest lock of `dir`: `added-nodes.json.lock`, created exclusively, naming this
 * process, and removed by `release` (or by the interrupt handler of `cluster add-node`). A lock
 * that exists is a CliError naming it, and saying whether its process still runs (one that does
 * not was killed, kill -9 or a crash, and left it).
 */
export async function lockAddedNodes(dir: string): Promise<AddedNodesLock> {
  const root = path.resolve(dir);
  const file = path.join(root, ADDED_NODES_FILE);
  const lock = `${file}${LOCK_SUFFIX}`;
  const held = await open(lock, 'wx').catch(async (error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      const holder = (await readFile(lock, 'utf8').catch(() => '')).trim();
      const pid = /^[0-9]+/.exec(holder)?.[0];
      if (pid !== undefined && !holderTextRunning(holder)) {
        throw new CliError(
          `${lock} was left by process ${pid}, which no longer runs (a killed "cluster add-node"): remove it and run again`,
        );
      }
      throw new CliError(
        `${lock} exists: another "cluster add-node"${pid === undefined ? '' : ` (pid ${pid})`} is writing ${file} (remove the lock if none is running)`,
      );
    }
    throw new CliError(`cannot create ${lock}: ${(error as Error).message}`);
  });
  await held.writeFile(thisProcessHolderText());
  let released = false;
  return {
    lockFile: lock,
    nodes: () => readAddedNodes(root),
    async append(node) {
      if (released) throw new Error(`append after release of ${lock}`);
      const nodes = await readAddedNodes(root);
      if (nodes.some((entry) => entry.name === node.name)) {
        throw new CliError(`${file} already lists a node "${node.name}"`);
      }
      const manifest: AddedNodesManifest = { version: 1, nodes: [...nodes, node] };
      const temporary = `${file}.tmp-${process.pid}`;
      try {
        await writeFile(temporary, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o644 });
        await rename(temporary, file);
      } catch (error) {
        await rm(temporary, { force: true });
        throw new CliError(`cannot write ${file}: ${(error as Error).message}`);
      }
    },
    async release() {
      if (released) return;
      released = true;
      await held.close();
      await rm(lock, { force: true });
    },
  };
}
