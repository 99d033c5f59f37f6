/**
 * Builds the STOQ stack under test for one transport and authentication mode: transport,
 * the real authenticator (certificate chain + FALCON-1024), and an endpoint. The same code runs
 * in the server child, the connection-holding client child and the suite itself.
 */
import {
  DEFAULT_MAX_INBOUND_CONNECTIONS,
  StaticResolver,
  StoqEndpoint,
  createAuthenticator,
  createQuicTransport,
  createTlsTransport,
  type AuthMode,
  type RpcLogger,
  type Transport,
} from '../../src/stoq/index.js';
import type { BenchIdentity } from './pki.js';

export type StackKind = 'quic' | 'tls';
export const STACK_KINDS: readonly StackKind[] = ['quic', 'tls'];
export const BENCH_MODES: readonly AuthMode[] = ['strict', 'delegated'];

/** `quic:delegated` etc.: how the server's ready line names its endpoints. */
export type StackName = `${StackKind}:${AuthMode}`;

export function stackName(kind: StackKind, mode: AuthMode): StackName {
  return `${kind}:${mode}`;
}

export function parseStackName(text: string): { kind: StackKind; mode: AuthMode } {
  const [kind, mode] = text.split(':');
  if ((kind !== 'quic' && kind !== 'tls') || (mode !== 'strict' && mode !== 'delegated')) {
    throw new Error(`not a stack name: ${text} (expected e.g. quic:delegated)`);
  }
  return { kind, mode };
}

export function createTransport(kind: StackKind, identity: BenchIdentity): Transport {
  return kind === 'quic'
    ? createQuicTransport({ privateKey: identity.ed25519PrivateKey })
    : createTlsTransport({
        identity: {
          privateKey: identity.ed25519PrivateKey,
          certificateChain: [identity.chainPem],
        },
      });
}

/**
 * Keeps the endpoint's warnings instead of printing each one: under load a transport may log
 * thousands of identical lines; the suite reports the count and the first few.
 */
export class CountingLogger implements RpcLogger {
  count = 0;
  readonly first: string[] = [];

  warn(message: string, fields?: Record<string, unknown>): void {
    this.note('warn', message, fields);
  }

  error(message: string, fields?: Record<string, unknown>): void {
    this.note('error', message, fields);
  }

  private note(level: string, message: string, fields?: Record<string, unknown>): void {
    this.count += 1;
    if (this.first.length < 5) this.first.push(`${level}: ${message} ${JSON.stringify(fields)}`);
  }
}

export interface BenchStack {
  readonly kind: StackKind;
  readonly mode: AuthMode;
  readonly transport: Transport;
  readonly endpoint: StoqEndpoint;
  readonly logger: CountingLogger;
  close(): Promise<void>;
}

export interface BenchStackOptions {
  readonly maxInboundConnections?: number;
  /** Calls one peer may have in flight (the RPC server's per-peer limit). */
  readonly maxConcurrentCallsPerPeer?: number;
}

export function createStack(
  kind: StackKind,
  mode: AuthMode,
  identity: BenchIdentity,
  options: BenchStackOptions = {},
): BenchStack {
  const transport = createTransport(kind, identity);
  const authenticator = createAuthenticator({
    local: {
      chain: identity.chain,
      falcon: identity.falcon,
      falconBackend: identity.falconBackend,
    },
    trust: { roots: identity.roots, revocation: () => 'good' },
    mode,
  });
  const logger = new CountingLogger();
  const endpoint = new StoqEndpoint({
    transport,
    authenticator,
    resolver: new StaticResolver({}),
    logger,
    ...(options.maxInboundConnections === undefined
      ? {}
      : { maxInboundConnections: options.maxInboundConnections }),
    // The held-connections phase opens every connection from one client identity: per
    // identity, the bench allows as many as in all (a node allows 64).
    maxInboundSessionsPerPeer: options.maxInboundConnections ?? DEFAULT_MAX_INBOUND_CONNECTIONS,
    ...(options.maxConcurrentCallsPerPeer === undefined
      ? {}
      : { limits: { maxConcurrentCallsPerPeer: options.maxConcurrentCallsPerPeer } }),
  });
  return {
    kind,
    mode,
    transport,
    endpoint,
    logger,
    close: async () => {
      await endpoint.close();
      await transport.close();
    },
  };
}
