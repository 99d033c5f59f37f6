import { HyperMeshError } from '../codec/error.js';
import { ModuleError } from '../consensus/application/errors.js';

/**
 * Why the discovery module refuses a transaction or a query. The string code is what the mempool
 * returns (`TxCheckResult.code`) and what prefixes a refused transaction's `TxResult.log`; the
 * number in `DISCOVERY_RESULT_CODES` is its `TxResult.code`. Both are stable: clients switch on
 * them, so a code is never renumbered or reused. `detail.field` names the offending field.
 */
export enum DiscoveryErrorCode {
  /** Not a canonical CBOR body of a known op: bad CBOR, wrong types, missing or repeated fields. */
  MALFORMED_BODY = 'DISCOVERY_MALFORMED_BODY',
  /** A map key the body (or one of its maps) does not define. */
  UNKNOWN_FIELD = 'DISCOVERY_UNKNOWN_FIELD',
  /** A body above `MAX_DISCOVERY_BODY_BYTES`. */
  BODY_TOO_LARGE = 'DISCOVERY_BODY_TOO_LARGE',
  /** A service name that is not a lowercase DNS label (service-name rules, RFC 6335 §5.1). */
  INVALID_SERVICE_NAME = 'DISCOVERY_INVALID_SERVICE_NAME',
  /** An instance id that is not a lowercase DNS label. */
  INVALID_INSTANCE_ID = 'DISCOVERY_INVALID_INSTANCE_ID',
  /** An address list that is empty, too long, or holds a bad, unspecified or repeated address. */
  INVALID_ADDRESS = 'DISCOVERY_INVALID_ADDRESS',
  /** A port list that is empty, too long, or holds a bad port or protocol, or a protocol twice. */
  INVALID_PORT = 'DISCOVERY_INVALID_PORT',
  /** A certificate identity that is not a `spiffe://<trust-domain>/<path>` URI. */
  INVALID_IDENTITY = 'DISCOVERY_INVALID_IDENTITY',
  /** Metadata with too many entries, or a key or value of the wrong form or size. */
  INVALID_METADATA = 'DISCOVERY_INVALID_METADATA',
  /** A health check of an unknown kind, with the wrong fields, or a value out of bounds. */
  INVALID_HEALTH_CHECK = 'DISCOVERY_INVALID_HEALTH_CHECK',
  /** A TTL outside [`MIN_TTL_BLOCKS`, `MAX_TTL_BLOCKS`]. */
  INVALID_TTL = 'DISCOVERY_INVALID_TTL',
  /** A health status other than passing, warning or critical. */
  INVALID_STATUS = 'DISCOVERY_INVALID_STATUS',
  /** The instance is registered by another key. */
  NOT_OWNER = 'DISCOVERY_NOT_OWNER',
  /** No live instance of that service and id (never registered, deregistered, or expired). */
  NOT_FOUND = 'DISCOVERY_NOT_FOUND',
  /** The sender already owns `MAX_INSTANCES_PER_OWNER` live instances. */
  OWNER_LIMIT = 'DISCOVERY_OWNER_LIMIT',
  /** The service already has `MAX_INSTANCES_PER_SERVICE` live instances. */
  SERVICE_FULL = 'DISCOVERY_SERVICE_FULL',
  /** A renewal that changes nothing, sooner than `minRenewInterval(ttl)` after the last one. */
  RENEW_TOO_SOON = 'DISCOVERY_RENEW_TOO_SOON',
  /** Query data that does not have the form the query needs. */
  INVALID_QUERY = 'DISCOVERY_INVALID_QUERY',
  /**
   * A `register` or `renew` of an instance of a reserved service (`hypermesh-…`, the services
   * every node registers for itself) by a key that is not a node key of the chain.
   */
  RESERVED_SERVICE = 'DISCOVERY_RESERVED_SERVICE',
  /** A node key registering a second live instance of one reserved service. */
  RESERVED_INSTANCE_HELD = 'DISCOVERY_RESERVED_INSTANCE_HELD',
}

/** The `TxResult.code` recorded for each refusal (0 is "applied"). */
export const DISCOVERY_RESULT_CODES: Readonly<Record<DiscoveryErrorCode, number>> = Object.freeze({
  [DiscoveryErrorCode.MALFORMED_BODY]: 1,
  [DiscoveryErrorCode.UNKNOWN_FIELD]: 2,
  [DiscoveryErrorCode.BODY_TOO_LARGE]: 3,
  [DiscoveryErrorCode.INVALID_SERVICE_NAME]: 4,
  [DiscoveryErrorCode.INVALID_INSTANCE_ID]: 5,
  [DiscoveryErrorCode.INVALID_ADDRESS]: 6,
  [DiscoveryErrorCode.INVALID_PORT]: 7,
  [DiscoveryErrorCode.INVALID_IDENTITY]: 8,
  [DiscoveryErrorCode.INVALID_METADATA]: 9,
  [DiscoveryErrorCode.INVALID_HEALTH_CHECK]: 10,
  [DiscoveryErrorCode.INVALID_TTL]: 11,
  [DiscoveryErrorCode.INVALID_STATUS]: 12,
  [DiscoveryErrorCode.NOT_OWNER]: 13,
  [DiscoveryErrorCode.NOT_FOUND]: 14,
  [DiscoveryErrorCode.OWNER_LIMIT]: 15,
  [DiscoveryErrorCode.SERVICE_FULL]: 16,
  [DiscoveryErrorCode.RENEW_TOO_SOON]: 17,
  [DiscoveryErrorCode.INVALID_QUERY]: 18,
  [DiscoveryErrorCode.RESERVED_SERVICE]: 19,
  [DiscoveryErrorCode.RESERVED_INSTANCE_HELD]: 20,
});

export class DiscoveryError extends ModuleError<DiscoveryErrorCode> {
  constructor(code: DiscoveryErrorCode, message: string, detail: Record<string, unknown> = {}) {
    super(code, DISCOVERY_RESULT_CODES[code], message, detail);
  }
}

/**
 * A stored value or a query answer that does not decode, does not verify, or contradicts the
 * catalog's invariants: the store is damaged or the answer was tampered with (never a sender's
 * doing, so not a `ModuleError`; inside `apply` it is a module fault).
 */
export enum DiscoveryStateErrorCode {
  CORRUPT_VALUE = 'DISCOVERY_CORRUPT_VALUE',
  PROOF_INVALID = 'DISCOVERY_PROOF_INVALID',
}

export class DiscoveryStateError extends HyperMeshError<DiscoveryStateErrorCode> {}
