import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';

/**
 * Asks the OS for ports that are free right now on `host`: `count` ports that are free for both
 * UDP (QUIC) and TCP (TLS transport, metrics). All sockets are held until every port is found,
 * so the ports are distinct, then released; another process could still take one before it is
 * used, which the caller reports as an ordinary bind error.
 */
export async function findFreePorts(host: string, count: number): Promise<number[]> {
  const held: Array<Socket | Server> = [];
  const ports: number[] = [];
  try {
    for (let attempts = 0; ports.length < count; attempts++) {
      if (attempts > count * 20) {
        throw new Error(`could not find ${count} free UDP+TCP ports on ${host}`);
      }
      const udp = await bindUdp(host);
      held.push(udp);
      const port = udp.address().port;
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

function bindUdp(host: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.once('error', reject);
    socket.bind(0, host, () => {
      socket.off('error', reject);
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
