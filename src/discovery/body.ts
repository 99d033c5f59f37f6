import { CanonicalReader } from '../codec/canonical-reader.js';
import { encodeCanonical } from '../codec/cbor.js';
import {
  REGISTRATION_FIELDS,
  REGISTRATION_READERS,
  asField,
  malformed,
  readFieldKey,
  readFields,
  registrationFrom,
  registrationValue,
  requireFields,
} from './codec.js';
import type { FieldReader } from './codec.js';
import { DiscoveryError, DiscoveryErrorCode } from './errors.js';
import { MAX_DISCOVERY_BODY_BYTES } from './model.js';
import type {
  DeregisterTx,
  DiscoveryTx,
  HealthStatus,
  InstanceRegistration,
  RenewTx,
} from './model.js';
import { checkInstanceId, checkServiceName, checkStatus } from './rules.js';

/**
 * Transaction bodies of the discovery module (docs/discovery.md, "Transactions"), canonical CBOR
 * maps whose first key (the shortest) is `op`:
 *
 *   register   { op: "register", ttl, check, ports, status, service, identity, instance,
 *                metadata, addresses }
 *   renew      { op: "renew", status, service, instance }
 *   deregister { op: "deregister", service, instance }
 *
 * Every field is required; the sender, chain and sequence are in the signed envelope.
 */

const OPS = ['register', 'renew', 'deregister'] as const;

const RENEW_READERS: Readonly<Record<string, FieldReader>> = {
  status: REGISTRATION_READERS['status']!,
  service: REGISTRATION_READERS['service']!,
  instance: REGISTRATION_READERS['instance']!,
};
const DEREGISTER_READERS: Readonly<Record<string, FieldReader>> = {
  service: REGISTRATION_READERS['service']!,
  instance: REGISTRATION_READERS['instance']!,
};
const ALL_FIELDS = ['op', ...REGISTRATION_FIELDS];

/**
 * Parses a discovery transaction body (stateless rules). Accepts only the canonical encoding.
 * Throws `DiscoveryError`: `BODY_TOO_LARGE`, `MALFORMED_BODY`, `UNKNOWN_FIELD`, or the code of
 * the field that breaks its rule (`INVALID_SERVICE_NAME` … `INVALID_STATUS`).
 */
export function decodeDiscoveryBody(body: Uint8Array): DiscoveryTx {
  if (!(body instanceof Uint8Array)) malformed('a body is a byte string');
  if (body.length > MAX_DISCOVERY_BODY_BYTES) {
    throw new DiscoveryError(
      DiscoveryErrorCode.BODY_TOO_LARGE,
      `discovery body is ${body.length} bytes, above the limit of ${MAX_DISCOVERY_BODY_BYTES}`,
      { size: body.length, limit: MAX_DISCOVERY_BODY_BYTES },
    );
  }
  try {
    return decodeBody(body);
  } catch (error) {
    if (error instanceof DiscoveryError) throw error;
    return malformed(`discovery body: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function decodeBody(body: Uint8Array): DiscoveryTx {
  const reader = new CanonicalReader(body);
  const count = reader.readMapLength('body', 64);
  if (count === 0) malformed('discovery body: empty map; a body has an "op" field');
  // "op" sorts before every other field, so it is the first key of any canonical body.
  const first = readFieldKey(reader, '', undefined, ALL_FIELDS);
  if (first !== 'op') malformed('discovery body: missing field "op"', { field: 'op' });
  const op = asField(DiscoveryErrorCode.MALFORMED_BODY, 'op', () => reader.readText('op', 32));
  if (!(OPS as readonly string[]).includes(op)) {
    malformed(`discovery body: unknown op ${JSON.stringify(op)}; known: ${OPS.join(', ')}`, {
      field: 'op',
    });
  }
  const readers =
    op === 'register' ? REGISTRATION_READERS : op === 'renew' ? RENEW_READERS : DEREGISTER_READERS;
  const fields = readFields(reader, '', count - 1, readers, 'op');
  reader.end('body');
  requireFields(fields, Object.keys(readers), `a ${op} body`);
  if (op === 'register') return { op, ...registrationFrom(fields) };
  const service = checkServiceName(fields['service']);
  const instance = checkInstanceId(fields['instance']);
  if (op === 'deregister') return { op, service, instance };
  return { op: 'renew', service, instance, status: checkStatus(fields['status']) };
}

function sized(body: Uint8Array): Uint8Array {
  if (body.length > MAX_DISCOVERY_BODY_BYTES) {
    throw new DiscoveryError(
      DiscoveryErrorCode.BODY_TOO_LARGE,
      `discovery body is ${body.length} bytes, above the limit of ${MAX_DISCOVERY_BODY_BYTES}`,
      { size: body.length, limit: MAX_DISCOVERY_BODY_BYTES },
    );
  }
  return body;
}

/**
 * The body of a `register` (a new instance, or a change to one the sender owns). Addresses may
 * be in any standard text form; they are stored as bytes and read back in canonical text.
 * Throws `DiscoveryError` for anything the decoder would refuse.
 */
export function discoveryRegister(input: InstanceRegistration): Uint8Array {
  return sized(encodeCanonical({ op: 'register', ...registrationValue(input) }));
}

/** The body of a `renew`: a heartbeat carrying the current health status. */
export function discoveryRenew(
  service: string,
  instance: string,
  status: HealthStatus,
): Uint8Array {
  const tx: RenewTx = {
    op: 'renew',
    service: checkServiceName(service),
    instance: checkInstanceId(instance),
    status: checkStatus(status),
  };
  return encodeCanonical(tx);
}

/** The body of a `deregister`. */
export function discoveryDeregister(service: string, instance: string): Uint8Array {
  const tx: DeregisterTx = {
    op: 'deregister',
    service: checkServiceName(service),
    instance: checkInstanceId(instance),
  };
  return encodeCanonical(tx);
}
