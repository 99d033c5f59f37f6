import { Counter, Gauge, type Registry } from 'prom-client';
import type { HealthStatus } from '../discovery/index.js';

/**
 * Service-discovery metrics of a node (docs/discovery.md, "Metrics"), on the registry it serves
 * at /metrics. Catalog counts are read at scrape time; checks and flaps are counted as they
 * happen.
 */
export interface DiscoveryMetricSources {
  /** Live and healthy instances of the committed catalog. */
  catalog(): { live: number; healthy: number };
  /** Statuses the checks of this node's hosted instances arrived at. */
  hosted(): readonly HealthStatus[];
  /** Open `watch` streams. */
  watchers(): number;
}

export interface DiscoveryMetrics {
  /** One finished health check. */
  checked(ok: boolean): void;
  /** A hosted instance changed status. */
  flapped(): void;
  /** One of the node's own discovery transactions was submitted (or refused at admission). */
  submitted(outcome: 'admitted' | 'refused'): void;
}

const STATUSES: readonly HealthStatus[] = ['passing', 'warning', 'critical'];

export function createDiscoveryMetrics(
  registry: Registry,
  sources: DiscoveryMetricSources,
): DiscoveryMetrics {
  const registers = [registry];
  new Gauge({
    name: 'hypermesh_discovery_instances',
    help: 'Live instances in the committed service catalog (state="healthy": passing or warning)',
    labelNames: ['state'],
    registers,
    collect() {
      const counts = sources.catalog();
      this.set({ state: 'registered' }, counts.live);
      this.set({ state: 'healthy' }, counts.healthy);
    },
  });
  new Gauge({
    name: 'hypermesh_discovery_hosted_instances',
    help: 'Instances this node runs health checks for, by the status the checks arrived at',
    labelNames: ['status'],
    registers,
    collect() {
      const statuses = sources.hosted();
      for (const status of STATUSES) {
        this.set({ status }, statuses.filter((s) => s === status).length);
      }
    },
  });
  new Gauge({
    name: 'hypermesh_discovery_watch_streams',
    help: 'Open hypermesh.discovery.v1/watch streams',
    registers,
    collect() {
      this.set(sources.watchers());
    },
  });
  const checks = new Counter({
    name: 'hypermesh_discovery_health_checks_total',
    help: 'Health checks run by this node',
    labelNames: ['result'],
    registers,
  });
  const flaps = new Counter({
    name: 'hypermesh_discovery_health_flaps_total',
    help: 'Status changes of instances this node hosts (after rise/fall damping)',
    registers,
  });
  const txs = new Counter({
    name: 'hypermesh_discovery_txs_total',
    help: "This node's own discovery transactions (renewals, status changes, self-registration)",
    labelNames: ['outcome'],
    registers,
  });
  for (const result of ['ok', 'failed']) checks.inc({ result }, 0);
  for (const outcome of ['admitted', 'refused']) txs.inc({ outcome }, 0);
  return {
    checked: (ok) => checks.inc({ result: ok ? 'ok' : 'failed' }),
    flapped: () => flaps.inc(),
    submitted: (outcome) => txs.inc({ outcome }),
  };
}
