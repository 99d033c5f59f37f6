import type { ResourceRecord } from '../trustchain/dns/index.js';
import type { CatalogView } from './catalog-view.js';
import { HEALTHY_STATUSES } from './model.js';
import type { HealthStatus, ServiceInstance } from './model.js';

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

/** Every record the catalog held by `view` publishes in `zone` (a canonical name). */
export function catalogRecords(view: CatalogView, zone: string): ResourceRecord[] {
  return view
    .services()
    .flatMap((service) => view.live(service, HEALTHY_STATUSES))
    .flatMap((record) => instanceRecords(record, zone));
}
