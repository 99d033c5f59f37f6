import {
  createHmac,
  createPrivateKey,
  randomBytes,
  timingSafeEqual,
  X509Certificate,
} from 'node:crypto';
import { isIPv6 } from 'node:net';
import type * as Quic from '@matrixai/quic';
import type { QUICConnection, QUICServer, QUICStream, events as QuicEvents } from '@matrixai/quic';
import type * as QuicConfig from '@matrixai/quic/config.js';
import type Logger from '@matrixai/logger';
import { answer } from '../../trustchain/dns/index.js';
import type { AnswerInfo, ZoneSource } from '../../trustchain/dns/index.js';
import { AddressSlots, takeSlot } from './connection-slots.js';
import type { IdleState } from './connection-slots.js';
import { DnsServerError, DnsServerErrorCode } from './errors.js';
import { DropReason, Transport, type DnsMetrics } from './metrics.js';
import type { BoundAddress, DnsServerLimits, DoqOptions, ListenAddress } from './options.js';

/**
 * DNS over dedicated QUIC connections (RFC 9250) on `@matrixai/quic` (quiche): ALPN `doq`, one
 * query per client-initiated bidirectional stream, each message with a 2-byte length prefix,
 * the answer on the same stream followed by FIN. Answers are built as for TCP (no truncation).
 * Violations of §4.2 close the connection with DOQ_PROTOCOL_ERROR (§4.3.3).
 *
 * Connection slots are shared out as for TCP (docs/dns.md, "Limits"): at most
 * `doqMaxConnectionsPerAddress` per client address and `doqMaxConnectionsPer48` per IPv6 /48,
 * and at `doqMaxConnections` the connection idle longest makes room. A connection with no query
 * stream open for `doqNoQueryTimeoutMs` is closed with DOQ_NO_ERROR (§5.5): the QUIC idle timer
 * alone would keep open, for ever, a connection whose client only sends PINGs.
 */
export interface DoqServer {
  readonly address: BoundAddress;
  /**
   * Serves `tls` on the handshakes of new connections from now on (the library builds its TLS
   * context per connection, from the server's config: `QUICServer.updateConfig`); open
   * connections keep the certificate they were set up with. Refuses what the TLS stack would not
   * take (DOQ_CONFIG_INVALID), and then keeps serving the current certificate.
   */
  replaceCertificate(tls: DoqCertificate): void;
  close(): Promise<void>;
}

/** A DoQ server's TLS identity: the chain (leaf first) and its private key, in PEM. */
export type DoqCertificate = Pick<DoqOptions, 'cert' | 'key'>;

/** RFC 9250 §4.3 error codes. */
export const DoqErrorCode = {
  NO_ERROR: 0x0,
  INTERNAL_ERROR: 0x1,
  PROTOCOL_ERROR: 0x2,
  REQUEST_CANCELLED: 0x3,
  EXCESSIVE_LOAD: 0x4,
} as const;

/** The largest stream a query can take: the length prefix and a 65,535-byte message. */
const MAX_QUERY_STREAM = 2 + 65_535;

/**
 * QUIC connection receive window: stream data quiche holds for a connection before the server
 * reads it. quiche grants more credit (MAX_DATA) as the server reads, so this bounds only what
 * waits inside quiche; what has been read is bounded by `DOQ_CONNECTION_QUERY_BYTES`.
 */
export const DOQ_CONNECTION_WINDOW = 256 << 10;

/**
 * Bytes of unfinished queries (read from streams that have not ended) and of answers not yet
 * taken by the client's flow control one connection may make the server hold; one byte more
 * closes it with DOQ_EXCESSIVE_LOAD. With the window and the
 * library's read-ahead (one 4 KiB chunk per stream, 64 streams by default) a connection holds
 * at most 1 MiB of received stream data.
 */
export const DOQ_CONNECTION_QUERY_BYTES = 512 << 10;

/** One connection's unfinished queries. */
export interface Held {
  readonly connection: QUICConnection;
  bytes: number;
  /** Closed for excessive load: its bytes are no longer counted. */
  evicted: boolean;
}

/**
 * Counts the bytes of unfinished queries across every DoQ server of one `startDnsServers`, so
 * that `doqMaxBufferedBytes` bounds them all. Reading a stream hands its QUIC flow-control
 * credit back to the client, so without this count a client could keep `doqMaxStreams` streams
 * of almost 64 KiB each open on every connection.
 */
export class DoqBuffers {
  private total = 0;
  private readonly held = new Set<Held>();

  constructor(
    private readonly limit: number,
    private readonly metrics: DnsMetrics,
  ) {}

  open(connection: QUICConnection): Held {
    const entry: Held = { connection, bytes: 0, evicted: false };
    this.held.add(entry);
    return entry;
  }

  /** The connection has stopped; its streams release their own bytes as their reads fail. */
  closed(entry: Held): void {
    this.held.delete(entry);
  }

  /**
   * Counts `n` more bytes held for `entry`; false when that closed its connection (over its own
   * bound, or the largest when the servers' total went over `doqMaxBufferedBytes`).
   */
  add(entry: Held, n: number): boolean {
    if (entry.evicted) return false;
    entry.bytes += n;
    this.total += n;
    this.metrics.doqBufferedChanged(n);
    if (entry.bytes > DOQ_CONNECTION_QUERY_BYTES) {
      this.evict(entry);
      return false;
    }
    while (this.total > this.limit) {
      let largest = entry;
      for (const other of this.held) if (other.bytes > largest.bytes) largest = other;
      this.evict(largest);
      if (largest === entry) return false;
    }
    return true;
  }

  /** Releases `n` bytes of `entry` (its query was answered or its stream ended). */
  release(entry: Held, n: number): void {
    if (entry.evicted || n === 0) return;
    entry.bytes -= n;
    this.total -= n;
    this.metrics.doqBufferedChanged(-n);
  }

  /** Closes `entry`'s connection with DOQ_EXCESSIVE_LOAD (RFC 9250 §4.3) and forgets its bytes. */
  private evict(entry: Held): void {
    this.total -= entry.bytes;
    this.metrics.doqBufferedChanged(-entry.bytes);
    entry.bytes = 0;
    entry.evicted = true;
    this.held.delete(entry);
    this.metrics.drop(Transport.doq, DropReason.excessiveLoad);
    void entry.connection
      .stop({ isApp: true, errorCode: DoqErrorCode.EXCESSIVE_LOAD, force: true })
      .catch(() => {});
  }
}

/**
 * The slot of one accepted DoQ connection: its queries and its no-query timer. Only a whole
 * query (read up to its FIN) being answered counts: a stream that never finishes its query
 * holds nothing up, so it neither keeps the connection from eviction nor from the timer.
 */
class DoqSlot implements IdleState {
  /** Queries read to their FIN and not yet answered. */
  private answering = 0;
  /** Being closed (evicted, timed out, or stopped): no longer a candidate for eviction. */
  stopping = false;
  idleSince = performance.now();
  private readonly noQuery: NodeJS.Timeout;

  constructor(
    readonly connection: QUICConnection,
    timeoutMs: number,
    private readonly metrics: DnsMetrics,
  ) {
    this.noQuery = setTimeout(() => {
      if (this.answering === 0) this.close();
    }, timeoutMs).unref();
  }

  get busy(): boolean {
    return this.stopping || this.answering > 0;
  }

  /** A stream's query was read to its FIN: it is being answered. */
  queryRead(): void {
    this.answering++;
  }

  /** A query `queryRead` counted was answered (or its stream failed). */
  queryEnded(): void {
    this.answering--;
    if (this.answering > 0) return;
    this.idleSince = performance.now();
    // Restarts the timer, also when it fired while a query was being answered.
    if (!this.stopping) this.noQuery.refresh();
  }

  /** Closes an idle connection: nothing is owed to it, so DOQ_NO_ERROR (RFC 9250 §4.3, §5.5). */
  close(): void {
    if (this.stopping) return;
    this.stopping = true;
    clearTimeout(this.noQuery);
    this.metrics.connectionEvicted(Transport.doq);
    void this.connection
      .stop({ isApp: true, errorCode: DoqErrorCode.NO_ERROR, force: true })
      .catch(() => {});
  }

  stopped(): void {
    this.stopping = true;
    clearTimeout(this.noQuery);
  }
}

type QuicModule = typeof Quic;

type QuicConfigModule = typeof QuicConfig;

async function loadQuic(): Promise<{
  quic: QuicModule;
  quicConfig: QuicConfigModule;
  logger: Logger;
}> {
  try {
    const quic = await import('@matrixai/quic');
    const quicConfig = await import('@matrixai/quic/config.js');
    const { default: Logger, LogLevel } = await import('@matrixai/logger');
    // The library logs every connection at INFO; the face reports through metrics instead.
    return { quic, quicConfig, logger: new Logger('doq', LogLevel.SILENT) };
  } catch (error) {
    throw new DnsServerError(
      DnsServerErrorCode.DOQ_UNAVAILABLE,
      `DNS-over-QUIC needs @matrixai/quic and its native module: ${(error as Error).message}`,
      {},
      { cause: error },
    );
  }
}

/** Refuses a certificate or key that cannot serve TLS, before any client connects. */
function checkCertificate(
  options: DoqCertificate,
  quicConfig: QuicConfigModule,
  config: object,
): void {
  try {
    const certificate = new X509Certificate(options.cert);
    if (!certificate.checkPrivateKey(createPrivateKey(options.key))) {
      throw new Error('the private key does not belong to the certificate');
    }
    // The library builds its TLS context per connection; building one now surfaces its errors.
    const { buildQuicheConfig, serverDefault } = quicConfig;
    buildQuicheConfig({ ...serverDefault, ...config });
  } catch (error) {
    throw new DnsServerError(
      DnsServerErrorCode.DOQ_CONFIG_INVALID,
      `DoQ certificate or key refused: ${(error as Error).message}`,
      {},
      { cause: error },
    );
  }
}

export async function startDoqServer(options: {
  readonly listen: ListenAddress;
  readonly tls: DoqOptions;
  readonly zones: ZoneSource;
  readonly limits: DnsServerLimits;
  readonly metrics: DnsMetrics;
  /** Shared by the DoQ servers of one `startDnsServers`. */
  readonly buffers: DoqBuffers;
}): Promise<DoqServer> {
  const { limits, metrics, zones, buffers } = options;
  const { quic, quicConfig, logger } = await loadQuic();
  const config = {
    key: options.tls.key,
    cert: options.tls.cert,
    applicationProtos: ['doq'],
    verifyPeer: false,
    maxIdleTimeout: limits.doqIdleTimeoutMs,
    initialMaxStreamsBidi: limits.doqMaxStreams,
    // RFC 9250 uses only client-initiated bidirectional streams.
    initialMaxStreamsUni: 0,
    initialMaxStreamDataUni: 0,
    initialMaxStreamDataBidiRemote: MAX_QUERY_STREAM,
    initialMaxStreamDataBidiLocal: MAX_QUERY_STREAM,
    initialMaxData: Math.min(limits.doqMaxStreams * MAX_QUERY_STREAM, DOQ_CONNECTION_WINDOW),
    maxStreamWindow: MAX_QUERY_STREAM,
    maxConnectionWindow: DOQ_CONNECTION_WINDOW,
  };
  checkCertificate(options.tls, quicConfig, config);

  // Retry tokens and connection IDs are authenticated with a key that lives as long as the server.
  const tokenKey = randomBytes(32);
  const hmac = (data: ArrayBuffer): Buffer =>
    createHmac('sha256', tokenKey).update(Buffer.from(data)).digest();
  const arrayBuffer = (bytes: Uint8Array): ArrayBuffer => {
    const copy = new ArrayBuffer(bytes.length);
    new Uint8Array(copy).set(bytes);
    return copy;
  };
  const server: QUICServer = new quic.QUICServer({
    crypto: {
      key: arrayBuffer(tokenKey),
      ops: {
        sign: async (_key, data) => arrayBuffer(hmac(data)),
        verify: async (_key, data, signature) => {
          const expected = hmac(data);
          const given = Buffer.from(signature);
          return given.length === expected.length && timingSafeEqual(given, expected);
        },
      },
    },
    config,
    minIdleTimeout: Math.min(limits.doqIdleTimeoutMs, 10_000),
    logger,
  });

  const info: AnswerInfo = { rcode: 0, qtype: 0, truncated: false };
  const answerOptions = { transport: 'tcp', info } as const;
  const events = quic.events;
  const connections = new Set<DoqSlot>();
  const perAddress = new AddressSlots(
    limits.doqMaxConnectionsPerAddress,
    limits.doqMaxConnectionsPer48,
  );

  const protocolError = (connection: QUICConnection): void => {
    metrics.drop(Transport.doq, DropReason.badFrame);
    void connection
      .stop({ isApp: true, errorCode: DoqErrorCode.PROTOCOL_ERROR, force: true })
      .catch(() => {});
  };

  /**
   * Reads one query (up to FIN), answers it on the same stream, then sends FIN. What has been
   * read is counted in `buffers` until the query is answered or the stream fails.
   */
  const serveStream = async (
    connection: QUICConnection,
    held: Held,
    slot: DoqSlot,
    stream: QUICStream,
  ): Promise<void> => {
    const deadline = setTimeout(
      () => stream.cancel(DoqErrorCode.REQUEST_CANCELLED),
      limits.doqIdleTimeoutMs,
    ).unref();
    let counted = 0;
    let read = false;
    try {
      if (stream.type !== 'bidi') return protocolError(connection);
      const chunks: Uint8Array[] = [];
      let total = 0;
      let declared = -1;
      const reader = stream.readable.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        total += value.length;
        counted += value.length;
        if (!buffers.add(held, value.length)) return;
        if (declared < 0 && total >= 2) {
          const head = chunks.length === 1 ? value : Buffer.concat(chunks);
          declared = (head[0]! << 8) | head[1]!;
        }
        // More than the prefix announced, or more than any message: §4.3.3 protocol error.
        if (total > MAX_QUERY_STREAM || (declared >= 0 && total > 2 + declared)) {
          return protocolError(connection);
        }
      }
      // FIN before the whole message (§4.3.3), or an empty message.
      if (declared <= 0 || total !== 2 + declared) return protocolError(connection);
      read = true;
      slot.queryRead();
      const framed = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const message = framed.subarray(2);
      // §4.2.1: the Message ID MUST be 0.
      if (message.length >= 2 && (message[0] !== 0 || message[1] !== 0)) {
        return protocolError(connection);
      }
      const started = performance.now();
      const response = answer(message, zones, answerOptions);
      buffers.release(held, counted);
      counted = 0;
      if (response === null) return protocolError(connection);
      const seconds = (performance.now() - started) / 1000;
      metrics.answered(Transport.doq, info, seconds);
      const out = Buffer.allocUnsafe(response.length + 2);
      out.writeUInt16BE(response.length, 0);
      out.set(response, 2);
      // The answer is held until the client's flow-control credit takes it: counted like a
      // query, or a client granting no credit would make the server hold answers of up to
      // 64 KiB on every stream of every connection until their deadlines.
      if (!buffers.add(held, out.length)) return;
      counted = out.length;
      const writer = stream.writable.getWriter();
      await writer.write(out);
      await writer.close();
    } catch {
      // The peer reset the stream or the connection closed: nothing to answer.
    } finally {
      clearTimeout(deadline);
      buffers.release(held, counted);
      if (read) slot.queryEnded();
    }
  };

  const refuse = (connection: QUICConnection): void => {
    metrics.connectionRefused(Transport.doq);
    void connection
      .stop({ isApp: true, errorCode: DoqErrorCode.EXCESSIVE_LOAD, force: true })
      .catch(() => {});
  };

  server.addEventListener(events.EventQUICServerConnection.name, (event: Event) => {
    const connection = (event as QuicEvents.EventQUICServerConnection).detail;
    const address = connection.remoteHost;
    const admitted = takeSlot(
      connections,
      perAddress,
      address,
      limits.doqMaxConnections,
      (idlest) => idlest.close(),
    );
    if (!admitted) return refuse(connection);
    const held = buffers.open(connection);
    const client = new DoqSlot(connection, limits.doqNoQueryTimeoutMs, metrics);
    connections.add(client);
    metrics.connectionOpened(Transport.doq);
    connection.addEventListener(
      events.EventQUICConnectionStopped.name,
      () => {
        client.stopped();
        buffers.closed(held);
        connections.delete(client);
        perAddress.release(address);
        metrics.connectionClosed(Transport.doq);
      },
      { once: true },
    );
    connection.addEventListener(events.EventQUICConnectionStream.name, (streamEvent: Event) => {
      const stream = (streamEvent as QuicEvents.EventQUICConnectionStream).detail;
      void serveStream(connection, held, client, stream);
    });
  });

  try {
    await server.start({ host: options.listen.host, port: options.listen.port, ipv6Only: false });
  } catch (error) {
    throw new DnsServerError(
      DnsServerErrorCode.LISTEN_FAILED,
      `DoQ ${options.listen.host} port ${options.listen.port}: ${(error as Error).message}`,
      { transport: 'doq', ...options.listen },
      { cause: error },
    );
  }
  let closed: Promise<void> | undefined;
  return {
    address: {
      host: server.host,
      port: server.port,
      family: isIPv6(server.host) ? 'IPv6' : 'IPv4',
    },
    replaceCertificate(tls) {
      const identity = { key: tls.key, cert: tls.cert };
      checkCertificate(identity, quicConfig, { ...config, ...identity });
      server.updateConfig(identity);
    },
    close() {
      closed ??= server
        .stop({ isApp: true, errorCode: DoqErrorCode.NO_ERROR, force: true })
        .catch(() => {});
      return closed;
    },
  };
}
