import { createRequire } from 'node:module';
import { isIPv6 } from 'node:net';
import { DnsServerError, DnsServerErrorCode } from './errors.js';
import { DropReason, Transport, type DnsMetrics } from './metrics.js';
import type { BoundAddress, ListenAddress } from './options.js';
import type { UdpResponseCache } from './response-cache.js';

/**
 * Batched UDP (docs/dns.md, "Batched UDP"): the native addon in native/udp-batch/ (built by
 * `npm install` on Linux) owns the socket; when it is readable, one call receives up to 64
 * datagrams with recvmmsg(2), each is answered from the response cache or the engine, and one
 * sendmmsg(2) sends the answers. node:dgram's one-callback-and-one-send-per-datagram path is
 * the rest of the cost of a cached answer, so this is where the UDP rate comes from.
 */

interface UdpBatchAddon {
  readonly batchMax: number;
  open(host: string, port: number, ipv6: boolean): object;
  port(socket: object): number;
  start(socket: object, onReadable: () => void): void;
  recv(socket: object, buffer: Buffer, slot: number, lengths: Uint32Array): number;
  send(socket: object, buffer: Buffer, plan: Uint32Array, count: number): number;
  close(socket: object): void;
}

/** `recv` lengths that are not datagrams to answer (native/udp-batch/udp_batch.c). */
const LENGTH_TRUNCATED = 0xffffffff;
const LENGTH_BAD_SOURCE = 0xfffffffe;

/**
 * Receive slot per datagram: the largest UDP payload, so every datagram is read whole and
 * answered exactly as node:dgram would have it (an oversized query gets its FORMERR). The
 * buffer is allocated without zero-filling, so only the pages datagrams land in are touched.
 */
export const UDP_BATCH_SLOT = 65_536;

/** Batches answered per readable event before yielding to the rest of the event loop. */
const BATCHES_PER_EVENT = 8;

let loaded: { addon: UdpBatchAddon | null; reason: string } | undefined;

function load(): { addon: UdpBatchAddon | null; reason: string } {
  if (loaded !== undefined) return loaded;
  if (process.platform !== 'linux') {
    loaded = { addon: null, reason: `recvmmsg/sendmmsg need Linux (this is ${process.platform})` };
    return loaded;
  }
  const require = createRequire(import.meta.url);
  // src/faces/dns/ and dist/faces/dns/ are both three levels below the package root.
  const file = '../../../build/Release/udp_batch.node';
  try {
    loaded = { addon: require(file) as UdpBatchAddon, reason: 'loaded' };
  } catch (error) {
    loaded = {
      addon: null,
      reason: `native module ${file} not built (run npm install): ${(error as Error).message}`,
    };
  }
  return loaded;
}

/** Whether batched UDP is available here, and if not, why. */
export function udpBatchSupport(): { readonly available: boolean; readonly reason: string } {
  const { addon, reason } = load();
  return { available: addon !== null, reason };
}

/** Batched UDP can bind this address (a literal without an IPv6 zone index). */
export function udpBatchCanServe(listen: ListenAddress): boolean {
  return load().addon !== null && !listen.host.includes('%');
}

export interface BatchedUdpServer {
  readonly address: BoundAddress;
  close(): Promise<void>;
}

export function startBatchedUdpServer(options: {
  readonly listen: ListenAddress;
  readonly cache: UdpResponseCache;
  readonly metrics: DnsMetrics;
}): BatchedUdpServer {
  const { addon } = load();
  if (addon === null) {
    throw new DnsServerError(
      DnsServerErrorCode.LISTEN_FAILED,
      `batched UDP is not available: ${load().reason}`,
      { transport: 'udp', ...options.listen },
    );
  }
  const { listen, cache, metrics } = options;
  const ipv6 = isIPv6(listen.host);
  let socket: object;
  try {
    socket = addon.open(listen.host, listen.port, ipv6);
  } catch (error) {
    throw new DnsServerError(
      DnsServerErrorCode.LISTEN_FAILED,
      `UDP ${listen.host} port ${listen.port}: ${(error as Error).message}`,
      { transport: 'udp', ...listen },
      { cause: error },
    );
  }
  const batchMax = addon.batchMax;
  const input = Buffer.allocUnsafeSlow(batchMax * UDP_BATCH_SLOT);
  const lengths = new Uint32Array(batchMax);
  // Answers are laid end to end; a batch's answers never exceed batchMax × the largest.
  let output: Buffer = Buffer.alloc(batchMax * 1232);
  const plan = new Uint32Array(batchMax * 3);
  const info = cache.info;
  // Each planned answer's QTYPE, rcode and TC, counted once the batch has gone.
  const answeredInfo = new Uint16Array(batchMax * 3);
  const scratch = { qtype: 0, rcode: 0, truncated: false };

  const answerBatch = (): number => {
    const count = addon.recv(socket, input, UDP_BATCH_SLOT, lengths);
    if (count === 0) return 0;
    const started = performance.now();
    let planned = 0;
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const length = lengths[i]!;
      if (length === LENGTH_TRUNCATED) {
        metrics.drop(Transport.udp, DropReason.notQuery);
        continue;
      }
      if (length === LENGTH_BAD_SOURCE) {
        metrics.drop(Transport.udp, DropReason.sendFailed);
        continue;
      }
      const start = i * UDP_BATCH_SLOT;
      const response = cache.answer(input.subarray(start, start + length), started);
      if (response === null) {
        metrics.drop(Transport.udp, DropReason.notQuery);
        continue;
      }
      if (offset + response.length > output.length) {
        output = grow(output, offset, offset + response.length);
      }
      output.set(response, offset);
      plan[planned * 3] = i;
      plan[planned * 3 + 1] = offset;
      plan[planned * 3 + 2] = response.length;
      // The kinds are counted now; the latency when the batch has gone.
      answeredInfo[planned * 3] = info.qtype;
      answeredInfo[planned * 3 + 1] = info.rcode;
      answeredInfo[planned * 3 + 2] = info.truncated ? 1 : 0;
      planned++;
      offset += response.length;
    }
    if (planned === 0) return count;
    const sent = addon.send(socket, output, plan, planned);
    const seconds = (performance.now() - started) / 1000;
    for (let j = 0; j < sent; j++) {
      scratch.qtype = answeredInfo[j * 3]!;
      scratch.rcode = answeredInfo[j * 3 + 1]!;
      scratch.truncated = answeredInfo[j * 3 + 2] === 1;
      metrics.answered(Transport.udp, scratch, seconds);
    }
    for (let j = sent; j < planned; j++) metrics.drop(Transport.udp, DropReason.sendFailed);
    return count;
  };

  addon.start(socket, () => {
    for (let batch = 0; batch < BATCHES_PER_EVENT; batch++) {
      if (answerBatch() < batchMax) return;
    }
  });
  const port = addon.port(socket);
  let closed = false;
  return {
    address: { host: listen.host, port, family: ipv6 ? 'IPv6' : 'IPv4' },
    close() {
      if (!closed) {
        closed = true;
        addon.close(socket);
      }
      return Promise.resolve();
    },
  };
}

function grow(output: Buffer, keep: number, needed: number): Buffer {
  const larger = Buffer.alloc(Math.max(needed, output.length * 2));
  output.copy(larger, 0, 0, keep);
  return larger;
}
