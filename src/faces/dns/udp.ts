import dgram from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import type { ZoneSource } from '../../trustchain/dns/index.js';
import { DnsServerError, DnsServerErrorCode } from './errors.js';
import { DropReason, Transport, type DnsMetrics } from './metrics.js';
import type { BoundAddress, ListenAddress } from './options.js';
import { UdpResponseCache } from './response-cache.js';
import { startBatchedUdpServer, udpBatchCanServe } from './udp-batch.js';

/**
 * DNS over UDP (RFC 1035 §4.2.1): one socket per address, one answer per datagram, from the
 * response cache (response-cache.ts) or the answer engine. Datagrams are received and sent in
 * batches by the native addon where it is built (udp-batch.ts), else one at a time by node:dgram. The work per datagram is bounded by
 * the engine: it reads the header, the question and at most two additional records (an OPT,
 * whose option headers it walks, and a TSIG or SIG(0), whose RDATA it skips) and refuses any
 * other record unread. Responses are capped at the client's EDNS size and `maxUdpPayload`.
 */
export interface UdpServer {
  readonly address: BoundAddress;
  close(): Promise<void>;
}

export async function startUdpServer(options: {
  readonly listen: ListenAddress;
  readonly zones: ZoneSource;
  readonly maxUdpPayload: number;
  /** Responses the cache keeps; 0 sends every query to the engine. */
  readonly responseCacheEntries: number;
  /** Batched receive and send where the native addon is built (udp-batch.ts). */
  readonly batch: boolean;
  readonly metrics: DnsMetrics;
}): Promise<UdpServer> {
  const { zones, metrics } = options;
  const cache = new UdpResponseCache({
    zones,
    maxUdpPayload: options.maxUdpPayload,
    entries: options.responseCacheEntries,
  });
  if (options.batch && udpBatchCanServe(options.listen)) {
    return startBatchedUdpServer({ listen: options.listen, cache, metrics });
  }
  const ipv6 = isIPv6(options.listen.host);
  const socket = dgram.createSocket({ type: ipv6 ? 'udp6' : 'udp4', lookup: literalLookup });
  const info = cache.info;
  // Send failures (e.g. an unreachable peer) arrive here; the socket stays usable.
  const onError = (): void => metrics.drop(Transport.udp, DropReason.sendFailed);

  socket.on('message', (message, peer) => {
    const started = performance.now();
    const response = cache.answer(message, started);
    if (response === null) {
      metrics.drop(Transport.udp, DropReason.notQuery);
      return;
    }
    // Port 0 cannot be sent to (a forged source); dgram would throw.
    if (peer.port === 0) {
      metrics.drop(Transport.udp, DropReason.sendFailed);
      return;
    }
    try {
      socket.send(response, peer.port, peer.address);
    } catch {
      metrics.drop(Transport.udp, DropReason.sendFailed);
      return;
    }
    metrics.answered(Transport.udp, info, (performance.now() - started) / 1000);
  });

  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error): void => {
      socket.close();
      reject(
        new DnsServerError(
          DnsServerErrorCode.LISTEN_FAILED,
          `UDP ${options.listen.host} port ${options.listen.port}: ${error.message}`,
          { transport: 'udp', ...options.listen },
          { cause: error },
        ),
      );
    };
    socket.once('error', failed);
    socket.bind(
      { address: options.listen.host, port: options.listen.port, exclusive: true },
      () => {
        socket.off('error', failed);
        socket.on('error', onError);
        resolve();
      },
    );
  });
  const bound = socket.address();
  let closed: Promise<void> | undefined;
  return {
    address: { host: bound.address, port: bound.port, family: ipv6 ? 'IPv6' : 'IPv4' },
    close() {
      closed ??= new Promise<void>((resolve) => socket.close(() => resolve()));
      return closed;
    },
  };
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string,
  family: number,
) => void;

/**
 * dgram resolves the destination of every `send`, and `dns.lookup` answers even an IP literal
 * on the next tick (a queued callback per datagram). Replies go to the source address of a
 * datagram, always a literal, so it is handed back at once; anything else goes to `dns.lookup`.
 */
function literalLookup(
  host: string,
  options: number | LookupOneOptions,
  callback: LookupCallback,
): void {
  const family = isIP(host);
  if (family !== 0) {
    callback(null, host, family);
    return;
  }
  dnsLookup(host, typeof options === 'number' ? { family: options } : options, callback);
}
