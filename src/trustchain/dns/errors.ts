import { HyperMeshError } from '../../codec/error.js';

/**
 * Why the DNS core refuses a name, a record, a packet or a zone. One enum for the whole core so
 * the servers and the zone module switch on `error.code`; `detail` carries the offset in the
 * packet (`offset`), the owner name (`name`) or the field concerned.
 */
export enum DnsErrorCode {
  /** Presentation name: an empty label (`a..b`, a leading dot) or an empty string. */
  NAME_EMPTY_LABEL = 'DNS_NAME_EMPTY_LABEL',
  /** A label above 63 bytes; on the wire, a length byte 0x40–0xBF (reserved label types). */
  NAME_LABEL_TOO_LONG = 'DNS_NAME_LABEL_TOO_LONG',
  /** A name above 255 bytes in wire form. */
  NAME_TOO_LONG = 'DNS_NAME_TOO_LONG',
  /** Presentation name: a bad `\` escape or a character that must be escaped (space, non-ASCII). */
  NAME_BAD_TEXT = 'DNS_NAME_BAD_TEXT',

  /** A message shorter than its 12-byte header. */
  WIRE_SHORT_HEADER = 'DNS_WIRE_SHORT_HEADER',
  /** The message ends inside a field (name, record header, rdata). */
  WIRE_TRUNCATED = 'DNS_WIRE_TRUNCATED',
  /** The header counts more records than the message holds (it ends on a record boundary). */
  WIRE_COUNT_MISMATCH = 'DNS_WIRE_COUNT_MISMATCH',
  /** Bytes after the last counted record. */
  WIRE_TRAILING_BYTES = 'DNS_WIRE_TRAILING_BYTES',
  /** A compression pointer back into the name it is part of. */
  WIRE_POINTER_LOOP = 'DNS_WIRE_POINTER_LOOP',
  /** A compression pointer to a later offset. */
  WIRE_POINTER_FORWARD = 'DNS_WIRE_POINTER_FORWARD',
  /** A compression pointer past the end of the message. */
  WIRE_POINTER_OUT_OF_RANGE = 'DNS_WIRE_POINTER_OUT_OF_RANGE',
  /** An RDLENGTH that runs past the end of the message. */
  WIRE_RDATA_OVERRUN = 'DNS_WIRE_RDATA_OVERRUN',
  /** RDATA that does not have its type's form (size, field values, leftover bytes). */
  WIRE_RDATA_INVALID = 'DNS_WIRE_RDATA_INVALID',
  /** An OPT pseudo-record out of place: twice, outside the additional section, or not at the root. */
  WIRE_OPT_INVALID = 'DNS_WIRE_OPT_INVALID',
  /** A message too large to encode (above 65535 bytes) or a field out of range when encoding. */
  WIRE_ENCODE = 'DNS_WIRE_ENCODE',

  /** A record whose data is outside its type's rules (bad address, port, string length...). */
  RECORD_INVALID = 'DNS_RECORD_INVALID',

  /** A record whose owner is not the zone apex or below it. */
  ZONE_OUT_OF_ZONE = 'DNS_ZONE_OUT_OF_ZONE',
  /** No SOA record at the apex. */
  ZONE_NO_SOA = 'DNS_ZONE_NO_SOA',
  /** More than one SOA record. */
  ZONE_MULTIPLE_SOA = 'DNS_ZONE_MULTIPLE_SOA',
  /** An SOA record below the apex. */
  ZONE_SOA_NOT_AT_APEX = 'DNS_ZONE_SOA_NOT_AT_APEX',
  /** No NS record at the apex. */
  ZONE_NO_APEX_NS = 'DNS_ZONE_NO_APEX_NS',
  /** A CNAME next to other data at the same name, or two CNAMEs (RFC 2181 §10.1). */
  ZONE_CNAME_CONFLICT = 'DNS_ZONE_CNAME_CONFLICT',
  /** Records of one RRset with different TTLs (RFC 2181 §5.2). */
  ZONE_TTL_MISMATCH = 'DNS_ZONE_TTL_MISMATCH',
  /** The same record twice (an RRset is a set, RFC 2181 §5). */
  ZONE_DUPLICATE_RECORD = 'DNS_ZONE_DUPLICATE_RECORD',
  /** Data at or below a delegation other than NS and DS at the cut and A/AAAA glue. */
  ZONE_OCCLUDED_DATA = 'DNS_ZONE_OCCLUDED_DATA',
  /** A DS record that is not at a delegation point (RFC 4035 §2.4). */
  ZONE_DS_NOT_AT_DELEGATION = 'DNS_ZONE_DS_NOT_AT_DELEGATION',
  /** Two zones with the same apex in one zone set. */
  ZONE_DUPLICATE_APEX = 'DNS_ZONE_DUPLICATE_APEX',
}

export class DnsError extends HyperMeshError<DnsErrorCode> {}
