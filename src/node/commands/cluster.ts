import type { Command } from '../commands.js';
import { parseCommandArgs, requireOption } from '../args.js';
import { CA_RATE_LIMIT_BOUNDS, parseCaRateLimit } from '../ca-rate-limit.js';
import { CliError } from '../cli-error.js';
import { addNodeCommand } from './cluster-add-node.js';
import {
  CLUSTER_FILES,
  DEFAULT_LEDGER,
  initCluster,
  MAX_VALIDATORS,
  type LedgerInitOptions,
  type StakingInitOptions,
} from '../cluster-init.js';
import {
  BASIS_POINTS,
  DEFAULT_STAKING_PARAMS,
  formatTokenAmount,
  MAX_DECIMALS,
} from '../../caesar/index.js';
import { DEFAULT_RATE_LIMIT } from '../../trustchain/ca-module/config.js';
import {
  DEFAULT_ACME_HTTPS_PORT,
  DEFAULT_CHAIN_ID,
  DEFAULT_CT_HTTP_PORT,
  DEFAULT_LISTEN_HOST,
  DEFAULT_METRICS_PORT,
  DEFAULT_DNS_PORT,
  DEFAULT_DNS_ZONE,
  DEFAULT_DOQ_PORT,
  DEFAULT_STOQ_PORT,
  DEFAULT_VALIDATOR_POWER,
} from '../config.js';

/** Parses a whole number in [min, max] given as a command-line option. */
export function integerOption(
  value: string | undefined,
  name: string,
  range: { min: number; max: number },
  fallback: number,
): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < range.min || Number(value) > range.max) {
    throw new CliError(
      `--${name} must be an integer from ${range.min} to ${range.max}, got "${value}"`,
    );
  }
  return Number(value);
}

/** Longest whole-token option examined; 2^128 base units has 39 digits. */
const MAX_WHOLE_TOKEN_DIGITS = 60;

/** Parses a whole number of tokens given as `--name`. */
export function wholeTokensOption(value: string | undefined, name: string): bigint | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value)) {
    throw new CliError(
      `--${name} must be a whole number of tokens (digits only, no sign, fraction or exponent), got ${JSON.stringify(value)}`,
    );
  }
  if (value.replace(/^0+/, '').length > MAX_WHOLE_TOKEN_DIGITS) {
    throw new CliError(`--${name} ${value.slice(0, 20)}… is far above the largest amount`);
  }
  return BigInt(value);
}

const LEDGER_FLAGS = [
  'token-name',
  'token-symbol',
  'token-decimals',
  'token-supply',
  'validator-allocation',
] as const;

/** `--staking`, its `--staking-param NAME=VALUE` entries and `--validator-commission`. */
function stakingOptions(
  enabled: boolean,
  entries: readonly string[],
  commission: string | undefined,
): StakingInitOptions | null {
  if (!enabled) {
    if (entries.length > 0 || commission !== undefined) {
      const flag = entries.length > 0 ? '--staking-param' : '--validator-commission';
      throw new CliError(`${flag} configures staking; add --staking to write a staking section`);
    }
    return null;
  }
  const params: Record<string, string> = {};
  for (const entry of entries) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(entry);
    if (match === null) {
      throw new CliError(
        `--staking-param ${JSON.stringify(entry)} must be NAME=VALUE, e.g. epochBlocks=10`,
      );
    }
    const [, name, value] = match as unknown as [string, string, string];
    if (params[name] !== undefined) {
      throw new CliError(`--staking-param ${name} is given twice`);
    }
    params[name] = value;
  }
  return {
    params,
    ...(commission === undefined
      ? {}
      : {
          commission: integerOption(
            commission,
            'validator-commission',
            { min: 0, max: BASIS_POINTS },
            0,
          ),
        }),
  };
}

const init: Command = {
  name: 'cluster init',
  summary: 'genesis ceremony: keys, certificates, storage plots, genesis.json, node configs',
  help: `
usage: hypermesh cluster init --validators N --out DIR [--chain-id ID] [--host ADDR]
                              [--base-port P] [--metrics-base-port P] [--dns-base-port P]
                              [--doq-base-port P] [--no-dns] [--no-discovery] [--acme-base-port P] [--no-acme] [--acme-external-dns] [--ca-rate-limit COUNT/SECONDS] [--force] [--token-name NAME] [--token-symbol SYM] [--token-decimals D]
                              [--token-supply TOKENS] [--validator-allocation TOKENS]
                              [--no-caesar] [--staking [--staking-param NAME=VALUE ...]
                              [--validator-commission BPS]]

Creates a cluster of N validators in DIR: a cluster CA (ca/), per node an Ed25519 key (its
STOQ identity and validator key) with a FALCON-1024 key pair, a certificate
spiffe://<chain-id>/validator/node-K carrying the FALCON key, a PoSpace storage plot and
node-K/config.json; an operator client identity (operator/); and genesis.json with every
validator's power, keys and storage root. Everything is written to a temporary directory and
renamed into place, so a failure leaves nothing behind. See docs/node.md. Ranges of ports
that share a port or pass 65535 are refused; the default ranges stay apart for up to
${MAX_VALIDATORS} validators.

The genesis puts the cluster zone ${DEFAULT_DNS_ZONE} in consensus state (app.dns, docs/dns.md;
administered by the operator key, names open to everyone), and every node serves it over UDP
and TCP on its DNS port and over DNS-over-QUIC on its DoQ port (certificate: the node's). The
zone is DNSSEC-signed: its DNSKEY is in the genesis entry (hypermesh dns ds prints the DS) and
its P-256 signing key is written to every node-K/${'dnssec-hypermesh.key'} (mode 0600).

The genesis also defines the Caesar ledger (app.caesar, docs/caesar.md): the token, an
allocation to each validator's operator account (the address of its node key, spendable with
node-K/node-K.key) and the rest of the supply to a treasury wallet whose key is written to
operator/${CLUSTER_FILES.treasuryKey} (mode 0600; hypermesh wallet send --key ...).

options:
  --validators N         number of validators, 1-${MAX_VALIDATORS}
  --out DIR              cluster directory; must be absent or empty (see --force)
  --chain-id ID          chain id and certificate cluster name (default ${DEFAULT_CHAIN_ID})
  --host ADDR            address the nodes listen on (default ${DEFAULT_LISTEN_HOST})
  --base-port P          STOQ port of node-1, node-K gets P+K-1 (default ${DEFAULT_STOQ_PORT};
                         0 picks free ports now)
  --metrics-base-port P  metrics port of node-1, likewise (default ${DEFAULT_METRICS_PORT}; 0 = free)
  --dns-base-port P      DNS port (UDP and TCP) of node-1, likewise (default ${DEFAULT_DNS_PORT};
                         0 = free; defaults to 0 when --base-port is 0)
  --doq-base-port P      DNS-over-QUIC port of node-1, likewise (default ${DEFAULT_DOQ_PORT};
                         0 = free; defaults to 0 when --base-port is 0)
  --no-dns               no cluster zone in the genesis and no DNS servers on the nodes
  --no-discovery         no service catalog (app.discovery, docs/discovery.md) in the genesis
  --no-ca                no TrustChain CA (app.ca, docs/ca.md) and no CT logs; the development
                         CA (ca/root.pem) then issues the node and operator certificates
  --ca-passphrase-env V  take the CA root key passphrase from environment variable V (at least
                         12 characters); without it one is generated and written to
                         operator/ca-root-passphrase.txt (mode 0600)
  --ca-rate-limit COUNT/SECONDS
                         the CA's issuance limit in the genesis (app.ca.rateLimit): at most
                         COUNT certificates per account per window of SECONDS, e.g. 1000/3600
                         (default ${DEFAULT_RATE_LIMIT.max}/${DEFAULT_RATE_LIMIT.windowSeconds}; COUNT ${CA_RATE_LIMIT_BOUNDS.count.min}-${CA_RATE_LIMIT_BOUNDS.count.max}, SECONDS ${CA_RATE_LIMIT_BOUNDS.seconds.min}-${CA_RATE_LIMIT_BOUNDS.seconds.max}).
                         Each node's ACME server issues from one account, so this is also
                         each node's ACME limit. Not with --no-ca
  --ct-base-port P       CT log HTTP port of node-1, likewise (default ${DEFAULT_CT_HTTP_PORT}; 0 = free;
                         defaults to 0 when --base-port is 0)
  --acme-base-port P     ACME server HTTPS port of node-1, likewise (default ${DEFAULT_ACME_HTTPS_PORT}; 0 = free;
                         defaults to 0 when --base-port is 0); docs/acme.md
  --no-acme              no ACME servers (no ACME account keys, grants or HTTPS certificates)
  --acme-external-dns    the ACME servers also issue for DNS names outside the cluster zone
                         (grants with externalDns; names resolved through acme.resolver, CAA
                         checked by every validator); not with --no-acme, --no-ca or --no-dns
  --force                replace DIR if it holds a previous cluster: one that reads as a cluster
                         directory and holds nothing else (no running node)

ledger options (amounts in whole tokens):
  --token-name NAME             token name, 1-64 printable ASCII (default ${DEFAULT_LEDGER.name})
  --token-symbol SYM            ticker, 1-12 of A-Z and 0-9, starting with a letter
                                (default ${DEFAULT_LEDGER.symbol})
  --token-decimals D            1 token = 10^D base units, 0-${MAX_DECIMALS} (default ${DEFAULT_LEDGER.decimals})
  --token-supply TOKENS         total supply (default ${formatTokenAmount(DEFAULT_LEDGER.supply, 0)})
  --validator-allocation TOKENS to each validator's operator account (default
                                ${formatTokenAmount(DEFAULT_LEDGER.validatorAllocation, 0)}; 0 = none); the treasury gets the rest
  --no-caesar                   write no ledger: the chain then runs without Caesar

staking options (docs/caesar.md, "Staking"):
  --staking                     add the staking section: the validator set then follows stake.
                                Each validator self-bonds its consensus power (${DEFAULT_VALIDATOR_POWER}) × powerUnit,
                                out of the supply (the treasury gets less). Needs the
                                TrustChain CA (not with --no-ca): a new validator first gets
                                an intermediate through the governed procedure
  --staking-param NAME=VALUE    a staking parameter (repeatable; amounts in base units), e.g.
                                epochBlocks=10; the others keep their defaults:
                                ${Object.entries(DEFAULT_STAKING_PARAMS)
                                  .map(([name, value]) => `${name}=${String(value)}`)
                                  .join('\n                                ')}
  --validator-commission BPS    commission of the genesis validators, 0-${BASIS_POINTS} (default 0)
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      validators: { type: 'string' },
      out: { type: 'string' },
      'chain-id': { type: 'string' },
      host: { type: 'string' },
      'base-port': { type: 'string' },
      'metrics-base-port': { type: 'string' },
      'dns-base-port': { type: 'string' },
      'doq-base-port': { type: 'string' },
      'no-dns': { type: 'boolean' },
      'no-discovery': { type: 'boolean' },
      'no-ca': { type: 'boolean' },
      'ca-passphrase-env': { type: 'string' },
      'ca-rate-limit': { type: 'string' },
      'ct-base-port': { type: 'string' },
      'acme-base-port': { type: 'string' },
      'no-acme': { type: 'boolean' },
      'acme-external-dns': { type: 'boolean' },
      force: { type: 'boolean' },
      'token-name': { type: 'string' },
      'token-symbol': { type: 'string' },
      'token-decimals': { type: 'string' },
      'token-supply': { type: 'string' },
      'validator-allocation': { type: 'string' },
      'no-caesar': { type: 'boolean' },
      staking: { type: 'boolean' },
      'staking-param': { type: 'string', multiple: true },
      'validator-commission': { type: 'string' },
    });
    const given = LEDGER_FLAGS.filter((flag) => values[flag] !== undefined);
    if (values['no-caesar'] && given.length > 0) {
      throw new CliError(`--no-caesar writes no ledger; it cannot be combined with --${given[0]}`);
    }
    const staking = stakingOptions(
      values.staking ?? false,
      values['staking-param'] ?? [],
      values['validator-commission'],
    );
    if (values['no-caesar'] && staking !== null) {
      throw new CliError(
        '--staking needs the Caesar ledger; it cannot be combined with --no-caesar',
      );
    }
    const decimals = values['token-decimals'];
    const supply = wholeTokensOption(values['token-supply'], 'token-supply');
    const validatorAllocation = wholeTokensOption(
      values['validator-allocation'],
      'validator-allocation',
    );
    const ledger: LedgerInitOptions = {
      ...(values['token-name'] === undefined ? {} : { name: values['token-name'] }),
      ...(values['token-symbol'] === undefined ? {} : { symbol: values['token-symbol'] }),
      ...(decimals === undefined
        ? {}
        : {
            decimals: integerOption(decimals, 'token-decimals', { min: 0, max: MAX_DECIMALS }, 0),
          }),
      ...(supply === undefined ? {} : { supply }),
      ...(validatorAllocation === undefined ? {} : { validatorAllocation }),
    };
    const validators = integerOption(
      requireOption(values.validators, 'validators'),
      'validators',
      { min: 1, max: MAX_VALIDATORS },
      0,
    );
    const layout = await initCluster({
      out: requireOption(values.out, 'out'),
      validators,
      chainId: values['chain-id'] ?? DEFAULT_CHAIN_ID,
      host: values.host ?? DEFAULT_LISTEN_HOST,
      // Given flags only: the defaults are initCluster's, and a refusal names the flags given.
      ...(values['base-port'] === undefined
        ? {}
        : {
            basePort: integerOption(
              values['base-port'],
              'base-port',
              { min: 0, max: 65_535 },
              DEFAULT_STOQ_PORT,
            ),
          }),
      ...(values['metrics-base-port'] === undefined
        ? {}
        : {
            metricsBasePort: integerOption(
              values['metrics-base-port'],
              'metrics-base-port',
              { min: 0, max: 65_535 },
              DEFAULT_METRICS_PORT,
            ),
          }),
      ...(values['dns-base-port'] === undefined
        ? {}
        : {
            dnsBasePort: integerOption(
              values['dns-base-port'],
              'dns-base-port',
              { min: 0, max: 65_535 },
              DEFAULT_DNS_PORT,
            ),
          }),
      ...(values['doq-base-port'] === undefined
        ? {}
        : {
            doqBasePort: integerOption(
              values['doq-base-port'],
              'doq-base-port',
              { min: 0, max: 65_535 },
              DEFAULT_DOQ_PORT,
            ),
          }),
      dns: !(values['no-dns'] ?? false),
      discovery: !(values['no-discovery'] ?? false),
      ca: !(values['no-ca'] ?? false),
      ...(values['ca-passphrase-env'] === undefined
        ? {}
        : { caPassphraseEnv: values['ca-passphrase-env'] }),
      ...(values['ca-rate-limit'] === undefined
        ? {}
        : { caRateLimit: parseCaRateLimit(values['ca-rate-limit']) }),
      ...(values['ct-base-port'] === undefined
        ? {}
        : {
            ctBasePort: integerOption(
              values['ct-base-port'],
              'ct-base-port',
              { min: 0, max: 65_535 },
              0,
            ),
          }),
      acme: !(values['no-acme'] ?? false),
      acmeExternalDns: values['acme-external-dns'] ?? false,
      ...(values['acme-base-port'] === undefined
        ? {}
        : {
            acmeBasePort: integerOption(
              values['acme-base-port'],
              'acme-base-port',
              { min: 0, max: 65_535 },
              0,
            ),
          }),
      force: values.force ?? false,
      ledger: values['no-caesar'] ? null : ledger,
      staking,
      progress: (line) => io.out(`${line}\n`),
    });
    io.out(`created ${layout.dir}\n`);
    io.out(`start a node with: hypermesh node start --config ${layout.nodes[0]?.configFile}\n`);
    if (layout.ledger !== null) {
      io.out(
        `treasury wallet: ${layout.ledger.treasuryKeyFile} (address ${layout.ledger.treasuryAddress})\n`,
      );
    }
    if (layout.ledger?.staking) {
      io.out(`staking on: hypermesh stake validators --cluster ${layout.dir}\n`);
    }
    return 0;
  },
};

export const clusterCommands: readonly Command[] = [init, addNodeCommand];
