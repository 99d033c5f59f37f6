import { CliError } from './cli-error.js';
import {
  DEFAULT_ACME_HTTPS_PORT,
  DEFAULT_CT_HTTP_PORT,
  DEFAULT_DNS_PORT,
  DEFAULT_DOQ_PORT,
  DEFAULT_METRICS_PORT,
  DEFAULT_STOQ_PORT,
} from './config.js';

/**
 * The ports of a `cluster init` cluster (docs/node.md, "Ports"): every service gives node-K the
 * port `base + K - 1`, one range per service. The ranges are kept apart whatever their protocol —
 * STOQ over QUIC, DNS and DoQ share UDP; DNS, metrics, CT and ACME share TCP — so every port a
 * configuration lists is used once. A base of 0 asks the OS for free ports at init time.
 */
export interface ClusterPortOptions {
  readonly validators: number;
  readonly basePort?: number;
  readonly metricsBasePort?: number;
  readonly dnsBasePort?: number;
  readonly doqBasePort?: number;
  readonly ctBasePort?: number;
  readonly acmeBasePort?: number;
  /** The services that run: DNS and DoQ unless false; CT unless `ca` is false; ACME with CT. */
  readonly dns?: boolean;
  readonly ca?: boolean;
  readonly acme?: boolean;
}

/** One service's range: node-K listens on `base + K - 1`. */
export interface ClusterPortRange {
  /** The service, as error messages name it. */
  readonly service: string;
  /** The `cluster init` flag that sets `base`. */
  readonly flag: string;
  /** Port of node-1; 0 when the OS picks free ports. */
  readonly base: number;
  /** Whether `base` was given, rather than a default. */
  readonly given: boolean;
}

/** Port of node-1 of every service; 0 where the OS picks free ports. */
export interface ClusterPortBases {
  readonly stoq: number;
  readonly metrics: number;
  readonly dns: number;
  readonly doq: number;
  readonly ct: number;
  readonly acme: number;
}

/**
 * The base ports: each as given, else its default — except that with `--base-port 0` (a cluster
 * on free ports) the DNS, DoQ, CT and ACME bases default to 0 too. Metrics keep their default.
 */
export function clusterPortBases(options: ClusterPortOptions): ClusterPortBases {
  const orFree = (given: number | undefined, fallback: number): number =>
    given ?? (options.basePort === 0 ? 0 : fallback);
  return {
    stoq: options.basePort ?? DEFAULT_STOQ_PORT,
    metrics: options.metricsBasePort ?? DEFAULT_METRICS_PORT,
    dns: orFree(options.dnsBasePort, DEFAULT_DNS_PORT),
    doq: orFree(options.doqBasePort, DEFAULT_DOQ_PORT),
    ct: orFree(options.ctBasePort, DEFAULT_CT_HTTP_PORT),
    acme: orFree(options.acmeBasePort, DEFAULT_ACME_HTTPS_PORT),
  };
}

/** The ranges of the services a cluster with these options runs. */
export function clusterPortRanges(options: ClusterPortOptions): ClusterPortRange[] {
  const bases = clusterPortBases(options);
  const range = (
    service: string,
    flag: string,
    given: number | undefined,
    base: number,
  ): ClusterPortRange => ({ service, flag, base, given: given !== undefined });
  const ranges = [
    range('STOQ', '--base-port', options.basePort, bases.stoq),
    range('metrics', '--metrics-base-port', options.metricsBasePort, bases.metrics),
  ];
  if (options.dns !== false) {
    ranges.push(
      range('DNS', '--dns-base-port', options.dnsBasePort, bases.dns),
      range('DoQ', '--doq-base-port', options.doqBasePort, bases.doq),
    );
  }
  if (options.ca !== false) {
    ranges.push(range('CT', '--ct-base-port', options.ctBasePort, bases.ct));
    if (options.acme !== false) {
      ranges.push(range('ACME', '--acme-base-port', options.acmeBasePort, bases.acme));
    }
  }
  return ranges;
}

/**
 * Every port of the ranges with a base (not 0) of a cluster with these options: what a free
 * port drawn for another service (a base of 0) must not be.
 */
export function fixedClusterPorts(options: ClusterPortOptions): number[] {
  return clusterPortRanges(options)
    .filter((range) => range.base !== 0)
    .flatMap((range) => Array.from({ length: options.validators }, (_, k) => range.base + k));
}

/**
 * Refuses a base port that leaves no room for one port per validator below 65536, and two ranges
 * of the cluster that share a port. The message names the range whose flag was given first: with
 * a default beside it, that flag is the one to change.
 */
export function checkClusterPorts(options: ClusterPortOptions): void {
  const count = options.validators;
  for (const [flag, base] of [
    ['--base-port', options.basePort],
    ['--metrics-base-port', options.metricsBasePort],
    ['--dns-base-port', options.dnsBasePort],
    ['--doq-base-port', options.doqBasePort],
    ['--ct-base-port', options.ctBasePort],
    ['--acme-base-port', options.acmeBasePort],
  ] as const) {
    if (base === undefined || base === 0) continue;
    if (!Number.isInteger(base) || base < 1 || base + count - 1 > 65_535) {
      throw new CliError(
        `${flag} ${base} leaves no room for ${count} ports (the last must be ≤ 65535)`,
      );
    }
  }
  const ranges = clusterPortRanges(options).filter((range) => range.base !== 0);
  for (const [j, later] of ranges.entries()) {
    for (const earlier of ranges.slice(0, j)) {
      if (Math.max(earlier.base, later.base) >= Math.min(earlier.base, later.base) + count) {
        continue;
      }
      const [first, second] = later.given && !earlier.given ? [later, earlier] : [earlier, later];
      const flags = [first, second].filter((range) => range.given).map((range) => range.flag);
      throw new CliError(
        `${first.service} ports ${first.base}..${first.base + count - 1} overlap ${second.service} ports ${second.base}..${second.base + count - 1}; choose another ${(flags.length > 0 ? flags : [first.flag, second.flag]).join(' or ')}`,
      );
    }
  }
}
