import net from 'node:net';
import { answer } from '../../trustchain/dns/index.js';
import type { AnswerInfo, ZoneSource } from '../../trustchain/dns/index.js';
import { AddressSlots, takeSlot } from './connection-slots.js';
import type { IdleState } from './connection-slots.js';
import { DnsServerError, DnsServerErrorCode } from './errors.js';
import { DropReason, Transport, type DnsMetrics } from './metrics.js';
import type { BoundAddress, DnsServerLimits, ListenAddress } from './options.js';

/**
 * DNS over TCP (RFC 1035 §4.2.2, RFC 7766): each message has a 2-byte length prefix; a client
 * may send many queries on one connection without waiting (pipelining, §6.2.1.1) and answers
 * go out as each is ready, which for the synchronous engine is in order.
 *
 * What one connection can hold is bounded: one partial frame (at most 65,535 bytes, filled in
 * place, never re-concatenated), one received chunk while reading is paused, and at most
 * `tcpMaxPendingQueries` answers not yet written to the kernel. When a peer does not read its
 * answers, writes stop completing, the server stops reading from it, and the idle timer
 * (which only complete queries reset) closes it.
 *
 * What one client can hold of the listener is bounded too: `tcpMaxConnectionsPerAddress`
 * connections (and an IPv6 /48 `tcpMaxConnectionsPer48`), and at `tcpMaxConnections` a newcomer
 * takes the slot of the connection idle longest (docs/dns.md, "Limits"), so quiet connections
 * kept open cannot lock others out. A connection whose client has taken none of its answers for
 * `tcpWriteStallMs` counts as idle: one that asks for large answers and never reads them would
 * otherwise keep its slot until the idle timer.
 */
export interface TcpServer {
  readonly address: BoundAddress;
  /** Stops accepting, lets connections flush and close, cuts them after `closeGraceMs`. */
  close(): Promise<void>;
}

interface Shared {
  readonly zones: ZoneSource;
  readonly limits: DnsServerLimits;
  readonly metrics: DnsMetrics;
  readonly info: AnswerInfo;
  readonly answerOptions: { readonly transport: 'tcp'; readonly info: AnswerInfo };
}

class TcpConnection implements IdleState {
  /** The first byte of a length prefix that arrived alone, or -1. */
  private lengthHigh = -1;
  /** The frame being filled when a query spans reads. */
  private frame: Buffer | null = null;
  private filled = 0;
  /** Bytes received but not yet parsed because reading is paused. */
  private held: Buffer | null = null;
  private heldAt = 0;
  /** Answers handed to the socket whose write has not completed. */
  private pending = 0;
  /** While `pending` > 0: when a write last completed, or the first of them was handed over. */
  private progressAt = 0;
  private paused = false;
  private closing = false;
  /** When the last complete query arrived (or the connection opened). */
  idleSince = performance.now();
  private readonly idle: NodeJS.Timeout;
  private readonly onWritten = (): void => {
    this.pending--;
    this.progressAt = performance.now();
    if (this.pending === 0 && this.paused && !this.closing) this.resumeReading();
  };

  constructor(
    readonly socket: net.Socket,
    private readonly shared: Shared,
  ) {
    socket.setNoDelay(true);
    this.idle = setTimeout(() => this.onIdle(), shared.limits.tcpIdleTimeoutMs).unref();
    socket.on('data', (chunk: Buffer) => {
      socket.cork();
      this.consume(chunk, 0);
      socket.uncork();
    });
    // Errors (reset, broken pipe) are followed by 'close'; nothing else to do.
    socket.on('error', () => {});
    socket.on('close', () => clearTimeout(this.idle));
  }

  /**
   * An answer is waiting to be written or input is held. A connection the server is closing
   * (its FIN sent, the peer's not yet come) owes nothing: it may be evicted, or a peer that
   * never sends its FIN would hold the slot until the idle timer.
   */
  get busy(): boolean {
    return this.pending > 0 || this.held !== null;
  }

  /**
   * Since when the client has taken none of the answers waiting (the socket's writes make no
   * progress; reading is paused once they pile up); undefined when none waits.
   */
  get stalledSince(): number | undefined {
    return this.pending > 0 ? this.progressAt : undefined;
  }

  /** Ends the connection once written answers are flushed (graceful close). */
  finish(): void {
    if (this.closing) return;
    this.closing = true;
    this.held = null;
    this.frame = null;
    this.socket.end();
    // Read (and discard) until the peer's FIN, so the connection can finish closing.
    this.socket.resume();
  }

  private consume(buf: Buffer, at: number): void {
    const length = buf.length;
    while (at < length) {
      if (this.paused || this.closing) {
        if (!this.closing) {
          this.held = buf;
          this.heldAt = at;
        }
        return;
      }
      const frame = this.frame;
      if (frame !== null) {
        const n = Math.min(frame.length - this.filled, length - at);
        buf.copy(frame, this.filled, at, at + n);
        this.filled += n;
        at += n;
        if (this.filled === frame.length) {
          this.frame = null;
          this.query(frame);
        }
        continue;
      }
      let size: number;
      if (this.lengthHigh >= 0) {
        size = (this.lengthHigh << 8) | buf[at]!;
        this.lengthHigh = -1;
        at += 1;
      } else if (length - at >= 2) {
        size = (buf[at]! << 8) | buf[at + 1]!;
        at += 2;
      } else {
        this.lengthHigh = buf[at]!;
        at += 1;
        continue;
      }
      if (size === 0) {
        // Not a message at all; nothing to answer, so the connection ends.
        this.shared.metrics.drop(Transport.tcp, DropReason.badFrame);
        this.finish();
        return;
      }
      if (length - at >= size) {
        this.query(buf.subarray(at, at + size));
        at += size;
      } else {
        this.frame = Buffer.allocUnsafe(size);
        this.filled = 0;
      }
    }
  }

  private query(message: Uint8Array): void {
    const { metrics, info, answerOptions, limits } = this.shared;
    this.idle.refresh();
    const started = performance.now();
    this.idleSince = started;
    const response = answer(message, this.shared.zones, answerOptions);
    if (response === null) {
      // A response or a few bytes: not something a client waits on; end the connection.
      metrics.drop(Transport.tcp, DropReason.notQuery);
      this.finish();
      return;
    }
    const framed = Buffer.allocUnsafe(response.length + 2);
    framed[0] = response.length >>> 8;
    framed[1] = response.length & 0xff;
    framed.set(response, 2);
    if (this.pending === 0) this.progressAt = started;
    this.pending++;
    const flowing = this.socket.write(framed, this.onWritten);
    metrics.answered(Transport.tcp, info, (performance.now() - started) / 1000);
    if (!flowing || this.pending >= limits.tcpMaxPendingQueries) this.pauseReading();
  }

  private pauseReading(): void {
    this.paused = true;
    this.socket.pause();
  }

  private resumeReading(): void {
    this.paused = false;
    const held = this.held;
    this.held = null;
    if (held !== null) {
      this.socket.cork();
      this.consume(held, this.heldAt);
      this.socket.uncork();
    }
    if (!this.paused && !this.closing) this.socket.resume();
  }

  private onIdle(): void {
    const clean =
      !this.closing &&
      this.pending === 0 &&
      this.frame === null &&
      this.lengthHigh < 0 &&
      this.held === null;
    if (clean) {
      // RFC 7766 §6.2.3: the server closes idle connections; a second expiry cuts a peer that
      // never closes its side.
      this.finish();
      this.idle.refresh();
    } else {
      this.socket.destroy();
    }
  }
}

export async function startTcpServer(options: {
  readonly listen: ListenAddress;
  readonly zones: ZoneSource;
  readonly limits: DnsServerLimits;
  readonly metrics: DnsMetrics;
}): Promise<TcpServer> {
  const { limits, metrics } = options;
  const info: AnswerInfo = { rcode: 0, qtype: 0, truncated: false };
  const shared: Shared = {
    zones: options.zones,
    limits,
    metrics,
    info,
    answerOptions: { transport: 'tcp', info },
  };
  const connections = new Set<TcpConnection>();
  const perAddress = new AddressSlots(
    limits.tcpMaxConnectionsPerAddress,
    limits.tcpMaxConnectionsPer48,
  );
  let closing = false;
  const refuse = (socket: net.Socket): void => {
    metrics.connectionRefused(Transport.tcp);
    socket.on('error', () => {});
    socket.destroy();
  };
  const server = net.createServer((socket) => {
    if (closing) return refuse(socket);
    const address = socket.remoteAddress ?? '';
    // Idle means nothing is owed to it (no answer unwritten, no query held), or its client has
    // taken no answer for tcpWriteStallMs.
    const admitted = takeSlot(
      connections,
      perAddress,
      address,
      limits.tcpMaxConnections,
      (idlest) => {
        metrics.connectionEvicted(Transport.tcp);
        idlest.socket.destroy();
      },
      performance.now() - limits.tcpWriteStallMs,
    );
    if (!admitted) return refuse(socket);
    const connection = new TcpConnection(socket, shared);
    connections.add(connection);
    metrics.connectionOpened(Transport.tcp);
    socket.on('close', () => {
      connections.delete(connection);
      perAddress.release(address);
      metrics.connectionClosed(Transport.tcp);
    });
  });

  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error): void => {
      reject(
        new DnsServerError(
          DnsServerErrorCode.LISTEN_FAILED,
          `TCP ${options.listen.host} port ${options.listen.port}: ${error.message}`,
          { transport: 'tcp', ...options.listen },
          { cause: error },
        ),
      );
    };
    server.once('error', failed);
    server.listen({ host: options.listen.host, port: options.listen.port, exclusive: true }, () => {
      server.off('error', failed);
      // Accept failures (e.g. out of file descriptors) must not take the process down.
      server.on('error', () => {});
      resolve();
    });
  });
  const bound = server.address() as net.AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    address: {
      host: bound.address,
      port: bound.port,
      family: bound.family === 'IPv6' ? 'IPv6' : 'IPv4',
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        const grace = setTimeout(() => {
          for (const connection of connections) connection.socket.destroy();
        }, limits.closeGraceMs).unref();
        server.close(() => {
          clearTimeout(grace);
          resolve();
        });
        for (const connection of connections) connection.finish();
      });
      return closed;
    },
  };
}
