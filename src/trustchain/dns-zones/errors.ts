import { HyperMeshError } from '../../codec/error.js';
import { ModuleError } from '../../consensus/application/errors.js';

/**
 * Why the DNS zone module refuses a transaction or a query. The string code is what the mempool
 * returns and what prefixes a refused transaction's `TxResult.log`; the number in
 * `DNS_ZONES_RESULT_CODES` is its `TxResult.code`. Both are stable: a code is never renumbered
 * or reused. `detail.field` names a body field, `detail.name` the name concerned.
 */
export enum DnsZonesErrorCode {
  /** Not a canonical CBOR body of a known op: bad CBOR, wrong types, missing fields, trailing bytes. */
  MALFORMED_BODY = 'DNS_ZONES_MALFORMED_BODY',
  /** A map key the body (or its `soa` / `nameservers` map) does not define. */
  UNKNOWN_FIELD = 'DNS_ZONES_UNKNOWN_FIELD',
  /** A body above `MAX_DNS_BODY_BYTES`. */
  BODY_TOO_LARGE = 'DNS_ZONES_BODY_TOO_LARGE',
  /** A name that is not a domain name in canonical text, the root, or a misplaced wildcard. */
  INVALID_NAME = 'DNS_ZONES_INVALID_NAME',
  /** Zone parameters out of their rules: SOA fields, name servers, admins, policy. */
  INVALID_ZONE = 'DNS_ZONES_INVALID_ZONE',
  /** RDATA that does not decode, is not canonical, or breaks its type's rules; a bad TTL or type. */
  INVALID_RECORD = 'DNS_ZONES_INVALID_RECORD',
  /** SOA, DNSSEC types, or NS at the apex: the module and the signer manage them. */
  MANAGED_TYPE = 'DNS_ZONES_MANAGED_TYPE',
  /** The same record twice in one RRset (RFC 2181 §5). */
  DUPLICATE_RECORD = 'DNS_ZONES_DUPLICATE_RECORD',
  /** A CNAME next to other data, or two CNAMEs (RFC 2181 §10.1). */
  CNAME_CONFLICT = 'DNS_ZONES_CNAME_CONFLICT',
  /** Data a delegation would hide: non-glue below an NS, or NS above non-glue (RFC 1034 §4.2.1). */
  OCCLUDED_DATA = 'DNS_ZONES_OCCLUDED_DATA',
  /** DS at a name without NS, or NS deleted under a DS (RFC 4035 §2.4). */
  DS_NOT_AT_DELEGATION = 'DNS_ZONES_DS_NOT_AT_DELEGATION',
  /** The name is in no zone the module holds. */
  NOT_IN_ZONE = 'DNS_ZONES_NOT_IN_ZONE',
  /** zone-create of an apex that is already a zone. */
  ZONE_EXISTS = 'DNS_ZONES_ZONE_EXISTS',
  /** zone-create of an apex inside or above another zone. */
  ZONE_OVERLAP = 'DNS_ZONES_ZONE_OVERLAP',
  /** zone-update of an apex that is not a zone. */
  NO_SUCH_ZONE = 'DNS_ZONES_NO_SUCH_ZONE',
  /** The sender is not an admin of the zone (or, for zone-create, of any cluster zone). */
  NOT_ZONE_ADMIN = 'DNS_ZONES_NOT_ZONE_ADMIN',
  /** register, transfer or release of a zone apex, which belongs to the zone's admins. */
  IS_APEX = 'DNS_ZONES_IS_APEX',
  /** register of a name someone owns. */
  ALREADY_OWNED = 'DNS_ZONES_ALREADY_OWNED',
  /** register below a name another key owns (the owner of a name controls the names below it). */
  ANCESTOR_OWNED = 'DNS_ZONES_ANCESTOR_OWNED',
  /** transfer, release or a records change of a name nobody registered. */
  NOT_REGISTERED = 'DNS_ZONES_NOT_REGISTERED',
  /** The name belongs to another key. */
  NOT_OWNER = 'DNS_ZONES_NOT_OWNER',
  /** records-delete of a type the name does not have. */
  NO_SUCH_RRSET = 'DNS_ZONES_NO_SUCH_RRSET',
  /** More than `MAX_RECORDS_PER_NAME` records, or `MAX_NAME_RDATA_BYTES`, at one name. */
  RECORDS_LIMIT = 'DNS_ZONES_RECORDS_LIMIT',
  /** An RRset above `MAX_RRSET_BYTES` of RDATA. */
  RRSET_TOO_LARGE = 'DNS_ZONES_RRSET_TOO_LARGE',
  /** The sender (or a transfer's recipient) already owns `MAX_NAMES_PER_OWNER` names. */
  OWNER_LIMIT = 'DNS_ZONES_OWNER_LIMIT',
  /** The module already holds `MAX_ZONES` zones. */
  ZONE_LIMIT = 'DNS_ZONES_ZONE_LIMIT',
  /** The zone already has `MAX_NAMES_PER_ZONE` names. */
  ZONE_FULL = 'DNS_ZONES_ZONE_FULL',
  /** A transfer to the name's own owner. */
  SELF_TRANSFER = 'DNS_ZONES_SELF_TRANSFER',
  /** Query data that does not have the form the query needs (a query error, never in a block). */
  INVALID_QUERY = 'DNS_ZONES_INVALID_QUERY',
  /**
   * register above, or NS (a delegation) over, a registered name another key owns: either would
   * put that key's name under the sender (only a zone admin may register such a name).
   */
  DESCENDANT_OWNED = 'DNS_ZONES_DESCENDANT_OWNED',
}

/** The `TxResult.code` recorded for each refusal (0 is "applied"). */
export const DNS_ZONES_RESULT_CODES: Readonly<Record<DnsZonesErrorCode, number>> = Object.freeze({
  [DnsZonesErrorCode.MALFORMED_BODY]: 1,
  [DnsZonesErrorCode.UNKNOWN_FIELD]: 2,
  [DnsZonesErrorCode.BODY_TOO_LARGE]: 3,
  [DnsZonesErrorCode.INVALID_NAME]: 4,
  [DnsZonesErrorCode.INVALID_ZONE]: 5,
  [DnsZonesErrorCode.INVALID_RECORD]: 6,
  [DnsZonesErrorCode.MANAGED_TYPE]: 7,
  [DnsZonesErrorCode.DUPLICATE_RECORD]: 8,
  [DnsZonesErrorCode.CNAME_CONFLICT]: 9,
  [DnsZonesErrorCode.OCCLUDED_DATA]: 10,
  [DnsZonesErrorCode.DS_NOT_AT_DELEGATION]: 11,
  [DnsZonesErrorCode.NOT_IN_ZONE]: 12,
  [DnsZonesErrorCode.ZONE_EXISTS]: 13,
  [DnsZonesErrorCode.ZONE_OVERLAP]: 14,
  [DnsZonesErrorCode.NO_SUCH_ZONE]: 15,
  [DnsZonesErrorCode.NOT_ZONE_ADMIN]: 16,
  [DnsZonesErrorCode.IS_APEX]: 17,
  [DnsZonesErrorCode.ALREADY_OWNED]: 18,
  [DnsZonesErrorCode.ANCESTOR_OWNED]: 19,
  [DnsZonesErrorCode.NOT_REGISTERED]: 20,
  [DnsZonesErrorCode.NOT_OWNER]: 21,
  [DnsZonesErrorCode.NO_SUCH_RRSET]: 22,
  [DnsZonesErrorCode.RECORDS_LIMIT]: 23,
  [DnsZonesErrorCode.RRSET_TOO_LARGE]: 24,
  [DnsZonesErrorCode.OWNER_LIMIT]: 25,
  [DnsZonesErrorCode.ZONE_LIMIT]: 26,
  [DnsZonesErrorCode.ZONE_FULL]: 27,
  [DnsZonesErrorCode.SELF_TRANSFER]: 28,
  [DnsZonesErrorCode.INVALID_QUERY]: 29,
  [DnsZonesErrorCode.DESCENDANT_OWNED]: 30,
});

export class DnsZonesError extends ModuleError<DnsZonesErrorCode> {
  constructor(code: DnsZonesErrorCode, message: string, detail: Record<string, unknown> = {}) {
    super(code, DNS_ZONES_RESULT_CODES[code], message, detail);
  }
}

/**
 * A stored value or a query answer that does not decode, does not verify, or contradicts the
 * module's invariants (never a sender's doing, so not a `ModuleError`; inside `apply` it is a
 * module fault); and the bridge's own misuse.
 */
export enum DnsZonesStateErrorCode {
  CORRUPT_VALUE = 'DNS_ZONES_CORRUPT_VALUE',
  PROOF_INVALID = 'DNS_ZONES_PROOF_INVALID',
  /** The bridge was given a block that does not follow the state it holds. */
  OUT_OF_ORDER = 'DNS_ZONES_OUT_OF_ORDER',
}

export class DnsZonesStateError extends HyperMeshError<DnsZonesStateErrorCode> {}

/** Why the `dns` section of a genesis file is refused. */
export enum DnsZonesGenesisErrorCode {
  /** A field of the wrong type, form or range, or an unknown field. */
  INVALID = 'DNS_ZONES_GENESIS_INVALID',
  /** Two zones with the same apex, or one inside another. */
  OVERLAP = 'DNS_ZONES_GENESIS_OVERLAP',
}

export class DnsZonesGenesisError extends HyperMeshError<DnsZonesGenesisErrorCode> {}
