import type { Command } from '../commands.js';
import { parseCommandArgs, requireOption } from '../args.js';
import { createLogger } from '../log.js';
import { loadValidatorNodeConfig, NODE_ENV_OVERRIDES } from '../node-config.js';

const envHelp = Object.entries(NODE_ENV_OVERRIDES)
  .map(([variable, field]) => `  ${variable.padEnd(24)} ${field}`)
  .join('\n');

const start: Command = {
  name: 'node start',
  summary: 'run a consensus node from its configuration file (until Ctrl-C / SIGTERM)',
  help: `
usage: hypermesh node start --config FILE

Runs one validator: opens its store (DATA/store.sqlite), consensus WAL and signer state, loads
its storage plot, listens for STOQ peers and clients, takes part in consensus with the peers in
its configuration, serves the node API (tx submission, queries, status, blocks) and Prometheus
metrics. When it is listening it prints one JSON line on stdout:
{"event":"ready","node","id","chainId","uri","stoq":{host,port},"metrics":URL|null,"dns":{udp,tcp,doq}|null,"height"}.
Logs are JSON lines on stderr; every committed block is logged as "${'block committed'}".
SIGINT or SIGTERM stops it cleanly (exit 0). A malformed configuration exits 2 with a message
naming the file and field; a consensus halt (store or WAL failure) exits 1.

The configuration file is documented in docs/node.md. Environment overrides:
${envHelp}

options:
  --config FILE   node configuration (JSON), e.g. DIR/node-1/config.json from "cluster init"
`,
  async run(args, io) {
    const values = parseCommandArgs(args, { config: { type: 'string' } });
    const config = await loadValidatorNodeConfig(requireOption(values.config, 'config'));
    const logger = createLogger({ node: config.name }, undefined, config.logLevel);
    let signalled: (signal: string) => void = () => undefined;
    const interrupted = new Promise<string>((resolve) => (signalled = resolve));
    const onSignal = (signal: NodeJS.Signals) => signalled(signal);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      // Loaded on demand: the rest of the CLI does not need the consensus stack.
      const { startValidatorNode } = await import('../validator-node.js');
      const node = await startValidatorNode(config, logger);
      const status = node.driver.status();
      const ready = {
        event: 'ready',
        node: config.name,
        id: node.id,
        chainId: node.genesis.chainId,
        uri: node.uri,
        stoq: node.stoq,
        metrics: node.metricsUrl,
        dns: node.dns,
        ct: node.ct,
        trustBundle: node.trustBundleFile,
        acme: node.acme,
        height: status.committedHeight,
      };
      io.out(`${JSON.stringify(ready)}\n`);
      logger.info('node ready', ready);
      const outcome = await Promise.race([
        interrupted.then((signal) => ({ signal })),
        node.halted.then((error) => ({ error })),
      ]);
      if ('error' in outcome) {
        logger.error('consensus halted; stopping', { error: outcome.error });
        await node.stop();
        return 1;
      }
      logger.info('stopping', { signal: outcome.signal });
      await node.stop();
      logger.info('stopped');
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

export const nodeCommands: readonly Command[] = [start];
