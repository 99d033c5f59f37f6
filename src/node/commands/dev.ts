import path from 'node:path';
import type { Command } from '../commands.js';
import { parseCommandArgs } from '../args.js';
import { MAX_VALIDATORS } from '../cluster-init.js';
import {
  DEFAULT_ACME_HTTPS_PORT,
  DEFAULT_CT_HTTP_PORT,
  DEFAULT_DEV_DIR,
  DEFAULT_DEV_NODES,
  DEFAULT_DNS_PORT,
  DEFAULT_DOQ_PORT,
  DEFAULT_LISTEN_HOST,
  DEFAULT_METRICS_PORT,
  DEFAULT_STOQ_PORT,
} from '../config.js';
import { followDevStopRequests, runDevCluster } from '../dev.js';
import { holdBrokenPipe } from '../io.js';
import { integerOption } from './cluster.js';

/** The base-port flags `dev` hands to `cluster init` when given; init applies the defaults. */
const BASE_PORTS = [
  ['base-port', 'basePort'],
  ['metrics-base-port', 'metricsBasePort'],
  ['dns-base-port', 'dnsBasePort'],
  ['doq-base-port', 'doqBasePort'],
  ['ct-base-port', 'ctBasePort'],
  ['acme-base-port', 'acmeBasePort'],
] as const;

export const devCommand: Command = {
  name: 'dev',
  summary: 'run a local validator cluster on loopback until Ctrl-C (what `npm start` runs)',
  help: `
usage: hypermesh dev [--nodes N] [--dir DIR] [--host ADDR] [--base-port P]
                     [--metrics-base-port P] [--dns-base-port P] [--doq-base-port P]
                     [--ct-base-port P] [--acme-base-port P] [--start-timeout-ms MS]

Runs a local cluster of N validator processes. On first use it runs the genesis ceremony into
DIR ("hypermesh cluster init"); later runs reuse the keys, plots and chain data. When DIR holds
a cluster of another size or host, dev replaces it only if dev created it (DIR/.hypermesh-dev);
a cluster made by "cluster init" is never deleted: pass another --dir, or remove it yourself.
While a node of the cluster in DIR runs (another dev, or "node start"), dev refuses to start and
leaves DIR as it is. Ctrl-C or SIGTERM during the genesis ceremony aborts it (exit 130 / 143)
and removes its staging directory. It starts "hypermesh node start" for every validator,
waits until every node has committed a block since it started, writes DIR/cluster.json (node
ids, STOQ addresses, metrics URLs, pids), prints a summary and keeps running. Node logs go to
DIR/node-K/node.log. Ctrl-C, SIGTERM or SIGHUP (the terminal closed) stops the nodes (SIGTERM,
then SIGKILL after a grace period; a second signal kills them at once), removes cluster.json and
exits 0; a node that exits by itself stops the cluster with exit code 1. When its output is lost
(the reader of a pipe went away) it stops the cluster the same way and then exits 141.

The port flags apply to a new cluster: node-K gets P+K-1, as with "hypermesh cluster init".

options:
  --nodes N              validators (default ${DEFAULT_DEV_NODES}, at most ${MAX_VALIDATORS})
  --dir DIR              cluster directory (default ${DEFAULT_DEV_DIR})
  --host ADDR            listen address (default ${DEFAULT_LISTEN_HOST})
  --base-port P          first STOQ port of a new cluster (default ${DEFAULT_STOQ_PORT}; 0 = free ports)
  --metrics-base-port P  first metrics port (default ${DEFAULT_METRICS_PORT}; 0 = free)
  --dns-base-port P      first DNS port, UDP and TCP (default ${DEFAULT_DNS_PORT}; 0 = free; defaults
                         to 0 when --base-port is 0)
  --doq-base-port P      first DNS-over-QUIC port (default ${DEFAULT_DOQ_PORT}; 0 = free; likewise)
  --ct-base-port P       first CT log HTTP port (default ${DEFAULT_CT_HTTP_PORT}; 0 = free; likewise)
  --acme-base-port P     first ACME server HTTPS port (default ${DEFAULT_ACME_HTTPS_PORT}; 0 = free;
                         likewise)
  --start-timeout-ms MS  how long to wait for those blocks (default 120000)
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      nodes: { type: 'string' },
      dir: { type: 'string' },
      host: { type: 'string' },
      'base-port': { type: 'string' },
      'metrics-base-port': { type: 'string' },
      'dns-base-port': { type: 'string' },
      'doq-base-port': { type: 'string' },
      'ct-base-port': { type: 'string' },
      'acme-base-port': { type: 'string' },
      'start-timeout-ms': { type: 'string' },
    });
    const port = { min: 0, max: 65_535 };
    const basePorts: { [K in (typeof BASE_PORTS)[number][1]]?: number } = {};
    for (const [flag, option] of BASE_PORTS) {
      const value = values[flag];
      if (value !== undefined) basePorts[option] = integerOption(value, flag, port, 0);
    }
    const options = {
      dir: path.resolve(values.dir ?? DEFAULT_DEV_DIR),
      nodes: integerOption(
        values.nodes,
        'nodes',
        { min: 1, max: MAX_VALIDATORS },
        DEFAULT_DEV_NODES,
      ),
      host: values.host ?? DEFAULT_LISTEN_HOST,
      ...basePorts,
      startTimeoutMs: integerOption(
        values['start-timeout-ms'],
        'start-timeout-ms',
        { min: 1000, max: 3_600_000 },
        120_000,
      ),
    };
    const requests = followDevStopRequests();
    // Losing its output (the reader of a pipe went away, the terminal hung up) stops the
    // cluster like a signal; dev goes on reading the nodes' logs until they have exited.
    const output = holdBrokenPipe(() => requests.stop('output lost'));
    try {
      return await runDevCluster({
        ...options,
        out: (line) => io.out(`${line}\n`),
        interrupted: requests.first.then(() => undefined),
        forced: requests.second.then(() => undefined),
      });
    } finally {
      requests.dispose();
      output.release();
    }
  },
};
