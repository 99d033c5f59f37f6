import {
  createNodeRpcClient,
  type NodeRpcClient,
  type TxReceiptView,
} from '../../consensus/net/index.js';
import { createCaesarRpcClient, type CaesarRpcClient } from '../../faces/caesar-rpc.js';
import { withCommittedRoots, type VerifiedRootCache } from '../verified-root.js';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { ed25519RawPublicKey } from '../../crypto/ed25519.js';
import type { Command } from '../commands.js';
import type { CliIo } from '../io.js';
import { parseCommandArgs, passphraseFromEnv, requireOption } from '../args.js';
import { CliError } from '../cli-error.js';
import { readGenesisFile } from '../cluster-layout.js';
import {
  DEFAULT_CLUSTER_FILE,
  loadClusterTarget,
  openOperatorParts,
  openOperatorSession,
  type ClusterTarget,
  type OperatorSession,
} from '../operator.js';
import { integerOption } from './cluster.js';
import {
  admissionLine,
  amountOption,
  describeAmount,
  pickNode,
  reportSubmission,
} from './wallet.js';
import {
  BASIS_POINTS,
  CREATE_VALIDATOR_OP,
  DELEGATE_OP,
  EDIT_VALIDATOR_OP,
  JailReason,
  UNBOND_OP,
  UNJAIL_OP,
  consensusAddress,
  ed25519Address,
  formatAddress,
  formatTokenAmount,
  hybridAddress,
} from '../../caesar/index.js';
import type { StakingTx, TokenParams } from '../../caesar/index.js';
import type { GenesisDocument } from '../../consensus/genesis.js';
import type { KeyObject } from 'node:crypto';
import type { FalconKeyPair } from '../../crypto/falcon.js';
import { stoqFailure, type Admission, type SubmitOutcome } from '../tx-submit.js';
import {
  StakeCliError,
  StakeErrorCode,
  describeJail,
  parseValidatorArgument,
  readProvenDelegation,
  readProvenDelegations,
  readProvenValidators,
  sendStakingTx,
  stakingOf,
} from '../stake-ledger.js';
import { readValidatorIdentity, readValidatorKey } from '../stake-validator.js';
import { parseAddressArgument, readWalletKey } from '../wallet.js';
import { describeEvent, readReceipt } from '../wallet-ledger.js';

/**
 * `hypermesh stake validators|delegations|create-validator|edit-validator|bond|delegate|unbond|unjail`:
 * Caesar staking from the command line (docs/cli.md, "Stake"; docs/caesar.md, "Staking"). Reads are proven like `wallet
 * balance`; transactions are signed, stamped and submitted like `wallet send`.
 */

export const CLUSTER_HELP = `  --cluster FILE|DIR    cluster.json or "cluster init" directory (default ${DEFAULT_CLUSTER_FILE})
  --node NAME|ADDR      node to ask (default: the first)`;

export const TX_HELP = `  --fee Y               fee in tokens, paid to the fee pool (default 0)
  --base-units          amounts are whole base units instead of tokens
  --passphrase-env VAR  the key file's passphrase is in environment variable VAR
${CLUSTER_HELP}
  --wait                wait for the commit and print the result code and the receipt's events
  --timeout-ms MS       how long --wait waits (default 30000)
  --json                machine-readable output: one JSON document with the outcome and, once
                        committed, the receipt's events`;

export const TX_OPTIONS = {
  fee: { type: 'string' },
  'base-units': { type: 'boolean' },
  'passphrase-env': { type: 'string' },
  cluster: { type: 'string' },
  node: { type: 'string' },
  wait: { type: 'boolean' },
  'timeout-ms': { type: 'string' },
  json: { type: 'boolean' },
} as const;

export interface TxValues {
  readonly fee?: string | undefined;
  readonly 'base-units'?: boolean | undefined;
  readonly cluster?: string | undefined;
  readonly node?: string | undefined;
  readonly wait?: boolean | undefined;
  readonly 'timeout-ms'?: string | undefined;
  readonly json?: boolean | undefined;
}

/** Prints a transaction command's description line(s); with --json only the document is printed. */
export function describeTx(values: TxValues, io: CliIo, text: string): void {
  if (!values.json) io.out(text);
}

/** The chain a staking command talks to: its nodes, genesis, token and the node to use. */
export interface StakeContext {
  readonly target: ClusterTarget;
  readonly node: ClusterTarget['nodes'][number];
  readonly genesis: GenesisDocument;
  readonly token: TokenParams;
}

export async function stakeContext(values: {
  readonly cluster?: string | undefined;
  readonly node?: string | undefined;
}): Promise<StakeContext> {
  const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
  const node = pickNode(target, values.node);
  const genesis = await readGenesisFile(target.genesisFile);
  const { token } = stakingOf(genesis, target.genesisFile);
  return { target, node, genesis, token };
}

export function timeoutOf(values: TxValues): number {
  return integerOption(values['timeout-ms'], 'timeout-ms', { min: 100, max: 3_600_000 }, 30_000);
}

/** A positive amount option in tokens (or base units with --base-units). */
export function positiveAmount(
  text: string,
  name: string,
  token: TokenParams,
  values: TxValues,
): bigint {
  const amount = amountOption(text, name, token, values['base-units'] ?? false);
  if (amount === 0n) {
    throw new StakeCliError(StakeErrorCode.ZERO_AMOUNT, `--${name} must be above zero`);
  }
  return amount;
}

export function feeOf(values: TxValues, token: TokenParams): bigint {
  return values.fee === undefined
    ? 0n
    : amountOption(values.fee, 'fee', token, values['base-units'] ?? false);
}

/**
 * Parses `--commission`: basis points (`500`), or a percentage with up to two decimals
 * (`5%`, `2.5%`), from 0 to 100%.
 */
export function parseCommission(text: string): number {
  const percent = /^(\d{1,3})(?:\.(\d{1,2}))?%$/.exec(text);
  const bps = percent
    ? Number(percent[1]) * 100 + Number((percent[2] ?? '').padEnd(2, '0'))
    : /^\d{1,5}$/.test(text)
      ? Number(text)
      : Number.NaN;
  if (!Number.isInteger(bps) || bps > BASIS_POINTS) {
    throw new CliError(
      `--commission "${text}" must be basis points from 0 to ${BASIS_POINTS} (500 = 5%) or a percentage such as 5% or 2.5% [CAESAR_INVALID_COMMISSION]`,
    );
  }
  return bps;
}

/**
 * Who signs a ledger transaction: an Ed25519 key (its account is SHA-256 of the key) and, for a
 * hybrid wallet (`wallet create --falcon`), its FALCON-1024 key (the hybrid account).
 */
export interface LedgerSigner {
  readonly privateKey: KeyObject;
  readonly falcon?: FalconKeyPair | undefined;
}

/** The account a signer's transactions act for. */
export function signerAccount(signer: LedgerSigner): Uint8Array {
  const publicKey = ed25519RawPublicKey(signer.privateKey);
  return signer.falcon === undefined
    ? ed25519Address(publicKey)
    : hybridAddress(publicKey, signer.falcon.publicKey);
}

/**
 * An operator session (operator.ts) that also reaches each node's `hypermesh.caesar.v1`: the
 * node API clients check state roots against committed headers, and both services are served
 * by the node dialled (the endpoint refuses another identity at its address).
 */
async function openLedgerSession(target: ClusterTarget): Promise<
  OperatorSession & {
    caesar(node: string): CaesarRpcClient;
  }
> {
  const opened = await openOperatorParts(target);
  const cache: VerifiedRootCache = new Map();
  const { endpoint } = opened.parts;
  return {
    client: (node) =>
      withCommittedRoots(createNodeRpcClient({ endpoint, peer: node }), opened.genesis, { cache }),
    caesar: (node) => createCaesarRpcClient({ endpoint, peer: node }),
    close: () => opened.close(),
  };
}

/**
 * Signs, submits and reports one ledger transaction (`send` builds and sends it: staking here,
 * governance in gov.ts), running `after` once it was admitted or applied. Once committed, the
 * receipt's events are printed as `wallet send --wait` prints them (`describeEvent`, from the
 * signer's account's side); with --json, one document (`ledgerTxJson`) replaces the text and
 * `after` is not run (the events carry what it would show). A hybrid signer's transaction is
 * wrapped and FALCON-signed by `send` and acts for the hybrid account.
 */
export async function submitLedgerTx<Tx>(
  context: StakeContext,
  signer: LedgerSigner,
  tx: Tx,
  send: (request: {
    client: NodeRpcClient;
    caesar: CaesarRpcClient;
    genesis: GenesisDocument;
    privateKey: KeyObject;
    falcon?: FalconKeyPair | undefined;
    tx: Tx;
    wait: boolean;
    timeoutMs: number;
    onAdmitted: (admission: Admission) => void;
  }) => Promise<SubmitOutcome>,
  what: string,
  values: TxValues,
  io: CliIo,
  after?: (outcome: SubmitOutcome) => Promise<void>,
): Promise<number> {
  const timeoutMs = timeoutOf(values);
  const wait = values.wait ?? false;
  const session = await openLedgerSession(context.target);
  try {
    const outcome = await send({
      client: session.client(context.node.name),
      caesar: session.caesar(context.node.name),
      genesis: context.genesis,
      privateKey: signer.privateKey,
      falcon: signer.falcon,
      tx,
      wait,
      timeoutMs,
      // Said at once (on stderr with --json, whose stdout is one document), so a failure while
      // waiting still tells what was sent.
      onAdmitted: (admission) => {
        const line = admissionLine(admission, context.node.name);
        if (values.json) io.err(line);
        else io.out(line);
      },
    }).catch(stoqFailure(context.node.name));
    const account = formatAddress(signerAccount(signer));
    const committed = outcome.admitted && outcome.status.status === 'committed';
    const receipt = committed
      ? await readReceipt(session.client(context.node.name), fromHex(outcome.txHash)).catch(
          stoqFailure(context.node.name),
        )
      : null;
    if (values.json) {
      if (!outcome.admitted) {
        throw new CliError(
          `${context.node.name} refused the ${what}: ${outcome.code}: ${outcome.message}`,
          1,
        );
      }
      const document = ledgerTxJson(
        outcome,
        what,
        context.node.name,
        receipt,
        account,
        context.token,
      );
      io.out(`${JSON.stringify(document, null, 2)}\n`);
      if (outcome.status.status !== 'committed') return wait ? 1 : 0;
      return outcome.status.code === 0 ? 0 : 1;
    }
    const code = reportSubmission(outcome, what, context.node.name, io, wait, timeoutMs, true);
    for (const event of receipt?.events ?? []) {
      io.out(`  ${describeEvent(event, account, context.token)}\n`);
    }
    if (code === 0 && after !== undefined) await after(outcome);
    return code;
  } finally {
    await session.close();
  }
}

/**
 * The --json document of a submitted ledger transaction: its hash, sequence, whether the node
 * already held it (`duplicate`), status and, once committed, height, result and events (each
 * with the line `wallet send --wait` prints for it); `evicted` when the node's mempool dropped it
 * while waiting and said why.
 */
export function ledgerTxJson(
  outcome: Extract<SubmitOutcome, { admitted: true }>,
  what: string,
  node: string,
  receipt: TxReceiptView | null,
  account: string,
  token: TokenParams,
): Record<string, unknown> {
  const { status } = outcome;
  return {
    kind: what,
    node,
    txHash: outcome.txHash,
    sequence: outcome.sequence,
    duplicate: outcome.duplicate,
    status: status.status,
    ...(status.status === 'committed'
      ? { height: status.height, code: status.code, log: status.log }
      : {}),
    ...(status.status === 'unknown' && status.evicted !== undefined
      ? { evicted: status.evicted }
      : {}),
    events: (receipt?.events ?? []).map((event) => ({
      type: event.type,
      attributes: event.attributes,
      accounts: event.accounts.map(toHex),
      text: describeEvent(event, account, token),
    })),
  };
}

function submit(
  context: StakeContext,
  signer: LedgerSigner,
  tx: StakingTx,
  what: string,
  values: TxValues,
  io: CliIo,
  after?: (outcome: SubmitOutcome) => Promise<void>,
): Promise<number> {
  return submitLedgerTx(context, signer, tx, sendStakingTx, what, values, io, after);
}

const validatorsCommand: Command = {
  name: 'stake validators',
  summary: 'list the validators with their stake, power, set membership, jail and commission',
  help: `
usage: hypermesh stake validators [--cluster FILE|DIR] [--node NAME|ADDR] [--height H] [--json]

Reads the staking parameters, every validator's record and the set staking last handed to
consensus, each with its state proof checked against the state root the node names (all at one
height). Prints each validator's consensus address, node name (when it is one of the cluster's),
stake (bonded tokens, delegations included), voting power, whether it is in the set, whether it
is jailed, and its commission. Exits 0 when every proof verifies, 1 otherwise.

options:
${CLUSTER_HELP}
  --height H            read the state as of height H (default: latest committed)
  --json                machine-readable output
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      cluster: { type: 'string' },
      node: { type: 'string' },
      height: { type: 'string' },
      json: { type: 'boolean' },
    });
    const height =
      values.height === undefined
        ? undefined
        : integerOption(values.height, 'height', { min: 1, max: Number.MAX_SAFE_INTEGER }, 1);
    const context = await stakeContext(values);
    const { token, node, target } = context;
    const session = await openOperatorSession(target);
    let read;
    try {
      read = await readProvenValidators(session.client(node.name), height).catch(
        stoqFailure(node.name),
      );
    } finally {
      await session.close();
    }
    const names = new Map(target.nodes.map((entry) => [entry.id, entry.name]));
    const tokens = (units: bigint) => formatTokenAmount(units, token.decimals);
    if (values.json) {
      const params = Object.fromEntries(
        Object.entries(read.params).map(([name, value]) => [
          name,
          typeof value === 'bigint' ? value.toString() : value,
        ]),
      );
      io.out(
        `${JSON.stringify(
          {
            node: node.name,
            height: read.height,
            stateRoot: read.stateRoot,
            symbol: token.symbol,
            decimals: token.decimals,
            params,
            validators: read.validators.map((view) => ({
              address: view.address,
              name: names.get(view.address) ?? null,
              operator: view.operator,
              tokens: view.record.tokens.toString(),
              stake: tokens(view.record.tokens),
              shares: view.record.shares.toString(),
              power: view.record.power,
              inSet: view.inSet,
              jailed: JailReason[view.record.jailed].toLowerCase(),
              jailedUntil: view.record.jailedUntil,
              commissionBps: view.record.commissionBps,
            })),
          },
          null,
          2,
        )}\n`,
      );
      return 0;
    }
    const inSet = read.validators.filter((view) => view.inSet).length;
    io.out(
      `${read.validators.length} validator(s), ${inSet} in the set; height ${read.height ?? '-'}, proofs verified against state root ${read.stateRoot} (${node.name})\n`,
    );
    io.out(
      `  power = stake / ${tokens(read.params.powerUnit)} ${token.symbol} (scaled down together when the set's total would pass 2^50); minimum stake ${tokens(read.params.minValidatorStake)} ${token.symbol}; set recomputed every ${read.params.epochBlocks} blocks\n`,
    );
    for (const view of read.validators) {
      const { record } = view;
      const name = names.get(view.address);
      io.out(`${view.address}${name === undefined ? '' : ` (${name})`}\n`);
      io.out(
        `  stake ${describeAmount(record.tokens, token)}, power ${record.power}, ` +
          `${view.inSet ? 'in the set' : 'not in the set'}, jailed: ${describeJail(record)}, ` +
          `commission ${(record.commissionBps / 100).toFixed(2)}%\n`,
      );
      io.out(`  operator account ${view.operator}\n`);
    }
    return 0;
  },
};

const delegationsCommand: Command = {
  name: 'stake delegations',
  summary: "list an account's delegations and unbonding entries, proven",
  help: `
usage: hypermesh stake delegations (--address ADDR | --key FILE) [--passphrase-env VAR]
                                   [--cluster FILE|DIR] [--node NAME|ADDR] [--height H] [--json]

Lists every delegation of the account — the validator, the shares, the tokens they are worth
now (shares × the validator's stake / its shares) and whether the validator is jailed — and
every unbonding entry waiting to return to its balance (the validator, the amount, the height
of the unbond and the block at whose end it is paid). Each is read with its state proof checked
against the state root the node names, and that root against the block's commit, all at one
height. The ledger keeps a delegator index for each account (the validators it has shares of,
at most 32), so the command reads the staking parameters, the account's index, then the record
and the delegation at each validator the index names, then the unbonding entries: at most
3 + 2 × 32 = 67 proven reads, however many validators the chain has. The index's proof makes
the list complete: a node that leaves a delegation out (or adds one) is refused. A delegation at
a validator includes what its rewards added; a slash lowers it. Exits 0 when every proof
verifies, 1 otherwise.

options:
  --address ADDR        the account's address (64 hex digits, as "wallet address" prints it)
  --key FILE            or the account of this key file (a wallet key, hybrid or not, or a
                        node identity: a validator's operator account holds its self-bond)
  --passphrase-env VAR  the key file's passphrase is in environment variable VAR
${CLUSTER_HELP}
  --height H            read the state as of height H (default: latest committed)
  --json                machine-readable output
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      address: { type: 'string' },
      key: { type: 'string' },
      'passphrase-env': { type: 'string' },
      cluster: { type: 'string' },
      node: { type: 'string' },
      height: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (values.address !== undefined && values.key !== undefined) {
      throw new CliError('give --address or --key, not both');
    }
    if (values.address === undefined && values.key === undefined) {
      throw new CliError('give the account with --address ADDR or --key FILE (see --help)');
    }
    const height =
      values.height === undefined
        ? undefined
        : integerOption(values.height, 'height', { min: 1, max: Number.MAX_SAFE_INTEGER }, 1);
    let account: Uint8Array;
    if (values.address !== undefined) {
      account = parseAddressArgument(values.address, '--address');
    } else {
      const passphrase = passphraseFromEnv(values['passphrase-env']);
      const wallet = await readWalletKey(values.key as string, {
        ...(passphrase === undefined ? {} : { passphrase }),
        allowHybrid: true,
      });
      account = wallet.address;
    }
    const context = await stakeContext(values);
    const { token, node, target } = context;
    const session = await openOperatorSession(target);
    let read;
    try {
      read = await readProvenDelegations(session.client(node.name), account, height).catch(
        stoqFailure(node.name),
      );
    } finally {
      await session.close();
    }
    const names = new Map(target.nodes.map((entry) => [entry.id, entry.name]));
    const tokens = (units: bigint) => formatTokenAmount(units, token.decimals);
    const hex = formatAddress(account);
    const delegated = read.delegations.reduce((sum, view) => sum + view.tokens, 0n);
    const unbonding = read.unbonding.reduce((sum, entry) => sum + entry.amount, 0n);
    if (values.json) {
      io.out(
        `${JSON.stringify(
          {
            node: node.name,
            account: hex,
            height: read.height,
            stateRoot: read.stateRoot,
            symbol: token.symbol,
            decimals: token.decimals,
            validatorsRead: read.validatorsRead,
            delegated: delegated.toString(),
            unbondingTotal: unbonding.toString(),
            delegations: read.delegations.map((view) => ({
              validator: view.validator,
              name: names.get(view.validator) ?? null,
              shares: view.shares.toString(),
              tokens: view.tokens.toString(),
              worth: tokens(view.tokens),
              jailed: JailReason[view.record.jailed].toLowerCase(),
              jailedUntil: view.record.jailedUntil,
            })),
            unbonding: read.unbonding.map((entry) => {
              const validator = toHex(entry.validator);
              return {
                validator,
                name: names.get(validator) ?? null,
                amount: entry.amount.toString(),
                worth: tokens(entry.amount),
                creationHeight: entry.creationHeight,
                completionHeight: entry.completionHeight,
              };
            }),
          },
          null,
          2,
        )}\n`,
      );
      return 0;
    }
    const named = (validator: string): string => {
      const name = names.get(validator);
      return name === undefined ? validator : `${validator} (${name})`;
    };
    io.out(
      `${hex}: ${read.delegations.length} delegation(s) worth ${describeAmount(delegated, token)}, ` +
        `${read.unbonding.length} unbonding entry(ies) of ${describeAmount(unbonding, token)}\n`,
    );
    io.out(
      `  height ${read.height ?? '-'}, ${read.validatorsRead} validator(s) read, proofs verified against state root ${read.stateRoot} (${node.name})\n`,
    );
    if (read.delegations.length === 0) io.out('no delegations\n');
    for (const view of read.delegations) {
      io.out(
        `delegation to ${named(view.validator)}: ${view.shares} shares worth ${describeAmount(view.tokens, token)}, jailed: ${describeJail(view.record)}\n`,
      );
    }
    if (read.unbonding.length === 0) io.out('no unbonding entries\n');
    for (const entry of read.unbonding) {
      io.out(
        `unbonding ${describeAmount(entry.amount, token)} from ${named(toHex(entry.validator))}: ` +
          `unbonded at height ${entry.creationHeight}, returns to the balance at the end of block ${entry.completionHeight}\n`,
      );
    }
    return 0;
  },
};

const createValidatorCommand: Command = {
  name: 'stake create-validator',
  summary: 'register a validator: its keys, storage root, commission and self-bond',
  help: `
usage: hypermesh stake create-validator --self-bond X --commission R
                                        (--node-dir DIR | --key FILE [--falcon-key FILE]
                                         (--storage-root HEX | --plot FILE))
                                        [--fee Y] [--base-units] [--passphrase-env VAR]
                                        [--cluster FILE|DIR] [--node NAME|ADDR] [--wait]

Registers a new validator (a create-validator transaction). Its Ed25519 key signs the
transaction and becomes its consensus key; the key's account (the operator) pays the self-bond
and fee and receives the commission. The FALCON-1024 public key and the storage plot's root are
what consensus needs to add it. The validator starts outside the set and joins at the next epoch
if its stake qualifies. A key that is already a validator is refused (CAESAR_VALIDATOR_EXISTS).

options:
  --node-dir DIR        a node directory as "cluster init" writes it (config.json naming the
                        node identity key and the storage plot): takes all three from there
  --key FILE            the validator's Ed25519 key (a node identity, or an Ed25519 key file)
  --falcon-key FILE     its FALCON-1024 key (a node identity or a FALCON key file; default --key)
  --storage-root HEX    the storage plot's root, 64 hex digits
  --plot FILE           or the storage plot file (checked against the chain and the key)
  --self-bond X         tokens the operator bonds, at least the minValidatorStake parameter
  --commission R        basis points of the rewards to the operator, 0-${BASIS_POINTS} (500 = 5%),
                        or a percentage such as 5% or 2.5%
${TX_HELP}
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      ...TX_OPTIONS,
      'node-dir': { type: 'string' },
      key: { type: 'string' },
      'falcon-key': { type: 'string' },
      'storage-root': { type: 'string' },
      plot: { type: 'string' },
      'self-bond': { type: 'string' },
      commission: { type: 'string' },
    });
    const bondText = requireOption(values['self-bond'], 'self-bond');
    const commission = parseCommission(requireOption(values.commission, 'commission'));
    const context = await stakeContext(values);
    const { token } = context;
    const bond = positiveAmount(bondText, 'self-bond', token, values);
    const fee = feeOf(values, token);
    const passphrase = passphraseFromEnv(values['passphrase-env']);
    const identity = await readValidatorIdentity(
      {
        ...(values['node-dir'] === undefined ? {} : { nodeDir: values['node-dir'] }),
        ...(values.key === undefined ? {} : { keyFile: values.key }),
        ...(values['falcon-key'] === undefined ? {} : { falconKeyFile: values['falcon-key'] }),
        ...(values['storage-root'] === undefined ? {} : { storageRoot: values['storage-root'] }),
        ...(values.plot === undefined ? {} : { plotFile: values.plot }),
        ...(passphrase === undefined ? {} : { passphrase }),
      },
      context.genesis,
    );
    const address = Buffer.from(consensusAddress(identity.publicKey)).toString('hex');
    describeTx(
      values,
      io,
      `create validator ${address} with a self-bond of ${describeAmount(bond, token)}, ` +
        `commission ${(commission / 100).toFixed(2)}%, fee ${describeAmount(fee, token)}\n` +
        `  storage root ${Buffer.from(identity.storageRoot).toString('hex')}\n`,
    );
    return submit(
      context,
      { privateKey: identity.privateKey },
      {
        op: CREATE_VALIDATOR_OP,
        fee,
        bond,
        pqKey: identity.pqPublicKey,
        commission,
        storageRoot: identity.storageRoot,
      },
      'validator',
      values,
      io,
    );
  },
};

function bondCommand(op: typeof DELEGATE_OP | typeof UNBOND_OP): Command {
  const delegate = op === DELEGATE_OP;
  const verb = delegate ? 'delegate' : 'unbond';
  return {
    name: `stake ${verb}`,
    summary: delegate
      ? "bond tokens to a validator from a wallet's balance"
      : 'unbond tokens from a delegation; they return after the unbonding period',
    help: `
usage: hypermesh stake ${verb} --validator ADDR --amount X --key FILE [--fee Y] [--base-units]
       ${' '.repeat(`hypermesh stake ${verb} `.length)}[--passphrase-env VAR] [--cluster FILE|DIR] [--node NAME|ADDR] [--wait]

${
  delegate
    ? `Bonds X tokens of --key's balance to the validator (a delegate transaction; also how an
operator adds to its self-bond). The account receives shares of the validator's stake; rewards
and slashes reach it through them.`
    : `Unbonds X tokens' worth of --key's delegation to the validator (an unbond transaction). The
tokens leave the validator at once and return to the balance at the end of block h +
unbondingBlocks (they can still be slashed while they wait); with --wait the entry is shown.
More than the delegation is worth is refused (CAESAR_INSUFFICIENT_BOND).`
}
From a hybrid wallet key (wallet create --falcon) the transaction is signed with both its
Ed25519 and FALCON-1024 keys and acts for the hybrid account.

options:
  --validator ADDR      the validator's consensus address (40 hex digits, as "stake validators"
                        lists it), or a node name of the cluster (node-2)
  --amount X            tokens, above zero
  --key FILE            the ${delegate ? 'delegator' : "delegation's"} key file (a wallet key, hybrid or not, or a node identity)
${TX_HELP}
`,
    async run(args, io) {
      const values = parseCommandArgs(args, {
        ...TX_OPTIONS,
        validator: { type: 'string' },
        amount: { type: 'string' },
        key: { type: 'string' },
      });
      const validatorText = requireOption(values.validator, 'validator');
      const amountText = requireOption(values.amount, 'amount');
      const keyFile = requireOption(values.key, 'key');
      const context = await stakeContext(values);
      const { token } = context;
      const validator = parseValidatorArgument(validatorText, context.target.nodes);
      const amount = positiveAmount(amountText, 'amount', token, values);
      const fee = feeOf(values, token);
      const passphrase = passphraseFromEnv(values['passphrase-env']);
      const wallet = await readWalletKey(keyFile, {
        ...(passphrase === undefined ? {} : { passphrase }),
        allowHybrid: true,
      });
      const hex = Buffer.from(validator).toString('hex');
      describeTx(
        values,
        io,
        `${verb} ${describeAmount(amount, token)} ${delegate ? 'to' : 'from'} validator ${hex}, fee ${describeAmount(fee, token)}\n` +
          `  account ${formatAddress(wallet.address)}\n`,
      );
      const showEntry = async (outcome: SubmitOutcome): Promise<void> => {
        if (delegate || !outcome.admitted || outcome.status.status !== 'committed') return;
        const committed = outcome.status.height;
        const session = await openOperatorSession(context.target);
        try {
          const read = await readProvenDelegation(
            session.client(context.node.name),
            validator,
            wallet.address,
          );
          const entry = read.unbonding.find(
            (item) =>
              item.creationHeight === committed &&
              Buffer.from(item.validator).toString('hex') === hex,
          );
          if (entry !== undefined) {
            io.out(
              `unbonding ${describeAmount(entry.amount, token)}: returns to the balance at the end of block ${entry.completionHeight} (proof verified at height ${read.height ?? '-'})\n`,
            );
          }
        } finally {
          await session.close();
        }
      };
      return submit(
        context,
        wallet,
        { op, fee, amount, validator },
        delegate ? 'delegation' : 'unbonding',
        values,
        io,
        showEntry,
      );
    },
  };
}

const unjailCommand: Command = {
  name: 'stake unjail',
  summary: 'bring a jailed validator back once its jail time is over',
  help: `
usage: hypermesh stake unjail --key NODEKEY [--fee Y] [--base-units] [--passphrase-env VAR]
                              [--cluster FILE|DIR] [--node NAME|ADDR] [--wait]

Sends an unjail transaction signed with the validator's key (its node identity key file). It is
accepted from the release height on (CAESAR_JAIL_NOT_OVER before; CAESAR_NOT_JAILED when the
validator is not jailed); the validator rejoins the set at the next epoch if it qualifies.

options:
  --key NODEKEY         the validator's key file (node-K/node-K.key)
${TX_HELP}
`,
  async run(args, io) {
    const values = parseCommandArgs(args, { ...TX_OPTIONS, key: { type: 'string' } });
    const keyFile = requireOption(values.key, 'key');
    const context = await stakeContext(values);
    const fee = feeOf(values, context.token);
    const passphrase = passphraseFromEnv(values['passphrase-env']);
    const wallet = await readWalletKey(keyFile, passphrase === undefined ? {} : { passphrase });
    const address = Buffer.from(consensusAddress(wallet.publicKey)).toString('hex');
    describeTx(
      values,
      io,
      `unjail validator ${address}, fee ${describeAmount(fee, context.token)}\n`,
    );
    return submit(context, wallet, { op: UNJAIL_OP, fee }, 'unjail', values, io);
  },
};

const editValidatorCommand: Command = {
  name: 'stake edit-validator',
  summary: "change your validator's commission (a bounded step, once per epoch)",
  help: `
usage: hypermesh stake edit-validator --commission R (--node-dir DIR | --key NODEKEY)
                                      [--fee Y] [--base-units] [--passphrase-env VAR]
                                      [--cluster FILE|DIR] [--node NAME|ADDR] [--wait]

Changes the commission of the validator whose consensus key signs the transaction (an
edit-validator transaction; the operator account pays the fee). The new commission applies to
the rewards paid from the block that applies it on. Refused, with nothing written: a key that
is no validator (CAESAR_UNKNOWN_VALIDATOR), a change of more than maxCommissionChangeBps basis
points up or down (CAESAR_COMMISSION_CHANGE_TOO_LARGE), a change less than epochBlocks blocks
after the validator's last one (CAESAR_COMMISSION_CHANGE_TOO_SOON). "stake validators" shows the
current commission and the parameters.

options:
  --node-dir DIR        a node directory as "cluster init" writes it: takes the key from there
  --key NODEKEY         or the validator's key file (node-K/node-K.key)
  --commission R        the new commission: basis points 0-${BASIS_POINTS} (500 = 5%), or a
                        percentage such as 5% or 2.5%
${TX_HELP}
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      ...TX_OPTIONS,
      'node-dir': { type: 'string' },
      key: { type: 'string' },
      commission: { type: 'string' },
    });
    const commission = parseCommission(requireOption(values.commission, 'commission'));
    const context = await stakeContext(values);
    const fee = feeOf(values, context.token);
    const passphrase = passphraseFromEnv(values['passphrase-env']);
    const key = await readValidatorKey({
      nodeDir: values['node-dir'],
      keyFile: values.key,
      passphrase,
    });
    const address = Buffer.from(consensusAddress(key.publicKey)).toString('hex');
    describeTx(
      values,
      io,
      `set the commission of validator ${address} to ${(commission / 100).toFixed(2)}%, fee ${describeAmount(fee, context.token)}\n`,
    );
    return submit(
      context,
      key,
      { op: EDIT_VALIDATOR_OP, fee, commission },
      'commission change',
      values,
      io,
    );
  },
};

const selfBondCommand: Command = {
  name: 'stake bond',
  summary: "add to your own validator's self-bond from its operator account",
  help: `
usage: hypermesh stake bond --amount X --key NODEKEY [--fee Y] [--base-units] [--passphrase-env VAR]
                            [--cluster FILE|DIR] [--node NAME|ADDR] [--wait]

Bonds X more tokens to the validator whose consensus key is NODEKEY, paid from that key's own
account (its operator account): a delegate transaction from the operator to its own validator,
i.e. "stake delegate --validator <its address> --key NODEKEY". The new shares are self-bond like
those of create-validator or the genesis; they raise the validator's stake, and its power from
the next epoch. A key that is no validator is refused (CAESAR_UNKNOWN_VALIDATOR); to bond to
another validator use "stake delegate", to register a validator "stake create-validator".

options:
  --amount X            tokens, above zero
  --key NODEKEY         the validator's key file (node-K/node-K.key)
${TX_HELP}
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      ...TX_OPTIONS,
      amount: { type: 'string' },
      key: { type: 'string' },
    });
    const amountText = requireOption(values.amount, 'amount');
    const keyFile = requireOption(values.key, 'key');
    const context = await stakeContext(values);
    const { token } = context;
    const amount = positiveAmount(amountText, 'amount', token, values);
    const fee = feeOf(values, token);
    const passphrase = passphraseFromEnv(values['passphrase-env']);
    const wallet = await readWalletKey(keyFile, passphrase === undefined ? {} : { passphrase });
    const validator = consensusAddress(wallet.publicKey);
    describeTx(
      values,
      io,
      `bond ${describeAmount(amount, token)} to own validator ${Buffer.from(validator).toString('hex')}, fee ${describeAmount(fee, token)}\n` +
        `  operator account ${formatAddress(wallet.address)}\n`,
    );
    return submit(
      context,
      wallet,
      { op: DELEGATE_OP, fee, amount, validator },
      'self-bond',
      values,
      io,
    );
  },
};

export const stakeCommands: readonly Command[] = [
  validatorsCommand,
  delegationsCommand,
  createValidatorCommand,
  editValidatorCommand,
  selfBondCommand,
  bondCommand(DELEGATE_OP),
  bondCommand(UNBOND_OP),
  unjailCommand,
];
