import { createRequire } from 'node:module';
import { StoqError, StoqErrorCode } from '../errors.js';

/**
 * The raw quinn napi binding shipped inside @chainsafe/libp2p-quic. It is not a public API, so
 * the version is pinned exactly and `test/stoq/quic-binding.test.ts` fails loudly when the
 * shape below changes. Only what STOQ uses is typed here.
 */
export const QUINN_BINDING_VERSION = '2.1.1';

/** Every field is required by the binding ("Missing field `x`" otherwise). */
export interface QuinnConfigInit {
  /** libp2p PrivateKey protobuf of the Ed25519 identity key. */
  readonly privateKeyProto: Uint8Array;
  readonly handshakeTimeout: number;
  readonly maxIdleTimeout: number;
  readonly keepAliveInterval: number;
  readonly maxConcurrentStreamLimit: number;
  readonly maxStreamData: number;
  readonly maxConnectionData: number;
  readonly receiveBufferSize: number;
  readonly sendBufferSize: number;
}

export type QuinnConfig = object;

export interface QuinnStream {
  id(): string;
  /** Up to `maxBytes` bytes, or null once the peer finished. */
  read(maxBytes: number): Promise<Uint8Array | null>;
  write(data: Uint8Array): Promise<void>;
  finishWrite(): void;
  resetWrite(): void;
  stopRead(): void;
}

export interface QuinnConnection {
  id(): string;
  /** `/ip4|ip6/<address>/udp/<port>/quic-v1/p2p/<peer id>` of the peer. */
  remoteMultiaddr(): string;
  closed(): Promise<void>;
  abort(): void;
  inboundStream(): Promise<QuinnStream>;
  outboundStream(): Promise<QuinnStream>;
  rtt(): number;
}

export interface QuinnServer {
  /** Must not be called after `abort()`: the binding panics and aborts the process. */
  port(): number;
  inboundConnection(): Promise<QuinnConnection>;
  abort(): Promise<void>;
}

export interface QuinnClient {
  outboundConnection(ip: string, port: number): Promise<QuinnConnection>;
  abort(): void;
}

export enum QuinnSocketFamily {
  Ipv4 = 0,
  Ipv6 = 1,
}

export interface QuinnBinding {
  QuinnConfig: new (init: QuinnConfigInit) => QuinnConfig;
  Server: new (config: QuinnConfig, ip: string, port: number) => QuinnServer;
  Client: new (config: QuinnConfig, family: QuinnSocketFamily) => QuinnClient;
}

/** The platform package the binding ships in, e.g. `@chainsafe/libp2p-quic-linux-x64-gnu`. */
export function quinnBindingPackage(
  platform: string = process.platform,
  arch: string = process.arch,
): string {
  return `@chainsafe/libp2p-quic-${platform}-${arch}-gnu`;
}

let cached: QuinnBinding | null = null;

function unavailable(message: string, cause?: unknown): StoqError {
  return new StoqError(StoqErrorCode.TRANSPORT_UNAVAILABLE, message, {}, { cause });
}

/**
 * Loads the binding once. Throws `TRANSPORT_UNAVAILABLE` when the platform package is missing,
 * has another version than the pinned one, or lacks a class STOQ needs.
 */
export function loadQuinnBinding(): QuinnBinding {
  if (cached) return cached;
  const name = quinnBindingPackage();
  const require = createRequire(import.meta.url);
  let binding: Record<string, unknown>;
  let version: unknown;
  try {
    version = (require(`${name}/package.json`) as { version?: unknown }).version;
    binding = require(name) as Record<string, unknown>;
  } catch (error) {
    throw unavailable(
      `QUIC is unavailable: the quinn binding ${name} could not be loaded (${String(error)}); ` +
        'install it or use the TLS transport',
      error,
    );
  }
  if (version !== QUINN_BINDING_VERSION) {
    throw unavailable(
      `QUIC is unavailable: ${name} is version ${String(version)}, STOQ is pinned to ` +
        QUINN_BINDING_VERSION,
    );
  }
  for (const className of ['QuinnConfig', 'Server', 'Client'] as const) {
    if (typeof binding[className] !== 'function') {
      throw unavailable(`QUIC is unavailable: ${name} has no ${className} class`);
    }
  }
  cached = binding as unknown as QuinnBinding;
  return cached;
}
