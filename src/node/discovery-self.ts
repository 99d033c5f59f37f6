import { isIP } from 'node:net';
import type { InstanceRegistration, ServiceInstance } from '../discovery/index.js';
import type { SocketAddress } from '../stoq/index.js';

/**
 * The services every node registers for itself in the catalog (docs/discovery.md, "Node
 * services"), under its name as the instance id and signed with its identity key:
 *
 *   hypermesh-node     the STOQ endpoint: consensus, the node API and the discovery API
 *                      (port `stoq`; check `stoq-ping`: the node's own certificate answers)
 *   hypermesh-dns      the authoritative DNS servers (ports `udp`, `tcp`, and `quic` for
 *                      DNS-over-QUIC when served; check `tcp`)
 *   hypermesh-metrics  the Prometheus endpoint (port `http`; check `http` GET /metrics)
 *   hypermesh-acme     the ACME server (port `https`; check `tcp`: its certificate chains to
 *                      the cluster's TrustChain root, which the HTTP check's client does not trust)
 *   hypermesh-ct       the CT log's HTTP read API (port `http`; check `http` GET /ct/v1/get-roots)
 *   hypermesh-ocsp     the OCSP responder on the same HTTP server, when the node has an
 *                      intermediate to answer for (port `http`; check `tcp`: OCSP needs a request)
 *
 * A service whose address is a wildcard (0.0.0.0, ::) is not registered: the catalog holds
 * addresses clients can reach, and the node cannot know which one that is.
 */

export const SELF_SERVICES = {
  node: 'hypermesh-node',
  dns: 'hypermesh-dns',
  metrics: 'hypermesh-metrics',
  acme: 'hypermesh-acme',
  ct: 'hypermesh-ct',
  ocsp: 'hypermesh-ocsp',
} as const;

/** TTL of the node's own instances, in blocks: renewed every 20 blocks. */
export const SELF_TTL_BLOCKS = 60;

const TIMING = { interval: 10_000, timeout: 2_000, rise: 2, fall: 3 } as const;

export interface SelfFacts {
  readonly name: string;
  /** The node certificate's URI, `spiffe://<cluster>/validator/<name>`. */
  readonly uri: string;
  readonly version: string;
  readonly stoq: SocketAddress;
  readonly metrics: SocketAddress | null;
  readonly dns: {
    readonly udp: readonly SocketAddress[];
    readonly tcp: readonly SocketAddress[];
    /** DNS-over-QUIC (RFC 9250); absent or empty: not served. */
    readonly doq?: readonly SocketAddress[];
  } | null;
  /** The ACME server's HTTPS address; absent or null: not served. */
  readonly acme?: SocketAddress | null;
  /** The CT log's HTTP address, and whether OCSP is answered there; absent or null: not served. */
  readonly ct?: (SocketAddress & { readonly ocsp: boolean }) | null;
}

function reachable(host: string): boolean {
  return isIP(host) !== 0 && host !== '0.0.0.0' && host !== '::';
}

/** The registrations of the node's own services (status `passing`: it is running them). */
export function selfRegistrations(facts: SelfFacts): InstanceRegistration[] {
  const base = {
    instance: facts.name,
    identity: facts.uri,
    metadata: { node: facts.name, version: facts.version },
    ttl: SELF_TTL_BLOCKS,
    status: 'passing' as const,
  };
  const registrations: InstanceRegistration[] = [];
  if (reachable(facts.stoq.host)) {
    registrations.push({
      ...base,
      service: SELF_SERVICES.node,
      addresses: [facts.stoq.host],
      ports: [{ protocol: 'stoq', port: facts.stoq.port }],
      check: { kind: 'stoq-ping', port: facts.stoq.port, ...TIMING },
    });
  }
  const udp = facts.dns?.udp.find((address) => reachable(address.host));
  const tcp = facts.dns?.tcp.find((address) => reachable(address.host));
  const doq = facts.dns?.doq?.find((address) => reachable(address.host));
  if (tcp !== undefined) {
    registrations.push({
      ...base,
      service: SELF_SERVICES.dns,
      addresses: [
        ...new Set([
          tcp.host,
          ...(udp === undefined ? [] : [udp.host]),
          ...(doq === undefined ? [] : [doq.host]),
        ]),
      ],
      ports: [
        ...(udp === undefined ? [] : [{ protocol: 'udp' as const, port: udp.port }]),
        { protocol: 'tcp', port: tcp.port },
        ...(doq === undefined ? [] : [{ protocol: 'quic' as const, port: doq.port }]),
      ],
      check: { kind: 'tcp', port: tcp.port, ...TIMING },
    });
  }
  if (facts.metrics !== null && reachable(facts.metrics.host)) {
    registrations.push({
      ...base,
      service: SELF_SERVICES.metrics,
      addresses: [facts.metrics.host],
      ports: [{ protocol: 'http', port: facts.metrics.port }],
      check: { kind: 'http', port: facts.metrics.port, path: '/metrics', ...TIMING },
    });
  }
  const acme = facts.acme ?? null;
  if (acme !== null && reachable(acme.host)) {
    registrations.push({
      ...base,
      service: SELF_SERVICES.acme,
      addresses: [acme.host],
      ports: [{ protocol: 'https', port: acme.port }],
      check: { kind: 'tcp', port: acme.port, ...TIMING },
    });
  }
  const ct = facts.ct ?? null;
  if (ct !== null && reachable(ct.host)) {
    registrations.push({
      ...base,
      service: SELF_SERVICES.ct,
      addresses: [ct.host],
      ports: [{ protocol: 'http', port: ct.port }],
      check: { kind: 'http', port: ct.port, path: '/ct/v1/get-roots', ...TIMING },
    });
    if (ct.ocsp) {
      registrations.push({
        ...base,
        service: SELF_SERVICES.ocsp,
        addresses: [ct.host],
        ports: [{ protocol: 'http', port: ct.port }],
        check: { kind: 'tcp', port: ct.port, ...TIMING },
      });
    }
  }
  return registrations;
}

/** Whether the committed record already says what `wanted` says (status aside). */
export function sameRegistration(record: ServiceInstance, wanted: InstanceRegistration): boolean {
  const { status: _a, ...left } = wanted;
  const right: Omit<InstanceRegistration, 'status'> = {
    service: record.service,
    instance: record.instance,
    addresses: record.addresses,
    ports: record.ports,
    identity: record.identity,
    metadata: record.metadata,
    check: record.check,
    ttl: record.ttl,
  };
  return JSON.stringify(canonical(left)) === JSON.stringify(canonical(right));
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([key, inner]) => [key, canonical(inner)]),
    );
  }
  return value;
}
