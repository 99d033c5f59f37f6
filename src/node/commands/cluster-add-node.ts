import { existsSync } from 'node:fs';
import path from 'node:path';
import { CA_FILES } from '../ca-genesis.js';
import type { Command } from '../commands.js';
import { parseCommandArgs, requireOption } from '../args.js';
import { CliError } from '../cli-error.js';
import { addClusterNode } from '../cluster-add-node.js';

function portOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65_535) {
    throw new CliError(`--${name} must be a port from 0 to 65535, got "${value}"`);
  }
  return Number(value);
}

function integerFlag(
  value: string | undefined,
  name: string,
  range: { min: number; max: number },
): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < range.min || Number(value) > range.max) {
    throw new CliError(
      `--${name} must be an integer from ${range.min} to ${range.max}, got "${value}"`,
    );
  }
  return Number(value);
}

export const addNodeCommand: Command = {
  name: 'cluster add-node',
  summary: 'a node for a running cluster: keys, certificate, storage plot, config with its peers',
  help: `
usage: hypermesh cluster add-node --cluster DIR --name NAME [--host ADDR] [--port P]
                                  [--metrics-port P | --no-metrics] [--dns-port P]
                                  [--doq-port P] [--no-dns] [--validity-days N]
                                  [--node NAME|ADDR] [--timeout-ms MS]

Adds a node to the cluster in DIR (written by "cluster init"), without touching the genesis or
the running nodes: in DIR/NAME it writes an Ed25519 + FALCON-1024 identity, a certificate
spiffe://<chain-id>/node/NAME, a PoSpace storage plot for its key, and config.json with every
existing node (DIR/*/config.json) as a peer, and records the node in DIR/added-nodes.json,
where "status" and the other tools that read DIR find it.

With a TrustChain CA (the default of "cluster init") the running cluster issues the
certificate: as its last step add-node submits a "ca" request for a node-profile certificate,
signed with the operator key (DIR/operator/), waits until it is committed and published
(docs/ca.md) and writes NAME.pem (certificate + intermediate); the node trusts
DIR/ca/trustchain-root.pem. The cluster must be running: when no node answers, add-node fails
and writes nothing. Without one ("cluster init --no-ca") the development CA (DIR/ca/root.key)
signs the certificate here.

The existing nodes accept its connections without a configuration change (docs/stoq-auth.md,
"Consensus peers"). Start it with "hypermesh node start --config DIR/NAME/config.json": it
syncs and follows the chain. To make it a validator: on a chain with the CA, get its TrustChain
intermediate first ("hypermesh ca intermediate issue --cluster DIR --node NAME", then
"hypermesh ca intermediate approve --cluster DIR --node HOLDER --for NAME" by more than 2/3 of
the holders; create-validator is refused until it is in effect); fund its account (the address
of its key, "hypermesh wallet address --key DIR/NAME/NAME.key") and register it:
"hypermesh stake create-validator --node-dir DIR/NAME --self-bond X --commission R --cluster DIR";
it joins the set at the next epoch. See docs/node.md, "Adding a node".

options:
  --cluster DIR      the cluster directory (required)
  --name NAME        the node's name: lowercase letters, digits and "-" (required)
  --host ADDR        address it listens on (default: the first node's STOQ host)
  --port P           STOQ port (default 0: a free port, chosen now)
  --metrics-port P   metrics port (default 0: a free port, chosen now)
  --no-metrics       no metrics endpoint
  --dns-port P       DNS port, UDP and TCP (default 0: a free port, chosen now); only when the
                     cluster's nodes serve DNS
  --doq-port P       DNS-over-QUIC port (default 0: a free port, chosen now)
  --no-dns           serve no DNS
  --validity-days N  certificate lifetime in days (default: 30, the most the TrustChain CA's
                     node profile allows; 365 from a development CA)
  --node NAME|ADDR   with a TrustChain CA: the node to request the certificate through
                     (default: the first that answers)
  --timeout-ms MS    with a TrustChain CA: how long to wait for the commit and publication
                     (default 60000)
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      cluster: { type: 'string' },
      name: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'metrics-port': { type: 'string' },
      'no-metrics': { type: 'boolean' },
      'dns-port': { type: 'string' },
      'doq-port': { type: 'string' },
      'no-dns': { type: 'boolean' },
      'validity-days': { type: 'string' },
      node: { type: 'string' },
      'timeout-ms': { type: 'string' },
    });
    if (values['no-metrics'] && values['metrics-port'] !== undefined) {
      throw new CliError('--no-metrics cannot be combined with --metrics-port');
    }
    if (values['no-dns'] && (values['dns-port'] ?? values['doq-port']) !== undefined) {
      throw new CliError('--no-dns cannot be combined with --dns-port or --doq-port');
    }
    const port = portOption(values.port, 'port');
    const metricsPort = portOption(values['metrics-port'], 'metrics-port');
    const dnsPort = portOption(values['dns-port'], 'dns-port');
    const doqPort = portOption(values['doq-port'], 'doq-port');
    const validityDays = integerFlag(values['validity-days'], 'validity-days', {
      min: 1,
      max: 3650,
    });
    const timeoutMs = integerFlag(values['timeout-ms'], 'timeout-ms', {
      min: 100,
      max: 3_600_000,
    });
    const added = await addClusterNode({
      clusterDir: requireOption(values.cluster, 'cluster'),
      name: requireOption(values.name, 'name'),
      ...(values.host === undefined ? {} : { host: values.host }),
      ...(port === undefined ? {} : { port }),
      ...(values['no-metrics']
        ? { metricsPort: null }
        : metricsPort === undefined
          ? {}
          : { metricsPort }),
      ...(values['no-dns']
        ? { dnsPort: null, doqPort: null }
        : {
            ...(dnsPort === undefined ? {} : { dnsPort }),
            ...(doqPort === undefined ? {} : { doqPort }),
          }),
      ...(validityDays === undefined ? {} : { validityDays }),
      ...(values.node === undefined ? {} : { via: values.node }),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      progress: (line) => io.out(`${line}\n`),
    });
    io.out(`created ${added.dir}\n`);
    io.out(`start it with: hypermesh node start --config ${added.configFile}\n`);
    if (existsSync(path.join(added.dir, CA_FILES.intermediateRequest))) {
      io.out(
        `its TrustChain intermediate (needed before create-validator): hypermesh ca intermediate issue --cluster ${values.cluster} --node ${added.name}, then hypermesh ca intermediate approve --cluster ${values.cluster} --node HOLDER --for ${added.name} by more than 2/3 of the holders\n`,
      );
    }
    io.out(
      `make it a validator: hypermesh stake create-validator --node-dir ${added.dir} --self-bond X --commission R --cluster ${values.cluster}\n`,
    );
    return 0;
  },
};
