import path from 'node:path';
import type { Command } from '../commands.js';
import { parseCommandArgs } from '../args.js';
import { CliError } from '../cli-error.js';
import { LOOPBACK_HOSTS } from '../config.js';
import { DEMO_DEFAULT_HOST, runDemo } from '../demo.js';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'run the two-node STOQ demo (authenticated STOQ between two processes)',
  help: `
usage: hypermesh demo [--dir DIR] [--transport quic|tls] [--mode strict|delegated]
                      [--host ADDR] [--once]

Creates a development CA and three identities in DIR on first use (two validators and an
operator client), starts node-a and node-b as separate processes on free ports, and shows:
node-a pinging node-b over authenticated STOQ, the operator querying both nodes (unary and
server-stream RPCs), and the operator being refused a peers-only method (PERMISSION_DENIED).
Writes DIR/demo.json with every endpoint. Runs until Ctrl-C unless --once.

options:
  --dir DIR          working directory (default .hypermesh/demo)
  --transport T      quic (default) or tls (TLS 1.3 over TCP)
  --mode M           delegated (default) or strict FALCON-1024 authentication
  --host ADDR        address to listen on (default ${DEMO_DEFAULT_HOST}; ${LOOPBACK_HOSTS.v6} for IPv6)
  --once             stop after the first round
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      dir: { type: 'string' },
      transport: { type: 'string' },
      mode: { type: 'string' },
      host: { type: 'string' },
      once: { type: 'boolean' },
    });
    const transport = values.transport ?? 'quic';
    if (transport !== 'quic' && transport !== 'tls') {
      throw new CliError(`--transport must be quic or tls, got "${transport}"`);
    }
    const mode = values.mode ?? 'delegated';
    if (mode !== 'strict' && mode !== 'delegated') {
      throw new CliError(`--mode must be strict or delegated, got "${mode}"`);
    }
    const interrupted = new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    return runDemo({
      dir: path.resolve(values.dir ?? path.join('.hypermesh', 'demo')),
      transport,
      mode,
      host: values.host ?? DEMO_DEFAULT_HOST,
      once: values.once ?? false,
      out: (line) => io.out(`${line}\n`),
      interrupted,
    });
  },
};
