/**
 * The STOQ layer's public surface: transports, authentication, typed RPC, pool and endpoint.
 * Modules above this layer import from here, not from the files inside.
 */
export { StoqError, StoqErrorCode } from './errors.js';
export {
  ROLES,
  type Authenticator,
  type PeerIdentity,
  type Role,
  type Session,
} from './identity.js';
export { createStoqMetrics, type StoqMetrics } from './metrics.js';
export type {
  DialOptions,
  ProvenKey,
  SocketAddress,
  Transport,
  TransportConnection,
  TransportKind,
  TransportListener,
  TransportStream,
} from './transport.js';
export {
  MEMORY_STREAM_WINDOW,
  createMemoryNetwork,
  type MemoryNetwork,
  type MemoryTransportOptions,
} from './memory.js';
export { STOQ_ALPN, createTlsTransport, type TlsTransportOptions } from './tls/transport.js';
export { createQuicTransport, type QuicTransportOptions } from './quic/transport.js';
export {
  AUTH_FAILURE_REASONS,
  AUTH_MODES,
  AuthFailureReason,
  createAuthenticator,
  type AuthMode,
  type AuthenticatorOptions,
  type LocalIdentityOptions,
  type RenewableAuthenticator,
  type RevocationCheck,
  type RevocationQuery,
  type RevocationStatus,
  type TrustOptions,
} from './auth/index.js';
export { StaticResolver, type Resolver, type ResolverTable } from './resolver.js';
export {
  ConnectionPool,
  DEFAULT_BACKOFF,
  backoffDelay,
  type BackoffPolicy,
  type ConnectFunction,
  type ConnectionPoolOptions,
  type GetOptions,
  type PoolEvent,
  type PoolTimers,
} from './pool.js';
export {
  DEFAULT_MAX_INBOUND_CONNECTIONS,
  StoqEndpoint,
  type ConnectOptions,
  type StoqEndpointOptions,
} from './endpoint.js';
export * from './rpc/index.js';
