import { toHex } from '../crypto/bytes.js';
import { DiscoveryError, DiscoveryErrorCode } from './errors.js';
import { formatIpAddress, instanceAddressProblem } from './ip.js';
import {
  HEALTH_CHECK_KINDS,
  HEALTH_STATUSES,
  MAX_ADDRESSES,
  MAX_CHECK_INTERVAL_MS,
  MAX_CHECK_PATH_LENGTH,
  MAX_CHECK_THRESHOLD,
  MAX_COMMAND_ARGS,
  MAX_COMMAND_ARG_LENGTH,
  MAX_IDENTITY_BYTES,
  MAX_LABEL_LENGTH,
  MAX_METADATA_ENTRIES,
  MAX_METADATA_KEY_LENGTH,
  MAX_METADATA_VALUE_BYTES,
  MAX_PORTS,
  MAX_TTL_BLOCKS,
  MIN_CHECK_INTERVAL_MS,
  MIN_CHECK_TIMEOUT_MS,
  MIN_TTL_BLOCKS,
  PORT_PROTOCOLS,
} from './model.js';
import type {
  HealthCheck,
  HealthCheckKind,
  HealthStatus,
  PortProtocol,
  ServicePort,
} from './model.js';

/**
 * The value rules of every registered field (docs/discovery.md, "Transactions"). Each takes an
 * untrusted value — decoded from CBOR or passed by a caller of the body builders — and returns
 * it typed, or throws `DiscoveryError` with the field's code and `detail.field`.
 */

function fail(code: DiscoveryErrorCode, field: string, message: string, extra = {}): never {
  throw new DiscoveryError(code, `${field}: ${message}`, { field, ...extra });
}

function show(value: unknown): string {
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 70 ? `${value.slice(0, 70)}…` : value);
  }
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'number') return String(value);
  return value === null ? 'null' : typeof value;
}

/**
 * Service names: the service-name rules of RFC 6335 §5.1 (letters, digits and hyphens, a letter
 * first, no hyphen last or twice in a row), lowercase, up to a full DNS label of 63 characters.
 */
const SERVICE_NAME = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Instance ids: a lowercase DNS label (RFC 1123 §2.1 allows a digit first). */
const INSTANCE_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function checkServiceName(value: unknown, field = 'service'): string {
  const code = DiscoveryErrorCode.INVALID_SERVICE_NAME;
  if (typeof value !== 'string') fail(code, field, `expected text, got ${show(value)}`);
  if (!SERVICE_NAME.test(value) || value.includes('--')) {
    fail(
      code,
      field,
      `${show(value)} is not a service name: 1 to ${MAX_LABEL_LENGTH} of a-z, 0-9 and "-", a letter first, no "-" last or twice in a row`,
    );
  }
  return value;
}

/**
 * Services whose name starts with this are reserved for the chain's nodes: each node registers
 * `hypermesh-node`, `hypermesh-dns`, … for itself (docs/discovery.md, "Reserved services"), and
 * consensus peers and clients trust what the catalog says about them.
 */
export const RESERVED_SERVICE_PREFIX = 'hypermesh-';

/** Whether only node keys may register and renew instances of `service`. */
export function isReservedService(service: string): boolean {
  return service.startsWith(RESERVED_SERVICE_PREFIX);
}

export function checkInstanceId(value: unknown, field = 'instance'): string {
  const code = DiscoveryErrorCode.INVALID_INSTANCE_ID;
  if (typeof value !== 'string') fail(code, field, `expected text, got ${show(value)}`);
  if (!INSTANCE_ID.test(value)) {
    fail(
      code,
      field,
      `${show(value)} is not an instance id: 1 to ${MAX_LABEL_LENGTH} of a-z, 0-9 and "-", no "-" first or last`,
    );
  }
  return value;
}

/** Address bytes (as stored): 1 to MAX_ADDRESSES distinct usable addresses. */
export function checkAddresses(value: readonly Uint8Array[], field = 'addresses'): string[] {
  const code = DiscoveryErrorCode.INVALID_ADDRESS;
  if (value.length < 1 || value.length > MAX_ADDRESSES) {
    fail(code, field, `expected 1 to ${MAX_ADDRESSES} addresses, got ${value.length}`);
  }
  const seen = new Set<string>();
  return value.map((bytes, i) => {
    if (!(bytes instanceof Uint8Array)) fail(code, `${field}[${i}]`, `expected bytes`);
    const problem = instanceAddressProblem(bytes);
    if (problem !== undefined) fail(code, `${field}[${i}]`, problem);
    const id = toHex(bytes);
    if (seen.has(id)) {
      fail(code, `${field}[${i}]`, `${formatIpAddress(bytes)} is listed twice`);
    }
    seen.add(id);
    return formatIpAddress(bytes);
  });
}

export function checkPorts(value: readonly unknown[], field = 'ports'): ServicePort[] {
  const code = DiscoveryErrorCode.INVALID_PORT;
  if (value.length < 1 || value.length > MAX_PORTS) {
    fail(code, field, `expected 1 to ${MAX_PORTS} ports, got ${value.length}`);
  }
  const seen = new Set<string>();
  return value.map((item, i) => {
    const at = `${field}[${i}]`;
    if (typeof item !== 'object' || item === null)
      fail(code, at, `expected a port, got ${show(item)}`);
    const { protocol, port } = item as { protocol?: unknown; port?: unknown };
    if (typeof protocol !== 'string' || !(PORT_PROTOCOLS as readonly string[]).includes(protocol)) {
      fail(code, `${at}.protocol`, `${show(protocol)} is not one of ${PORT_PROTOCOLS.join(', ')}`);
    }
    if (!Number.isSafeInteger(port) || (port as number) < 1 || (port as number) > 65535) {
      fail(code, `${at}.port`, `expected a port number in [1, 65535], got ${show(port)}`);
    }
    if (seen.has(protocol)) fail(code, `${at}.protocol`, `protocol ${protocol} is listed twice`);
    seen.add(protocol);
    return { protocol: protocol as PortProtocol, port: port as number };
  });
}

/** SPIFFE ID spec §2.1 (trust domain) and §2.2 (path segments). */
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;

/**
 * A SPIFFE ID naming a workload: `spiffe://<trust-domain>/<segment>[/<segment>…]` (SPIFFE ID
 * spec §2: lowercase trust domain, at least one path segment, no "." or ".." segments, no query,
 * fragment, port or user info), at most MAX_IDENTITY_BYTES characters. HyperMesh certificates
 * name `spiffe://<cluster>/<role>/<name>`; the catalog accepts any workload SPIFFE ID so service
 * certificates with longer paths fit too.
 */
export function checkIdentity(value: unknown, field = 'identity'): string {
  const code = DiscoveryErrorCode.INVALID_IDENTITY;
  if (typeof value !== 'string') fail(code, field, `expected text, got ${show(value)}`);
  if (value.length > MAX_IDENTITY_BYTES) {
    fail(code, field, `${value.length} characters, above the limit of ${MAX_IDENTITY_BYTES}`);
  }
  const prefix = 'spiffe://';
  if (!value.startsWith(prefix)) fail(code, field, `${show(value)} does not start with ${prefix}`);
  const rest = value.slice(prefix.length);
  const slash = rest.indexOf('/');
  const domain = slash === -1 ? rest : rest.slice(0, slash);
  if (domain === '' || !TRUST_DOMAIN.test(domain)) {
    fail(
      code,
      field,
      `${show(value)}: the trust domain must be 1 or more of a-z, 0-9, ".", "_", "-"`,
    );
  }
  if (slash === -1 || slash === rest.length - 1) {
    fail(code, field, `${show(value)} names no workload: expected spiffe://<trust-domain>/<path>`);
  }
  for (const segment of rest.slice(slash + 1).split('/')) {
    if (!PATH_SEGMENT.test(segment) || segment === '.' || segment === '..') {
      fail(
        code,
        field,
        `${show(value)}: every path segment must be 1 or more of A-Z, a-z, 0-9, ".", "_", "-" and not "." or ".."`,
      );
    }
  }
  return value;
}

/** Metadata keys: lowercase, a letter or digit first, then letters, digits, ".", "_" and "-". */
const METADATA_KEY = /^[a-z0-9][a-z0-9._-]*$/;
/** No C0 controls or DEL in metadata values (they end up in logs, DNS TXT and dashboards). */
const CONTROL = /[\u0000-\u001f\u007f]/;
/** A lone UTF-16 surrogate, which has no UTF-8 form. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const encoder = new TextEncoder();

export function checkMetadataKey(key: unknown, field = 'metadata'): string {
  const code = DiscoveryErrorCode.INVALID_METADATA;
  if (typeof key !== 'string' || key.length > MAX_METADATA_KEY_LENGTH || !METADATA_KEY.test(key)) {
    fail(
      code,
      field,
      `key ${show(key)} must be 1 to ${MAX_METADATA_KEY_LENGTH} of a-z, 0-9, ".", "_", "-", a letter or digit first`,
    );
  }
  return key;
}

export function checkMetadataValue(key: string, value: unknown, field = 'metadata'): string {
  const code = DiscoveryErrorCode.INVALID_METADATA;
  const at = `${field}.${key}`;
  if (typeof value !== 'string') fail(code, at, `expected text, got ${show(value)}`);
  const size = encoder.encode(value).length;
  if (size > MAX_METADATA_VALUE_BYTES) {
    fail(code, at, `${size} bytes of UTF-8, above the limit of ${MAX_METADATA_VALUE_BYTES}`);
  }
  if (CONTROL.test(value) || LONE_SURROGATE.test(value)) {
    fail(code, at, 'control characters and lone surrogates are not allowed');
  }
  return value;
}

/** Metadata given as a record (builders); the decoder checks entries one by one as it reads. */
export function checkMetadata(value: unknown, field = 'metadata'): Record<string, string> {
  const code = DiscoveryErrorCode.INVALID_METADATA;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(code, field, `expected a map of text to text, got ${show(value)}`);
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_METADATA_ENTRIES) {
    fail(code, field, `${entries.length} entries, above the limit of ${MAX_METADATA_ENTRIES}`);
  }
  const out: Record<string, string> = {};
  for (const [key, entry] of entries) {
    out[checkMetadataKey(key, field)] = checkMetadataValue(key, entry, field);
  }
  return out;
}

export function checkTtl(value: unknown, field = 'ttl'): number {
  if (
    !Number.isSafeInteger(value) ||
    (value as number) < MIN_TTL_BLOCKS ||
    (value as number) > MAX_TTL_BLOCKS
  ) {
    fail(
      DiscoveryErrorCode.INVALID_TTL,
      field,
      `expected a number of blocks in [${MIN_TTL_BLOCKS}, ${MAX_TTL_BLOCKS}], got ${show(value)}`,
    );
  }
  return value as number;
}

export function checkStatus(value: unknown, field = 'status'): HealthStatus {
  if (typeof value !== 'string' || !(HEALTH_STATUSES as readonly string[]).includes(value)) {
    fail(
      DiscoveryErrorCode.INVALID_STATUS,
      field,
      `${show(value)} is not one of ${HEALTH_STATUSES.join(', ')}`,
    );
  }
  return value as HealthStatus;
}

/** The fields each kind of health check has, besides kind and timing. */
export const CHECK_TARGET_FIELDS: Readonly<Record<HealthCheckKind, readonly string[]>> = {
  'stoq-ping': ['port'],
  tcp: ['port'],
  http: ['path', 'port'],
  command: ['args'],
};
/** Every field a health check map can have, in canonical CBOR key order. */
export const CHECK_FIELDS = [
  'args',
  'fall',
  'kind',
  'path',
  'port',
  'rise',
  'timeout',
  'interval',
] as const;

/** Which declared protocols a check of each kind can target. */
const CHECK_PROTOCOLS: Readonly<Record<'stoq-ping' | 'tcp' | 'http', readonly PortProtocol[]>> = {
  'stoq-ping': ['stoq'],
  tcp: ['tcp', 'tls', 'http', 'https'],
  http: ['http', 'https'],
};

/** Printable ASCII without spaces, starting with "/". */
const HTTP_PATH = /^\/[\x21-\x7e]*$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

function checkBound(field: string, value: unknown, min: number, max: number, unit: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) {
    fail(
      DiscoveryErrorCode.INVALID_HEALTH_CHECK,
      field,
      `expected ${unit} in [${min}, ${max}], got ${show(value)}`,
    );
  }
  return value as number;
}

/**
 * A health check: a known kind, exactly that kind's fields, timing within bounds, and a target
 * the instance declares (`ports`: its checked port list).
 */
export function checkHealthCheck(
  value: unknown,
  ports: readonly ServicePort[],
  field = 'check',
): HealthCheck {
  const code = DiscoveryErrorCode.INVALID_HEALTH_CHECK;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(code, field, `expected a health check map, got ${show(value)}`);
  }
  const raw = value as Record<string, unknown>;
  const kind = raw['kind'];
  if (typeof kind !== 'string' || !(HEALTH_CHECK_KINDS as readonly string[]).includes(kind)) {
    fail(code, `${field}.kind`, `${show(kind)} is not one of ${HEALTH_CHECK_KINDS.join(', ')}`);
  }
  const checkKind = kind as HealthCheckKind;
  const allowed = [
    'kind',
    'interval',
    'timeout',
    'rise',
    'fall',
    ...CHECK_TARGET_FIELDS[checkKind],
  ];
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key) && raw[key] !== undefined) {
      fail(code, `${field}.${key}`, `a ${checkKind} check has no field ${JSON.stringify(key)}`);
    }
  }
  for (const key of allowed) {
    if (raw[key] === undefined) fail(code, `${field}.${key}`, `a ${checkKind} check needs ${key}`);
  }
  const interval = checkBound(
    `${field}.interval`,
    raw['interval'],
    MIN_CHECK_INTERVAL_MS,
    MAX_CHECK_INTERVAL_MS,
    'milliseconds',
  );
  const timeout = checkBound(
    `${field}.timeout`,
    raw['timeout'],
    MIN_CHECK_TIMEOUT_MS,
    interval,
    'milliseconds (at most the interval)',
  );
  const rise = checkBound(`${field}.rise`, raw['rise'], 1, MAX_CHECK_THRESHOLD, 'a count');
  const fall = checkBound(`${field}.fall`, raw['fall'], 1, MAX_CHECK_THRESHOLD, 'a count');
  const timing = { interval, timeout, rise, fall };
  if (checkKind === 'command') {
    const args = raw['args'];
    if (!Array.isArray(args) || args.length < 1 || args.length > MAX_COMMAND_ARGS) {
      fail(code, `${field}.args`, `expected 1 to ${MAX_COMMAND_ARGS} arguments, got ${show(args)}`);
    }
    args.forEach((arg: unknown, i) => {
      if (
        typeof arg !== 'string' ||
        arg.length > MAX_COMMAND_ARG_LENGTH ||
        !PRINTABLE_ASCII.test(arg)
      ) {
        fail(
          code,
          `${field}.args[${i}]`,
          `expected 1 to ${MAX_COMMAND_ARG_LENGTH} printable ASCII characters, got ${show(arg)}`,
        );
      }
    });
    return { kind: checkKind, args: [...(args as string[])], ...timing };
  }
  const port = checkBound(`${field}.port`, raw['port'], 1, 65535, 'a port number');
  const protocols = CHECK_PROTOCOLS[checkKind];
  if (!ports.some((p) => p.port === port && protocols.includes(p.protocol))) {
    fail(
      code,
      `${field}.port`,
      `a ${checkKind} check targets a port the instance declares as ${protocols.join(' or ')}; ${port} is not one`,
    );
  }
  if (checkKind === 'http') {
    const path = raw['path'];
    if (typeof path !== 'string' || path.length > MAX_CHECK_PATH_LENGTH || !HTTP_PATH.test(path)) {
      fail(
        code,
        `${field}.path`,
        `expected "/" and up to ${MAX_CHECK_PATH_LENGTH - 1} more printable ASCII characters without spaces, got ${show(path)}`,
      );
    }
    return { kind: checkKind, port, path, ...timing };
  }
  return { kind: checkKind, port, ...timing };
}
