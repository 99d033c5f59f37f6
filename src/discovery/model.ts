/**
 * The service catalog's data model (docs/discovery.md, "Data model"): what a registration says,
 * what the catalog stores per instance, and the limits that bound every value.
 */

export const DISCOVERY_MODULE_NAME = 'discovery';

/** Largest transaction body the module reads (the envelope allows 32 KiB). */
export const MAX_DISCOVERY_BODY_BYTES = 16 * 1024;
/** A service name or instance id is one DNS label (RFC 1035 §2.3.4). */
export const MAX_LABEL_LENGTH = 63;
export const MAX_ADDRESSES = 8;
/** Transport protocols a port can be registered for; the `_<protocol>` of a later SRV name. */
export const PORT_PROTOCOLS = ['stoq', 'quic', 'tcp', 'udp', 'tls', 'http', 'https'] as const;
/** At most one port per protocol. */
export const MAX_PORTS = PORT_PROTOCOLS.length;
export const MAX_IDENTITY_BYTES = 255;
export const MAX_METADATA_ENTRIES = 16;
export const MAX_METADATA_KEY_LENGTH = 63;
export const MAX_METADATA_VALUE_BYTES = 255;

export const HEALTH_CHECK_KINDS = ['stoq-ping', 'tcp', 'http', 'command'] as const;
export const MIN_CHECK_INTERVAL_MS = 1_000;
export const MAX_CHECK_INTERVAL_MS = 3_600_000;
export const MIN_CHECK_TIMEOUT_MS = 100;
/** Largest `rise` / `fall`: consecutive results needed to change status. */
export const MAX_CHECK_THRESHOLD = 10;
export const MAX_CHECK_PATH_LENGTH = 255;
export const MAX_COMMAND_ARGS = 16;
export const MAX_COMMAND_ARG_LENGTH = 255;

/** TTL bounds, in blocks. The lower bound leaves room for renewals every `ttl / 3` blocks. */
export const MIN_TTL_BLOCKS = 8;
export const MAX_TTL_BLOCKS = 100_000;

export const HEALTH_STATUSES = ['passing', 'warning', 'critical'] as const;
/** Statuses a resolver treats as serving: `warning` is degraded but up (as in Consul's DNS). */
export const HEALTHY_STATUSES: readonly HealthStatus[] = ['passing', 'warning'];

/** Live instances one service may have; also bounds its index value (one provable key). */
export const MAX_INSTANCES_PER_SERVICE = 64;
/** Live instances one sender key may own. */
export const MAX_INSTANCES_PER_OWNER = 32;

export type PortProtocol = (typeof PORT_PROTOCOLS)[number];
export type HealthCheckKind = (typeof HEALTH_CHECK_KINDS)[number];
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

export interface ServicePort {
  readonly protocol: PortProtocol;
  /** 1 to 65535. */
  readonly port: number;
}

interface CheckTiming {
  /** Milliseconds between checks, in [MIN_CHECK_INTERVAL_MS, MAX_CHECK_INTERVAL_MS]. */
  readonly interval: number;
  /** Milliseconds one check may take, in [MIN_CHECK_TIMEOUT_MS, interval]. */
  readonly timeout: number;
  /** Consecutive successes that make a failing instance passing, 1 to MAX_CHECK_THRESHOLD. */
  readonly rise: number;
  /** Consecutive failures that make a passing instance critical, 1 to MAX_CHECK_THRESHOLD. */
  readonly fall: number;
}

/** A STOQ ping to the instance at `port`, which the instance declares with protocol `stoq`. */
export interface StoqPingCheck extends CheckTiming {
  readonly kind: 'stoq-ping';
  readonly port: number;
}

/** A TCP connect to `port`, which the instance declares with protocol tcp, tls, http or https. */
export interface TcpCheck extends CheckTiming {
  readonly kind: 'tcp';
  readonly port: number;
}

/** An HTTP GET of `path` on `port`, which the instance declares as http or https. */
export interface HttpCheck extends CheckTiming {
  readonly kind: 'http';
  readonly port: number;
  /** Absolute path (and query), printable ASCII without spaces, starting with "/". */
  readonly path: string;
}

/** A program the hosting node runs. */
export interface CommandCheck extends CheckTiming {
  readonly kind: 'command';
  /** argv: the program, then its arguments; printable ASCII. */
  readonly args: readonly string[];
}

export type HealthCheck = StoqPingCheck | TcpCheck | HttpCheck | CommandCheck;

/** What a registration says about an instance (everything but who owns it and when). */
export interface InstanceRegistration {
  /** The service: a lowercase DNS label such as `acme` or `trustchain-ca`. */
  readonly service: string;
  /** The instance id, unique within the service: a lowercase DNS label. */
  readonly instance: string;
  /** Canonical text of 1 to MAX_ADDRESSES distinct IPv4/IPv6 literals, in preference order. */
  readonly addresses: readonly string[];
  /** 1 to MAX_PORTS ports, at most one per protocol, in the order given. */
  readonly ports: readonly ServicePort[];
  /** The certificate identity that serves the instance, `spiffe://<trust-domain>/<path>`. */
  readonly identity: string;
  /** Up to MAX_METADATA_ENTRIES string pairs. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly check: HealthCheck;
  /** Blocks after the last registration or renewal at which the instance expires. */
  readonly ttl: number;
  /** The health status the hosting node reports with this registration. */
  readonly status: HealthStatus;
}

export interface RegisterTx extends InstanceRegistration {
  readonly op: 'register';
}

export interface RenewTx {
  readonly op: 'renew';
  readonly service: string;
  readonly instance: string;
  readonly status: HealthStatus;
}

export interface DeregisterTx {
  readonly op: 'deregister';
  readonly service: string;
  readonly instance: string;
}

export type DiscoveryTx = RegisterTx | RenewTx | DeregisterTx;

/** An instance as the catalog stores it (the value a `discovery/instance` query proves). */
export interface ServiceInstance extends InstanceRegistration {
  /** Raw Ed25519 key of the sender that registered it: the only key that may change it. */
  readonly owner: Uint8Array;
  /** Height of the block that first registered it under this owner. */
  readonly registeredAt: number;
  /** Height of its last registration (a change of any registered field). */
  readonly updatedAt: number;
  /** First height at which it is no longer live: last registration or renewal + ttl. */
  readonly expiresAt: number;
}

/** One instance in a service's index (the value a `discovery/service` query proves). */
export interface ServiceIndexEntry {
  readonly instance: string;
  readonly status: HealthStatus;
  readonly expiresAt: number;
  readonly updatedAt: number;
}

/** One instance an owner holds (the value a `discovery/owner` query proves). */
export interface OwnedInstance {
  readonly service: string;
  readonly instance: string;
}

/**
 * An instance is live in the state at `height` (after block `height`), and in the transactions
 * of block `height`, while `height < expiresAt`.
 */
export function isLive(entry: { readonly expiresAt: number }, height: number): boolean {
  return height < entry.expiresAt;
}

/**
 * Fewest blocks between two renewals that change nothing (same status): `floor(ttl / 4)`. The
 * hosting node renews every `ttl / 3` blocks (`renewInterval`), so it is never refused and has
 * at least two attempts before the instance expires.
 */
export function minRenewInterval(ttl: number): number {
  return Math.floor(ttl / 4);
}

/** How often the hosting node should renew an unchanged instance: every `floor(ttl / 3)` blocks. */
export function renewInterval(ttl: number): number {
  return Math.floor(ttl / 3);
}
