import path from 'node:path';
import type { Command } from '../commands.js';
import { parseCommandArgs, requireOption } from '../args.js';
import { forgetDataDir, recordDataDir } from '../cluster-running-nodes.js';
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

The configuration file is documented in docs/node.md. Environment overrides, checked like the
fields they replace (HYPERMESH_DATA_DIR is recorded in .hypermesh-data-dir beside FILE while the
node runs, so that "cluster init --force" and "dev" see it running):
${envHelp}

options:
  --config FILE   node configuration (JSON), e.g. DIR/node-1/config.json from "cluster init"
`,
  async run(args, io) {
    const values = parseCommandArgs(args, { config: { type: 'string' } });
    const configFile = path.resolve(requireOption(values.config, 'config'));
    const config = await loadValidatorNodeConfig(configFile);
    const logger = createLogger({ node: config.name }, undefined, config.logLevel);
    const nodeDir = path.dirname(configFile);
    let recorded = false;
    let signalled: (signal: string) => void = () => undefined;
    const interrupted = new Promise<string>((resolve) => (signalled = resolve));
    const onSignal = (signal: NodeJS.Signals) => signalled(signal);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      // Loaded on demand: the rest of the CLI does not need the consensus stack.
      const { startValidatorNode } = await import('../validator-node.js');
      const node = await startValidatorNode(config, logger);
      // A data directory from the environment is recorded beside the configuration once its
      // lock is held, so that `cluster init --force` and `dev` see this node running
      // (cluster-running-nodes.ts).
      if ((process.env.HYPERMESH_DATA_DIR ?? '') !== '') {
        recorded = await recordDataDir(nodeDir, config.dataDir).then(
          () => true,
          (error: unknown) => {
            logger.warn(
              'cannot record HYPERMESH_DATA_DIR beside the configuration: cluster init --force and dev will not see this node running',
              {
                dataDir: config.dataDir,
                error: error instanceof Error ? error.message : String(error),
              },
            );
            return false;
          },
        );
      }
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
      if (recorded) await forgetDataDir(nodeDir, config.dataDir).catch(() => undefined);
    }
  },
};

const backup: Command = {
  name: 'node backup',
  summary: "write a consistent snapshot of a node's store, also while the node runs",
  help: `
usage: hypermesh node backup --config FILE --out SNAPSHOT

Copies the store of the node's data directory (DATA/store.sqlite) to SNAPSHOT, which must not
exist, with SQLite's online backup API: one consistent point in time, while the node may be
running and committing blocks (the store is opened read-only; the node's lock is not taken).
Copying store.sqlite with cp is not a backup of a running node: its latest commits are still in
store.sqlite-wal. The snapshot is one self-contained file; it is checked as "node restore" checks
it (SQLite integrity, the chain, the latest state against the latest block header) under a
temporary name (SNAPSHOT.tmp-PID-RANDOM) and only then named SNAPSHOT: a failed or killed
backup leaves nothing at SNAPSHOT. Prints the snapshot's height and state root. Exits 1 when
there is no store, the store holds no block, SNAPSHOT exists, or the check fails; 2 when
--config or --out is missing.

A snapshot holds the store only: not signer-state.json nor the consensus WAL ("node restore
--help", docs/node.md "Backup and restore").

options:
  --config FILE     node configuration (JSON): its dataDir (or HYPERMESH_DATA_DIR) is backed up
  --out SNAPSHOT    the snapshot file to create
`,
  async run(args, io) {
    const values = parseCommandArgs(args, { config: { type: 'string' }, out: { type: 'string' } });
    const configFile = requireOption(values.config, 'config');
    const out = requireOption(values.out, 'out');
    const config = await loadValidatorNodeConfig(configFile);
    const { backupNodeStore } = await import('../store-backup.js');
    const report = await backupNodeStore(config.dataDir, out);
    io.out(
      [
        `snapshot ${report.path}: height ${report.height}, state root ${report.stateRoot}`,
        `${report.blocks} blocks, ${report.stateKeys} state keys; checked against the header of block ${report.height}`,
        `restore it with: hypermesh node restore --config FILE --snapshot ${report.path}`,
        '',
      ].join('\n'),
    );
    return 0;
  },
};

const restore: Command = {
  name: 'node restore',
  summary: 'rebuild a node\'s store from a snapshot of "node backup"',
  help: `
usage: hypermesh node restore --config FILE --snapshot SNAPSHOT

Restores SNAPSHOT (from "node backup") as the store of the node's data directory
(DATA/store.sqlite; the directory is created if missing). Refused, with nothing written:
a data directory that already holds a store (or its -wal, -shm, -journal), one a running node
holds (its lock), and a snapshot that is not a store with blocks, is damaged, is of another
chain (its block 1 does not follow the configuration's genesis: GENESIS_MISMATCH), or whose
latest state is not the one its latest block header commits to. The copy is checked in full
under a temporary name and only then named store.sqlite, so a failed or interrupted restore
leaves no store. Run as root, the store (and a data directory it creates) is given to the owner
of the data directory (or of the directory it is created in): the user the node runs as.
Prints the restored height and state root, and what to do about signer-state.json: a snapshot
does not carry it, and a validator without it refuses to start (docs/consensus.md, "Signer
state"). Exits 1 when refused; 2 when --config or --snapshot is missing, SNAPSHOT does not
exist, or the configuration or its genesis file cannot be read.

options:
  --config FILE         node configuration (JSON): the store goes to its dataDir
  --snapshot SNAPSHOT   a snapshot written by "node backup"
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      config: { type: 'string' },
      snapshot: { type: 'string' },
    });
    const configFile = requireOption(values.config, 'config');
    const snapshot = requireOption(values.snapshot, 'snapshot');
    const config = await loadValidatorNodeConfig(configFile);
    const { readGenesisFile } = await import('../cluster-layout.js');
    const genesis = {
      document: await readGenesisFile(config.genesisFile),
      file: config.genesisFile,
    };
    const { restoreNodeStore, signerStateAdvice } = await import('../store-backup.js');
    const report = await restoreNodeStore(config.dataDir, snapshot, genesis);
    io.out(
      [
        `restored ${report.path}: height ${report.height}, state root ${report.stateRoot}`,
        `${report.blocks} blocks, ${report.stateKeys} state keys; checked against the header of block ${report.height}`,
        ...signerStateAdvice(report, config.consensus.signerStateMissing),
        '',
      ].join('\n'),
    );
    return 0;
  },
};

export const nodeCommands: readonly Command[] = [start, backup, restore];
