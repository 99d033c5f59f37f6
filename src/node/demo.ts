import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StoqError, StoqErrorCode } from '../stoq/index.js';
import { DEFAULT_LISTEN_HOST, parseNodeConfig } from './config.js';
import { DEV_CA_FILES, initDevCa, issueDevIdentity, loadDevCa } from './dev-ca.js';
import { createLogger } from './log.js';
import { nodeService } from './node-service.js';
import { spawnHypermesh, type ChildNode } from './process.js';
import { buildStoqParts } from './stoq-node.js';

/**
 * The two-node STOQ demo (`hypermesh demo`): a development CA, two validator nodes
 * in their own processes that authenticate each other and exchange RPCs, and an operator client
 * that queries both — and is refused a method only peers may call.
 */
export interface DemoOptions {
  readonly dir: string;
  readonly transport: 'quic' | 'tls';
  readonly mode: 'strict' | 'delegated';
  readonly host: string;
  /** Stop after the first round instead of running until interrupted. */
  readonly once: boolean;
  readonly out: (line: string) => void;
  /** Resolves when the demo should stop (Ctrl-C). */
  readonly interrupted: Promise<void>;
}

const CLUSTER = 'demo';
const NODES = ['node-a', 'node-b'] as const;
const OPERATOR = 'operator';

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** Creates the CA and identities on first run; later runs reuse them. */
async function ensureIdentities(dir: string, out: (line: string) => void): Promise<void> {
  const caDir = path.join(dir, 'ca');
  if (!(await exists(path.join(caDir, DEV_CA_FILES.certificate)))) {
    out(`creating a development CA for cluster "${CLUSTER}" in ${caDir}`);
    await initDevCa({ dir: caDir, cluster: CLUSTER });
  }
  const { ca, cluster } = await loadDevCa(caDir);
  const wanted = [
    ...NODES.map((name) => ({ name, role: 'validator' as const })),
    { name: OPERATOR, role: 'client' as const },
  ];
  for (const { name, role } of wanted) {
    if (await exists(path.join(dir, 'keys', `${name}.key`))) continue;
    out(`issuing ${role} identity ${name} (Ed25519 + FALCON-1024 keys, certificate)`);
    await issueDevIdentity({ ca, cluster, name, role, outDir: path.join(dir, 'keys') });
  }
}

function nodeConfig(
  dir: string,
  name: string,
  options: DemoOptions,
  peers: Record<string, Array<{ host: string; port: number }>>,
  listen: boolean,
): Record<string, unknown> {
  return {
    cluster: CLUSTER,
    name,
    transport: options.transport,
    listen: { host: options.host, port: 0 },
    auth: { mode: options.mode },
    identity: { keyFile: `keys/${name}.key`, certificateFile: `keys/${name}.pem` },
    trust: { rootsFile: `ca/${DEV_CA_FILES.certificate}` },
    peers,
    metrics: listen ? { host: options.host, port: 0 } : null,
  };
}

async function writeConfig(dir: string, name: string, config: Record<string, unknown>) {
  const file = path.join(dir, `${name}.json`);
  await writeFile(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

interface Ready {
  node: string;
  uri: string;
  stoq: { host: string; port: number };
  metrics: string | null;
}

export async function runDemo(options: DemoOptions): Promise<number> {
  const { dir, out } = options;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await ensureIdentities(dir, out);

  const children: ChildNode[] = [];
  const stopAll = async () => {
    await Promise.all(children.map((child) => child.stop()));
  };
  try {
    // node-b first: node-a's peer table needs node-b's address, which the OS picks.
    const bFile = await writeConfig(dir, 'node-b', nodeConfig(dir, 'node-b', options, {}, true));
    const b = spawnHypermesh('node-b', ['stoq', 'serve', '--config', bFile]);
    children.push(b);
    const bReady = (await b.ready) as unknown as Ready;
    const aFile = await writeConfig(
      dir,
      'node-a',
      nodeConfig(dir, 'node-a', options, { 'node-b': [bReady.stoq] }, true),
    );
    const a = spawnHypermesh('node-a', [
      'stoq',
      'serve',
      '--config',
      aFile,
      '--ping-interval-ms',
      '2000',
    ]);
    children.push(a);
    const firstPing = new Promise<Record<string, unknown>>((resolve) =>
      a.onLog((entry) => {
        if (entry.msg === 'peer ping' && entry.peer === 'node-b') resolve(entry);
      }),
    );
    const aReady = (await a.ready) as unknown as Ready;

    out('');
    out(`HyperMesh STOQ demo — transport ${options.transport}, authentication ${options.mode}`);
    for (const ready of [aReady, bReady]) {
      out(`  ${ready.node}  ${ready.uri}`);
      out(
        `          stoq ${options.transport}://${formatAddress(ready.stoq)}   metrics ${ready.metrics}`,
      );
    }

    const ping = await firstPing;
    out(`  node-a → node-b  authenticated ping: ${Number(ping.rttMs).toFixed(2)} ms`);

    const operatorConfig = parseNodeConfig(
      nodeConfig(
        dir,
        OPERATOR,
        options,
        { 'node-a': [aReady.stoq], 'node-b': [bReady.stoq] },
        false,
      ),
      dir,
    );
    const operator = await buildStoqParts(operatorConfig, createLogger({ node: OPERATOR }));
    try {
      for (const peer of NODES) {
        const client = operator.endpoint.client(nodeService, peer);
        const started = performance.now();
        const info = await client.call('info', {}, { deadlineMs: 15_000 });
        const ms = performance.now() - started;
        out(
          `  operator → ${peer}  info: ${info.uri}, sees us as ${info.peer.uri} (${ms.toFixed(1)} ms incl. handshake)`,
        );
        const beats: number[] = [];
        for await (const beat of client.stream('heartbeat', { count: 3 })) beats.push(beat.seq);
        out(`  operator → ${peer}  heartbeat stream: ${beats.length} messages`);
      }
      const gossip = operator.endpoint.client(nodeService, 'node-a');
      try {
        const channel = await gossip.openMessageStream('gossip');
        channel.send({ seq: 0, body: 'hello' });
        for await (const message of channel) void message;
        out('  operator → node-a  gossip: unexpectedly allowed');
        return 1;
      } catch (error) {
        if (!(error instanceof StoqError) || error.code !== StoqErrorCode.PERMISSION_DENIED)
          throw error;
        out(
          '  operator → node-a  gossip: PERMISSION_DENIED (clients may not use peer message streams)',
        );
      }
    } finally {
      await operator.close();
    }
    await writeFile(
      path.join(dir, 'demo.json'),
      `${JSON.stringify({ cluster: CLUSTER, transport: options.transport, authMode: options.mode, nodes: [aReady, bReady] }, null, 2)}\n`,
    );
    out(`  endpoints written to ${path.join(dir, 'demo.json')}`);
    if (options.once) {
      out('done (--once).');
      return 0;
    }
    out('');
    out(
      'Both nodes keep running and ping each other; their JSON logs go to stderr. Ctrl-C stops them.',
    );
    a.onLog((entry) => process.stderr.write(`${JSON.stringify(entry)}\n`));
    b.onLog((entry) => process.stderr.write(`${JSON.stringify(entry)}\n`));
    const watchers: Array<() => void> = [];
    const crashed = new Promise<number>((resolve) => {
      for (const child of children) {
        const onExit = (code: number | null) => {
          out(`${child.name} exited unexpectedly (code ${code})`);
          resolve(1);
        };
        child.child.once('exit', onExit);
        watchers.push(() => child.child.off('exit', onExit));
      }
    });
    try {
      return await Promise.race([options.interrupted.then(() => 0), crashed]);
    } finally {
      for (const unwatch of watchers) unwatch();
    }
  } finally {
    await stopAll();
  }
}

function formatAddress(address: { host: string; port: number }): string {
  return address.host.includes(':')
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

export const DEMO_DEFAULT_HOST = DEFAULT_LISTEN_HOST;
