import { isIP } from 'node:net';
import { z } from 'zod';
import { parseInput } from '../../codec/schema.js';

/** An IP address and port to listen on; port 0 picks a free port. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** An address a server is bound to. */
export interface BoundAddress {
  readonly host: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
}

/** Bounds on what one client can make a server hold or do. */
export interface DnsServerLimits {
  /**
   * Largest UDP response to a query with EDNS (RFC 6891 §6.2.5); the client's own size caps it
   * further. Default 1232 (DNS Flag Day 2020: no IP fragmentation).
   */
  readonly maxUdpPayload: number;
  /**
   * UDP responses kept per socket for questions asked again (docs/dns.md, "UDP response
   * cache"); 0 turns the cache off. Each is at most 1232 bytes.
   */
  readonly udpResponseCacheEntries: number;
  /**
   * Receive and send UDP in batches with recvmmsg/sendmmsg through the native addon
   * (docs/dns.md, "Batched UDP"); where it is not built (not Linux), node:dgram serves UDP
   * whatever this says. Default true.
   */
  readonly udpBatch: boolean;
  /**
   * Open TCP connections per listener. At the limit a new connection takes the slot of the one
   * idle longest (no answer waiting to be written), which is closed; if every connection has
   * answers in flight, the new one is closed at once.
   */
  readonly tcpMaxConnections: number;
  /**
   * Open TCP connections one client address (an IPv4 address, an IPv6 /64) may hold per
   * listener; one more is closed at once. Default 32.
   */
  readonly tcpMaxConnectionsPerAddress: number;
  /**
   * Open TCP connections the client addresses of one IPv6 /48 may hold per listener, together
   * (a /48 holds 65,536 /64s); one more is closed at once. Default 128.
   */
  readonly tcpMaxConnectionsPer48: number;
  /**
   * A TCP connection that completes no query for this long is closed (RFC 7766 §6.2.3). Partial
   * frames do not count as activity, so a client trickling bytes is closed too.
   */
  readonly tcpIdleTimeoutMs: number;
  /**
   * Answers one TCP connection may have waiting to be written to the kernel; past it the server
   * stops reading from that connection until they are written (a peer that never reads).
   */
  readonly tcpMaxPendingQueries: number;
  /**
   * A TCP connection whose client has taken none of its answers for this long (no write
   * completed) counts as idle when a newcomer needs its slot at `tcpMaxConnections`, although
   * answers are owed to it. Default 5,000.
   */
  readonly tcpWriteStallMs: number;
  /**
   * Open DoQ connections per listener. At the limit a new connection takes the slot of the one
   * idle longest (no query stream open), which is closed with DOQ_NO_ERROR; if every connection
   * has a stream open, the new one is closed with DOQ_EXCESSIVE_LOAD.
   */
  readonly doqMaxConnections: number;
  /**
   * Open DoQ connections one client address (an IPv4 address, an IPv6 /64) may hold per
   * listener; one more is closed with DOQ_EXCESSIVE_LOAD. Default 32.
   */
  readonly doqMaxConnectionsPerAddress: number;
  /**
   * Open DoQ connections the client addresses of one IPv6 /48 may hold per listener, together;
   * one more is closed with DOQ_EXCESSIVE_LOAD. Default 64.
   */
  readonly doqMaxConnectionsPer48: number;
  /** QUIC idle timeout of DoQ connections (RFC 9250 §5.5, RFC 9000 §10.1). */
  readonly doqIdleTimeoutMs: number;
  /**
   * A DoQ connection with no query stream open for this long (from its handshake or its last
   * stream's end) is closed with DOQ_NO_ERROR (RFC 9250 §5.5). Unlike the QUIC idle timeout,
   * PINGs and other packets do not push it back. Default 10,000.
   */
  readonly doqNoQueryTimeoutMs: number;
  /** Concurrent query streams per DoQ connection (the QUIC bidirectional stream limit). */
  readonly doqMaxStreams: number;
  /**
   * Bytes of unfinished queries (read from their streams, no FIN yet) held across all DoQ
   * connections; going over closes the connection holding the most with DOQ_EXCESSIVE_LOAD.
   * Each connection is also held to `DOQ_CONNECTION_QUERY_BYTES` (docs/dns.md, "Limits").
   */
  readonly doqMaxBufferedBytes: number;
  /** On close, how long connections may take to finish before they are cut. */
  readonly closeGraceMs: number;
}

export const DEFAULT_LIMITS: DnsServerLimits = {
  maxUdpPayload: 1232,
  udpResponseCacheEntries: 16_384,
  udpBatch: true,
  tcpMaxConnections: 512,
  tcpMaxConnectionsPerAddress: 32,
  tcpMaxConnectionsPer48: 128,
  tcpIdleTimeoutMs: 10_000,
  tcpMaxPendingQueries: 64,
  tcpWriteStallMs: 5_000,
  doqMaxConnections: 256,
  doqMaxConnectionsPerAddress: 32,
  doqMaxConnectionsPer48: 64,
  doqIdleTimeoutMs: 30_000,
  doqNoQueryTimeoutMs: 10_000,
  doqMaxStreams: 64,
  doqMaxBufferedBytes: 32 << 20,
  closeGraceMs: 2_000,
};

const ipAddress = z.string().refine((host) => isIP(host) !== 0, {
  error: 'expected an IPv4 or IPv6 address',
});
const port = z.int().min(0).max(65_535);
const addressSchema = z.strictObject({ host: ipAddress, port });
const addressList = z.array(addressSchema).max(64);
const positive = (max: number) => z.int().min(1).max(max);

const limitsSchema = z.strictObject({
  maxUdpPayload: z.int().min(512).max(65_535).optional(),
  udpResponseCacheEntries: z.int().min(0).max(1_000_000).optional(),
  udpBatch: z.boolean().optional(),
  tcpMaxConnections: positive(1_000_000).optional(),
  tcpMaxConnectionsPerAddress: positive(1_000_000).optional(),
  tcpMaxConnectionsPer48: positive(1_000_000).optional(),
  tcpIdleTimeoutMs: positive(3_600_000).optional(),
  tcpMaxPendingQueries: positive(65_536).optional(),
  tcpWriteStallMs: positive(3_600_000).optional(),
  doqMaxConnections: positive(1_000_000).optional(),
  doqMaxConnectionsPerAddress: positive(1_000_000).optional(),
  doqMaxConnectionsPer48: positive(1_000_000).optional(),
  doqIdleTimeoutMs: positive(3_600_000).optional(),
  doqNoQueryTimeoutMs: positive(3_600_000).optional(),
  doqMaxStreams: positive(65_536).optional(),
  // At least one whole query stream (prefix and a 65,535-byte message).
  doqMaxBufferedBytes: z
    .int()
    .min(65_537)
    .max(2 ** 40)
    .optional(),
  closeGraceMs: z.int().min(0).max(600_000).optional(),
});

const pem = (label: string) =>
  z
    .string()
    .max(1 << 20)
    .refine((text) => text.includes(`-----BEGIN ${label}`), {
      error: `expected PEM text with a "-----BEGIN ${label}" block`,
    });

const listenSchema = z.strictObject({
  udp: addressList.optional(),
  tcp: addressList.optional(),
  doq: z
    .strictObject({
      addresses: addressList.min(1),
      cert: pem('CERTIFICATE'),
      key: pem(''),
    })
    .optional(),
  limits: limitsSchema.optional(),
});

export interface DoqOptions {
  readonly addresses: readonly ListenAddress[];
  /** The certificate chain (leaf first) in PEM; later issued by the cluster CA. */
  readonly cert: string;
  /** The certificate's private key in PEM. */
  readonly key: string;
}

export interface ListenOptions {
  readonly udp: readonly ListenAddress[];
  readonly tcp: readonly ListenAddress[];
  readonly doq: DoqOptions | undefined;
  readonly limits: DnsServerLimits;
}

/** Checks the listening part of the options (addresses, certificate text, limits). */
export function parseListenOptions(input: unknown): ListenOptions {
  const parsed = parseInput(listenSchema, input, 'dns');
  const limits: DnsServerLimits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(parsed.limits ?? {})) {
    if (value !== undefined) Object.assign(limits, { [key]: value });
  }
  return {
    udp: parsed.udp ?? [],
    tcp: parsed.tcp ?? [],
    doq: parsed.doq,
    limits,
  };
}
