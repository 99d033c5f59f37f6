import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import { decodeStateProof, verifyStateProof } from '../storage/index.js';
import {
  DiscoveryError,
  DiscoveryErrorCode,
  DiscoveryStateError,
  DiscoveryStateErrorCode,
} from './errors.js';
import { DISCOVERY_MODULE_NAME, isLive } from './model.js';
import type { HealthStatus, OwnedInstance, ServiceIndexEntry, ServiceInstance } from './model.js';
import { INSTANCE_QUERY, OWNER_QUERY, SERVICE_QUERY } from './module.js';
import { decodeInstance, decodeOwnerList, decodeServiceIndex } from './records.js';
import { checkInstanceId, checkServiceName } from './rules.js';
import { discoveryStateKey, instanceKey, ownerKey, serviceKey } from './state.js';

export { discoveryDeregister, discoveryRegister, discoveryRenew } from './body.js';

const encoder = new TextEncoder();

function request(path: string, data: Uint8Array, height?: number): QueryRequest {
  const full = `${DISCOVERY_MODULE_NAME}/${path}`;
  return height === undefined ? { path: full, data } : { path: full, data, height };
}

function queryLabels<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof DiscoveryError)) throw error;
    throw new DiscoveryError(DiscoveryErrorCode.INVALID_QUERY, error.message, { ...error.detail });
  }
}

/** The `discovery/instance` query for one instance (optionally at an earlier height). */
export function discoveryInstanceQuery(
  service: string,
  instance: string,
  height?: number,
): QueryRequest {
  const data = queryLabels(() => `${checkServiceName(service)}/${checkInstanceId(instance)}`);
  return request(INSTANCE_QUERY, encoder.encode(data), height);
}

/** The `discovery/service` query: the index of every instance of `service`. */
export function discoveryServiceQuery(service: string, height?: number): QueryRequest {
  return request(
    SERVICE_QUERY,
    encoder.encode(queryLabels(() => checkServiceName(service))),
    height,
  );
}

/** The `discovery/owner` query: the instances a sender key owns. */
export function discoveryOwnerQuery(owner: Uint8Array, height?: number): QueryRequest {
  if (!(owner instanceof Uint8Array) || owner.length !== 32) {
    throw new DiscoveryError(
      DiscoveryErrorCode.INVALID_QUERY,
      'discovery/owner takes a 32-byte Ed25519 public key',
    );
  }
  return request(OWNER_QUERY, owner, height);
}

export interface DiscoveryVerifyOptions {
  /**
   * Height of the committed block header whose state root the caller trusts as
   * `response.stateRoot`; liveness is judged at this height. Default: `response.height`, which
   * the proof does not cover — pass the header's height when the answer comes from elsewhere.
   */
  readonly height?: number;
}

export interface ServiceVerifyOptions extends DiscoveryVerifyOptions {
  /** Keep only instances with these statuses (e.g. `HEALTHY_STATUSES`); default: all. */
  readonly statuses?: readonly HealthStatus[];
}

/**
 * Checks an answer's proof for module-relative `key` against the answer's state root and
 * returns the proven value. The caller must also trust `response.stateRoot`, e.g. by finding it
 * in a committed block header. Throws `DiscoveryStateError PROOF_INVALID`, or
 * `StateProofError` if the proof does not decode.
 */
function verified(key: Uint8Array, response: QueryResponse): Uint8Array | null {
  if (response.proof === undefined) {
    throw new DiscoveryStateError(
      DiscoveryStateErrorCode.PROOF_INVALID,
      'the answer carries no proof',
    );
  }
  const proof = decodeStateProof(response.proof);
  if (!verifyStateProof(response.stateRoot, discoveryStateKey(key), response.value, proof)) {
    throw new DiscoveryStateError(
      DiscoveryStateErrorCode.PROOF_INVALID,
      "the answer's proof does not verify against its state root",
    );
  }
  return response.value;
}

/** The height liveness is judged at, or null for an answer from before the first block. */
function judgedAt(response: QueryResponse, options: DiscoveryVerifyOptions): number | null {
  const height = options.height ?? response.height;
  if (height !== null && !(Number.isSafeInteger(height) && height >= 0)) {
    throw new RangeError(`height must be a non-negative integer, got ${String(height)}`);
  }
  return height;
}

function noHeight(what: string): never {
  throw new DiscoveryStateError(
    DiscoveryStateErrorCode.CORRUPT_VALUE,
    `the answer proves a ${what} but names no height to judge its expiry at`,
  );
}

/**
 * The proven instance, or null if it is absent or not live at the height (see
 * `DiscoveryVerifyOptions`). Throws `DiscoveryStateError` for a proof that does not verify or a
 * value that is not an instance of that service and id.
 */
export function verifyDiscoveryInstance(
  service: string,
  instance: string,
  response: QueryResponse,
  options: DiscoveryVerifyOptions = {},
): ServiceInstance | null {
  const height = judgedAt(response, options);
  const value = verified(
    instanceKey(checkServiceName(service), checkInstanceId(instance)),
    response,
  );
  if (value === null) return null;
  const record = decodeInstance(value);
  if (record.service !== service || record.instance !== instance) {
    throw new DiscoveryStateError(
      DiscoveryStateErrorCode.CORRUPT_VALUE,
      `the record proven at ${service}/${instance} names ${record.service}/${record.instance}`,
    );
  }
  if (height === null) return noHeight('instance');
  return isLive(record, height) ? record : null;
}

/**
 * The proven index of `service`: its live instances at the height, sorted by id, optionally only
 * those with the given statuses. Fetch an instance's addresses and ports with
 * `discoveryInstanceQuery(service, id, response.height)`, so both answers read one state.
 */
export function verifyDiscoveryService(
  service: string,
  response: QueryResponse,
  options: ServiceVerifyOptions = {},
): ServiceIndexEntry[] {
  const height = judgedAt(response, options);
  const value = verified(serviceKey(checkServiceName(service)), response);
  if (value === null) return [];
  const entries = decodeServiceIndex(value);
  if (height === null) return noHeight('service index');
  const { statuses } = options;
  return entries.filter(
    (entry) => isLive(entry, height) && (statuses === undefined || statuses.includes(entry.status)),
  );
}

/**
 * The proven list of instances `owner` holds. It can include instances that expired and were
 * not pruned yet: check each with `discoveryInstanceQuery` when liveness matters.
 */
export function verifyDiscoveryOwner(owner: Uint8Array, response: QueryResponse): OwnedInstance[] {
  const value = verified(ownerKey(owner), response);
  return value === null ? [] : decodeOwnerList(value);
}
