/**
 * The DNS core of TrustChain (layer 5): names, the typed record model and its JSON input form,
 * the RFC 1035/6891 wire codec, zones with their rules, the authoritative answer engine, and
 * DNSSEC online signing (ECDSA P-256, NSEC).
 * No sockets: the servers call `answer` per packet. See docs/dns.md.
 */
export { DnsError, DnsErrorCode } from './errors.js';
export {
  CLASS_ANY,
  CLASS_IN,
  OPCODE_QUERY,
  RR_TYPES,
  Rcode,
  TYPE_ANY,
  TYPE_AXFR,
  TYPE_IXFR,
  TYPE_OPT,
  knownTypeName,
  typeCode,
  typeName,
} from './constants.js';
export type { KnownTypeName } from './constants.js';
export {
  MAX_LABEL_BYTES,
  MAX_NAME_BYTES,
  ROOT_KEY,
  ROOT_NAME,
  canonicalName,
  compareNamesCanonical,
  isSubdomain,
  isSubdomainKey,
  isWildcardKey,
  isWildcardName,
  keyToName,
  keyToWire,
  labelCount,
  nameKey,
  nameToWire,
  namesEqual,
  parentKey,
  wireToKey,
  wireToName,
} from './names.js';
export { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './address.js';
export {
  MAX_TTL,
  canonicalRRset,
  compareBytes,
  decodeRdata,
  encodeRdata,
  encodeRecordCanonical,
  rdataBytes,
  recordTypeCode,
} from './records.js';
export type {
  AData,
  AaaaData,
  CaaData,
  CnameData,
  DnskeyData,
  DsData,
  KnownRecord,
  MxData,
  NsData,
  NsecData,
  OpaqueData,
  OpaqueRecord,
  RecordDataByType,
  ResourceRecord,
  RrsigData,
  SoaData,
  SrvData,
  SvcbData,
  TlsaData,
  TxtData,
} from './records.js';
export { SVC_KEYS, svcKeyCode, svcKeyName } from './svcb.js';
export type { SvcParams } from './svcb.js';
export { parseRecord, recordToInput } from './record-input.js';
export type { RecordInput } from './record-input.js';
export { HEADER_BYTES, decodeMessage, encodeMessage } from './wire.js';
export type { DnsMessage, Edns, EdnsOption, MessageInput, Question } from './wire.js';
export { MAX_MESSAGE_BYTES, WireReader, WireWriter } from './buffer.js';
export { MemoryZone, ZoneSet } from './zone.js';
export type {
  RRsetWire,
  Zone,
  ZoneBuildOptions,
  ZoneNode,
  ZoneSignatures,
  ZoneSource,
} from './zone.js';
export { CLASSIC_UDP_PAYLOAD, DEFAULT_MAX_UDP_PAYLOAD, answer } from './answer.js';
export { emptyLookup, lookupName } from './lookup.js';
export type { NameLookup, ZoneTree, ZoneTreeNode } from './lookup.js';
export type { AnswerInfo, AnswerOptions, Transport } from './answer.js';
export {
  ALGORITHM_ECDSAP256SHA256,
  CSK_FLAGS,
  DIGEST_SHA256,
  DIGEST_SHA384,
  DNSKEY_FLAG_SEP,
  DNSKEY_FLAG_ZONE,
  DNSKEY_PROTOCOL,
  DnssecError,
  DnssecErrorCode,
  bindTrustAnchor,
  dnskeyRdata,
  dsFromDnskey,
  dsRecord,
  dsText,
  formatDnskey,
  formatDs,
  generateSigningKey,
  keyTag,
  p256Dnskey,
  signingKeyFromP256,
} from './dnssec-keys.js';
export type { DnssecSigningKey } from './dnssec-keys.js';
export {
  rrsigLabels,
  rrsigPrefix,
  signRRsetWire,
  signRecords,
  signedData,
  verifyRrsig,
} from './dnssec-sign.js';
export type { RrsigFields } from './dnssec-sign.js';
export { DEFAULT_SIGNING_POLICY, ZoneDnssec, ZoneSigner, canonicalSortKey } from './dnssec-zone.js';
export type { CachedSignature, SigningPolicy, ZoneSignerOptions } from './dnssec-zone.js';
