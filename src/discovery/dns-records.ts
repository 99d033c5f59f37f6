import { DnsError, nameToWire } from '../trustchain/dns/index.js';
import type { ResourceRecord } from '../trustchain/dns/index.js';
import type { CatalogView } from './catalog-view.js';
import { HEALTHY_STATUSES } from './model.js';
import type { HealthStatus, ServiceInstance } from './model.js';
import { isReservedService } from './rules.js';

/**
 * The DNS face of the catalog (docs/discovery.md, "DNS"): for every live, healthy instance
 * (`passing` or `warning`) of every service, in the zone `zone`,
 *
 *   _<service>._<protocol>.<zone>  SRV  <priority> 0 <port> <instance>._<service>.<zone>
 *   <instance>._<service>.<zone>   A / AAAA  each of its addresses
 *
 * one SRV per declared port (RFC 2782 names the service and protocol with leading underscores,
 * so these names cannot be host names the `dns` module hands out by accident). `passing`
 * instances get priority 0 and `warning` ones priority 1, so clients prefer healthy ones. Pure:
 * every node at one height publishes the same records.
 *
 * The consensus rules admit names DNS cannot carry (a 63-character service makes the label
 * `_<service>` 64 bytes; a long zone pushes a name past 255 bytes), so an instance is published
 * only when every name it would use is a DNS name; the others are left out of DNS and stay in
 * the catalog. Each service publishes below `_<service>.<zone>` and `_<service>._<protocol>.<zone>`;
 * where those meet the `dns` module's names, the cluster zone keeps the `dns` module's names and
 * leaves the service out, unless it is a reserved `hypermesh-` service (`ConsensusZones`,
 * docs/discovery.md "DNS").
 */

/** TTL of the published records: short, since health changes take effect one block later. */
export const DISCOVERY_DNS_TTL = 5;

const PRIORITY: Readonly<Record<HealthStatus, number>> = { passing: 0, warning: 1, critical: 2 };

/** `_<service>._<protocol>.<zone>`: where the SRV records of a service's port live. */
export function srvName(service: string, protocol: string, zone: string): string {
  return `_${service}._${protocol}.${zone}`;
}

/** `<instance>._<service>.<zone>`: the SRV target holding the instance's addresses. */
export function instanceHostName(service: string, instance: string, zone: string): string {
  return `${instance}._${service}.${zone}`;
}

/** The records of one instance. */
export function instanceRecords(record: ServiceInstance, zone: string): ResourceRecord[] {
  const target = instanceHostName(record.service, record.instance, zone);
  const records: ResourceRecord[] = [];
  for (const { protocol, port } of record.ports) {
    records.push({
      name: srvName(record.service, protocol, zone),
      type: 'SRV',
      class: 1,
      ttl: DISCOVERY_DNS_TTL,
      data: { priority: PRIORITY[record.status], weight: 0, port, target },
    });
  }
  for (const address of record.addresses) {
    records.push({
      name: target,
      type: address.includes(':') ? 'AAAA' : 'A',
      class: 1,
      ttl: DISCOVERY_DNS_TTL,
      data: { address },
    });
  }
  return records;
}

/** Whether `name` is a DNS name: labels of at most 63 bytes, at most 255 bytes in wire form. */
function isDnsName(name: string): boolean {
  try {
    nameToWire(name);
    return true;
  } catch (error) {
    if (error instanceof DnsError) return false;
    throw error;
  }
}

/**
 * Whether the records of `record` can be published in `zone`: its SRV owners, and its host name
 * (the SRV target and the owner of its addresses), are all DNS names.
 */
export function isPublishable(record: ServiceInstance, zone: string): boolean {
  return (
    isDnsName(instanceHostName(record.service, record.instance, zone)) &&
    record.ports.every(({ protocol }) => isDnsName(srvName(record.service, protocol, zone)))
  );
}

/** What one service publishes in the zone (the shape of `ConsensusZones`' overlay). */
export interface ServiceDnsRecords {
  /**
   * The names the service publishes at or below: `_<service>.<zone>` (its instances' host names)
   * and `_<service>._<protocol>.<zone>` for each protocol it publishes.
   */
  readonly subtrees: readonly string[];
  /**
   * A `hypermesh-` service: only node keys register it, and it wins over the `dns` module's
   * names (the others give way to them).
   */
  readonly reserved: boolean;
  readonly records: readonly ResourceRecord[];
}

/**
 * The records the catalog held by `view` publishes in `zone` (a canonical name), by service in
 * name order: every live, healthy, publishable instance. A service with none is not listed.
 */
export function catalogRecords(view: CatalogView, zone: string): ServiceDnsRecords[] {
  const published: ServiceDnsRecords[] = [];
  for (const service of view.services()) {
    const instances = view
      .live(service, HEALTHY_STATUSES)
      .filter((record) => isPublishable(record, zone));
    if (instances.length === 0) continue;
    const protocols = new Set(instances.flatMap((record) => record.ports.map((p) => p.protocol)));
    published.push({
      subtrees: [
        `_${service}.${zone}`,
        ...[...protocols].sort().map((protocol) => srvName(service, protocol, zone)),
      ],
      reserved: isReservedService(service),
      records: instances.flatMap((record) => instanceRecords(record, zone)),
    });
  }
  return published;
}
