/**
 * The floor under any Node.js UDP DNS server: a node:dgram responder that does no DNS work at
 * all (it turns each query around with QR set and NOTIMP), run exactly like the HyperMesh
 * server. Its rate is what Node's UDP path alone allows on this machine, so the benchmark can
 * say how much of the gap to Knot is the runtime and how much is the server.
 *
 *   node --import tsx bench/dns/floor.ts --host 127.0.0.1   (prints `ready <port>`)
 *
 * `--cpu-on-stdin` as in bench/dns/server.ts.
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { parseArgs } from 'node:util';
import { reportCpuOnStdin } from './cpu.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    'cpu-on-stdin': { type: 'boolean', default: false },
  },
});
if (values['cpu-on-stdin']) reportCpuOnStdin();
const host = values.host!;
const socket = dgram.createSocket(isIPv6(host) ? 'udp6' : 'udp4');
socket.on('message', (query, peer) => {
  if (query.length < 12) return;
  const response = Buffer.allocUnsafe(query.length);
  query.copy(response);
  response[2] = (query[2]! & 0x79) | 0x80; // QR, opcode and RD kept
  response[3] = 4; // NOTIMP
  socket.send(response, peer.port, peer.address);
});
socket.bind(0, host, () => process.stdout.write(`ready ${socket.address().port}\n`));
process.once('SIGTERM', () => socket.close(() => process.exit(0)));
