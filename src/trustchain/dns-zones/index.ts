/**
 * DNS zones in consensus state (layer 5): the `dns` module — cluster zones from genesis,
 * delegated zones, names registered and owned through signed transactions, RRsets checked
 * against the zone rules — its proven queries, and the bridge that turns committed state into
 * the `ZoneSource` the DNS servers answer from. See docs/dns.md, "Zones in consensus".
 */
export {
  decodeDnsZonesBody,
  dnsNameRegister,
  dnsNameRelease,
  dnsNameTransfer,
  dnsRecordsDelete,
  dnsRecordsSet,
  dnsZoneCreate,
  dnsZoneUpdate,
} from './body.js';
export {
  dnsIndexQuery,
  dnsNameQuery,
  dnsOwnerQuery,
  dnsZoneQuery,
  dnsZonesQuery,
  verifyDnsIndex,
  verifyDnsName,
  verifyDnsOwner,
  verifyDnsZone,
  verifyDnsZones,
} from './client.js';
export { decodeNameEntry, decodeZone } from './codec.js';
export {
  DNS_ZONES_RESULT_CODES,
  DnsZonesError,
  DnsZonesErrorCode,
  DnsZonesGenesisError,
  DnsZonesGenesisErrorCode,
  DnsZonesStateError,
  DnsZonesStateErrorCode,
} from './errors.js';
export {
  checkDnsZonesGenesis,
  dnsZonesGenesisFromApp,
  dnsZonesGenesisToJson,
  dnsZonesInitialState,
  parseDnsZonesGenesis,
} from './genesis.js';
export type { DnsZonesGenesis, DnsZonesGenesisJson } from './genesis.js';
export { parseGenesisDnskey } from './genesis-dnskey.js';
export {
  DNS_OPS,
  DNS_ZONES_MODULE_NAME,
  INDEX_BUCKETS,
  MAX_DNS_BODY_BYTES,
  MAX_NAMESERVERS,
  MAX_NAMES_PER_OWNER,
  MAX_NAMES_PER_ZONE,
  MAX_NAME_RDATA_BYTES,
  MAX_RECORDS_PER_NAME,
  MAX_RRSET_BYTES,
  MAX_ZONES,
  MAX_ZONE_ADMINS,
  ZONE_POLICIES,
  serialAt,
} from './model.js';
export type {
  DnsName,
  DnsZonesTx,
  NameEntry,
  NameRegisterTx,
  NameReleaseTx,
  NameServers,
  NameTransferTx,
  RecordsDeleteTx,
  RecordsSetTx,
  SoaParams,
  StoredRRset,
  ZoneCreateTx,
  ZoneInfo,
  ZoneKind,
  ZoneParams,
  ZonePolicy,
  ZoneUpdateTx,
} from './model.js';
export {
  INDEX_QUERY,
  NAME_QUERY,
  OWNER_QUERY,
  ZONES_QUERY,
  ZONE_QUERY,
  createDnsZonesModule,
  dnsZonesQueryKey,
} from './module.js';
export {
  ZONES_KEY,
  belowKey,
  bucketOf,
  dnsZonesStateKey,
  indexKey,
  nameEntryKey,
  ownerKey,
  zoneKey,
} from './state.js';
export { StateZoneNode, StateZoneTree } from './state-zone.js';
export { ConsensusZones, dnsZonesStateReader, zoneRecords } from './zone-source.js';
export type {
  ApplyOptions,
  CommittedStateGetter,
  ConsensusZonesOptions,
  OverlayService,
  ZoneRefresh,
} from './zone-source.js';
