import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { answer } from '../../../src/trustchain/dns/index.js';
import type { ZoneSource } from '../../../src/trustchain/dns/index.js';

/**
 * A minimal UDP + TCP (RFC 7766 length-prefixed) responder on loopback around `answer`, so that
 * clients nobody here wrote (kdig) can check the bytes. Test-only: the real servers are a later
 * piece of work. Records every query it receives.
 */
export interface LoopbackServer {
  readonly port: number;
  readonly queries: Uint8Array[];
  close(): Promise<void>;
}

async function tryListen(zones: ZoneSource): Promise<LoopbackServer | undefined> {
  const queries: Uint8Array[] = [];
  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, peer) => {
    queries.push(new Uint8Array(msg));
    const response = answer(msg, zones, { transport: 'udp' });
    if (response !== null) udp.send(response, peer.port, peer.address);
  });
  udp.bind(0, '127.0.0.1');
  await once(udp, 'listening');
  const port = udp.address().port;
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const msg = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + msg.length);
        queries.push(new Uint8Array(msg));
        const response = answer(msg, zones, { transport: 'tcp' });
        if (response === null) continue;
        const frame = Buffer.alloc(2 + response.length);
        frame.writeUInt16BE(response.length, 0);
        frame.set(response, 2);
        socket.write(frame);
      }
    });
  });
  const listened = new Promise<boolean>((resolve) => {
    tcp.once('listening', () => resolve(true));
    tcp.once('error', () => resolve(false));
  });
  tcp.listen(port, '127.0.0.1');
  if (!(await listened)) {
    udp.close();
    return undefined;
  }
  return {
    port,
    queries,
    async close() {
      for (const socket of sockets) socket.destroy();
      await Promise.all([
        new Promise<void>((resolve) => tcp.close(() => resolve())),
        new Promise<void>((resolve) => udp.close(() => resolve())),
      ]);
    },
  };
}

/** Starts the responder; the TCP port is the UDP one, so a taken TCP port means another try. */
export async function startLoopback(zones: ZoneSource): Promise<LoopbackServer> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const server = await tryListen(zones);
    if (server !== undefined) return server;
  }
  throw new Error('no port free for both UDP and TCP on 127.0.0.1');
}

export function run(
  command: string,
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Whether `command` runs at all (`--version`). */
export async function available(command: string): Promise<boolean> {
  const result = await run(command, ['--version']);
  return result.code === 0;
}
