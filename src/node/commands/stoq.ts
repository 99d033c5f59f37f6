import type { Command } from '../commands.js';
import { parseCommandArgs, positiveInteger, requireOption } from '../args.js';
import { CliError } from '../cli-error.js';
import { loadNodeConfig } from '../config.js';
import { createLogger } from '../log.js';
import { nodeService } from '../node-service.js';
import { startPeerMonitor } from '../peer-monitor.js';
import { buildStoqParts, startStoqNode } from '../stoq-node.js';
import { StoqError } from '../../stoq/index.js';
import { MAX_DEADLINE_MS } from '../../stoq/rpc/wire.js';

/** Most pings `stoq ping --count` makes: enough for any measurement, not a flood. */
const MAX_PING_COUNT = 100_000;

const serve: Command = {
  name: 'stoq serve',
  summary: 'run a STOQ node from a configuration file (until Ctrl-C / SIGTERM)',
  help: `
usage: hypermesh stoq serve --config FILE [--ping-interval-ms N]

Starts a node: listens for STOQ connections (QUIC or TLS over TCP, as configured), authenticates
every peer (certificate chain, revocation, FALCON-1024 proof), serves the hypermesh.node.v1
service, serves Prometheus metrics, and pings every peer in its "peers" table. When it is ready
it prints one JSON line on stdout: {"event":"ready","node",...,"stoq":{host,port},"metrics":URL}.
Logs are JSON lines on stderr. SIGINT or SIGTERM stops it cleanly.

The configuration format is in docs/cli.md. Environment overrides: HYPERMESH_LISTEN_HOST,
HYPERMESH_LISTEN_PORT, HYPERMESH_METRICS_PORT.

options:
  --config FILE          node configuration (JSON)
  --ping-interval-ms N   how often to ping each configured peer, 1 to ${MAX_DEADLINE_MS}
                         (the longest RPC deadline; default 5000)
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      config: { type: 'string' },
      'ping-interval-ms': { type: 'string' },
    });
    // Every option is checked before anything starts: a refusal must not leave a node running.
    const configFile = requireOption(values.config, 'config');
    // Each ping's deadline is the interval, and an RPC deadline is at most MAX_DEADLINE_MS.
    const intervalMs = positiveInteger(
      values['ping-interval-ms'],
      'ping-interval-ms',
      5000,
      MAX_DEADLINE_MS,
    );
    const config = await loadNodeConfig(configFile);
    const logger = createLogger({ node: config.name });
    const node = await startStoqNode(config, logger);
    const monitor = startPeerMonitor({
      endpoint: node.endpoint,
      peers: Object.keys(config.peers),
      intervalMs,
      registry: node.registry,
      logger,
    });
    const ready = {
      event: 'ready',
      node: config.name,
      uri: node.uri,
      transport: config.transport,
      authMode: config.auth.mode,
      stoq: node.address,
      metrics: node.metrics?.url ?? null,
    };
    io.out(`${JSON.stringify(ready)}\n`);
    logger.info('node ready', ready);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    logger.info('stopping');
    monitor.stop();
    await node.close();
    logger.info('stopped');
    return 0;
  },
};

const ping: Command = {
  name: 'stoq ping',
  summary: 'connect to a peer over authenticated STOQ and measure ping round trips',
  help: `
usage: hypermesh stoq ping --config FILE --peer NAME [--count N]

Uses the identity and trust roots in the configuration to connect to NAME (an entry of its
"peers" table), authenticates both ways, prints the peer's identity and N ping round-trip times.
Exits 0 when every ping succeeded, 1 otherwise (with the error code, e.g. UNAUTHENTICATED).

options:
  --config FILE  node or client configuration (JSON; see docs/cli.md)
  --peer NAME    the peer to ping
  --count N      number of pings, 1 to ${MAX_PING_COUNT} (default 3)
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      config: { type: 'string' },
      peer: { type: 'string' },
      count: { type: 'string' },
    });
    const configFile = requireOption(values.config, 'config');
    const peer = requireOption(values.peer, 'peer');
    const count = positiveInteger(values.count, 'count', 3, MAX_PING_COUNT);
    const config = await loadNodeConfig(configFile);
    if (!(peer in config.peers)) {
      const known = Object.keys(config.peers).join(', ') || '(none)';
      throw new CliError(`no peer "${peer}" in the configuration's peers table; known: ${known}`);
    }
    const parts = await buildStoqParts(config, createLogger({ node: config.name }));
    try {
      const client = parts.endpoint.client(nodeService, peer);
      const info = await client.call('info', {}, { deadlineMs: 15_000 });
      io.out(
        `${peer}: ${info.uri} (hypermesh ${info.version}, ${info.transport}, ${info.authMode}); it sees us as ${info.peer.uri}\n`,
      );
      for (let i = 0; i < count; i++) {
        const started = performance.now();
        await client.call('ping', { sentAt: Date.now() }, { deadlineMs: 5000 });
        io.out(`ping ${i + 1}: ${(performance.now() - started).toFixed(2)} ms\n`);
      }
      return 0;
    } catch (error) {
      const code = error instanceof StoqError ? error.code : 'ERROR';
      const reason =
        error instanceof StoqError && typeof error.detail.reason === 'string'
          ? ` (${error.detail.reason})`
          : '';
      io.err(`ping ${peer} failed: ${code}${reason}: ${(error as Error).message}\n`);
      return 1;
    } finally {
      await parts.close();
    }
  },
};

export const stoqCommands: readonly Command[] = [serve, ping];
