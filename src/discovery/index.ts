/**
 * Service discovery (layer 5): the replicated service catalog — instances registered, renewed
 * and deregistered through consensus, expiring by block height, found by proven queries, and
 * the change events `watch` streams are made of. See docs/discovery.md.
 */
export {
  decodeDiscoveryBody,
  discoveryDeregister,
  discoveryRegister,
  discoveryRenew,
} from './body.js';
export {
  discoveryInstanceQuery,
  discoveryOwnerQuery,
  discoveryServiceQuery,
  verifyDiscoveryInstance,
  verifyDiscoveryOwner,
  verifyDiscoveryService,
} from './client.js';
export type { DiscoveryVerifyOptions, ServiceVerifyOptions } from './client.js';
export {
  DISCOVERY_RESULT_CODES,
  DiscoveryError,
  DiscoveryErrorCode,
  DiscoveryStateError,
  DiscoveryStateErrorCode,
} from './errors.js';
export { formatIpAddress, parseIpAddress } from './ip.js';
export {
  DISCOVERY_MODULE_NAME,
  HEALTHY_STATUSES,
  HEALTH_CHECK_KINDS,
  HEALTH_STATUSES,
  MAX_ADDRESSES,
  MAX_CHECK_INTERVAL_MS,
  MAX_CHECK_PATH_LENGTH,
  MAX_CHECK_THRESHOLD,
  MAX_COMMAND_ARGS,
  MAX_COMMAND_ARG_LENGTH,
  MAX_DISCOVERY_BODY_BYTES,
  MAX_IDENTITY_BYTES,
  MAX_INSTANCES_PER_OWNER,
  MAX_INSTANCES_PER_SERVICE,
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
  isLive,
  minRenewInterval,
  renewInterval,
} from './model.js';
export type {
  CommandCheck,
  DeregisterTx,
  DiscoveryTx,
  HealthCheck,
  HealthCheckKind,
  HealthStatus,
  HttpCheck,
  InstanceRegistration,
  OwnedInstance,
  PortProtocol,
  RegisterTx,
  RenewTx,
  ServiceIndexEntry,
  ServiceInstance,
  ServicePort,
  StoqPingCheck,
  TcpCheck,
} from './model.js';
export {
  INSTANCE_QUERY,
  OWNER_QUERY,
  SERVICE_QUERY,
  createDiscoveryModule,
  discoveryQueryKey,
} from './module.js';
export { decodeInstance, decodeOwnerList, decodeServiceIndex, encodeInstance } from './records.js';
export { discoveryStateKey, instanceKey, ownerKey, serviceKey } from './state.js';
export { serviceChanges } from './watch.js';
export { CatalogView, catalogKeyOf } from './catalog-view.js';
export type { CatalogKeyChange, CatalogUpdate } from './catalog-view.js';
export {
  DISCOVERY_DNS_TTL,
  catalogRecords,
  instanceHostName,
  instanceRecords,
  isPublishable,
  srvName,
} from './dns-records.js';
export type { ServiceDnsRecords } from './dns-records.js';
export { discoveryGenesisFromApp, discoveryGenesisToJson, discoveryNodeKeys } from './genesis.js';
export type { DiscoveryGenesis, DiscoveryGenesisJson } from './genesis.js';
export {
  DIRECTORY_BUCKETS,
  directoryBucketOf,
  directoryKey,
  readServiceDirectory,
} from './state.js';
export type { ServiceChange, ServiceSnapshot } from './watch.js';
