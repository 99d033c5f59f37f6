/**
 * Child process for restart-quic.test.ts: one consensus-network node over real QUIC, so that the
 * test can kill -9 it (a process that dies sends no QUIC CONNECTION_CLOSE; an endpoint closed
 * in-process always does). The node's configuration, keys included, arrives as the first line
 * on stdin (never in argv or the environment); later lines are commands. Events go to stdout as
 * JSON lines:
 *
 *   {"event":"ready","port":P}                 listening on 127.0.0.1:P, network started
 *   {"event":"connected","peer":"a"}           onPeerConnected
 *   {"event":"message","peer":"a","kind":"status","height":5}
 *   {"event":"log","level":"info","message":"…","fields":{…}}
 *
 * Commands: {"cmd":"broadcast","height":H} broadcasts a status message for height H. The
 * process exits when its stdin ends (the test runner went away).
 */
import { createInterface } from 'node:readline';
import { Registry } from 'prom-client';
import { createStoqConsensusNetwork } from '../../../src/consensus/net/index.js';
import { fromHex } from '../../../src/crypto/bytes.js';
import { defaultFalcon } from '../../../src/crypto/falcon.js';
import { createAuthenticator } from '../../../src/stoq/auth/authenticator.js';
import { StoqEndpoint } from '../../../src/stoq/endpoint.js';
import { createStoqMetrics } from '../../../src/stoq/metrics.js';
import { createQuicTransport } from '../../../src/stoq/quic/transport.js';
import { StaticResolver } from '../../../src/stoq/resolver.js';
import { parseProcessConfig, type ProcessCommand } from './network-process-protocol.js';

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

const lines = createInterface({ input: process.stdin });
const iterator = lines[Symbol.asyncIterator]();
const first = await iterator.next();
if (first.done === true) process.exit(2);
const config = parseProcessConfig(JSON.parse(first.value));

const registry = new Registry();
const metrics = createStoqMetrics(registry);
const falconBackend = defaultFalcon();
const transport = createQuicTransport({ privateKey: fromHex(config.seed) });
const endpoint = new StoqEndpoint({
  transport,
  authenticator: createAuthenticator({
    local: {
      chain: config.chain.map(fromHex),
      falcon: {
        publicKey: fromHex(config.falcon.publicKey),
        secretKey: fromHex(config.falcon.secretKey),
      },
      falconBackend,
    },
    trust: { roots: config.roots.map(fromHex), revocation: () => 'good' },
    mode: 'delegated',
    metrics,
  }),
  resolver: new StaticResolver({}),
  metrics,
  logger: { warn: () => undefined, error: () => undefined },
});
const log =
  (level: string) =>
  (message: string, fields: Record<string, unknown>): void =>
    emit({ event: 'log', level, message, fields });
const network = createStoqConsensusNetwork({
  endpoint,
  self: config.name,
  peers: config.peers,
  blockSource: () => [],
  logger: { info: log('info'), warn: log('warn'), error: log('error') },
  registry,
});
network.onPeerConnected((peer) => emit({ event: 'connected', peer }));
network.onMessage((peer, message) =>
  emit({
    event: 'message',
    peer,
    kind: message.kind,
    ...(message.kind === 'status' ? { height: message.height } : {}),
  }),
);
const bound = await endpoint.listen({ host: '127.0.0.1', port: config.port });
network.start();
emit({ event: 'ready', port: bound.port });

for await (const line of { [Symbol.asyncIterator]: () => iterator }) {
  const command = JSON.parse(line) as ProcessCommand;
  if (command.cmd === 'broadcast') {
    network.broadcast({
      kind: 'status',
      committedHeight: command.height - 1,
      height: command.height,
      round: 0,
    });
  }
}
await network.close();
await endpoint.close();
await transport.close();
process.exit(0);
