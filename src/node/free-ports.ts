import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

/** Linux's ephemeral range file: ports the OS hands to `bind(0)` and outgoing connections. */
const EPHEMERAL_RANGE_FILE = '/proc/sys/net/ipv4/ip_local_port_range';
/** The lowest port picked outside the ephemeral range (above the well-known and common ones). */
const LOWEST_PICKED = 10_000;

/**
 * The ports below the OS's ephemeral range to pick from, or null (not Linux, unreadable, or no
 * room below it): then the OS picks (`bind(0)`).
 */
export function pickRange(rangeText: string | null): { low: number; high: number } | null {
  const match = rangeText === null ? null : /^\s*(\d+)\s+(\d+)\s*$/.exec(rangeText);
  if (match === null) return null;
  const ephemeralLow = Number(match[1]);
  const high = ephemeralLow - 1;
  return high - LOWEST_PICKED >= 1_000 ? { low: LOWEST_PICKED, high } : null;
}

function readRange(): string | null {
  try {
    return readFileSync(EPHEMERAL_RANGE_FILE, 'utf8');
  } catch {
    return null;
  }
}

/**
 * Finds ports that are free right now on `host`: `count` ports that are free for both UDP
 * (QUIC) and TCP (TLS transport, metrics). On Linux they are drawn at random from below the
 * ephemeral range, so no other process's `bind(0)` or outgoing connection can take one between
 * now and the moment it is used (only another process picking explicit ports could); elsewhere
 * the OS picks. All sockets are held until every port is found, so the ports are distinct, then
 * released; a port taken meanwhile is reported by the caller as an ordinary bind error. No port
 * of `exclude` is returned (ports the caller has given to something else already, free or not).
 */
export async function findFreePorts(
  host: string,
  count: number,
  random: () => number = Math.random,
  exclude: ReadonlySet<number> = new Set(),
): Promise<number[]> {
  const range = pickRange(readRange());
  const held: Array<Socket | Server> = [];
  const ports: number[] = [];
  try {
    for (let attempts = 0; ports.length < count; attempts++) {
      if (attempts > count * 20) {
        throw new Error(`could not find ${count} free UDP+TCP ports on ${host}`);
      }
      const wanted =
        range === null ? 0 : range.low + Math.floor(random() * (range.high - range.low + 1));
      if (wanted !== 0 && (ports.includes(wanted) || exclude.has(wanted))) continue;
      // A drawn port in use is skipped; any other failure (an address this machine does not
      // have, no permission) is the caller's to see.
      const udp = await bindUdp(host, wanted).catch((error: NodeJS.ErrnoException) => {
        if (wanted !== 0 && error.code === 'EADDRINUSE') return null;
        throw error;
      });
      if (udp === null) continue;
      held.push(udp);
      const port = udp.address().port;
      // One the OS picked: held, so it is not picked again.
      if (exclude.has(port)) continue;
      const tcp = await bindTcp(host, port).catch(() => null);
      if (tcp === null) continue;
      held.push(tcp);
      ports.push(port);
    }
    return ports;
  } finally {
    await Promise.all(held.map(release));
  }
}

function bindUdp(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const failed = (error: Error): void => {
      // A port in use: free this socket's handle before the caller tries another port.
      try {
        socket.close();
      } catch {
        // Already closed.
      }
      reject(error);
    };
    socket.once('error', failed);
    socket.bind(port, host, () => {
      socket.off('error', failed);
      resolve(socket);
    });
  });
}

function bindTcp(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function release(handle: Socket | Server): Promise<void> {
  return new Promise((resolve) => {
    if ('send' in handle) handle.close(() => resolve());
    else handle.close(() => resolve());
  });
}
