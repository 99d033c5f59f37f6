import type { Command } from '../commands.js';
import type { CliIo } from '../io.js';
import { notCommittedReason, type Admission, type SubmitOutcome } from '../tx-submit.js';
import { parseCommandArgs, parseCommandLine, passphraseFromEnv, requireOption } from '../args.js';
import { CliError } from '../cli-error.js';
import { visible } from '../io.js';
import { readGenesisFile } from '../cluster-layout.js';
import {
  DEFAULT_CLUSTER_FILE,
  findNode,
  loadClusterTarget,
  openOperatorSession,
  type ClusterTarget,
} from '../operator.js';
import { integerOption } from './cluster.js';
import {
  CaesarAmountError,
  MAX_MEMO_BYTES,
  formatAddress,
  formatTokenAmount,
  parseBaseUnits,
  parseTokenAmount,
} from '../../caesar/index.js';
import type { TokenParams } from '../../caesar/index.js';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { MAX_HISTORY_PAGE_SIZE } from '../../consensus/net/index.js';
import {
  DEFAULT_WALLET_KEY_FILE,
  createWalletKey,
  parseAddressArgument,
  readWalletKey,
} from '../wallet.js';

/**
 * `hypermesh wallet create|address|balance|send`: Caesar accounts from the command line
 * (docs/cli.md, docs/caesar.md). Balances are read with their state proof checked; transfers are
 * signed with the wallet key and stamped for the chain, like `tx kv-set`.
 */

export function pickNode(target: ClusterTarget, wanted: string | undefined) {
  return wanted === undefined
    ? (target.nodes[0] as ClusterTarget['nodes'][number])
    : findNode(target, wanted);
}

/** `1.5 CSR (1500000 base units)`. */
export function describeAmount(baseUnits: bigint, token: TokenParams): string {
  return `${formatTokenAmount(baseUnits, token.decimals)} ${token.symbol} (${baseUnits} base units)`;
}

/**
 * Parses `--name` as a token amount (`1.5`) for `token`, or as base units with `--base-units`.
 * The CaesarAmountError's message says exactly what is wrong; its code is kept in the message.
 */
export function amountOption(
  text: string,
  name: string,
  token: TokenParams,
  baseUnits: boolean,
): bigint {
  try {
    return baseUnits ? parseBaseUnits(text) : parseTokenAmount(text, token.decimals);
  } catch (error) {
    if (error instanceof CaesarAmountError) {
      throw new CliError(`--${name}: ${error.message} [${error.code}]`);
    }
    throw error;
  }
}

/**
 * The line that says what `node` did with a transaction: admitted it, or already held this very
 * transaction (a resubmission of one still pending: nothing new was sent).
 */
export function admissionLine(admission: Admission, node: string): string {
  const tx = `tx ${admission.txHash} (sequence ${admission.sequence})`;
  return admission.duplicate
    ? `${tx} already pending at ${node}, not sent again\n`
    : `${tx} admitted by ${node}\n`;
}

/**
 * Prints what became of a submitted transaction (`what`: "transfer", "delegation", …) and
 * returns the exit code: a refusal at admission is a CliError (exit 1) with the node's code;
 * committed: 0 if applied, 1 with the result code and log otherwise; not waiting: 0 once
 * admitted; waited in vain, or dropped from the node's mempool while waiting: 1. `announced`:
 * the admission line was printed already (`SubmitOptions.onAdmitted`), as soon as it was known.
 */
export function reportSubmission(
  outcome: SubmitOutcome,
  what: string,
  node: string,
  io: CliIo,
  wait: boolean,
  timeoutMs: number,
  announced = false,
): number {
  if (!outcome.admitted) {
    throw new CliError(`${node} refused the ${what}: ${outcome.code}: ${outcome.message}`, 1);
  }
  if (!announced) io.out(admissionLine(outcome, node));
  const { status } = outcome;
  if (status.status === 'committed') {
    const result = status.code === 0 ? 'applied' : `refused: ${visible(status.log)}`;
    io.out(`committed at height ${status.height}, code ${status.code} (${result})\n`);
    return status.code === 0 ? 0 : 1;
  }
  if (!wait) return 0;
  io.out(`${notCommittedReason(status, timeoutMs, node)}\n`);
  return 1;
}

const createCommand: Command = {
  name: 'wallet create',
  summary: 'create a wallet key (Ed25519, or Ed25519 + FALCON-1024) and print its address',
  help: `
usage: hypermesh wallet create [--out FILE] [--falcon] [--passphrase-env VAR]

Generates an Ed25519 key and writes it to FILE as a key file (mode 0600; never replaces an
existing file), then prints the account address: SHA-256 of the public key, 64 hex digits.
With --falcon, generates an Ed25519 and a FALCON-1024 key into one key file: a hybrid
(post-quantum) account, whose address is the tagged hash of both keys and whose transfers
carry both signatures (docs/caesar.md, "Hybrid accounts").

options:
  --out FILE            where to write the key (default ${DEFAULT_WALLET_KEY_FILE})
  --falcon              a hybrid Ed25519 + FALCON-1024 account
  --passphrase-env VAR  encrypt the key with the passphrase in environment variable VAR
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      out: { type: 'string' },
      falcon: { type: 'boolean' },
      'passphrase-env': { type: 'string' },
    });
    const passphrase = passphraseFromEnv(values['passphrase-env']);
    const file = values.out ?? DEFAULT_WALLET_KEY_FILE;
    const wallet = await createWalletKey(file, {
      ...(passphrase === undefined ? {} : { passphrase }),
      hybrid: values.falcon ?? false,
    });
    io.out(`${wallet.kind === 'hybrid' ? 'hybrid ' : ''}wallet key written to ${file}\n`);
    io.out(`address ${formatAddress(wallet.address)}\n`);
    return 0;
  },
};

const addressCommand: Command = {
  name: 'wallet address',
  summary: "print a wallet key's Caesar account address",
  help: `
usage: hypermesh wallet address [--key FILE] [--passphrase-env VAR]

Prints the account address of a key file: a wallet key (wallet create, or a cluster's
operator/treasury.key), a hybrid wallet key (wallet create --falcon: the hybrid address) or a
node identity (node-K/node-K.key: the validator's operator account).

options:
  --key FILE            key file (default ${DEFAULT_WALLET_KEY_FILE})
  --passphrase-env VAR  the key file's passphrase is in environment variable VAR
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      key: { type: 'string' },
      'passphrase-env': { type: 'string' },
    });
    const passphrase = passphraseFromEnv(values['passphrase-env']);
    const wallet = await readWalletKey(values.key ?? DEFAULT_WALLET_KEY_FILE, {
      ...(passphrase === undefined ? {} : { passphrase }),
      allowHybrid: true,
    });
    io.out(`${formatAddress(wallet.address)}\n`);
    return 0;
  },
};

const balanceCommand: Command = {
  name: 'wallet balance',
  summary: 'read an account balance, with its Merkle proof checked against the state root',
  help: `
usage: hypermesh wallet balance [ADDRESS] [--key FILE] [--cluster FILE|DIR] [--node NAME|ADDR]
                                [--height H] [--json]

Asks a node for the balance of ADDRESS (or of --key's account) with query "caesar/balance" and
checks the state proof in the answer against the state root it names: the balance, or proof
that the account does not exist (balance 0). Prints it in tokens and base units, using the
token's decimals from the cluster's genesis. Exits 0 when the proof verifies, 1 otherwise.

options:
  --key FILE            read the address from this key file instead of ADDRESS
  --passphrase-env VAR  the key file's passphrase is in environment variable VAR
  --cluster FILE|DIR    cluster.json or "cluster init" directory (default ${DEFAULT_CLUSTER_FILE})
  --node NAME|ADDR      node to ask (default: the first)
  --height H            read the state as of height H (default: latest committed)
  --json                machine-readable output
`,
  async run(args, io) {
    const parsed = parseCommandLine(args, {
      key: { type: 'string' },
      'passphrase-env': { type: 'string' },
      cluster: { type: 'string' },
      node: { type: 'string' },
      height: { type: 'string' },
      json: { type: 'boolean' },
    });
    const { values, positionals } = parsed;
    const address = await addressArgument(positionals, values.key, values['passphrase-env']);
    const height =
      values.height === undefined
        ? undefined
        : integerOption(values.height, 'height', { min: 1, max: Number.MAX_SAFE_INTEGER }, 1);
    const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
    const node = pickNode(target, values.node);
    const genesis = await readGenesisFile(target.genesisFile);
    const { ledgerToken, readProvenBalance } = await import('../wallet-ledger.js');
    const { stoqFailure } = await import('../tx-submit.js');
    const token = ledgerToken(genesis, target.genesisFile);
    const session = await openOperatorSession(target);
    try {
      const read = await readProvenBalance(session.client(node.name), address, height).catch(
        stoqFailure(node.name),
      );
      const hex = formatAddress(address);
      if (values.json) {
        io.out(
          `${JSON.stringify(
            {
              node: node.name,
              address: hex,
              height: read.height,
              stateRoot: read.stateRoot,
              balance: read.balance.toString(),
              tokens: formatTokenAmount(read.balance, token.decimals),
              symbol: token.symbol,
              decimals: token.decimals,
            },
            null,
            2,
          )}\n`,
        );
      } else {
        const absent = read.balance === 0n ? ' — no account (proven absent)' : '';
        io.out(`${hex}: ${describeAmount(read.balance, token)}${absent}\n`);
        io.out(
          `  height ${read.height ?? '-'}, proof verified against state root ${read.stateRoot} (${node.name})\n`,
        );
      }
      return 0;
    } finally {
      await session.close();
    }
  },
};

const sendCommand: Command = {
  name: 'wallet send',
  summary: 'transfer tokens from a wallet: a signed, stamped Caesar transaction',
  help: `
usage: hypermesh wallet send --to ADDRESS --amount X --key FILE [--fee Y] [--base-units]
                             [--memo TEXT] [--passphrase-env VAR] [--cluster FILE|DIR]
                             [--node NAME|ADDR] [--wait] [--timeout-ms MS]

Builds a Caesar transfer of X tokens (e.g. 1.5, converted exactly with the token's decimals
from the cluster's genesis; at most that many decimal places) from --key's account to ADDRESS,
signed with the key, with its next sequence number and the chain's hashcash stamp, and submits
it to a node. A transfer the node refuses at admission (e.g. CAESAR_INSUFFICIENT_FUNDS) is
reported with its code and exits 1. With --wait, waits until it is committed and prints the
height and result code (0 = applied; otherwise the Caesar code, and nothing moved), then the
events of its receipt (what it moved: the transfer, the fee). From a hybrid wallet key
(wallet create --falcon), the transfer is signed with both its Ed25519 and FALCON-1024 keys
and spends from the hybrid account.

options:
  --to ADDRESS          recipient: 64 hex digits (it need not have an account yet)
  --amount X            tokens to send, above zero
  --fee Y               fee in tokens, paid to the fee pool (default 0)
  --base-units          --amount and --fee are whole base units instead of tokens
  --memo TEXT           up to ${MAX_MEMO_BYTES} bytes of UTF-8, recorded in the block
  --key FILE            the sender's key file (a wallet key, hybrid or not, or a node identity)
  --passphrase-env VAR  the key file's passphrase is in environment variable VAR
  --cluster FILE|DIR    cluster.json or "cluster init" directory (default ${DEFAULT_CLUSTER_FILE})
  --node NAME|ADDR      node to submit to (default: the first)
  --wait                wait for the commit and print the result code and events
  --timeout-ms MS       how long --wait waits (default 30000)
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      to: { type: 'string' },
      amount: { type: 'string' },
      fee: { type: 'string' },
      'base-units': { type: 'boolean' },
      memo: { type: 'string' },
      key: { type: 'string' },
      'passphrase-env': { type: 'string' },
      cluster: { type: 'string' },
      node: { type: 'string' },
      wait: { type: 'boolean' },
      'timeout-ms': { type: 'string' },
    });
    const to = parseAddressArgument(requireOption(values.to, 'to'), '--to');
    const amountText = requireOption(values.amount, 'amount');
    const keyFile = requireOption(values.key, 'key');
    const timeoutMs = integerOption(
      values['timeout-ms'],
      'timeout-ms',
      { min: 100, max: 3_600_000 },
      30_000,
    );
    let memo: Uint8Array | undefined;
    if (values.memo !== undefined) {
      memo = new TextEncoder().encode(values.memo);
      if (memo.length === 0 || memo.length > MAX_MEMO_BYTES) {
        throw new CliError(
          `--memo must be 1 to ${MAX_MEMO_BYTES} bytes of UTF-8, got ${memo.length}`,
        );
      }
    }
    const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
    const node = pickNode(target, values.node);
    const genesis = await readGenesisFile(target.genesisFile);
    const { describeEvent, ledgerToken, readReceipt, sendTransfer } =
      await import('../wallet-ledger.js');
    const { stoqFailure } = await import('../tx-submit.js');
    const token = ledgerToken(genesis, target.genesisFile);
    const baseUnits = values['base-units'] ?? false;
    const amount = amountOption(amountText, 'amount', token, baseUnits);
    if (amount === 0n) throw new CliError('--amount must be above zero');
    const fee = values.fee === undefined ? 0n : amountOption(values.fee, 'fee', token, baseUnits);
    const passphrase = passphraseFromEnv(values['passphrase-env']);
    const wallet = await readWalletKey(keyFile, {
      ...(passphrase === undefined ? {} : { passphrase }),
      allowHybrid: true,
    });

    const session = await openOperatorSession(target);
    try {
      io.out(
        `transfer ${describeAmount(amount, token)}, fee ${describeAmount(fee, token)}\n` +
          `  from ${formatAddress(wallet.address)}\n  to   ${formatAddress(to)}\n`,
      );
      const outcome = await sendTransfer({
        client: session.client(node.name),
        genesis,
        privateKey: wallet.privateKey,
        ...(wallet.falcon === undefined ? {} : { falcon: wallet.falcon }),
        to,
        amount,
        fee,
        ...(memo === undefined ? {} : { memo }),
        wait: values.wait ?? false,
        timeoutMs,
        onAdmitted: (admission) => io.out(admissionLine(admission, node.name)),
      }).catch(stoqFailure(node.name));
      const code = reportSubmission(
        outcome,
        'transfer',
        node.name,
        io,
        values.wait ?? false,
        timeoutMs,
        true,
      );
      if (outcome.admitted && outcome.status.status === 'committed') {
        const client = session.client(node.name);
        const receipt = await readReceipt(client, fromHex(outcome.txHash)).catch(
          stoqFailure(node.name),
        );
        const self = formatAddress(wallet.address);
        for (const event of receipt?.events ?? []) {
          io.out(`  ${describeEvent(event, self, token)}\n`);
        }
      }
      return code;
    } finally {
      await session.close();
    }
  },
};

const DEFAULT_HISTORY_LIMIT = 20;

const historyCommand: Command = {
  name: 'wallet history',
  summary: "an account's transactions, newest first, from the node's receipts",
  help: `
usage: hypermesh wallet history [ADDRESS] [--key FILE] [--limit N] [--before HEIGHT.INDEX]
                                [--cluster FILE|DIR] [--node NAME|ADDR] [--json]

Lists the committed transactions whose receipts name ADDRESS (or --key's account): transfers
sent and received, fees, delegations to and by it, unbondings, unjails, proposals and votes,
newest first, each with its height, position in the block, hash, result and one line per event
(e.g. "sent 1.5 CSR to …", "fee 0.01 CSR"). Every transaction a key signed is also listed under
that key's address (SHA-256 of the key), applied or refused: a transaction refused in its block
(it used a sequence number and moved nothing) reads "refused CODE_NAME (code N): message" and
has no events. A hybrid account's own history lists what its events name; its refused
transactions are under the address of its Ed25519 key. Receipts are kept by each node as it
executes the blocks and carry no proof: this is the answering node's account of them.

options:
  --key FILE            list the history of this key file's account instead of ADDRESS
  --passphrase-env VAR  the key file's passphrase is in environment variable VAR
  --limit N             transactions per page, 1 to ${MAX_HISTORY_PAGE_SIZE} (default ${DEFAULT_HISTORY_LIMIT})
  --before HEIGHT.INDEX start below this transaction (the "next page" line gives it)
  --cluster FILE|DIR    cluster.json or "cluster init" directory (default ${DEFAULT_CLUSTER_FILE})
  --node NAME|ADDR      node to ask (default: the first)
  --json                machine-readable output
`,
  async run(args, io) {
    const parsed = parseCommandLine(args, {
      key: { type: 'string' },
      'passphrase-env': { type: 'string' },
      limit: { type: 'string' },
      before: { type: 'string' },
      cluster: { type: 'string' },
      node: { type: 'string' },
      json: { type: 'boolean' },
    });
    const { values, positionals } = parsed;
    const address = await addressArgument(positionals, values.key, values['passphrase-env']);
    const limit = integerOption(
      values.limit,
      'limit',
      { min: 1, max: MAX_HISTORY_PAGE_SIZE },
      DEFAULT_HISTORY_LIMIT,
    );
    const {
      describeEvent,
      describeResult,
      formatHistoryPosition,
      ledgerToken,
      parseHistoryPosition,
      readHistory,
      resultCodeName,
    } = await import('../wallet-ledger.js');
    const before = values.before === undefined ? undefined : parseHistoryPosition(values.before);
    const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
    const node = pickNode(target, values.node);
    const genesis = await readGenesisFile(target.genesisFile);
    const { stoqFailure } = await import('../tx-submit.js');
    const token = ledgerToken(genesis, target.genesisFile);
    const session = await openOperatorSession(target);
    try {
      const page = await readHistory(session.client(node.name), address, before, limit).catch(
        stoqFailure(node.name),
      );
      const hex = formatAddress(address);
      const next = page.next === null ? null : formatHistoryPosition(page.next);
      const entries = page.receipts.map((receipt) => ({
        height: receipt.height,
        index: receipt.index,
        txHash: toHex(receipt.txHash),
        code: receipt.code,
        codeName: resultCodeName(receipt),
        log: receipt.log,
        result: describeResult(receipt),
        events: receipt.events.map((event) => ({
          type: event.type,
          attributes: event.attributes,
          accounts: event.accounts.map(toHex),
          text: describeEvent(event, hex, token),
        })),
      }));
      if (values.json) {
        io.out(
          `${JSON.stringify(
            {
              node: node.name,
              address: hex,
              symbol: token.symbol,
              decimals: token.decimals,
              transactions: entries,
              next,
            },
            null,
            2,
          )}\n`,
        );
        return 0;
      }
      const where = before === undefined ? '' : ` before ${formatHistoryPosition(before)}`;
      io.out(
        `${hex}: ${entries.length} transaction(s)${where}, newest first (receipts from ${node.name})\n`,
      );
      for (const entry of entries) {
        io.out(`height ${entry.height}.${entry.index}  tx ${entry.txHash}  ${entry.result}\n`);
        for (const event of entry.events) io.out(`  ${event.text}\n`);
      }
      if (next !== null) {
        const cluster = values.cluster === undefined ? '' : ` --cluster ${values.cluster}`;
        const asked = values.node === undefined ? '' : ` --node ${values.node}`;
        io.out(
          `next page: hypermesh wallet history ${hex} --limit ${limit} --before ${next}${cluster}${asked}\n`,
        );
      } else {
        io.out('no more transactions\n');
      }
      return 0;
    } finally {
      await session.close();
    }
  },
};

/** ADDRESS, or --key's account; exactly one of them. */
async function addressArgument(
  positionals: readonly string[],
  keyFile: string | undefined,
  passphraseEnv: string | undefined,
): Promise<Uint8Array> {
  if (positionals.length > 1) {
    throw new CliError(`expected at most one ADDRESS, got ${positionals.length} (see --help)`);
  }
  const given = positionals[0];
  if (given !== undefined && keyFile !== undefined) {
    throw new CliError('give an ADDRESS or --key, not both');
  }
  if (given !== undefined) return parseAddressArgument(given, 'ADDRESS');
  if (keyFile !== undefined) {
    const passphrase = passphraseFromEnv(passphraseEnv);
    return (
      await readWalletKey(keyFile, {
        ...(passphrase === undefined ? {} : { passphrase }),
        allowHybrid: true,
      })
    ).address;
  }
  throw new CliError('give the ADDRESS to read, or --key FILE (see --help)');
}

export const walletCommands: readonly Command[] = [
  createCommand,
  addressCommand,
  balanceCommand,
  sendCommand,
  historyCommand,
];
