import type { Registry } from 'prom-client';
import type { ZoneSource } from '../../trustchain/dns/index.js';
import { DoqBuffers, startDoqServer, type DoqCertificate, type DoqServer } from './doq.js';
import { DnsServerError, DnsServerErrorCode } from './errors.js';
import { DnsMetrics } from './metrics.js';
import { parseListenOptions } from './options.js';
import type { BoundAddress, DnsServerLimits, DoqOptions, ListenAddress } from './options.js';
import { startTcpServer } from './tcp.js';
import { startUdpServer } from './udp.js';

export interface DnsServersOptions {
  /** The zones served; read on every query, so a `ZoneSet` swap takes effect at once. */
  readonly zones: ZoneSource;
  readonly udp?: readonly ListenAddress[];
  readonly tcp?: readonly ListenAddress[];
  readonly doq?: DoqOptions;
  /** `hypermesh_dns_*` metrics are registered here when given (never on a global registry). */
  readonly registry?: Registry;
  readonly limits?: Partial<DnsServerLimits>;
}

export interface DnsServers {
  readonly udp: readonly BoundAddress[];
  readonly tcp: readonly BoundAddress[];
  readonly doq: readonly BoundAddress[];
  /**
   * Every DoQ server presents `tls` on new connections from now on (open ones keep theirs);
   * throws DOQ_CONFIG_INVALID, changing nothing, when the TLS stack refuses it.
   */
  replaceDoqCertificate(tls: DoqCertificate): void;
  /** Stops every server: UDP at once, TCP and DoQ after their connections close. */
  close(): Promise<void>;
}

interface Running {
  readonly address: BoundAddress;
  close(): Promise<void>;
}

/** Attempts at finding a port free for both UDP and TCP before giving up. */
const SHARED_PORT_ATTEMPTS = 16;

/**
 * Starts the DNS servers of one node. Addresses are IP literals. DNS clients retry a truncated
 * UDP answer over TCP on the same port, so a host listed with port 0 in both `udp` and `tcp`
 * gets one free port shared by both. On any failure everything already started is closed.
 */
export async function startDnsServers(options: DnsServersOptions): Promise<DnsServers> {
  const { zones, registry } = options;
  const listen = parseListenOptions({
    udp: options.udp,
    tcp: options.tcp,
    doq: options.doq,
    limits: options.limits,
  });
  const { limits } = listen;
  const metrics = new DnsMetrics();
  const doqBuffers = new DoqBuffers(limits.doqMaxBufferedBytes, metrics);
  const udp: Running[] = [];
  const tcp: Running[] = [];
  const doq: DoqServer[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all([...udp, ...tcp, ...doq].map((server) => server.close()));
  };
  const udpAt = (address: ListenAddress) =>
    startUdpServer({
      listen: address,
      zones,
      maxUdpPayload: limits.maxUdpPayload,
      responseCacheEntries: limits.udpResponseCacheEntries,
      batch: limits.udpBatch,
      metrics,
    });
  const tcpAt = (address: ListenAddress) =>
    startTcpServer({ listen: address, zones, limits, metrics });

  try {
    const tcpLeft = [...listen.tcp];
    for (const address of listen.udp) {
      const partner =
        address.port === 0 ? tcpLeft.findIndex((t) => t.port === 0 && t.host === address.host) : -1;
      if (partner < 0) {
        udp.push(await udpAt(address));
        continue;
      }
      tcpLeft.splice(partner, 1);
      const pair = await sharedPort(address.host, udpAt, tcpAt);
      udp.push(pair.udp);
      tcp.push(pair.tcp);
    }
    for (const address of tcpLeft) tcp.push(await tcpAt(address));
    for (const address of listen.doq?.addresses ?? []) {
      doq.push(
        await startDoqServer({
          listen: address,
          tls: listen.doq!,
          zones,
          limits,
          metrics,
          buffers: doqBuffers,
        }),
      );
    }
  } catch (error) {
    await closeAll();
    throw error;
  }
  if (registry !== undefined) metrics.register(registry);
  let closed: Promise<void> | undefined;
  return {
    udp: udp.map((s) => s.address),
    tcp: tcp.map((s) => s.address),
    doq: doq.map((s) => s.address),
    replaceDoqCertificate(tls) {
      // Every server checks the same certificate alike: the first refusal comes before any swap.
      for (const server of doq) server.replaceCertificate(tls);
    },
    close() {
      closed ??= closeAll();
      return closed;
    },
  };
}

async function sharedPort(
  host: string,
  udpAt: (address: ListenAddress) => Promise<Running>,
  tcpAt: (address: ListenAddress) => Promise<Running>,
): Promise<{ udp: Running; tcp: Running }> {
  let last: unknown;
  for (let attempt = 0; attempt < SHARED_PORT_ATTEMPTS; attempt++) {
    const udp = await udpAt({ host, port: 0 });
    try {
      return { udp, tcp: await tcpAt({ host, port: udp.address.port }) };
    } catch (error) {
      last = error;
      await udp.close();
    }
  }
  throw new DnsServerError(
    DnsServerErrorCode.LISTEN_FAILED,
    `no port on ${host} was free for both UDP and TCP in ${SHARED_PORT_ATTEMPTS} attempts`,
    { host },
    { cause: last },
  );
}
