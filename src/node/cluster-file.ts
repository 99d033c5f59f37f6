import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { CliError } from './cli-error.js';
import { writeFileAtomically } from './io.js';

/**
 * `<dir>/cluster.json`: what `hypermesh dev` writes once its cluster has committed a block, and
 * what `hypermesh status` and `hypermesh block verify` read to find the nodes. Paths inside are
 * relative to the file's directory.
 */
const address = z.strictObject({
  host: z.string().min(1).max(253),
  port: z.int().min(1).max(65_535),
});

export const clusterFileSchema = z.strictObject({
  chainId: z.string().min(1),
  createdAt: z.string().min(1),
  genesisFile: z.string().min(1),
  trustRootsFile: z.string().min(1),
  /** The TrustChain CA trust bundle (docs/ca.md), when the cluster runs the CA. */
  trustBundleFile: z.string().min(1).optional(),
  operator: z.strictObject({
    keyFile: z.string().min(1),
    certificateFile: z.string().min(1),
  }),
  nodes: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        /** Validator address (hex of the first 20 bytes of SHA-256 of the Ed25519 key). */
        id: z.string().regex(/^[0-9a-f]{40}$/),
        stoq: address,
        metrics: z.string().nullable(),
        /** Authoritative DNS of the node (UDP, TCP, DoQ), absent or null when it serves none. */
        dns: z
          .strictObject({
            udp: z.array(address).max(8),
            tcp: z.array(address).max(8),
            doq: z.array(address).max(8).optional(),
          })
          .nullable()
          .optional(),
        /** The node's CT log (HTTP base URL), absent or null when it serves none. */
        ct: z.string().nullable().optional(),
        /** The node's ACME directory URL (docs/acme.md), absent or null when it serves none. */
        acme: z.string().nullable().optional(),
        configFile: z.string().min(1),
        pid: z.int().positive().nullable(),
      }),
    )
    .min(1),
});

export type ClusterFile = z.infer<typeof clusterFileSchema>;

/**
 * Writes `file` atomically (temporary file, fsync, rename), so readers never see half of it; a
 * failure leaves `file` as it was and no temporary file behind.
 */
export async function writeClusterFile(file: string, cluster: ClusterFile): Promise<void> {
  await writeFileAtomically(file, `${JSON.stringify(cluster, null, 2)}\n`);
}

/** Reads and checks a cluster file; relative paths in it are resolved against its directory. */
export async function readClusterFile(file: string): Promise<ClusterFile> {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (error) {
    const hint =
      (error as NodeJS.ErrnoException).code === 'ENOENT'
        ? ' (is `hypermesh dev` running? it writes the file once the cluster has committed a block)'
        : '';
    throw new CliError(`cannot read cluster file ${absolute}: ${(error as Error).message}${hint}`);
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    throw new CliError(`cluster file ${absolute} is not valid JSON: ${(error as Error).message}`);
  }
  const result = clusterFileSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues
      .map((issue) => `  ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`)
      .join('\n');
    throw new CliError(`invalid cluster file ${absolute}:\n${problems}`);
  }
  const base = path.dirname(absolute);
  const resolve = (relative: string): string => path.resolve(base, relative);
  const cluster = result.data;
  return {
    ...cluster,
    genesisFile: resolve(cluster.genesisFile),
    trustRootsFile: resolve(cluster.trustRootsFile),
    ...(cluster.trustBundleFile === undefined
      ? {}
      : { trustBundleFile: resolve(cluster.trustBundleFile) }),
    operator: {
      keyFile: resolve(cluster.operator.keyFile),
      certificateFile: resolve(cluster.operator.certificateFile),
    },
    nodes: cluster.nodes.map((node) => ({ ...node, configFile: resolve(node.configFile) })),
  };
}
