import { execFile } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { QUICClient, events as quicEvents } from '@matrixai/quic';
import Logger, { LogLevel } from '@matrixai/logger';
import {
  MemoryZone,
  ZoneSet,
  decodeMessage,
  encodeMessage,
  parseRecord,
} from '../../src/trustchain/dns/index.js';
import type { DnsMessage, RecordInput } from '../../src/trustchain/dns/index.js';
import { waitForCondition, withDeadline } from '../helpers/wait.js';

/** The zone the server tests serve: a few names, and one RRset too big for a UDP answer. */
const INPUT: RecordInput[] = [
  {
    name: 'srv.test.',
    type: 'SOA',
    ttl: 3600,
    data: {
      mname: 'ns.srv.test.',
      rname: 'hostmaster.srv.test.',
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: 60,
    },
  },
  { name: 'srv.test.', type: 'NS', ttl: 3600, data: { host: 'ns.srv.test.' } },
  { name: 'ns.srv.test.', type: 'A', ttl: 3600, data: { address: '192.0.2.53' } },
  { name: 'www.srv.test.', type: 'A', ttl: 300, data: { address: '192.0.2.1' } },
  { name: 'www.srv.test.', type: 'AAAA', ttl: 300, data: { address: '2001:db8::1' } },
  ...Array.from({ length: 200 }, (_, i): RecordInput => ({
    name: 'many.srv.test.',
    type: 'A',
    ttl: 60,
    data: { address: `10.0.${i >> 8}.${i & 0xff}` },
  })),
];

export function testZones(): ZoneSet {
  return new ZoneSet([
    MemoryZone.build(
      'srv.test.',
      INPUT.map((r) => parseRecord(r)),
    ),
  ]);
}

export function query(name: string, type: number, id: number, edns = true): Buffer {
  return Buffer.from(
    encodeMessage({
      id,
      recursionDesired: true,
      questions: [{ name, type, class: 1 }],
      ...(edns ? { edns: { udpPayloadSize: 1232, version: 0, dnssecOk: false, options: [] } } : {}),
    }),
  );
}

export function frame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(message.length + 2);
  out.writeUInt16BE(message.length, 0);
  out.set(message, 2);
  return out;
}

/** A UDP client on loopback that collects every datagram it receives. */
export class UdpClient {
  readonly socket: dgram.Socket;
  readonly received: DnsMessage[] = [];
  /** The same datagrams as bytes. */
  readonly raw: Buffer[] = [];

  private constructor(
    socket: dgram.Socket,
    readonly host: string,
    readonly port: number,
  ) {
    this.socket = socket;
    socket.on('message', (message) => {
      this.raw.push(message);
      this.received.push(decodeMessage(message));
    });
  }

  static async open(host: string, port: number): Promise<UdpClient> {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    socket.bind(0, host);
    await once(socket, 'listening');
    return new UdpClient(socket, host, port);
  }

  send(bytes: Uint8Array): void {
    this.socket.send(bytes, this.port, this.host);
  }

  /** Waits until `count` datagrams in total have arrived. */
  async receivedCount(count: number, what: string): Promise<DnsMessage[]> {
    await waitForCondition(
      this.socket,
      'message',
      () => this.received.length >= count,
      () => `${what}: ${this.received.length} of ${count} datagrams`,
      10_000,
    );
    return this.received;
  }

  /** Waits until a datagram matching `predicate` has arrived; returns all received so far. */
  async until(predicate: (message: DnsMessage) => boolean, what: string): Promise<DnsMessage[]> {
    await waitForCondition(
      this.socket,
      'message',
      () => this.received.some(predicate),
      () => `${what}: ${this.received.length} datagrams, none matching`,
      10_000,
    );
    return this.received;
  }

  /** Sends `bytes` and returns the next datagram received. */
  async ask(bytes: Uint8Array, what: string): Promise<DnsMessage> {
    const count = this.received.length;
    this.send(bytes);
    return (await this.receivedCount(count + 1, what))[count]!;
  }

  /** Sends `bytes` and returns the next datagram received, as bytes. */
  async askRaw(bytes: Uint8Array, what: string): Promise<Buffer> {
    const count = this.received.length;
    this.send(bytes);
    await this.receivedCount(count + 1, what);
    return this.raw[count]!;
  }

  close(): void {
    this.socket.close();
  }
}

/** A TCP client that splits what it receives into RFC 1035 §4.2.2 frames. */
export class TcpClient {
  readonly frames: Buffer[] = [];
  private pending = Buffer.alloc(0);
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 2 && this.pending.length >= 2 + this.pending.readUInt16BE(0)) {
        const length = this.pending.readUInt16BE(0);
        this.frames.push(this.pending.subarray(2, 2 + length));
        this.pending = this.pending.subarray(2 + length);
        socket.emit('frame');
      }
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** Connects to `host`:`port`, from `localAddress` when given (e.g. 127.0.0.2). */
  static async connect(host: string, port: number, localAddress?: string): Promise<TcpClient> {
    const socket = net.connect({
      host,
      port,
      ...(localAddress === undefined ? {} : { localAddress }),
    });
    await withDeadline(once(socket, 'connect'), 10_000, `TCP connect to ${host} port ${port}`);
    return new TcpClient(socket);
  }

  /** Waits until `count` frames in total have arrived. */
  async frameCount(count: number, what: string): Promise<Buffer[]> {
    const enough = waitForCondition(
      this.socket,
      'frame',
      () => this.frames.length >= count,
      () => `${what}: ${this.frames.length} of ${count} frames`,
      10_000,
    );
    const early = this.closed.then(() => {
      if (this.frames.length < count) {
        throw new Error(`${what}: connection closed after ${this.frames.length} frames`);
      }
    });
    await Promise.race([enough, early]);
    return this.frames;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export function run(
  command: string,
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function toolPresent(command: string, args: string[]): Promise<boolean> {
  return (await run(command, args)).code === 0;
}

/** Whether this host has an IPv6 loopback to bind. */
export async function ipv6Loopback(): Promise<boolean> {
  const socket = dgram.createSocket('udp6');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '::1', () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    socket.removeAllListeners('error');
    socket.on('error', () => {});
    try {
      socket.close();
    } catch {
      // Never bound: nothing to close.
    }
  }
}

/** One sample of a Prometheus text exposition, e.g. `sample(text, 'x_total{transport="udp"}')`. */
export function sample(text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return 0;
}

const silentQuic = new Logger('doq-test', LogLevel.SILENT);

/**
 * Opens a DNS-over-QUIC connection to 127.0.0.1:`port` with our own client (no certificate
 * check, ALPN `doq`); `closedWith` resolves with the error code the server closes it with.
 * `localHost` binds the client (e.g. 127.0.0.2); `keepAliveMs` makes it send PINGs that often.
 */
export async function doqClient(
  port: number,
  options: {
    readonly localHost?: string;
    readonly keepAliveMs?: number;
    /** More QUIC client settings (e.g. a small `initialMaxStreamDataBidiLocal`). */
    readonly config?: Readonly<Record<string, number>>;
  } = {},
) {
  const client = await QUICClient.createQUICClient({
    host: '127.0.0.1',
    port,
    ...(options.localHost === undefined ? {} : { localHost: options.localHost }),
    crypto: {
      ops: { randomBytes: async (data: ArrayBuffer) => void randomFillSync(new Uint8Array(data)) },
    },
    config: {
      verifyPeer: false,
      applicationProtos: ['doq'],
      ...(options.keepAliveMs === undefined
        ? {}
        : { keepAliveIntervalTime: options.keepAliveMs, maxIdleTimeout: 60_000 }),
      ...options.config,
    },
    logger: silentQuic,
  });
  const closedWith = new Promise<number | undefined>((resolve) => {
    client.connection.addEventListener(
      quicEvents.EventQUICConnectionError.name,
      (event: Event) => {
        const error = (event as quicEvents.EventQUICConnectionError).detail as {
          data?: { errorCode?: number };
        };
        resolve(error.data?.errorCode);
      },
      { once: true },
    );
  });
  return { client, closedWith };
}
