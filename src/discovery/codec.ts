import type { CanonicalReader } from '../codec/canonical-reader.js';
import { SchemaError } from '../codec/schema.js';
import { DiscoveryError, DiscoveryErrorCode } from './errors.js';
import { parseIpAddress } from './ip.js';
import { MAX_METADATA_ENTRIES } from './model.js';
import type { HealthCheck, InstanceRegistration, ServicePort } from './model.js';
import {
  CHECK_FIELDS,
  checkAddresses,
  checkHealthCheck,
  checkIdentity,
  checkInstanceId,
  checkMetadata,
  checkMetadataKey,
  checkMetadataValue,
  checkPorts,
  checkServiceName,
  checkStatus,
  checkTtl,
} from './rules.js';

/**
 * Reading and writing the catalog's canonical CBOR (RFC 8949 §4.2.1) maps: transaction bodies
 * (body.ts) and stored instances (records.ts) share the registration fields.
 *
 * The reader is the shared `CanonicalReader`, so only the canonical encoding is accepted. How its
 * errors become codes: a field whose value has the wrong type, size or form gets that field's
 * code (`INVALID_PORT` for a port that is text, too large or listed twice); a key the map does
 * not define is `UNKNOWN_FIELD`; everything else — not CBOR, not canonical, not a map, a missing
 * field, trailing bytes — is `MALFORMED_BODY`.
 */

/** Generous caps on what the reader takes before a field's own rule judges it. */
const TEXT_CAP = 1024;
const LIST_CAP = 64;

export function malformed(message: string, detail: Record<string, unknown> = {}): never {
  throw new DiscoveryError(DiscoveryErrorCode.MALFORMED_BODY, message, detail);
}

/** Runs `read`, turning a schema refusal (wrong type, size, range) into `code` for `field`. */
export function asField<T>(code: DiscoveryErrorCode, field: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof SchemaError) {
      throw new DiscoveryError(code, error.message, { field });
    }
    throw error;
  }
}

export type FieldReader = (reader: CanonicalReader, path: string) => unknown;

/** A map key that must be one of `known` (in canonical order after `previous`). */
export function readFieldKey(
  reader: CanonicalReader,
  path: string,
  previous: string | undefined,
  known: readonly string[],
): string {
  let key: string;
  try {
    key = reader.readKey(path, previous);
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error;
    throw new DiscoveryError(DiscoveryErrorCode.UNKNOWN_FIELD, error.message, { field: path });
  }
  if (!known.includes(key)) {
    const where = path === '' ? key : `${path}.${key}`;
    throw new DiscoveryError(
      DiscoveryErrorCode.UNKNOWN_FIELD,
      `unknown field ${JSON.stringify(where)}; the fields are ${known.join(', ')}`,
      { field: where },
    );
  }
  return key;
}

/** Reads `count` entries of a map whose fields `readers` defines, after key `previous`. */
export function readFields(
  reader: CanonicalReader,
  path: string,
  count: number,
  readers: Readonly<Record<string, FieldReader>>,
  previous?: string,
): Record<string, unknown> {
  const known = Object.keys(readers);
  const fields: Record<string, unknown> = {};
  let last = previous;
  for (let i = 0; i < count; i++) {
    const key = readFieldKey(reader, path, last, known);
    fields[key] = readers[key]!(reader, path === '' ? key : `${path}.${key}`);
    last = key;
  }
  return fields;
}

export function requireFields(
  fields: Record<string, unknown>,
  names: readonly string[],
  what: string,
): void {
  for (const name of names) {
    if (fields[name] === undefined) malformed(`${what}: missing field "${name}"`, { field: name });
  }
}

const text =
  (code: DiscoveryErrorCode): FieldReader =>
  (reader, path) =>
    asField(code, path, () => reader.readText(path, TEXT_CAP));

const uint =
  (code: DiscoveryErrorCode): FieldReader =>
  (reader, path) =>
    asField(code, path, () => reader.readUint(path));

const readAddressList: FieldReader = (reader, path) =>
  asField(DiscoveryErrorCode.INVALID_ADDRESS, path, () => {
    const count = reader.readArrayLength(path, LIST_CAP);
    return Array.from({ length: count }, (_, i) => reader.readBytes(`${path}[${i}]`, 0, LIST_CAP));
  });

const PORT_READERS: Readonly<Record<string, FieldReader>> = {
  port: uint(DiscoveryErrorCode.INVALID_PORT),
  protocol: text(DiscoveryErrorCode.INVALID_PORT),
};

const readPortList: FieldReader = (reader, path) =>
  asField(DiscoveryErrorCode.INVALID_PORT, path, () => {
    const count = reader.readArrayLength(path, LIST_CAP);
    return Array.from({ length: count }, (_, i) => {
      const at = `${path}[${i}]`;
      const entries = reader.readMapLength(at, LIST_CAP);
      return readFields(reader, at, entries, PORT_READERS);
    });
  });

const readMetadata: FieldReader = (reader, path) =>
  asField(DiscoveryErrorCode.INVALID_METADATA, path, () => {
    const count = reader.readMapLength(path, LIST_CAP);
    if (count > MAX_METADATA_ENTRIES) {
      throw new DiscoveryError(
        DiscoveryErrorCode.INVALID_METADATA,
        `${path}: ${count} entries, above the limit of ${MAX_METADATA_ENTRIES}`,
        { field: path },
      );
    }
    const metadata: Record<string, string> = {};
    let previous: string | undefined;
    for (let i = 0; i < count; i++) {
      const key = checkMetadataKey(reader.readKey(path, previous), path);
      metadata[key] = checkMetadataValue(key, reader.readText(`${path}.${key}`, TEXT_CAP), path);
      previous = key;
    }
    return metadata;
  });

const readCommandArgs: FieldReader = (reader, path) =>
  asField(DiscoveryErrorCode.INVALID_HEALTH_CHECK, path, () => {
    const count = reader.readArrayLength(path, LIST_CAP);
    return Array.from({ length: count }, (_, i) => reader.readText(`${path}[${i}]`, TEXT_CAP));
  });

const CHECK_READERS: Readonly<Record<string, FieldReader>> = Object.fromEntries(
  CHECK_FIELDS.map((name): [string, FieldReader] => {
    const code = DiscoveryErrorCode.INVALID_HEALTH_CHECK;
    if (name === 'args') return [name, readCommandArgs];
    if (name === 'kind' || name === 'path') return [name, text(code)];
    return [name, uint(code)];
  }),
);

const readCheck: FieldReader = (reader, path) =>
  asField(DiscoveryErrorCode.INVALID_HEALTH_CHECK, path, () => {
    const count = reader.readMapLength(path, LIST_CAP);
    return readFields(reader, path, count, CHECK_READERS);
  });

/** Readers of the registration fields, shared by the register body and the stored instance. */
export const REGISTRATION_READERS: Readonly<Record<string, FieldReader>> = {
  ttl: uint(DiscoveryErrorCode.INVALID_TTL),
  check: readCheck,
  ports: readPortList,
  status: text(DiscoveryErrorCode.INVALID_STATUS),
  service: text(DiscoveryErrorCode.INVALID_SERVICE_NAME),
  identity: text(DiscoveryErrorCode.INVALID_IDENTITY),
  instance: text(DiscoveryErrorCode.INVALID_INSTANCE_ID),
  metadata: readMetadata,
  addresses: readAddressList,
};

export const REGISTRATION_FIELDS = Object.keys(REGISTRATION_READERS);

/** The typed registration from fields read by `REGISTRATION_READERS` (all present). */
export function registrationFrom(fields: Record<string, unknown>): InstanceRegistration {
  const service = checkServiceName(fields['service']);
  const instance = checkInstanceId(fields['instance']);
  const addresses = checkAddresses(fields['addresses'] as Uint8Array[]);
  const ports = checkPorts(fields['ports'] as unknown[]);
  const identity = checkIdentity(fields['identity']);
  const metadata = fields['metadata'] as Record<string, string>;
  const check = checkHealthCheck(fields['check'], ports);
  const ttl = checkTtl(fields['ttl']);
  const status = checkStatus(fields['status']);
  return { service, instance, addresses, ports, identity, metadata, check, ttl, status };
}

function addressBytes(address: string, i: number): Uint8Array {
  const bytes = typeof address === 'string' ? parseIpAddress(address) : undefined;
  if (bytes === undefined) {
    throw new DiscoveryError(
      DiscoveryErrorCode.INVALID_ADDRESS,
      `addresses[${i}]: ${JSON.stringify(String(address)).slice(0, 80)} is not an IPv4 or IPv6 literal`,
      { field: `addresses[${i}]` },
    );
  }
  return bytes;
}

/** The wire form of a check: exactly its kind's fields. */
function checkValue(check: HealthCheck): Record<string, unknown> {
  const { kind, interval, timeout, rise, fall } = check;
  const timing = { kind, interval, timeout, rise, fall };
  switch (check.kind) {
    case 'command':
      return { ...timing, args: [...check.args] };
    case 'http':
      return { ...timing, port: check.port, path: check.path };
    default:
      return { ...timing, port: check.port };
  }
}

/**
 * Checks a registration given by a caller (any textual address form) and returns its canonical
 * CBOR fields: the same rules the decoder applies, so a builder never makes a body the module
 * refuses for its form.
 */
export function registrationValue(input: InstanceRegistration): Record<string, unknown> {
  if (typeof input !== 'object' || input === null) malformed('expected a registration');
  const service = checkServiceName(input.service);
  const instance = checkInstanceId(input.instance);
  if (!Array.isArray(input.addresses)) {
    throw new DiscoveryError(DiscoveryErrorCode.INVALID_ADDRESS, 'addresses: expected a list', {
      field: 'addresses',
    });
  }
  const addresses = input.addresses.map(addressBytes);
  checkAddresses(addresses);
  if (!Array.isArray(input.ports)) {
    throw new DiscoveryError(DiscoveryErrorCode.INVALID_PORT, 'ports: expected a list', {
      field: 'ports',
    });
  }
  const ports: ServicePort[] = checkPorts(input.ports);
  const identity = checkIdentity(input.identity);
  const metadata = checkMetadata(input.metadata);
  const check = checkHealthCheck(input.check, ports);
  return {
    service,
    instance,
    addresses,
    ports: ports.map(({ port, protocol }) => ({ port, protocol })),
    identity,
    metadata,
    check: checkValue(check),
    ttl: checkTtl(input.ttl),
    status: checkStatus(input.status),
  };
}
