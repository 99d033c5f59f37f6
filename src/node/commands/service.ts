import type { Command } from '../commands.js';
import type { CliIo } from '../io.js';
import type { DiscoveryRpcClient } from '../../faces/discovery-rpc.js';
import { passphraseFromEnv } from '../args.js';
import { CliError } from '../cli-error.js';
import { readGenesisFile } from '../cluster-layout.js';
import { DEFAULT_CLUSTER_FILE, loadClusterTarget, type ClusterTarget } from '../operator.js';
import { parseWithPositionals } from './block.js';
import { integerOption } from './cluster.js';
import { pickNode, reportSubmission } from './wallet.js';

/**
 * `hypermesh service register|deregister|list|resolve|watch`: the service catalog from the
 * command line (docs/discovery.md "CLI", docs/cli.md). Changes are transactions signed with a
 * key (default: the chosen node's identity key, so that node hosts the instance, runs its check
 * and renews it); reads go through `hypermesh.discovery.v1` with proofs checked.
 */

/** Pause before submitting again when the key's next sequence is held by a pending transaction. */
const SEQUENCE_RETRY_MS = 250;

const common = {
  cluster: { type: 'string' },
  node: { type: 'string' },
} as const;

const COMMON_HELP = `  --cluster FILE|DIR    cluster.json or "cluster init" directory (default ${DEFAULT_CLUSTER_FILE})
  --node NAME|ADDR      node to talk to (default: the first)`;

const SIGNING_HELP = `  --key FILE            key that signs (and owns the instance); default: the node's identity key
                        (NODE/NODE.key in the cluster directory), so that node hosts the instance
  --passphrase-env VAR  the key file's passphrase is in environment variable VAR
  --no-wait             return once the node admitted the transaction
  --timeout-ms MS       how long to wait for the commit (default 30000)`;

const signing = {
  key: { type: 'string' },
  'passphrase-env': { type: 'string' },
  'no-wait': { type: 'boolean' },
  'timeout-ms': { type: 'string' },
} as const;

async function submitBody(
  target: ClusterTarget,
  node: ClusterTarget['nodes'][number],
  values: { key?: string; 'passphrase-env'?: string; 'no-wait'?: boolean; 'timeout-ms'?: string },
  body: Uint8Array,
  what: string,
  io: CliIo,
): Promise<number> {
  const timeoutMs = integerOption(
    values['timeout-ms'],
    'timeout-ms',
    { min: 100, max: 3_600_000 },
    30_000,
  );
  const { nodeKeyFile, openServiceSession } = await import('../service-tools.js');
  const { readWalletKey } = await import('../wallet.js');
  const { submitTransaction, stoqFailure } = await import('../tx-submit.js');
  const { DISCOVERY_MODULE_NAME } = await import('../../discovery/index.js');
  const keyFile = values.key ?? (await nodeKeyFile(target, node.name));
  const passphrase = passphraseFromEnv(values['passphrase-env']);
  const key = await readWalletKey(keyFile, passphrase === undefined ? {} : { passphrase });
  const genesis = await readGenesisFile(target.genesisFile);
  const session = await openServiceSession(target);
  try {
    const wait = values['no-wait'] !== true;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const outcome = await submitTransaction({
        client: session.api(node.name),
        genesis,
        privateKey: key.privateKey,
        module: DISCOVERY_MODULE_NAME,
        body,
        wait,
        timeoutMs: Math.max(100, deadline - Date.now()),
      }).catch(stoqFailure(node.name));
      // The node signs its own renewals with its identity key: when one of them holds the
      // sequence, try again once it is committed.
      const busy = !outcome.admitted && outcome.code === 'MEMPOOL_SEQUENCE_TAKEN';
      if (!busy || Date.now() >= deadline) {
        return reportSubmission(outcome, what, node.name, io, wait, timeoutMs);
      }
      await new Promise((resolve) => setTimeout(resolve, SEQUENCE_RETRY_MS));
    }
  } finally {
    await session.close();
  }
}

const registerCommand: Command = {
  name: 'service register',
  summary: 'register (or change) a service instance in the catalog',
  help: `
usage: hypermesh service register SERVICE INSTANCE --address IP [--address IP ...]
         --port PROTOCOL:PORT [--port ...] [--check stoq-ping|tcp|http|command]
         [--check-port P] [--check-path PATH] [--check-arg ARG ...] [--interval MS]
         [--timeout MS] [--rise N] [--fall N] [--ttl BLOCKS] [--status S]
         [--identity SPIFFE-ID] [--meta KEY=VALUE ...] [--key FILE] [--cluster FILE|DIR]
         [--node NAME|ADDR] [--no-wait] [--timeout-ms MS]

Registers INSTANCE of SERVICE (a "register" transaction, docs/discovery.md). The node whose
identity key signs it hosts it: it runs the check every --interval ms (cut at --timeout ms),
turns it passing after --rise successes and critical after --fall failures, and sends a
renewal when the status changes and every TTL/3 blocks. PROTOCOL is one of stoq, quic, tcp,
udp, tls, http, https; the check's port defaults to the first declared port that fits it.

options:
  --check KIND          health check (default tcp); command runs --check-arg ARG... on the host
  --check-path PATH     http check path (default /)
  --interval MS, --timeout MS, --rise N, --fall N   default 10000, 2000, 2, 3
  --ttl BLOCKS          expiry without renewal (default 60)
  --status S            status registered with: passing (default), warning, critical
  --identity ID         certificate identity serving it (default spiffe://<chain-id>/service/SERVICE)
  --meta KEY=VALUE      metadata (repeatable)
${SIGNING_HELP}
${COMMON_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseWithPositionals(
      args,
      {
        ...common,
        ...signing,
        address: { type: 'string', multiple: true },
        port: { type: 'string', multiple: true },
        check: { type: 'string' },
        'check-port': { type: 'string' },
        'check-path': { type: 'string' },
        'check-arg': { type: 'string', multiple: true },
        interval: { type: 'string' },
        timeout: { type: 'string' },
        rise: { type: 'string' },
        fall: { type: 'string' },
        ttl: { type: 'string' },
        status: { type: 'string' },
        identity: { type: 'string' },
        meta: { type: 'string', multiple: true },
      },
      ['service', 'instance'],
    );
    const [service, instance] = positionals as [string, string];
    const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
    const node = pickNode(target, values.node);
    const { registrationFromFlags } = await import('../service-tools.js');
    const { discoveryRegister } = await import('../../discovery/index.js');
    const int = (
      name: string,
      value: string | undefined,
      min: number,
      max: number,
      fallback: number,
    ) => integerOption(value, name, { min, max }, fallback);
    const registration = registrationFromFlags({
      service,
      instance,
      addresses: values.address ?? [],
      ports: values.port ?? [],
      identity: values.identity ?? `spiffe://${target.chainId}/service/${service}`,
      meta: values.meta ?? [],
      check: values.check ?? 'tcp',
      ...(values['check-port'] === undefined
        ? {}
        : { checkPort: int('check-port', values['check-port'], 1, 65_535, 1) }),
      checkPath: values['check-path'] ?? '/',
      checkArgs: values['check-arg'] ?? [],
      interval: int('interval', values.interval, 1, 3_600_000, 10_000),
      timeout: int('timeout', values.timeout, 1, 3_600_000, 2_000),
      rise: int('rise', values.rise, 1, 10, 2),
      fall: int('fall', values.fall, 1, 10, 3),
      ttl: int('ttl', values.ttl, 1, 100_000, 60),
      status: values.status ?? 'passing',
    });
    return submitBody(target, node, values, discoveryRegister(registration), 'registration', io);
  },
};

const deregisterCommand: Command = {
  name: 'service deregister',
  summary: 'remove a service instance from the catalog',
  help: `
usage: hypermesh service deregister SERVICE INSTANCE [--key FILE] [--cluster FILE|DIR]
                                    [--node NAME|ADDR] [--no-wait] [--timeout-ms MS]

Removes INSTANCE of SERVICE (a "deregister" transaction); only the key that registered it may.

options:
${SIGNING_HELP}
${COMMON_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseWithPositionals(args, { ...common, ...signing }, [
      'service',
      'instance',
    ]);
    const [service, instance] = positionals as [string, string];
    const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
    const node = pickNode(target, values.node);
    const { discoveryDeregister, DiscoveryError } = await import('../../discovery/index.js');
    let body: Uint8Array;
    try {
      body = discoveryDeregister(service, instance);
    } catch (error) {
      if (error instanceof DiscoveryError) throw new CliError(`${error.message} [${error.code}]`);
      throw error;
    }
    return submitBody(target, node, values, body, 'deregistration', io);
  },
};

async function withDiscovery<T>(
  values: { cluster?: string; node?: string },
  work: (client: DiscoveryRpcClient, node: string) => Promise<T>,
): Promise<T> {
  const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
  const node = pickNode(target, values.node);
  const { openServiceSession } = await import('../service-tools.js');
  const { stoqFailure } = await import('../tx-submit.js');
  const session = await openServiceSession(target);
  try {
    return await work(session.discovery(node.name), node.name).catch(stoqFailure(node.name));
  } finally {
    await session.close();
  }
}

const listCommand: Command = {
  name: 'service list',
  summary: "list the catalog's services with their live and healthy instance counts",
  help: `
usage: hypermesh service list [--cluster FILE|DIR] [--node NAME|ADDR] [--json]

Lists the services of the node's committed catalog (hypermesh.discovery.v1 "list"; not proven:
use "service resolve" for proven answers).

options:
  --json                machine-readable output
${COMMON_HELP}
`,
  async run(args, io) {
    const { values } = parseWithPositionals(args, { ...common, json: { type: 'boolean' } }, []);
    return withDiscovery(values, async (client, node) => {
      const listed = await client.list();
      if (values.json) {
        io.out(`${JSON.stringify({ node, ...listed }, null, 2)}\n`);
        return 0;
      }
      io.out(
        `catalog at height ${listed.height ?? '-'} (${node}): ${listed.services.length} service(s)\n`,
      );
      for (const { service, live, healthy } of listed.services) {
        io.out(`  ${service.padEnd(24)} ${live} live, ${healthy} healthy\n`);
      }
      return 0;
    });
  },
};

const resolveCommand: Command = {
  name: 'service resolve',
  summary: "a service's healthy instances, every answer's proof checked",
  help: `
usage: hypermesh service resolve SERVICE [--all] [--cluster FILE|DIR] [--node NAME|ADDR] [--json]

Asks a node for SERVICE's live instances (hypermesh.discovery.v1 "resolve") and checks the
proof of the service index and of every instance against the answer's state root. Without
--all only healthy ones (passing, warning). Exit code 0 when at least one instance is listed.

options:
  --all                 also critical instances
  --json                machine-readable output
${COMMON_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseWithPositionals(
      args,
      { ...common, all: { type: 'boolean' }, json: { type: 'boolean' } },
      ['service'],
    );
    const service = positionals[0] as string;
    const { HEALTH_STATUSES, HEALTHY_STATUSES } = await import('../../discovery/index.js');
    return withDiscovery(values, async (client, node) => {
      const resolved = await client
        .resolve(service, values.all === true ? HEALTH_STATUSES : HEALTHY_STATUSES)
        .catch((error: unknown) => {
          if (
            error instanceof Error &&
            'code' in error &&
            String(error.code).startsWith('DISCOVERY_')
          ) {
            throw new CliError(`${node}'s answer does not verify: ${error.message}`, 1);
          }
          throw error;
        });
      const root = Buffer.from(resolved.stateRoot).toString('hex');
      const instances = resolved.instances.map((record) => ({
        service: record.service,
        instance: record.instance,
        status: record.status,
        addresses: record.addresses,
        ports: record.ports,
        identity: record.identity,
        metadata: record.metadata,
        owner: Buffer.from(record.owner).toString('hex'),
        expiresAt: record.expiresAt,
      }));
      if (values.json) {
        io.out(
          `${JSON.stringify({ node, height: resolved.height, stateRoot: root, instances }, null, 2)}\n`,
        );
      } else {
        io.out(
          `${service}: ${instances.length} instance(s) at height ${resolved.height ?? '-'}, proofs verified against state root ${root} (${node})\n`,
        );
        for (const found of instances) {
          const ports = found.ports.map((p) => `${p.protocol}:${p.port}`).join(' ');
          io.out(
            `  ${found.instance.padEnd(16)} ${found.status.padEnd(8)} ${found.addresses.join(',')}  ${ports}  ${found.identity}\n`,
          );
        }
      }
      return instances.length > 0 ? 0 : 1;
    });
  },
};

const watchCommand: Command = {
  name: 'service watch',
  summary: "stream a service's changes as blocks commit them",
  help: `
usage: hypermesh service watch SERVICE [--count N] [--cluster FILE|DIR] [--node NAME|ADDR]

Prints one JSON line per committed height at which SERVICE changed (hypermesh.discovery.v1
"watch"): the first line is the live set as "added" events, then "added", "removed" (expired
or deregistered), "updated" and "status-changed" events. Runs until interrupted, or until N
lines with --count.

options:
  --count N             stop after N lines
${COMMON_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseWithPositionals(
      args,
      { ...common, count: { type: 'string' } },
      ['service'],
    );
    const service = positionals[0] as string;
    const count =
      values.count === undefined
        ? Number.POSITIVE_INFINITY
        : integerOption(values.count, 'count', { min: 1, max: 1_000_000 }, 1);
    return withDiscovery(values, async (client) => {
      const stop = new AbortController();
      const interrupt = (): void => stop.abort();
      process.once('SIGINT', interrupt);
      try {
        let printed = 0;
        for await (const event of client.watch(service, { signal: stop.signal })) {
          io.out(`${JSON.stringify({ service, ...event })}\n`);
          if (++printed >= count) break;
        }
        return 0;
      } catch (error) {
        if (stop.signal.aborted) return 0;
        throw error;
      } finally {
        process.off('SIGINT', interrupt);
      }
    });
  },
};

export const serviceCommands: readonly Command[] = [
  registerCommand,
  deregisterCommand,
  listCommand,
  resolveCommand,
  watchCommand,
];
