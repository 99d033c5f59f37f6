import { stat } from 'node:fs/promises';
import path from 'node:path';
import { createNodeRpcClient, type NodeRpcClient } from '../consensus/net/index.js';
import {
  DiscoveryError,
  HEALTH_CHECK_KINDS,
  HEALTH_STATUSES,
  PORT_PROTOCOLS,
  discoveryRegister,
  type HealthCheck,
  type HealthStatus,
  type InstanceRegistration,
  type PortProtocol,
  type ServicePort,
} from '../discovery/index.js';
import { createDiscoveryRpcClient, type DiscoveryRpcClient } from '../faces/discovery-rpc.js';
import { CliError } from './cli-error.js';
import { CLUSTER_FILES } from './cluster-init.js';
import { loadValidatorNodeConfig } from './node-config.js';
import { openOperatorParts, type ClusterTarget } from './operator.js';
import {
  committedRootsOf,
  withCommittedRoots,
  type CommittedRoots,
  type VerifiedRootCache,
} from './verified-root.js';

/**
 * What `hypermesh service …` (commands/service.ts) needs besides the shared operator tools: a
 * session that reaches both the node API and `hypermesh.discovery.v1`, the default signing key
 * (the chosen node's identity, so that node hosts the instance and runs its check), and the
 * registration built from the command line.
 */

export interface ServiceSession {
  api(node: string): NodeRpcClient;
  discovery(node: string): DiscoveryRpcClient;
  close(): Promise<void>;
}

/**
 * A STOQ client endpoint with the operator's identity (as `openOperatorSession`: nodes are
 * found through discovery, the target's addresses are the bootstrap). Its discovery clients'
 * `resolve` also checks the answer's state root against block H's header and its quorum
 * certificate, fetched from the same node (verified-root.ts); the node API clients carry that
 * check for the proven readers. Verified roots are shared across the session's nodes.
 */
export async function openServiceSession(target: ClusterTarget): Promise<ServiceSession> {
  const opened = await openOperatorParts(target);
  const endpoint = opened.parts.endpoint;
  const cache: VerifiedRootCache = new Map();
  const api = (node: string) =>
    withCommittedRoots(createNodeRpcClient({ endpoint, peer: node }), opened.genesis, { cache });
  return {
    api,
    discovery: (node) =>
      committedDiscoveryClient(
        createDiscoveryRpcClient({ endpoint, peer: node }),
        committedRootsOf(api(node)),
      ),
    close: () => opened.close(),
  };
}

/**
 * `client` whose `resolve` refuses an answer unless its state root is the committed one
 * (`CommittedRootError`). `list` is not proven (the catalog has no proven list of services) and
 * is passed through.
 */
export function committedDiscoveryClient(
  client: DiscoveryRpcClient,
  roots: CommittedRoots,
): DiscoveryRpcClient {
  return {
    ...client,
    resolve: async (service, statuses, options) => {
      const answer = await client.resolve(service, statuses, options);
      await roots.check(answer.height, answer.stateRoot);
      return answer;
    },
  };
}

/**
 * The identity key file of `node` in the cluster directory (`<dir>/<node>/config.json`'s
 * `identity.keyFile`): instances registered with it are hosted, checked and renewed by that node.
 */
export async function nodeKeyFile(target: ClusterTarget, node: string): Promise<string> {
  const info = await stat(target.source).catch(() => null);
  const dir = info?.isDirectory() === true ? target.source : path.dirname(target.source);
  const configFile = path.join(dir, node, CLUSTER_FILES.nodeConfig);
  try {
    const config = await loadValidatorNodeConfig(configFile, {});
    return config.identity.keyFile;
  } catch (error) {
    throw new CliError(
      `cannot find ${node}'s identity key through ${configFile} (${(error as Error).message}); pass --key FILE`,
    );
  }
}

export interface RegisterFlags {
  readonly service: string;
  readonly instance: string;
  readonly addresses: readonly string[];
  /** `PROTOCOL:PORT`. */
  readonly ports: readonly string[];
  readonly identity: string;
  /** `KEY=VALUE`. */
  readonly meta: readonly string[];
  readonly check: string;
  readonly checkPort?: number;
  readonly checkPath: string;
  readonly checkArgs: readonly string[];
  readonly interval: number;
  readonly timeout: number;
  readonly rise: number;
  readonly fall: number;
  readonly ttl: number;
  readonly status: string;
}

function portFlag(text: string): ServicePort {
  const match = /^([a-z]+):(\d{1,5})$/.exec(text);
  if (match === null || !(PORT_PROTOCOLS as readonly string[]).includes(match[1]!)) {
    throw new CliError(
      `--port ${text}: expected PROTOCOL:PORT with PROTOCOL one of ${PORT_PROTOCOLS.join(', ')}`,
    );
  }
  return { protocol: match[1] as PortProtocol, port: Number(match[2]) };
}

const CHECK_PORT_PROTOCOLS: Readonly<Record<string, readonly PortProtocol[]>> = {
  'stoq-ping': ['stoq'],
  tcp: ['tcp', 'tls', 'http', 'https'],
  http: ['http', 'https'],
};

/**
 * The registration the flags describe, checked by the same rules as the module (a
 * `DiscoveryError` becomes a CliError naming the field).
 */
export function registrationFromFlags(flags: RegisterFlags): InstanceRegistration {
  if (!(HEALTH_CHECK_KINDS as readonly string[]).includes(flags.check)) {
    throw new CliError(
      `--check must be one of ${HEALTH_CHECK_KINDS.join(', ')}, got "${flags.check}"`,
    );
  }
  if (!(HEALTH_STATUSES as readonly string[]).includes(flags.status)) {
    throw new CliError(`--status must be one of ${HEALTH_STATUSES.join(', ')}`);
  }
  const ports = flags.ports.map(portFlag);
  const timing = {
    interval: flags.interval,
    timeout: flags.timeout,
    rise: flags.rise,
    fall: flags.fall,
  };
  let check: HealthCheck;
  if (flags.check === 'command') {
    check = { kind: 'command', args: [...flags.checkArgs], ...timing };
  } else {
    const fitting = CHECK_PORT_PROTOCOLS[flags.check]!;
    const port =
      flags.checkPort ?? ports.find((declared) => fitting.includes(declared.protocol))?.port;
    if (port === undefined) {
      throw new CliError(
        `--check ${flags.check} needs a --port ${fitting.join('|')}:PORT (or --check-port)`,
      );
    }
    check =
      flags.check === 'http'
        ? { kind: 'http', port, path: flags.checkPath, ...timing }
        : { kind: flags.check as 'tcp' | 'stoq-ping', port, ...timing };
  }
  const metadata: Record<string, string> = {};
  for (const pair of flags.meta) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new CliError(`--meta ${pair}: expected KEY=VALUE`);
    metadata[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const registration: InstanceRegistration = {
    service: flags.service,
    instance: flags.instance,
    addresses: [...flags.addresses],
    ports,
    identity: flags.identity,
    metadata,
    check,
    ttl: flags.ttl,
    status: flags.status as HealthStatus,
  };
  try {
    discoveryRegister(registration);
  } catch (error) {
    if (error instanceof DiscoveryError) {
      throw new CliError(`invalid registration: ${error.message} [${error.code}]`);
    }
    throw error;
  }
  return registration;
}
